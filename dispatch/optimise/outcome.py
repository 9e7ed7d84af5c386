"""Turn solver values into a ``Plan``: the per-slot frame, costs recomputed from net powers,
emissions, and the rule-based fallback plan used when no optimum is available.

Role: pure arithmetic on arrays; imports numpy, pandas, ``dispatch.types`` and ``dispatch.config``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from dispatch.config import SiteConfig
from dispatch.types import PLAN_COLUMNS, Forecast, Plan, PlanCosts

#: The forecast columns a solve reads, in ``SlotInputs`` order.
_INPUT_COLUMNS = (
    "p_pv_kw",
    "p_load_kw",
    "price_import_per_kwh",
    "price_export_per_kwh",
    "ci_g_per_kwh",
)


#: The plan frame's columns (built once: a frame per plan).
_PLAN_INDEX = pd.Index(PLAN_COLUMNS)


@dataclass(frozen=True)
class SlotInputs:
    """Per-slot inputs of one solve, as arrays of equal length.

    Attributes
    ----------
    index : pandas.DatetimeIndex
        UTC period starts.
    dt_h : float
        Slot length (hours).
    pv_kw, load_kw : numpy.ndarray
        Expected PV (before curtailment) and load (kW).
    price_import_per_kwh, price_export_per_kwh : numpy.ndarray
        Prices (currency per kWh).
    ci_g_per_kwh : numpy.ndarray
        Grid carbon intensity (g CO2 per kWh).
    billing_month : numpy.ndarray
        Billing-month label of each slot.
    peak_so_far_kw : dict of str to float
        Peak import already reached in each billing month (kW).
    energy_start_kwh : float
        Stored energy at the start of the horizon (kWh).
    peak_margin_kw : numpy.ndarray, optional
        How far the net load may exceed its expectation at the plan's risk level (kW, see
        ``risk.peak_margin_kw``); None: no margin.
    net_scenarios_kw : numpy.ndarray, optional
        Net load (load - PV) paths the horizon may take, one row per scenario (kW), e.g. the
        expected net load plus the errors of past forecasts issued at the same time of day;
        None: no scenarios.
    held_target_kw : dict of str to float
        The peak target the live guard holds in each billing month (kW): the target of the
        plan in force. The peak reserve is sized on the larger of it and the peak so far. An
        explicit input, so a stored plan is reproduced from its stored inputs alone.
    demand_charge_frac : dict of str to float
        The share of a billing month's demand charge this horizon bills (absent: 1.0, the
        whole charge): less for a replay window that covers only part of the month
        (``tariff.month_coverage``). A live plan bills whole months.
    """

    index: pd.DatetimeIndex
    dt_h: float
    pv_kw: np.ndarray
    load_kw: np.ndarray
    price_import_per_kwh: np.ndarray
    price_export_per_kwh: np.ndarray
    ci_g_per_kwh: np.ndarray
    billing_month: np.ndarray
    peak_so_far_kw: Mapping[str, float]
    energy_start_kwh: float
    peak_margin_kw: np.ndarray | None = None
    net_scenarios_kw: np.ndarray | None = None
    held_target_kw: Mapping[str, float] = field(default_factory=dict)
    demand_charge_frac: Mapping[str, float] = field(default_factory=dict)

    @cached_property
    def months(self) -> list[str]:
        """The billing months the horizon touches, in order."""
        return list(dict.fromkeys(self.billing_month.tolist()))

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame | Forecast,
        dt_h: float,
        billing_month: np.ndarray,
        peak_so_far_kw: Mapping[str, float],
        energy_start_kwh: float,
        peak_margin_kw: np.ndarray | None = None,
        held_target_kw: Mapping[str, float] | None = None,
    ) -> SlotInputs:
        """Gather the arrays of a complete forecast frame (``p_pv_kw``, ``p_load_kw``,
        ``price_import_per_kwh``, ``price_export_per_kwh``, ``ci_g_per_kwh``), or of a
        ``Forecast`` with them (the columns it has already checked)."""
        if isinstance(frame, Forecast):
            pv, load, p_imp, p_exp, ci = (frame.column(c) for c in _INPUT_COLUMNS)
            index = frame.index
        else:
            pv, load, p_imp, p_exp, ci = (frame[c].to_numpy(dtype=float) for c in _INPUT_COLUMNS)
            index = pd.DatetimeIndex(frame.index)
        return cls(
            index=index,
            dt_h=dt_h,
            pv_kw=pv,
            load_kw=load,
            price_import_per_kwh=p_imp,
            price_export_per_kwh=p_exp,
            ci_g_per_kwh=ci,
            billing_month=billing_month,
            peak_so_far_kw=dict(peak_so_far_kw),
            energy_start_kwh=energy_start_kwh,
            peak_margin_kw=peak_margin_kw,
            held_target_kw=dict(held_target_kw or {}),
        )


def month_peaks_kw(
    import_kw: np.ndarray, billing_month: np.ndarray, peak_so_far_kw: Mapping[str, float]
) -> np.ndarray:
    """Per slot, its billing month's peak: the peak so far or the highest import of the
    month's slots, whichever is higher (kW)."""
    out = np.empty(len(import_kw))
    for month in dict.fromkeys(billing_month.tolist()):
        mask = billing_month == month
        out[mask] = max(float(peak_so_far_kw.get(month, 0.0)), float(import_kw[mask].max()))
    return out


def demand_increase_kw(
    import_kw: np.ndarray, billing_month: np.ndarray, peak_so_far_kw: Mapping[str, float]
) -> dict[str, float]:
    """Increase of each billing month's peak import over the peak already reached (kW)."""
    out = {}
    for month in dict.fromkeys(billing_month.tolist()):
        peak = float(import_kw[billing_month == month].max())
        out[month] = max(0.0, peak - float(peak_so_far_kw.get(month, 0.0)))
    return out


def costs_of(
    p_grid_kw: np.ndarray, p_batt_kw: np.ndarray, inputs: SlotInputs, config: SiteConfig
) -> tuple[PlanCosts, float]:
    """Costs and emissions of a schedule, from its net grid and battery powers.

    Parameters
    ----------
    p_grid_kw : numpy.ndarray
        Net grid power per slot (kW, import positive).
    p_batt_kw : numpy.ndarray
        Net battery power per slot (kW, discharge positive).
    inputs : SlotInputs
        Prices, intensities and billing state.
    config : SiteConfig
        Wear cost, demand charge and carbon price.

    Returns
    -------
    tuple of (PlanCosts, float)
        The cost parts (currency) and the emissions of the imports (kg CO2).
    """
    dt = inputs.dt_h
    imp = np.maximum(p_grid_kw, 0.0)
    exp = np.maximum(-p_grid_kw, 0.0)
    kg = float(dt * np.sum(imp * inputs.ci_g_per_kwh) / 1000.0)
    increase = demand_increase_kw(imp, inputs.billing_month, inputs.peak_so_far_kw)
    costs = PlanCosts(
        energy_cost=float(dt * np.sum(inputs.price_import_per_kwh * imp)),
        export_revenue=float(dt * np.sum(inputs.price_export_per_kwh * exp)),
        demand_charge=config.tariff.demand_charge_per_kw_month
        * sum(inputs.demand_charge_frac.get(m, 1.0) * kw for m, kw in increase.items()),
        carbon_cost=config.carbon.price_per_kg * kg,
        wear_cost=config.battery.wear_cost_per_kwh * dt * float(np.sum(np.abs(p_batt_kw))),
    )
    return costs, kg


def plan_frame(
    inputs: SlotInputs,
    charge_kw: np.ndarray,
    discharge_kw: np.ndarray,
    curtail_kw: np.ndarray,
    energy_kwh: np.ndarray,
    config: SiteConfig,
    peak_target_kw: np.ndarray | None = None,
    peak_reserve_kwh: np.ndarray | None = None,
) -> pd.DataFrame:
    """The per-slot plan frame (columns ``PLAN_COLUMNS``); grid power follows from the power
    balance. Without a peak target, each slot's is its month's peak with this schedule;
    without a reserve, none is held."""
    p_batt = discharge_kw - charge_kw
    p_pv = inputs.pv_kw - curtail_kw
    p_grid = inputs.load_kw - p_pv - p_batt
    p_import = np.maximum(p_grid, 0.0)
    if peak_target_kw is None:
        peak_target_kw = month_peaks_kw(p_import, inputs.billing_month, inputs.peak_so_far_kw)
    if peak_reserve_kwh is None:
        peak_reserve_kwh = np.zeros(len(p_grid))
    columns = (
        p_batt, charge_kw, discharge_kw, p_grid, p_import,
        np.maximum(-p_grid, 0.0), p_pv, curtail_kw, inputs.load_kw,
        energy_kwh / config.battery.energy_kwh, inputs.price_import_per_kwh,
        inputs.price_export_per_kwh, inputs.ci_g_per_kwh, peak_target_kw, peak_reserve_kwh,
    )  # fmt: skip
    return pd.DataFrame(np.column_stack(columns), index=inputs.index, columns=_PLAN_INDEX)


def make_plan(
    frame: pd.DataFrame, inputs: SlotInputs, config: SiteConfig, **fields: object
) -> Plan:
    """Wrap a plan frame (``plan_frame``) with its recomputed costs, emissions and peak."""
    values, columns = frame.to_numpy(), frame.columns  # one float block: a view
    p_grid = values[:, columns.get_loc("p_grid_kw")]
    costs, kg = costs_of(p_grid, values[:, columns.get_loc("p_batt_kw")], inputs, config)
    return Plan(
        frame=frame,
        costs=costs,
        kg_co2=kg,
        peak_import_kw=max(0.0, float(p_grid.max())),
        **fields,  # type: ignore[arg-type]
    )


def fallback_plan(inputs: SlotInputs, config: SiteConfig, reason: str, solve_ms: float) -> Plan:
    """A safe plan when the optimiser has no answer: battery idle, PV curtailed only as far as
    the export limit requires."""
    T = len(inputs.index)
    surplus = np.maximum(inputs.pv_kw - inputs.load_kw, 0.0)
    curtail = np.maximum(surplus - config.grid.export_limit_kw, 0.0)
    zeros = np.zeros(T)
    energy = np.full(T, inputs.energy_start_kwh)
    frame = plan_frame(inputs, zeros, zeros, curtail, energy, config)
    return make_plan(
        frame, inputs, config, status="fallback", solve_ms=solve_ms, solver="rule", message=reason
    )
