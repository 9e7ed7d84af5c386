"""Backtests: replay a scenario's period and cost each strategy on the same data.

Role: the reference strategies around our controller (which is the daemon itself, replayed
by ``sim.replay``): no battery (the reference bill), the inverter's self-consumption rule, a
monthly peak-shaving rule, the bare receding-horizon optimiser told a chosen forecast
(``replay`` with ``optimiser``: naive or perfect forecasts, no guard, no reserve), and the
perfect-foresight optimum over the whole period (one LP, the bound no controller can beat).
The plant of ``sim.plant`` is the truth; prices and billing come from ``dispatch`` exactly as
the daemon uses them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from dispatch import pipeline, tariff
from dispatch.config import SiteConfig
from dispatch.optimise import DispatchModel
from dispatch.optimise.outcome import SlotInputs, costs_of
from dispatch.types import PlanCosts
from sim.forecasters import Forecaster, perfect
from sim.foresight import Foresight
from sim.plant import Plant, PlantOptions, PlantState
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
        ``p_load_kw``, ``soc_frac`` (end of slot), prices and intensity; with a live guard
        also ``peak_target_kw``, the import it held in the slot.
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
    """The whole period as optimiser inputs: tariff prices, intensity, billing months, and
    the share of each month's demand charge billed (pro rata for a month the period covers
    only in part)."""
    config, data = scenario.config, scenario.data
    frame = pipeline.complete_forecast(config, data).frame
    months = tariff.billing_month(config, frame.index).to_numpy(str)
    energy = scenario.soc_initial_frac * config.battery.energy_kwh
    x = SlotInputs.from_frame(frame, config.plan.step_min / 60.0, months, {}, energy)
    return replace(x, demand_charge_frac=tariff.month_coverage(config, frame.index))


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


def _outcome(
    name: str, scenario: Scenario, x: SlotInputs, frame: pd.DataFrame, t0: float
) -> Outcome:
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


def perfect_foresight(
    scenario: Scenario, solver: str = "highs-ipm", terminal_soc: str = "free"
) -> Outcome:
    """The optimum over the whole period with every value known in advance: one LP.

    Parameters
    ----------
    scenario : Scenario
        The site and its data.
    solver : str
        ``plan.solver`` for this one large solve (interior point by default).
    terminal_soc : str
        End-of-period SoC rule; ``"free"`` makes it a bound no strategy can beat, since a
        strategy may end the period with any SoC.

    The reserve on days off (``plan.day_off_reserve_frac``) hedges forecasts that perfect
    foresight does not need: the bound holds none.
    """
    t0 = time.perf_counter()
    x = period_inputs(scenario)
    plan_cfg = scenario.config.plan.model_copy(
        update={"solver": solver, "terminal_soc": terminal_soc, "day_off_reserve_frac": None}
    )
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


# ----------------------------------------------------------------------- receding horizon


def _padded(x: SlotInputs, horizon: int, config: SiteConfig) -> SlotInputs:
    """The period's inputs extended by ``horizon`` slots that repeat its last ``horizon``
    slots, so the last plans of the period still see a full horizon."""
    step = x.index[1] - x.index[0]
    index = pd.date_range(x.index[0], periods=len(x.index) + horizon, freq=step)

    def ext(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a, a[-horizon:]])

    return SlotInputs(
        index=index,
        dt_h=x.dt_h,
        pv_kw=ext(x.pv_kw),
        load_kw=ext(x.load_kw),
        price_import_per_kwh=ext(x.price_import_per_kwh),
        price_export_per_kwh=ext(x.price_export_per_kwh),
        ci_g_per_kwh=ext(x.ci_g_per_kwh),
        billing_month=tariff.billing_month(config, index).to_numpy(str),
        peak_so_far_kw={},
        energy_start_kwh=x.energy_start_kwh,
    )


@dataclass
class Meter:
    """Per-slot realised flows from the plant's energy counters."""

    p_batt_kw: np.ndarray
    p_curtail_kw: np.ndarray
    soc_frac: np.ndarray
    previous: dict[str, float]

    @classmethod
    def zeros(cls, n: int) -> Meter:
        """A meter for ``n`` slots of a plant whose counters start at zero."""
        counters = dict.fromkeys(("e_discharge_kwh", "e_charge_kwh", "e_curtail_kwh"), 0.0)
        return cls(np.zeros(n), np.zeros(n), np.zeros(n), counters)

    def record(self, i: int, state: PlantState, dt_h: float) -> None:
        now = {k: getattr(state, k) for k in ("e_discharge_kwh", "e_charge_kwh", "e_curtail_kwh")}
        d = {k: now[k] - self.previous[k] for k in now}
        self.p_batt_kw[i] = (d["e_discharge_kwh"] - d["e_charge_kwh"]) / dt_h
        self.p_curtail_kw[i] = d["e_curtail_kwh"] / dt_h
        self.soc_frac[i] = state.soc_frac
        self.previous = now


@dataclass(frozen=True)
class Step:
    """What a controller may see at the start of slot ``i`` of a replay.

    Attributes
    ----------
    i : int
        Slot number in the period.
    truth : SlotInputs
        The period's data padded by one horizon; a fair controller reads PV and load only
        before slot ``i``, and prices and intensities as published (``sim.foresight``).
    energy_kwh : float
        Stored energy now (kWh).
    peaks_kw : dict of str to float
        Realised peak import so far in each billing month (kW).
    """

    i: int
    truth: SlotInputs
    energy_kwh: float
    peaks_kw: dict[str, float]


#: A controller returns the battery setpoint for the slot (kW, > 0 discharge), or None to
#: leave the battery in the inverter's own self-consumption mode; or a pair (setpoint, the
#: month's peak target it holds, kW), which the outcome keeps as ``peak_target_kw``.
Controller = Callable[[Step], float | tuple[float, float] | None]


def replay(
    scenario: Scenario,
    controller: Controller,
    name: str,
    plant_options: PlantOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Outcome:
    """Step the plant through the period, asking ``controller`` for a setpoint each slot.

    Parameters
    ----------
    scenario : Scenario
        Site and data.
    controller : Controller
        The strategy.
    name : str
        Strategy name in the outcome.
    plant_options : PlantOptions, optional
        Plant physics; by default no derating and no standby loss, like the plan's model.
    progress : callable, optional
        Called as ``progress(slots_done, slots_total)`` after every slot (e.g. a progress line).
    """
    t0 = time.perf_counter()
    config = scenario.config
    x = period_inputs(scenario)
    T, dt_h = len(x.index), x.dt_h
    truth = _padded(x, config.plan.n_slots, config)
    options = plant_options or PlantOptions(derate_band_frac=0.0, standby_loss_frac_per_h=0.0)
    plant = Plant(config, replace(options, soc_initial_frac=scenario.soc_initial_frac),
                  start=x.index[0].to_pydatetime())  # fmt: skip
    meter = Meter.zeros(T)
    peaks: dict[str, float] = {}
    targets = np.full(T, np.nan)
    for i in range(T):
        now = x.index[i].to_pydatetime()
        setpoint = controller(Step(i, truth, plant.energy_kwh, peaks))
        if isinstance(setpoint, tuple):
            setpoint, targets[i] = setpoint
        if setpoint is None:
            plant.release(now)
        else:
            plant.set_battery_setpoint(setpoint, now)
        state = plant.step(now, dt_h * 3600.0, x.pv_kw[i], x.load_kw[i])
        meter.record(i, state, dt_h)
        grid = x.load_kw[i] - x.pv_kw[i] + meter.p_curtail_kw[i] - meter.p_batt_kw[i]
        month = x.billing_month[i]
        peaks[month] = max(peaks.get(month, 0.0), grid)
        if progress is not None:
            progress(i + 1, T)
    out = outcome_of(name, scenario, x, meter, t0)
    if np.isfinite(targets).any():
        out.frame["peak_target_kw"] = targets
    return out


def outcome_of(name: str, scenario: Scenario, x: SlotInputs, meter: Meter, t0: float) -> Outcome:
    """The outcome of a replay from its meter (``t0``: its start, ``time.perf_counter``)."""
    frame = realised(x, meter.p_batt_kw, meter.soc_frac, meter.p_curtail_kw)
    return _outcome(name, scenario, x, frame, t0)


def optimiser(
    config: SiteConfig,
    forecaster: Forecaster = perfect,
    record: list | None = None,
    foresight: Foresight | None = None,
) -> Controller:
    """The bare receding-horizon optimiser as a controller: forecast the horizon, solve with
    the plant's SoC and the month's realised peak, apply the first slot (no live guard, no
    reserve: a reference, not our controller, which is ``sim.replay``).

    Parameters
    ----------
    config : SiteConfig
        The site.
    forecaster : Forecaster
        What the controller is told about the horizon.
    record : list, optional
        Collects each step's ``SlotInputs`` (for reference re-solves).
    foresight : Foresight, optional
        The prices and intensity as known at each step (``sim.foresight``); by default the
        controller is handed the real ones of its whole horizon.
    """
    model = DispatchModel(config)
    H = config.plan.n_slots

    def decide(step: Step) -> float:
        pv_f, load_f = forecaster(step.truth, step.i, H)
        window = replace(
            _window(step.truth, step.i, H), pv_kw=pv_f, load_kw=load_f,
            peak_so_far_kw=dict(step.peaks_kw), energy_start_kwh=step.energy_kwh,
        )  # fmt: skip
        if foresight is not None:
            imp, exp, ci = foresight.window(step.i, H)
            window = replace(window, price_import_per_kwh=imp, price_export_per_kwh=exp,
                             ci_g_per_kwh=ci)  # fmt: skip
        if record is not None:
            record.append(window)
        plan = model.solve_inputs(window)
        return 0.0 if plan.is_fallback else float(plan.frame["p_batt_kw"].iloc[0])

    return decide


def receding(
    scenario: Scenario,
    forecaster: Forecaster = perfect,
    name: str = "receding_perfect",
    progress: Callable[[int, int], None] | None = None,
    published_only: bool = False,
) -> Outcome:
    """Replay the period with the optimiser planning every step (see ``optimiser``);
    ``progress`` as in ``replay``. With ``published_only`` the plans see prices and intensity
    only as published (``sim.foresight``), else the real ones of the horizon."""
    known = Foresight.of(scenario, scenario.config.plan.n_slots) if published_only else None
    controller = optimiser(scenario.config, forecaster, foresight=known)
    return replay(scenario, controller, name, progress=progress)


def self_consumption(scenario: Scenario) -> Outcome:
    """The inverter's own rule: charge from PV surplus, discharge to cover the load."""
    return replay(scenario, lambda step: None, "self_consumption")


def peak_shaving(scenario: Scenario, factor: float = 0.9) -> Outcome:
    """A monthly threshold rule on top of self-consumption.

    The threshold of a billing month is ``factor`` x the highest net load (load - PV) of the
    previous billing month (for the first month: of its first day). Above it the battery
    discharges the excess; below it, it charges from PV surplus and from the grid up to the
    threshold, so it is full for the next peak.
    """
    config = scenario.config
    b = config.battery
    e_max, e_min = b.soc_max_frac * b.energy_kwh, b.soc_min_frac * b.energy_kwh
    thresholds: dict[str, float] = {}

    def decide(step: Step) -> float:
        x, i = step.truth, step.i
        month = x.billing_month[i]
        if month not in thresholds:
            thresholds[month] = factor * _previous_month_peak(x, i)
        net = x.load_kw[i] - x.pv_kw[i]
        excess = net - thresholds[month]
        if excess > 0:
            return min(excess, b.discharge_max_kw) if step.energy_kwh > e_min else 0.0
        if step.energy_kwh < e_max:
            return -min(-excess, b.charge_max_kw)
        return 0.0

    return replay(scenario, decide, f"peak_shaving_{factor:g}")


def _previous_month_peak(x: SlotInputs, i: int) -> float:
    """Highest net load of the billing month before slot ``i``'s (or of the first day)."""
    net = x.load_kw - x.pv_kw
    before = np.flatnonzero(x.billing_month[:i] != x.billing_month[i])
    if before.size == 0:
        day = round(24 / x.dt_h)
        return float(net[: max(day, i)].max())
    previous = x.billing_month[before[-1]]
    return float(net[:i][x.billing_month[:i] == previous].max())


def _window(x: SlotInputs, i: int, horizon: int) -> SlotInputs:
    sl = slice(i, i + horizon)
    return SlotInputs(
        index=x.index[sl], dt_h=x.dt_h, pv_kw=x.pv_kw[sl], load_kw=x.load_kw[sl],
        price_import_per_kwh=x.price_import_per_kwh[sl],
        price_export_per_kwh=x.price_export_per_kwh[sl], ci_g_per_kwh=x.ci_g_per_kwh[sl],
        billing_month=x.billing_month[sl], peak_so_far_kw={}, energy_start_kwh=0.0,
    )  # fmt: skip
