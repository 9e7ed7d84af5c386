"""A store that fills up (SQLite's own limit on the database's pages, the error a full disk
gives: "database or disk is full"): control goes on and the watchdog is fed, the status says
the store is failing, and once there is room again every kept-back cycle is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.store import Store
from tests.integration.conftest import Run, run_daemon
from tests.integration.fault_hooks import limit_pages

pytestmark = pytest.mark.slow


def test_a_full_store_never_stops_control_and_nothing_is_lost(tmp_path: Path) -> None:
    async def scenario(run: Run) -> None:
        d = run.daemon
        await run.watch(1.0)
        await d.in_store(limit_pages, run, 0)
        for _ in range(100):  # until the free pages are used up and a cycle fails
            await run.watch(0.05)
            if "store:cycle" in d.failures.failing():
                break
        start = (d.cycles_completed, len(run.notifications()))
        await run.watch(2.5)  # the watchdog is sent at most once a second
        run.extra["full"] = await run.fetch_json("/api/v1/status")
        run.extra["during"] = (
            d.cycles_completed - start[0],
            sum("WATCHDOG=1" in n for n in run.notes[start[1] :]),
            len(d.state.unstored),
        )
        run.extra["plant_kw"] = (run.sim.battery.p_batt_kw, d.last_cycle.written_kw)
        await d.in_store(limit_pages, run, None)
        await run.watch(1.0)
        run.extra["after"] = (d.failures.failing(), len(d.state.unstored), d.cycles_completed)

    run = run_daemon(tmp_path, scenario)
    cycles, watchdogs, kept = run.extra["during"]
    assert cycles > 30 and watchdogs >= 2 and kept > 30  # control and watchdog went on
    assert "store:cycle" in run.extra["full"]["failing"]
    plant_kw, written_kw = run.extra["plant_kw"]
    assert written_kw is not None and plant_kw == pytest.approx(written_kw, abs=2.0)
    failing, left, total = run.extra["after"]
    assert "store:cycle" not in failing and left == 0
    with Store(tmp_path / "dispatch.sqlite3") as store:
        rows = store.rows("measurements")
        kinds = [e["kind"] for e in store.rows("events")]
    assert len(rows) >= total  # every completed cycle's reading is stored (and the stop's)
    times = [r["time_ms"] for r in rows]
    assert times == sorted(times)  # written late, in their order
    assert "store_recovered" in kinds
