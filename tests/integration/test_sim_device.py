"""``dispatch sim-device`` as a real process on every shipped site config: it prints its
address once bound (so ``--port 0`` works), serves the config's ratings, takes its fault flags,
refuses a map too small for the battery with exit 78, and leaves no process behind (it execs
the simulator instead of running it as a child: SIGTERM exits 0, SIGKILL leaves nothing
listening).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dispatch.config import DeviceSection, load_config
from dispatch.devices.client import DeviceClient
from dispatch.types import Setpoints

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [
    "configs/compose/site.toml",
    "configs/germany-factory-dayahead.toml",
    "configs/korea-steel-plant.toml",
    "configs/suzhou-factory.toml",
]
ADDRESS = re.compile(r"serving on 127\.0\.0\.1:(\d+) .*register map (\w+), unit id (\d+)")


def _start(*args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "dispatch", "sim-device", "--port", "0", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _address(proc: subprocess.Popen[str]) -> tuple[int, str, int]:
    assert proc.stdout is not None
    line = proc.stdout.readline()  # printed after the bind: the port is open now
    m = ADDRESS.search(line)
    assert m is not None, (line, proc.stderr.read() if proc.poll() is not None else "")
    return int(m[1]), m[2], int(m[3])


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def _read(port: int, map_name: str, unit_id: int) -> DeviceClient:
    cfg = DeviceSection(
        name="pcs", register_map=map_name, port=port, unit_id=unit_id, min_write_interval_s=0.0
    )
    return DeviceClient(cfg)


@pytest.mark.parametrize("config", CONFIGS)
def test_every_shipped_config_runs_under_sim_device(config: str) -> None:
    site = load_config(ROOT / config)
    proc = _start("--config", config)  # clear-sky PV and the demo load from now
    try:
        port, map_name, unit_id = _address(proc)
        assert map_name == (site.devices[0].register_map if site.devices else "sunspec")
        assert _listening(port)
        assert _children(proc.pid) == []  # the simulator is this very process
        assert "sim.server" in Path(f"/proc/{proc.pid}/cmdline").read_text()

        async def read() -> dict[str, object]:
            c = await _read(port, map_name, unit_id)
            try:
                return (await c.read()).values
            finally:
                c.close()

        values = asyncio.run(read())
        assert values["p_charge_max_kw"] == pytest.approx(site.battery.charge_max_kw)
        assert values["soc_frac"] == pytest.approx(site.battery.soc_initial_frac, abs=0.01)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert not _listening(port)
    finally:
        proc.kill()
        proc.wait(5)


def test_sigkill_leaves_nothing_listening() -> None:
    proc = _start("--config", "configs/suzhou-factory.toml", "--pv-kw", "0", "--load-kw", "0")
    port, _, _ = _address(proc)
    proc.kill()
    proc.wait(5)
    deadline = time.monotonic() + 2.0
    while _listening(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _listening(port)


def test_a_map_too_small_for_the_battery_exits_78_naming_the_register() -> None:
    proc = _start(
        "--config",
        "configs/suzhou-factory.toml",
        "--register-map",
        "sungrow_sh",
        "--pv-kw",
        "0",
        "--load-kw",
        "0",
    )
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 78
    assert "p_setpoint_abs_kw" in err and "needs 3000" in err


def test_fault_flags_reach_the_simulator() -> None:
    # own mode: load 2000 - PV 500 = 1500 kW discharge
    proc = _start(
        "--config",
        "configs/suzhou-factory.toml",
        "--pv-kw",
        "500",
        "--load-kw",
        "2000",
        "--fault-not-following",
        "--fault-delay-ms",
        "300",
    )
    try:
        port, map_name, unit_id = _address(proc)

        async def run() -> None:
            c = await _read(port, map_name, unit_id)
            try:
                t0 = time.monotonic()
                assert (await c.read()).values["p_batt_kw"] == pytest.approx(1500.0, abs=0.1)
                assert time.monotonic() - t0 >= 0.3  # every request waits 300 ms
                out = await c.write(Setpoints(-1000.0, "t"), now_s=0.0)
                assert out.action == "written"  # stored and read back ...
                await asyncio.sleep(0.2)
                measured = (await c.read()).values["p_batt_kw"]
                assert measured == pytest.approx(1500.0, abs=0.1)  # ... but not followed
            finally:
                c.close()

        asyncio.run(run())
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
