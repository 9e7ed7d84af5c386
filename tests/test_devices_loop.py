"""A few fast control cycles through real TCP: snapshot -> control.decide -> write -> plant."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from dispatch.config import DeviceSection
from dispatch.control import ControlLimits, decide
from dispatch.devices.client import DeviceClient
from dispatch.devices.snapshot import read_snapshot
from dispatch.types import DeviceError, Setpoints
from sim.server import default_physics, start_server

T0 = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize("map_name", ["sunspec", "huawei_sun2000_luna", "sungrow_sh"])
def test_fallback_cycles_cover_the_net_load_and_fault_gives_safe_state(map_name: str) -> None:
    limits = ControlLimits(import_max_kw=200.0, export_limit_kw=0.0, charge_max_kw=100.0,
                           discharge_max_kw=100.0, soc_min_frac=0.1, soc_max_frac=0.9,
                           soc_reserve_frac=0.1)  # fmt: skip

    async def run() -> None:
        battery = default_physics(p_load_kw=75.0, p_pv_kw=20.0, soc_frac=0.6)
        ps = await start_server(map_name, battery=battery)
        cfg = DeviceSection(name="bess", register_map=map_name, port=ps.port, timeout_s=0.3,
                            retries=0, charge_max_kw=100.0, discharge_max_kw=100.0,
                            min_write_interval_s=0.0, deadband_kw=0.5)  # fmt: skip
        c = DeviceClient(cfg)
        try:
            await c.write(decide(await read_snapshot([c], T0, 0.0), None, limits, T0), 0.0)
            for i in range(1, 4):
                now = T0 + dt.timedelta(seconds=i)
                snap = await read_snapshot([c], now, float(i))
                sp = decide(snap, None, limits, now)
                await c.write(sp, float(i))
                await asyncio.sleep(0.05)
            snap = await read_snapshot([c], T0, 10.0)
            assert snap.ok
            assert snap.p_batt_kw == pytest.approx(55.0, abs=0.6)  # covers 75 - 20 kW
            assert snap.p_grid_kw == pytest.approx(0.0, abs=0.6)
            ps.faults.exception_code = 4
            snap = await read_snapshot([c], T0, 20.0)
            sp = decide(snap, None, limits, T0)
            assert sp.default_mode and "device fault" in sp.reason
            with pytest.raises(DeviceError):  # the daemon logs this and backs off
                await c.write(sp, 20.0)
            ps.faults.exception_code = None
            await c.write(sp, 1000.0)
            assert ps.window() is None  # the device runs its own mode
        finally:
            c.close()
            await ps.stop()

    asyncio.run(run())


def test_a_16_bit_power_register_caps_the_setpoint() -> None:
    async def run() -> None:
        ps = await start_server("sungrow_sh")
        cfg = DeviceSection(name="bess", register_map="sungrow_sh", port=ps.port,
                            charge_max_kw=100.0, discharge_max_kw=100.0)  # fmt: skip
        c = DeviceClient(cfg)
        try:
            out = await c.write(Setpoints(90.0, "more than 65.5 kW"), 0.0)
            assert out.clamped and out.p_batt_kw == pytest.approx(65.534)
        finally:
            c.close()
            await ps.stop()

    asyncio.run(run())
