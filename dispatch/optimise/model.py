"""``DispatchModel``: the site's program built once, fed a ``Forecast`` each step, always
answering with a ``Plan``.

Role: set the parameters from a forecast and the site's state, pick the solver path, repair
slots where the LP would charge and discharge (or import and export) at once, and wrap the
result. A solver failure yields the fallback plan with its reason; only bad inputs raise.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd

from dispatch.config import SiteConfig
from dispatch.optimise.days_off import BaseReserve
from dispatch.optimise.formulation import Formulation, build
from dispatch.optimise.hot import Deferred, HotHighs
from dispatch.optimise.outcome import SlotInputs, fallback_plan, make_plan, plan_frame
from dispatch.optimise.risk import (
    Recharge,
    paths_reserve_floor_kwh,
    peak_margin_kw,
    peak_reserve_floor_kwh,
)
from dispatch.types import ConfigError, Forecast, InputError, Plan

#: Above this many slots a first solve from scratch is faster with interior point than with dual
#: simplex (seconds at 2016 slots); re-solves stay hot-started simplex (bench_optimise).
SIMPLEX_MAX_SLOTS = 700
#: Opposite flows both above this are repaired by a re-solve; below it they are netted (kW).
SIMULTANEOUS_TOL_KW = 1e-3
_REQUIRED = ("price_import_per_kwh", "price_export_per_kwh", "ci_g_per_kwh")


def solver_path(name: str, n_slots: int) -> tuple[str, str]:
    """Map a configured solver name to (path, method).

    ``"auto"`` -> the persistent HiGHS model, hot-started simplex; beyond ``SIMPLEX_MAX_SLOTS``
    slots the first solve uses interior point. ``"highs-simplex"``, ``"highs-ipm"`` and
    ``"highs-ipm+simplex"`` force the method; any other name is a cvxpy solver (``"HIGHS"``,
    ``"CLARABEL"``, ...) solved through cvxpy.
    """
    if name == "auto":
        return "hot", "simplex" if n_slots <= SIMPLEX_MAX_SLOTS else "ipm+simplex"
    if name in ("highs-simplex", "highs-ipm", "highs-ipm+simplex"):
        return "hot", name.removeprefix("highs-")
    if name.upper() not in cp.installed_solvers():
        raise ConfigError(
            f"plan.solver = {name!r} is not available; use 'auto', 'highs-simplex', 'highs-ipm', "
            f"'highs-ipm+simplex' or one of {cp.installed_solvers()}"
        )
    return "cvxpy", name.upper()


class DispatchModel:
    """The dispatch LP of one site for a fixed number of slots, re-solved every step.

    Parameters
    ----------
    config : SiteConfig
        The site.
    n_slots : int, optional
        Horizon length; defaults to ``config.plan.n_slots``.
    n_months : int, optional
        Billing months a horizon may touch (more for long offline horizons).
    fixed_months : sequence of str, optional
        Billing-month label of every slot, fixed for every solve (a single year-long solve);
        keeps the program small when it spans many months.
    """

    def __init__(
        self,
        config: SiteConfig,
        n_slots: int | None = None,
        n_months: int | None = None,
        fixed_months: Sequence[str] | None = None,
    ):
        self.config = config
        self.n_slots = n_slots or config.plan.n_slots
        self.step = pd.Timedelta(minutes=config.plan.step_min)
        self.dt_h = config.plan.step_min / 60.0
        self.reserve_window = max(1, round(config.plan.peak_reserve_window_h / self.dt_h))
        self.form: Formulation = build(config, self.n_slots, self.dt_h, n_months, fixed_months)
        self.path, self.method = solver_path(config.plan.solver, self.n_slots)
        self._hot: HotHighs | None = None
        self._solution: dict[str, Any] = {}  # the variables' values of the last solve
        self._duals: Mapping[str, np.ndarray] = {}  # its named constraints' duals
        self._base_reserve = BaseReserve(config)
        self._one_month = np.full(self.n_slots, "month")  # the labels when none are given
        self._one_month.flags.writeable = False
        #: The per-slot reserve (kWh) the last solve kept (``reserve_kwh``), None before one.
        self.reserve_used_kwh: np.ndarray | None = None

    # ----------------------------------------------------------------- inputs
    def slot_inputs(
        self,
        forecast: Forecast,
        soc_frac: float,
        billing_month: Sequence[str] | None,
        peak_so_far_kw: Mapping[str, float] | float,
        held_target_kw: Mapping[str, float] | None = None,
    ) -> SlotInputs:
        """Check a forecast against this model and gather the per-slot inputs."""
        f = forecast.frame
        if len(f) != self.n_slots:
            raise InputError(f"forecast has {len(f)} slots, the model was built for {self.n_slots}")
        if forecast.step != self.step:
            raise InputError(
                f"forecast step {forecast.step} differs from plan.step_min {self.step}"
            )
        missing = [c for c in _REQUIRED if c not in f.columns]
        if missing:
            raise InputError(
                f"forecast lacks {missing}; fill them from the tariff and carbon config"
            )
        if not 0.0 <= soc_frac <= 1.0 or not np.isfinite(soc_frac):
            raise InputError(f"soc_frac = {soc_frac} must lie in [0, 1]")
        fixed = self.form.fixed_months
        if billing_month is None and fixed is None:
            months = self._one_month
        else:
            months = np.asarray(fixed if billing_month is None else billing_month, dtype=str)
        if len(months) != self.n_slots:
            raise InputError(f"billing_month has {len(months)} labels for {self.n_slots} slots")
        if fixed is not None and tuple(months.tolist()) != fixed:
            raise InputError("billing_month differs from the labels the model was built with")
        if len(set(months.tolist())) > self.form.n_months:
            raise InputError(
                f"the horizon touches {len(set(months.tolist()))} billing months; the model "
                f"was built for {self.form.n_months}"
            )
        if not isinstance(peak_so_far_kw, Mapping):
            peak_so_far_kw = {str(months[0]): float(peak_so_far_kw)}
        energy = soc_frac * self.config.battery.energy_kwh
        margin = peak_margin_kw(forecast, self.config.plan.peak_risk_quantile)
        x = SlotInputs.from_frame(forecast, self.dt_h, months, peak_so_far_kw, energy, margin,
                                  held_target_kw)  # fmt: skip
        paths, plan = forecast.load_scenarios_kw, self.config.plan
        sized_on_paths = plan.peak_reserve_sizing == "scenarios" and plan.peak_risk_quantile > 0.5
        if paths is None or paths.shape[1] == 0 or not sized_on_paths:
            return x
        return replace(x, net_scenarios_kw=paths.to_numpy(float).T - x.pv_kw[None, :])

    def _parameter_values(
        self, x: SlotInputs, caps: dict[str, np.ndarray], reserve_kwh: np.ndarray
    ) -> dict[str, Any]:
        cfg = self.config
        carbon = cfg.carbon.price_per_kg * x.ci_g_per_kwh / 1000.0
        p: dict[str, Any] = {
            "net_load_kw": x.load_kw - x.pv_kw,
            "pv_kw": x.pv_kw,
            "import_cost_per_kw": self.dt_h * (x.price_import_per_kwh + carbon),
            "export_revenue_per_kw": self.dt_h * x.price_export_per_kwh,
            **caps,
        }
        big_m = float(np.max(x.load_kw) + caps["charge_cap_kw"].max() + cfg.grid.import_max_kw + 1)
        months = x.months
        K = self.form.n_months
        relax = np.full((K, self.n_slots), big_m)
        charge = np.zeros(K)
        peaks = np.zeros(K)
        for k, month in enumerate(months):
            relax[k, x.billing_month == month] = 0.0
            charge[k] = cfg.tariff.demand_charge_per_kw_month * x.demand_charge_frac.get(month, 1.0)
            peaks[k] = max(0.0, float(x.peak_so_far_kw.get(month, 0.0)))
        p["demand_relax_kw"] = relax
        p["demand_charge_per_kw"] = charge
        p["peak_so_far_kw"] = peaks
        p["energy_start_kwh"] = x.energy_start_kwh
        p["reserve_kwh"] = reserve_kwh
        p["terminal_target_kwh"] = self._terminal_target(x.energy_start_kwh)
        p["terminal_value_per_kwh"] = 0.0
        return p

    def reserve_kwh(self, x: SlotInputs) -> tuple[np.ndarray, np.ndarray]:
        """Per slot, the energy to keep and the part of it held only for the load's
        uncertainty (kWh).

        The configured reserve (higher on days off, ``plan.day_off_reserve_frac``, see
        ``days_off``), raised by the peak floor when the inputs carry a margin or load paths
        (``plan.peak_reserve_sizing``, see ``risk``; with ``plan.peak_reserve_recharge``
        counting the charging below the target between peaks). The month's target held is
        its peak so far or ``x.held_target_kw``, whichever is higher.
        """
        b = self.config.battery
        base = self._base_reserve.kwh(x.index)
        none = np.zeros(self.n_slots)
        uncertain = x.peak_margin_kw is not None or x.net_scenarios_kw is not None
        if not uncertain or self.config.tariff.demand_charge_per_kw_month <= 0:
            return base, none
        so_far, held_kw = x.peak_so_far_kw, x.held_target_kw
        held = {m: max(float(so_far.get(m, 0.0)), float(held_kw.get(m, 0.0))) for m in x.months}
        target = np.array([held[m] for m in x.billing_month])
        net = x.load_kw - x.pv_kw
        plan = self.config.plan
        recharge = None
        if plan.peak_reserve_recharge:
            usable_kwh = (b.soc_max_frac - b.soc_min_frac) * b.energy_kwh
            recharge = Recharge(b.charge_max_kw, b.eta_charge, usable_kwh)
        args = (self.dt_h, b.eta_discharge, self.reserve_window, recharge)
        if x.net_scenarios_kw is not None:
            floor, held_back = paths_reserve_floor_kwh(
                net, x.net_scenarios_kw, plan.peak_risk_quantile, target, *args
            )
        else:
            floor, held_back = peak_reserve_floor_kwh(net, x.peak_margin_kw, target, *args)
        e_min, e_max = b.soc_min_frac * b.energy_kwh, b.soc_max_frac * b.energy_kwh
        return np.maximum(base, np.minimum(e_min + floor, e_max)), held_back

    def _terminal_target(self, energy_start_kwh: float) -> float:
        plan, b = self.config.plan, self.config.battery
        if plan.terminal_soc == "free":
            return 0.0
        if plan.terminal_soc == "target":
            return float(plan.terminal_soc_frac) * b.energy_kwh  # type: ignore[arg-type]
        return min(energy_start_kwh, b.soc_max_frac * b.energy_kwh)

    def default_caps(self) -> dict[str, np.ndarray]:
        """Per-slot power caps from the configuration (kW)."""
        T, cfg = self.n_slots, self.config
        return {
            "import_cap_kw": np.full(T, cfg.grid.import_max_kw),
            "export_cap_kw": np.full(T, cfg.grid.export_limit_kw),
            "charge_cap_kw": np.full(T, cfg.battery.charge_max_kw),
            "discharge_cap_kw": np.full(T, cfg.battery.discharge_max_kw),
        }

    # ------------------------------------------------------------------ solve
    def _run(self, values: dict[str, Any]) -> tuple[bool, str, float]:
        """Solve with these parameter values; returns (optimal, status, objective) and keeps
        the variables' values in ``self._solution`` and the named constraints' duals in
        ``self._duals``."""
        params, variables, rows = self.form.params, self.form.variables, self.form.constraints
        if self.path == "hot":
            if self._hot is None:
                for name, value in values.items():  # the first compile needs values
                    params[name].value = value
                opts = dict(self.config.plan.solver_options)
                self._hot = HotHighs(self.form.problem, self.method, opts)
            res = self._hot.solve({params[k].id: v for k, v in values.items()})
            self._solution = {k: res.values[var.id] for k, var in variables.items()}
            duals = res.duals  # computed when read (status page, plan JSON)
            self._duals = (
                Deferred(lambda: {k: duals[c.id] for k, c in rows.items()}) if res.optimal else {}
            )
            return res.optimal, res.status, res.objective
        for name, value in values.items():
            params[name].value = value
        prob = self.form.problem
        prob.solve(solver=self.method, **self.config.plan.solver_options)
        ok = prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)
        self._solution = {k: var.value for k, var in variables.items()} if ok else {}
        self._duals = {k: np.ravel(np.asarray(c.dual_value, dtype=float))
                       for k, c in rows.items()} if ok else {}  # fmt: skip
        return ok, str(prob.status), float(prob.value) if ok else float("nan")

    def _values(self, name: str) -> np.ndarray:
        return np.maximum(np.asarray(self._solution[name], dtype=float), 0.0)

    def solve(
        self,
        forecast: Forecast,
        soc_frac: float | None = None,
        billing_month: Sequence[str] | None = None,
        peak_so_far_kw: Mapping[str, float] | float = 0.0,
        caps: Mapping[str, np.ndarray] | None = None,
        held_target_kw: Mapping[str, float] | None = None,
    ) -> Plan:
        """Plan the battery over the forecast's horizon.

        Parameters
        ----------
        forecast : Forecast
            Expected PV, load, prices and carbon intensity per slot (all columns required).
        soc_frac : float, optional
            Measured state of charge now (fraction); defaults to ``battery.soc_initial_frac``.
        billing_month : sequence of str, optional
            Billing-month label of each slot (see ``tariff.billing_month``); one month if omitted.
        peak_so_far_kw : mapping or float
            Peak import already reached per billing month (kW); a float applies to the first.
        caps : mapping, optional
            Per-slot overrides of ``import_cap_kw``, ``export_cap_kw``, ``charge_cap_kw``,
            ``discharge_cap_kw`` (kW), e.g. device-reported limits.
        held_target_kw : mapping, optional
            The peak target the guard holds per billing month (kW): the plan in force's.

        Returns
        -------
        Plan
            Optimal, or the fallback plan with the reason when the solver fails.
        """
        soc = self.config.battery.soc_initial_frac if soc_frac is None else float(soc_frac)
        inputs = self.slot_inputs(forecast, soc, billing_month, peak_so_far_kw, held_target_kw)
        return self.solve_inputs(inputs, caps)

    def solve_inputs(self, x: SlotInputs, caps: Mapping[str, np.ndarray] | None = None) -> Plan:
        """``solve`` for inputs already gathered as arrays.

        ``x`` must have this model's length, step and billing-month layout (see
        ``slot_inputs``, which checks them); ``caps`` as in ``solve``.
        """
        t0 = time.perf_counter()
        outcome = self._optimise(x, caps)
        ms = (time.perf_counter() - t0) * 1e3
        if isinstance(outcome, str):
            return fallback_plan(x, self.config, outcome, ms)
        values, objective, notes, held_back = outcome
        return self._plan(x, values, objective, ms, notes, held_back)

    def _optimise(
        self, x: SlotInputs, caps: Mapping[str, np.ndarray] | None
    ) -> tuple[dict[str, Any], float, str, np.ndarray] | str:
        """Solve, repairing simultaneous opposite flows; (parameter values, objective, notes,
        the reserve held for uncertainty) on success, else the reason for a fallback."""
        limits = self.default_caps()
        for name, value in (caps or {}).items():
            if name not in limits:
                raise InputError(f"unknown cap {name!r}; allowed {sorted(limits)}")
            limits[name] = np.minimum(limits[name], np.maximum(np.asarray(value, float), 0.0))
        notes: list[str] = []
        reserve, held_back = self.reserve_kwh(x)
        self.reserve_used_kwh = reserve
        try:
            # each repair separates the flows of at least one more slot for good, so this many
            # solves always end separated (one or two in practice; more when the costs
            # leave the LP indifferent to losses, e.g. all prices zero)
            for _attempt in range(2 * self.n_slots + 1):
                values = self._parameter_values(x, limits, reserve)
                ok, status, objective = self._run(values)
                if not ok:
                    return f"solver status {status}"
                if not self._force_directions(limits, notes):
                    return values, objective, "; ".join(notes), held_back
        except (cp.error.SolverError, ValueError, ArithmeticError) as exc:
            return f"solver failed: {exc}"
        return "opposite flows could not be separated"

    def _force_directions(self, limits: dict[str, np.ndarray], notes: list[str]) -> bool:
        """Close the smaller of two opposite flows in slots where the LP used both at once
        (only profitable at negative prices); True when a re-solve is needed."""
        changed = False
        pairs = (
            ("charge_kw", "discharge_kw", "charge_cap_kw", "discharge_cap_kw", "charge/discharge"),
            ("import_kw", "export_kw", "import_cap_kw", "export_cap_kw", "import/export"),
        )
        for a, b, cap_a, cap_b, what in pairs:
            va, vb = self._values(a), self._values(b)
            both = np.flatnonzero((va > SIMULTANEOUS_TOL_KW) & (vb > SIMULTANEOUS_TOL_KW))
            if both.size == 0:
                continue
            close_a = both[va[both] <= vb[both]]
            close_b = both[va[both] > vb[both]]
            limits[cap_a][close_a] = 0.0
            limits[cap_b][close_b] = 0.0
            notes.append(f"{what} at once in {both.size} slot(s); one direction forced")
            changed = True
        return changed

    def _slot_targets(self, x: SlotInputs) -> np.ndarray:
        """Each slot's billing-month peak target from the solution (kW)."""
        months = x.months
        peaks = self._values("peak_kw")
        target = np.empty(self.n_slots)
        for k, month in enumerate(months):
            target[x.billing_month == month] = peaks[k]
        return target

    def _plan(
        self, x: SlotInputs, values: dict[str, Any], objective: float, solve_ms: float,
        message: str, held_back: np.ndarray,
    ) -> Plan:  # fmt: skip
        v = self._values
        net_batt = v("discharge_kw") - v("charge_kw")  # nets the sub-tolerance residue of
        frame = plan_frame(  # interior-point solvers
            x,
            np.maximum(-net_batt, 0.0),
            np.maximum(net_batt, 0.0),
            v("curtail_kw"),
            v("energy_kwh"),
            self.config,
            self._slot_targets(x),
            held_back,
        )
        dt = self.dt_h
        soft = {
            "import_over_cap_kwh": float(dt * v("import_over_kw").sum()),
            "soc_below_min_kwh": float(v("soc_low_kwh").sum()),
            "soc_above_max_kwh": float(v("soc_high_kwh").sum()),
            "reserve_short_kwh_h": float(dt * v("reserve_short_kwh").sum()),
            "terminal_short_kwh": float(v("terminal_short_kwh").sum()),
        }
        label = "highs-" + self.method if self.path == "hot" else self.method
        return make_plan(
            frame,
            x,
            self.config,
            status="optimal",
            solve_ms=solve_ms,
            solver=label,
            message=message,
            objective=objective - float(values["demand_charge_per_kw"] @ values["peak_so_far_kw"]),
            soft_violation_kwh=soft,
            duals=self._duals,
        )
