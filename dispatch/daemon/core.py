"""``Daemon``: the composition root that owns the devices, the store, the model and the jobs.

Role: build everything from a ``SiteConfig``, run the APScheduler 3 ``AsyncIOScheduler`` with
one job each for control (every ``control.cycle_s``), plan (every plan step, aligned to the
clock), forecast (hourly) and housekeeping (retention, month change), the carbon-ledger job
after a control cycle that completed an interval (``ledger_job``; its head and daily checkpoint
exported by ``carbon_anchor``), guard every job boundary (the only catch-all places), serve the
status page, REST API and metrics (``http``), publish to MQTT after a cycle (``mqtt``), hold
the operator's overrides (``operator``), talk to systemd, and stop cleanly on SIGTERM/SIGINT
with the safe state and the devices' default mode. Scheduling is in real seconds; every time
the jobs see comes from the injectable ``Clock``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import signal
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.interval import IntervalTrigger

from dispatch.config import SiteConfig
from dispatch.daemon import carbon_anchor, cycle, ledger_job, mqtt, planning
from dispatch.daemon.api import read_token
from dispatch.daemon.clock import Clock
from dispatch.daemon.feeds import Feeds
from dispatch.daemon.files import read_calibration
from dispatch.daemon.http import StatusServer
from dispatch.daemon.logs import FailureLog
from dispatch.daemon.metrics import Metrics
from dispatch.daemon.mqtt import MqttLink
from dispatch.daemon.notify import Notifier
from dispatch.daemon.operator import Operator
from dispatch.daemon.restore import restore
from dispatch.daemon.runtime import Services, SiteState, store_event
from dispatch.daemon.state import CycleState, ForecastState, PlanState, billing_month_of
from dispatch.devices.client import DeviceClient
from dispatch.optimise import DispatchModel
from dispatch.store import Store, state_dir
from dispatch.types import ConfigError

log = logging.getLogger("dispatch.daemon")
T = TypeVar("T")
HOUSEKEEPING_S = 3600.0
#: Real seconds ``stop`` waits for jobs in flight before cancelling them.
STOP_WAIT_S = 10.0
#: Control cycles without a completed one after which the jobs are rescheduled.
STALL_CYCLES = 3


class Daemon:
    """One site's dispatch daemon.

    Parameters
    ----------
    config : SiteConfig
        The validated site configuration (devices, control, plan, store, http, forecast).
    clock : Clock, optional
        Real time by default; an accelerated clock drives a fast simulated plant.
    store : Store, optional
        The history; opened from ``config.store`` (under ``state_dir``) when omitted.
    state_dir : str or Path, optional
        Base of a relative store path (systemd's ``$STATE_DIRECTORY``).
    notifier : Notifier, optional
        systemd notify; from ``$NOTIFY_SOCKET`` when omitted.
    http_port : int, optional
        Overrides ``config.http.port`` (0: any free port).
    """

    def __init__(self, config: SiteConfig, clock: Clock | None = None, store: Store | None = None,
                 state_dir: str | Path | None = None, notifier: Notifier | None = None,
                 http_port: int | None = None) -> None:  # fmt: skip
        self.config = config
        self.clock = clock or Clock()
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="dispatch-plan")
        self.store_pool = ThreadPoolExecutor(1, thread_name_prefix="dispatch-store")
        path = config.forecast.pv_calibration
        fit = read_calibration(path, ConfigError) if path else None
        self.services = Services(
            config=config, clock=self.clock,
            devices=[DeviceClient(d) for d in config.devices],  # loads maps: ConfigError
            store=store or Store.from_config(config, state_dir),
            feeds=Feeds.from_config(config),  # ConfigError for a source that cannot work
            metrics=Metrics(), failures=FailureLog(), solver=self.in_worker,
            storer=self.in_store, pv_fit=fit,
            operator=Operator(config, self.clock.now, self._record_event),
        )  # fmt: skip
        self.notifier = notifier or Notifier()
        self.state: SiteState | None = None
        self.ledger_book = ledger_job.LedgerBook(pd.Timedelta(minutes=config.plan.step_min))
        self.ledger_task: asyncio.Task[bool] | None = None
        self.carbon_figures: dict[str, Any] | None = None
        if config.carbon.neutrality_target_year is not None:
            self.metrics.carbon_target(config.carbon.neutrality_target_year)
        self.month = billing_month_of(self.clock.now(), config.billing_timezone)
        self.scheduler: AsyncIOScheduler | None = None
        self.running: set[asyncio.Task[Any]] = set()
        port = config.http.port if http_port is None else http_port
        token = read_token(config.http.token_file)  # ConfigError: exit 78
        self.http = StatusServer(self, self.operator, token, config.http.host, port)
        self.mqtt = MqttLink(config, self.operator) if config.mqtt.enabled else None
        signer = carbon_anchor.load_signer(config, self.store.path, state_dir)  # ConfigError
        self.anchor = carbon_anchor.Anchor(signer, self.mqtt)
        self.started_at = self.clock.now()
        self.cycles_completed = 0
        self.wall_s: Callable[[], float] = time.time  # the system clock APScheduler plans on
        self.last_control_run_s = time.monotonic()
        self.last_control_wall_s = self.wall_s()
        self._guard_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------- what others read
    @property
    def store(self) -> Store:
        """The history database."""
        return self.services.store

    @property
    def metrics(self) -> Metrics:
        """Prometheus metrics."""
        return self.services.metrics

    @property
    def operator(self) -> Operator:
        """The operator's overrides (REST API, MQTT)."""
        return self.services.operator  # type: ignore[return-value]

    @property
    def failures(self) -> FailureLog:
        """Failures of jobs and devices."""
        return self.services.failures

    @property
    def clients(self) -> list[DeviceClient]:
        """The device clients."""
        return self.services.devices

    @property
    def plan_state(self) -> PlanState | None:
        """The plan in force."""
        return self.state.plan_state if self.state is not None else None

    @property
    def forecast_state(self) -> ForecastState | None:
        """The forecast in force."""
        return self.state.forecast_state if self.state is not None else None

    @property
    def last_cycle(self) -> CycleState | None:
        """The last completed control cycle."""
        return self.state.last_cycle if self.state is not None else None

    @property
    def in_safe_state(self) -> bool:
        """Whether the last cycle ended in the safe state."""
        return self.state.in_safe_state if self.state is not None else False

    # ------------------------------------------------------------- helpers
    async def in_worker(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the solver thread (never blocks the control loop)."""
        return await asyncio.get_running_loop().run_in_executor(self.worker, fn, *args)

    async def in_store(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store call in the store thread (fsyncs never block the event loop)."""
        return await asyncio.get_running_loop().run_in_executor(self.store_pool, fn, *args)

    def _record_event(self, t: dt.datetime, level: str, kind: str, message: str) -> None:
        """Store an event from another thread (an operator's command), in the store thread."""
        done = self.store_pool.submit(self.store.write_event, t, level, kind, message, None)
        done.result(timeout=STOP_WAIT_S)

    async def prepare(self) -> SiteState:
        """Build the model and restore the jobs' state from the store (once)."""
        if self.state is None:
            model = await self.in_worker(DispatchModel, self.config)
            self.state = await self.in_store(restore, self.services, model)
        return self.state

    # --------------------------------------------------------------- jobs
    async def guarded(self, name: str,
                      job: Callable[[Services, SiteState], Awaitable[Any]]) -> bool:  # fmt: skip
        """Run one job on the daemon's services and state; the job boundary is the one
        catch-all: log once, count, carry on."""
        task = asyncio.current_task()
        if task is not None:
            self.running.add(task)
        try:
            await job(self.services, await self.prepare())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.metrics.job_errors.labels(name).inc()
            if self.failures.failed(f"job:{name}", f"{type(exc).__name__}: {exc}", exc):
                await self._event("error", f"{name}_failed", f"{type(exc).__name__}: {exc}")
            return False
        finally:
            self.running.discard(task)  # type: ignore[arg-type]
        if self.failures.ok(f"job:{name}"):
            await self._event("info", f"{name}_recovered", f"{name} job works again")
        return True

    async def _event(self, level: str, kind: str, message: str) -> None:
        await store_event(self.services, level, kind, message)

    async def control_job(self) -> None:
        """The fast loop; the watchdog is fed only after a completed cycle."""
        self.last_control_run_s, self.last_control_wall_s = time.monotonic(), self.wall_s()
        if await self.guarded("control", cycle.control_cycle):
            self.cycles_completed += 1
            self.notifier.watchdog()
            self.start_ledger_job()
            self.publish_mqtt()

    def publish_mqtt(self) -> None:
        """The state to the MQTT broker when due (dropped while it is down)."""
        now_s = self.clock.monotonic()
        if self.mqtt is not None and self.mqtt.due(now_s):
            try:
                self.mqtt.publish_state(mqtt.state_doc(self), now_s)
            except Exception as exc:  # never a reason to miss a control cycle
                if self.failures.failed("mqtt", f"{type(exc).__name__}: {exc}", exc):
                    log.error("mqtt: cannot publish the state: %s", exc)
            else:
                self.failures.ok("mqtt")

    def start_ledger_job(self) -> None:
        """Start the carbon-ledger job beside the control loop when an interval completed
        (one at a time; it never delays the next cycle)."""
        busy = self.ledger_task is not None and not self.ledger_task.done()
        if not busy and self.ledger_book.due(self.clock.now()):
            self.ledger_task = asyncio.create_task(self.guarded("ledger", self._ledger))

    async def _ledger(self, sv: Services, st: SiteState) -> None:
        first = self.carbon_figures is None
        done, figures = await ledger_job.ledger_job(sv, st, self.ledger_book, first)
        if figures is not None:
            self.carbon_figures = figures
        if done.records or self.anchor.head is None:  # the head off the box, a daily checkpoint
            await self.anchor.after_append(sv)

    async def plan_job(self) -> None:
        """Forecast when due, solve and publish a plan."""
        await self.guarded("plan", planning.plan_job)

    async def forecast_job(self) -> None:
        """Make and publish a new forecast now (the plan job forecasts when one is due)."""

        async def job(sv: Services, st: SiteState) -> None:
            await planning.forecast_step(sv, st, sv.clock.now())

        await self.guarded("forecast", job)

    async def housekeeping_job(self) -> None:
        """Retention and the billing month's change."""
        await self.guarded("housekeeping", self._housekeeping)

    # ----------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Restore the state, plan once from a fresh reading, start the scheduler, HTTP and
        READY."""
        await self.prepare()
        await self._event("info", "start", f"daemon started, clock speed {self.clock.speed:g}")
        await self.plan_job()
        self.http.start()
        if self.mqtt is not None:
            self.mqtt.start()
        self.scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        self._add_jobs(self.scheduler)
        self.scheduler.start()
        self._guard_task = asyncio.create_task(self._stall_guard())
        self.notifier.ready(f"controlling {len(self.clients)} device(s)")
        log.info("running: %d device(s), cycle %g s, plan step %d min, status on %s",
                 len(self.clients), self.config.control.cycle_s, self.config.plan.step_min,
                 self.http.url or "(off)")  # fmt: skip

    def _add_jobs(self, s: AsyncIOScheduler) -> None:
        c, now = self.clock, dt.datetime.now(dt.UTC)
        cyc = c.real_s(self.config.control.cycle_s)
        step_s = self.config.plan.step_min * 60.0
        common = {"max_instances": 1, "coalesce": True}

        def every(clock_s: float, first_in_clock_s: float) -> IntervalTrigger:
            start = now + dt.timedelta(seconds=c.real_s(first_in_clock_s))
            return IntervalTrigger(seconds=c.real_s(clock_s), start_date=start)

        s.add_job(self.control_job, IntervalTrigger(seconds=cyc), id="control", next_run_time=now,
                  misfire_grace_time=max(1, math.ceil(cyc)), **common)  # fmt: skip
        s.add_job(self.plan_job, every(step_s, c.until_boundary_s(step_s)), id="plan",
                  misfire_grace_time=max(1, math.ceil(c.real_s(step_s) / 2)), **common)
        s.add_job(self.housekeeping_job, every(HOUSEKEEPING_S, HOUSEKEEPING_S), id="housekeeping",
                  misfire_grace_time=max(1, math.ceil(c.real_s(HOUSEKEEPING_S))), **common)

    def check_stall(self) -> bool:
        """Reschedule every job to run now when the control job has not started for
        ``STALL_CYCLES`` cycles *and* the system clock jumped meanwhile: APScheduler plans on
        the wall clock, so a backward jump would hold the jobs until it catches up (asyncio's
        timers are monotonic, so this check still runs). A long cycle (a slow device) is no
        jump: the wall clock kept pace with the monotonic one, and nothing is rescheduled.
        True when it rescheduled."""
        s = self.scheduler
        limit = STALL_CYCLES * self.clock.real_s(self.config.control.cycle_s)
        idle_s = time.monotonic() - self.last_control_run_s
        if s is None or s.state != STATE_RUNNING or idle_s < limit:
            return False
        jump_s = (self.wall_s() - self.last_control_wall_s) - idle_s
        if abs(jump_s) < limit:
            return False
        log.warning(
            "the system clock jumped %+.0f s (control idle for %.1f s): rescheduling all jobs",
            jump_s,
            idle_s,
        )
        now = dt.datetime.now(dt.UTC)
        for job in s.get_jobs():
            job.modify(next_run_time=now)
        s.wakeup()
        self.last_control_run_s, self.last_control_wall_s = time.monotonic(), self.wall_s()
        return True

    async def _stall_guard(self) -> None:
        period = self.clock.real_s(self.config.control.cycle_s)
        while True:
            await asyncio.sleep(period)
            self.check_stall()

    async def stop(self) -> list[str]:
        """STOPPING, stop the jobs, safe state and default mode on each device, close all."""
        self.notifier.stopping("writing the safe state")
        if self._guard_task is not None:
            self._guard_task.cancel()
        if self.scheduler is not None:
            self.scheduler.pause()  # no new runs; let the jobs in flight finish
            others = self.running - {asyncio.current_task()}
            if others:
                await asyncio.wait(others, timeout=STOP_WAIT_S)
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        problems = await cycle.shutdown_writes(self.services)
        for p in problems:
            log.error("shutdown: %s", p)
        await self._event("warning" if problems else "info", "stop",
                          "; ".join(problems) or "safe state written, devices in default mode")
        for c in self.clients:
            c.close()
        self.http.stop()
        if self.mqtt is not None:
            self.mqtt.stop()
        self.worker.shutdown(wait=True)
        self.store_pool.shutdown(wait=True)
        self.store.close()
        log.info("stopped")
        return problems

    async def _housekeeping(self, sv: Services, st: SiteState) -> None:
        """Delete rows past retention; at a billing-month change, start the new month's
        peak and plan again."""
        now = sv.clock.now()
        deleted = await self.in_store(sv.store.prune, now)
        if any(deleted.values()):
            log.info("retention: deleted %s", {k: v for k, v in deleted.items() if v})
        month = billing_month_of(now, sv.config.billing_timezone)
        if month != self.month:
            log.info("billing month %s -> %s: new demand peak state", self.month, month)
            await self._event("info", "month_change", f"billing month {self.month} -> {month}")
            st.peaks = {m: v for m, v in st.peaks.items() if m >= month}
            self.month = month
            await planning.plan_job(sv, st)

    async def run(self, stop: asyncio.Event | None = None) -> int:
        """Run until ``stop`` is set or SIGTERM/SIGINT arrives; returns the exit code."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (tests): the caller sets ``stop``
        try:
            await self.start()
            await stop.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self.stop()
        return 0


def run(config: SiteConfig, clock: Clock | None = None) -> int:
    """Run the daemon in the foreground (``dispatch run``); returns the exit code."""
    t0 = time.perf_counter()

    async def main() -> int:
        daemon = Daemon(config, clock, state_dir=state_dir())
        log.info("configured in %.2f s", time.perf_counter() - t0)
        return await daemon.run()

    return asyncio.run(main())
