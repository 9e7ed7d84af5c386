"""The fast control cycle and the shutdown writes.

Role: the control half of the one path: read every device into one ``Snapshot`` -> the plan
step in force -> ``control.decide``, with the operator's overrides in force -> write the
setpoint to each battery device with read-back -> store the cycle (one transaction) ->
history and metrics (``observe`` for what the cycle worked with: peak, target, plan slot,
fault levels, tracking); the ``Daemon`` then feeds the systemd watchdog, a replay steps its
plant. Device failures are the devices' own back-off plus one loud log line and one stored
event per episode; the controller's fallbacks handle the data. With several battery
converters, each gets its part of the site setpoint (``sharing``); while only some of them
are faulty the site goes on with the others (the faulty ones handed back, their parts taken
by the others within their limits) instead of its safe state. Imports ``control``,
``devices``, ``types`` and this package (never ``core``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import time

import pandas as pd

from dispatch.control import ControlLimits, ControlState, decide, export_at_limit
from dispatch.daemon import sharing
from dispatch.daemon.health import EVENT_LEVEL, site_health
from dispatch.daemon.metrics import fault_level
from dispatch.daemon.observe import (
    accepted_kw,
    cycle_metrics,
    follow_tolerance_kw,
    measured_batt_kw,
)
from dispatch.daemon.operator import InForce
from dispatch.daemon.runtime import Services, SiteState, month_peak_kw, settle, store_event
from dispatch.daemon.state import CycleState, billing_month_of
from dispatch.daemon.tracking import TrackingFault
from dispatch.devices.client import DeviceClient
from dispatch.devices.snapshot import read_snapshot
from dispatch.store import StoreError
from dispatch.types import DeviceError, Setpoints, Snapshot

log = logging.getLogger("dispatch.daemon")
Event = tuple[str, str, str, str | None]


def battery_clients(clients: list[DeviceClient]) -> list[DeviceClient]:
    """The devices that command the battery."""
    return [c for c in clients if c.commands_battery]


def share(sp: Setpoints, client: DeviceClient, clients: list[DeviceClient]) -> Setpoints:
    """This device's part of a site setpoint, split by configured power (equal without)."""
    def weight(c: DeviceClient) -> float:
        w = c.cfg.discharge_max_kw if sp.p_batt_kw > 0 else c.cfg.charge_max_kw
        return float(w or 1.0)

    total = sum(weight(c) for c in clients) or 1.0
    return Setpoints(sp.p_batt_kw * weight(client) / total, sp.reason, sp.revert_timeout_s,
                     sp.default_mode)  # fmt: skip


async def read_all(sv: Services, now: dt.datetime, now_s: float) -> Snapshot:
    """One snapshot of every device; a device still backing off is not asked (and its wait
    is not counted as a new failure, which would extend the back-off forever) but named in
    ``faults`` and ``stale``."""
    ready = [c for c in sv.devices if now_s >= c.next_try_s]
    snap = await read_snapshot(ready, now, now_s)
    waiting = [c for c in sv.devices if c not in ready]
    if not waiting:
        return snap
    faults = tuple(f"{c.name}: {c.backoff_reason(now_s)}" for c in waiting)
    return dataclasses.replace(snap, faults=snap.faults + faults,
                               stale=snap.stale + tuple(c.name for c in waiting))  # fmt: skip


def limits_now(sv: Services, st: SiteState, now: dt.datetime) -> ControlLimits:
    """Control limits with the month's peak target of the plan in force; without a plan,
    the month's peak so far (no target while it is 0: nothing to hold yet)."""
    ps = st.plan_state
    if ps is not None:
        return st.limits.with_peak_target(ps.peak_target_kw)
    if sv.config.tariff.demand_charge_per_kw_month <= 0:
        return st.limits.with_peak_target(None)
    so_far = month_peak_kw(sv, st, billing_month_of(now, sv.config.billing_timezone))
    return st.limits.with_peak_target(so_far if so_far > 0 else None)


def _read_events(sv: Services, snap: Snapshot) -> list[Event]:
    events: list[Event] = []
    for c in sv.devices:
        key = f"device:{c.name}"
        faults = [f for f in snap.faults if f.startswith(f"{c.name}:")]
        up = not faults and c.name not in snap.stale
        sv.metrics.device_up.labels(c.name).set(1.0 if up else 0.0)
        if faults:
            sv.metrics.device_faults.labels(c.name, "read").inc()
            if sv.failures.failed(key, faults[0]):
                events.append(("error", "device_fault", faults[0], c.name))
        elif sv.failures.ok(key):
            events.append(("info", "device_recovered", f"{c.name} answers again", c.name))
    return events


def parts(
    sp: Setpoints, targets: list[DeviceClient], bad: set[str], snap: Snapshot | None
) -> dict[str, Setpoints]:
    """Each battery device's command: a handback to all with the site's; otherwise its part
    of the site setpoint (``sharing.split_kw``: by configured power, within its own limit,
    the faulty ones' parts taken by the others), and a handback to the faulty ones."""
    if sp.default_mode:
        return {c.name: sp for c in targets}
    weights, limits = sharing.weights_and_limits(sp.p_batt_kw, targets, snap)
    healthy = [c.name for c in targets if c.name not in bad]
    kw = sharing.split_kw(sp.p_batt_kw, weights, limits, healthy)
    why = f"{sp.reason} (converter faulty: handed back)"
    back = Setpoints(0.0, why, sp.revert_timeout_s, default_mode=True)
    return {
        c.name: back if c.name in bad else dataclasses.replace(sp, p_batt_kw=kw[c.name])
        for c in targets
    }


async def write_all(
    sv: Services,
    sp: Setpoints,
    now_s: float,
    bad: set[str] | None = None,
    snap: Snapshot | None = None,
) -> tuple[float | None, dict[str, str], list[Event]]:
    """Write ``sp`` to every battery device (``parts``; ``bad``: the faulty converters of a
    degraded cycle, ``snap``: the reading with each device's own limits); returns (sum
    accepted kW or None on a failure, per-device action, events)."""
    targets = battery_clients(sv.devices)
    bad = bad or set()
    commands = parts(sp, targets, bad, snap)
    total: float | None = 0.0
    actions: dict[str, str] = {}
    events: list[Event] = []
    for c in targets:
        key = f"device:{c.name}:write"
        faulty = c.name in bad and not sp.default_mode  # the others carry its part
        if now_s < c.next_try_s:  # its read failed too: the device's revert timer holds
            total = total if faulty else None
            actions[c.name] = "backing off"
            continue
        if faulty and c.held_fault(now_s):  # the client handed it back already
            actions[c.name] = "held (handed back)"
            continue
        try:
            out = await c.write(commands[c.name], now_s)
        except DeviceError as exc:
            total = None
            actions[c.name] = f"error: {exc}"
            sv.metrics.device_faults.labels(c.name, "write").inc()
            if sv.failures.failed(key, str(exc)):
                events.append(("error", "device_write", str(exc), c.name))
            continue
        if sv.failures.ok(key):
            events.append(("info", "device_recovered", f"{c.name} accepts writes again", c.name))
        actions[c.name] = out.action
        if out.drifted:  # rebooted, or a local operator took it over: told again at once
            sv.metrics.device_rewrites.labels(c.name).inc()
            events.append(("warning", "device_rewritten", f"{c.name} no longer held the "
                           f"command ({', '.join(out.drifted)}): rewritten", c.name))
        if total is not None:
            total += out.p_batt_kw
    return (total if targets else None), actions, events


def import_after_kw(snap: Snapshot, written_kw: float | None) -> float:
    """The grid power the cycle leaves (kW, import positive): the measured net load less the
    battery power the devices accepted, or the measured grid power when a write failed. The
    reading itself shows the previous setpoint; the slot's peak is the import after it."""
    if written_kw is None or not math.isfinite(written_kw):
        return snap.p_grid_kw
    return snap.p_grid_kw + snap.p_batt_kw - written_kw


async def control_cycle(sv: Services, st: SiteState) -> CycleState:
    """One complete cycle; raises only for unexpected errors (the job boundary catches)."""
    t0 = time.perf_counter()
    await settle(sv, st, sv.clock.now())
    async with sv.device_lock:
        now_s = sv.clock.monotonic()
        snap = await read_all(sv, sv.clock.now(), now_s)
        events = _read_events(sv, snap)
        batteries = battery_clients(sv.devices)
        bad = sharing.faulty(batteries, snap, now_s)
        snap = _tracking(sv, st, snap, now_s, events, bad)
        seen = sharing.degraded(snap, batteries, bad)  # the healthy converters go on
        events += _degraded_events(sv, bad if seen is not snap else set())
        now = sv.clock.now()
        ps = st.plan_state
        state = ControlState(ps.issued_at) if ps is not None else None
        force, expired = sv.operator.in_force(now) if sv.operator else (InForce(), [])
        limits = force.limits(limits_now(sv, st, now))
        sp = force.pause_setpoints() or decide(seen, ps.plan if ps is not None else None,
                                                limits, now, state, force.manual_kw)
        written, actions, more = await write_all(sv, sp, sv.clock.monotonic(), bad, snap)
    events += more + [("info", "operator_expired", m, None) for m in expired]
    if sp.reason.startswith("safe") != st.in_safe_state:
        st.in_safe_state = not st.in_safe_state
        level = "warning" if st.in_safe_state else "info"
        events.append((level, "safe_state" if st.in_safe_state else "control_resumed",
                       sp.reason, None))  # fmt: skip
        getattr(log, level)("control: %s", sp.reason)
    _health(sv, st, snap, sp, events)
    plan_id = ps.plan_id if ps is not None else None
    record = (snap, sp, now, plan_id, written, written is not None, events, limits.peak_target_kw)
    stored = await store_cycle(sv, st, record)
    store_failing = any(key.startswith("store:") for key in sv.failures.failing())
    sv.metrics.store_failing.set(1.0 if store_failing else 0.0)
    if snap.ok:
        st.history.add(pd.Timestamp(snap.time), snap.p_load_kw, snap.p_pv_kw,
                       import_after_kw(snap, written), export_at_limit(snap.p_grid_kw, limits))
    last = st.last_cycle.written_kw if st.last_cycle is not None else None
    seconds = time.perf_counter() - t0
    sv.metrics.cycle(snap, sp, last, seconds)
    cycle_metrics(sv, st, now, snap, limits, stored)
    _data_ages(sv, st, now, snap)
    cycle = CycleState(now, snap, sp, written, actions, seconds)
    st.last_cycle = cycle
    return cycle


async def store_cycle(sv: Services, st: SiteState, record: tuple) -> bool:
    """Store the cycle's ``record`` (``Store.record_cycle``'s arguments) after any kept back
    while the store failed, oldest first; True when all are stored. A store that fails (a
    full disk, a locked or read-only file) never stops control: the records wait in memory
    (``SiteState.unstored``, the newest ``UNSTORED_MAX``; older ones are dropped and counted),
    ``store:cycle`` is failing on the status page, and the next cycles try again."""
    if len(st.unstored) == st.unstored.maxlen:
        st.unstored_dropped += 1
    st.unstored.append(record)
    try:
        while st.unstored:
            await sv.storer(sv.store.record_cycle, *st.unstored[0])
            st.unstored.popleft()
    except StoreError as exc:
        sv.failures.failed("store:cycle", f"{exc} ({len(st.unstored)} cycle(s) kept back)", exc)
        return False
    late = sv.failures.ok("store:cycle")
    if late:
        dropped, st.unstored_dropped = st.unstored_dropped, 0
        message = f"the store works again after {late} failed cycle(s); {dropped} dropped"
        await store_event(sv, "warning" if dropped else "info", "store_recovered", message)
    return True


def _health(sv: Services, st: SiteState, snap: Snapshot, sp: Setpoints,
            events: list[Event]) -> None:
    """The site's fault level after this cycle (``health.site_health``); a change is an
    event."""
    levels = {c.name: fault_level(c.failures, c.name in snap.stale) for c in sv.devices}
    safe = sp.reason if sp.reason.startswith("safe") else None
    off = st.tracking.off_cycles if st.tracking is not None else 0
    h = site_health(levels, safe, off, sv.failures.failing())
    sv.metrics.site_fault_level.set(h.code)
    if h.level != st.health.level:
        events.append((EVENT_LEVEL[h.level], "site_level", f"site {h.describe()}", None))
    st.health = h


def _degraded_events(sv: Services, bad: set[str]) -> list[Event]:
    """An event when converters start or stop being carried by the others (``failing:
    share`` meanwhile)."""
    if bad:
        names = ", ".join(sorted(bad))
        if sv.failures.failed("share", f"{names} faulty: the other converters take the share"):
            why = f"{names} faulty: the other converters take its share within their limits"
            return [("warning", "converter_faulty", why, None)]
    elif n := sv.failures.ok("share"):
        why = f"every converter takes its share again after {n} cycle(s)"
        return [("info", "converters_shared", why, None)]
    return []


def _tracking(sv: Services, st: SiteState, snap: Snapshot, now_s: float,
              events: list[Event], bad: set[str] | None = None) -> Snapshot:
    """``snap`` with a fault while the batteries do not follow what they accepted
    (``tracking.TrackingFault``); its raising and its end are events."""
    c = sv.config.control
    if st.tracking is None:
        st.tracking = TrackingFault(c.follow_fault_cycles, c.follow_fault_hold_s)
    tr = st.tracking
    if tr.release(now_s):
        events.append(("info", "tracking_retry", "the tracking fault's hold ended: control "
                       "resumes", None))
    batteries = battery_clients(sv.devices)
    rated_kw = max(sv.config.battery.charge_max_kw, sv.config.battery.discharge_max_kw)
    if bad:
        measured = sharing.healthy_batt_kw(snap, batteries, bad)
    else:
        measured = measured_batt_kw(snap, batteries)
    raised = tr.observe(measured, accepted_kw(st.last_cycle),
                        follow_tolerance_kw(batteries, rated_kw), now_s)
    if raised is not None:
        events.append(("error", "not_following", raised, None))
        log.error("control: %s", raised)
    if not tr.latched(now_s):
        return snap
    left_s = (tr.until_s or now_s) - now_s
    why = f"battery not following its setpoint (tracking fault, {left_s:.0f} s left)"
    return dataclasses.replace(snap, faults=(*snap.faults, why))


def _data_ages(sv: Services, st: SiteState, now: dt.datetime, snap: Snapshot) -> None:
    """Ages of the reading, the plan and the forecast in force (clock s)."""
    ps, fs = st.plan_state, st.forecast_state
    stamps = {"snapshot": snap.time, "plan": ps.issued_at if ps is not None else None,
              "forecast": fs.issued_at if fs is not None else None}  # fmt: skip
    for name, t in stamps.items():
        age = (now - t).total_seconds() if t is not None else math.nan
        sv.metrics.data_age.labels(name).set(age)


async def shutdown_writes(sv: Services) -> list[str]:
    """Write the configured safe state, then hand each battery back to its default mode;
    returns one line per device problem (logged by the caller)."""
    problems: list[str] = []
    targets = battery_clients(sv.devices)
    safe_kw = sv.config.control.safe_p_batt_kw
    async with sv.device_lock:
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
