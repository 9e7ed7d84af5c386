"""Backtests on small synthetic scenarios: KPIs recomputed independently, the perfect-foresight
bound never beaten, and the bound equal to an independent LP."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import reference_lp as ref
from dispatch.optimise import DispatchModel
from sim import backtest, forecasters
from sim.scenario import Scenario
from tests.factories import config

STEP_H = 1.0


def scenario(load, pv, price, ci, demand_charge=2.0, soc=0.5, start="2026-03-30",
             **plan: object) -> Scenario:
    cfg = config(
        grid={"import_max_kw": 100.0, "export_allowed": True, "export_max_kw": 20.0},
        battery={"energy_kwh": 20.0, "charge_max_kw": 8.0, "discharge_max_kw": 8.0,
                 "soc_min_frac": 0.1, "soc_max_frac": 0.9, "eta_charge": 0.95,
                 "eta_discharge": 0.95, "wear_cost_per_kwh": 0.01},
        tariff={"demand_charge_per_kw_month": demand_charge},
        carbon={"price_per_kg": 0.05},
        plan={"step_min": 60, "horizon_h": 6, "terminal_soc": "at_least_start", **plan},
    )  # fmt: skip
    n = len(load)
    idx = pd.date_range(start, periods=n, freq="1h", tz="UTC")
    data = pd.DataFrame({"p_load_kw": load, "p_pv_kw": pv, "price_import_per_kwh": price,
                         "price_export_per_kwh": np.asarray(price) * 0.5, "ci_g_per_kwh": ci},
                        index=idx)  # fmt: skip
    return Scenario("toy", cfg, data, soc)


def toy_day(n=48, seed=0, **kw: object) -> Scenario:
    rng = np.random.default_rng(seed)
    hour = np.arange(n) % 24
    load = 20 + 15 * ((hour >= 8) & (hour < 18)) + rng.uniform(0, 5, n)
    pv = np.clip(30 * np.sin((hour - 6) / 12 * np.pi), 0, None)
    price = np.where((hour >= 17) & (hour < 21), 0.4, 0.15)
    return scenario(load, pv, price, 300 + 200 * (hour < 6), **kw)


def test_kpis_equal_an_independent_recomputation_from_the_time_series():
    sc = toy_day()
    out = backtest.receding(sc, forecasters.persistence, "persistence")
    f = out.frame
    np.testing.assert_allclose(f["p_grid_kw"] + f["p_pv_kw"] + f["p_batt_kw"], f["p_load_kw"],
                               atol=1e-9)  # fmt: skip
    imp = f["p_grid_kw"].clip(lower=0)
    exp = (-f["p_grid_kw"]).clip(lower=0)
    assert out.costs.energy_cost == pytest.approx((imp * f["price_import_per_kwh"]).sum() * STEP_H)
    assert out.costs.export_revenue == pytest.approx((exp * f["price_export_per_kwh"]).sum())
    months = f.index.strftime("%Y-%m")
    peaks = imp.groupby(months).max()
    # 48 h from 2026-03-30 00:00 UTC: March's last two days (48 of its 744 h), billed pro rata
    assert set(months) == {"2026-03"}
    assert out.costs.demand_charge == pytest.approx(2.0 * peaks.sum() * 48 / 744)
    assert out.kg_co2 == pytest.approx((imp * f["ci_g_per_kwh"]).sum() / 1000)
    assert out.costs.wear_cost == pytest.approx(0.01 * f["p_batt_kw"].abs().sum())
    b = sc.config.battery
    assert f["soc_frac"].between(b.soc_min_frac - 1e-9, b.soc_max_frac + 1e-9).all()


@pytest.mark.parametrize("days_off", [{}, {"start": "2026-03-28", "day_off_reserve_frac": 0.8}])
def test_perfect_foresight_matches_an_independent_lp(days_off):
    # a weekend with a reserve on days off: a hedge against forecasts, which perfect
    # foresight does not need, so the bound holds none (the independent LP knows none)
    sc = toy_day(**days_off)
    pf = backtest.perfect_foresight(sc)
    x = backtest.period_inputs(sc)
    inst = ref.Instance(
        dt_h=STEP_H, pv_kw=x.pv_kw, load_kw=x.load_kw, price_import=x.price_import_per_kwh,
        price_export=x.price_export_per_kwh, ci_g_per_kwh=x.ci_g_per_kwh, month=x.billing_month,
        peak_kw={}, soc0_frac=sc.soc_initial_frac, terminal_frac=0.0,
        charge_frac=dict(x.demand_charge_frac),
    )  # fmt: skip
    objective, _ = ref.solve_cold(ref.build(ref.site_from_config(sc.config), inst))
    assert pf.costs.total == pytest.approx(objective, rel=1e-6)


def test_a_partial_billing_month_bills_and_plans_its_demand_charge_pro_rata():
    """Two days of a month carry 2/31 of its demand charge: in the bill of every strategy
    and in the perfect-foresight LP, which then shaves less than it would for a whole month
    (the same two days billed as a whole month)."""
    sc = toy_day(start="2026-03-30", demand_charge=5.0)
    x = backtest.period_inputs(sc)
    assert dict(x.demand_charge_frac) == pytest.approx({"2026-03": 2 / 31})
    base = backtest.no_battery(sc)
    peak = float(np.maximum(base.frame["p_grid_kw"], 0).max())
    assert base.costs.demand_charge == pytest.approx(5.0 * peak * 2 / 31)
    pro_rata = backtest.perfect_foresight(sc)
    plan = sc.config.plan.model_copy(update={"terminal_soc": "free"})
    cfg = sc.config.model_copy(update={"plan": plan})
    model = DispatchModel(cfg, n_slots=len(x.index), fixed_months=x.billing_month)
    as_whole = model.solve_inputs(dataclasses.replace(x, demand_charge_frac={}))
    assert as_whole.peak_import_kw < float(np.maximum(pro_rata.frame["p_grid_kw"], 0).max())


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), dc=st.floats(0.0, 5.0), soc=st.floats(0.1, 0.9))
def test_no_strategy_beats_perfect_foresight(seed, dc, soc):
    rng = np.random.default_rng(seed)
    n = 36
    sc = scenario(rng.uniform(5, 40, n), rng.uniform(0, 30, n), rng.uniform(0.05, 0.5, n),
                  rng.uniform(100, 700, n), demand_charge=dc, soc=soc)  # fmt: skip
    bound = backtest.perfect_foresight(sc).costs.total
    for out in (backtest.no_battery(sc), backtest.self_consumption(sc),
                backtest.peak_shaving(sc), backtest.receding(sc, forecasters.perfect),
                backtest.receding(sc, forecasters.persistence, "persistence")):  # fmt: skip
        assert out.costs.total >= bound - 1e-6 * max(1.0, abs(bound)), out.strategy
