"""The Korean steel plant scenario (configs/scenarios/korea-steel-2018.toml) and the scenario
loader's options for files in local wall time (time_format, time_zone, midnight, regular).

Oracles: the loader's series against the CSV read row by row with the csv module (the rows are
the periods in order); the site's tariff against a direct transcription of the KEPCO rules
(seasons by month, bands by hour, Saturday's max hours at the mid price, Sundays and public
holidays light) and hand-checked slots; the no-battery bill of January recomputed from the
frame with those independent prices.
"""

from __future__ import annotations

import csv
import datetime as dt
import textwrap
from pathlib import Path

import holidays
import numpy as np
import pandas as pd
import pytest

from dispatch import tariff
from dispatch.config import load_config
from dispatch.types import ConfigError, InputError
from sim.scenario import SeriesSpec, load_scenario, load_series, shared_data_dir
from tests.conftest import CONFIGS

SCENARIO = CONFIGS / "scenarios" / "korea-steel-2018.toml"
SITE = CONFIGS / "korea-steel-plant.toml"
STEEL_CSV = Path("steel_uci") / "Steel_industry_data.csv"
SEOUL = "Asia/Seoul"

# KEPCO Industrial (B), high voltage A, option II, 2018 (KRW/kWh), transcribed for the test.
PRICES = {
    "summer": {"light": 56.1, "mid": 109.0, "max": 191.1},
    "spring_autumn": {"light": 56.1, "mid": 78.6, "max": 109.3},
    "winter": {"light": 63.1, "mid": 109.2, "max": 166.7},
}
MAX_HOURS = {"summer": {10, 11, 13, 14, 15, 16}, "spring_autumn": {10, 11, 13, 14, 15, 16},
             "winter": {10, 11, 17, 18, 19, 22}}  # fmt: skip


def kepco_price(local: dt.datetime, public: set[dt.date]) -> float:
    """The KEPCO rule book, written out independently of the tariff engine."""
    m = local.month
    season = "summer" if m in (6, 7, 8) else "winter" if m in (11, 12, 1, 2) else "spring_autumn"
    if local.date() in public or local.weekday() == 6 or not 9 <= local.hour < 23:
        band = "light"
    elif local.hour in MAX_HOURS[season] and local.weekday() != 5:
        band = "max"
    else:
        band = "mid"
    return PRICES[season][band]


def kr_public_holidays(year: int) -> set[dt.date]:
    return set(holidays.country_holidays("KR", years=year))


def read_steel_rows(shared_data: Path) -> list[tuple[str, float]]:
    with open(shared_data / STEEL_CSV, encoding="utf-8-sig", newline="") as f:
        return [(row["date"], float(row["Usage_kWh"])) for row in csv.DictReader(f)]


def local_slot(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=SEOUL).tz_convert("UTC")


# ------------------------------------------------------------------ the site's tariff


@pytest.mark.parametrize(
    ("local", "band", "price"),
    [
        ("2018-07-11 14:00", "summer_max", 191.1),  # Wednesday, summer max-load hour
        ("2018-07-11 12:15", "summer_mid", 109.0),  # the noon mid-load hour between max blocks
        ("2018-01-10 03:00", "winter_light", 63.1),  # winter night
        ("2018-12-12 22:30", "winter_max", 166.7),  # winter's late max-load hour
        ("2018-12-12 21:00", "winter_mid", 109.2),
        ("2018-04-11 12:30", "spring_autumn_mid", 78.6),
        ("2018-07-14 14:00", "summer_mid", 109.0),  # Saturday: max hours at the mid price
        ("2018-07-15 14:00", "summer_light", 56.1),  # Sunday: light all day
        ("2018-09-24 10:30", "spring_autumn_light", 56.1),  # Chuseok (Monday)
        ("2018-06-13 15:00", "summer_light", 56.1),  # local election day, a public holiday
    ],
)
def test_tariff_band_of_hand_checked_slots(local, band, price):
    config = load_config(SITE)
    idx = pd.DatetimeIndex([local_slot(local), local_slot(local) + pd.Timedelta(minutes=15)])
    assert tariff.band_per_slot(config, idx).iloc[0] == band
    assert tariff.import_price_per_kwh(config, idx).iloc[0] == pytest.approx(price)


def test_tariff_equals_the_kepco_rules_at_every_slot_of_2018():
    config = load_config(SITE)
    idx = pd.date_range(local_slot("2018-01-01 00:00"), local_slot("2019-01-01 00:00"),
                        freq="15min", inclusive="left")  # fmt: skip
    public = kr_public_holidays(2018)
    expected = [kepco_price(t.to_pydatetime(), public) for t in idx.tz_convert(SEOUL)]
    got = tariff.import_price_per_kwh(config, idx).to_numpy()
    np.testing.assert_allclose(got, expected)
    assert config.tariff.demand_charge_per_kw_month == 8320.0
    assert not config.grid.export_allowed


def test_sunday_list_is_every_sunday_of_2018():
    config = load_config(SITE)
    sundays = pd.date_range("2018-01-07", "2018-12-31", freq="7D").date
    assert all(d.weekday() == 6 for d in sundays)
    assert set(config.tariff.extra_holidays) == set(sundays)


def test_billing_months_are_korean_calendar_months():
    config = load_config(SITE)
    idx = pd.DatetimeIndex([local_slot("2018-01-31 23:45"), local_slot("2018-02-01 00:00")])
    assert list(tariff.billing_month(config, idx)) == ["2018-01", "2018-02"]


# ------------------------------------------------------------------ loader options (no data)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "series.csv"
    path.write_text("\ufeff" + textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


END_STAMPED = """\
    date,kwh
    01/01/2018 23:30,1
    01/01/2018 23:45,2
    01/01/2018 00:00,3
    02/01/2018 00:15,4
    """


def spec(path: Path, **kw) -> SeriesSpec:
    base = {"file": str(path), "time_column": "date", "value_column": "kwh",
            "timestamps": "end", "time_format": "%d/%m/%Y %H:%M", "time_zone": SEOUL}  # fmt: skip
    return SeriesSpec(**{**base, **kw})


def test_midnight_row_dated_the_previous_day_closes_that_day(tmp_path):
    path = write(tmp_path, END_STAMPED)
    grid = pd.date_range(local_slot("2018-01-01 23:15"), periods=4, freq="15min")
    s = load_series(spec(path, midnight="previous_day", regular=True), tmp_path, grid, "x")
    # the 00:00 row follows 23:45 and closes 2018-01-01 23:45-24:00 KST (14:45 UTC)
    assert s[pd.Timestamp("2018-01-01 14:45", tz="UTC")] == 3.0
    assert s[pd.Timestamp("2018-01-01 15:00", tz="UTC")] == 4.0
    assert s[pd.Timestamp("2018-01-01 14:15", tz="UTC")] == 1.0


def test_regular_names_the_disorder_when_the_midnight_rule_is_wrong(tmp_path):
    path = write(tmp_path, END_STAMPED)
    grid = pd.date_range(local_slot("2018-01-01 23:15"), periods=4, freq="15min")
    with pytest.raises(InputError, match="out of order at row 2"):
        load_series(spec(path, regular=True), tmp_path, grid, "x")


@pytest.mark.parametrize(("body", "what"), [
    ("01/01/2018 10:15,1\n01/01/2018 10:30,2\n01/01/2018 10:30,3\n01/01/2018 10:45,4\n",
     "duplicate at row 2"),
    ("01/01/2018 10:15,1\n01/01/2018 10:30,2\n01/01/2018 11:00,3\n01/01/2018 11:15,4\n",
     "gap at row 2"),
])  # fmt: skip
def test_regular_rejects_gaps_and_duplicates(tmp_path, body, what):
    path = write(tmp_path, "date,kwh\n" + body)
    grid = pd.date_range(local_slot("2018-01-01 10:00"), periods=4, freq="15min")
    with pytest.raises(InputError, match=what):
        load_series(spec(path, regular=True), tmp_path, grid, "x")


def test_time_zone_turns_wall_time_into_utc_and_refuses_missing_dst_hours(tmp_path):
    path = write(tmp_path, "date,kwh\n2018-03-25 01:00,1\n2018-03-25 01:15,2\n")
    grid = pd.date_range("2018-03-25 00:00", periods=2, freq="15min", tz="UTC")
    s = load_series(SeriesSpec(file=str(path), time_column="date", value_column="kwh",
                               time_zone="Europe/Berlin"), tmp_path, grid, "x")  # fmt: skip
    assert s.iloc[0] == 1.0 and s.iloc[1] == 2.0  # 01:00 CET = 00:00 UTC
    path = write(tmp_path, "date,kwh\n2018-03-25 02:30,1\n")  # does not exist in Berlin
    with pytest.raises(InputError, match="Europe/Berlin"):
        load_series(SeriesSpec(file=str(path), time_column="date", value_column="kwh",
                               time_zone="Europe/Berlin"), tmp_path, grid, "x")  # fmt: skip


def test_midnight_rule_needs_end_stamps_and_a_known_zone():
    with pytest.raises(ValueError, match="timestamps"):
        SeriesSpec(file="f", time_column="t", value_column="v", midnight="previous_day")
    with pytest.raises(ValueError, match="time zone"):
        SeriesSpec(file="f", time_column="t", value_column="v", time_zone="Asia/Gwangyang")


def test_scenario_file_rejects_a_bad_series_key(tmp_path):
    bad = SCENARIO.read_text(encoding="utf-8").replace('midnight = "previous_day"',
                                                       'midnight = "next_day"')  # fmt: skip
    path = tmp_path / "bad.toml"
    path.write_text(bad.replace("../korea-steel-plant.toml", str(SITE)), encoding="utf-8")
    with pytest.raises(ConfigError, match="midnight"):
        load_scenario(path)


# ------------------------------------------------------------------ the real year


@pytest.fixture(scope="module")
def scenario():
    """The loaded year (module scope, so set up before the function-scoped ``shared_data``:
    it skips by itself where the data are absent)."""
    if not (shared_data_dir() / STEEL_CSV).is_file():
        pytest.skip(f"real data {shared_data_dir() / STEEL_CSV} is absent")
    return load_scenario(SCENARIO)


@pytest.mark.shared_data
def test_year_loads_on_a_continuous_utc_grid_row_by_row(shared_data, scenario):
    rows = read_steel_rows(shared_data)
    data = scenario.data
    assert len(rows) == len(data) == 35_040
    assert str(data.index.tz) == "UTC"
    assert data.index[0] == local_slot("2018-01-01 00:00")
    assert data.index[-1] == local_slot("2018-12-31 23:45")
    steps = data.index[1:] - data.index[:-1]
    assert (steps == pd.Timedelta(minutes=15)).all() and data.index.is_unique
    kw = 4.0 * np.array([v for _, v in rows])
    # the file's rows are the periods in order: row k closes slot k
    np.testing.assert_allclose(data["p_load_kw"].to_numpy(), kw)
    assert data["p_load_kw"].mean() == pytest.approx(kw.mean()) == pytest.approx(110, abs=1)
    assert data["p_load_kw"].max() == pytest.approx(kw.max()) == pytest.approx(629, abs=1)
    assert kw.sum() / 4 / 1000 == pytest.approx(960, abs=1)  # MWh/a, as the data README says


@pytest.mark.shared_data
def test_load_is_in_korean_time_lunch_dip_at_noon(shared_data, scenario):
    load = scenario.data["p_load_kw"]
    local = load.index.tz_convert(SEOUL)
    workday = (local.day_of_week < 5) & ~pd.Index(local.date).isin(kr_public_holidays(2018))
    by_hour = load[workday].groupby(local[workday].hour).mean()
    assert by_hour[12] < 0.3 * by_hour[11] and by_hour[12] < 0.3 * by_hour[13]
    assert by_hour[3] < 0.2 * by_hour[10]


@pytest.mark.shared_data
def test_pv_follows_the_sun_in_korea_with_the_monthly_clearness(shared_data, scenario):
    pv = scenario.data["p_pv_kw"]
    local = pv.index.tz_convert(SEOUL)
    assert pv[(local.hour < 5) | (local.hour >= 20)].max() == 0.0
    noon = pv[local.hour == 12].groupby(local[local.hour == 12].month).mean()
    assert noon[7] < noon[5]  # the monsoon month's factor (0.55) against May's (0.75)
    assert 1200 < pv.sum() / 4 / 400 < 1450  # kWh/kWp a year


@pytest.mark.shared_data
def test_no_battery_january_bill_recomputed_with_kepco_prices(shared_data, scenario):
    from sim import backtest, sweep

    sc = sweep.first_days(scenario, 31)
    out = backtest.no_battery(sc)
    f = out.frame
    load, pv = sc.data["p_load_kw"].to_numpy(), sc.data["p_pv_kw"].to_numpy()
    imp = np.maximum(load - pv, 0.0)  # zero export: surplus PV is curtailed
    np.testing.assert_allclose(f["p_grid_kw"].to_numpy(), imp, atol=1e-9)
    public = kr_public_holidays(2018)
    price = np.array([kepco_price(t.to_pydatetime(), public)
                      for t in sc.data.index.tz_convert(SEOUL)])  # fmt: skip
    assert out.costs.energy_cost == pytest.approx((imp * price).sum() / 4)
    assert out.costs.demand_charge == pytest.approx(8320.0 * imp.max())
    assert out.costs.export_revenue == 0.0
    assert out.kg_co2 == pytest.approx(imp.sum() / 4 * 0.4594)
