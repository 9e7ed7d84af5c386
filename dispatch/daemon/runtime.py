"""What the daemon's jobs run on: their explicit dependencies and the state they publish.

Role: ``Services`` are the dependencies (configuration, clock, devices, store, input feeds,
metrics, failure log, where blocking work runs); ``SiteState`` is what the jobs keep between
runs and publish (each field swapped whole, so a reader sees one consistent version). The
``Daemon`` builds both for ``dispatch run``; a replay (``sim``) builds them with a simulated
clock, the in-process plant behind the device interface and recorded feeds, and calls the
very same jobs (``planning.plan_job``, ``cycle.control_cycle``). Also the helpers every job
shares: storing an event, the month's peak so far, and tracking completed slots.
Imports the core types, ``devices`` (the client type), ``store``, ``forecast`` and this
package; never ``core`` (the ``Daemon``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol, TypeVar

import pandas as pd

from dispatch.calendar import FactoryCalendar
from dispatch.config import SiteConfig
from dispatch.control import ControlLimits
from dispatch.daemon.feeds import Feeds
from dispatch.daemon.health import Health
from dispatch.daemon.history import SlotHistory
from dispatch.daemon.logs import FailureLog
from dispatch.daemon.metrics import Metrics
from dispatch.daemon.operator import Operator
from dispatch.daemon.state import CycleState, ForecastState, PlanState, billing_month_of
from dispatch.daemon.tracking import TrackingFault
from dispatch.devices.client import DeviceClient
from dispatch.forecast.calibrate import CalibrationFit
from dispatch.forecast.uncertainty import ForecastErrors
from dispatch.optimise import DispatchModel
from dispatch.pipeline.forecast import ClearSkyPV, available_pv_history
from dispatch.store import Store

log = logging.getLogger("dispatch.daemon")
T = TypeVar("T")
#: Cycle records kept in memory while the store fails (a day of 10 s cycles).
UNSTORED_MAX = 8640
#: Runs a blocking call somewhere (a worker thread in the daemon, inline in a replay).
Runner = Callable[..., Awaitable[Any]]


class ClockLike(Protocol):
    """The clock the jobs read: tz-aware UTC time and monotonic seconds."""

    def now(self) -> dt.datetime: ...

    def monotonic(self) -> float: ...


async def inline(fn: Callable[..., T], *args: Any) -> T:
    """A ``Runner`` that calls ``fn`` at once (replays: no threads, same results)."""
    return fn(*args)


@dataclass(frozen=True)
class Services:
    """The jobs' dependencies.

    Attributes
    ----------
    config : SiteConfig
        The site.
    clock : ClockLike
        Time of every job (accelerated or simulated where the plant is).
    devices : list of DeviceClient
        The Modbus clients, or anything with their interface (``read``, ``write``,
        ``restore_default``, back-off fields): a replay's in-process plant.
    store : Store
        The history database.
    feeds : Feeds
        Weather, day-ahead prices and grid intensity as known at each time.
    metrics : Metrics
        Prometheus metrics.
    failures : FailureLog
        Loud-once failure bookkeeping.
    solver, storer : Runner
        Where the solve and the forecast (blocking), and the store calls, run.
    pv_fit : CalibrationFit, optional
        ``forecast.pv_calibration``, read once at start.
    device_lock : asyncio.Lock
        Held by whoever talks to the devices (one request at a time per client).
    operator : Operator, optional
        The operator's overrides (REST API, MQTT); None: none (replays).
    """

    config: SiteConfig
    clock: ClockLike
    devices: list[DeviceClient]
    store: Store
    feeds: Feeds
    metrics: Metrics
    failures: FailureLog
    solver: Runner = inline
    storer: Runner = inline
    pv_fit: CalibrationFit | None = None
    device_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    operator: Operator | None = None

    @cached_property
    def calendar(self) -> FactoryCalendar:
        """The load forecast's factory calendar (built once: it caches its holidays)."""
        return FactoryCalendar.for_load(self.config)

    @cached_property
    def clear_sky(self) -> ClearSkyPV:
        """The site's clear-sky PV per day, the basis of the PV available where curtailed."""
        return ClearSkyPV(self.config, self.pv_fit)


@dataclass
class SiteState:
    """What the jobs keep and publish.

    Attributes
    ----------
    limits : ControlLimits
        From the config; the peak target is set per cycle.
    model : DispatchModel
        The site's program, built once.
    errors : ForecastErrors or None
        The controller's past forecast errors (None without a peak reserve).
    history : SlotHistory
        Measured load, PV and import per plan slot (recent days).
    peaks : dict of str to float
        Each billing month's peak import so far (kW), from the store.
    held_target_kw : dict of str to float
        Each billing month's peak target of the last plan made on a real forecast (kW): an
        input of the next plan (its peak reserve is sized on it); restored from the store.
    plan_state, forecast_state, last_cycle
        The plan and forecast in force and the last completed control cycle.
    in_safe_state : bool
        Whether the last cycle ended in the safe state.
    tracking : TrackingFault or None
        Whether the batteries follow their setpoints (built by the first cycle).
    health : Health
        The site's fault level after the last cycle (``health.site_health``).
    unstored : deque
        Cycle records kept back while the store fails (``cycle.store_cycle``), the newest
        ``UNSTORED_MAX``; ``unstored_dropped`` counts the older ones dropped.
    """

    limits: ControlLimits
    model: DispatchModel
    errors: ForecastErrors | None
    history: SlotHistory
    peaks: dict[str, float] = field(default_factory=dict)
    held_target_kw: dict[str, float] = field(default_factory=dict)
    plan_state: PlanState | None = None
    forecast_state: ForecastState | None = None
    last_cycle: CycleState | None = None
    in_safe_state: bool = False
    tracking: TrackingFault | None = None
    health: Health = field(default_factory=Health)
    unstored: deque[tuple] = field(default_factory=lambda: deque(maxlen=UNSTORED_MAX))
    unstored_dropped: int = 0


async def store_event(sv: Services, level: str, kind: str, message: str,
                      device: str | None = None) -> None:  # fmt: skip
    """Store an event; a store failure is only logged (the event is not worth a job)."""
    try:
        await sv.storer(sv.store.write_event, sv.clock.now(), level, kind, message, device)
    except Exception as exc:
        log.debug("cannot store event %s: %s", kind, exc)


def pv_history_kw(
    sv: Services, history: SlotHistory, since: pd.Timestamp | None = None
) -> pd.Series:
    """Measured PV per closed slot (kW), raised to the PV available where export was at the
    site's limit (``pipeline.available_pv_history``)."""
    limited = history.series("pv_limited", since) > 0
    return available_pv_history(sv.config, history.series("p_pv_kw", since), limited,
                                sv.clear_sky)


def month_peak_kw(sv: Services, st: SiteState, month: str) -> float:
    """The billing month's peak import so far (kW), from memory or the store."""
    if month not in st.peaks:
        peak = sv.store.demand_peak(month)
        st.peaks[month] = peak.peak_import_kw if peak is not None else 0.0
    return st.peaks[month]


async def settle(sv: Services, st: SiteState, now: dt.datetime) -> None:
    """Close the slots of the history that ended before ``now`` and raise the month's stored
    peak when a closed slot's mean import exceeds it."""
    for slot, import_kw in st.history.close_before(pd.Timestamp(now)):
        month = billing_month_of(slot, sv.config.billing_timezone)
        if import_kw > month_peak_kw(sv, st, month):
            peak = await sv.storer(sv.store.update_demand_peak, month, import_kw, now, slot)
            st.peaks[month] = peak.peak_import_kw
            log.info("demand peak %s: %.1f kW in the slot from %s", month, import_kw, slot)
