"""Every shipped site config served through every shipped register map, at the site's ratings.

A real SunSpec device picks its scale factors so that its ratings fit its registers; the
simulator does the same (``sim.server_image.scale_factors``), so a 3 MW / 15.55 MWh site serves
through the SunSpec map. Fixed vendor maps made for small inverters (Sungrow SH: a uint16 W
setpoint, 65.5 kW; Victron GX: int16 W, 32.8 kW) cannot hold these batteries: the simulator
refuses them by name instead of serving values that wrap or saturate. Each served pair is read
back with our client and, for SunSpec, with pysunspec2 (its own Modbus code), to within one
scale step, and commanded at full power.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from dispatch.config import DeviceSection, SiteConfig, load_config
from dispatch.devices import codec
from dispatch.devices.client import DeviceClient
from dispatch.devices.registers import shipped_maps
from dispatch.types import ConfigError, Setpoints
from sim.plant import Plant
from sim.server import PlantPhysics, PlantServer, start_server
from sim.server_image import Ratings, scale_factors

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(
    str(p.relative_to(ROOT))
    for p in [*ROOT.glob("configs/*.toml"), *ROOT.glob("configs/compose/*.toml")]
)
T0 = dt.datetime(2026, 6, 1, 4, tzinfo=dt.UTC)
# Maps whose fixed registers cannot hold any shipped site's battery (300 kW and up), and the
# field that says so.
TOO_SMALL = {"sungrow_sh": "p_setpoint_abs_kw", "victron_gx_ess": "p_ess_setpoint_kw"}
# C&I converter maps: fewer points than a SunSpec device (no ratings registers for SMA)
MIN_COMPARED = {"byd_container_pcs": 4, "sma_storage": 2}
CI_MAPS = set(MIN_COMPARED)


def _physics(site: SiteConfig) -> PlantPhysics:
    plant = Plant(site, start=T0)
    pv = 0.4 * site.pv_dc_kwp
    return PlantPhysics(plant, T0, p_pv_kw=pv, p_load_kw=0.5 * site.grid.import_max_kw)


def _expected(ps: PlantServer) -> dict[str, float]:
    b = ps.battery.plant.site.battery
    out = ps.battery.measurements()
    out.update(
        p_charge_max_kw=b.charge_max_kw,
        p_discharge_max_kw=b.discharge_max_kw,
        p_batt_charge_rate_max_kw=b.charge_max_kw,
        energy_rated_kwh=b.energy_kwh,
    )
    return out


def _step(ps: PlantServer, name: str) -> float:
    r = ps.fields[name]
    return abs(codec.factor(r.spec, ps._sf(r)))


def test_the_shipped_configs_are_the_ones_under_test() -> None:
    assert CONFIGS == [
        "configs/compose/site.toml",
        "configs/germany-factory-dayahead.toml",
        "configs/korea-steel-plant.toml",
        "configs/suzhou-factory.toml",
    ]
    assert set(shipped_maps()) == {"sunspec", "huawei_sun2000_luna", *TOO_SMALL, *CI_MAPS}


def test_scale_factors_follow_the_ratings() -> None:
    from dispatch.devices.registers import load_map

    m = load_map("sunspec")
    small = scale_factors(m, Ratings(100.0, 200.0, 625.0, 625.0))
    big = scale_factors(m, Ratings(3000.0, 15550.0, 8875.0, 15000.0))
    # 100 kW = 100 000 W: int16 needs 10 W steps; 3 MW: 100 W steps; 15.55 MWh in uint16: kWh
    assert (small["batt_w_sf"], big["batt_w_sf"]) == (1, 2)
    assert (small["wchamax_sf"], big["wchamax_sf"]) == (1, 2)
    assert (small["m713_wh_sf"], big["m713_wh_sf"]) == (1, 3)
    assert big["grid_w_sf"] == 3 and big["pv_w_sf"] == 3  # 15 MW and 8.9 MW in int16
    assert big["inoutwrte_sf"] == small["inoutwrte_sf"] == -1  # percentages keep 0.1 %


@pytest.mark.parametrize("map_name", sorted(shipped_maps()))
@pytest.mark.parametrize("config", CONFIGS)
def test_every_shipped_config_serves_or_is_refused_by_name(config: str, map_name: str) -> None:
    site = load_config(ROOT / config)

    async def run() -> None:
        physics = _physics(site)
        if map_name in TOO_SMALL:
            with pytest.raises(ConfigError, match=TOO_SMALL[map_name]):
                await start_server(map_name, speed=0.0, battery=physics, strict=True)
            return
        ps = await start_server(map_name, speed=0.0, battery=physics, strict=True)
        cfg = DeviceSection(
            name="pcs",
            register_map=map_name,
            port=ps.port,
            unit_id=ps.unit_id,
            revert_timeout_s=300.0,
            charge_max_kw=site.battery.charge_max_kw,  # SMA's map reports no limits
            discharge_max_kw=site.battery.discharge_max_kw,
        )
        client = DeviceClient(cfg)
        try:
            values = (await client.read()).values
            expected = _expected(ps)
            compared = [n for n in values if n in expected]
            for name in compared:
                assert values[name] == pytest.approx(expected[name], abs=_step(ps, name)), name
            assert {"p_batt_kw", "soc_frac"} <= set(compared)
            assert len(compared) >= MIN_COMPARED.get(map_name, 5)
            # full-power charge: the setpoint fits its registers and the battery follows
            rating = site.battery.charge_max_kw
            out = await client.write(Setpoints(p_batt_kw=-rating, reason="test"), now_s=0.0)
            assert out.action == "written" and out.p_batt_kw == pytest.approx(-rating)
            ps.advance(0.0)
            assert ps.battery.p_batt_kw == pytest.approx(-rating, rel=1e-3)
            if map_name == "sunspec":
                seen = await asyncio.to_thread(_pysunspec_ratings, ps.port)
                _check_pysunspec(ps, seen)
        finally:
            client.close()
            await ps.stop()

    asyncio.run(run())


def _pysunspec_ratings(port: int) -> dict[str, float]:
    """Runs in a thread: pysunspec2 reads the ratings and measurements with their scale factors."""
    from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP

    d = SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=port, timeout=2)
    try:
        d.scan()
        inv, pv = d.models[103]
        return {
            "p_batt_kw": inv.W.cvalue / 1e3,
            "p_pv_kw": pv.W.cvalue / 1e3,
            "p_grid_kw": d.models[203][0].W.cvalue / 1e3,
            "p_charge_max_kw": d.models[124][0].WChaMax.cvalue / 1e3,
            "energy_rated_kwh": d.models[713][0].WHRtg.cvalue / 1e3,
            "p_discharge_max_kw": d.models[802][0].WDisChaRteMax.cvalue / 1e3,
            "soc_frac": d.models[124][0].ChaState.cvalue / 100.0,
        }
    finally:
        d.close()


def _check_pysunspec(ps: PlantServer, seen: dict[str, float]) -> None:
    expected = _expected(ps)
    for name, value in seen.items():
        assert value == pytest.approx(expected[name], abs=_step(ps, name)), name
