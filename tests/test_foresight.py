"""Prices and intensity a replay's controller may know: day-ahead prices from their publication
on, the grid intensity never ahead; what is not known is the nearest known day's value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dispatch import tariff
from dispatch.types import ConfigError
from sim.foresight import Foresight
from sim.scenario import Scenario
from tests.factories import config

MARKET = {"timezone": "Europe/Berlin", "published": "13:00"}
ADDER = 0.12
GRID_CI = 450.0  # the configured factor, g/kWh


def day_ahead_config(market: dict | None = MARKET, horizon_h: int = 36):
    t = {"bands": {}, "rules": [], "day_ahead": {"mode": "replace", "adder_per_kwh": ADDER},
         "export": {"mode": "day_ahead"}}  # fmt: skip
    if market is not None:
        t["day_ahead_market"] = market
    return config(tariff=t, plan={"step_min": 60, "horizon_h": horizon_h},
                  carbon={"grid_ci_g_per_kwh": GRID_CI, "price_per_kg": 0.0})  # fmt: skip


def scenario(cfg, days: int = 4, weekend_extra: float = 0.0) -> Scenario:
    """Hourly from Wednesday 2026-07-01 00:00 Berlin (22:00 UTC the day before): the day-ahead
    price of hour h of day d is d + h / 100 (+ ``weekend_extra`` on Saturdays and Sundays),
    the intensity 100 d + h."""
    idx = pd.date_range("2026-06-30T22:00Z", periods=24 * days, freq="1h")
    d, h = np.divmod(np.arange(len(idx)), 24)
    weekend = np.isin((d + 2) % 7, (5, 6))
    data = pd.DataFrame({"p_load_kw": 1.0, "p_pv_kw": 0.0,
                         "day_ahead_per_kwh": d + h / 100 + weekend_extra * weekend,
                         "ci_g_per_kwh": 100.0 * d + h}, index=idx)  # fmt: skip
    return Scenario("toy", cfg, data, 0.5)


@pytest.mark.parametrize(
    ("now", "until"),
    [
        ("2026-07-01T10:59Z", "2026-07-01T22:00Z"),  # 12:59 CEST: tonight's midnight
        ("2026-07-01T11:00Z", "2026-07-02T22:00Z"),  # 13:00 CEST: tomorrow's is out
        ("2026-10-24T11:00Z", "2026-10-25T23:00Z"),  # the day that ends in CET
        ("2026-03-28T12:00Z", "2026-03-29T22:00Z"),  # the day that ends in CEST
    ],
)
def test_publication_times_in_market_time(now, until):
    got = tariff.day_ahead_published_until(day_ahead_config(), pd.DatetimeIndex([now]))
    assert got[0] == pd.Timestamp(until)


def test_without_a_market_section_the_prices_count_as_known():
    cfg = day_ahead_config(market=None)
    assert tariff.day_ahead_published_until(cfg, pd.DatetimeIndex(["2026-07-01T00:00Z"])) is None
    sc = scenario(cfg)
    imp, exp, _ = Foresight.of(sc, 36).window(5, 36)
    np.testing.assert_allclose(exp, sc.data["day_ahead_per_kwh"].to_numpy()[5:41])
    np.testing.assert_allclose(imp, exp + ADDER)


def test_unpublished_hours_see_the_last_published_day():
    sc = scenario(day_ahead_config())
    f = Foresight.of(sc, 36)
    da = sc.data["day_ahead_per_kwh"].to_numpy()
    i = 24 + 9  # 2 July 09:00 Berlin: prices known to the end of 2 July
    imp, exp, _ = f.window(i, 36)
    known = 24 - 9
    np.testing.assert_allclose(exp[:known], da[i : i + known])
    np.testing.assert_allclose(exp[known:], da[i + known - 24 : i + 36 - 24])  # 2 July's hours
    np.testing.assert_allclose(imp, exp + ADDER)
    i = 24 + 14  # 14:00: 3 July is out, 4 July's first hours are 3 July's again
    _, exp, _ = f.window(i, 36)
    known = 48 - 14
    np.testing.assert_allclose(exp[:known], da[i : i + known])
    np.testing.assert_allclose(exp[known:], da[i + known - 24 : i + 36 - 24])


def test_a_saturday_is_last_saturday_moved_by_the_change_of_level():
    sc = scenario(day_ahead_config(), days=16, weekend_extra=2.0)
    da = sc.data["day_ahead_per_kwh"].to_numpy()
    i = 9 * 24 + 9  # Friday 10 July 09:00 Berlin: known to the end of the Friday
    _, exp, _ = Foresight.of(sc, 36).window(i, 36)
    known = 24 - 9
    np.testing.assert_allclose(exp[:known], da[i : i + known])
    # Saturday 11 July: Saturday 4 July (3 + 2 + h/100) + Friday's level change over the
    # week (9 - 2): the truth of this toy, whose level rises by one a day
    np.testing.assert_allclose(exp[known:], da[i + known : i + 36])
    i = 7 * 24 + 9  # Wednesday 8 July 09:00: Thursday is Wednesday's prices again
    _, exp, _ = Foresight.of(sc, 36).window(i, 36)
    np.testing.assert_allclose(exp[known:], da[i + known - 24 : i + 36 - 24])


@pytest.mark.parametrize("i", [5, 30])
def test_the_intensity_ahead_is_yesterdays_and_a_constant_factor_is_known(i):
    sc = scenario(day_ahead_config())
    _, _, ci = Foresight.of(sc, 36).window(i, 36)
    lead = np.arange(36)
    yesterday = i + lead - 24 * (lead // 24 + 1)
    measured = sc.data["ci_g_per_kwh"].to_numpy()[np.maximum(yesterday, 0)]
    expected = np.where(yesterday >= 0, measured, GRID_CI)  # nothing measured a day back yet
    np.testing.assert_allclose(ci, expected)
    constant = Scenario("toy", sc.config, sc.data.drop(columns="ci_g_per_kwh"), 0.5)
    _, _, ci = Foresight.of(constant, 36).window(i, 36)
    np.testing.assert_allclose(ci, GRID_CI)


@pytest.mark.parametrize("i", [0, 9, 13, 23, 37, 50])
def test_what_is_not_yet_known_does_not_matter(i):
    sc = scenario(day_ahead_config())
    until = tariff.day_ahead_published_until(sc.config, sc.data.index[[i]])[0]
    changed = sc.data.copy()
    changed.loc[changed.index >= until, "day_ahead_per_kwh"] = 99.0
    changed.loc[changed.index >= changed.index[i], "ci_g_per_kwh"] = 99.0
    a = Foresight.of(sc, 36).window(i, 36)
    b = Foresight.of(Scenario("toy", sc.config, changed, 0.5), 36).window(i, 36)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-9)


def test_a_market_section_without_day_ahead_prices_is_refused():
    with pytest.raises(ConfigError, match="day_ahead_market"):
        config(tariff={"day_ahead_market": MARKET})


def test_a_tariff_not_affine_in_the_day_ahead_price_is_refused(monkeypatch):
    plain = tariff._import_series  # behind import_price_per_kwh and prices_per_kwh

    def squared(config, index, minutes, day_ahead):
        return plain(config, index, minutes, day_ahead) ** 2

    monkeypatch.setattr(tariff, "_import_series", squared)
    with pytest.raises(ValueError, match="not affine"):
        Foresight.of(scenario(day_ahead_config()), 36)
