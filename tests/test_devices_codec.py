"""Register maps and codec: raw register dumps per shipped map, sentinels, round trips."""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.devices import codec, commands
from dispatch.devices.registers import (
    FieldSpec,
    Resolved,
    check_device_maps,
    load_map,
    parse_map,
    resolve,
    shipped_map_text,
    shipped_maps,
)
from dispatch.types import ConfigError, DeviceError

SHIPPED = shipped_maps()


def _words(value: int, n: int, order: str = "big") -> list[int]:
    """Two's-complement words of an integer (big word order unless told)."""
    raw = (value % (1 << (16 * n))).to_bytes(2 * n, "big")
    w = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, 2 * n, 2)]
    return list(reversed(w)) if order == "little" else w


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_map_loads(name: str) -> None:
    m = load_map(name)
    assert m.fields and m.control is not None


def test_the_shipped_maps_are_package_data() -> None:
    assert SHIPPED == [
        "byd_container_pcs", "huawei_sun2000_luna", "sma_storage", "sungrow_sh", "sunspec",
        "victron_gx_ess",
    ]
    folder = resources.files("dispatch.devices").joinpath("maps")
    assert all(folder.joinpath(f"{name}.toml").is_file() for name in SHIPPED)


def test_an_unknown_map_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError) as exc:
        load_map("sunspek")
    text = str(exc.value)
    assert "no register map 'sunspek'" in text
    assert ("byd_container_pcs, huawei_sun2000_luna, sma_storage, sungrow_sh, sunspec, "
            "victron_gx_ess") in text
    assert "path ending in .toml" in text


def test_a_map_of_ones_own_loads_by_path(tmp_path: Path) -> None:
    own = tmp_path / "my_pcs.toml"
    own.write_text(shipped_map_text("sungrow_sh").replace('name = "', 'name = "mine-', 1),
                   encoding="utf-8")
    assert load_map(own).name.startswith("mine-")
    assert load_map(str(own)).name.startswith("mine-")
    with pytest.raises(ConfigError, match="cannot read register map"):
        load_map(tmp_path / "absent.toml")


def test_device_maps_are_checked_with_their_key_paths(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('name = "x"\nfields = []\nkind = "vendor"\n')
    with pytest.raises(ConfigError) as exc:
        check_device_maps(["sunspec", "sungrow", str(tmp_path / "bad.toml")], "site.toml")
    lines = exc.value.problems
    assert len(lines) == 2 and exc.value.source == "site.toml"
    assert lines[0].startswith("devices[1].register_map = 'sungrow': no register map")
    assert lines[1].startswith(f"devices[2].register_map = '{tmp_path / 'bad.toml'}': kind = ")
    assert "kind = 'vendor'" in lines[1]
    assert [m.name for m in check_device_maps(["sunspec"])] == [load_map("sunspec").name]


def test_map_errors_name_the_key_path(tmp_path: Path) -> None:
    bad = {"name": "x", "fields": [{"name": "a", "address": 70000, "type": "int16"},
                                   {"name": "b", "address": 1, "type": "int17"}]}  # fmt: skip
    with pytest.raises(ConfigError) as exc:
        parse_map(bad, "bad.toml")
    text = str(exc.value)
    assert "fields.0.address = 70000" in text and "fields.1.type = 'int17'" in text
    with pytest.raises(ConfigError, match=r"control\.command\.field = 'nope' is not a field"):
        parse_map({"name": "x", "fields": [{"name": "a", "address": 1, "type": "int16",
                                            "access": "rw"}],
                   "control": {"kind": "split", "charge_field": "a", "discharge_field": "a",
                               "command": {"field": "nope", "charge": 1, "discharge": 2,
                                           "idle": 0}}})  # fmt: skip
    (tmp_path / "m.toml").write_text("name = [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_map(tmp_path / "m.toml")


def test_huawei_dump_sign_scale_word_order() -> None:
    m = load_map("huawei_sun2000_luna")
    f = resolve(m)
    # 37765 battery power I32 W, > 0 charging: -12 345 W on the wire is 12.345 kW discharge
    assert codec.decode(f["p_batt_kw"], _words(-12345, 2)) == pytest.approx(12.345)
    assert codec.decode(f["p_batt_kw"], [0x0000, 0x3039]) == pytest.approx(-12.345)
    # 37113 meter power I32 W, > 0 export: 0xFFFF_F830 = -2000 W -> 2 kW import
    assert codec.decode(f["p_grid_kw"], [0xFFFF, 0xF830]) == pytest.approx(2.0)
    assert codec.decode(f["soc_frac"], [875]) == pytest.approx(0.875)  # 87.5 % with gain 10
    assert codec.decode(f["revert_timeout_s"], [5]) == 300.0  # minutes
    assert codec.encode(f["p_discharge_setpoint_kw"], 70.0) == [0x0001, 0x1170]  # 70 000 W
    assert codec.decode(f["model_name"], [0x5355, 0x4E32, 0x3030, 0x3000] + [0] * 11) == "SUN2000"


def test_sungrow_dump_low_word_first() -> None:
    m = load_map("sungrow_sh")
    f = resolve(m)
    # export power S32 W with the low word first: 1500 W export -> -1.5 kW grid
    assert codec.decode(f["p_grid_kw"], [1500, 0]) == pytest.approx(-1.5)
    assert codec.decode(f["p_grid_kw"], _words(-2500, 2, "little")) == pytest.approx(2.5)
    assert codec.decode(f["p_pv_kw"], [0x86A0, 0x0001]) == pytest.approx(100.0)  # 100 000 W
    assert codec.decode(f["soc_frac"], [512]) == pytest.approx(0.512)
    assert f["ems_mode"].address == 13049  # documented 13050, 1-based
    assert commands.command_writes(m, -5.0, None) == [
        ("p_setpoint_abs_kw", 5.0), ("ems_mode", 2.0), ("charge_command", 170.0)]  # fmt: skip


def test_sunspec_dump_with_scale_factors() -> None:
    m = load_map("sunspec")
    bases = {(1, 1): 40002, (103, 1): 40070, (124, 1): 40122}
    f = resolve(m, bases)
    assert f["p_batt_kw"].address == 40070 + 14
    assert "p_grid_kw" not in f  # model 203 absent: the field is left out
    sf = int(codec.raw_from_words(f["batt_w_sf"].spec, [0x0001]))
    assert sf == 1
    assert codec.decode(f["p_batt_kw"], _words(-450, 1), sf) == pytest.approx(-4.5)  # -4500 W
    assert codec.decode(f["soc_frac"], [655], -1) == pytest.approx(0.655)
    assert codec.encode(f["charge_rate_pct"], -42.5, -1) == _words(-425, 1)
    with pytest.raises(codec.MissingValueError):
        codec.decode(f["p_batt_kw"], [0x8000], sf)
    with pytest.raises(codec.MissingValueError):
        codec.decode(f["soc_frac"], [0xFFFF], -1)


def test_sunspec_offsets_match_the_official_model_definitions() -> None:
    sunspec2 = pytest.importorskip("sunspec2", reason="pysunspec2 (dev dependency) not installed")
    folder = Path(sunspec2.__file__).parent / "models" / "json"
    m = load_map("sunspec")
    for spec in m.fields:
        doc = json.loads((folder / f"model_{spec.model}.json").read_text())
        offsets, types, off = {}, {}, 0
        for p in doc["group"]["points"]:
            offsets[p["name"]], types[p["name"]] = off, p["type"]
            off += p["size"]
        assert offsets[spec.point] == spec.address, spec.name
        assert types[spec.point] == spec.type, spec.name
        length = doc["group"]["points"][1].get("value") or off - 2 + sum(
            sum(q["size"] for q in g["points"]) for g in doc["group"].get("groups", []))
        assert m.model_lengths[str(spec.model)] == length


def test_sentinels_and_range_errors() -> None:
    spec = FieldSpec(name="x_kw", address=0, type="int32", scale=0.001)
    r = Resolved(spec, 0, "big")
    with pytest.raises(codec.MissingValueError):
        codec.decode(r, [0x8000, 0x0000])
    with pytest.raises(DeviceError, match="outside int32"):
        codec.encode(r, 3e6)
    with pytest.raises(DeviceError, match="non-finite"):
        codec.encode(r, math.nan)
    f32 = Resolved(FieldSpec(name="y", address=0, type="float32"), 0, "little")
    with pytest.raises(codec.MissingValueError):
        codec.decode(f32, codec.words_from_raw(f32.spec, math.nan, "little"))
    assert codec.decode(f32, codec.encode(f32, 1.5)) == 1.5


INT_TYPES = ["int16", "uint16", "int32", "uint32", "acc32"]


@given(
    typ=st.sampled_from(INT_TYPES),
    order=st.sampled_from(["big", "little"]),
    sign=st.sampled_from([1, -1]),
    scale=st.sampled_from([1.0, 0.001, 0.01, 0.1, 60.0]),
    sf=st.integers(-3, 3),
    data=st.data(),
)
def test_round_trip_property(typ: str, order: str, sign: int, scale: float, sf: int,
                             data: st.DataObject) -> None:
    lo, hi = codec.INT_RANGE[typ]
    raw = data.draw(st.integers(lo, hi).filter(lambda v: v != codec.SENTINEL.get(typ)))
    r = Resolved(FieldSpec(name="v", address=0, type=typ, sign=sign, scale=scale), 0, order)
    words = codec.words_from_raw(r.spec, raw, order)
    assert all(0 <= w <= 0xFFFF for w in words) and len(words) == r.spec.count
    value = codec.decode(r, words, sf)
    assert codec.encode(r, value, sf) == words


def test_victron_dump_units_and_phase_sums() -> None:
    m = load_map("victron_gx_ess")
    f = resolve(m)
    assert f["p_ess_setpoint_kw"].spec.unit_id == 227 and f["soc_frac"].spec.unit_id is None
    # vebus 37: int16 W, negative = discharge; ours: +5 kW discharge -> raw -5000
    assert codec.encode(f["p_ess_setpoint_kw"], 5.0) == _words(-5000, 1)
    assert codec.decode(f["p_batt_kw"], _words(1200, 1)) == pytest.approx(-1.2)  # charging
    assert codec.decode(f["grid_l2_kw"], _words(-700, 1)) == pytest.approx(-0.7)  # export
    assert [s.name for s in m.summed("p_grid_kw")] == ["grid_l1_kw", "grid_l2_kw", "grid_l3_kw"]
    with pytest.raises(DeviceError, match="outside int16"):
        codec.encode(f["p_ess_setpoint_kw"], 40.0)  # beyond one register: never wraps
