"""Running state and handback (issue 21, item 2): no power is commanded unless the device
says it runs, and the handback restores the map's settings (SunSpec ``ChaGriSet`` = 0, PV
only). Against the simulator over Modbus TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from dispatch.config import DeviceSection
from dispatch.control import ControlLimits, decide
from dispatch.devices import commands
from dispatch.devices.client import DeviceClient
from dispatch.devices.commission import Settings, commission_device, format_checks
from dispatch.devices.registers import check_device_maps, load_map, parse_map, shipped_map_text
from dispatch.devices.snapshot import read_snapshot
from dispatch.types import ConfigError, DeviceError, Setpoints
from sim.server import PlantServer, fault_state, start_server

NOW = dt.datetime(2026, 6, 1, 4, tzinfo=dt.UTC)
LIMITS = ControlLimits(
    import_max_kw=500.0, export_limit_kw=500.0, charge_max_kw=100.0, discharge_max_kw=100.0
)


def device(ps: PlantServer, **extra: Any) -> DeviceSection:
    return DeviceSection.model_validate(
        {
            "name": "bess",
            "register_map": ps.rmap.name,
            "port": ps.port,
            "unit_id": ps.unit_id,
            "timeout_s": 0.3,
            "retries": 0,
            "charge_max_kw": 100.0,
            "discharge_max_kw": 100.0,
            "min_write_interval_s": 0.0,
            **extra,
        }
    )


def test_not_ready_names_the_state_and_ignores_a_missing_point() -> None:
    m = load_map("sunspec")
    assert commands.not_ready(m, {"batt_inverter_state": 4.0, "battery_state": 3.0}) is None
    assert commands.not_ready(m, {"battery_state": 4.0}) is None  # 103 St not implemented
    assert commands.not_ready(m, {"batt_inverter_state": 7.0}) == (
        "not running: batt_inverter_state (St) = 7 'fault' (ready: 4, 5, 8)"
    )
    assert commands.not_ready(m, {"batt_inverter_state": 4.0, "battery_state": 99.0}) == (
        "not running: battery_state (State) = 99 'fault' (ready: 3, 4, 5)"
    )
    assert commands.not_ready(load_map("huawei_sun2000_luna"), {"battery_state": 0.0}) == (
        "not running: battery_state ([Energy storage] Running status) = 0 'offline' (ready: 2, 1)"
    )
    assert commands.not_ready(load_map("sungrow_sh"), {"anything": 1.0}) is None  # no states


def test_the_simulator_faults_with_the_state_the_map_names_fault() -> None:
    c = load_map("sunspec").control
    assert c is not None and [fault_state(st) for st in c.running] == [7, 99]


@pytest.mark.parametrize(
    ("map_name", "named"),
    [
        ("sunspec", "batt_inverter_state (St) = 7 'fault'"),
        ("huawei_sun2000_luna", "battery_state ([Energy storage] Running status) = 3 'fault'"),
    ],
)
def test_a_device_reporting_a_fault_state_gets_the_safe_state(map_name: str, named: str) -> None:
    async def main() -> tuple[Any, Any, Any]:
        ps = await start_server(map_name)
        c = DeviceClient(device(ps))
        try:
            ok = await read_snapshot([c], NOW, 0.0)
            ps.faults.state_fault = True
            await asyncio.sleep(0.1)  # a few simulator ticks
            bad = await read_snapshot([c], NOW, 1.0)
            ps.faults.state_fault = False
            await asyncio.sleep(0.1)
            again = await read_snapshot([c], NOW, 2.0)
            return ok, bad, again
        finally:
            c.close()
            await ps.stop()

    ok, bad, again = asyncio.run(main())
    assert ok.faults == () and again.faults == ()
    assert len(bad.faults) == 1 and bad.faults[0].startswith(f"bess: not running: {named}")
    sp = decide(bad, None, LIMITS, NOW)
    assert sp.default_mode and sp.p_batt_kw == 0.0
    assert sp.reason.startswith("safe: device fault: bess: not running: ") and named in sp.reason
    assert not decide(ok, None, LIMITS, NOW).default_mode


def _handback(extra: dict[str, float]) -> tuple[float, float, float]:
    async def main() -> tuple[float, float, float]:
        ps = await start_server("sunspec")
        c = DeviceClient(device(ps, handback_values=extra))
        try:
            before = ps.get("grid_charging")
            await c.write(Setpoints(-20.0, "valley charge"), 0.0)
            during = ps.get("grid_charging")
            await c.restore_default()
            return before, during, ps.get("grid_charging")
        finally:
            c.close()
            await ps.stop()

    return asyncio.run(main())


def test_the_handback_restores_pv_only_charging_or_the_configured_value() -> None:
    assert _handback({}) == (1.0, 1.0, 0.0)  # simulator starts at 1; the handback writes 0
    assert _handback({"grid_charging": 1.0}) == (1.0, 1.0, 1.0)
    writes = commands.default_writes(load_map("sunspec"))
    assert writes == [
        ("charge_rate_pct", 0.0),
        ("discharge_rate_pct", 0.0),
        ("storctl_mod", 0.0),
        ("grid_charging", 0.0),
    ]
    assert ("grid_charging", 0.0) not in commands.default_writes(load_map("sunspec"), extras=False)


def test_commission_checks_the_handback_of_chagriset_and_fails_on_a_fault_state() -> None:
    async def main(fault: bool) -> tuple[list, float]:
        ps = await start_server("sunspec")
        ps.faults.state_fault = fault
        await asyncio.sleep(0.1)  # published at the next ticks
        try:
            checks = await commission_device(device(ps), Settings(2.0, 2.0))
            return checks, ps.get("grid_charging")
        finally:
            await ps.stop()

    checks, grid = asyncio.run(main(False))
    assert all(c.ok for c in checks), format_checks(checks)
    assert checks[-1].name == "handback" and grid == 0.0
    checks, _ = asyncio.run(main(True))
    assert [c.name for c in checks] == ["connect", "read"] and checks[-1].ok is False
    assert "not running: batt_inverter_state (St) = 7 'fault'" in checks[-1].detail


def test_handback_values_are_checked_against_the_map() -> None:
    with pytest.raises(ConfigError) as err:
        check_device_maps(
            ["sunspec", "sunspec"],
            "site.toml",
            [{"grid_charging": 1.0}, {"grid_chargin": 1.0, "soc_frac": 0.5}],
        )
    assert err.value.problems == [
        "devices[1].handback_values.grid_chargin: register map 'sunspec' has no such field",
        "devices[1].handback_values.soc_frac: field of map 'sunspec' is read-only",
    ]


def test_a_running_entry_must_name_a_field() -> None:
    import tomllib

    doc = tomllib.loads(shipped_map_text("huawei_sun2000_luna"))
    doc["control"]["running"][0]["field"] = "battery_stat"
    with pytest.raises(ConfigError) as err:
        parse_map(doc, "x.toml")
    assert "control.running[0].field = 'battery_stat' is not a field" in str(err.value)


def test_a_device_that_does_not_keep_its_command_is_held_in_the_safe_state() -> None:
    async def main() -> list[tuple[str, ...]]:
        ps = await start_server("sunspec")
        c = DeviceClient(device(ps, backoff_max_s=60.0))
        try:
            await c.write(Setpoints(30.0, "plan"), 0.0)
            ps.faults.writes_ignored = True
            with pytest.raises(DeviceError, match="read-back mismatch"):
                await c.write(Setpoints(50.0, "plan"), 10.0)
            ps.faults.writes_ignored = False
            # the reads work again, but the device stays a fault for backoff_max_s (60 s)
            return [(await read_snapshot([c], NOW, t)).faults for t in (20.0, 69.0, 70.0)]
        finally:
            c.close()
            await ps.stop()

    held, last, free = asyncio.run(main())
    assert held == (
        "bess: did not keep its last command (read-back mismatch), handed back; safe state "
        "for 50 s more",
    )
    assert last[0].endswith("for 1 s more") and free == ()
