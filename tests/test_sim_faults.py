"""Fault injection of the simulated device, from Python (``ps.faults``) and over Modbus on the
fault-control unit: writes accepted but not followed, frozen measurements, the control mode
dropped by a local operator, slow answers. The default plant: 100 kW / 200 kWh, PV 30 kW and
load 80 kW, so its own mode discharges 50 kW.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from dispatch.config import DeviceSection
from dispatch.devices.client import DeviceClient
from dispatch.types import Setpoints
from sim.server import CONTROL_UNIT, PlantServer, default_physics, start_server
from sim.server_cli import add_fault_arguments, faults_of
from sim.server_faults import Faults


def _client(ps: PlantServer, map_name: str = "sunspec") -> DeviceClient:
    cfg = DeviceSection(name="pcs", register_map=map_name, port=ps.port, min_write_interval_s=0.0)
    return DeviceClient(cfg)


async def _control(ps: PlantServer, *regs: int) -> None:
    """Write the fault-control unit's registers from 0 over Modbus."""
    ctl = AsyncModbusTcpClient("127.0.0.1", port=ps.port, timeout=1, retries=0)
    await ctl.connect()
    try:
        assert not (await ctl.write_registers(0, list(regs), device_id=CONTROL_UNIT)).isError()
    finally:
        ctl.close()


@pytest.mark.parametrize("over_modbus", [False, True])
def test_writes_accepted_but_not_followed(over_modbus: bool) -> None:
    async def run() -> None:
        ps = await start_server("sunspec", speed=0.0, battery=default_physics())
        c = _client(ps)
        try:
            assert (await c.write(Setpoints(-20.0, "t"), now_s=0.0)).action == "written"
            ps.advance(1.0)
            assert ps.battery.p_batt_kw == pytest.approx(-20.0)
            if over_modbus:
                await _control(ps, 32)
            else:
                ps.faults.not_following = True
            out = await c.write(Setpoints(-60.0, "t"), now_s=10.0)
            assert out.action == "written"  # read back: the registers hold the command
            ps.advance(1.0)
            assert ps.window() == pytest.approx((-60.0, -60.0))
            assert ps.battery.p_batt_kw == pytest.approx(-20.0)  # ... the battery does not
            assert (await c.read()).values["p_batt_kw"] == pytest.approx(-20.0, abs=0.01)
            ps.faults.not_following = False
            ps.advance(1.0)
            assert ps.battery.p_batt_kw == pytest.approx(-60.0)
        finally:
            c.close()
            await ps.stop()

    asyncio.run(run())


def test_frozen_measurements_stay_while_the_plant_moves_and_writes_still_work() -> None:
    async def run() -> None:
        ps = await start_server("sunspec", speed=0.0, battery=default_physics())
        c = _client(ps)
        try:
            await _control(ps, 2)
            assert ps.faults.frozen
            before = (await c.read()).values
            assert (await c.write(Setpoints(-40.0, "t"), now_s=0.0)).action == "written"
            ps.advance(200.0)  # within the 300 s revert timer
            after = (await c.read()).values
            assert ps.battery.p_batt_kw == pytest.approx(-40.0)
            for name in ("p_batt_kw", "soc_frac", "p_grid_kw", "energy_available_kwh"):
                assert after[name] == before[name], name
            await _control(ps, 0)
            ps.advance(1.0)
            assert (await c.read()).values["p_batt_kw"] == pytest.approx(-40.0, abs=0.01)
        finally:
            c.close()
            await ps.stop()

    asyncio.run(run())


@pytest.mark.parametrize("map_name", ["sunspec", "huawei_sun2000_luna"])
def test_a_local_operator_drops_the_control_mode_after_n_seconds(map_name: str) -> None:
    async def run() -> None:
        ps = await start_server(map_name, speed=0.0, battery=default_physics())
        c = _client(ps, map_name)
        try:
            await _control(ps, 0, 0, 0, 30)  # register 3: drop after 30 s
            assert ps.faults.mode_drop_s == 30.0
            assert (await c.write(Setpoints(-40.0, "t"), now_s=0.0)).action == "written"
            ps.advance(29.0)
            assert ps.battery.p_batt_kw == pytest.approx(-40.0)
            ps.advance(2.0)
            assert ps.window() is None and ps.battery.p_batt_kw == pytest.approx(50.0)
            if map_name == "sunspec":
                assert ps.get("storctl_mod") == 0 and ps.get("m802_loc_rem_ctl") == 1  # LOCAL
                assert ps.get("charge_rate_pct") == pytest.approx(40.0)  # rates left as they were
            else:
                assert ps.get("forcible_command") == 0
            assert (await c.write(Setpoints(-30.0, "t"), now_s=40.0)).action == "written"
            ps.advance(1.0)
            assert ps.battery.p_batt_kw == pytest.approx(-30.0)
            if map_name == "sunspec":
                assert ps.get("m802_loc_rem_ctl") == 0  # REMOTE again
        finally:
            c.close()
            await ps.stop()

    asyncio.run(run())


def test_slow_answers_delay_every_request() -> None:
    async def run() -> None:
        ps = await start_server("sunspec", speed=0.0, battery=default_physics())
        raw = AsyncModbusTcpClient("127.0.0.1", port=ps.port, timeout=2, retries=0)
        await raw.connect()
        try:

            async def timed_read() -> float:
                t0 = time.monotonic()
                res = await raw.read_holding_registers(40000, count=2, device_id=1)
                assert res.registers == [0x5375, 0x6E53]
                return time.monotonic() - t0

            assert await timed_read() < 0.2
            await _control(ps, 0, 0, 300)  # register 2: 300 ms
            assert ps.faults.delay_s == pytest.approx(0.3)
            assert await timed_read() >= 0.3
            ps.faults.delay_s = 0.0
            assert await timed_read() < 0.2
        finally:
            raw.close()
            await ps.stop()

    asyncio.run(run())


def test_fault_registers_keep_the_older_bits_and_the_python_api_agrees() -> None:
    f = Faults()
    f.set_registers([1 | 2 | 8 | 32, 6, 250, 45])
    assert (f.silent, f.frozen, f.out_of_range, f.writes_ignored, f.not_following) == (
        True,
        True,
        False,
        True,
        True,
    )
    assert (f.exception_code, f.delay_s, f.mode_drop_s) == (6, 0.25, 45.0)
    f.set_bits(4, 0)  # registers 0 and 1 only: delay and mode drop stay
    assert (f.out_of_range, f.silent, f.exception_code) == (True, False, None)
    assert (f.delay_s, f.mode_drop_s) == (0.25, 45.0)


def test_dropped_connections_close_every_request_until_cleared() -> None:
    async def run() -> None:
        ps = await start_server("sunspec", speed=0.0, battery=default_physics())
        raw = AsyncModbusTcpClient("127.0.0.1", port=ps.port, timeout=0.5, retries=0)
        await raw.connect()
        try:
            await _control(ps, 128, 0, 0)  # bit 128 over the control unit
            assert ps.faults.drop_connections
            for _ in range(2):  # a new connection is dropped again at its first request
                raw.close()
                await raw.connect()
                with pytest.raises(ModbusException):
                    await raw.read_holding_registers(40000, count=2, device_id=1)
            ps.faults.drop_connections = False
            raw.close()
            await raw.connect()  # a new connection is served again
            res = await raw.read_holding_registers(40000, count=2, device_id=1)
            assert res.registers == [0x5375, 0x6E53]
        finally:
            raw.close()
            await ps.stop()

    asyncio.run(run())


def test_the_sim_device_flags_set_the_faults() -> None:
    cli = argparse.ArgumentParser()
    add_fault_arguments(cli)
    assert faults_of(cli.parse_args([])) == Faults()
    got = faults_of(cli.parse_args(["--fault-drop-connections", "--fault-exception", "4"]))
    assert got == Faults(drop_connections=True, exception_code=4)
