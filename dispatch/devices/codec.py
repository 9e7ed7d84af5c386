"""Pure register codec: raw 16-bit words <-> values in our units and sign convention.

Role: encode and decode one field of a register map (int16/uint16/int32/uint32/float32/acc32/
string, SunSpec sunssf/enum16/bitfield), honouring word order, linear scale, SunSpec scale
factors and the sign flip to the site-bus convention. "Not implemented" sentinels (0x8000,
0xFFFF, 0x80000000, 0xFFFFFFFF, NaN) raise ``MissingValueError``: the caller marks the field missing
explicitly; a value is never silently None. Imports only ``dispatch.types`` and ``registers``.
"""

from __future__ import annotations

import math
import struct

from dispatch.devices.registers import FieldSpec, Resolved
from dispatch.types import DeviceError

INT_RANGE = {
    "int16": (-0x8000, 0x7FFF), "sunssf": (-10, 10), "uint16": (0, 0xFFFF),
    "enum16": (0, 0xFFFF), "bitfield16": (0, 0xFFFF), "int32": (-0x80000000, 0x7FFFFFFF),
    "uint32": (0, 0xFFFFFFFF), "acc32": (0, 0xFFFFFFFF), "bitfield32": (0, 0xFFFFFFFF),
}
SENTINEL = {
    "int16": -0x8000, "sunssf": -0x8000, "uint16": 0xFFFF, "enum16": 0xFFFF,
    "bitfield16": 0xFFFF, "int32": -0x80000000, "uint32": 0xFFFFFFFF,
    "bitfield32": 0xFFFFFFFF,
}
_STRUCT = {
    "int16": "h", "sunssf": "h", "uint16": "H", "enum16": "H", "bitfield16": "H",
    "int32": "i", "uint32": "I", "acc32": "I", "bitfield32": "I", "float32": "f",
}


class MissingValueError(DeviceError):
    """The device answered with its "not implemented" sentinel for this field."""


def _order(words: list[int], word_order: str) -> list[int]:
    return list(reversed(words)) if word_order == "little" else list(words)


def raw_from_words(spec: FieldSpec, words: list[int], word_order: str = "big") -> int | float | str:
    """Decode the raw device value of ``spec`` from its registers.

    Parameters
    ----------
    spec : FieldSpec
        The field.
    words : list of int
        Exactly ``spec.count`` registers (0..65535), as read.
    word_order : {"big", "little"}
        ``"big"``: most significant word first.

    Raises
    ------
    MissingValueError
        On a "not implemented" sentinel (unless the field sets ``sentinel = false``).
    DeviceError
        When the word count is wrong.
    """
    if len(words) != spec.count:
        raise DeviceError(f"field {spec.name}: expected {spec.count} registers, got {len(words)}")
    if spec.type == "string":
        data = b"".join(w.to_bytes(2, "big") for w in words)
        return data.split(b"\x00", 1)[0].decode("utf-8", errors="replace").strip()
    data = b"".join(w.to_bytes(2, "big") for w in _order(words, word_order))
    value = struct.unpack(">" + _STRUCT[spec.type], data)[0]
    if spec.sentinel and (
        (spec.type == "float32" and math.isnan(value)) or value == SENTINEL.get(spec.type)
    ):
        raise MissingValueError(f"field {spec.name} ({spec.point or spec.type}) is not implemented")
    return value


def words_from_raw(spec: FieldSpec, raw: int | float | str, word_order: str = "big") -> list[int]:
    """Encode a raw device value into registers; ``DeviceError`` when it does not fit."""
    if spec.type == "string":
        data = str(raw).encode("utf-8")[: 2 * spec.count].ljust(2 * spec.count, b"\x00")
        return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    if spec.type == "float32":
        data = struct.pack(">f", float(raw))
    else:
        lo, hi = INT_RANGE[spec.type]
        if not isinstance(raw, int) or not lo <= raw <= hi:
            raise DeviceError(
                f"field {spec.name}: raw value {raw!r} outside {spec.type} [{lo}, {hi}]"
            )
        data = struct.pack(">" + _STRUCT[spec.type], raw)
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    return _order(words, word_order)


def factor(spec: FieldSpec, sf: int = 0) -> float:
    """Multiplier from raw to our units: ``scale * 10**sf * sign``."""
    return spec.scale * (10.0**sf) * spec.sign


def to_value(spec: FieldSpec, raw: int | float, sf: int = 0) -> float:
    """Raw device value -> value in our units and sign convention."""
    return float(raw) * factor(spec, sf)


def to_raw(spec: FieldSpec, value: float, sf: int = 0) -> int | float:
    """Value in our units -> raw device value (rounded for integer types).

    Raises
    ------
    DeviceError
        When the value is not finite or does not fit the register type (never wraps).
    """
    if not math.isfinite(value):
        raise DeviceError(f"field {spec.name}: cannot write non-finite value {value}")
    raw = value / factor(spec, sf)
    if spec.type == "float32":
        return raw
    out = round(raw)
    lo, hi = INT_RANGE[spec.type]
    sentinel = SENTINEL.get(spec.type)
    if not lo <= out <= hi or (spec.sentinel and out == sentinel):
        raise DeviceError(
            f"field {spec.name}: {value} ({spec.unit or 'our units'}) -> raw {out} outside "
            f"{spec.type} range [{lo}, {hi}] or equal to its sentinel"
        )
    return out


def decode(r: Resolved, words: list[int], sf: int = 0) -> float | str:
    """Registers of a resolved field -> value in our units (strings returned as text)."""
    raw = raw_from_words(r.spec, words, r.word_order)
    if isinstance(raw, str):
        return raw
    return to_value(r.spec, raw, sf)


def encode(r: Resolved, value: float | str, sf: int = 0) -> list[int]:
    """Value in our units -> registers of a resolved field."""
    if r.spec.type == "string":
        return words_from_raw(r.spec, str(value), r.word_order)
    return words_from_raw(r.spec, to_raw(r.spec, float(value), sf), r.word_order)
