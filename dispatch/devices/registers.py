"""Register maps as data: the pydantic model of the map files and their loader.

Role: describe where each quantity lives on a device (address, table, type, word order, scale
or SunSpec scale-factor point, sign to the site-bus convention, access) and how the battery is
commanded (``[control]``). Pure: no Modbus I/O here.

A field's ``name`` is ours and carries its unit after scaling (``p_batt_kw``, ``soc_frac``,
``revert_timeout_s``); ``point`` is the device's own name, kept for commissioning and tests.
For a ``kind = "sunspec"`` map, ``address`` is the offset from the model's ID register and
``model`` / ``instance`` say which discovered model block it lives in.
May import ``dispatch.types`` and, for the rule that tells a map's path from its name,
``dispatch.config.runtime``.

The shipped maps are package data, ``dispatch/devices/maps/<name>.toml``, read with
``importlib.resources`` (so they are found in an installed wheel as in a source checkout). A
site's ``register_map`` is a shipped name, or a path ending in ``.toml`` (a map of its own).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dispatch.config.runtime import is_map_path
from dispatch.types import ConfigError, DeviceError

MAPS_PACKAGE, MAPS_FOLDER = "dispatch.devices", "maps"  # package data: the shipped maps
RegType = Literal[
    "int16", "uint16", "int32", "uint32", "float32", "acc32", "string",
    "sunssf", "enum16", "bitfield16", "bitfield32",
]
WORDS = {
    "int16": 1, "uint16": 1, "sunssf": 1, "enum16": 1, "bitfield16": 1,
    "int32": 2, "uint32": 2, "float32": 2, "acc32": 2, "bitfield32": 2,
}
Address = Annotated[int, Field(ge=0, le=65535)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Model):
    """One quantity on the device.

    ``value_ours = raw * scale * 10**sf * sign`` where ``sf`` is the value of the ``sf`` field
    (a SunSpec ``sunssf`` point) when given, else 0.
    """

    name: str
    address: Address
    type: RegType
    table: Literal["holding", "input"] = "holding"
    model: int | None = None
    instance: Annotated[int, Field(ge=1)] = 1
    words: Annotated[int, Field(ge=1, le=125)] | None = None
    word_order: Literal["big", "little"] | None = None
    scale: float = 1.0
    sf: str | None = None
    sign: Literal[1, -1] = 1
    access: Literal["r", "rw"] = "r"
    sentinel: bool = Field(True, description="treat 0x8000/0xFFFF/0x80000000/NaN as missing")
    unit_id: Annotated[int, Field(ge=0, le=255)] | None = Field(
        None, description="another unit id on the same endpoint (gateways such as Victron GX)"
    )
    sum_into: str | None = Field(
        None, description="add the value into this total (per-phase powers -> p_grid_kw)"
    )
    point: str = ""
    unit: str = ""
    source: str = ""

    @model_validator(mode="after")
    def _shape(self) -> FieldSpec:
        if self.type == "string" and self.words is None:
            raise ValueError("type 'string' needs words (register count)")
        if self.type != "string" and self.words not in (None, WORDS[self.type]):
            raise ValueError(f"type {self.type!r} is {WORDS[self.type]} word(s), not {self.words}")
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        return self

    @property
    def count(self) -> int:
        """Number of 16-bit registers the field spans."""
        return self.words if self.words is not None else WORDS[self.type]


class CommandSpec(_Model):
    """A command register and the values meaning charge, discharge and idle."""

    field: str
    charge: int
    discharge: int
    idle: int


class ModeSpec(_Model):
    """A mode register: the value that hands control to us and the device's own default."""

    field: str
    active: int
    default: int


class StateSpec(_Model):
    """A running-state field: the device is commanded only while it reads one of ``ready``.

    The first value of ``ready`` is the device's normal running state (the simulator publishes
    it); ``names`` (raw value -> name) makes the fault message readable. A device that answers
    the field with its "not implemented" sentinel is not judged by it.
    """

    field: str
    ready: Annotated[list[int], Field(min_length=1)]
    names: dict[str, str] = Field(default_factory=dict, description="raw value -> state name")

    def name_of(self, value: int) -> str:
        """The state's name (``"state 9"`` when the map does not name it)."""
        return self.names.get(str(value), f"state {value}")


class ControlSpec(_Model):
    """How a signed battery setpoint becomes register writes.

    kinds: ``signed`` (one signed power register, e.g. SunSpec 704 ``WSet``, or a PCS's
    active-power setpoint; without a mode register the handback is 0 kW), ``split``
    (charge and discharge power registers plus a command register, e.g. Huawei forcible
    charge/discharge, Sungrow forced mode), ``sunspec_124`` (``InWRte``/``OutWRte`` percent
    rates with ``StorCtl_Mod``).
    """

    kind: Literal["signed", "split", "sunspec_124"]
    setpoint_field: str | None = None
    charge_field: str | None = None
    discharge_field: str | None = None
    command: CommandSpec | None = None
    mode: ModeSpec | None = None
    extra_active: dict[str, float] = Field(
        default_factory=dict, description="fields written with the mode (e.g. WSetMod = 1)"
    )
    extra_default: dict[str, float] = Field(
        default_factory=dict,
        description="fields the handback writes after the mode (e.g. ChaGriSet = 0, PV only); "
        "a device's handback_values override them",
    )
    running: list[StateSpec] = Field(
        default_factory=list, description="state fields that must read 'ready' to command"
    )
    revert_field: str | None = None
    charge_limit_field: str | None = None
    discharge_limit_field: str | None = None
    rate_base_field: str | None = Field(None, description="sunspec_124: WChaMax (kW)")

    @model_validator(mode="after")
    def _complete(self) -> ControlSpec:
        need = {
            "signed": ("setpoint_field",),
            "split": ("charge_field", "discharge_field", "command"),
            "sunspec_124": ("charge_field", "discharge_field", "mode", "rate_base_field"),
        }[self.kind]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"kind {self.kind!r} needs {missing}")
        return self


class RegisterMap(_Model):
    """A whole register map file."""

    name: str
    kind: Literal["fixed", "sunspec"] = "fixed"
    description: str = ""
    word_order: Literal["big", "little"] = "big"
    unit_id: Annotated[int, Field(ge=0, le=255)] = 1
    sunspec_bases: list[Address] = [40000, 0, 50000]
    model_lengths: dict[str, int] = Field(default_factory=dict, description="SunSpec model -> L")
    fields: list[FieldSpec]
    control: ControlSpec | None = None

    @model_validator(mode="after")
    def _refs(self) -> RegisterMap:
        names = [f.name for f in self.fields]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate field names {dup}")
        problems = []
        for f in self.fields:
            if f.sf is not None and f.sf not in names:
                problems.append(f"fields.{f.name}.sf = {f.sf!r} is not a field")
            if self.kind == "sunspec" and f.model is None:
                problems.append(f"fields.{f.name}: a sunspec map needs model for every field")
            if f.sum_into is not None and f.sum_into in names:
                problems.append(f"fields.{f.name}.sum_into = {f.sum_into!r} is itself a field")
        if self.control is not None:
            problems += _control_refs(self.control, {f.name: f for f in self.fields})
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def summed(self, total: str) -> list[FieldSpec]:
        """Fields whose values add up to ``total`` (``sum_into``)."""
        return [f for f in self.fields if f.sum_into == total]

    def field(self, name: str) -> FieldSpec:
        """The field called ``name``; ``DeviceError`` if the map lacks it."""
        for f in self.fields:
            if f.name == name:
                return f
        raise DeviceError(f"register map {self.name!r} has no field {name!r}")

    def has(self, name: str) -> bool:
        """True when the map defines ``name``."""
        return any(f.name == name for f in self.fields)


def _control_refs(c: ControlSpec, fields: dict[str, FieldSpec]) -> list[str]:
    refs = {
        "setpoint_field": c.setpoint_field, "charge_field": c.charge_field,
        "discharge_field": c.discharge_field, "revert_field": c.revert_field,
        "command.field": c.command.field if c.command else None,
        "mode.field": c.mode.field if c.mode else None,
    }
    refs.update({f"extra_active.{k}": k for k in c.extra_active})
    refs.update({f"extra_default.{k}": k for k in c.extra_default})
    out = []
    for key, name in refs.items():
        if name is None:
            continue
        if name not in fields:
            out.append(f"control.{key} = {name!r} is not a field")
        elif fields[name].access != "rw":
            out.append(f"control.{key} = {name!r} must have access = 'rw'")
    for key in ("charge_limit_field", "discharge_limit_field", "rate_base_field"):
        name = getattr(c, key)
        if name is not None and name not in fields:
            out.append(f"control.{key} = {name!r} is not a field")
    for i, st in enumerate(c.running):
        if st.field not in fields:
            out.append(f"control.running[{i}].field = {st.field!r} is not a field")
        bad = [k for k in st.names if not k.lstrip("-").isdigit()]
        if bad:
            out.append(f"control.running[{i}].names: keys {bad} are not raw integer values")
    return out


def check_handback_values(rmap: RegisterMap, values: dict[str, float], where: str) -> list[str]:
    """Problems with a device's ``handback_values`` for its map (empty: fine).

    Parameters
    ----------
    rmap : RegisterMap
        The device's map.
    values : dict of str to float
        Field -> value the handback writes (the map's field units).
    where : str
        The config key, for the message (``devices[0].handback_values``).
    """
    out = []
    if values and rmap.control is None:
        out.append(f"{where}: register map {rmap.name!r} is read-only (no [control])")
        return out
    for name in values:
        if not rmap.has(name):
            out.append(f"{where}.{name}: register map {rmap.name!r} has no such field")
        elif rmap.field(name).access != "rw":
            out.append(f"{where}.{name}: field of map {rmap.name!r} is read-only")
    return out


def _format(err: dict[str, Any]) -> str:
    path = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return f"{path}: unknown key (typo?)"
    if err["type"] == "missing":
        return f"{path}: required key is missing"
    value = err.get("input")
    shown = repr(value) if not isinstance(value, dict) else "{...}"
    return f"{path} = {shown}: {msg}"


def parse_map(data: dict[str, Any], source: str | None = None) -> RegisterMap:
    """Validate a parsed register-map document; ``ConfigError`` names each bad key path."""
    try:
        return RegisterMap.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_format(e) for e in exc.errors()], source) from None


def shipped_maps() -> list[str]:
    """Names of the register maps shipped with the package (``"sunspec"``, ...), sorted."""
    folder = resources.files(MAPS_PACKAGE).joinpath(MAPS_FOLDER)
    return sorted(
        f.name.removesuffix(".toml") for f in folder.iterdir() if f.name.endswith(".toml")
    )


def shipped_map_text(name: str) -> str:
    """The TOML text of the shipped map ``name``.

    Raises
    ------
    ConfigError
        When no shipped map has that name; the message lists the known names.
    """
    if name not in shipped_maps():
        raise ConfigError(f"no register map {name!r}: {_allowed()}")
    folder = resources.files(MAPS_PACKAGE).joinpath(MAPS_FOLDER)
    return folder.joinpath(f"{name}.toml").read_text(encoding="utf-8")


def _allowed() -> str:
    return (f"the shipped maps are {', '.join(shipped_maps())}; a map of your own is a path "
            "ending in .toml")


def load_map(name_or_path: str | Path) -> RegisterMap:
    """Load a shipped register map by name, or a map of your own by path.

    Parameters
    ----------
    name_or_path : str or pathlib.Path
        A shipped name (``"sunspec"``, ``"huawei_sun2000_luna"``, ...: ``shipped_maps()``) or
        a path ending in ``.toml`` (relative: to the working directory; a site config's
        relative paths are made absolute by ``dispatch.config.load_config``).

    Raises
    ------
    ConfigError
        When the name is unknown (naming the known ones), or the file is missing, not TOML,
        or invalid.
    """
    if not is_map_path(name_or_path):
        name = str(name_or_path)
        return _parse_text(shipped_map_text(name), f"{MAPS_FOLDER}/{name}.toml (shipped)")
    p = Path(name_or_path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read register map: {exc.strerror}", str(p)) from None
    return _parse_text(text, str(p))


def _parse_text(text: str, source: str) -> RegisterMap:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"register map is not valid TOML: {exc}", source) from None
    return parse_map(data, source)


def check_device_maps(
    register_maps: list[str],
    source: str | None = None,
    handback: list[dict[str, float]] | None = None,
) -> list[RegisterMap]:
    """Load the register map of every ``[[devices]]`` entry, in order.

    Parameters
    ----------
    register_maps : list of str
        ``devices[i].register_map`` of a site config.
    source : str, optional
        The config file, for the message.
    handback : list of dict, optional
        ``devices[i].handback_values``, checked against each map (fields that exist and are
        writable).

    Returns
    -------
    list of RegisterMap

    Raises
    ------
    ConfigError
        One line per bad entry, naming its key (``devices[1].register_map = 'sunspek'``) and
        what is allowed (the shipped names) or what is wrong with the file.
    """
    maps, problems = [], []
    for i, value in enumerate(register_maps):
        try:
            maps.append(load_map(value))
        except ConfigError as exc:
            problems.append(f"devices[{i}].register_map = {value!r}: {'; '.join(exc.problems)}")
            continue
        if handback is not None and i < len(handback):
            key = f"devices[{i}].handback_values"
            problems += check_handback_values(maps[-1], handback[i], key)
    if problems:
        raise ConfigError(problems, source)
    return maps


@dataclass(frozen=True)
class Resolved:
    """A field with its absolute 0-based PDU address on one device."""

    spec: FieldSpec
    address: int
    word_order: Literal["big", "little"]


def resolve(
    rmap: RegisterMap, bases: dict[tuple[int, int], int] | None = None
) -> dict[str, Resolved]:
    """Absolute addresses of every field the device has.

    Parameters
    ----------
    rmap : RegisterMap
        The map.
    bases : dict, optional
        For SunSpec maps: ``(model id, instance) -> address of the model's ID register``, as
        found by discovery. Fields of models the device lacks are left out.

    Returns
    -------
    dict of str to Resolved
    """
    out: dict[str, Resolved] = {}
    for f in rmap.fields:
        order = f.word_order or rmap.word_order
        if rmap.kind == "fixed":
            out[f.name] = Resolved(f, f.address, order)
            continue
        base = (bases or {}).get((int(f.model or 0), f.instance))
        if base is not None:
            out[f.name] = Resolved(f, base + f.address, order)
    return out
