"""Day-ahead prices in the daemon: the source, the cut at publication, the forecast beyond."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dispatch.config import load_config, parse_config
from dispatch.daemon import Clock, Daemon, Notifier
from dispatch.forecast.prices import extend_day_ahead
from dispatch.store import Store
from dispatch.types import ConfigError, InputError
from tests.test_daemon_jobs import plan_once

ROOT = Path(__file__).resolve().parents[1]
GERMANY = ROOT / "configs" / "germany-factory-dayahead.toml"
HOUR = pd.Timedelta(hours=1)


def hourly(start: str, days: int, value) -> pd.Series:
    index = pd.date_range(start, periods=24 * days, freq="h", tz="UTC")
    return pd.Series([value(t) for t in index], index=index, dtype=float)


# ------------------------------------------------------------------ the forecast rule


def test_a_weekday_beyond_the_published_prices_is_the_last_published_day() -> None:
    # published up to Tuesday 2026-06-02 (UTC market), less than two weeks: no weekly rule
    known = hourly("2026-05-30", 4, lambda t: t.day * 100 + t.hour)
    index = pd.date_range("2026-06-02 20:00", periods=30, freq="h", tz="UTC")
    out = extend_day_ahead(known, index, "UTC")
    assert out.iloc[:4].tolist() == [220.0, 221.0, 222.0, 223.0]  # published
    assert out.iloc[4:28].tolist() == [200.0 + h for h in range(24)]  # Wednesday: Tuesday's
    assert out.iloc[28:].tolist() == [200.0, 201.0]  # Thursday too


def test_a_saturday_is_last_week_s_moved_by_the_change_of_level() -> None:
    # published up to Friday 2026-06-05; each day's level is its day of month
    known = hourly("2026-05-20", 17, lambda t: t.day + t.hour / 100)
    index = pd.date_range("2026-06-06", periods=24, freq="h", tz="UTC")  # Saturday
    out = extend_day_ahead(known, index, "UTC")
    level = (5 + 0.115) - (29 + 0.115)  # Friday's mean minus the Friday before's
    expected = [30 + h / 100 + level for h in range(24)]  # Saturday 30 May, moved
    assert out.to_numpy() == pytest.approx(expected)


def test_the_market_time_zone_decides_which_day_is_a_saturday() -> None:
    # published up to Thursday 2026-06-04 (UTC); Friday in UTC is Saturday in Tokyo from
    # 15:00 UTC on, and a Saturday takes last week's prices moved by the change of level
    known = hourly("2026-05-20", 16, lambda t: t.day + t.hour / 100)
    index = pd.date_range("2026-06-05", periods=24, freq="h", tz="UTC")
    utc = extend_day_ahead(known, index, "UTC")
    tokyo = extend_day_ahead(known, index, "Asia/Tokyo")
    thursday = [4 + h / 100 for h in range(24)]
    level = 4 - 28  # Thursday's mean minus the Thursday before's
    assert utc.to_numpy() == pytest.approx(thursday)
    assert tokyo.iloc[:15].to_numpy() == pytest.approx(thursday[:15])
    assert tokyo.iloc[15:].to_numpy() == pytest.approx([29 + h / 100 + level
                                                        for h in range(15, 24)])


@pytest.mark.parametrize(
    ("known", "match"),
    [
        (pd.Series([], dtype=float, index=pd.DatetimeIndex([], tz="UTC")), "none published"),
        (hourly("2026-06-01", 1, lambda t: 1.0).iloc[3:], "incomplete"),
        (hourly("2026-06-01", 2, lambda t: 1.0).drop(pd.Timestamp("2026-06-02 05:00", tz="UTC")),
         "incomplete"),
        (hourly("2026-06-01", 2, lambda t: 1.0).set_axis(
            pd.date_range("2026-06-01 00:10", periods=48, freq="h", tz="UTC")), "grid"),
    ],
)
def test_unusable_published_prices_are_refused_by_name(known: pd.Series, match: str) -> None:
    index = pd.date_range("2026-06-03", periods=6, freq="h", tz="UTC")
    with pytest.raises(InputError, match=match):
        extend_day_ahead(known, index, "UTC")


# ------------------------------------------------------------------ config and daemon


def german(tmp_path: Path, prices: dict | None) -> dict:
    data = load_config(GERMANY).model_dump()
    data["store"] = {"path": str(tmp_path / "h.sqlite3")}
    data["http"] = {"enabled": False}
    data["forecast"] = {"load_kw": 4000.0}
    data["prices"] = prices or {"source": "none"}
    return data


def test_a_day_ahead_tariff_without_a_price_source_is_refused(tmp_path: Path) -> None:
    config = parse_config(german(tmp_path, None))
    with pytest.raises(ConfigError, match=r"prices.source = 'none'.*csv_path"):
        Daemon(config, Clock(dt.datetime(2026, 6, 3, tzinfo=dt.UTC), 1.0), notifier=Notifier(""))


def test_price_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"needs prices\.csv_path"):
        parse_config(german(tmp_path, {"source": "csv"}))
    suzhou = load_config(ROOT / "configs" / "suzhou-factory.toml").model_dump()
    suzhou["prices"] = {"source": "awattar"}
    with pytest.raises(ConfigError, match="uses no day-ahead price"):
        parse_config(suzhou)


def test_the_plan_sees_published_prices_and_forecasts_the_rest(tmp_path: Path) -> None:
    # Wednesday 3 June 2026, 06:00 in Berlin: prices are out up to Wednesday midnight (22:00
    # UTC); the file also holds later prices, which no plan may see before they are out
    now = dt.datetime(2026, 6, 3, 4, tzinfo=dt.UTC)
    out_until = pd.Timestamp("2026-06-03 22:00", tz="UTC")
    prices = hourly("2026-05-18", 24, lambda t: 0.05 + 0.001 * ((t.day_of_year * 24 + t.hour) % 97))
    prices[prices.index >= out_until] = 1.0
    csv = tmp_path / "prices.csv"
    pd.DataFrame({"time": prices.index.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                  "price_per_kwh": prices.to_numpy()}).to_csv(csv, index=False)  # fmt: skip
    config = parse_config(german(tmp_path, {"source": "csv", "csv_path": str(csv)}))
    d = Daemon(config, Clock(now, 1.0), notifier=Notifier(""))
    plan_once(d)
    assert d.plan_state is not None and d.plan_state.plan.status == "optimal"
    d.worker.shutdown()
    d.store_pool.shutdown()
    d.store.close()
    with Store(tmp_path / "h.sqlite3") as s:
        stored = s.load_forecast(s.rows("forecasts")[0]["id"]).frame
    price = stored["price_import_per_kwh"] - 0.12  # the config's adder
    hour = stored.index.floor("h")
    published = stored.index < out_until
    assert published.any() and (~published).any()
    assert price[published].to_numpy() == pytest.approx(prices.reindex(hour[published]).to_numpy())
    days_back = np.ceil((hour[~published] - out_until + HOUR) / pd.Timedelta(days=1))
    last_day = hour[~published] - pd.to_timedelta(days_back, unit="D")
    assert price[~published].to_numpy() == pytest.approx(prices.reindex(last_day).to_numpy())
    assert (price < 0.9).all()  # nothing after the publication leaked
