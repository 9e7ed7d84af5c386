"""Independent clients, not written by us, against our simulator: pysunspec2 and mbpoll."""

from __future__ import annotations

import asyncio
import re
import shutil

import pytest

from sim.server import PlantServer, default_physics, start_server

MBPOLL = shutil.which("mbpoll")


def _pysunspec_session(port: int) -> dict[str, object]:
    """Runs in a thread: discover, read, write model 124 with pysunspec2's own Modbus code."""
    from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP

    d = SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=port, timeout=2)
    try:
        d.scan()
        found = {k: len(v) for k, v in d.models.items() if isinstance(k, int)}
        common = d.models[1][0]
        inv, pv = d.models[103]
        stor = d.models[124][0]
        out = {
            "models": found, "base": d.base_addr, "Mn": common.Mn.value,
            "batt_W": inv.W.cvalue, "pv_W": pv.W.cvalue, "WChaMax": stor.WChaMax.cvalue,
            "ChaState": stor.ChaState.cvalue, "SoC713": d.models[713][0].SoC.cvalue,
            "meter_W": d.models[203][0].W.cvalue,
        }  # fmt: skip
        stor.InOutWRte_RvrtTms.value = 900
        stor.InWRte.cvalue = -25.0
        stor.OutWRte.cvalue = 25.0
        stor.StorCtl_Mod.value = 3
        stor.write()
        stor.read()
        out["InWRte_back"] = stor.InWRte.cvalue
        return out
    finally:
        d.close()


def test_pysunspec2_discovers_reads_and_writes_model_124() -> None:
    pytest.importorskip("sunspec2", reason="pysunspec2 (dev dependency) is not installed")

    async def run() -> None:
        ps = await start_server("sunspec", battery=default_physics(soc_frac=0.62))
        try:
            out = await asyncio.to_thread(_pysunspec_session, ps.port)
            await asyncio.sleep(0.08)
            assert out["base"] == 40000
            assert out["models"] == {1: 1, 103: 2, 203: 1, 124: 1, 713: 1, 802: 1, 704: 1}
            assert out["Mn"] == "FactoryDispatch"
            assert out["batt_W"] == pytest.approx(50_000)  # own mode: load 80 - PV 30 kW
            assert out["pv_W"] == pytest.approx(30_000)
            assert out["meter_W"] == pytest.approx(0.0)
            assert out["WChaMax"] == pytest.approx(100_000)
            assert out["ChaState"] == pytest.approx(62.0)
            assert out["SoC713"] == pytest.approx(62.0)
            assert out["InWRte_back"] == pytest.approx(-25.0)
            # the battery responds: forced discharge at 25 % of 100 kW
            assert ps.window() == pytest.approx((25.0, 25.0))
            assert ps.battery.p_batt_kw == pytest.approx(25.0)
            assert ps.get("revert_timeout_s") == 900
        finally:
            await ps.stop()

    asyncio.run(run())


async def _mbpoll(ps: PlantServer, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(MBPOLL), "-m", "tcp", "-p", str(ps.port), "-a", str(ps.unit_id), "-0", "-1",
        "-o", "1", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert proc.returncode == 0, out.decode()
    return out.decode()


def _regs(text: str) -> dict[int, int]:
    return {int(a): int(v, 0) for a, v in re.findall(r"^\[(\d+)\]:\s+(-?\w+)", text, re.M)}


NO_MBPOLL = "Debian's mbpoll is not installed (apt-get install mbpoll)"


@pytest.mark.skipif(MBPOLL is None, reason=NO_MBPOLL)
def test_mbpoll_reads_suns_and_storage_and_writes_signed_setpoints() -> None:
    async def run() -> None:
        ps = await start_server("sunspec", battery=default_physics(soc_frac=0.4))
        try:
            regs = _regs(await _mbpoll(ps, "-t", "4:hex", "-r", "40000", "-c", "2", "127.0.0.1"))
            assert regs == {40000: 0x5375, 40001: 0x6E53}
            base = ps.fields["storctl_mod"].address - 5
            block = _regs(await _mbpoll(ps, "-t", "4", "-r", str(base), "-c", "26", "127.0.0.1"))
            assert block[base] == 124 and block[base + 1] == 24
            assert block[base + 8] == 400  # ChaState 40.0 % with ChaState_SF = -1
            # InWRte = -42.5 % (two's complement), OutWRte = +42.5 %, then StorCtl_Mod = 3
            await _mbpoll(ps, "-t", "4:hex", "-r", str(base + 12), "127.0.0.1", "0x01A9", "0xFE57")
            await _mbpoll(ps, "-t", "4", "-r", str(base + 5), "127.0.0.1", "3")
            await asyncio.sleep(0.08)
            assert ps.battery.p_batt_kw == pytest.approx(42.5)
            # a signed 32-bit setpoint, big-endian words: model 704 WSet = -25 000 W
            wset = ps.fields["p_wset_kw"].address
            await _mbpoll(ps, "-t", "4:int", "-B", "-r", str(wset), "127.0.0.1", "--", "-25000")
            assert ps.get("p_wset_kw") == pytest.approx(-25.0)
            back = await _mbpoll(ps, "-t", "4:int", "-B", "-r", str(wset), "127.0.0.1")
            assert _regs(back)[wset] == -25000
        finally:
            await ps.stop()

    asyncio.run(run())


def _pysunspec_points(port: int) -> dict[tuple[int, int, str], object]:
    """Runs in a thread: every point of every model, computed with its scale factor."""
    from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP

    d = SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=port, timeout=2)
    try:
        d.scan()
        out: dict[tuple[int, int, str], object] = {}
        for model_id, models in d.models.items():
            if not isinstance(model_id, int):
                continue
            for inst, model in enumerate(models, start=1):
                for name, point in model.points.items():
                    out[(model_id, inst, name)] = point.cvalue
        return out
    finally:
        d.close()


def test_our_client_and_pysunspec2_decode_every_mapped_point_alike() -> None:
    pytest.importorskip("sunspec2", reason="pysunspec2 (dev dependency) is not installed")
    from dispatch.config import DeviceSection
    from dispatch.devices.client import DeviceClient

    async def run() -> None:
        ps = await start_server("sunspec", speed=0.0, battery=default_physics(soc_frac=0.437))
        c = DeviceClient(DeviceSection(name="bess", register_map="sunspec", port=ps.port))
        try:
            ours = (await c.read()).values
            theirs = await asyncio.to_thread(_pysunspec_points, ps.port)
        finally:
            c.close()
            await ps.stop()
        compared = 0
        for spec in ps.rmap.fields:
            value = theirs[(int(spec.model or 0), spec.instance, spec.point)]
            if spec.type == "sunssf":
                continue
            if spec.type == "string":
                assert ours[spec.name] == value, spec.name
            else:
                expected = float(value) * spec.scale * spec.sign  # type: ignore[arg-type]
                assert ours[spec.name] == pytest.approx(expected, abs=1e-9), spec.name
            compared += 1
        assert compared >= 30
        assert ours["soc_frac"] == pytest.approx(0.437, abs=1e-3)

    asyncio.run(run())
