"""Robust dispatch: the peak reserve planned for the load that may come, the shared peak target
held by the live guard, and the margins learnt from past forecast errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.calendar import FactoryCalendar
from dispatch.control import ControlLimits, guard_setpoint, import_target_kw
from dispatch.forecast.uncertainty import ForecastErrors
from dispatch.optimise import DispatchModel
from dispatch.optimise.risk import (
    Recharge,
    exceedance_ahead_kwh,
    paths_reserve_floor_kwh,
    peak_margin_kw,
    peak_reserve_floor_kwh,
    quantile_at,
)
from dispatch.types import ConfigError, Forecast, InputError
from tests.factories import config, forecast

# One hour slots; 10 kWh / 10 kW lossless battery, full, wear 0.2 per kWh of throughput; the
# month's peak so far is 10 kW and each kW above it costs 1.0; the first hour's energy is dear
# (0.5, worth selling), the rest cheap (0.1, not worth the wear).
PRICES = [0.5, 0.1, 0.1, 0.1]
EXPECTED_LOAD = [10.0, 10.0, 10.0, 10.0]
ACTUAL_LOAD = [10.0, 10.0, 20.0, 10.0]  # an hour the point forecast did not see
LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9)


def site(risk: float):
    return config(
        tariff={"demand_charge_per_kw_month": 1.0},
        battery={"wear_cost_per_kwh": 0.2},
        plan={"step_min": 60, "horizon_h": 4, "terminal_soc": "free", "peak_risk_quantile": risk,
              "peak_reserve_recharge": False},
    )


def toy_forecast(spread_kw_per_level: float = 25.0) -> Forecast:
    """Expected load flat at 10 kW; in the third hour the load's quantile at level l is
    10 + spread * (l - 0.5) kW (20 kW at 0.9 with the default spread)."""
    fc = forecast(EXPECTED_LOAD, price=PRICES)
    q = np.tile(np.asarray(EXPECTED_LOAD)[:, None], (1, len(LEVELS)))
    q[2] += spread_kw_per_level * (np.asarray(LEVELS) - 0.5)
    quantiles = pd.DataFrame(q, index=fc.frame.index, columns=pd.Index(LEVELS, dtype=float))
    return Forecast(fc.frame, load_quantiles_kw=quantiles)


def plan_for(risk: float, spread: float = 25.0):
    cfg = site(risk)
    model = DispatchModel(cfg, n_slots=4)
    return cfg, model.solve(toy_forecast(spread), soc_frac=1.0, peak_so_far_kw=10.0)


def execute(cfg, plan, load_kw: list[float]) -> np.ndarray:
    """Run a plan against the actual load with the daemon's live guard holding the plan's
    peak target; returns the realised import per slot (kW). Lossless, one-hour slots."""
    f = plan.frame
    limits = ControlLimits.from_config(cfg, float(f["peak_target_kw"].iloc[0]))
    energy = cfg.battery.energy_kwh
    imports = []
    for i, load in enumerate(load_kw):
        planned = float(f["p_batt_kw"].iloc[i])
        target = import_target_kw(limits, float(f["p_import_kw"].iloc[i]))
        p, _ = guard_setpoint(planned, load, target, limits.export_limit_kw)
        p = min(p, energy, cfg.battery.discharge_max_kw)  # what the battery holds
        p = max(p, -(cfg.battery.energy_kwh - energy), -cfg.battery.charge_max_kw)
        energy -= p
        imports.append(load - p)
    return np.asarray(imports)


def test_point_forecast_loses_the_peak_and_the_robust_plan_keeps_it():
    cfg, point = plan_for(0.5)
    _, robust = plan_for(0.9)
    # the point plan sells the whole battery in the dear hour; the guard has nothing left
    np.testing.assert_allclose(point.frame["p_batt_kw"], [10, 0, 0, 0], atol=1e-7)
    np.testing.assert_allclose(execute(cfg, point, ACTUAL_LOAD), [0, 10, 20, 10], atol=1e-7)
    # the robust plan holds the 10 kWh back for the hour that may reach 20 kW (each kWh sold
    # earns 0.5 - 0.2; each kWh short of the reserve costs 1.0 per slot-hour, two hours) and
    # the guard spends it there
    np.testing.assert_allclose(robust.frame["p_batt_kw"], [0, 0, 0, 0], atol=1e-7)
    np.testing.assert_allclose(robust.frame["peak_target_kw"], 10.0, atol=1e-7)
    np.testing.assert_allclose(robust.frame["peak_reserve_kwh"], [10, 10, 0, 0], atol=1e-7)
    np.testing.assert_allclose(execute(cfg, robust, ACTUAL_LOAD), [10, 10, 10, 10], atol=1e-7)

    def bill(imports: np.ndarray) -> float:  # energy plus the demand above the 10 kW so far
        return float(np.dot(PRICES, imports)) + 1.0 * max(imports.max() - 10.0, 0.0)

    # point: 0.5*0 + 0.1*40 + 10 = 14.0; robust: 0.5*10 + 0.1*30 = 8.0
    assert bill(execute(cfg, point, ACTUAL_LOAD)) == pytest.approx(14.0)
    assert bill(execute(cfg, robust, ACTUAL_LOAD)) == pytest.approx(8.0)


@pytest.mark.parametrize("risk", [0.9, 0.8, 0.7, 0.6, 0.5])
def test_reserve_shrinks_to_zero_as_the_risk_level_goes_to_the_median(risk):
    _, plan = plan_for(risk)
    margin_kwh = 25.0 * (risk - 0.5)  # third hour's quantile above the expectation, for 1 h
    assert plan.frame["peak_reserve_kwh"].max() == pytest.approx(margin_kwh, abs=1e-7)
    # what is not held back is sold in the dear hour
    assert plan.frame["p_batt_kw"].iloc[0] == pytest.approx(10.0 - margin_kwh, abs=1e-7)


def test_a_reserve_beyond_the_battery_holds_all_it_can_and_shows_the_need():
    # a 40 kW swing needs 40 kWh; the 10 kWh battery keeps all it has for it
    _, plan = plan_for(0.9, spread=100.0)
    f = plan.frame
    assert plan.status == "optimal"
    np.testing.assert_allclose(f["p_batt_kw"], 0.0, atol=1e-7)
    assert f["peak_reserve_kwh"].max() == pytest.approx(40.0)


def test_the_plan_stores_its_target_and_reserve(tmp_path):
    from dispatch.store import Store

    _, plan = plan_for(0.9)
    with Store(tmp_path / "s.sqlite3") as store:
        plan_id = store.write_plan(plan, pd.Timestamp("2026-07-01", tz="UTC").to_pydatetime())
        back = store.load_plan(plan_id)
    np.testing.assert_allclose(back.frame["peak_reserve_kwh"], [10, 10, 0, 0], atol=1e-7)
    np.testing.assert_allclose(back.frame["peak_target_kw"], 10.0, atol=1e-7)



def test_load_paths_go_from_the_forecast_through_a_csv_to_the_plan(tmp_path):
    from dispatch import pipeline, plan_io

    cfg = config(
        tariff={"demand_charge_per_kw_month": 1.0},
        plan={"step_min": 60, "horizon_h": 24, "terminal_soc": "free", "peak_risk_quantile": 0.9,
              "peak_reserve_sizing": "scenarios"},
    )  # fmt: skip
    idx = pd.date_range("2024-01-08", "2024-03-25", freq="h", tz="UTC", inclusive="left")
    shift = (idx.day_of_week < 5) & (idx.hour >= 8) & (idx.hour < 17)
    noise = np.random.default_rng(3).normal(0.0, 1.0, len(idx))
    hist = pd.Series(np.maximum(5.0 + 10.0 * shift + noise, 0.0), index=idx)
    index = pd.date_range("2024-03-25", periods=24, freq="h", tz="UTC")  # a Monday
    frame = pipeline.forecast_frame(cfg, index, load_history_kw=hist)
    plan_io.write_frame(frame, tmp_path / "forecast.csv")
    back = plan_io.read_plan_inputs(tmp_path / "forecast.csv", cfg)
    fc = pipeline.complete_forecast(cfg, back)
    # one path per working day among the 28 before (the forecasts made from the history,
    # issued every hour, include one at 00:00 on each of those days)
    assert fc.load_scenarios_kw is not None and fc.load_scenarios_kw.shape == (24, 20)
    assert fc.load_quantiles_kw is not None and list(fc.load_quantiles_kw.columns) == [0.9]
    plan = pipeline.plan(DispatchModel(cfg, n_slots=24), fc, 1.0, 0.0)
    assert plan.status == "optimal" and plan.frame["peak_reserve_kwh"].max() > 0.0


# ------------------------------------------------------------------ margins from quantiles
def test_quantile_between_levels_is_linear_and_outside_is_refused():
    idx = pd.date_range("2026-07-01", periods=2, freq="h", tz="UTC")
    q = pd.DataFrame([[1.0, 3.0], [2.0, 6.0]], index=idx, columns=pd.Index([0.5, 0.9]))
    np.testing.assert_allclose(quantile_at(q, 0.8, "load"), [2.5, 5.0])
    with pytest.raises(InputError, match=r"peak_risk_quantile.*0\.95.*\[0\.5, 0\.9\]"):
        quantile_at(q, 0.95, "load")


def test_margin_adds_load_above_and_pv_below_their_expectation():
    fc = forecast([10, 10], pv_kw=[5, 5])
    idx = fc.frame.index
    load_q = pd.DataFrame([[10, 14], [10, 9]], index=idx, columns=pd.Index([0.5, 0.9]))
    pv_q = pd.DataFrame([[2, 5], [5, 5]], index=idx, columns=pd.Index([0.1, 0.5]))
    full = Forecast(fc.frame, load_quantiles_kw=load_q, pv_quantiles_kw=pv_q)
    # slot 0: load 4 above, PV 3 below; slot 1: a quantile below the point adds nothing
    np.testing.assert_allclose(peak_margin_kw(full, 0.9), [7.0, 0.0])
    assert peak_margin_kw(full, 0.5) is None  # the median: no reserve
    assert peak_margin_kw(fc, 0.9) is None  # no quantiles: no reserve


def test_floor_and_reserve_over_the_window_ahead():
    net, margin = np.array([10.0, 10.0, 12.0, 10.0]), np.array([2.0, 0.0, 4.0, 0.0])
    target = np.full(4, 11.0)
    floor, reserve = peak_reserve_floor_kwh(net, margin, target, 0.5, 0.8, 2)
    # high net load 12, 10, 16, 10 over 11: 1 and 5 kW for 0.5 h from storage at 0.8, i.e.
    # 0.625 and 3.125 kWh; each slot counts the next two. The expected load alone needs
    # 0.625 kWh in slot 2.
    np.testing.assert_allclose(floor, [3.125, 3.125, 0.0, 0.0])
    np.testing.assert_allclose(reserve, [2.5, 2.5, 0.0, 0.0])
    np.testing.assert_allclose(exceedance_ahead_kwh(net + margin, target, 0.5, 0.8, 1),
                               [0.0, 3.125, 0.0, 0.0])  # fmt: skip


def test_floor_from_paths_keeps_each_path_together():
    net = np.array([10.0, 10.0, 10.0, 10.0])
    paths = np.array([
        [10.0, 14.0, 10.0, 10.0],  # one slot 4 kW over the 10 kW target
        [10.0, 10.0, 10.0, 16.0],  # another slot 6 kW over it
        [10.0, 10.0, 10.0, 10.0],
    ])  # fmt: skip
    target = np.full(4, 10.0)
    floor, reserve = paths_reserve_floor_kwh(net, paths, 0.99, target, 1.0, 1.0, 4)
    # the worst path needs 6 kWh after slot 0 (not 4 + 6: no path has both); per slot, the
    # worst path's need over the slots after it
    np.testing.assert_allclose(floor, [6.0, 6.0, 6.0, 0.0])
    np.testing.assert_allclose(reserve, floor)  # the expected load needs nothing
    floor, _ = paths_reserve_floor_kwh(net, paths, 0.5, target, 1.0, 1.0, 4)
    np.testing.assert_allclose(floor, [4.0, 0.0, 0.0, 0.0])  # the middle path of three


@pytest.mark.parametrize("risk", [0.9, 0.7, 0.5])
def test_reserve_sized_on_paths_goes_to_zero_at_the_median(risk):
    cfg = config(
        tariff={"demand_charge_per_kw_month": 1.0},
        plan={"step_min": 60, "horizon_h": 4, "terminal_soc": "free", "peak_risk_quantile": risk,
              "peak_reserve_sizing": "scenarios", "peak_reserve_recharge": False},
    )  # fmt: skip
    fc = forecast(EXPECTED_LOAD, price=PRICES)
    # ten load paths: the third hour 0, 2, ..., 18 kW above the expected 10 kW
    paths = pd.DataFrame(np.tile(np.asarray(EXPECTED_LOAD)[:, None], (1, 10)), index=fc.frame.index)
    paths.iloc[2] += 2.0 * np.arange(10)
    plan = DispatchModel(cfg, n_slots=4).solve(
        Forecast(fc.frame, load_scenarios_kw=paths), soc_frac=1.0, peak_so_far_kw=10.0
    )
    held = {0.9: 18.0, 0.7: 14.0, 0.5: 0.0}[risk]  # the path above the level's share; capped
    assert plan.frame["peak_reserve_kwh"].max() == pytest.approx(held)
    # what is not held back, up to the 10 kWh stored, is sold in the dear hour
    assert plan.frame["p_batt_kw"].iloc[0] == pytest.approx(max(10.0 - held, 0.0), abs=1e-7)


def paths_plan(load_kw: list[float], path_kw: list[float], **plan: object):
    """A plan whose forecast carries one load path, reserve sized on paths at 0.9 (lossless
    10 kWh / 10 kW battery, full; the month's peak so far 10 kW)."""
    cfg = config(
        tariff={"demand_charge_per_kw_month": 1.0},
        plan={"step_min": 60, "horizon_h": 4, "terminal_soc": "free", "peak_risk_quantile": 0.9,
              "peak_reserve_sizing": "scenarios", "peak_reserve_window_h": 4,
              "peak_reserve_recharge": False, **plan},
    )  # fmt: skip
    fc = forecast(load_kw, price=PRICES)
    paths = pd.DataFrame({1: path_kw}, index=fc.frame.index)
    return DispatchModel(cfg, n_slots=4).solve(
        Forecast(fc.frame, load_scenarios_kw=paths), soc_frac=1.0, peak_so_far_kw=10.0
    )


def test_the_reserve_counts_the_recharge_in_a_gap_when_asked():
    # the path is 5 kW over the 10 kW target in hours 1 and 3; hour 2 is a 10 kW gap
    load, path = [10.0, 10.0, 0.0, 10.0], [10.0, 15.0, 0.0, 15.0]
    both = paths_plan(load, path).frame["peak_reserve_kwh"]
    refilled = paths_plan(load, path, peak_reserve_recharge=True).frame["peak_reserve_kwh"]
    np.testing.assert_allclose(both, [10.0, 5.0, 5.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(refilled, [5.0, 0.0, 5.0, 0.0], atol=1e-7)


# ------------------------------------------------------ margins from the issued forecasts
H = pd.Timedelta(hours=1)


def truth_load(days: int, horizon: int) -> pd.Series:
    """Hourly truth: load 100 kW plus 10 kW x (day number mod 10), no PV."""
    n = days * 24 + horizon
    idx = pd.date_range("2026-03-02", periods=n, freq="h", tz="UTC")
    return pd.Series(100.0 + 10.0 * ((np.arange(n) // 24) % 10), index=idx)


def learn(truth: pd.Series, steps: int, level: float, horizon: int = 4,
          min_samples: int = 10) -> ForecastErrors:  # fmt: skip
    """A book fed the whole truth (only the past may count) and a 100 kW forecast issued
    every hour for ``steps`` hours."""
    calendar = FactoryCalendar("UTC", weekend_days=())  # every day a working day
    errors = ForecastErrors(calendar, H, level, history_days=10, min_samples=min_samples,
                            warmup_days=0)  # fmt: skip
    errors.observe(truth)
    for i in range(steps):
        errors.issue(truth.index[i], np.full(horizon, 100.0))
    return errors


def test_margin_is_the_quantile_of_past_errors():
    truth = truth_load(days=12, horizon=4)
    errors = learn(truth, steps=11 * 24, level=0.9)
    # the refresh at the start of day 11 saw forecasts issued on days 1..10: errors 10..90
    # and 0 (day 10), every hour and lead alike; each group holds the same multiset
    expected = np.quantile(np.r_[np.arange(10, 100, 10), 0.0], 0.9)
    out = errors.margin_kw(truth.index[11 * 24], np.full(4, 100.0))
    np.testing.assert_allclose(out, expected)


def test_margin_without_errors_of_its_own_hour_and_lead_is_the_cold_start():
    truth = truth_load(days=12, horizon=4)
    # hourly slots: each (hour, lead under 1 h) group gets one error a day, 10 in the history;
    # each (hour, lead 1-4 h) group three a day, 30. Asking for 20 leaves the first empty.
    errors = learn(truth, steps=11 * 24, level=0.9, min_samples=20)
    out = errors.margin_kw(truth.index[11 * 24], np.full(4, 100.0))
    assert out[0] == pytest.approx(errors.cold_start_frac * 100.0)  # not the other leads'
    expected = np.quantile(np.repeat(np.r_[np.arange(10, 100, 10), 0.0], 3), 0.9)
    np.testing.assert_allclose(out[1:], expected)


def test_margin_reads_only_the_past():
    truth = truth_load(days=12, horizon=4)
    step = 11 * 24
    a = learn(truth, step, 0.9).margin_kw(truth.index[step], np.full(4, 100.0))
    future = truth.where(np.arange(len(truth)) < step, 1e6)
    b = learn(future, step, 0.9).margin_kw(truth.index[step], np.full(4, 100.0))
    np.testing.assert_array_equal(a, b)


def test_forecasts_of_the_warmup_do_not_count():
    truth = truth_load(days=12, horizon=4)
    errors = learn(truth, steps=11 * 24, level=0.9)
    errors.warmup = 11 * 24  # every forecast issued in the warmup: none counts
    out = errors.margin_kw(truth.index[11 * 24], np.full(4, 100.0))
    np.testing.assert_allclose(out, errors.cold_start_frac * 100.0)


@pytest.mark.parametrize("horizon", [4, 30])
def test_error_paths_are_past_errors_of_forecasts_issued_at_the_same_time(horizon):
    truth = truth_load(days=12, horizon=horizon)
    step = 11 * 24 + 5
    paths = learn(truth, step + 1, 0.9, horizon).paths_kw(truth.index[step],
                                                          np.full(horizon, 100.0))
    # issued 1..10 days back at 05:00, each forecast 100 kW; a path is today's forecast (100)
    # plus that forecast's error: the load of its day, if the whole horizon is past
    days_back = range(1, 11) if horizon <= 24 else range(2, 11)
    values = truth.to_numpy()
    expected = [values[step - k * 24 : step - k * 24 + horizon] for k in days_back]
    np.testing.assert_allclose(paths, expected)
    future = truth.where(np.arange(len(truth)) < step, 1e6)
    again = learn(future, step + 1, 0.9, horizon).paths_kw(truth.index[step],
                                                           np.full(horizon, 100.0))
    np.testing.assert_array_equal(again, paths)


def test_margin_is_zero_at_the_median_of_symmetric_errors():
    truth = truth_load(days=12, horizon=4) - 45.0  # errors -45..45
    out = learn(truth, 11 * 24, 0.5).margin_kw(truth.index[11 * 24], np.full(4, 100.0))
    assert np.median(np.arange(-45.0, 50.0, 10.0)) == 0.0
    np.testing.assert_allclose(out, 0.0)


def test_a_level_outside_its_range_is_refused():
    with pytest.raises(ValueError, match="level"):
        ForecastErrors(FactoryCalendar("UTC"), H, 0.3)


def test_exceedance_ahead_sums_the_next_window_only():
    high, target = np.array([10.0, 20.0, 15.0, 5.0]), np.full(4, 10.0)
    # 10 kW over in slot 1 and 5 kW in slot 2, for 0.5 h each, from storage at 0.5
    np.testing.assert_allclose(exceedance_ahead_kwh(high, target, 0.5, 0.5, 4), [15, 5, 0, 0])
    np.testing.assert_allclose(exceedance_ahead_kwh(high, target, 0.5, 0.5, 1), [10, 5, 0, 0])


def test_recharge_in_a_gap_refills_what_the_first_peak_took():
    # 1 h slots, lossless; 5 kW over the 10 kW target in slots 1 and 3, a 10 kW gap in slot 2
    net, target = np.array([0.0, 15.0, 0.0, 15.0]), np.full(4, 10.0)
    assert exceedance_ahead_kwh(net, target, 1.0, 1.0, 3)[0] == 10.0  # both peaks from store
    ahead = exceedance_ahead_kwh(net, target, 1.0, 1.0, 3, Recharge(10.0, 1.0, 100.0))
    np.testing.assert_allclose(ahead, [5.0, 0.0, 5.0, 0.0])  # the gap refills the first 5 kWh
    slow = exceedance_ahead_kwh(net, target, 1.0, 1.0, 3, Recharge(2.0, 1.0, 100.0))
    assert slow[0] == 8.0  # charging at 2 kW refills only 2 kWh of the first peak
    small = exceedance_ahead_kwh(net, target, 1.0, 1.0, 3, Recharge(10.0, 1.0, 3.0))
    assert small[0] == 3.0  # never more than the battery holds
    losses = exceedance_ahead_kwh(net, target, 1.0, 0.5, 3, Recharge(10.0, 0.5, 100.0))
    assert losses[0] == 15.0  # slots 1 and 3 take 10 kWh each; the gap refills 5 kWh


@given(
    net=st.lists(st.floats(0.0, 30.0), min_size=1, max_size=12),
    window=st.integers(1, 14),
    paths=st.integers(1, 3),
)
def test_recharge_never_asks_more_and_equals_the_sum_without_gaps(net, window, paths):
    net_kw = np.tile(np.asarray(net), (paths, 1))
    target = np.full(len(net), 10.0)
    total = exceedance_ahead_kwh(net_kw, target, 0.25, 0.9, window)
    big = Recharge(50.0, 0.9, 1e9)
    refilled = exceedance_ahead_kwh(net_kw, target, 0.25, 0.9, window, big)
    assert refilled.shape == total.shape
    assert (refilled <= total + 1e-9).all()
    no_gaps = np.maximum(net_kw, target)  # never below the target: nothing to refill in
    np.testing.assert_allclose(exceedance_ahead_kwh(no_gaps, target, 0.25, 0.9, window, big),
                               exceedance_ahead_kwh(no_gaps, target, 0.25, 0.9, window))


def test_the_plan_keeps_the_day_off_reserve_on_days_off_only():
    # Friday 22:00 to Saturday 02:00 (UTC site, weekend Saturday and Sunday); Saturday's
    # energy is the dearest (0.6 against 0.5), so without the option the full battery covers
    # Saturday's 10 kW load to empty. With 40 % kept on days off, it discharges 6 kWh.
    fc = forecast([10.0] * 4, price=[0.5, 0.5, 0.6, 0.6], start="2026-07-03 22:00")
    soc, discharged = {}, {}
    for frac in (None, 0.4):
        cfg = config(plan={"horizon_h": 4, "day_off_reserve_frac": frac})
        plan = DispatchModel(cfg, n_slots=4).solve(fc, soc_frac=1.0, peak_so_far_kw=0.0)
        soc[frac] = plan.frame["soc_frac"].to_numpy()
        discharged[frac] = plan.frame["p_batt_kw"].sum()
    np.testing.assert_allclose([soc[None][-1], discharged[None]], [0.0, 10.0], atol=1e-6)
    np.testing.assert_allclose([soc[0.4][-1], discharged[0.4]], [0.4, 6.0], atol=1e-6)
    assert (soc[0.4][2:] >= 0.4 - 1e-6).all()
    # Friday's energy dearest: Friday may go empty; Saturday buys the reserve back
    fc = forecast([10.0] * 4, price=[0.6, 0.6, 0.5, 0.5], start="2026-07-03 22:00")
    cfg = config(plan={"horizon_h": 4, "day_off_reserve_frac": 0.4})
    plan = DispatchModel(cfg, n_slots=4).solve(fc, soc_frac=1.0, peak_so_far_kw=0.0)
    np.testing.assert_allclose(plan.frame["soc_frac"].to_numpy()[1:], [0.0, 0.4, 0.4], atol=1e-6)


def test_a_day_off_reserve_outside_the_soc_window_is_refused():
    with pytest.raises(ConfigError, match=r"day_off_reserve_frac = 0\.99 must lie"):
        config(battery={"soc_max_frac": 0.95}, plan={"day_off_reserve_frac": 0.99})
