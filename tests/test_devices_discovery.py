"""SunSpec discovery, commissioning probe, control kinds and the merged snapshot."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.config import DeviceSection, parse_config
from dispatch.devices import commands
from dispatch.devices.client import DeviceClient, DeviceReading
from dispatch.devices.probe import format_probe, probe
from dispatch.devices.registers import load_map, parse_map, shipped_map_text
from dispatch.devices.snapshot import merge, read_snapshot
from dispatch.types import ConfigError, DeviceError, Setpoints
from sim.server import start_server

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def _cfg(name: str, rmap: str, port: int, **kw: object) -> DeviceSection:
    data: dict[str, object] = dict(name=name, register_map=rmap, port=port, timeout_s=0.3,
                                   retries=0, charge_max_kw=100.0, discharge_max_kw=100.0,
                                   min_write_interval_s=0.0)  # fmt: skip
    data.update(kw)
    return DeviceSection.model_validate(data)


@pytest.mark.parametrize("base", [0, 40000, 50000])
def test_discovery_finds_suns_at_each_base(base: int) -> None:
    async def run() -> None:
        ps = await start_server("sunspec", sunspec_base=base)
        c = DeviceClient(_cfg("bess", "sunspec", ps.port))
        try:
            await c.open()
            assert c.models[(1, 1)] == base + 2
            assert c.models[(124, 1)] == ps.fields["storctl_mod"].address - 5
            assert len(c.models) == 8
        finally:
            c.close()
            await ps.stop()

    asyncio.run(run())


def test_no_sunspec_marker_is_a_clear_error() -> None:
    async def run() -> None:
        ps = await start_server("sungrow_sh")  # a device without any SunSpec map
        c = DeviceClient(_cfg("meter", "sunspec", ps.port, unit_id=1))
        try:
            with pytest.raises(DeviceError, match="no SunSpec marker 'SunS'"):
                await c.open()
        finally:
            c.close()
            await ps.stop()

    asyncio.run(run())


def test_probe_lists_models_and_values_with_units() -> None:
    async def run() -> None:
        ps = await start_server("sunspec")
        try:
            results = await probe([_cfg("bess", "sunspec", ps.port),
                                   _cfg("gone", "huawei_sun2000_luna", 1)])  # fmt: skip
        finally:
            await ps.stop()
        text = format_probe(results)
        assert "SunSpec model 124 #1 at" in text and "soc_frac" in text and "kW" in text
        assert results[1].error and "FAILED" in text
        row = {r[0]: r for r in results[0].rows}["p_charge_max_kw"]
        assert row[1] == pytest.approx(100.0) and row[3] == "WChaMax"

    asyncio.run(run())


def _map_with_704_control():
    data = tomllib.loads(shipped_map_text("sunspec"))
    data["control"] = {
        "kind": "signed", "setpoint_field": "p_wset_kw", "revert_field": "wset_revert_timeout_s",
        "mode": {"field": "wset_enable", "active": 1, "default": 0},
        "extra_active": {"wset_mode": 1}, "charge_limit_field": "p_charge_max_kw",
        "discharge_limit_field": "p_discharge_max_kw",
    }  # fmt: skip
    return parse_map(data, "sunspec+704")


def test_signed_704_control_end_to_end() -> None:
    rmap = _map_with_704_control()

    async def run() -> None:
        ps = await start_server(rmap, speed=100.0)
        c = DeviceClient(_cfg("bess", "sunspec", ps.port), rmap)
        try:
            await c.write(Setpoints(-35.0, "plan", revert_timeout_s=20.0), 0.0)
            assert ps.get("wset_revert_timeout_s") == 20.0 and ps.get("wset_enable") == 1
            await asyncio.sleep(0.08)
            snap = await read_snapshot([c], NOW, 0.0)
            assert snap.p_batt_kw == pytest.approx(-35.0)
            await asyncio.sleep(0.3)  # 30 plant seconds > 20 s: the device reverts
            assert ps.get("wset_enable") == 0
        finally:
            c.close()
            await ps.stop()

    asyncio.run(run())


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(["sunspec", "huawei_sun2000_luna", "sungrow_sh", "704"]),
    p=st.floats(-100.0, 100.0, allow_nan=False),
)
def test_commands_and_window_agree(name: str, p: float) -> None:
    """Whatever setpoint is commanded, the device-side reading of the registers gives it back."""
    rmap = _map_with_704_control() if name == "704" else load_map(name)
    writes = commands.command_writes(rmap, p, 300.0, rate_base_kw=100.0)
    values = dict(writes)
    values.setdefault("p_charge_max_kw", 100.0)
    window = commands.power_window(rmap, values, 100.0, 100.0)
    assert window is not None
    assert commands.setpoint_of(window) == pytest.approx(p, abs=2 * commands.IDLE_KW)
    c = rmap.control
    assert c is not None
    order = [n for n, _ in writes]
    if c.revert_field:
        assert order[0] == c.revert_field  # revert timeout first
    last = c.command.field if c.command else c.mode.field if c.mode else None
    assert order[-1] == last  # the mode or command register last
    assert commands.power_window(rmap, dict(commands.default_writes(rmap)), 1.0, 1.0) is None


def test_merge_sums_devices_and_derives_the_missing_power() -> None:
    readings = {
        "bess1": DeviceReading({"p_batt_kw": 20.0, "soc_frac": 0.5, "p_grid_kw": 10.0}, ()),
        "bess2": DeviceReading({"p_batt_kw": -5.0, "p_pv_kw": 40.0, "model_name": "x"}, ()),
    }
    snap = merge(readings, NOW, [], [])
    assert snap.p_batt_kw == 15.0 and snap.p_load_kw == 65.0 and snap.derived == ("p_load_kw",)
    assert snap.values["bess2.p_pv_kw"] == 40.0 and snap.ok
    snap = merge({"m": DeviceReading({"p_grid_kw": 1.0}, ())}, NOW, ["x: down"], ["x"])
    assert not snap.ok and set(snap.missing) >= {"p_pv_kw", "soc_frac"}
    assert math.isnan(snap.p_batt_kw)


def test_device_section_in_site_config() -> None:
    with pytest.raises(ConfigError, match=r"devices\.0 = .*serial_port"):
        parse_config(_site({"name": "x", "register_map": "sunspec", "transport": "rtu"}))
    cfg = parse_config(_site({"name": "x", "register_map": "sunspec", "port": 1502}))
    assert cfg.devices[0].port == 1502 and cfg.devices[0].revert_timeout_s == 300.0


def _site(device: dict[str, object]) -> dict[str, object]:
    return {
        "site": {"latitude_deg": 31.3, "longitude_deg": 120.6, "timezone": "Asia/Shanghai"},
        "grid": {"import_max_kw": 500},
        "battery": {"energy_kwh": 200, "charge_max_kw": 100, "discharge_max_kw": 100},
        "tariff": {"bands": {"flat": 0.1}, "rules": [{"band": "flat", "start": "00:00",
                                                        "end": "00:00"}]},
        "carbon": {"grid_ci_g_per_kwh": 500},
        "devices": [device],
    }  # fmt: skip


def test_victron_gateway_with_two_unit_ids() -> None:
    from sim.server import default_physics

    async def run() -> None:
        battery = default_physics(charge_max_kw=30.0, discharge_max_kw=30.0, p_load_kw=45.0,
                             p_pv_kw=21.0)  # fmt: skip
        ps = await start_server("victron_gx_ess", battery=battery)
        c = DeviceClient(_cfg("gx", "victron_gx_ess", ps.port, unit_id=100,
                              charge_max_kw=30.0, discharge_max_kw=30.0))  # fmt: skip
        try:
            snap = await read_snapshot([c], NOW, 0.0)
            assert snap.p_batt_kw == pytest.approx(24.0)  # own mode: 45 - 21
            assert snap.p_pv_kw == pytest.approx(21.0, abs=0.01)  # seven registers summed
            assert snap.p_grid_kw == pytest.approx(0.0, abs=0.01) and snap.derived == ()
            await c.write(Setpoints(-12.0, "plan"), 0.0)
            assert ps.get("ess_mode") == 3 and ps.get("p_ess_setpoint_kw") == -12.0
            await asyncio.sleep(0.08)
            snap = await read_snapshot([c], NOW, 1.0)
            assert snap.p_batt_kw == pytest.approx(-12.0)
            assert snap.p_grid_kw == pytest.approx(45.0 - 21.0 + 12.0, abs=0.01)
            await c.restore_default()
            assert ps.get("ess_mode") == 1 and ps.window() is None
        finally:
            c.close()
            await ps.stop()

    asyncio.run(run())
