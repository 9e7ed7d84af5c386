"""``dispatch run`` as a real process against ``python -m sim.server``: ``kill -9`` during
writes leaves a database that opens cleanly with every earlier row; a restart on the same file
carries on; SIGTERM exits 0 after the safe state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dispatch.store import Store
from tests.integration.conftest import SITE, START, free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def count(db: Path, table: str) -> int:
    if not db.exists():
        return 0
    with Store(db) as s:
        return s.count(table)


def start_daemon(cfg: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "dispatch", "run", "--config", str(cfg), "--clock-speed", "60",
           "--clock-start", START]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE)


def wait_rows(db: Path, n: int, proc: subprocess.Popen[bytes], timeout_s: float = 25.0) -> int:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        got = count(db, "setpoints")
        if got >= n:
            return got
        time.sleep(0.2)
    raise AssertionError(f"fewer than {n} setpoints after {timeout_s} s")


def test_kill_9_then_restart_then_sigterm(tmp_path: Path) -> None:
    port, db = free_port(), tmp_path / "dispatch.sqlite3"
    cfg = tmp_path / "site.toml"
    cfg.write_text(SITE.format(register_map="sunspec", port=port, db=db))
    sim = subprocess.Popen([sys.executable, "-m", "sim.server", "--config", str(cfg), "--port",
                            str(port), "--speed", "60", "--start", START, "--pv-kw", "30",
                            "--load-kw", "80"], cwd=ROOT, stdout=subprocess.PIPE)  # fmt: skip
    try:
        first = start_daemon(cfg)
        before = wait_rows(db, 20, first)
        first.kill()  # SIGKILL in the middle of its cycles
        first.wait(10)
        after_kill = count(db, "setpoints")
        assert after_kill >= before  # committed rows survive
        with Store(db) as s:
            assert s.count("measurements") >= after_kill - 1  # cycles are whole or absent
            assert s.count("plans") >= 1
        second = start_daemon(cfg)
        wait_rows(db, after_kill + 20, second)
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0
        with Store(db) as s:
            kinds = [e["kind"] for e in s.rows("events")]
        assert kinds.count("start") == 2 and kinds[-1] == "stop"
        assert "stop" not in kinds[:-1]  # the killed run never got to say it stopped
    finally:
        sim.terminate()
        sim.wait(10)
