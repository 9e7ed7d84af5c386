"""Our client against our simulator over real TCP on 127.0.0.1: writes, timers, faults."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

from dispatch.config import DeviceSection
from dispatch.devices import commands
from dispatch.devices.client import DeviceClient
from dispatch.devices.snapshot import read_snapshot
from dispatch.types import DeviceError, Setpoints
from sim.server import PlantServer, start_server

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
MAPS = ["sunspec", "huawei_sun2000_luna", "sungrow_sh"]


def _cfg(ps: PlantServer, **kw: object) -> DeviceSection:
    base: dict[str, object] = dict(name="bess", register_map=ps.rmap.name, port=ps.port,
                                   unit_id=ps.unit_id, timeout_s=0.3, retries=0,
                                   charge_max_kw=100.0, discharge_max_kw=100.0,
                                   min_write_interval_s=0.0, deadband_kw=0.5)  # fmt: skip
    base.update(kw)
    return DeviceSection.model_validate(base)


async def _with_server(map_name: str, body, speed: float = 1.0, **cfg: object) -> None:
    ps = await start_server(map_name, speed=speed)
    client = DeviceClient(_cfg(ps, **cfg))
    try:
        await body(ps, client)
    finally:
        client.close()
        await ps.stop()


async def _settle(ps: PlantServer) -> None:
    await asyncio.sleep(0.08)  # a few plant ticks


@pytest.mark.parametrize("map_name", MAPS)
def test_write_read_back_and_battery_follows(map_name: str) -> None:
    async def body(ps: PlantServer, c: DeviceClient) -> None:
        out = await c.write(Setpoints(40.0, "plan"), 0.0)
        assert out.action == "written" and out.p_batt_kw == 40.0
        await _settle(ps)
        snap = await read_snapshot([c], NOW, 0.0)
        assert snap.p_batt_kw == pytest.approx(40.0, abs=0.1)
        assert snap.p_load_kw == pytest.approx(snap.p_grid_kw + snap.p_pv_kw + snap.p_batt_kw)
        assert snap.faults == () and 0 < snap.soc_frac < 1
        out = await c.write(Setpoints(-60.0, "plan"), 1.0)
        await _settle(ps)
        snap = await read_snapshot([c], NOW, 1.0)
        assert snap.p_batt_kw == pytest.approx(-60.0, abs=0.1)
        await c.restore_default()
        await _settle(ps)
        assert ps.window() is None  # back in the device's own mode
        ctl = c.map.control
        assert ctl is not None
        for field in {ctl.setpoint_field, ctl.charge_field, ctl.discharge_field} - {None}:
            assert ps.get(str(field)) == 0.0, field  # no power or rate left behind

    asyncio.run(_with_server(map_name, body))


def test_clamp_deadband_rate_limit_and_rearm() -> None:
    async def body(ps: PlantServer, c: DeviceClient) -> None:
        out = await c.write(Setpoints(500.0, "too much"), 0.0)
        assert out.clamped and out.p_batt_kw == 80.0  # device reports 80 kW discharge max
        assert (await c.write(Setpoints(80.2, "tiny change"), 1.0)).action == "deadband"
        assert (await c.write(Setpoints(10.0, "too soon"), 2.0)).action == "rate_limited"
        assert (await c.write(Setpoints(10.0, "later"), 20.0)).action == "written"
        # revert timeout 60 s: an unchanged setpoint is re-armed after half of it
        assert (await c.write(Setpoints(10.0, "same"), 49.0)).action == "deadband"
        assert (await c.write(Setpoints(10.0, "same"), 50.0)).action == "rearmed"

    async def run() -> None:
        ps = await start_server("huawei_sun2000_luna")
        ps.put("p_discharge_max_kw", 80.0)
        c = DeviceClient(_cfg(ps, min_write_interval_s=10.0, revert_timeout_s=60.0))
        try:
            await body(ps, c)
        finally:
            c.close()
            await ps.stop()

    asyncio.run(run())


def test_revert_timer_fires_when_writes_stop() -> None:
    async def body(ps: PlantServer, c: DeviceClient) -> None:
        await c.write(Setpoints(50.0, "plan", revert_timeout_s=30.0), 0.0)
        assert ps.get("revert_timeout_s") == 30.0
        await _settle(ps)
        assert ps.window() == (50.0, 50.0)
        await asyncio.sleep(0.35)  # 0.35 s x 200 = 70 plant seconds > 30 s
        assert ps.window() is None and ps.get("storctl_mod") == 0
        snap = await read_snapshot([c], NOW, 0.0)
        assert snap.p_batt_kw == pytest.approx(50.0)  # own self-consumption: load 80 - PV 30

    asyncio.run(_with_server("sunspec", body, speed=200.0))


def test_exception_response_is_a_device_error_and_backs_off() -> None:
    async def body(ps: PlantServer, c: DeviceClient) -> None:
        await c.open()
        ps.faults.exception_code = 4
        with pytest.raises(DeviceError, match="exception response code 4"):
            await c.write(Setpoints(20.0, "plan"), 0.0)
        with pytest.raises(DeviceError, match=r"backing off .*last: .*exception response code 4"):
            await c.write(Setpoints(20.0, "plan"), 1.0)
        assert c.backoff_reason(1000.0) is None  # the wait is over
        snap = await read_snapshot([c], NOW, 100.0)
        assert snap.stale == ("bess",) and "exception response" in snap.faults[0]
        assert snap.missing and all(v != v for v in (snap.p_batt_kw, snap.soc_frac))
        ps.faults.exception_code = None
        assert (await c.write(Setpoints(20.0, "plan"), 1000.0)).action == "written"
        assert c.failures == 0 and c.last_error is None

    asyncio.run(_with_server("huawei_sun2000_luna", body))


def test_silence_times_out_and_nothing_is_written() -> None:
    async def body(ps: PlantServer, c: DeviceClient) -> None:
        await c.open()
        ps.faults.silent = True
        t0 = time.monotonic()
        with pytest.raises(DeviceError, match="no response"):
            await c.write(Setpoints(30.0, "plan"), 0.0)
        assert time.monotonic() - t0 < 2.0
        ps.faults.silent = False
        assert ps.get("forcible_command") == 0 and ps.window() is None

    asyncio.run(_with_server("huawei_sun2000_luna", body))


def test_connection_loss_reconnects_or_fails_cleanly() -> None:
    async def body(ps: PlantServer, c: DeviceClient) -> None:
        await c.write(Setpoints(30.0, "plan"), 0.0)
        ps.disconnect_all()
        await asyncio.sleep(0.05)
        out = await c.write(Setpoints(-30.0, "plan"), 10.0)  # the client reconnects itself
        assert out.action == "written"
        await _settle(ps)
        assert ps.window() == (-30.0, -30.0)
        assert ps.server is not None
        await ps.server.shutdown()  # the device is gone for good
        await asyncio.sleep(0.05)
        with pytest.raises(DeviceError, match=r"connection lost|no response|cannot connect"):
            await c.write(Setpoints(20.0, "plan"), 20.0)
        assert ps.window() == (-30.0, -30.0)  # nothing half-written

    asyncio.run(_with_server("sungrow_sh", body))


def test_read_back_mismatch_stops_before_the_mode_register() -> None:
    async def body(ps: PlantServer, c: DeviceClient) -> None:
        await c.open()
        ps.faults.writes_ignored = True
        with pytest.raises(DeviceError, match=r"read-back mismatch .*no further control"):
            await c.write(Setpoints(45.0, "plan"), 0.0)
        ps.faults.writes_ignored = False
        assert ps.get("storctl_mod") == 0  # the mode was never switched on
        assert ps.window() is None

    asyncio.run(_with_server("sunspec", body))


def test_frozen_and_out_of_range_values_are_flagged() -> None:
    async def body(ps: PlantServer, c: DeviceClient) -> None:
        assert c.cfg.frozen_reads == 5
        ps.faults.frozen = True
        snaps = [await read_snapshot([c], NOW, float(i)) for i in range(6)]
        assert snaps[0].stale == () and snaps[-1].stale == ("bess",)
        ps.faults.frozen = False
        ps.faults.out_of_range = True
        await _settle(ps)
        snap = await read_snapshot([c], NOW, 10.0)
        assert snap.soc_frac > 1.0  # passed through as measured; control must reject it

    asyncio.run(_with_server("sunspec", body, speed=0.0, frozen_reads=5))


def test_writes_to_the_control_registers_do_not_unfreeze_a_frozen_device() -> None:
    async def body(ps: PlantServer, c: DeviceClient) -> None:
        ps.faults.frozen = True
        stale = []
        for i in range(10):
            stale.append((await read_snapshot([c], NOW, float(i))).stale)
            if i >= 5:  # commands and handbacks change the control registers
                await (c.restore_default() if i % 2 else c.write(Setpoints(30.0, "plan"), i))
        assert stale[:5] == [()] * 5 and stale[5:] == [("bess",)] * 5  # latched
        ps.faults.frozen = False
        ps.battery.energy_kwh -= 2.0  # a measured point (the SoC) moves
        ps.advance(1.0)
        assert (await read_snapshot([c], NOW, 11.0)).stale == ()  # fresh again

    asyncio.run(_with_server("sunspec", body, speed=0.0, frozen_reads=5))


@pytest.mark.parametrize("map_name", MAPS)
def test_a_device_that_drops_out_of_the_command_is_rewritten_at_once(map_name: str) -> None:
    async def body(ps: PlantServer, c: DeviceClient) -> None:
        assert (await c.write(Setpoints(40.0, "plan"), 0.0)).action == "written"
        await _settle(ps)
        held = await c.write(Setpoints(40.0, "plan"), 1.0)  # same setpoint, device holds it
        assert held.action == "deadband"
        for name, value in commands.default_writes(c.map):  # a local operator, a reboot
            ps.put(name, value)
        assert ps.window() is None
        out = await c.write(Setpoints(40.0, "plan"), 2.0)  # not skipped by the deadband
        assert out.action == "rewritten" and out.drifted
        await _settle(ps)
        assert ps.window() == pytest.approx((40.0, 40.0))

    asyncio.run(_with_server(map_name, body))


def test_a_sunspec_command_allows_grid_charging() -> None:
    async def body(ps: PlantServer, c: DeviceClient) -> None:
        ps.put("grid_charging", 0)  # the device's "PV only"
        await c.write(Setpoints(-40.0, "plan: valley charge"), 0.0)
        assert ps.get("grid_charging") == 1 and ps.get("storctl_mod") == 3

    asyncio.run(_with_server("sunspec", body))


def test_a_failed_sequence_forces_a_full_rewrite_next_time() -> None:
    async def body(ps: PlantServer, c: DeviceClient) -> None:
        await c.write(Setpoints(30.0, "plan"), 0.0)
        ps.faults.writes_ignored = True
        with pytest.raises(DeviceError, match="read-back mismatch"):
            await c.write(Setpoints(50.0, "plan"), 10.0)
        ps.faults.writes_ignored = False
        # back to the old value: not skipped by the deadband, the device is made consistent
        assert (await c.write(Setpoints(30.0, "plan"), 100.0)).action == "written"
        assert ps.window() == pytest.approx((30.0, 30.0))

    asyncio.run(_with_server("sunspec", body))
