"""Prometheus metrics of one daemon (its own registry: no module-level state).

Role: name and update the gauges, counters and histograms that ``/metrics`` serves: control
cycle time, solve time, plan status and age, SoC, powers, setpoint and its error, whether the
battery follows its setpoint, device faults and fault levels, the safe state, data ages,
warm-up and input fallbacks, the month's import peak and the guard's target, the plan slot in
force (energy prices, grid intensity, planned powers), the store's last commit, build info, and
the carbon ledger's month-to-date tonnes, net balance toward neutrality and target year. The
one place that names a metric (``docs/grafana.md`` lists them; the dashboard in ``grafana/``
queries them). Imports prometheus_client, the standard library, ``dispatch.types`` and
``dispatch.__version__``.
"""

from __future__ import annotations

import datetime as dt
import math
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client import Enum as PromEnum

from dispatch.types import Setpoints, Snapshot

PLAN_STATES = ["none", "optimal", "optimal_inaccurate", "fallback"]
CYCLE_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
#: The distribution whose version ``dispatch_build_info`` reports.
DISTRIBUTION = "factory-dispatch"
#: The jobs the ``Daemon`` guards: their error counters are exported at 0 from the start.
JOBS = ("control", "plan", "forecast", "housekeeping", "ledger")
#: Device fault levels (``dispatch_device_fault_level``, see ``fault_level``).
FAULT_OK, FAULT_DEGRADED, FAULT_FAILED = 0, 1, 2
#: Consecutive cycles off the setpoint by more than the tolerance that make "not following".
FOLLOW_CYCLES = 3
#: The tracking tolerance as a fraction of the battery's larger rated power (see
#: ``dispatch.daemon.observe.follow_tolerance_kw``).
FOLLOW_TOL_FRAC = 0.05


def package_version() -> str:
    """The installed version of ``factory-dispatch``; ``dispatch.__version__`` when the
    distribution's metadata is absent (a bare checkout on ``PYTHONPATH``)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        from dispatch import __version__

        return __version__


def fault_level(failures: int, stale: bool) -> int:
    """A device's fault level after a cycle, from what its client reports.

    Parameters
    ----------
    failures : int
        The client's count of failed exchanges in a row (reads and writes; a good read or
        write resets it; it sets the back-off).
    stale : bool
        Whether the cycle's snapshot names the device stale (no fresh values).

    Returns
    -------
    int
        ``FAULT_OK`` (0): the last exchange succeeded and the values are fresh.
        ``FAULT_DEGRADED`` (1): one failed exchange in a row (timeout, exception response,
        read-back mismatch), retried after ``backoff_initial_s``; a device that answers reads
        but refuses every write stays here (each good read resets the count).
        ``FAULT_FAILED`` (2): two or more failed exchanges in a row (not answering, backing
        off exponentially), or fresh answers with values frozen (stale without a failure).
    """
    if failures >= 2 or (stale and failures <= 0):
        return FAULT_FAILED
    return FAULT_DEGRADED if failures == 1 else FAULT_OK


@dataclass
class FollowCheck:
    """Whether the battery follows its setpoint.

    Each control cycle compares the measured battery power with the setpoint the devices
    accepted in the cycle before (the reading shows the effect of that write). A cycle whose
    error exceeds the tolerance counts; one within it (``<=``) ends the streak; a cycle with
    nothing to compare (no accepted setpoint: first cycle, a failed write, a handback to the
    device's default mode; or no fresh battery reading) starts the count again. The battery
    is "not following" from the ``cycles``-th counted cycle in a row.

    Attributes
    ----------
    cycles : int
        Counted cycles in a row that make "not following" (``FOLLOW_CYCLES``).
    off_cycles : int
        Cycles in a row so far with ``|measured - setpoint|`` above the tolerance.
    """

    cycles: int = FOLLOW_CYCLES
    off_cycles: int = 0

    def observe(self, measured_kw: float, setpoint_kw: float | None, tolerance_kw: float) -> bool:
        """Count one cycle (powers in kW, > 0 discharge); True while not following."""
        if setpoint_kw is None or not (math.isfinite(measured_kw) and math.isfinite(setpoint_kw)):
            self.off_cycles = 0
        elif abs(measured_kw - setpoint_kw) > tolerance_kw:
            self.off_cycles += 1
        else:
            self.off_cycles = 0
        return self.off_cycles >= self.cycles


class Metrics:
    """The daemon's metrics; ``render()`` gives the Prometheus text format."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.cycle_seconds = Histogram("dispatch_cycle_seconds", "Control cycle duration (real s)",
                                       buckets=CYCLE_BUCKETS, registry=r)  # fmt: skip
        self.cycles = Counter("dispatch_cycles", "Completed control cycles", registry=r)
        self.safe_cycles = Counter("dispatch_safe_cycles", "Cycles ending in the safe state",
                                   registry=r)  # fmt: skip
        self.solve_seconds = Gauge("dispatch_solve_seconds", "Last plan solve time (s)",
                                   registry=r)  # fmt: skip
        self.plans = Counter("dispatch_plans", "Plans published", ["status"], registry=r)
        self.plan_status = PromEnum("dispatch_plan_status", "Status of the plan in force",
                                    states=PLAN_STATES, registry=r)  # fmt: skip
        self.soc = Gauge("dispatch_soc_ratio", "Battery state of charge (fraction)", registry=r)
        self.power = Gauge("dispatch_power_kw", "Measured power, site-bus sign (kW)",
                           ["quantity"], registry=r)  # fmt: skip
        self.setpoint = Gauge("dispatch_setpoint_kw", "Battery setpoint (kW, > 0 discharge)",
                              registry=r)  # fmt: skip
        self.setpoint_error = Gauge("dispatch_setpoint_error_kw",
                                    "Measured battery power minus the last setpoint (kW)",
                                    registry=r)  # fmt: skip
        self.device_faults = Counter("dispatch_device_faults", "Device read/write failures",
                                     ["device", "op"], registry=r)  # fmt: skip
        self.device_up = Gauge("dispatch_device_up", "1 when the device answered this cycle",
                               ["device"], registry=r)  # fmt: skip
        self.data_age = Gauge("dispatch_data_age_seconds", "Age of data in clock seconds",
                              ["data"], registry=r)  # fmt: skip
        self.job_errors = Counter("dispatch_job_errors", "Unexpected job failures", ["job"],
                                  registry=r)  # fmt: skip
        self.carbon_month = Gauge(
            "dispatch_carbon_month_to_date_tonnes",
            "Scope 2 emissions of the site-local month so far, from the carbon ledger (t CO2)",
            ["method"], registry=r)  # fmt: skip
        self.carbon_net = Gauge(
            "dispatch_carbon_net_balance_tonnes",
            "Scope 2 electricity CO2 (neutrality basis) minus offsets retired, to date (t CO2)",
            ["period"], registry=r)  # fmt: skip
        self.carbon_offsets_needed = Gauge(
            "dispatch_carbon_offsets_needed_tonnes",
            "Offsets still to buy for a zero Scope 2 balance in the target year (t CO2)",
            registry=r)  # fmt: skip
        self.ledger_records = Gauge(
            "dispatch_carbon_ledger_records", "Interval records in the carbon ledger", registry=r
        )
        self.warmup = Gauge("dispatch_warmup", "1 while too little load is measured for a "
                            "forecast (no peak target from the plan)", registry=r)  # fmt: skip
        self.input_fallback = Gauge("dispatch_input_fallback",
                                    "1 when a forecast input fell back from its configured "
                                    "source (weather: clear sky; intensity: configured)",
                                    ["input"], registry=r)  # fmt: skip
        self.carbon_target_year: Gauge | None = None
        self.site_fault_level = Gauge(
            "dispatch_site_fault_level",
            "The site's fault level after the last cycle: 0 ok, 1 warning, 2 fault",
            registry=r,
        )
        self.plan_status.state("none")
        self._add_site(r)
        self._add_health(r)
        for job in JOBS:
            self.job_errors.labels(job)

    def _add_site(self, r: CollectorRegistry) -> None:
        """The site's figures beside the measured powers: peak, target, plan slot in force."""
        self.month_peak = Gauge(
            "dispatch_month_peak_kw",
            "Billing month's grid-import peak so far: highest closed plan-slot mean (kW)",
            registry=r,
        )
        self.peak_target = Gauge(
            "dispatch_peak_target_kw",
            "Month's peak target the guard holds this cycle (kW; NaN when none)",
            registry=r,
        )
        self.price = Gauge(
            "dispatch_energy_price_per_kwh",
            "Energy price of the plan slot in force (currency per kWh; NaN without one)",
            ["direction", "currency"],
            registry=r,
        )
        self.grid_ci = Gauge(
            "dispatch_grid_ci_g_per_kwh",
            "Grid carbon intensity of the plan slot in force (g CO2 per kWh; NaN without one)",
            registry=r,
        )
        self.planned_power = Gauge(
            "dispatch_planned_power_kw",
            "Power the plan slot in force plans, site-bus sign (kW; NaN without one)",
            ["quantity"],
            registry=r,
        )

    def _add_health(self, r: CollectorRegistry) -> None:
        """Faults, safe state, setpoint tracking, the store's last commit and build info."""
        self.safe_state = Gauge(
            "dispatch_safe_state", "1 while the last cycle ended in the safe state", registry=r
        )
        self.fault_level = Gauge(
            "dispatch_device_fault_level",
            "Device fault level after the last cycle: 0 ok, 1 degraded (one failure, "
            "retrying), 2 failed (failures in a row, or values frozen)",
            ["device"],
            registry=r,
        )
        self.not_following = Gauge(
            "dispatch_setpoint_not_following",
            f"1 when |measured - last setpoint| exceeded the tolerance in {FOLLOW_CYCLES} "
            "cycles in a row",
            registry=r,
        )
        self.off_cycles = Gauge(
            "dispatch_setpoint_off_cycles",
            "Cycles in a row with |measured - last setpoint| above the tolerance",
            registry=r,
        )
        self.follow_tolerance = Gauge(
            "dispatch_setpoint_tolerance_kw",
            "Tolerance of the setpoint tracking check (kW)",
            registry=r,
        )
        self.store_write = Gauge(
            "dispatch_store_last_write_timestamp_seconds",
            "When a store write (cycle record, forecast, plan) last committed (clock, unix s)",
            registry=r,
        )
        self.store_failing = Gauge(
            "dispatch_store_failing",
            "1 while a store write (cycle record, forecast, plan) is failing (disk full, "
            "read-only or locked file): control goes on, the records wait in memory",
            registry=r,
        )
        self.device_rewrites = Counter(
            "dispatch_device_rewrites",
            "Commands written again at once because the device no longer held them (a "
            "reboot, a local operator)",
            ["device"],
            registry=r,
        )
        self.build = Info("dispatch_build", "Version of the daemon and of its Python", registry=r)
        self.build.info({"version": package_version(), "python": platform.python_version()})
        self.follow_check = FollowCheck()
        for gauge in (self.month_peak, self.peak_target, self.grid_ci, self.store_write):
            gauge.set(math.nan)

    def carbon_target(self, year: int) -> None:
        """Expose the configured neutrality target year (only when one is configured)."""
        if self.carbon_target_year is None:
            self.carbon_target_year = Gauge("dispatch_carbon_neutrality_target_year",
                                            "Configured carbon neutrality target year",
                                            registry=self.registry)  # fmt: skip
        self.carbon_target_year.set(year)

    def carbon(self, figures: Mapping[str, Any]) -> None:
        """Record the ledger's figures (``dispatch.daemon.ledger_job.carbon_figures``)."""
        self.carbon_month.labels("location").set(figures["location_t_co2"])
        self.carbon_month.labels("market").set(figures["market_t_co2"])
        self.carbon_net.labels("month").set(figures["net_month_t_co2"])
        self.carbon_net.labels("year").set(figures["net_year_t_co2"])
        needed = figures.get("offsets_needed_t_co2")
        self.carbon_offsets_needed.set(math.nan if needed is None else needed)
        self.ledger_records.set(figures["records"])

    def cycle(self, snap: Snapshot, sp: Setpoints, last_kw: float | None, seconds: float) -> None:
        """Record one completed control cycle."""
        self.cycle_seconds.observe(seconds)
        self.cycles.inc()
        safe = sp.reason.startswith("safe")  # as ``SiteState.in_safe_state`` after the cycle
        if safe:
            self.safe_cycles.inc()
        self.safe_state.set(1.0 if safe else 0.0)
        for q in ("p_grid_kw", "p_pv_kw", "p_batt_kw", "p_load_kw"):
            self.power.labels(q.removeprefix("p_").removesuffix("_kw")).set(getattr(snap, q))
        self.soc.set(snap.soc_frac)
        self.setpoint.set(sp.p_batt_kw)
        if last_kw is not None and math.isfinite(snap.p_batt_kw):
            self.setpoint_error.set(snap.p_batt_kw - last_kw)

    def peaks(self, month_peak_kw: float, target_kw: float | None) -> None:
        """Record the billing month's import peak so far and the guard's target (kW)."""
        self.month_peak.set(month_peak_kw)
        self.peak_target.set(math.nan if target_kw is None else target_kw)

    def plan_slot(self, slot: Mapping[str, float] | None, currency: str) -> None:
        """Record the plan slot in force (a row of ``Plan.frame``; None without one)."""

        def value(column: str) -> float:
            v = slot.get(column, math.nan) if slot is not None else math.nan
            return float(v) if v is not None else math.nan

        self.price.labels("import", currency).set(value("price_import_per_kwh"))
        self.price.labels("export", currency).set(value("price_export_per_kwh"))
        self.grid_ci.set(value("ci_g_per_kwh"))
        self.planned_power.labels("batt").set(value("p_batt_kw"))
        self.planned_power.labels("grid").set(value("p_grid_kw"))

    def device_health(self, device: str, failures: int, stale: bool) -> int:
        """Record a device's fault level (``fault_level``) and return it; its read and write
        fault counters exist from then on (at 0), so ``rate`` works before a first fault."""
        level = fault_level(failures, stale)
        self.fault_level.labels(device).set(level)
        for op in ("read", "write"):
            self.device_faults.labels(device, op)
        self.device_rewrites.labels(device)
        return level

    def follow(self, measured_kw: float, setpoint_kw: float | None, tolerance_kw: float) -> bool:
        """Count one cycle of setpoint tracking (``FollowCheck``); True while not following.

        Parameters
        ----------
        measured_kw : float
            Battery power measured this cycle (kW, > 0 discharge; NaN when not fresh).
        setpoint_kw : float or None
            What the devices accepted in the cycle before (kW); None when nothing to compare.
        tolerance_kw : float
            Largest error that still counts as following (kW).
        """
        off = self.follow_check.observe(measured_kw, setpoint_kw, tolerance_kw)
        self.not_following.set(1.0 if off else 0.0)
        self.off_cycles.set(self.follow_check.off_cycles)
        self.follow_tolerance.set(tolerance_kw)
        return off

    def store_written(self, t: dt.datetime) -> None:
        """Record a committed store write at ``t`` (clock time, tz-aware)."""
        self.store_write.set(t.timestamp())

    def plan(self, status: str, solve_ms: float) -> None:
        """Record a published plan."""
        self.plans.labels(status).inc()
        self.plan_status.state(status if status in PLAN_STATES else "fallback")
        self.solve_seconds.set(solve_ms / 1000.0)

    def forecast(self, warmup: bool, fallbacks: tuple[str, ...]) -> None:
        """Record a new forecast: warm-up or not, and which inputs fell back."""
        self.warmup.set(1.0 if warmup else 0.0)
        for name in ("weather", "intensity"):
            self.input_fallback.labels(name).set(1.0 if name in fallbacks else 0.0)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
