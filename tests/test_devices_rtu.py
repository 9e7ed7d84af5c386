"""Modbus RTU over a pseudo-terminal: our client on the serial side, the simulator behind it.

No hardware and no socat: the test opens a pty pair, gives the client the slave's path, and
copies bytes between the master side and a simulator that speaks RTU frames over TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import pytest

from dispatch.config import DeviceSection
from dispatch.devices.client import DeviceClient
from dispatch.types import Setpoints
from sim.server import start_server

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs Linux pseudo-terminals")


async def _bridge(master: int, port: int) -> tuple[asyncio.Task[None], asyncio.StreamWriter]:
    """Copy bytes both ways between a pty master and a TCP connection."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    def from_serial() -> None:
        with contextlib.suppress(OSError):
            writer.write(os.read(master, 4096))

    loop.add_reader(master, from_serial)

    async def to_serial() -> None:
        while data := await reader.read(4096):
            os.write(master, data)

    return asyncio.create_task(to_serial()), writer


def test_rtu_client_reads_and_writes_through_a_serial_line() -> None:
    import termios
    import tty

    master, slave = os.openpty()
    tty.setraw(master, termios.TCSANOW)
    path = os.ttyname(slave)

    async def run() -> None:
        ps = await start_server("huawei_sun2000_luna", rtu_framing=True)
        task, writer = await _bridge(master, ps.port)
        cfg = DeviceSection(name="bess", register_map="huawei_sun2000_luna", transport="rtu",
                            serial_port=path, baudrate=115200, timeout_s=1.0, retries=0,
                            min_write_interval_s=0.0)  # fmt: skip
        c = DeviceClient(cfg)
        try:
            reading = await c.read(["soc_frac", "p_batt_kw"])
            assert reading.values["soc_frac"] == pytest.approx(0.5)
            out = await c.write(Setpoints(-25.0, "plan"), 0.0)
            assert out.action == "written"
            assert ps.get("forcible_command") == 1 and ps.get("p_charge_setpoint_kw") == 25.0
        finally:
            c.close()
            asyncio.get_running_loop().remove_reader(master)
            task.cancel()
            writer.close()
            await ps.stop()

    try:
        asyncio.run(run())
    finally:
        os.close(master)
        os.close(slave)
