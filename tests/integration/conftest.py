"""Daemon <-> simulator runs over TCP on 127.0.0.1 with an accelerated clock."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dispatch.config import SiteConfig, parse_config
from dispatch.daemon import Clock, Daemon, Notifier
from sim.server import PlantServer, default_physics, start_server

T0 = dt.datetime(2026, 6, 1, 5, 40, tzinfo=dt.UTC)  # valley until 06:00, then peak
SPEED = 240.0  # plant seconds per real second: a 10 s cycle every 42 ms, a 5 min step in 1.25 s


#: ``T0`` as the ``--start`` / ``--clock-start`` of a simulator and daemon run as processes.
START = T0.isoformat()
#: A site for a daemon run as a process against ``sim-device`` (``.format(register_map=...,
#: port=..., db=...)``): 200 kWh / 100 kW, a constant 50 kW load, 10 s cycles, 5 min plans.
SITE = """
[site]
latitude_deg = 31.3
longitude_deg = 120.6
timezone = "UTC"
[grid]
import_max_kw = 500.0
[battery]
energy_kwh = 200.0
charge_max_kw = 100.0
discharge_max_kw = 100.0
[tariff]
bands = {{ valley = 0.1, peak = 0.5 }}
rules = [{{ band = "valley", start = "00:00", end = "06:00" }},
         {{ band = "peak", start = "06:00", end = "24:00" }}]
[carbon]
grid_ci_g_per_kwh = 500.0
[plan]
step_min = 5
horizon_h = 6
[[devices]]
name = "bess"
register_map = "{register_map}"
port = {port}
timeout_s = 0.3
retries = 0
min_write_interval_s = 0.0
revert_timeout_s = 120.0
charge_max_kw = 100.0
discharge_max_kw = 100.0
[control]
cycle_s = 10.0
snapshot_max_age_s = 60.0
[store]
path = "{db}"
[http]
port = 0
[forecast]
load_kw = 50.0
"""


class Mosquitto:
    """A real Mosquitto broker on 127.0.0.1 (Debian package ``mosquitto``), anonymous."""

    BINARY = shutil.which("mosquitto") or ("/usr/sbin/mosquitto"
                                           if Path("/usr/sbin/mosquitto").exists() else None)

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder, self.port = folder, port or free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> Mosquitto:
        conf = self.folder / f"mosquitto-{self.port}.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                        "persistence false\n")
        self.proc = subprocess.Popen([str(self.BINARY), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s, contextlib.suppress(OSError):
                s.connect(("127.0.0.1", self.port))
                return self
            time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server a test starts as a process)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def site_config(port: int, db: Path, http: dict | None = None, mqtt: dict | None = None,
                **control: Any) -> SiteConfig:
    """A 200 kWh / 100 kW site matching ``sim.server.default_physics`` (PV 30, load 80 kW)."""
    return parse_config({
        "site": {"latitude_deg": 31.3, "longitude_deg": 120.6, "timezone": "UTC"},
        "grid": {"import_max_kw": 500.0, "export_max_kw": 500.0},
        "battery": {"energy_kwh": 200.0, "charge_max_kw": 100.0, "discharge_max_kw": 100.0,
                    "soc_min_frac": 0.05, "soc_max_frac": 0.95},
        "tariff": {"bands": {"valley": 0.1, "peak": 0.5},
                   "rules": [{"band": "valley", "start": "00:00", "end": "06:00"},
                             {"band": "peak", "start": "06:00", "end": "24:00"}]},
        "carbon": {"grid_ci_g_per_kwh": 500.0},
        "plan": {"step_min": 5, "horizon_h": 6, "terminal_soc": "free"},
        "devices": [{"name": "bess", "register_map": "sunspec", "port": port, "timeout_s": 0.2,
                     "retries": 0, "charge_max_kw": 100.0, "discharge_max_kw": 100.0,
                     "min_write_interval_s": 0.0, "revert_timeout_s": 120.0,
                     "backoff_initial_s": 5.0, "backoff_max_s": 20.0}],
        "control": {"cycle_s": 10.0, "snapshot_max_age_s": 60.0, **control},
        "store": {"path": str(db)},
        "http": {"port": 0, **(http or {})},
        "mqtt": mqtt or {},
        "forecast": {"load_kw": 50.0},
    }, "tests.integration")  # fmt: skip


@dataclass
class Run:
    """A running simulator and daemon, with what the test observed."""

    daemon: Daemon
    sim: PlantServer
    notify: socket.socket
    soc: list[tuple[dt.datetime, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, path: str) -> bytes:
        """GET a path of the status server (from a thread: the server is threaded)."""
        url = f"http://127.0.0.1:{self.daemon.http.port}{path}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.read()

    def post(self, path: str, doc: Any, token: str) -> tuple[int, Any]:
        """POST JSON with a bearer token; returns (status, JSON answer)."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.daemon.http.port}{path}", json.dumps(doc).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    async def fetch(self, path: str) -> bytes:
        return await asyncio.to_thread(self.get, path)

    async def fetch_json(self, path: str) -> Any:
        return json.loads(await self.fetch(path))

    async def watch(self, seconds: float, every_s: float = 0.1) -> None:
        """Sample the plant's true SoC against the daemon clock for ``seconds`` (real)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            self.soc.append((self.daemon.clock.now(), self.sim.battery.soc_frac))
            self.notifications()
            await asyncio.sleep(every_s)

    def notifications(self) -> list[str]:
        """Every systemd notification received so far (drains the socket)."""
        self.notify.setblocking(False)
        while True:
            try:
                self.notes.append(self.notify.recv(4096).decode())
            except BlockingIOError:
                return self.notes


def run_daemon(tmp_path: Path, scenario: Callable[[Run], Awaitable[None]],
               http: dict | None = None, mqtt: dict | None = None, **control: Any) -> Run:
    """Start simulator and daemon, run ``scenario``, stop the daemon (SIGTERM path)."""
    sock_path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(sock_path))

    async def main() -> Run:
        sim = await start_server("sunspec", speed=SPEED,
                                 battery=default_physics(start=T0, soc_frac=0.5))  # fmt: skip
        config = site_config(sim.port, tmp_path / "dispatch.sqlite3", http, mqtt, **control)
        daemon = Daemon(config, Clock(T0, SPEED), notifier=Notifier(str(sock_path)))
        run = Run(daemon, sim, notify)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        try:
            while daemon.scheduler is None and not task.done():
                await asyncio.sleep(0.05)
            await scenario(run)
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
            run.notifications()
            run.extra["window_after_stop"] = run.sim.window()
            await run.sim.stop()
        return run

    try:
        return asyncio.run(main())
    finally:
        notify.close()
