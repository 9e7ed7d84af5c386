"""The fast control cycle and the shutdown writes.

Role: read every device into one ``Snapshot`` -> the plan step in force -> ``control.decide``
-> write the setpoint to each battery device with read-back -> store the cycle (one
transaction) -> metrics -> systemd watchdog. Device failures are the devices' own back-off
plus one loud log line and one stored event per episode; the controller's fallbacks handle the
data. Imports ``control``, ``devices``, ``types`` and this package.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import time
from typing import TYPE_CHECKING

from dispatch.control import ControlLimits, ControlState, decide
from dispatch.daemon.state import CycleState
from dispatch.devices.client import DeviceClient
from dispatch.devices.snapshot import read_snapshot
from dispatch.types import DeviceError, Setpoints, Snapshot

if TYPE_CHECKING:
    from dispatch.daemon.core import Daemon

log = logging.getLogger("dispatch.daemon")
Event = tuple[str, str, str, str | None]


def battery_clients(clients: list[DeviceClient]) -> list[DeviceClient]:
    """The devices that command the battery."""
    return [c for c in clients if c.cfg.controls_battery and c.map.control is not None]


def share(sp: Setpoints, client: DeviceClient, clients: list[DeviceClient]) -> Setpoints:
    """This device's part of a site setpoint, split by configured power (equal without)."""
    def weight(c: DeviceClient) -> float:
        w = c.cfg.discharge_max_kw if sp.p_batt_kw > 0 else c.cfg.charge_max_kw
        return float(w or 1.0)

    total = sum(weight(c) for c in clients) or 1.0
    return Setpoints(sp.p_batt_kw * weight(client) / total, sp.reason, sp.revert_timeout_s,
                     sp.default_mode)  # fmt: skip


async def read_all(d: Daemon, now: dt.datetime, now_s: float) -> Snapshot:
    """One snapshot of every device; a device still backing off is not asked (and its wait
    is not counted as a new failure, which would extend the back-off forever) but named in
    ``faults`` and ``stale``."""
    ready = [c for c in d.clients if now_s >= c.next_try_s]
    snap = await read_snapshot(ready, now, now_s)
    waiting = [c for c in d.clients if c not in ready]
    if not waiting:
        return snap
    faults = tuple(f"{c.name}: backing off for {c.next_try_s - now_s:.1f} s after "
                   f"{c.failures} failure(s)" for c in waiting)  # fmt: skip
    return dataclasses.replace(snap, faults=snap.faults + faults,
                               stale=snap.stale + tuple(c.name for c in waiting))  # fmt: skip


def limits_now(d: Daemon) -> ControlLimits:
    """Control limits with the month's peak target of the plan in force."""
    ps = d.plan_state
    target = ps.peak_target_kw if ps is not None else d.month_peak_target()
    return d.limits.with_peak_target(target)


def _read_events(d: Daemon, snap: Snapshot) -> list[Event]:
    events: list[Event] = []
    for c in d.clients:
        key = f"device:{c.name}"
        faults = [f for f in snap.faults if f.startswith(f"{c.name}:")]
        up = not faults and c.name not in snap.stale
        d.metrics.device_up.labels(c.name).set(1.0 if up else 0.0)
        if faults:
            d.metrics.device_faults.labels(c.name, "read").inc()
            if d.failures.failed(key, faults[0]):
                events.append(("error", "device_fault", faults[0], c.name))
        elif d.failures.ok(key):
            events.append(("info", "device_recovered", f"{c.name} answers again", c.name))
    return events


async def write_all(d: Daemon, sp: Setpoints, now_s: float) -> tuple[float | None, dict[str, str],
                                                                     list[Event]]:
    """Write ``sp`` to every battery device; returns (sum accepted kW or None on a failure,
    per-device action, events)."""
    targets = battery_clients(d.clients)
    total: float | None = 0.0
    actions: dict[str, str] = {}
    events: list[Event] = []
    for c in targets:
        key = f"device:{c.name}:write"
        if now_s < c.next_try_s:  # its read failed too: the device's revert timer holds
            total = None
            actions[c.name] = "backing off"
            continue
        try:
            out = await c.write(share(sp, c, targets), now_s)
        except DeviceError as exc:
            total = None
            actions[c.name] = f"error: {exc}"
            d.metrics.device_faults.labels(c.name, "write").inc()
            if d.failures.failed(key, str(exc)):
                events.append(("error", "device_write", str(exc), c.name))
            continue
        if d.failures.ok(key):
            events.append(("info", "device_recovered", f"{c.name} accepts writes again", c.name))
        actions[c.name] = out.action
        if total is not None:
            total += out.p_batt_kw
    return (total if targets else None), actions, events


async def control_cycle(d: Daemon) -> CycleState:
    """One complete cycle; raises only for unexpected errors (the job boundary catches)."""
    t0 = time.perf_counter()
    async with d.device_lock:
        now_s = d.clock.monotonic()
        snap = await read_all(d, d.clock.now(), now_s)
        events = _read_events(d, snap)
        now = d.clock.now()
        ps = d.plan_state
        state = ControlState(ps.issued_at) if ps is not None else None
        sp = decide(snap, ps.plan if ps is not None else None, limits_now(d), now, state)
        written, actions, more = await write_all(d, sp, d.clock.monotonic())
    events += more
    if sp.reason.startswith("safe") != d.in_safe_state:
        d.in_safe_state = not d.in_safe_state
        level = "warning" if d.in_safe_state else "info"
        events.append((level, "safe_state" if d.in_safe_state else "control_resumed",
                       sp.reason, None))  # fmt: skip
        getattr(log, level)("control: %s", sp.reason)
    plan_id = ps.plan_id if ps is not None else None
    await d.in_store(d.store.record_cycle, snap, sp, now, plan_id, written,
                     written is not None, events)  # fmt: skip
    if snap.ok:
        await d.track_peak(now, snap.p_grid_kw)
    last = d.last_cycle.written_kw if d.last_cycle is not None else None
    seconds = time.perf_counter() - t0
    d.metrics.cycle(snap, sp, last, seconds)
    _data_ages(d, now, snap)
    cycle = CycleState(now, snap, sp, written, actions, seconds)
    d.last_cycle = cycle
    return cycle


def _data_ages(d: Daemon, now: dt.datetime, snap: Snapshot) -> None:
    """Ages of the reading, the plan and the forecast in force (clock s)."""
    ps, fs = d.plan_state, d.forecast_state
    stamps = {"snapshot": snap.time, "plan": ps.issued_at if ps is not None else None,
              "forecast": fs.issued_at if fs is not None else None}  # fmt: skip
    for name, t in stamps.items():
        age = (now - t).total_seconds() if t is not None else math.nan
        d.metrics.data_age.labels(name).set(age)


async def shutdown_writes(d: Daemon) -> list[str]:
    """Write the configured safe state, then hand each battery back to its default mode;
    returns one line per device problem (logged by the caller)."""
    problems: list[str] = []
    targets = battery_clients(d.clients)
    safe_kw = d.config.control.safe_p_batt_kw
    async with d.device_lock:
        for c in targets:
            now_s = math.inf  # past any back-off
            try:
                if abs(safe_kw) > 0:
                    await c.write(share(Setpoints(safe_kw, "shutdown: safe state"), c, targets),
                                  now_s)  # fmt: skip
                await c.restore_default()
            except DeviceError as exc:
                problems.append(f"{c.name}: {exc}")
    return problems
