"""How the fault-matrix rows that are not a ``sim.server_faults`` flag inject and clear their
fault, each on the real thing the daemon meets (never a mock of the daemon's own code):

- the simulated device stopped (its connections closed, new connects refused) and started
  again on the same port with the same battery, registers at their power-on values;
- HiGHS, the daemon's own persistent solver model, told ``time_limit = 0`` (every re-solve
  ends "Time limit reached"), then given its limit back;
- the store thread's own SQLite connection made read-only (``PRAGMA query_only``: every write
  fails "attempt to write a readonly database") or full (``PRAGMA max_page_count``: "database
  or disk is full", as ``test_store_full``), then given its room back.
"""

from __future__ import annotations

import highspy

from sim.server import start_server
from tests.integration.conftest import SPEED, Run


def limit_pages(run: Run, extra_pages: int | None) -> None:
    """Cap the store thread's connection at its current size (+ ``extra_pages``), or lift."""
    conn = run.daemon.store._conn()  # called in the store thread
    if extra_pages is None:
        conn.execute("PRAGMA max_page_count = 1073741823")
    else:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + extra_pages}")


async def stop_device(run: Run) -> None:
    """Stop the simulated device: the daemon's connection closes, new connects are refused."""
    await run.sim.stop()


async def restart_device(run: Run) -> None:
    """Start the device again on its port with the same battery (a controller reboot)."""
    old = run.sim
    run.sim = await start_server("sunspec", port=old.port, speed=SPEED, battery=old.battery)


def _highs_time_limit(run: Run, limit_s: float) -> None:
    model = run.daemon.state.model  # type: ignore[union-attr]
    assert model._hot is not None, "the daemon solved no plan on its persistent HiGHS model yet"
    model._hot._highs.setOptionValue("time_limit", limit_s)


async def break_solver(run: Run) -> None:
    """Every re-solve of the daemon's HiGHS model ends at a 0 s time limit (in its thread)."""
    await run.daemon.in_worker(_highs_time_limit, run, 0.0)


async def mend_solver(run: Run) -> None:
    """HiGHS has no time limit again."""
    await run.daemon.in_worker(_highs_time_limit, run, highspy.kHighsInf)


def _query_only(run: Run, on: bool) -> None:
    run.daemon.store._conn().execute(f"PRAGMA query_only = {int(on)}")  # in the store thread


async def store_read_only(run: Run) -> None:
    """Every write of the store thread fails: the file became read-only under the daemon."""
    await run.daemon.in_store(_query_only, run, True)


async def store_writable(run: Run) -> None:
    """The store can be written again."""
    await run.daemon.in_store(_query_only, run, False)


async def store_full(run: Run) -> None:
    """The store cannot grow beyond its current pages (a full disk)."""
    await run.daemon.in_store(limit_pages, run, 0)


async def store_room(run: Run) -> None:
    """The store has room again."""
    await run.daemon.in_store(limit_pages, run, None)
