"""C&I storage converter maps (issue 21, item 5): BYD's containerised PCS and SMA's storage
inverters. Each loads through ``dispatch check-config``, is served by the simulator at the
Suzhou site's 3 MW / 15.55 MWh, passes ``dispatch commission`` there, and several converters
share one site setpoint by configured power (``dispatch.daemon.cycle.share``), each on its
own simulated device over Modbus TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from dispatch.__main__ import main
from dispatch.config import DeviceSection, load_config
from dispatch.daemon.cycle import share
from dispatch.devices import codec
from dispatch.devices.client import DeviceClient
from dispatch.devices.commission import Settings, commission_device, format_checks
from dispatch.devices.registers import load_map
from dispatch.devices.snapshot import read_snapshot
from dispatch.types import Setpoints
from sim.plant import Plant
from sim.server import PlantPhysics, PlantServer, start_server

ROOT = Path(__file__).resolve().parents[1]
SUZHOU = ROOT / "configs" / "suzhou-factory.toml"
CI_MAPS = ["byd_container_pcs", "sma_storage"]
T0 = dt.datetime(2026, 6, 1, 4, tzinfo=dt.UTC)


def device(ps: PlantServer, name: str, power_kw: float) -> DeviceSection:
    return DeviceSection.model_validate(
        {
            "name": name,
            "register_map": ps.rmap.name,
            "port": ps.port,
            "unit_id": ps.unit_id,
            "timeout_s": 0.5,
            "retries": 0,
            "charge_max_kw": power_kw,
            "discharge_max_kw": power_kw,
            "min_write_interval_s": 0.0,
        }
    )


def suzhou_physics(power_kw: float | None = None) -> PlantPhysics:
    """The Suzhou plant (3 MW / 15.55 MWh), or its battery scaled to ``power_kw`` (kW) at the
    same 5.18 h, with 2 MW of PV and 4 MW of load (kW)."""
    site = load_config(SUZHOU)
    if power_kw is not None:
        b = site.battery
        update = {
            "charge_max_kw": power_kw,
            "discharge_max_kw": power_kw,
            "energy_kwh": b.energy_kwh * power_kw / b.charge_max_kw,
        }
        site = site.model_copy(update={"battery": b.model_copy(update=update)})
    return PlantPhysics(Plant(site, start=T0), T0, p_pv_kw=2000.0, p_load_kw=4000.0)


@pytest.mark.parametrize("map_name", CI_MAPS)
def test_check_config_loads_a_site_with_the_map(
    map_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SUZHOU.read_text(encoding="utf-8")
    text += (
        f'\n[[devices]]\nname = "pcs-1"\nregister_map = "{map_name}"\nhost = "192.0.2.10"\n'
        "charge_max_kw = 3000.0\ndischarge_max_kw = 3000.0\n"
    )
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    code = main(["check-config", str(path)])
    out = capsys.readouterr().out
    assert code == 0 and f'"register_map": "{map_name}"' in out
    bad = path.read_text(encoding="utf-8").replace(map_name, map_name + "x")
    path.write_text(bad, encoding="utf-8")
    assert main(["check-config", str(path)]) == 78
    assert f"devices[0].register_map = '{map_name}x'" in capsys.readouterr().err


@pytest.mark.parametrize("map_name", CI_MAPS)
def test_the_map_holds_mw_class_powers(map_name: str) -> None:
    m = load_map(map_name)
    for name in ("p_batt_kw", "p_setpoint_kw"):
        spec = m.field(name)
        lo, hi = codec.INT_RANGE[spec.type]
        reach_kw = abs(codec.factor(spec)) * min(-lo - 1, hi - 1)
        assert reach_kw >= 3000.0, (name, reach_kw)


@pytest.mark.parametrize("map_name", CI_MAPS)
def test_commission_passes_at_the_suzhou_ratings(map_name: str) -> None:
    async def run() -> tuple[list, float, tuple[float, float] | None]:
        ps = await start_server(map_name, battery=suzhou_physics(), strict=True)
        try:
            checks = await commission_device(device(ps, "pcs-1", 3000.0), Settings(None, 3.0))
            await asyncio.sleep(0.1)  # the plant's next ticks
            return checks, ps.get("p_setpoint_kw"), ps.window()
        finally:
            await ps.stop()

    checks, setpoint_kw, window = asyncio.run(run())
    table = format_checks(checks)
    names = ["connect", "read", "hold", "charge", "discharge", "revert", "handback"]
    assert [c.name for c in checks] == names, table
    assert all(c.ok for c in checks if c.name != "revert"), table
    revert = checks[names.index("revert")]
    assert revert.ok is None and "no revert timer" in revert.detail  # said, not failed
    charge = checks[names.index("charge")]
    assert "command -150.0 kW" in charge.detail  # 5 % of 3 MW
    assert setpoint_kw == 0.0  # handed back: BYD holds 0 kW, SMA runs its own mode
    assert window == {"byd_container_pcs": (0.0, 0.0), "sma_storage": None}[map_name]


@pytest.mark.parametrize("map_name", CI_MAPS)
def test_a_tripped_converter_is_a_fault_naming_its_state(map_name: str) -> None:
    async def run() -> tuple[tuple[str, ...], tuple[str, ...]]:
        ps = await start_server(map_name, battery=suzhou_physics(), strict=True)
        c = DeviceClient(device(ps, "pcs-1", 3000.0))
        try:
            ok = (await read_snapshot([c], T0, 0.0)).faults
            ps.faults.state_fault = True
            await asyncio.sleep(0.1)
            return ok, (await read_snapshot([c], T0, 1.0)).faults
        finally:
            c.close()
            await ps.stop()

    ok, bad = asyncio.run(run())
    named = {
        "byd_container_pcs": "system_workstate (System work state) = 2 'fault'",
        "sma_storage": "condition (Condition (Health)) = 35 'fault'",
    }[map_name]
    assert ok == () and len(bad) == 1
    assert bad[0].startswith(f"pcs-1: not running: {named} (ready: ")


def test_several_converters_share_one_site_setpoint_by_configured_power() -> None:
    """The 3 MW site as two BYD containers (1.5 MW and 1 MW) and an SMA inverter (0.5 MW): the
    shares are 1/2, 1/3 and 1/6 of the site setpoint."""
    sizes = [
        ("pcs-a", "byd_container_pcs", 1500.0),
        ("pcs-b", "byd_container_pcs", 1000.0),
        ("pcs-c", "sma_storage", 500.0),
    ]

    async def run() -> list[tuple[list[float], list[float], float]]:
        servers = [
            await start_server(
                m,
                battery=suzhou_physics(kw),
                strict=True,
            )
            for _, m, kw in sizes
        ]
        clients = [
            DeviceClient(device(ps, n, kw)) for ps, (n, _, kw) in zip(servers, sizes, strict=True)
        ]
        out = []
        try:
            for site_kw in (1800.0, -2400.0, 0.0):
                sp = Setpoints(site_kw, "plan slot")
                for c in clients:
                    await c.write(share(sp, c, clients), float(len(out)) * 100.0)
                for ps in servers:
                    ps.advance(0.0)
                snap = await read_snapshot(clients, T0, 0.0)
                out.append(
                    (
                        [ps.get("p_setpoint_kw") for ps in servers],
                        [ps.battery.p_batt_kw for ps in servers],
                        snap.p_batt_kw,
                    )
                )
        finally:
            for c in clients:
                c.close()
            for ps in servers:
                await ps.stop()
        return out

    results = asyncio.run(run())
    # 1800 kW: 900 / 600 / 300; -2400 kW: -1200 / -800 / -400; 0 kW: all hold 0
    expected = [[900.0, 600.0, 300.0], [-1200.0, -800.0, -400.0], [0.0, 0.0, 0.0]]
    for (setpoints, plant_kw, summed_kw), want in zip(results, expected, strict=True):
        assert setpoints == want
        assert plant_kw == pytest.approx(want, abs=0.01)
        assert summed_kw == pytest.approx(sum(want), abs=0.5)  # BYD reads in 0.1 kW steps
