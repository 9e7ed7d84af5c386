"""The fault matrix's ``kill -9`` row (issue 21): ``dispatch run`` as a real process at 240x
against the simulated device (served from this test's own thread, so its registers and its
battery can be watched), killed with SIGKILL in the middle of its cycles, then started again
on the same store.

What applies of the matrix's assertions, and how:

- no setpoint and no battery power outside the 100 kW limits: the battery is sampled all
  along, the stored setpoints are read after;
- the safe state: a killed daemon writes nothing, so the device's own revert timer (120 plant
  s after the last write; the daemon re-arms it at half that) must put it in its own mode;
- the fault visible: a dead daemon has no status, metrics or events of its own; what shows it
  is that ``/metrics`` and ``/api/v1/status`` stop answering (Prometheus' ``up`` = 0) and,
  after the restart, a second ``start`` event with no ``stop`` before it;
- recovery: the new process resumes control (the plan's setpoint written to the device),
  ``/metrics`` says not safe and the device fault level is 0;
- no committed row lost: every row committed before the kill is there after, unchanged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from dispatch.store import Store
from sim.server import PlantServer, default_physics, start_server
from tests.integration.conftest import SITE, SPEED, T0, free_port
from tests.integration.fault_checks import committed, metric

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
LIMIT_KW = 100.0
REVERT_S = 120.0  # the device's revert timer in ``SITE`` (plant s)
T = TypeVar("T")


class Device:
    """The simulated device on its own event loop in a thread of this test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        physics = default_physics(start=T0, soc_frac=0.5)
        self.sim: PlantServer = self.call(lambda: start_server("sunspec", speed=SPEED,
                                                               battery=physics))

    def call(self, make: Callable[[], Any]) -> Any:
        """Await ``make()`` on the device's loop."""
        return asyncio.run_coroutine_threadsafe(make(), self.loop).result(10)

    def read(self, fn: Callable[[PlantServer], T]) -> T:
        """``fn(sim)`` on the device's loop (never while it is mid-update)."""

        async def run() -> T:
            return fn(self.sim)

        return self.call(run)

    def stop(self) -> None:
        self.call(self.sim.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def get(port: int, path: str) -> bytes | None:
    """GET a path of the daemon's HTTP server; None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def start_daemon(cfg: Path, clock_start: dt.datetime, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "dispatch", "run", "--config", str(cfg), "--clock-speed",
           str(SPEED), "--clock-start", clock_start.isoformat()]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=log.open("ab"))


def test_kill_9_matrix_row(tmp_path: Path) -> None:
    db, cfg, http_port = tmp_path / "dispatch.sqlite3", tmp_path / "site.toml", free_port()
    dev = Device()
    powers: list[float] = []

    def plant_s() -> float:
        return dev.read(lambda s: s.plant_time_s)

    def wait(what: Callable[[], bool], proc: subprocess.Popen[bytes] | None,
             timeout_s: float = 40.0) -> bool:
        """Sample the battery until ``what()`` (True) or ``timeout_s`` real s (False)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            assert proc is None or proc.poll() is None, (tmp_path / "daemon.log").read_text()
            powers.append(dev.read(lambda s: s.battery.p_batt_kw))
            if what():
                return True
            time.sleep(0.02)
        return False

    def controlling() -> bool:
        body = get(http_port, "/api/v1/status")
        if body is None or dev.read(lambda s: s.window()) is None:
            return False
        cycle = json.loads(body).get("cycle") or {}
        return str(cycle.get("reason", "")).startswith("plan slot")

    text = SITE.format(register_map="sunspec", port=dev.sim.port, db=db)
    cfg.write_text(text.replace("[http]\nport = 0", f"[http]\nport = {http_port}"))
    log, launched = tmp_path / "daemon.log", time.monotonic()
    first = start_daemon(cfg, T0, log)
    second = None
    try:
        assert wait(controlling, first), "the first run never controlled the device"
        wait(lambda: False, first, 1.0)  # a few more cycles' and plans' rows
        before = committed(db)
        metrics_before = (get(http_port, "/metrics") or b"").decode()
        first.kill()  # SIGKILL in the middle of its cycles
        first.wait(10)
        t_kill = plant_s()
        scrape = get(http_port, "/metrics")  # nothing answers: the fault as Prometheus sees it
        assert wait(lambda: dev.read(lambda s: s.window()) is None, None, 5.0)
        device_safe = plant_s() - t_kill
        # the clock goes on where the killed process's would be (240x since its start)
        clock = T0 + dt.timedelta(seconds=(time.monotonic() - launched) * SPEED)
        t_restart = plant_s()
        second = start_daemon(cfg, clock, log)
        assert wait(controlling, second), "the restarted run never controlled the device"
        resumed = plant_s() - t_restart
        time.sleep(0.3)
        after = (get(http_port, "/metrics") or b"").decode()
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        dev.stop()
    kept = committed(db, upto=before)
    rows = ", ".join(f"{t} {c.count}" for t, c in before.items())
    print(f"\nfault matrix | {'kill -9 (daemon)':<19} | safe (device's own timer) after "
          f"{device_safe} plant s (allowed {REVERT_S + 10:g}) | device in its own mode after "
          f"{device_safe} plant s | control resumed {resumed} plant s after the restart's "
          f"launch | metrics safe {metric(metrics_before, 'dispatch_safe_state')} -> "
          f"(no answer) -> {metric(after, 'dispatch_safe_state')} | committed rows kept "
          f"{kept == before} ({rows})")
    assert metric(metrics_before, "dispatch_safe_state") == 0.0
    assert scrape is None
    assert device_safe <= REVERT_S + 10.0, device_safe  # the timer, checked each 0.1 s tick
    assert metric(after, "dispatch_safe_state") == 0.0
    assert metric(after, "dispatch_device_fault_level", device="bess") == 0.0
    assert max(abs(p) for p in powers) <= LIMIT_KW + 1e-6
    assert kept == before and before["measurements"].count > 10  # nothing committed is lost
    with Store(db) as s:
        kinds = [e["kind"] for e in s.rows("events")]
        setpoints = [r["p_batt_kw"] for r in s.rows("setpoints")]
    assert kinds.count("start") == 2 and kinds[-1] == "stop"
    assert "stop" not in kinds[: kinds.index("start", 1)]  # the killed run never said so
    assert setpoints and max(abs(p) for p in setpoints) <= LIMIT_KW + 1e-6
