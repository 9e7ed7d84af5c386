"""A battery that accepts its setpoints but delivers half of them: the daemon (against the
simulator over Modbus TCP, 240x) raises the tracking fault, hands the battery back (safe
state) for the hold, tries again, and resumes normal control once the plant follows."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.store import Store
from tests.integration.conftest import Run, run_daemon

pytestmark = pytest.mark.slow


def test_a_battery_that_does_not_follow_reaches_the_safe_state_and_recovers(
    tmp_path: Path,
) -> None:
    async def scenario(run: Run) -> None:
        await run.watch(1.0)
        physics = run.sim.battery
        step = physics.step

        def half(dt_s: float, window: tuple[float, float] | None, *args: object) -> None:
            step(dt_s, None if window is None else (window[0] / 2, window[1] / 2), *args)

        physics.step = half  # type: ignore[method-assign]
        for _ in range(100):
            await run.watch(0.05)
            if run.daemon.in_safe_state:
                break
        run.extra["safe"] = run.daemon.last_cycle.setpoints
        run.extra["window_safe"] = run.sim.window()
        physics.step = step  # type: ignore[method-assign]
        await run.watch(2.5)  # the hold (300 plant s = 1.25 s) ends, control resumes
        run.extra["after"] = run.daemon.last_cycle.setpoints

    run = run_daemon(tmp_path, scenario, follow_fault_hold_s=300.0)
    safe, after = run.extra["safe"], run.extra["after"]
    assert safe.default_mode and "battery not following its setpoint" in safe.reason
    assert run.extra["window_safe"] is None  # handed back: the device runs its own mode
    assert not after.default_mode and after.reason.startswith("plan slot")
    with Store(tmp_path / "dispatch.sqlite3") as store:
        events = [(e["kind"], e["message"]) for e in store.rows("events")]
    kinds = [k for k, _ in events]
    assert "not_following" in kinds and "tracking_retry" in kinds
    raised = next(m for k, m in events if k == "not_following")
    assert "for 6 cycles" in raised and "safe state for 300 s" in raised
