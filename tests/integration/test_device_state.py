"""A converter that trips (its running state reads "fault"): the daemon (against the
simulator over Modbus TCP, 240x) commands no power, hands the battery back within two control
cycles, names the state in its status and events, and resumes once the device runs again."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.store import Store
from tests.integration.conftest import Run, run_daemon

pytestmark = pytest.mark.slow
NAMED = "bess: not running: batt_inverter_state (St) = 7 'fault' (ready: 4, 5, 8)"


def test_a_device_in_a_fault_state_gets_the_safe_state_naming_it_and_recovers(
    tmp_path: Path,
) -> None:
    async def scenario(run: Run) -> None:
        d = run.daemon
        await run.watch(1.5)  # a plan is in force
        run.extra["before"] = d.last_cycle.setpoints
        run.sim.faults.state_fault = True
        t0 = d.clock.now()
        for _ in range(200):
            await run.watch(0.02, every_s=0.01)
            if d.in_safe_state:
                break
        run.extra["to_safe_s"] = (d.clock.now() - t0).total_seconds()
        await run.watch(0.5)
        run.extra["safe"] = d.last_cycle.setpoints
        run.extra["window"] = run.sim.window()
        run.extra["status"] = await run.fetch_json("/api/v1/status")
        run.sim.faults.state_fault = False
        await run.watch(1.0)
        run.extra["after"] = d.last_cycle.setpoints

    run = run_daemon(tmp_path, scenario)
    assert not run.extra["before"].default_mode
    assert run.extra["to_safe_s"] <= 20.0 + 10.0  # two 10 s cycles, plus the sampling step
    safe = run.extra["safe"]
    assert safe.default_mode and safe.p_batt_kw == 0.0
    assert safe.reason == f"safe: device fault: {NAMED}"
    assert run.extra["window"] is None  # handed back: the device is in its own mode
    status = run.extra["status"]
    assert status["safe_state"] and status["cycle"]["snapshot"]["faults"] == [NAMED]
    assert status["health"]["level"] == "fault"
    after = run.extra["after"]
    assert not after.default_mode and after.reason.startswith("plan slot")
    with Store(tmp_path / "dispatch.sqlite3") as store:
        events = [(e["kind"], e["message"]) for e in store.rows("events")]
    assert ("device_fault", NAMED) in events
    assert ("safe_state", f"safe: device fault: {NAMED}") in events
    assert "control_resumed" in [k for k, _ in events]
