"""The fault matrix (issue 21): the daemon process image against the simulator over Modbus
TCP (240x: a 10 s control cycle every 42 ms), one row per injected fault
(``sim.server_faults``). Each row asserts that no setpoint and no battery power ever leaves
the 100 kW limits, that the daemon reaches its safe state (or, for a mode dropped by a local
operator, rewrites the command) within the row's plant time, that the fault is visible in
``/api/v1/status`` and in the stored events, that the device itself is in its own mode
(handed back, or its revert timer fired) and that control resumes after the fault clears.
``-s`` prints the matrix: case, plant seconds to the safe state (or the rewrite), to the
device in its own mode, and to control resumed after the fault cleared.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dispatch.store import Store
from tests.integration.conftest import Run, run_daemon

pytestmark = pytest.mark.slow
LIMIT_KW = 100.0


@dataclass(frozen=True)
class Case:
    """A fault, how it is set, what shows it, and the plant seconds it may take."""

    name: str
    faults: dict[str, Any]
    within_s: float  # plant seconds from the fault to the safe state (or the rewrite)
    events: tuple[str, ...]  # stored event kinds that must appear (any of them)
    status: str  # text that /api/v1/status must show while the fault lasts
    control: dict[str, Any] | None = None
    recover_s: float = 4.0  # real seconds allowed for recovery (the back-off, the hold)


CASES = [
    # a read times out (0.2 s real, no retry: 48 plant s at 240x): a device fault in the
    # cycle that meets it; allowed: 3 cycles and 2 timeouts, doubled for a loaded CI machine
    # (one clean-clone run took 147 plant s)
    Case("silent", {"silent": True}, 240.0, ("device_fault",), "no response (timeout)"),
    Case("exception", {"exception_code": 4}, 30.0, ("device_fault",), "exception"),
    # the next write (the re-arm at half the 120 s revert timer at the latest) reads back
    # zeros: handed back at once, held in the safe state for backoff_max_s (20 s)
    Case("writes ignored", {"writes_ignored": True}, 90.0, ("device_write",), "read-back"),
    # the battery keeps what it did when the fault came: the fault shows once the plan's
    # setpoint moves away (the valley charge ends at 06:00, 20 plant min after the start),
    # then 6 cycles beyond 5 % of the rating raise the tracking fault (held 300 s)
    Case(
        "not following",
        {"not_following": True},
        900.0,
        ("not_following",),
        "not following",
        {"follow_fault_hold_s": 300.0},
    ),
    # 30 identical reads of the measured points
    Case("frozen", {"frozen": True}, 450.0, ("device_fault",), "frozen"),
    # every answer comes after the 0.2 s timeout: as silent
    Case("slow answers", {"delay_s": 0.5}, 240.0, ("device_fault",), "no response (timeout)"),
    # SoC 150 %, a charge of 1000 x the rating: implausible readings
    Case("out of range", {"out_of_range": True}, 30.0, ("safe_state",), "safe"),
    Case("tripped (state)", {"state_fault": True}, 30.0, ("device_fault",), "not running"),
    # a local operator resets the mode 30 plant s after each command: rewritten, not safe
    Case("mode dropped", {"mode_drop_s": 30.0}, 50.0, ("device_rewritten",), "plan slot"),
]


def _clear(run: Run, case: Case) -> None:
    for key in case.faults:
        setattr(run.sim.faults, key, type(getattr(run.sim.faults, key))())
    run.sim.faults.exception_code = None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault_matrix(case: Case, tmp_path: Path) -> None:
    async def scenario(run: Run) -> None:
        d, ex = run.daemon, run.extra
        ex["powers"] = []

        async def sample(seconds: float) -> None:
            for _ in range(max(1, round(seconds / 0.02))):
                await run.watch(0.02, every_s=0.01)
                ex["powers"].append(run.sim.battery.p_batt_kw)

        await sample(1.5)  # a plan is in force, control follows it
        ex["before"] = d.last_cycle.setpoints
        for key, value in case.faults.items():
            setattr(run.sim.faults, key, value)
        t0 = d.clock.now()
        reached = None
        for _ in range(400):
            await sample(0.02)
            cycle = d.last_cycle
            hit = (
                "rewritten" in cycle.actions.values()
                if case.name == "mode dropped"
                else d.in_safe_state
            )
            if hit:
                reached = (d.clock.now() - t0).total_seconds()
                break
        ex["reached"] = reached
        ex["status"] = str(await run.fetch_json("/api/v1/status"))
        # the device itself in its own mode: handed back, or its revert timer (120 s) fired
        device_safe = None
        for _ in range(250):
            if case.name == "mode dropped" or run.sim.window() is None:
                device_safe = (d.clock.now() - t0).total_seconds()
                break
            await sample(0.02)
        ex["device_safe"] = device_safe
        _clear(run, case)
        recovered, t1 = None, d.clock.now()
        for _ in range(round(case.recover_s / 0.05)):
            await sample(0.05)
            sp = d.last_cycle.setpoints
            if not sp.default_mode and sp.reason.startswith("plan slot"):
                recovered = (d.clock.now() - t1).total_seconds()
                break
        ex["recovered"] = recovered

    control = {"follow_fault_hold_s": 60.0, **(case.control or {})}
    run = run_daemon(tmp_path, scenario, **control)
    ex = run.extra
    reached = ex["reached"]
    print(
        f"\nfault matrix | {case.name:<16} | safe (or rewrite) after {reached} plant s "
        f"(allowed {case.within_s:g}) | device in its own mode after {ex['device_safe']} "
        f"plant s | control resumed {ex['recovered']} plant s after clear"
    )
    assert not ex["before"].default_mode and ex["before"].reason.startswith("plan slot")
    assert reached is not None and reached <= case.within_s, (case.name, reached)
    device_safe = ex["device_safe"]  # at the latest the revert timer after the last write
    assert device_safe is not None and device_safe <= case.within_s + 130.0, device_safe
    assert case.status in ex["status"], ex["status"][:2000]
    assert ex["recovered"] is not None, case.name
    assert max(abs(p) for p in ex["powers"]) <= LIMIT_KW + 1e-6
    with Store(tmp_path / "dispatch.sqlite3") as store:
        setpoints = [r["p_batt_kw"] for r in store.rows("setpoints")]
        kinds = {e["kind"] for e in store.rows("events")}
    assert setpoints and max(abs(p) for p in setpoints) <= LIMIT_KW + 1e-6
    assert kinds & set(case.events), (case.name, sorted(kinds))
    if case.name != "mode dropped":
        assert {"safe_state", "control_resumed"} <= kinds, sorted(kinds)
