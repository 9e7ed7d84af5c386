"""The tariff: bands, time-weighted prices, day-ahead, export, billing months (day types are in
tests/test_calendar.py).

Expected values are worked out by hand from the configs (Asia/Shanghai is UTC+8 all year;
Europe/Berlin is UTC+1, UTC+2 from 2026-03-29 01:00Z to 2026-10-25 01:00Z).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch import tariff
from dispatch.config import load_config
from dispatch.types import ConfigError, InputError
from tests.conftest import CONFIGS
from tests.factories import config

SUZHOU = load_config(CONFIGS / "suzhou-factory.toml")
GERMANY = load_config(CONFIGS / "germany-factory-dayahead.toml")
PEAK, FLAT, VALLEY, DEEP, CRITICAL = 1.08, 0.64, 0.28, 0.22, 1.08 * 1.2


def idx(start: str, periods: int = 2, freq: str = "15min") -> pd.DatetimeIndex:
    """UTC period starts."""
    return pd.date_range(start, periods=periods, freq=freq, tz="UTC")


def price_at(cfg, start_utc: str, freq: str = "15min") -> float:
    return float(tariff.import_price_per_kwh(cfg, idx(start_utc, freq=freq)).iloc[0])


def band_at(cfg, start_utc: str) -> str:
    return str(tariff.band_per_slot(cfg, idx(start_utc)).iloc[0])


# --- Suzhou: bands, seasons, holidays, time zones -------------------------------------------


def test_weekday_morning_is_peak():
    # Tuesday 2026-11-03 01:00 UTC = 09:00 in Suzhou (autumn, no critical peak)
    assert band_at(SUZHOU, "2026-11-03T01:00") == "peak"
    assert price_at(SUZHOU, "2026-11-03T01:00") == PEAK


def test_utc_slots_map_to_local_hours():
    # the Suzhou day 2026-11-03 runs 2026-11-02 16:00Z .. 2026-11-03 16:00Z
    series = tariff.import_price_per_kwh(SUZHOU, idx("2026-11-02T16:00", 24, "h"))
    expected = [VALLEY] * 8 + [PEAK] * 3 + [FLAT] * 6 + [PEAK] * 5 + [FLAT] * 2
    assert series.tolist() == expected
    assert series.name == "price_import_per_kwh" and series.dtype == float
    assert series.index.equals(idx("2026-11-02T16:00", 24, "h"))


def test_summer_weekday_afternoon_is_critical_peak():
    # Wednesday 2026-07-01 06:30Z = 14:30 local, inside the summer 14:00-15:00 overlay
    assert band_at(SUZHOU, "2026-07-01T06:30") == "critical_peak"
    assert price_at(SUZHOU, "2026-07-01T06:30") == pytest.approx(1.296, abs=1e-12)
    # the same time in autumn is flat
    assert price_at(SUZHOU, "2026-09-01T06:30") == FLAT


def test_winter_critical_peak_and_season_wrapping_the_new_year():
    # 18:30 local on 2026-12-15 and on 2027-01-15 (winter = 12-01 .. 01-31)
    for day in ("2026-12-15", "2027-01-15"):
        assert band_at(SUZHOU, f"{day}T10:30") == "critical_peak"
    assert band_at(SUZHOU, "2027-02-15T10:30") == "peak"


def test_public_holiday_midday_is_deep_valley():
    # 2026-10-01 (National Day) 12:00 local = 04:00Z
    assert band_at(SUZHOU, "2026-10-01T04:00") == "deep_valley"
    assert price_at(SUZHOU, "2026-10-01T04:00") == DEEP
    # outside 11:00-15:00 the base schedule holds: 09:00 local is still peak
    assert price_at(SUZHOU, "2026-10-01T01:00") == PEAK
    # the day before, a workday, is flat at noon
    assert price_at(SUZHOU, "2026-09-30T04:00") == FLAT


WEEKEND_TARIFF = {
    "bands": {"work": 0.3, "rest": 0.1, "off": 0.05},
    "rules": [
        {"band": "work", "start": "00:00", "end": "24:00"},
        {"band": "rest", "start": "00:00", "end": "24:00", "day_types": ["weekend"]},
        {"band": "off", "start": "00:00", "end": "24:00", "day_types": ["holiday"]},
    ],
    "makeup_workdays": ["2026-02-14", "2026-05-01"],
    "extra_holidays": ["2026-05-01", "2026-06-03"],
}


def test_weekend_makeup_and_extra_holidays_in_a_built_config():
    cfg = config(tariff=WEEKEND_TARIFF)  # UTC site, no country
    starts = ["2026-02-13", "2026-02-14", "2026-02-15", "2026-05-01", "2026-06-03"]
    got = [price_at(cfg, f"{d}T12:00") for d in starts]
    # Fri work; Sat 02-14 makeup workday; Sun rest; 05-01 in both lists -> makeup wins; holiday
    assert got == [0.3, 0.3, 0.1, 0.3, 0.05]  # day types: tests/test_calendar.py


def test_custom_weekend_days():
    cfg = config(tariff={**WEEKEND_TARIFF, "weekend_days": [4]})  # Friday only
    assert price_at(cfg, "2026-02-13T12:00") == 0.1
    assert price_at(cfg, "2026-02-15T12:00") == 0.3


def test_unknown_holiday_country_is_a_config_error():
    cfg = config(site={"country": "XX"})
    with pytest.raises(ConfigError, match="'XX'"):
        tariff.import_price_per_kwh(cfg, idx("2026-01-01T00:00"))


# --- time-weighted prices at straddling slots -------------------------------------------------


def test_slot_straddling_a_band_change_gets_the_time_weighted_mean():
    # 60-min slot from 10:45 local (02:45Z): 15 min peak + 45 min flat
    assert price_at(SUZHOU, "2026-11-03T02:45", "60min") == pytest.approx(
        (15 * PEAK + 45 * FLAT) / 60, abs=1e-12
    )
    # 30-min slot 16:30-17:00 is all flat, 16:45-17:15 half and half
    assert price_at(SUZHOU, "2026-11-03T08:30", "30min") == FLAT
    assert price_at(SUZHOU, "2026-11-03T08:45", "30min") == pytest.approx((FLAT + PEAK) / 2)


def test_slot_straddling_midnight_into_a_holiday():
    # 2-hour slot from 2026-09-30 23:00 local (15:00Z): 1 h flat (workday), 1 h valley
    assert price_at(SUZHOU, "2026-09-30T15:00", "120min") == pytest.approx((FLAT + VALLEY) / 2)


# --- DST in Europe/Berlin ---------------------------------------------------------------------

BERLIN = config(
    site={"timezone": "Europe/Berlin"},
    tariff={
        "bands": {"night": 0.1, "two": 0.5, "day": 0.3},
        "rules": [
            {"band": "day", "start": "00:00", "end": "24:00"},
            {"band": "night", "start": "00:00", "end": "02:00"},
            {"band": "two", "start": "02:00", "end": "03:00"},
        ],
    },
)


def test_dst_spring_day_has_23_hours_and_no_two_o_clock():
    # local 2026-03-29 00:00 CET = 03-28 23:00Z; the next midnight (CEST) = 03-29 22:00Z
    bands = tariff.band_per_slot(BERLIN, idx("2026-03-28T23:00", 24, "h")).tolist()
    assert bands == ["night", "night"] + ["day"] * 21 + ["night"]


def test_dst_autumn_day_has_25_hours_and_two_two_o_clocks():
    # local 2026-10-25 00:00 CEST = 10-24 22:00Z; 02:00-03:00 happens at 00:00Z and 01:00Z
    bands = tariff.band_per_slot(BERLIN, idx("2026-10-24T22:00", 26, "h")).tolist()
    assert bands == ["night", "night", "two", "two"] + ["day"] * 21 + ["night"]
    quarter = tariff.band_per_slot(BERLIN, idx("2026-10-24T22:00", 100, "15min"))
    assert (quarter == "two").sum() == 8


def test_slots_straddling_a_dst_change_weigh_real_minutes():
    # 00:00Z-02:00Z on 10-25 is 02:00-02:59 CEST then 02:00-02:59 CET: all "two"
    assert price_at(BERLIN, "2026-10-25T00:00", "120min") == 0.5
    # 00:00Z-02:00Z on 03-29 is 01:00-01:59 CET then 03:00-03:59 CEST: night, then day
    assert price_at(BERLIN, "2026-03-29T00:00", "120min") == pytest.approx((0.1 + 0.3) / 2)


# --- billing months ---------------------------------------------------------------------------


def test_billing_month_in_site_time():
    months = tariff.billing_month(SUZHOU, idx("2026-01-31T15:00", 2, "h"))
    assert months.tolist() == ["2026-01", "2026-02"]  # 16:00Z = 02-01 00:00 in Suzhou
    assert months.name == "billing_month"


def test_billing_month_in_utc():
    stamps = idx("2026-01-31T22:00", 3, "h")
    # 23:00Z is 00:00 on 02-01 in Berlin, where the German site bills
    assert tariff.billing_month(GERMANY, stamps).tolist() == ["2026-01", "2026-02", "2026-02"]
    tariff_utc = GERMANY.tariff.model_copy(update={"demand_billing_timezone": "UTC"})
    utc = GERMANY.model_copy(update={"tariff": tariff_utc})
    assert tariff.billing_month(utc, stamps).tolist() == ["2026-01", "2026-01", "2026-02"]


_ZONES = ("UTC", "Europe/Berlin", "Asia/Shanghai", "America/Santiago", "Asia/Tehran",
          "Pacific/Apia", "Australia/Lord_Howe", "America/St_Johns")


@settings(max_examples=60, deadline=None)
@given(st.integers(-40 * 365 * 24, 80 * 365 * 24), st.integers(1, 400),
       st.sampled_from(("15min", "h", "D", "7D")), st.sampled_from(_ZONES),
       st.sampled_from(("s", "ms", "us", "ns")))
def test_month_labels_are_the_local_strftime_month(hours, n, freq, zone, unit):
    start = pd.Timestamp("2000-01-01", tz="UTC") + pd.Timedelta(hours=hours)
    stamps = pd.date_range(start, periods=n, freq=freq).as_unit(unit)
    expected = stamps.tz_convert(zone).strftime("%Y-%m").tolist()
    assert tariff.month_labels(stamps, zone).tolist() == expected


def test_month_labels_kept_for_an_index_are_never_another_indexs():
    a = idx("2026-01-31T22:00", 3, "h")
    b = idx("2026-01-31T21:00", 3, "h")  # the same length, one hour earlier
    assert tariff.month_labels(a, "Europe/Berlin").tolist() == ["2026-01", "2026-02", "2026-02"]
    assert tariff.month_labels(b, "Europe/Berlin").tolist() == ["2026-01", "2026-01", "2026-02"]
    assert tariff.month_labels(a, "UTC").tolist() == ["2026-01", "2026-01", "2026-02"]
    assert tariff.month_labels(a.as_unit("s"), "UTC").tolist() == ["2026-01", "2026-01", "2026-02"]
    labels = tariff.month_labels(a, "Europe/Berlin")
    labels[:] = "spoilt"  # a caller's copy: what is kept stays right
    assert tariff.month_labels(a, "Europe/Berlin").tolist() == ["2026-01", "2026-02", "2026-02"]
    for hours in range(20):  # more indexes than are kept: the first is made again, right
        tariff.month_labels(idx("2026-03-01T00:00", 2 + hours, "h"), "UTC")
    assert tariff.month_labels(a, "Europe/Berlin").tolist() == ["2026-01", "2026-02", "2026-02"]


def test_month_coverage_counts_local_months_with_their_dst_hour():
    # Berlin's local 2018: every month whole, March one hour short and October one long
    year = pd.date_range("2017-12-31T23:00Z", "2018-12-31T23:00Z", freq="15min", inclusive="left")
    assert tariff.month_coverage(GERMANY, year) == {f"2018-{m:02d}": 1.0 for m in range(1, 13)}
    # the same local year billed in UTC months: a first "month" of one hour
    tariff_utc = GERMANY.tariff.model_copy(update={"demand_billing_timezone": "UTC"})
    utc = GERMANY.model_copy(update={"tariff": tariff_utc})
    cover = tariff.month_coverage(utc, year)
    assert cover["2017-12"] == pytest.approx(1 / (31 * 24))
    assert cover["2018-12"] == pytest.approx(1 - 1 / (31 * 24))
    week = pd.date_range("2018-06-28T22:00Z", periods=7 * 96, freq="15min")
    assert tariff.month_coverage(GERMANY, week) == pytest.approx({"2018-06": 2 / 30,
                                                                  "2018-07": 5 / 31})


# --- day-ahead and export -------------------------------------------------------------------

DA_INDEX = idx("2026-06-01T00:00", 4, "15min")
DA = pd.Series([0.05, -0.02, 0.10, 0.0], index=DA_INDEX)


def test_day_ahead_replace():
    got = tariff.import_price_per_kwh(GERMANY, DA_INDEX, DA)
    assert got.tolist() == pytest.approx([0.17, 0.10, 0.22, 0.12], abs=1e-12)


def test_day_ahead_add_on_top_of_bands():
    cfg = config(tariff={"day_ahead": {"mode": "add", "multiplier": 2.0, "adder_per_kwh": 0.01}})
    got = tariff.import_price_per_kwh(cfg, DA_INDEX, DA)  # flat band 0.1
    assert got.tolist() == pytest.approx([0.21, 0.07, 0.31, 0.11], abs=1e-12)


def test_day_ahead_series_in_another_zone_is_aligned_by_instant():
    shifted = DA.copy()
    shifted.index = DA_INDEX.tz_convert("Europe/Berlin")
    assert tariff.import_price_per_kwh(GERMANY, DA_INDEX, shifted).tolist() == pytest.approx(
        [0.17, 0.10, 0.22, 0.12], abs=1e-12
    )


def test_export_none_is_zero():
    got = tariff.export_price_per_kwh(SUZHOU, DA_INDEX)
    assert got.tolist() == [0.0] * 4 and got.name == "price_export_per_kwh"


def test_export_fixed():
    cfg = config(tariff={"export": {"mode": "fixed", "price_per_kwh": 0.05}})
    assert tariff.export_price_per_kwh(cfg, DA_INDEX).tolist() == [0.05] * 4


def test_export_by_band_is_time_weighted():
    cfg = config(
        tariff={
            "bands": {"low": 0.1, "high": 0.4},
            "rules": [
                {"band": "low", "start": "00:00", "end": "24:00"},
                {"band": "high", "start": "01:00", "end": "02:00"},
            ],
            "export": {"mode": "band", "band_prices_per_kwh": {"low": 0.02, "high": 0.08}},
        }
    )
    got = tariff.export_price_per_kwh(cfg, idx("2026-06-01T00:00", 3, "40min"))
    # 00:00-00:40 low; 00:40-01:20 is 20 low + 20 high; 01:20-02:00 high
    assert got.tolist() == pytest.approx([0.02, 0.05, 0.08], abs=1e-12)


def test_export_day_ahead():
    assert tariff.export_price_per_kwh(GERMANY, DA_INDEX, DA).tolist() == DA.tolist()
    cfg = config(
        tariff={
            "export": {
                "mode": "day_ahead",
                "day_ahead_multiplier": 0.5,
                "day_ahead_adder_per_kwh": -0.01,
            }
        }
    )
    got = tariff.export_price_per_kwh(cfg, DA_INDEX, DA)
    assert got.tolist() == pytest.approx([0.015, -0.02, 0.04, -0.01], abs=1e-12)
    # the TOU import ignores the series that the export needs
    assert tariff.import_price_per_kwh(cfg, DA_INDEX, DA).tolist() == [0.1] * 4


def test_missing_day_ahead_series_is_an_input_error():
    with pytest.raises(InputError, match=r"tariff\.day_ahead needs a day-ahead price series"):
        tariff.import_price_per_kwh(GERMANY, DA_INDEX)
    with pytest.raises(InputError, match=r"export\.mode = 'day_ahead' needs a day-ahead"):
        tariff.export_price_per_kwh(GERMANY, DA_INDEX)


def test_day_ahead_series_missing_a_slot_names_it():
    with pytest.raises(InputError, match=r"no value for slot 2026-06-01T00:30:00\+00:00"):
        tariff.import_price_per_kwh(GERMANY, DA_INDEX, DA.drop(DA_INDEX[2]))
    hourly = pd.Series([0.1, 0.1], index=idx("2026-06-01T00:00", 2, "h"))
    with pytest.raises(InputError, match=r"no value for slot 2026-06-01T00:15:00\+00:00"):
        tariff.import_price_per_kwh(GERMANY, DA_INDEX, hourly)


def test_day_ahead_series_with_a_nan_names_the_slot():
    bad = DA.copy()
    bad.iloc[1] = np.nan
    with pytest.raises(InputError, match=r"2026-06-01T00:15:00\+00:00 is not a finite number"):
        tariff.import_price_per_kwh(GERMANY, DA_INDEX, bad)


def test_day_ahead_series_with_naive_stamps_is_refused():
    naive = pd.Series(DA.to_numpy(), index=DA_INDEX.tz_localize(None))
    with pytest.raises(InputError, match="tz-aware"):
        tariff.import_price_per_kwh(GERMANY, DA_INDEX, naive)


def test_unused_day_ahead_series_is_refused():
    with pytest.raises(InputError, match="uses no day-ahead price"):
        tariff.import_price_per_kwh(SUZHOU, DA_INDEX, DA)


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (pd.date_range("2026-01-01", periods=3, freq="h"), "tz-aware UTC"),
        (idx("2026-01-01T00:00", 1), "at least two"),
        (idx("2026-01-01T00:00", 3, "90s"), "not a whole number of minutes"),
    ],
)
def test_bad_index_is_an_input_error(index, message):
    with pytest.raises(InputError, match=message):
        tariff.import_price_per_kwh(SUZHOU, index)


def test_sub_minute_steps_take_the_price_at_the_start():
    got = tariff.import_price_per_kwh(SUZHOU, idx("2026-11-03T02:59:30", 2, "30s"))
    assert got.tolist() == [PEAK, FLAT]  # 10:59:30 and 11:00:00 local


# --- properties -------------------------------------------------------------------------------

TIMEZONES = ["UTC", "Asia/Shanghai", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]


@st.composite
def tariffs(draw):
    n = draw(st.integers(1, 4))
    prices = draw(st.lists(st.floats(-0.5, 2.0, allow_nan=False), min_size=n, max_size=n))
    names = [f"b{i}" for i in range(n)]
    rules = [{"band": names[0], "start": "00:00", "end": "24:00"}]
    for _ in range(draw(st.integers(0, 4))):
        a, b = draw(st.integers(0, 1439)), draw(st.integers(0, 1439))
        rules.append(
            {
                "band": draw(st.sampled_from(names)),
                "start": f"{a // 60:02d}:{a % 60:02d}",
                "end": f"{b // 60:02d}:{b % 60:02d}",
                "day_types": draw(st.sampled_from([[], ["workday"], ["weekend"]])),
            }
        )
    site = {"timezone": draw(st.sampled_from(TIMEZONES))}
    bands = dict(zip(names, prices, strict=True))
    return config(site=site, tariff={"bands": bands, "rules": rules})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cfg=tariffs(),
    step_min=st.sampled_from([1, 5, 15, 30, 60, 90, 180]),
    start_min=st.integers(0, 366 * 1440),
)
def test_prices_are_time_weighted_band_prices(cfg, step_min, start_min):
    start = pd.Timestamp("2026-01-01T00:00Z") + pd.Timedelta(minutes=start_min)
    index = pd.date_range(start, periods=8, freq=f"{step_min}min")
    got = tariff.import_price_per_kwh(cfg, index).to_numpy()
    band_price = cfg.tariff.band_prices_per_kwh()
    lo, hi = min(band_price.values()), max(band_price.values())
    assert ((got >= lo - 1e-12) & (got <= hi + 1e-12)).all()
    if lo >= 0:
        assert (got >= 0).all()
    # oracle: the mean of the 1-minute prices, each the price of the band in force
    minutes = pd.date_range(start, periods=8 * step_min, freq="1min")
    fine = tariff.import_price_per_kwh(cfg, minutes).to_numpy()
    named = tariff.band_per_slot(cfg, minutes).map(band_price).to_numpy()
    assert np.array_equal(fine, named)
    np.testing.assert_allclose(got, fine.reshape(8, step_min).mean(axis=1), rtol=0, atol=1e-12)


def _answer(fn):
    try:
        return fn()
    except InputError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("cfg_name", ["germany", "suzhou", "export_only", "add"])
@pytest.mark.parametrize("series", ["none", "good", "nan", "short", "naive"])
def test_both_prices_at_once_answer_as_each_alone(cfg_name, series):
    """Import and export priced from one check of the index and day-ahead series: the same
    series, or the error the import (then the export) alone raises."""
    cfgs = {
        "germany": GERMANY,
        "suzhou": SUZHOU,
        "export_only": config(tariff={"export": {"mode": "day_ahead",
                                                 "day_ahead_multiplier": 0.5}}),
        "add": config(tariff={"day_ahead": {"mode": "add", "multiplier": 0.8}}),
    }
    cfg = cfgs[cfg_name]
    bad = DA.copy()
    bad.iloc[1] = np.nan
    given = {"none": None, "good": DA, "nan": bad, "short": DA.drop(DA_INDEX[2]),
             "naive": pd.Series(DA.to_numpy(), index=DA_INDEX.tz_localize(None))}[series]
    alone = _answer(lambda: (tariff.import_price_per_kwh(cfg, DA_INDEX, given),
                             tariff.export_price_per_kwh(cfg, DA_INDEX, given)))
    both = _answer(lambda: tariff.prices_per_kwh(cfg, DA_INDEX, given))
    if isinstance(alone[0], str):
        assert both == alone
    else:
        for got, expected in zip(both, alone, strict=True):
            pd.testing.assert_series_equal(got, expected, check_exact=True)
