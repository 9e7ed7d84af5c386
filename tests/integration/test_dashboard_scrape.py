"""The dashboard against a real daemon: its ``/metrics`` over HTTP, on the simulated plant.

The daemon runs against the simulator over Modbus TCP (clock at 240x, from the valley
before 06:00) until the carbon ledger has a record; its ``/metrics`` is scraped over HTTP and
parsed with prometheus_client's own parser. Every metric name in every expression of
``grafana/dispatch-dashboard.json`` must be a series in that scrape (counters by their
``_total``, the cycle histogram by its ``_bucket``), and the new gauges must say what a
normal run is: a month peak from the slots that imported, no peak target (the site has no
demand charge), no safe state, no fault, the battery following. Then a plant that delivers
half of what it accepts: reads and writes succeed (fault level 0), the battery is "not
following". And a device that answers every request with an exception: fault level 1 at
the first (the write of that cycle waits for the back-off), 2 when the retry fails too, 0
once it answers again.
"""

from __future__ import annotations

import math
import platform
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dispatch.daemon.metrics import FOLLOW_CYCLES, package_version
from tests import dashboard
from tests.integration.conftest import Run, run_daemon

pytestmark = pytest.mark.slow


def scrape(text: bytes) -> tuple[dict[str, str], dict[tuple[str, tuple], float]]:
    """(series name -> family type, (series name, labels) -> value) of a scrape."""
    types: dict[str, str] = {}
    values: dict[tuple[str, tuple], float] = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            types[s.name] = fam.type
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return types, values


async def until(condition: Any, run: Run, timeout_s: float = 10.0) -> None:
    """Watch the plant until ``condition()`` holds (at most ``timeout_s`` real s)."""
    for _ in range(int(timeout_s / 0.25)):
        if condition():
            return
        await run.watch(0.25)
    raise AssertionError("timed out")


def test_every_name_the_dashboard_queries_is_exported_by_a_running_daemon(tmp_path: Path) -> None:
    async def scenario(run: Run) -> None:
        await run.watch(3.0)
        await until(lambda: run.daemon.carbon_figures is not None, run)
        run.extra["metrics"] = await run.fetch("/metrics")
        run.extra["now_s"] = run.daemon.clock.now().timestamp()

    run = run_daemon(tmp_path, scenario)
    types, m = scrape(run.extra["metrics"])
    assert dashboard.unexported(dashboard.load(), types) == []
    assert m[("dispatch_month_peak_kw", ())] > 0  # valley charging imports: 50 kW + charge
    assert math.isnan(m[("dispatch_peak_target_kw", ())])  # no demand charge, no target
    assert m[("dispatch_safe_state", ())] == 0.0
    assert m[("dispatch_device_fault_level", (("device", "bess"),))] == 0.0
    assert m[("dispatch_setpoint_not_following", ())] == 0.0
    assert m[("dispatch_setpoint_tolerance_kw", ())] == 5.0  # 5 % of 100 kW
    written = m[("dispatch_store_last_write_timestamp_seconds", ())]
    assert run.extra["now_s"] - 60.0 < written <= run.extra["now_s"]  # within a few cycles
    (build,) = [dict(labels) for name, labels in m if name == "dispatch_build_info"]
    assert build == {"version": package_version(), "python": platform.python_version()}
    price = m[("dispatch_energy_price_per_kwh", (("currency", "EUR"), ("direction", "import")))]
    assert price in (0.1, 0.5)  # the valley or the peak band
    assert m[("dispatch_grid_ci_g_per_kwh", ())] == 500.0


def test_a_battery_that_accepts_but_does_not_deliver_is_not_following(tmp_path: Path) -> None:
    async def scenario(run: Run) -> None:
        await run.watch(1.0)
        physics = run.sim.battery
        step = physics.step

        def half(dt_s: float, window: tuple[float, float] | None, *args: object) -> None:
            step(dt_s, None if window is None else (window[0] / 2, window[1] / 2), *args)

        physics.step = half  # type: ignore[method-assign]
        await until(lambda: run.daemon.metrics.not_following._value.get() == 1.0, run)
        run.extra["metrics"] = await run.fetch("/metrics")
        physics.step = step  # type: ignore[method-assign]
        await until(lambda: run.daemon.metrics.not_following._value.get() == 0.0, run)

    run = run_daemon(tmp_path, scenario, follow_fault_cycles=0)  # the metric, not the fault
    _, m = scrape(run.extra["metrics"])
    assert m[("dispatch_setpoint_not_following", ())] == 1.0
    assert m[("dispatch_setpoint_off_cycles", ())] >= FOLLOW_CYCLES
    assert abs(m[("dispatch_setpoint_error_kw", ())]) > 5.0
    assert m[("dispatch_device_fault_level", (("device", "bess"),))] == 0.0  # it answers
    assert m[("dispatch_device_up", (("device", "bess"),))] == 1.0
    assert m[("dispatch_safe_state", ())] == 0.0


def test_a_failing_device_goes_from_degraded_to_failed_and_back(tmp_path: Path) -> None:
    levels: list[int] = []

    async def scenario(run: Run) -> None:
        m = run.daemon.metrics
        health = m.device_health

        def record(device: str, failures: int, stale: bool) -> int:
            level = health(device, failures, stale)
            if not levels or levels[-1] != level:
                levels.append(level)
            return level

        m.device_health = record  # type: ignore[method-assign]
        await run.watch(1.0)
        run.sim.faults.exception_code = 4  # server device failure, answered at once
        await until(lambda: levels[-1] == 2, run)
        run.extra["safe"] = m.safe_state._value.get()
        run.sim.faults.exception_code = None
        await until(lambda: levels[-1] == 0, run)

    run = run_daemon(tmp_path, scenario)
    assert levels[:3] == [0, 1, 2] and levels[-1] == 0
    assert run.extra["safe"] == 1.0  # a device that fails: the safe state
