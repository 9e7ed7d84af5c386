"""Daemon pieces without a plant: clock, systemd notify, logging, peak tracking, CLI."""

from __future__ import annotations

import datetime as dt
import logging
import socket
from pathlib import Path

import pandas as pd
import pytest

from dispatch.__main__ import main
from dispatch.daemon.clock import Clock
from dispatch.daemon.history import SlotHistory
from dispatch.daemon.logs import FailureLog, JournalFormatter
from dispatch.daemon.notify import Notifier, notify_address, watchdog_interval_s
from dispatch.daemon.state import billing_month_of
from dispatch.types import DeviceError

T0 = dt.datetime(2026, 1, 31, 23, 50, tzinfo=dt.UTC)


class FakeMono:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_accelerated_clock_runs_speed_times_faster() -> None:
    mono = FakeMono()
    c = Clock(T0, speed=60.0, monotonic=mono)
    assert c.now() == T0 and c.monotonic() == 0.0
    mono.t += 2.0
    assert c.now() == T0 + dt.timedelta(minutes=2)
    assert c.monotonic() == 120.0 and c.real_s(300.0) == 5.0
    assert c.until_boundary_s(900.0) == pytest.approx(480.0)  # 23:52 -> 00:00
    with pytest.raises(ValueError):
        Clock(dt.datetime(2026, 1, 1), 1.0)
    with pytest.raises(ValueError):
        Clock(T0, 0.0)


def test_real_clock_follows_the_wall_clock() -> None:
    c = Clock(wall=lambda: T0)
    assert not c.accelerated and c.now() == T0


def test_notify_datagrams(tmp_path: Path) -> None:
    path = str(tmp_path / "n.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as rx:
        rx.bind(path)
        rx.settimeout(1.0)
        mono = FakeMono()
        n = Notifier(path, watchdog_min_s=1.0, monotonic=mono)
        assert n.ready("up")
        assert rx.recv(100) == b"READY=1\nSTATUS=up"
        assert n.watchdog() and not n.watchdog()  # throttled
        mono.t += 1.5
        assert n.watchdog()
        assert n.stopping()
        mono.t += 1.5
        assert not n.watchdog()  # a cycle finishing during the stop: no sign of life
        got = [rx.recv(100) for _ in range(3)]
        assert got == [b"WATCHDOG=1", b"WATCHDOG=1", b"STOPPING=1"]
        assert n.sent[-1] == "STOPPING=1"


def test_notify_is_a_no_op_without_a_socket_and_survives_a_dead_one(tmp_path: Path) -> None:
    assert notify_address({}) is None and not Notifier("").enabled
    assert notify_address({"NOTIFY_SOCKET": "@sd"}) == "\0sd"
    assert not Notifier("").ready()
    dead = Notifier(str(tmp_path / "missing.sock"))
    assert not dead.ready() and dead.errors == 1
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None


def test_failures_are_loud_once_quiet_until_recovery(caplog: pytest.LogCaptureFixture) -> None:
    f = FailureLog()
    with caplog.at_level(logging.DEBUG, logger="dispatch.daemon"):
        assert f.failed("device:a", "timeout", DeviceError("timeout"))
        assert not f.failed("device:a", "timeout")
        assert f.ok("device:a") == 2 and f.ok("device:a") == 0
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.ERROR, logging.DEBUG, logging.WARNING]
    assert caplog.records[0].exc_info is None  # expected errors carry no traceback


def test_journal_lines_carry_a_priority_and_no_time() -> None:
    rec = logging.LogRecord("dispatch.daemon", logging.ERROR, __file__, 1, "boom\nmore", (), None)
    assert JournalFormatter("%(message)s").format(rec) == "<3>boom\n<3>more"


def test_slot_history_closes_slots_with_their_means_and_import() -> None:
    h = SlotHistory(pd.Timedelta(minutes=15), pd.Timedelta(days=1))
    step = dt.timedelta(minutes=5)
    h.add(pd.Timestamp(T0), 10.0, 1.0, 100.0)  # slot 23:45
    h.add(pd.Timestamp(T0 + step), 20.0, float("nan"), 300.0)
    assert h.close_before(pd.Timestamp(T0 + step)) == []  # the slot is not over
    (slot, mean), = h.close_before(pd.Timestamp(T0 + 2 * step))  # 00:00: it is
    assert slot == T0 - step and mean == 200.0
    assert h.series("p_load_kw").tolist() == [15.0] and h.series("p_pv_kw").tolist() == [1.0]
    h.add(pd.Timestamp(T0 + 3 * step), 5.0, 0.0, -50.0)
    (_, mean), = h.close_before(pd.Timestamp(T0 + 6 * step))
    assert mean == 0.0  # export counts as no import
    assert h.series("p_load_kw", since=pd.Timestamp(T0 + 2 * step)).tolist() == [5.0]
    assert billing_month_of(T0, "Asia/Shanghai") == "2026-02"
    assert billing_month_of(T0, "UTC") == "2026-01"


def test_run_exits_78_on_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[site]\nlatitude_deg = 1\n")
    assert main(["run", "--config", str(bad)]) == 78


def test_sim_device_says_when_sim_is_missing(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    cfg = Path(__file__).resolve().parents[1] / "configs" / "suzhou-factory.toml"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert main(["sim-device", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "simulator (package 'sim'), which is not importable: reinstall factory-dispatch" in err


def test_export_writes_csv_from_the_store(tmp_path: Path) -> None:
    from dispatch.store import Store

    src = (Path(__file__).resolve().parents[1] / "configs" / "suzhou-factory.toml").read_text()
    cfg = tmp_path / "site.toml"
    cfg.write_text(src + f'\n[store]\npath = "{tmp_path / "h.sqlite3"}"\n')
    with Store(tmp_path / "h.sqlite3") as s:
        s.write_event(T0, "info", "start", "hello")
    out = tmp_path / "events.csv"
    args = ["export", "--config", str(cfg), "--table", "events", "--from",
            "2026-01-01T00:00+00:00", "--to", "2026-03-01T00:00+00:00", "--out", str(out)]
    assert main(args) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and "hello" in lines[1]
    assert main([*args[:-4], "--from", "2026-01-01T00:00", *args[-4:-2], *args[-2:]]) == 1


def test_sim_device_runs_the_simulator_as_a_child_and_stops_it(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[1]
    from tests.integration.conftest import SITE, free_port

    port = free_port()
    cfg = tmp_path / "site.toml"  # 200 kWh / 100 kW: fits the SunSpec registers
    cfg.write_text(SITE.format(register_map="sunspec", port=port, db=tmp_path / "h.sqlite3"))
    cmd = [sys.executable, "-m", "dispatch", "sim-device", "--config", str(cfg), "--port",
           str(port)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert f"serving on 127.0.0.1:{port}" in proc.stdout.readline()
        for _ in range(100):  # the child binds after printing
            with socket.socket() as c:
                if c.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        time.sleep(1.0)
        assert proc.poll() is None  # still serving
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        with socket.socket() as c:
            assert c.connect_ex(("127.0.0.1", port)) != 0  # the child is gone too
    finally:
        proc.kill()
