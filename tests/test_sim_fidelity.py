"""SunSpec fidelity of the simulator, judged by clients not written by us (pysunspec2, mbpoll).

Checked: the "not implemented" sentinels of every served model (transcribed in
``sim.sunspec_points``, re-derived here from pysunspec2's model definitions); 802 ``State``
and ``W`` against 103 ``St`` and ``W``; model 124 ``StorCtl_Mod`` 1 and 2 (one limit each,
negative rates forcing the other direction); model 704 ``WSet`` / ``WSetPct`` with its revert
timer; ``ChaGriSet``; exception 3 for values a device refuses and exception 2 for unmapped or
read-only addresses. The default plant: 100 kW / 200 kWh, PV 30 kW and load 80 kW, so its own
mode discharges 50 kW.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from sim.server import PlantServer, default_physics, start_server
from sim.sunspec_points import EXTRA_POINTS, SENTINELS

MBPOLL = shutil.which("mbpoll")
needs_mbpoll = pytest.mark.skipif(MBPOLL is None, reason="Debian's mbpoll is not installed")
CODE = {
    "int16": "8",
    "sunssf": "8",
    "pad": "8",
    "uint16": "F",
    "enum16": "F",
    "bitfield16": "F",
    "count": "F",
    "int32": "80",
    "uint32": "FF",
    "enum32": "FF",
    "bitfield32": "FF",
    "acc16": "0",
    "acc32": "00",
    "acc64": "0000",
    "float32": "N0",
}


def _definitions(model: int) -> list[dict[str, object]]:
    """The points of a SunSpec model in address order, from pysunspec2's JSON definitions."""
    sunspec2 = pytest.importorskip("sunspec2", reason="pysunspec2 (dev dependency) missing")
    path = Path(sunspec2.__file__).parent / "models" / "json" / f"model_{model}.json"
    group = json.loads(path.read_text())["group"]
    points: list[dict[str, object]] = []

    def walk(g: dict[str, object]) -> None:
        points.extend(g.get("points", []))  # type: ignore[arg-type]
        for sub in g.get("groups", []):  # type: ignore[union-attr]
            walk(sub)

    walk(group)
    return points


@pytest.mark.parametrize("model", sorted(SENTINELS))
def test_sentinel_table_matches_the_sunspec_definitions(model: int) -> None:
    codes = ""
    for p in _definitions(model):
        size = int(p.get("size", 1))  # type: ignore[call-overload]
        codes += "0" * size if p["type"] == "string" else CODE[str(p["type"])]
    assert SENTINELS[model] == codes[2:]  # after ID and L


def test_extra_points_sit_where_the_definitions_put_them() -> None:
    names = {
        "m802_w": "W",
        "m802_w_sf": "W_SF",
        "m802_cha_st": "ChaSt",
        "m802_loc_rem_ctl": "LocRemCtl",
        "m704_wset_pct": "WSetPct",
        "m704_wset_pct_sf": "WSetPct_SF",
        "m704_wset_ena_rvrt": "WSetEnaRvrt",
    }
    for name, (model, offset, typ) in EXTRA_POINTS.items():
        at, found = 0, None
        for p in _definitions(model):
            if p["name"] == names[name] and found is None:
                found = (at, p["type"])
            at += int(p.get("size", 1))  # type: ignore[call-overload]
        assert found == (offset, typ), name


def _pysunspec_state(port: int) -> dict[str, object]:
    """Runs in a thread: what pysunspec2 reads (``value`` None = not implemented)."""
    from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP

    d = SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=port, timeout=2)
    try:
        d.scan()
        inv, m802, m124 = d.models[103][0], d.models[802][0], d.models[124][0]
        return {
            "103.A": inv.A.value,
            "103.Hz": inv.Hz.value,
            "103.W": inv.W.cvalue,
            "103.St": inv.St.value,
            "802.State": m802.State.value,
            "802.W": m802.W.cvalue,
            "802.V": m802.V.value,
            "802.ChaSt": m802.ChaSt.value,
            "124.ChaSt": m124.ChaSt.value,
            "124.WChaGra": m124.WChaGra.value,
            "124.VAChaMax": m124.VAChaMax.value,
            "704.VarSet": d.models[704][0].VarSet.value,
            "1.Opt": d.models[1][0].Opt.value,
            "203.PhVphA": d.models[203][0].PhVphA.value,
            "124.WChaMax": m124.WChaMax.cvalue,
        }
    finally:
        d.close()


def test_unimplemented_points_read_as_sentinels_and_802_agrees_with_103() -> None:
    pytest.importorskip("sunspec2", reason="pysunspec2 (dev dependency) is not installed")

    async def run() -> None:
        ps = await start_server("sunspec", speed=0.0, battery=default_physics())
        try:
            seen = await asyncio.to_thread(_pysunspec_state, ps.port)
        finally:
            await ps.stop()
        for point in (
            "103.A",
            "103.Hz",
            "802.V",
            "124.WChaGra",
            "124.VAChaMax",
            "704.VarSet",
            "1.Opt",
            "203.PhVphA",
        ):
            assert seen[point] is None, point  # pysunspec2: the sentinel means "no value"
        assert seen["124.WChaMax"] == pytest.approx(100_000)
        assert seen["103.W"] == pytest.approx(50_000)  # own mode: load 80 - PV 30 kW
        assert seen["802.W"] == pytest.approx(seen["103.W"])
        assert seen["103.St"] == 4 and seen["802.State"] == 3  # operating / CONNECTED
        assert seen["802.ChaSt"] == seen["124.ChaSt"] == 3  # DISCHARGING

    asyncio.run(run())


async def _mbpoll(ps: PlantServer, *args: str) -> tuple[int, str]:
    """Run Debian's mbpoll once against ``ps``: (exit code, stdout + stderr)."""
    proc = await asyncio.create_subprocess_exec(
        str(MBPOLL),
        "-m",
        "tcp",
        "-p",
        str(ps.port),
        "-a",
        str(ps.unit_id),
        "-0",
        "-1",
        "-o",
        "1",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=10)
    return int(proc.returncode or 0), out.decode()


def _args(ps: PlantServer, field: str, words: tuple[int, ...], kind: str) -> list[str]:
    """mbpoll arguments writing ``words`` at ``field``: 16-bit values as hex (two's
    complement for negatives, as mbpoll takes only 0..65535), 32-bit ones big-endian."""
    if kind == "4:int":
        return [
            "-t",
            kind,
            "-B",
            "-r",
            str(ps.fields[field].address),
            "127.0.0.1",
            "--",
            *map(str, words),
        ]
    hexed = [f"0x{w & 0xFFFF:04X}" for w in words]
    return ["-t", "4:hex", "-r", str(ps.fields[field].address), "127.0.0.1", *hexed]


async def _write(ps: PlantServer, field: str, *words: int, kind: str = "4") -> None:
    rc, out = await _mbpoll(ps, *_args(ps, field, words, kind))
    assert rc == 0, out


async def _refused(ps: PlantServer, field: str, *words: int, kind: str = "4") -> str:
    rc, out = await _mbpoll(ps, *_args(ps, field, words, kind))
    assert rc != 0, out
    return out


def _settle(ps: PlantServer) -> float:
    ps.advance(0.0)
    return ps.battery.p_batt_kw


@needs_mbpoll
def test_model_124_storctl_mod_1_and_2_apply_one_limit_each() -> None:
    async def run() -> None:
        ps = await start_server("sunspec", speed=0.0, battery=default_physics())
        try:
            assert _settle(ps) == pytest.approx(50.0)  # own mode
            await _write(ps, "discharge_rate_pct", 0)  # OutWRte 0 %
            await _write(ps, "storctl_mod", 2)  # discharge limit only: "hold"
            assert _settle(ps) == pytest.approx(0.0)
            await _write(ps, "discharge_rate_pct", 200)  # 20.0 %
            assert _settle(ps) == pytest.approx(20.0)
            await _write(ps, "discharge_rate_pct", -300)  # -30 %: forced charge
            assert _settle(ps) == pytest.approx(-30.0)
            ps.battery.p_pv_kw, ps.battery.p_load_kw = 130.0, 30.0  # own mode charges 100
            await _write(ps, "charge_rate_pct", 250)  # InWRte 25 %
            await _write(ps, "storctl_mod", 1)  # charge limit only
            assert _settle(ps) == pytest.approx(-25.0)
            await _write(ps, "charge_rate_pct", -400)  # -40 %: forced discharge
            assert _settle(ps) == pytest.approx(40.0)
            await _write(ps, "storctl_mod", 0)
            assert _settle(ps) == pytest.approx(-100.0)  # own mode again
        finally:
            await ps.stop()

    asyncio.run(run())


@needs_mbpoll
def test_chagriset_pv_only_limits_charging_to_the_pv_surplus() -> None:
    async def run() -> None:
        ps = await start_server("sunspec", speed=0.0, battery=default_physics())
        try:
            await _write(ps, "discharge_rate_pct", -800, 800)  # OutWRte -80, InWRte 80 %
            await _write(ps, "storctl_mod", 3)
            assert _settle(ps) == pytest.approx(-80.0)  # from the grid
            await _write(ps, "grid_charging", 0)  # ChaGriSet = PV
            assert _settle(ps) == pytest.approx(0.0)  # PV 30 < load 80: no surplus
            ps.battery.p_pv_kw = 130.0
            assert _settle(ps) == pytest.approx(-50.0)  # the surplus only
            await _write(ps, "grid_charging", 1)
            assert _settle(ps) == pytest.approx(-80.0)
        finally:
            await ps.stop()

    asyncio.run(run())


@needs_mbpoll
def test_model_704_wset_and_wsetpct_with_their_revert_timer() -> None:
    async def run() -> None:
        ps = await start_server("sunspec", speed=0.0, battery=default_physics())
        try:
            await _write(ps, "wset_revert_timeout_s", 30, kind="4:int")  # uint32, big-endian
            await _write(ps, "p_wset_kw", -25000, kind="4:int")  # WSet -25 kW
            await _write(ps, "wset_enable", 1, 1)  # WSetEna, WSetMod = W
            assert _settle(ps) == pytest.approx(-25.0)
            await _write(ps, "m704_wset_pct", 450)  # 45.0 % of WMax
            await _write(ps, "wset_mode", 0)
            assert _settle(ps) == pytest.approx(45.0)
            ps.advance(20.0)
            assert ps.get("wset_revert_remaining_s") == pytest.approx(10.0)
            ps.advance(11.0)  # past WSetRvrtTms: WSetEna takes WSetEnaRvrt (0)
            assert ps.get("wset_enable") == 0
            assert _settle(ps) == pytest.approx(50.0)  # own mode again
        finally:
            await ps.stop()

    asyncio.run(run())


def _words(ps: PlantServer, field: str) -> list[int]:
    return ps._words(ps.fields[field])


@needs_mbpoll
def test_out_of_range_writes_answer_exception_3_and_change_nothing() -> None:
    async def run() -> None:
        ps = await start_server("sunspec", speed=0.0, battery=default_physics())
        try:
            before = {f: _words(ps, f) for f in ps.fields if ps.fields[f].spec.access == "rw"}
            refusals = [
                ("storctl_mod", 4),
                ("storctl_mod", 0xFFFF),  # bit 2; all bits
                ("charge_rate_pct", 2000),
                ("discharge_rate_pct", -1001),  # 200 %, -100.1 %
                ("charge_rate_pct", 0x8000),  # the int16 sentinel
                ("grid_charging", 2),
                ("wset_enable", 2),
                ("wset_mode", 5),
                ("soc_reserve_frac", 101),  # MinRsvPct 101 %
            ]
            for field, word in refusals:  # words as mbpoll sends them
                assert "Illegal data value" in await _refused(ps, field, word), (field, word)
            out = await _refused(ps, "p_wset_kw", 150000, kind="4:int")  # 150 kW > 100 kW
            assert "Illegal data value" in out
            assert {f: _words(ps, f) for f in before} == before
            assert "Illegal data address" in await _refused(ps, "soc_frac", 5)  # read-only
            rc, out = await _mbpoll(ps, "-t", "4", "-r", "39000", "-c", "2", "127.0.0.1")
            assert rc != 0 and "Illegal data address" in out  # nothing mapped there
        finally:
            await ps.stop()

    asyncio.run(run())


def test_vendor_maps_refuse_unknown_commands_and_powers_beyond_the_rating() -> None:
    from pymodbus.client import AsyncModbusTcpClient

    async def run() -> None:
        ps = await start_server("huawei_sun2000_luna", speed=0.0, battery=default_physics())
        client = AsyncModbusTcpClient("127.0.0.1", port=ps.port, timeout=1, retries=0)
        await client.connect()
        try:
            cmd = ps.fields["forcible_command"].address
            res = await client.write_registers(cmd, [3], device_id=1)  # 0, 1, 2 only
            assert res.isError() and res.exception_code == 3
            power = ps.fields["p_discharge_setpoint_kw"].address
            res = await client.write_registers(power, [0x0001, 0xD4C0], device_id=1)  # 120 kW
            assert res.isError() and res.exception_code == 3
            res = await client.write_registers(power, [0x0001, 0x86A0], device_id=1)  # 100 kW
            assert not res.isError()
            res = await client.write_registers(cmd, [2], device_id=1)
            assert not res.isError() and _settle(ps) == pytest.approx(100.0)
        finally:
            client.close()
            await ps.stop()

    asyncio.run(run())


def _pysunspec_wset(port: int) -> float:
    """Runs in a thread: pysunspec2 commands model 704 (WSet in W) and reads it back."""
    from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP

    d = SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=port, timeout=2)
    try:
        d.scan()
        m = d.models[704][0]
        m.WSet.cvalue = -40_000
        m.WSetMod.value = 1
        m.WSetEna.value = 1
        m.write()
        m.read()
        return float(m.WSet.cvalue)
    finally:
        d.close()


def test_pysunspec2_commands_model_704() -> None:
    pytest.importorskip("sunspec2", reason="pysunspec2 (dev dependency) is not installed")

    async def run() -> None:
        ps = await start_server("sunspec", speed=0.0, battery=default_physics())
        try:
            assert await asyncio.to_thread(_pysunspec_wset, ps.port) == pytest.approx(-40_000)
            assert _settle(ps) == pytest.approx(-40.0)
        finally:
            await ps.stop()

    asyncio.run(run())
