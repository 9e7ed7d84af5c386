"""A threshold rule done properly: the fair rule baseline for the monthly demand charge.

Role: the baseline a plant engineer would set up without an optimiser, so that our
controller is judged against the best a rule can do and not against a straw man. Each billing
month the battery holds grid import at a threshold:

- the threshold a month starts with is the lowest the battery could have held through the
  previous billing month's net load (load - PV), starting full (``holdable_threshold_kw``);
  the first month, which has no previous one, takes its first day's (a look ahead the rule is
  granted, as ``sim.backtest.peak_shaving``'s first month is);
- when the import nevertheless exceeds it (a month with higher load than the last), the
  threshold is raised to that import: the month's demand charge is set, and shaving below it
  would only drain the battery for the next peak (the ratchet);
- above the threshold the battery discharges the excess; below it, it charges from PV surplus
  and from the grid up to the threshold, so the whole usable battery is the reserve kept for
  the next peak. It never trades on prices.

Depends on ``sim.backtest`` (the replay) and the config.
"""

from __future__ import annotations

import numpy as np

from dispatch.config import BatterySection
from sim.backtest import Outcome, Step, replay
from sim.scenario import Scenario

__all__ = ["NAME", "holdable_threshold_kw", "threshold_ratchet"]

NAME = "threshold_ratchet"
#: The threshold search stops when its bracket is this narrow (kW).
TOLERANCE_KW = 0.5


def _holds(
    net_kw: np.ndarray, thresholds_kw: np.ndarray, dt_h: float, battery: BatterySection
) -> np.ndarray:
    """Whether the rule, starting full, keeps the import at or below each threshold through
    ``net_kw`` (one bool per threshold)."""
    b = battery
    e_min, e_max = b.soc_min_frac * b.energy_kwh, b.soc_max_frac * b.energy_kwh
    energy = np.full(thresholds_kw.shape, e_max)
    held = np.ones(thresholds_kw.shape, dtype=bool)
    for net in net_kw:
        need = np.maximum(net - thresholds_kw, 0.0)  # kW above the threshold
        can = np.minimum((energy - e_min) * b.eta_discharge / dt_h, b.discharge_max_kw)
        held &= need <= can + 1e-9
        discharge = np.minimum(need, can)
        room = (e_max - energy) / (b.eta_charge * dt_h)  # kW the battery can take
        charge = np.minimum(np.clip(thresholds_kw - net, 0.0, b.charge_max_kw), room)
        energy = energy + dt_h * (b.eta_charge * charge - discharge / b.eta_discharge)
    return held


def holdable_threshold_kw(net_kw: np.ndarray, dt_h: float, battery: BatterySection) -> float:
    """The lowest import threshold (kW) the rule could have held through ``net_kw`` (net load
    per slot, kW, slots of ``dt_h`` hours), starting with the battery full (within
    ``TOLERANCE_KW``, never below 0 and never below what the discharge limit allows).

    The threshold is searched on a grid of 33 candidates per round, the bracket narrowed to
    the grid step around the lowest one held, until it is narrower than ``TOLERANCE_KW``.
    """
    net = np.asarray(net_kw, dtype=float)
    net = net[np.isfinite(net)]
    if net.size == 0:
        return 0.0
    lo, hi = max(0.0, float(net.max()) - battery.discharge_max_kw), max(float(net.max()), 0.0)
    while hi - lo > TOLERANCE_KW:
        grid = np.linspace(lo, hi, 33)
        held = _holds(net, grid, dt_h, battery)
        first = int(np.argmax(held)) if held.any() else len(grid) - 1
        lo, hi = (grid[first - 1] if first > 0 else grid[0]), grid[first]
        if first == 0:
            break
    return float(hi)


def threshold_ratchet(scenario: Scenario) -> Outcome:
    """Replay ``scenario`` with the ratcheting threshold rule (module docstring)."""
    config = scenario.config
    b = config.battery
    e_min, e_max = b.soc_min_frac * b.energy_kwh, b.soc_max_frac * b.energy_kwh
    thresholds: dict[str, float] = {}

    def decide(step: Step) -> tuple[float, float]:
        x, i = step.truth, step.i
        month = x.billing_month[i]
        if month not in thresholds:
            basis = _basis(x.load_kw - x.pv_kw, x.billing_month, i, x.dt_h)
            thresholds[month] = holdable_threshold_kw(basis, x.dt_h, b)
        threshold = thresholds[month] = max(thresholds[month], step.peaks_kw.get(month, 0.0))
        excess = x.load_kw[i] - x.pv_kw[i] - threshold
        if excess > 0:
            return (min(excess, b.discharge_max_kw) if step.energy_kwh > e_min else 0.0), threshold
        if step.energy_kwh < e_max:
            return -min(-excess, b.charge_max_kw), threshold
        return 0.0, threshold

    return replay(scenario, decide, NAME)


def _basis(net_kw: np.ndarray, months: np.ndarray, i: int, dt_h: float) -> np.ndarray:
    """The net load the threshold of slot ``i``'s month is set on: the previous billing
    month's, or for the first month its first day's."""
    before = np.flatnonzero(months[:i] != months[i])
    if before.size == 0:
        return net_kw[i : i + round(24 / dt_h)]
    return net_kw[:i][months[:i] == months[before[-1]]]
