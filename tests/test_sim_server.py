"""The simulator itself: fast clock, physics limits, access rules, and ``serve`` from a config."""

from __future__ import annotations

import asyncio

import pytest
from pymodbus.client import AsyncModbusTcpClient

from dispatch.config import parse_config
from sim.server import default_physics, serve, start_server


def test_fast_clock_moves_the_state_of_charge() -> None:
    async def run() -> None:
        battery = default_physics(soc_frac=0.9, p_load_kw=130.0, p_pv_kw=30.0,  # own: 100 kW
                                  derate_band_frac=0.0, standby_loss_frac_per_h=0.0)
        ps = await start_server("sunspec", speed=20000.0, battery=battery)
        try:
            await asyncio.sleep(0.05)  # about 1000 plant seconds at 100 kW
            assert ps.plant_time_s > 0
            expected = max(0.9 - 100.0 * ps.plant_time_s / 3600 / 0.95 / 200.0, 0.05)
            assert battery.soc_frac == pytest.approx(expected, abs=0.02)
            await asyncio.sleep(0.5)  # about 2.8 plant hours: long enough to hit the floor
            assert battery.soc_frac == pytest.approx(battery.soc_min_frac, abs=1e-9)
            assert battery.p_batt_kw < 100.0  # limited by physics, not by the request
            assert ps.get("soc_frac") == pytest.approx(0.05, abs=1e-3)
        finally:
            await ps.stop()

    asyncio.run(run())


def test_read_only_and_unmapped_writes_are_rejected() -> None:
    async def run() -> None:
        ps = await start_server("sunspec")
        client = AsyncModbusTcpClient("127.0.0.1", port=ps.port, timeout=1, retries=0)
        await client.connect()
        try:
            soc = ps.fields["soc_frac"].address
            res = await client.write_registers(soc, [1000], device_id=1)
            assert res.isError() and res.exception_code == 2
            res = await client.write_registers(39000, [1], device_id=1)
            assert res.isError()
            ps.faults.exception_code = 6
            res = await client.read_holding_registers(40000, count=2, device_id=1)
            assert res.isError() and res.exception_code == 6
            ps.faults.exception_code = None
            res = await client.read_holding_registers(40000, count=2, device_id=1)
            assert res.registers == [0x5375, 0x6E53]
        finally:
            client.close()
            await ps.stop()

    asyncio.run(run())


def test_serve_uses_the_site_battery_and_first_device_map(unused_tcp_port: int) -> None:
    cfg = parse_config({
        "site": {"latitude_deg": 31.3, "longitude_deg": 120.6, "timezone": "Asia/Shanghai"},
        "grid": {"import_max_kw": 500},
        "battery": {"energy_kwh": 400, "charge_max_kw": 150, "discharge_max_kw": 120,
                    "soc_initial_frac": 0.7},
        "tariff": {"bands": {"flat": 0.1},
                   "rules": [{"band": "flat", "start": "00:00", "end": "00:00"}]},
        "carbon": {"grid_ci_g_per_kwh": 500},
        "devices": [{"name": "bess", "register_map": "huawei_sun2000_luna"}],
    })  # fmt: skip

    async def run() -> None:
        task = asyncio.create_task(serve(cfg, "127.0.0.1", unused_tcp_port, 1.0))
        client = AsyncModbusTcpClient("127.0.0.1", port=unused_tcp_port, timeout=1, retries=0)
        try:
            for _ in range(250):  # building a week of clear-sky PV takes a moment
                await asyncio.sleep(0.02)
                if await client.connect():
                    break
            res = await client.read_holding_registers(37760, count=1, device_id=1)
            assert res.registers == [700]  # 70.0 %
            res = await client.read_holding_registers(47077, count=2, device_id=1)
            assert res.registers == [0x0001, 0xD4C0]  # 120 000 W
        finally:
            client.close()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(run())


@pytest.fixture
def unused_tcp_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_faults_injected_over_modbus_on_the_control_unit() -> None:
    from sim.server import CONTROL_UNIT

    async def run() -> None:
        ps = await start_server("sungrow_sh")
        ctl = AsyncModbusTcpClient("127.0.0.1", port=ps.port, timeout=0.3, retries=0)
        dev = AsyncModbusTcpClient("127.0.0.1", port=ps.port, timeout=0.3, retries=0)
        await ctl.connect()
        await dev.connect()
        try:
            assert not (await ctl.write_registers(0, [0, 4], device_id=CONTROL_UNIT)).isError()
            res = await dev.read_input_registers(13021, count=1, device_id=1)
            assert res.isError() and res.exception_code == 4
            await ctl.write_registers(0, [1, 0], device_id=CONTROL_UNIT)  # silent
            with pytest.raises(Exception, match=r"(?i)no response|timeout|timed out"):
                await dev.read_input_registers(13021, count=1, device_id=1)
            await ctl.write_registers(0, [16, 0], device_id=CONTROL_UNIT)  # disconnect once
            await asyncio.sleep(0.1)
            assert not ps.faults.silent and not dev.connected and not ctl.connected
            assert await ctl.connect()
            res = await ctl.read_holding_registers(0, count=2, device_id=CONTROL_UNIT)
            assert res.registers == [0, 0]
        finally:
            ctl.close()
            dev.close()
            await ps.stop()

    asyncio.run(run())
