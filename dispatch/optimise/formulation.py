"""The battery dispatch LP written once in cvxpy with Parameters (DPP), re-solved every step.

Role: own the mathematical formulation. Imports cvxpy, numpy and ``dispatch.config``.

For slots ``t = 1..T`` of length ``dt`` hours, with non-negative variables charge ``c``,
discharge ``d``, import ``g`` (within the cap) and ``o`` (over the cap, a priced slack), export
``x``, PV curtailment ``u``, stored energy ``e`` (kWh at slot end) and a billing-month peak
``z_k`` per billing month ``k`` touched by the horizon, the program is::

    minimise  sum_t dt * [ (pi_t + cp * ci_t / 1000) * (g_t + o_t) - pe_t * x_t
                           + w * (c_t + d_t) + P * o_t + R * r_t ]
              + sum_k D * z_k + P * (sum_t (l_t + h_t) + s) - V * e_T
    s.t.      g_t + o_t - x_t - u_t + d_t - c_t = L_t - PV_t           (power balance)
              e_t = e_{t-1} + dt * (eta_c * c_t - d_t / eta_d),  e_0 = SoC0   (dynamics)
              e_t + l_t >= E_min,  e_t - h_t <= E_max,  e_t + r_t >= E_res_t  (soft window)
              z_k >= g_t + o_t - M_kt   (M_kt = 0 in month k, a big number elsewhere)
              z_k >= peak already reached in month k
              e_T + s >= terminal target
              0 <= c_t <= C_t,  0 <= d_t <= Dmax_t,  0 <= g_t <= G_t,  0 <= x_t <= X_t,
              0 <= u_t <= PV_t,  0 <= e_t <= E

``pi`` import price, ``pe`` export price, ``cp`` carbon price per kg, ``ci`` grid intensity
(g/kWh), ``w`` wear cost per kWh of throughput, ``D`` demand charge per kW-month, ``P`` the
soft-limit penalty, ``R`` the reserve penalty and ``V`` an optional value of stored energy. The
demand term ``D * (z_k - peak_k)`` is the increase of the month's max-demand charge; the constant
``-D * peak_k`` is left out of the solver's objective.

``E_res_t`` is per slot: the battery's configured reserve (higher on days off when
``plan.day_off_reserve_frac`` is set), raised by the peak reserve (energy
held back so the month's peak target survives a net load at its high quantile, see
``risk.peak_reserve_floor_kwh``); both are soft at ``R`` per kWh and slot-hour.

Each family of rows is one named builder (``power_balance``, ``energy_dynamics``,
``soc_window``, ``reserves``, ``caps``, ``demand_peaks``; the costs in ``objective``), and
``Formulation.constraints`` keeps the rows by name (``CONSTRAINTS``), so a plan reports each
one's duals and which limits bind (``Plan.duals``, ``Plan.binding``).

Every number that changes between steps is a Parameter; the constraint matrix is constant, which
lets ``hot.HotHighs`` keep one HiGHS model alive and update only costs and bounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from dispatch.config import SiteConfig

#: Variables of the program, in the order the plan reads them.
VARIABLES = (
    "charge_kw",
    "discharge_kw",
    "import_kw",
    "import_over_kw",
    "export_kw",
    "curtail_kw",
    "energy_kwh",
    "soc_low_kwh",
    "soc_high_kwh",
    "reserve_short_kwh",
    "terminal_short_kwh",
    "peak_kw",
)


#: The named row groups, in program order (plus ``demand_peak[k]`` per billing month).
CONSTRAINTS = (
    "power_balance", "energy_first", "energy_dynamics", "soc_min", "soc_max", "reserve",
    "terminal", "charge_cap", "discharge_cap", "import_cap", "export_cap", "curtail_cap",
    "energy_cap", "peak_floor",
)  # fmt: skip
Rows = dict[str, cp.Constraint]
Vars = dict[str, cp.Variable]
Params = dict[str, cp.Parameter]


@dataclass(frozen=True)
class Formulation:
    """The compiled-once cvxpy problem and handles to its parameters and variables.

    Attributes
    ----------
    problem : cvxpy.Problem
        The DPP problem.
    params : dict of str to cvxpy.Parameter
        Keyed by name (see ``build``).
    variables : dict of str to cvxpy.Variable
        Keyed by the names in ``VARIABLES``.
    constraints : dict of str to cvxpy.Constraint
        The named row groups (``CONSTRAINTS``; the demand rows as ``demand_peak[k]``, one per
        billing month of the horizon), in the order of the program.
    n_slots : int
        Slots in the horizon.
    dt_h : float
        Slot length (hours).
    n_months : int
        Billing months the horizon may touch.
    fixed_months : tuple of str, optional
        Billing-month label of every slot when it is fixed at build time (offline horizons).
    """

    problem: cp.Problem
    params: dict[str, cp.Parameter]
    variables: dict[str, cp.Variable]
    constraints: dict[str, cp.Constraint]
    n_slots: int
    dt_h: float
    n_months: int
    fixed_months: tuple[str, ...] | None = None


def months_touched(n_slots: int, dt_h: float) -> int:
    """Most billing months a horizon of ``n_slots`` x ``dt_h`` hours can touch."""
    days = n_slots * dt_h / 24.0
    return int(np.ceil(days / 28.0)) + 1


def _parameters(T: int, K: int) -> dict[str, cp.Parameter]:
    vec = {
        "net_load_kw": None,  # load - PV, may be negative
        "pv_kw": "nonneg",
        "import_cost_per_kw": None,  # dt * (price + carbon price * ci / 1000), per kW of import
        "export_revenue_per_kw": None,  # dt * export price
        "import_cap_kw": "nonneg",
        "export_cap_kw": "nonneg",
        "charge_cap_kw": "nonneg",
        "discharge_cap_kw": "nonneg",
        "reserve_kwh": "nonneg",  # per slot: the configured reserve, or the peak reserve
    }
    params = {
        name: cp.Parameter(T, name=name, nonneg=sign == "nonneg") for name, sign in vec.items()
    }
    params["demand_relax_kw"] = cp.Parameter((K, T), name="demand_relax_kw", nonneg=True)
    params["demand_charge_per_kw"] = cp.Parameter(K, name="demand_charge_per_kw", nonneg=True)
    params["peak_so_far_kw"] = cp.Parameter(K, name="peak_so_far_kw", nonneg=True)
    for name in ("energy_start_kwh", "terminal_target_kwh"):
        params[name] = cp.Parameter(name=name, nonneg=True)
    params["terminal_value_per_kwh"] = cp.Parameter(name="terminal_value_per_kwh")
    return params


def power_balance(v: Vars, p: Params) -> Rows:
    """Per slot, ``g + o - x - u + d - c = L - PV``: the bus balances (kW)."""
    grid_in = v["import_kw"] + v["import_over_kw"]
    balance = grid_in - v["export_kw"] - v["curtail_kw"] + v["discharge_kw"] - v["charge_kw"]
    return {"power_balance": balance == p["net_load_kw"]}


def energy_dynamics(v: Vars, p: Params, config: SiteConfig, dt_h: float) -> Rows:
    """``e_t = e_{t-1} + dt * (eta_c * c_t - d_t / eta_d)`` from ``e_0 = SoC0`` (kWh)."""
    b = config.battery
    c, d, e = v["charge_kw"], v["discharge_kw"], v["energy_kwh"]

    def flow(sl: slice | int) -> cp.Expression:
        return dt_h * (b.eta_charge * c[sl] - d[sl] / b.eta_discharge)

    return {
        "energy_first": e[0] - flow(0) == p["energy_start_kwh"],
        "energy_dynamics": e[1:] - e[:-1] - flow(slice(1, None)) == 0,
    }


def soc_window(v: Vars, config: SiteConfig) -> Rows:
    """The soft SoC window ``E_min <= e_t <= E_max`` (slacks ``l``, ``h``)."""
    b = config.battery
    e = v["energy_kwh"]
    return {
        "soc_min": e + v["soc_low_kwh"] >= b.soc_min_frac * b.energy_kwh,
        "soc_max": e - v["soc_high_kwh"] <= b.soc_max_frac * b.energy_kwh,
    }


def reserves(v: Vars, p: Params, n_slots: int) -> Rows:
    """The soft per-slot reserve ``e_t + r_t >= E_res_t`` and the terminal target."""
    e = v["energy_kwh"]
    return {
        "reserve": e + v["reserve_short_kwh"] >= p["reserve_kwh"],
        "terminal": e[n_slots - 1] + v["terminal_short_kwh"] >= p["terminal_target_kwh"],
    }


def caps(v: Vars, p: Params, config: SiteConfig) -> Rows:
    """Power caps and the peak floor as single-variable rows: cvxpy 1.9 does not treat
    Parameter bounds of a variable that also meets a Parameter in the objective as DPP;
    ``hot.HotHighs`` turns such rows into column bounds again."""
    return {
        "charge_cap": v["charge_kw"] <= p["charge_cap_kw"],
        "discharge_cap": v["discharge_kw"] <= p["discharge_cap_kw"],
        "import_cap": v["import_kw"] <= p["import_cap_kw"],
        "export_cap": v["export_kw"] <= p["export_cap_kw"],
        "curtail_cap": v["curtail_kw"] <= p["pv_kw"],
        "energy_cap": v["energy_kwh"] <= config.battery.energy_kwh,
        "peak_floor": v["peak_kw"] >= p["peak_so_far_kw"],
    }


def demand_peaks(v: Vars, p: Params, n_months: int, labels: np.ndarray | None) -> Rows:
    """``z_k >= g_t + o_t - M_kt``: each billing month's peak covers its slots' import (with
    fixed labels, rows only for the month's own slots)."""
    grid_in = v["import_kw"] + v["import_over_kw"]
    rows: Rows = {}
    months = None if labels is None else list(dict.fromkeys(labels.tolist()))
    for k in range(n_months):
        if months is None:
            rows[f"demand_peak[{k}]"] = grid_in - v["peak_kw"][k] <= p["demand_relax_kw"][k]
        else:
            slots = np.flatnonzero(labels == months[k])
            rows[f"demand_peak[{k}]"] = grid_in[slots] - v["peak_kw"][k] <= 0
    return rows


def objective(v: Vars, p: Params, config: SiteConfig, dt_h: float, n_slots: int) -> cp.Expression:
    """Energy, carbon, wear, soft-limit penalties, demand charge, less the terminal value."""
    b, pen = config.battery, config.plan.soft_penalty_per_kwh
    c, d, e = v["charge_kw"], v["discharge_kw"], v["energy_kwh"]
    grid_in = v["import_kw"] + v["import_over_kw"]
    return (
        p["import_cost_per_kw"] @ grid_in
        - p["export_revenue_per_kw"] @ v["export_kw"]
        + b.wear_cost_per_kwh * dt_h * cp.sum(c + d)
        + pen * dt_h * cp.sum(v["import_over_kw"])
        + config.plan.reserve_penalty_per_kwh * dt_h * cp.sum(v["reserve_short_kwh"])
        + pen * (cp.sum(v["soc_low_kwh"] + v["soc_high_kwh"]) + v["terminal_short_kwh"])
        + p["demand_charge_per_kw"] @ v["peak_kw"]
        - p["terminal_value_per_kwh"] * e[n_slots - 1]
    )


def build(
    config: SiteConfig,
    n_slots: int,
    dt_h: float,
    n_months: int | None = None,
    fixed_months: Sequence[str] | None = None,
) -> Formulation:
    """Build the dispatch program for one site and horizon length from the named builders.

    Parameters
    ----------
    config : SiteConfig
        Battery, grid and plan settings (constants of the program).
    n_slots : int
        Slots in the horizon.
    dt_h : float
        Slot length (hours).
    n_months : int, optional
        Billing months the horizon may touch; by default from its length.
    fixed_months : sequence of str, optional
        The billing-month label of every slot, fixed for the life of the program (a year-long
        offline solve): each month then gets demand rows only for its own slots, instead of
        ``n_months`` rows per slot relaxed by a parameter.

    Returns
    -------
    Formulation
    """
    T = n_slots
    labels = None if fixed_months is None else np.asarray(fixed_months, dtype=str)
    if labels is not None and labels.shape != (T,):
        raise ValueError(f"fixed_months has {labels.size} labels for {T} slots")
    K = len(set(labels.tolist())) if labels is not None else n_months or months_touched(T, dt_h)
    p = _parameters(T, K)
    shapes = {"peak_kw": (K,), "terminal_short_kwh": ()}
    v = {name: cp.Variable(shapes.get(name, (T,)), name=name, nonneg=True) for name in VARIABLES}
    rows = {**power_balance(v, p), **energy_dynamics(v, p, config, dt_h), **soc_window(v, config),
            **reserves(v, p, T), **caps(v, p, config), **demand_peaks(v, p, K, labels)}
    problem = cp.Problem(cp.Minimize(objective(v, p, config, dt_h, T)), list(rows.values()))
    fixed = None if labels is None else tuple(labels.tolist())
    return Formulation(problem, p, v, rows, T, dt_h, K, fixed)
