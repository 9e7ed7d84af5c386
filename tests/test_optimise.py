"""Optimiser: exact toy answers, limits and invariants, fallbacks, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from dispatch.optimise import DispatchModel
from dispatch.types import InputError
from tests.factories import config, forecast


def solve(cfg, fc, soc=0.0, **kw):
    return DispatchModel(cfg, n_slots=len(fc.frame)).solve(fc, soc, **kw)


def test_cheap_then_expensive_slot_shifts_energy_exactly():
    plan = solve(config(), forecast([5, 5], price=[0.1, 0.3]))
    f = plan.frame
    assert plan.status == "optimal"
    np.testing.assert_allclose(f["p_batt_kw"], [-5, 5], atol=1e-7)
    np.testing.assert_allclose(f["p_grid_kw"], [10, 0], atol=1e-7)
    assert plan.costs.energy_cost == pytest.approx(1.0, abs=1e-9)
    assert plan.costs.total == pytest.approx(plan.objective, abs=1e-7)


def test_efficiency_losses_priced_exactly():
    cfg = config(battery={"eta_charge": 0.9, "eta_discharge": 0.9})
    plan = solve(cfg, forecast([5, 5], price=[0.1, 0.3]))
    # discharging 5 kWh at the bus needs 5/0.9 stored, i.e. 5/0.81 kWh charged at the bus
    assert plan.frame["p_charge_kw"].iloc[0] == pytest.approx(5 / 0.81, rel=1e-9)
    assert plan.costs.energy_cost == pytest.approx(0.1 * (5 + 5 / 0.81), rel=1e-9)


def test_zero_export_curtails_surplus_pv():
    cfg = config(
        grid={"export_allowed": False, "export_max_kw": None}, battery={"charge_max_kw": 3.0}
    )
    plan = solve(cfg, forecast([4, 4], pv_kw=[10, 0], price=[0.1, 0.1]))
    f = plan.frame
    assert f["p_export_kw"].max() == pytest.approx(0.0, abs=1e-9)
    assert f["p_charge_kw"].iloc[0] == pytest.approx(3.0)
    assert f["p_curtail_kw"].iloc[0] == pytest.approx(3.0)
    assert f["p_pv_kw"].iloc[0] == pytest.approx(7.0)


def test_demand_charge_makes_peak_shaving_pay():
    cfg = config(tariff={"demand_charge_per_kw_month": 5.0}, battery={"wear_cost_per_kwh": 0.2})
    plan = solve(cfg, forecast([10, 2], price=0.1), soc=0.4)  # 4 kWh stored
    # discharging 4 kW in the first hour lowers the peak from 10 to 6 kW: 4 x 5 saved for 4 x
    # (0.2 wear - 0.1 energy) spent; nothing else pays
    np.testing.assert_allclose(plan.frame["p_grid_kw"], [6, 2], atol=1e-7)
    assert plan.costs.demand_charge == pytest.approx(30.0)
    assert plan.peak_import_kw == pytest.approx(6.0)


def test_peak_already_reached_is_not_shaved_below():
    cfg = config(tariff={"demand_charge_per_kw_month": 5.0}, battery={"wear_cost_per_kwh": 0.2})
    plan = solve(cfg, forecast([10, 2], price=0.1), soc=0.4, peak_so_far_kw=12.0)
    assert plan.costs.demand_charge == 0.0
    assert plan.frame["p_discharge_kw"].max() == pytest.approx(0.0, abs=1e-7)


def test_carbon_price_changes_the_plan():
    base = dict(battery={"wear_cost_per_kwh": 0.001})
    fc = forecast([5, 5], price=0.1, ci=[100.0, 800.0])
    idle = solve(config(**base), fc)
    assert idle.frame["p_charge_kw"].max() == pytest.approx(0.0, abs=1e-9)
    assert idle.kg_co2 == pytest.approx(0.5 + 4.0)
    priced = solve(config(carbon={"price_per_kg": 0.1}, **base), fc)
    np.testing.assert_allclose(priced.frame["p_grid_kw"], [10, 0], atol=1e-7)
    assert priced.kg_co2 == pytest.approx(1.0)
    assert priced.costs.carbon_cost == pytest.approx(0.1)


def test_terminal_soc_at_least_start():
    fc = forecast([5, 5], price=[0.3, 0.1])
    kept = solve(config(plan={"terminal_soc": "at_least_start"}), fc, soc=0.5)
    assert kept.frame["soc_frac"].iloc[-1] == pytest.approx(0.5)
    np.testing.assert_allclose(kept.frame["p_batt_kw"], [5, -5], atol=1e-7)
    free = solve(config(), fc, soc=0.5)
    assert free.frame["soc_frac"].iloc[-1] == pytest.approx(0.0, abs=1e-9)


def test_terminal_soc_target():
    cfg = config(plan={"terminal_soc": "target", "terminal_soc_frac": 0.8})
    plan = solve(cfg, forecast([5, 5], price=0.1), soc=0.0)
    assert plan.frame["soc_frac"].iloc[-1] == pytest.approx(0.8)


def test_negative_price_never_charges_and_discharges_at_once():
    cfg = config(grid={"export_allowed": False, "export_max_kw": None})
    plan = solve(cfg, forecast([5, 5, 5], price=[-0.5, 0.2, 0.2]), soc=0.5)
    f = plan.frame
    assert (np.minimum(f["p_charge_kw"], f["p_discharge_kw"]) <= 1e-9).all()
    assert (np.minimum(f["p_import_kw"], f["p_export_kw"]) <= 1e-9).all()
    balance = f["p_grid_kw"] + f["p_pv_kw"] + f["p_batt_kw"] - f["p_load_kw"]
    np.testing.assert_allclose(balance, 0, atol=1e-7)


def test_a_plan_indifferent_to_losses_still_separates_its_flows():
    # every cost zero: charging and discharging at once costs nothing, so the LP may do it in
    # many slots and each repair may move it elsewhere; 48 slots from half full took 9
    # repairs with highspy 1.16 (the old limit of 5 gave a fallback plan)
    n = 48
    cfg = config(
        grid={"import_max_kw": 20.0, "export_allowed": False, "export_max_kw": None},
        battery={"energy_kwh": 5.0, "charge_max_kw": 1.0, "discharge_max_kw": 1.0,
                 "eta_charge": 0.8125, "eta_discharge": 0.8125, "wear_cost_per_kwh": 0.0},
        tariff={"demand_charge_per_kw_month": 0.0}, carbon={"price_per_kg": 0.0},
        plan={"step_min": 60, "horizon_h": n},
    )  # fmt: skip
    zeros = [0.0] * n
    fc = forecast(zeros, pv_kw=zeros, price=zeros, export_price=zeros, ci=zeros)
    plan = DispatchModel(cfg, n_slots=n).solve(fc, soc_frac=0.5)
    f = plan.frame
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(0.0, abs=1e-9)
    assert (np.minimum(f["p_charge_kw"], f["p_discharge_kw"]) <= 1e-6).all()


def test_two_billing_months_are_charged_separately():
    cfg = config(tariff={"demand_charge_per_kw_month": 1.0}, battery={"energy_kwh": 0.001})
    fc = forecast([8, 3, 4, 6], price=0.1)
    plan = solve(
        cfg, fc, billing_month=["m1", "m1", "m2", "m2"], peak_so_far_kw={"m1": 5.0, "m2": 0.0}
    )
    # the 1 Wh battery shaves 1 W off the first month's 8 kW peak
    assert plan.costs.demand_charge == pytest.approx((8 - 5) + 6 - 0.001, abs=1e-9)


def test_import_cap_breach_is_a_priced_slack_not_a_failure():
    cfg = config(grid={"import_max_kw": 4.0}, battery={"energy_kwh": 1.0})
    plan = solve(cfg, forecast([6, 6], price=0.1), soc=0.0)
    assert plan.status == "optimal"
    assert plan.soft_violation_kwh["import_over_cap_kwh"] == pytest.approx(4.0)


def test_initial_soc_below_window_is_recovered_softly():
    cfg = config(battery={"soc_min_frac": 0.2}, plan={"terminal_soc": "at_least_start"})
    plan = solve(cfg, forecast([1, 1], price=0.1), soc=0.05)
    assert plan.status == "optimal"
    assert plan.frame["soc_frac"].min() >= 0.2 - 1e-9


def test_solver_failure_gives_fallback_plan_with_reason():
    cfg = config(plan={"solver": "highs-simplex", "solver_options": {"time_limit": 0.0}})
    plan = solve(cfg, forecast([5, 5], pv_kw=[7, 0], price=[0.1, 0.3]))
    assert plan.status == "fallback" and plan.is_fallback
    assert "time limit" in plan.message.lower()
    np.testing.assert_allclose(plan.frame["p_batt_kw"], 0.0)
    np.testing.assert_allclose(plan.frame["p_grid_kw"], [-2, 5])


@pytest.mark.parametrize("solver", ["auto", "highs-ipm", "HIGHS", "CLARABEL"])
def test_every_solver_path_agrees(solver):
    fc = forecast([5, 7, 3, 6], pv_kw=[0, 4, 9, 1], price=[0.1, 0.3, 0.05, 0.4])
    cfg = config(
        battery={"eta_charge": 0.95, "eta_discharge": 0.95, "wear_cost_per_kwh": 0.01},
        tariff={"demand_charge_per_kw_month": 0.2},
        plan={"solver": solver},
    )
    ref = solve(
        config(battery=cfg.battery.model_dump(), tariff={"demand_charge_per_kw_month": 0.2}),
        fc,
        soc=0.3,
    )
    plan = solve(cfg, fc, soc=0.3)
    assert plan.costs.total == pytest.approx(ref.costs.total, rel=1e-5, abs=1e-6)


def test_model_is_reused_across_steps():
    cfg = config()
    model = DispatchModel(cfg, n_slots=2)
    a = model.solve(forecast([5, 5], price=[0.1, 0.3]), 0.0)
    b = model.solve(forecast([5, 5], price=[0.3, 0.1]), 0.0)
    np.testing.assert_allclose(a.frame["p_batt_kw"], [-5, 5], atol=1e-7)
    np.testing.assert_allclose(b.frame["p_batt_kw"], [0, 0], atol=1e-7)


def test_bad_inputs_raise_clear_errors():
    model = DispatchModel(config(), n_slots=2)
    with pytest.raises(InputError, match="3 slots"):
        model.solve(forecast([1, 1, 1]), 0.5)
    with pytest.raises(InputError, match="soc_frac"):
        model.solve(forecast([1, 1]), 1.5)
    with pytest.raises(InputError, match="step"):
        model.solve(forecast([1, 1], step_min=30), 0.5)
    with pytest.raises(InputError, match="unknown cap"):
        model.solve(forecast([1, 1]), 0.5, caps={"charge_kw": np.zeros(2)})


def test_fixed_billing_months_match_the_relaxed_form():
    cfg = config(tariff={"demand_charge_per_kw_month": 1.0}, battery={"energy_kwh": 5.0})
    fc = forecast([8, 3, 4, 6, 2, 9], price=[0.1, 0.2, 0.1, 0.3, 0.1, 0.2])
    months = ["m1", "m1", "m2", "m2", "m3", "m3"]
    peaks = {"m1": 5.0, "m2": 0.0, "m3": 1.0}
    relaxed = DispatchModel(cfg, n_slots=6, n_months=3).solve(fc, 0.5, months, peaks)
    fixed_model = DispatchModel(cfg, n_slots=6, fixed_months=months)
    fixed = fixed_model.solve(fc, 0.5, None, peaks)
    assert fixed.objective == pytest.approx(relaxed.objective, rel=1e-9)
    with pytest.raises(InputError, match="differs"):
        fixed_model.solve(fc, 0.5, ["m1"] * 6, peaks)
