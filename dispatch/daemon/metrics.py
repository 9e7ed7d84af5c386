"""Prometheus metrics of one daemon (its own registry: no module-level state).

Role: name and update the gauges, counters and histograms that ``/metrics`` serves: control
cycle time, solve time, plan status and age, SoC, powers, setpoint and its error, device faults,
data ages, warm-up and input fallbacks, and the carbon ledger's month-to-date tonnes, net
balance toward neutrality and target year. Imports prometheus_client and ``dispatch.types``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import Enum as PromEnum

from dispatch.types import Setpoints, Snapshot

PLAN_STATES = ["none", "optimal", "optimal_inaccurate", "fallback"]
CYCLE_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


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
            "Neutrality basis emissions minus offsets retired, month or year to date (t CO2)",
            ["period"], registry=r)  # fmt: skip
        self.carbon_offsets_needed = Gauge(
            "dispatch_carbon_offsets_needed_tonnes",
            "Offsets still to buy for a net-zero target year at the current trend (t CO2)",
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
        self.plan_status.state("none")

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
        if sp.reason.startswith("safe"):
            self.safe_cycles.inc()
        for q in ("p_grid_kw", "p_pv_kw", "p_batt_kw", "p_load_kw"):
            self.power.labels(q.removeprefix("p_").removesuffix("_kw")).set(getattr(snap, q))
        self.soc.set(snap.soc_frac)
        self.setpoint.set(sp.p_batt_kw)
        if last_kw is not None and math.isfinite(snap.p_batt_kw):
            self.setpoint_error.set(snap.p_batt_kw - last_kw)

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
