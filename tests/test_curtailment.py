"""Tests of the PV available where the export limit curtailed it: the slot history's estimate
(``dispatch.forecast.curtailment``) and the live control's charge for hidden PV
(``dispatch.control.hidden_pv_kw``)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.control import ControlLimits, decide, export_at_limit
from dispatch.daemon.history import SlotHistory
from dispatch.forecast.curtailment import MIN_SLOTS, available_pv_kw
from dispatch.types import PLAN_COLUMNS, Plan, PlanCosts, Snapshot

TZ = "Asia/Seoul"
DAYS = pd.date_range("2018-07-02", periods=3 * 96, freq="15min", tz=TZ).tz_convert("UTC")


def clear_sky(index: pd.DatetimeIndex) -> pd.Series:
    """A bell of clear-sky PV (kW) between 06:00 and 18:00 site time, 400 kW at noon."""
    hour = index.tz_convert(TZ).hour + index.tz_convert(TZ).minute / 60.0
    return pd.Series(np.clip(400.0 * np.sin(np.pi * (hour - 6.0) / 12.0), 0.0, None), index=index)


def test_limited_slots_get_clear_sky_times_the_days_clearness() -> None:
    clear = clear_sky(DAYS)
    day = DAYS.tz_convert(TZ).day
    clearness = np.select([day == 2, day == 3], [0.8, 0.5], 0.6)
    truth = clear * clearness
    hour = DAYS.tz_convert(TZ).hour
    limited = pd.Series((hour >= 10) & (hour < 14), index=DAYS)  # noon curtailed every day
    measured = truth.where(~limited, truth * 0.3)
    out = available_pv_kw(measured, limited, clear, TZ)
    np.testing.assert_allclose(out.to_numpy(), truth.to_numpy(), atol=1e-9)


def test_a_day_limited_all_day_takes_the_previous_days_clearness() -> None:
    clear = clear_sky(DAYS)
    truth = clear * 0.7
    day = pd.Series(DAYS.tz_convert(TZ).day, index=DAYS)
    limited = (day == 3) & (clear > 0)  # the second day is curtailed whenever the sun is up
    measured = truth.where(~limited, truth * 0.1)
    out = available_pv_kw(measured, limited, clear, TZ)
    np.testing.assert_allclose(out.to_numpy(), truth.to_numpy(), atol=1e-9)


def test_without_a_known_clearness_the_measured_value_stands() -> None:
    clear = clear_sky(DAYS)
    limited = pd.Series(clear > 0, index=DAYS)  # no unlimited daylight slot at all
    measured = clear * 0.2
    out = available_pv_kw(measured, limited, clear, TZ)
    pd.testing.assert_series_equal(out, measured.astype(float))


@settings(max_examples=60, deadline=None)
@given(clearness=st.floats(0.05, 1.2), cut=st.floats(0.0, 1.0), seed=st.integers(0, 10_000))
def test_the_estimate_is_never_below_the_measurement_nor_changes_unlimited_slots(
    clearness: float, cut: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    clear = clear_sky(DAYS)
    measured = clear * clearness * rng.uniform(0.5, 1.5, len(DAYS))
    limited = pd.Series(rng.random(len(DAYS)) < cut, index=DAYS)
    out = available_pv_kw(measured, limited, clear, TZ)
    assert (out >= measured - 1e-9).all()
    assert (out[~limited] == measured[~limited]).all()


def test_min_slots_guard_is_what_the_fallback_counts() -> None:
    """A day with fewer than MIN_SLOTS unlimited daylight slots uses the day before's."""
    clear = clear_sky(DAYS)
    day = pd.Series(DAYS.tz_convert(TZ).day, index=DAYS)
    truth = clear * np.where(day == 2, 0.9, 0.4)
    daylight = np.flatnonzero((day == 3).to_numpy() & (clear > 40).to_numpy())
    limited = pd.Series((day == 3).to_numpy() & (clear > 0).to_numpy(), index=DAYS)
    limited.iloc[daylight[: MIN_SLOTS - 1]] = False  # too few slots to judge day 3 by
    out = available_pv_kw(truth.where(~limited, 0.0), limited, clear, TZ)
    sel = limited.to_numpy()
    np.testing.assert_allclose(out[sel].to_numpy(), (clear * 0.9)[sel].to_numpy(), atol=1e-9)


def test_slot_history_keeps_the_share_of_readings_at_the_limit() -> None:
    limits = LIMITS  # export limit 0 kW, tolerance 4 kW
    t0 = pd.Timestamp("2018-07-02T03:00", tz="UTC")
    rows = [
        {
            "time_ms": (t0 + pd.Timedelta(minutes=m)).value // 10**6,
            "p_load_kw": 50.0,
            "p_pv_kw": 150.0,
            "p_grid_kw": grid,
        }
        for m, grid in ((0, 3.0), (5, 20.0), (10, -0.5), (15, 30.0))
    ]
    h = SlotHistory.from_rows(rows, pd.Timedelta(minutes=15), pd.Timedelta(days=1), limits)
    np.testing.assert_allclose(h.series("pv_limited").to_numpy(), [2 / 3, 0.0])
    assert export_at_limit(3.9, limits) and not export_at_limit(4.1, limits)
    assert not export_at_limit(float("nan"), limits) and not export_at_limit(None, limits)


NOW = dt.datetime(2026, 7, 1, 4, 5, tzinfo=dt.UTC)
LIMITS = ControlLimits(
    import_max_kw=800.0,
    export_limit_kw=0.0,
    charge_max_kw=300.0,
    discharge_max_kw=300.0,
    limit_tol_kw=4.0,
    peak_target_kw=60.0,
)


def plan_with(p_batt_kw: float, p_pv_kw: float, p_curtail_kw: float = 0.0) -> Plan:
    idx = pd.date_range(NOW.replace(minute=0), periods=4, freq="15min")
    frame = pd.DataFrame(0.0, index=idx, columns=list(PLAN_COLUMNS))
    frame["p_batt_kw"], frame["p_pv_kw"] = p_batt_kw, p_pv_kw
    frame["p_curtail_kw"] = p_curtail_kw
    return Plan("optimal", frame, PlanCosts(0.0, 0.0, 0.0, 0.0, 0.0), 0.0, 0.0, 1.0, "test")


def reading(grid_kw: float, pv_kw: float, batt_kw: float, load_kw: float = 100.0) -> Snapshot:
    return Snapshot(
        time=NOW,
        p_grid_kw=grid_kw,
        p_pv_kw=pv_kw,
        p_batt_kw=batt_kw,
        p_load_kw=load_kw,
        soc_frac=0.5,
    )


def test_at_the_limit_the_battery_charges_the_pv_the_plan_expects() -> None:
    # 200 kW of PV available, 100 kW load, the battery charging 50: 50 kW curtailed, grid 0
    sp = decide(reading(0.0, 150.0, -50.0), plan_with(-20.0, 180.0, 20.0), LIMITS, NOW)
    assert sp.p_batt_kw == -100.0 and "curtailing" in sp.reason
    # importing 10 kW (not at the limit): the measured 40 kW surplus is all there is
    sp = decide(reading(10.0, 140.0, -50.0), plan_with(-20.0, 200.0), LIMITS, NOW)
    assert sp.p_batt_kw == -40.0 and "curtailing" not in sp.reason


def test_an_over_forecast_of_hidden_pv_never_imports_above_the_target() -> None:
    # the plan expects 600 kW of PV where 150 kW is all there is
    sp = decide(reading(0.0, 150.0, -50.0), plan_with(-20.0, 600.0), LIMITS, NOW)
    assert -50.0 - sp.p_batt_kw <= LIMITS.peak_target_kw + 1e-9  # import after = net - p
    no_target = dataclasses.replace(LIMITS, peak_target_kw=None)
    sp = decide(reading(0.0, 150.0, -50.0), plan_with(-20.0, 600.0), no_target, NOW)
    assert sp.p_batt_kw == -300.0  # the charge limit; import 250 kW, under the 800 kW cap


def test_clear_sky_cache_gives_the_pvlib_chain_on_any_cut_of_its_days() -> None:
    from dispatch.config import load_config
    from dispatch.forecast import pv, pv_weather
    from dispatch.pipeline.forecast import ClearSkyPV, available_pv_history
    from tests.conftest import CONFIGS

    cfg = load_config(CONFIGS / "suzhou-factory.toml")  # 18:00-04:00 UTC: night to noon there
    index = pd.date_range("2026-06-30T18:00", periods=40, freq=f"{cfg.plan.step_min}min", tz="UTC")
    weather = pv_weather.clearsky_weather(cfg.site, index)
    direct = pv.pv_ac_kw(cfg.site, cfg.pv, weather)["p_pv_kw"]
    assert direct.max() > 0 and direct.min() == 0  # night and day both in the cut
    cache = ClearSkyPV(cfg)
    np.testing.assert_allclose(cache.on(index).to_numpy(), direct.to_numpy(), atol=1e-9)
    np.testing.assert_allclose(cache.on(index[5:9]).to_numpy(), direct.iloc[5:9], atol=1e-9)
    measured = direct * 0.5
    none_limited = pd.Series(False, index=index)
    assert available_pv_history(cfg, measured, none_limited, cache) is measured
