"""What a completed control cycle tells the metrics beyond its reading and setpoint.

Role: after ``cycle.control_cycle`` has decided, written and committed its record, say to
``Metrics`` what the cycle worked with: the store's commit, the billing month's import peak
so far and the guard's target in force, the plan slot in force (prices, intensity, planned
powers), each device's fault level from its client's failure count, and whether the battery
follows the setpoint the devices accepted in the cycle before. The rules (levels, tolerance,
cycles) are in ``metrics`` and ``docs/grafana.md``. Imports ``control`` and ``devices``
(their types), ``types``, pandas and this package (never ``core`` or ``cycle``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from dispatch.control import ControlLimits
from dispatch.daemon.metrics import FOLLOW_TOL_FRAC
from dispatch.daemon.runtime import Services, SiteState, month_peak_kw
from dispatch.daemon.state import CycleState, billing_month_of
from dispatch.devices.client import DeviceClient
from dispatch.types import Plan, Snapshot


def follow_tolerance_kw(batteries: Sequence[DeviceClient], battery_max_kw: float) -> float:
    """The tracking tolerance (kW): ``FOLLOW_TOL_FRAC`` of the battery's larger rated power
    (``battery_max_kw``, the larger of ``[battery] charge_max_kw`` and ``discharge_max_kw``),
    never below the sum of the battery devices' write deadbands (``deadband_kw``)."""
    deadband_kw = sum(float(c.cfg.deadband_kw) for c in batteries)
    return max(FOLLOW_TOL_FRAC * battery_max_kw, deadband_kw)


def measured_batt_kw(snap: Snapshot, batteries: Sequence[DeviceClient]) -> float:
    """The battery power read fresh this cycle (kW, > 0 discharge): NaN when a battery
    device is stale or the power was only derived from the balance."""
    if "p_batt_kw" in snap.derived or any(c.name in snap.stale for c in batteries):
        return math.nan
    return snap.p_batt_kw


def accepted_kw(last: CycleState | None) -> float | None:
    """The setpoint the devices accepted in the cycle before (kW, > 0 discharge); None when
    there is nothing to follow: no such cycle, a failed write, or a handback to the default
    mode (the device runs its own mode then)."""
    if last is None or last.setpoints.default_mode or last.written_kw is None:
        return None
    return last.written_kw


def slot_in_force(plan: Plan | None, now: dt.datetime, step: pd.Timedelta) -> dict[str, Any] | None:
    """The row of ``plan`` whose slot (of length ``step``) contains ``now``, or None."""
    if plan is None or plan.frame.empty:
        return None
    index = plan.frame.index
    t = pd.Timestamp(now)
    pos = int(index.searchsorted(t, side="right")) - 1
    if pos < 0 or t >= index[pos] + step:
        return None
    return plan.slot(pos)


def cycle_metrics(
    sv: Services,
    st: SiteState,
    now: dt.datetime,
    snap: Snapshot,
    limits: ControlLimits,
    stored: bool = True,
) -> None:
    """Record what the cycle at ``now`` worked with (its reading ``snap``, its ``limits``;
    ``stored``: its record committed); call it after the cycle's store write and before
    ``st.last_cycle`` becomes this cycle."""
    m, cfg = sv.metrics, sv.config
    if stored:
        m.store_written(sv.clock.now())
    month = billing_month_of(now, cfg.billing_timezone)
    m.peaks(month_peak_kw(sv, st, month), limits.peak_target_kw)
    plan = st.plan_state.plan if st.plan_state is not None else None
    slot = slot_in_force(plan, now, pd.Timedelta(minutes=cfg.plan.step_min))
    m.plan_slot(slot, cfg.tariff.currency)
    for c in sv.devices:
        m.device_health(c.name, c.failures, c.name in snap.stale)
    batteries = [c for c in sv.devices if c.commands_battery]
    rated_kw = max(cfg.battery.charge_max_kw, cfg.battery.discharge_max_kw)
    tolerance_kw = follow_tolerance_kw(batteries, rated_kw)
    m.follow(measured_batt_kw(snap, batteries), accepted_kw(st.last_cycle), tolerance_kw)
