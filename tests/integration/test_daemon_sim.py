"""The real daemon against the real simulator over Modbus TCP on 127.0.0.1, clock at 240x.

One valley-then-peak tariff day from 05:30: the plan charges until 06:00 and discharges after,
the setpoints reach the plant, SoC follows, everything lands in SQLite, ``/metrics`` parses,
systemd hears READY, WATCHDOG and STOPPING. Then faults: the simulator killed and restarted,
exception responses, writes that do not stick. No unsafe setpoint in any of them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dispatch.store import Store
from sim.server import default_physics, start_server
from tests.integration.conftest import T0, Run, run_daemon

pytestmark = pytest.mark.slow
LIMIT_KW = 100.0
SWITCH = T0 + dt.timedelta(minutes=20)


def stored(tmp_path: Path, table: str) -> list[dict]:
    with Store(tmp_path / "dispatch.sqlite3") as store:
        return store.rows(table)


def assert_no_unsafe_setpoint(tmp_path: Path) -> None:
    rows = stored(tmp_path, "setpoints")
    assert rows
    assert all(abs(r["p_batt_kw"]) <= LIMIT_KW + 1e-6 for r in rows)


def metrics(text: bytes) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_daemon_follows_its_plans_on_the_simulated_plant(tmp_path: Path) -> None:
    async def scenario(run: Run) -> None:
        await run.watch(3.0)
        run.extra["metrics"] = metrics(await run.fetch("/metrics"))
        run.extra["status"] = await run.fetch_json("/status")
        run.extra["plan"] = await run.fetch_json("/plan")
        run.extra["page"] = (await run.fetch("/")).decode()
        run.extra["setpoint_kw"] = run.daemon.last_cycle.setpoints.p_batt_kw
        run.extra["plant_kw"] = run.sim.battery.p_batt_kw
        await run.watch(5.0)

    run = run_daemon(tmp_path, scenario)
    before = [s for t, s in run.soc if t < SWITCH - dt.timedelta(minutes=2)]
    after = [s for t, s in run.soc if t > SWITCH + dt.timedelta(minutes=2)]
    assert before[-1] > before[0] + 0.02  # charging in the valley, as planned
    assert after[-1] < after[0] - 0.02  # discharging at the peak price
    assert abs(run.extra["plant_kw"] - run.extra["setpoint_kw"]) < 2.0  # setpoints reach it
    plans = stored(tmp_path, "plans")
    assert len(plans) >= 4 and all(p["status"] == "optimal" for p in plans)
    assert len(stored(tmp_path, "measurements")) > 100
    assert len(stored(tmp_path, "setpoints")) > 100
    assert_no_unsafe_setpoint(tmp_path)
    kinds = [e["kind"] for e in stored(tmp_path, "events")]
    assert kinds[0] == "start" and kinds[-1] == "stop"
    m = run.extra["metrics"]
    assert m[("dispatch_cycles_total", ())] > 30
    assert m[("dispatch_plan_status", (("dispatch_plan_status", "optimal"),))] == 1.0
    assert 0.0 < m[("dispatch_soc_ratio", ())] < 1.0
    assert m[("dispatch_device_up", (("device", "bess"),))] == 1.0
    assert run.extra["status"]["plan"]["status"] == "optimal"
    assert run.extra["status"]["cycle"]["snapshot"]["ok"] is True
    assert len(run.extra["plan"]["slots"]) == 72
    assert 'id="p-batt"' in run.extra["page"] and 'id="soc-now"' in run.extra["page"]
    notes = run.notes
    assert notes[0].startswith("READY=1") and notes[-1].startswith("STOPPING=1")
    assert "WATCHDOG=1" in notes
    assert run.extra["window_after_stop"] is None  # handed back to the device's own mode


def test_simulator_killed_and_restarted(tmp_path: Path) -> None:
    async def scenario(run: Run) -> None:
        await run.watch(1.5)
        port = run.sim.port
        await run.sim.stop()
        await asyncio.sleep(1.5)
        run.extra["down"] = run.daemon.last_cycle.setpoints
        run.extra["cycles_down"] = run.daemon.cycles_completed
        run.sim = await start_server("sunspec", port=port, speed=240.0,
                                     battery=default_physics(start=T0, soc_frac=0.5))
        await run.watch(2.5)
        run.extra["up"] = run.daemon.last_cycle.setpoints

    run = run_daemon(tmp_path, scenario)
    down, up = run.extra["down"], run.extra["up"]
    assert down.default_mode and down.reason.startswith("safe: device fault")
    assert not up.default_mode and "plan slot" in up.reason  # recovered
    kinds = [e["kind"] for e in stored(tmp_path, "events")]
    assert "device_fault" in kinds and "device_recovered" in kinds and "safe_state" in kinds
    assert kinds.count("device_fault") <= 2  # loud once per episode, not once per cycle
    assert run.daemon.cycles_completed > run.extra["cycles_down"]  # the loop kept cycling
    assert_no_unsafe_setpoint(tmp_path)


def test_exception_responses_then_writes_that_do_not_stick(tmp_path: Path) -> None:
    async def scenario(run: Run) -> None:
        await run.watch(1.0)
        run.sim.faults.exception_code = 4  # server device failure on every request
        await run.watch(1.0)
        run.extra["exc"] = run.daemon.last_cycle.setpoints
        run.sim.faults.exception_code = None
        await run.watch(1.0)
        run.extra["ok"] = run.daemon.last_cycle.setpoints
        run.sim.faults.writes_ignored = True  # read-back mismatch
        await run.watch(1.0)
        run.extra["window"] = run.sim.window()
        run.sim.faults.writes_ignored = False
        await run.watch(1.0)

    run = run_daemon(tmp_path, scenario)
    assert run.extra["exc"].default_mode and run.extra["exc"].reason.startswith("safe: device")
    assert not run.extra["ok"].default_mode and "plan slot" in run.extra["ok"].reason
    events = stored(tmp_path, "events")
    faults = [e for e in events if e["kind"] == "device_fault"]
    assert "exception response code 4" in faults[0]["message"]
    writes = [e for e in events if e["kind"] == "device_write"]
    assert any("read-back mismatch" in e["message"] for e in writes)
    assert all("handed back to the device's default mode" in e["message"] for e in writes
               if "read-back mismatch" in e["message"])  # the client tried the handback
    failed = [r for r in stored(tmp_path, "setpoints") if r["write_ok"] == 0]
    assert failed  # recorded as failed writes
    window = run.extra["window"]
    assert window is None or (min(window) >= -LIMIT_KW and max(window) <= LIMIT_KW)
    assert_no_unsafe_setpoint(tmp_path)


def test_out_of_range_values_and_a_silent_device_give_the_safe_state(tmp_path: Path) -> None:
    async def scenario(run: Run) -> None:
        await run.watch(1.0)
        run.sim.faults.out_of_range = True  # SoC 150 %, absurd battery power
        await run.watch(0.8)
        run.extra["range"] = run.daemon.last_cycle.setpoints
        run.sim.faults.out_of_range = False
        run.sim.faults.silent = True  # timeouts
        await run.watch(1.0)
        run.extra["silent"] = run.daemon.last_cycle.setpoints
        run.sim.faults.silent = False
        await run.watch(1.5)
        run.extra["back"] = run.daemon.last_cycle.setpoints

    run = run_daemon(tmp_path, scenario)
    rng, silent, back = run.extra["range"], run.extra["silent"], run.extra["back"]
    assert rng.default_mode and "out of range" in rng.reason
    assert silent.default_mode and silent.reason.startswith("safe: device fault")
    assert not back.default_mode and "plan slot" in back.reason
    faults = [e["message"] for e in stored(tmp_path, "events") if e["kind"] == "device_fault"]
    assert any("timeout" in m for m in faults)
    levels = [e["message"] for e in stored(tmp_path, "events") if e["kind"] == "site_level"]
    assert any(m.startswith("site fault: safe: ") for m in levels) and levels[-1] == "site ok"
    assert_no_unsafe_setpoint(tmp_path)
