"""Backtests: replay a scenario's period and cost each strategy on the same data.

Role: the offline counterpart of the daemon. Strategies so far: no battery (the reference
bill) and the perfect-foresight optimum over the whole period (one LP, the bound no controller
can beat). Both use ``dispatch.pipeline`` and ``dispatch.optimise`` exactly as the daemon does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dispatch import pipeline, tariff
from dispatch.optimise import DispatchModel
from dispatch.optimise.outcome import SlotInputs, costs_of
from dispatch.types import PlanCosts
from sim.scenario import Scenario


@dataclass(frozen=True)
class Outcome:
    """What one strategy did over the period, and what it cost.

    Attributes
    ----------
    strategy : str
        Its name.
    frame : pandas.DataFrame
        Realised per-slot ``p_grid_kw``, ``p_batt_kw``, ``p_pv_kw`` (used), ``p_curtail_kw``,
        ``p_load_kw``, ``soc_frac`` (end of slot), prices and intensity.
    costs : PlanCosts
        The bill over the period (demand charge from zero peaks in every billing month).
    kg_co2 : float
        Location-based emissions of the imports (kg CO2).
    wall_s : float
        Wall time of the strategy's run (s).
    """

    strategy: str
    frame: pd.DataFrame
    costs: PlanCosts
    kg_co2: float
    wall_s: float


def period_inputs(scenario: Scenario) -> SlotInputs:
    """The whole period as optimiser inputs: tariff prices, intensity, billing months."""
    config, data = scenario.config, scenario.data
    forecast = pipeline.complete_forecast(config, data)
    frame = forecast.frame
    return SlotInputs(
        index=forecast.index,
        dt_h=config.plan.step_min / 60.0,
        pv_kw=frame["p_pv_kw"].to_numpy(float),
        load_kw=frame["p_load_kw"].to_numpy(float),
        price_import_per_kwh=frame["price_import_per_kwh"].to_numpy(float),
        price_export_per_kwh=frame["price_export_per_kwh"].to_numpy(float),
        ci_g_per_kwh=frame["ci_g_per_kwh"].to_numpy(float),
        billing_month=tariff.billing_month(config, forecast.index).to_numpy(str),
        peak_so_far_kw={},
        energy_start_kwh=scenario.soc_initial_frac * config.battery.energy_kwh,
    )


def realised(
    x: SlotInputs, p_batt_kw: np.ndarray, soc_frac: np.ndarray, curtail_kw: np.ndarray
) -> pd.DataFrame:
    """The per-slot frame of a strategy; grid power closes the power balance."""
    p_pv = x.pv_kw - curtail_kw
    return pd.DataFrame(
        {
            "p_grid_kw": x.load_kw - p_pv - p_batt_kw,
            "p_batt_kw": p_batt_kw,
            "p_pv_kw": p_pv,
            "p_curtail_kw": curtail_kw,
            "p_load_kw": x.load_kw,
            "soc_frac": soc_frac,
            "price_import_per_kwh": x.price_import_per_kwh,
            "price_export_per_kwh": x.price_export_per_kwh,
            "ci_g_per_kwh": x.ci_g_per_kwh,
        },
        index=x.index,
    )


def _outcome(name: str, scenario: Scenario, x: SlotInputs, frame: pd.DataFrame, t0: float) -> Outcome:
    costs, kg = costs_of(
        frame["p_grid_kw"].to_numpy(), frame["p_batt_kw"].to_numpy(), x, scenario.config
    )
    return Outcome(name, frame, costs, kg, time.perf_counter() - t0)


def no_battery(scenario: Scenario) -> Outcome:
    """The site without its battery: PV curtailed only as the export limit requires."""
    t0 = time.perf_counter()
    x = period_inputs(scenario)
    surplus = np.maximum(x.pv_kw - x.load_kw, 0.0)
    curtail = np.maximum(surplus - scenario.config.grid.export_limit_kw, 0.0)
    zeros = np.zeros(len(x.index))
    soc = np.full(len(x.index), scenario.soc_initial_frac)
    return _outcome("no_battery", scenario, x, realised(x, zeros, soc, curtail), t0)


def perfect_foresight(scenario: Scenario, solver: str = "highs-ipm") -> Outcome:
    """The optimum over the whole period with every value known in advance: one LP.

    Parameters
    ----------
    scenario : Scenario
        The site and its data.
    solver : str
        ``plan.solver`` for this one large solve (interior point by default).
    """
    t0 = time.perf_counter()
    x = period_inputs(scenario)
    plan_cfg = scenario.config.plan.model_copy(update={"solver": solver})
    config = scenario.config.model_copy(update={"plan": plan_cfg})
    model = DispatchModel(config, n_slots=len(x.index), fixed_months=x.billing_month)
    plan = model.solve_inputs(x)
    if plan.is_fallback:
        raise RuntimeError(f"perfect-foresight solve failed: {plan.message}")
    f = plan.frame
    frame = realised(
        x, f["p_batt_kw"].to_numpy(), f["soc_frac"].to_numpy(), f["p_curtail_kw"].to_numpy()
    )
    return _outcome("perfect_foresight", scenario, x, frame, t0)
