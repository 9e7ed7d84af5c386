"""``dispatch commission`` against the simulator (a real Modbus TCP server on 127.0.0.1):
every shipped battery map passes; each injected fault fails, naming its check."""

from __future__ import annotations

import asyncio

import pytest

from dispatch.config import DeviceSection
from dispatch.devices.commission import Settings, commission_device, format_checks
from sim.server import PlantServer, start_server
from tests.test_device_state import device

FAST = Settings(follow_timeout_s=2.0, revert_s=2.0, hold_s=1.0)
ALL = ["connect", "read", "hold", "charge", "discharge", "revert", "handback"]


def cfg(ps: PlantServer) -> DeviceSection:
    return device(ps)


def run(
    map_name: str,
    fault: str | None = None,
    speed: float = 1.0,
    s: Settings = FAST,
    value: object = True,
) -> list:
    async def main() -> list:
        ps = await start_server(map_name, speed=speed)
        if fault is not None:
            setattr(ps.faults, fault, value)
        try:
            return await commission_device(cfg(ps), s)
        finally:
            await ps.stop()

    return asyncio.run(main())


@pytest.mark.parametrize("map_name", ["sunspec", "huawei_sun2000_luna", "sungrow_sh"])
def test_every_shipped_battery_map_passes_on_the_simulator(map_name: str) -> None:
    # Huawei's revert register counts minutes: a 60 s timer, on a plant clock at 30x
    slow = map_name == "huawei_sun2000_luna"
    checks = run(
        map_name, speed=30.0 if slow else 1.0, s=Settings(2.0, 2.0, 60.0 if slow else 2.0, 1.0)
    )
    assert [c.name for c in checks] == ALL, format_checks(checks)
    revert = next(c for c in checks if c.name == "revert")
    if map_name == "sungrow_sh":  # no revert register in its map: said, not failed
        assert revert.ok is None and "no revert timer" in revert.detail
    else:
        assert revert.ok and "dropped the command by itself" in revert.detail
    assert all(c.ok for c in checks if c.name != "revert"), format_checks(checks)


@pytest.mark.parametrize(
    ("fault", "value", "failed", "words"),
    [
        ("silent", True, "connect", "timeout"),
        ("delay_s", 0.5, "connect", "timeout"),  # slower than the device's timeout_s
        ("writes_ignored", True, "hold", "read-back mismatch"),
        ("frozen", True, "hold", "not within"),
        ("out_of_range", True, "hold", "not within"),
        ("not_following", True, "hold", "not within"),
        ("state_fault", True, "hold", "not running"),
        ("mode_drop_s", 0.5, "hold", "then left"),  # a local operator takes it back
    ],
)
def test_an_injected_fault_fails_naming_its_check(
    fault: str, value: object, failed: str, words: str
) -> None:
    checks = run("sunspec", fault, value=value)
    table = format_checks(checks)
    assert checks[-1].name == failed and checks[-1].ok is False, table
    assert words in checks[-1].detail, table
    assert all(c.ok for c in checks[:-1]), table  # the checks before it passed
    assert f"bess    {failed:<9}  FAIL" in table
