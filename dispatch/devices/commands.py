"""Pure translation between a signed battery setpoint and a map's control registers.

Role: given a register map's ``[control]`` section, list the field writes that command a
battery power (in the safe order: revert timeout, then powers or rates, then mode, then
command) and, the other way, the battery power window that a set of control values asks for
(used for read-back checks and by the simulator, so both sides share one interpretation).
Values are in the map's field units (kW, s, %, raw enum). Imports ``registers`` and ``types``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from dispatch.devices.registers import ControlSpec, RegisterMap
from dispatch.types import DeviceError

IDLE_KW = 1e-3


def _control(rmap: RegisterMap) -> ControlSpec:
    if rmap.control is None:
        raise DeviceError(f"register map {rmap.name!r} has no [control] section: read-only")
    return rmap.control


def command_writes(
    rmap: RegisterMap, p_batt_kw: float, revert_s: float | None, rate_base_kw: float | None = None
) -> list[tuple[str, float]]:
    """Ordered field writes that make the battery run at ``p_batt_kw``.

    Parameters
    ----------
    rmap : RegisterMap
        Map with a ``[control]`` section.
    p_batt_kw : float
        Battery AC power (kW, > 0 discharge, < 0 charge), already clamped.
    revert_s : float or None
        Revert timeout to arm (s); skipped when the map has no revert register.
    rate_base_kw : float, optional
        ``sunspec_124`` only: the power that 100 % means (``WChaMax``, kW).

    Returns
    -------
    list of (field name, value)
        Revert timeout first, then powers/rates, then extras and mode, then command.
    """
    c = _control(rmap)
    out: list[tuple[str, float]] = []
    if c.revert_field is not None and revert_s is not None:
        out.append((c.revert_field, float(revert_s)))
    out += _power_writes(c, p_batt_kw, rate_base_kw)
    out += [(k, float(v)) for k, v in c.extra_active.items()]
    if c.mode is not None:
        out.append((c.mode.field, float(c.mode.active)))
    if c.command is not None:
        if abs(p_batt_kw) < IDLE_KW:
            # without a mode register "idle" hands control back: hold 0 kW as a forced charge
            cmd = c.command.idle if c.mode is not None else c.command.charge
        else:
            cmd = c.command.discharge if p_batt_kw > 0 else c.command.charge
        out.append((c.command.field, float(cmd)))
    return out


def _power_writes(c: ControlSpec, p: float, base_kw: float | None) -> list[tuple[str, float]]:
    if c.kind == "signed":
        return [(str(c.setpoint_field), p)]
    if c.kind == "split":
        if c.charge_field == c.discharge_field:
            return [(str(c.charge_field), abs(p))]
        return [(str(c.charge_field), max(-p, 0.0)), (str(c.discharge_field), max(p, 0.0))]
    if base_kw is None or not math.isfinite(base_kw) or base_kw <= 0:
        raise DeviceError(
            f"sunspec_124 control needs a positive rate base (WChaMax), got {base_kw}"
        )
    pct = 100.0 * p / base_kw
    # forced discharge: OutWRte = +x, InWRte = -x; forced charge: InWRte = +x, OutWRte = -x
    return [(str(c.charge_field), -pct), (str(c.discharge_field), pct)]


def default_writes(
    rmap: RegisterMap, extra: Mapping[str, float] | None = None, *, extras: bool = True
) -> list[tuple[str, float]]:
    """Field writes that hand the battery back to the device's own default mode.

    The command to idle, every power or rate register to 0 (no full-power value is left
    behind for a local operator or a mode switch to pick up), the mode to its default, then
    the map's ``extra_default`` (e.g. SunSpec ``ChaGriSet`` = 0, PV only) updated by
    ``extra``.

    Parameters
    ----------
    rmap : RegisterMap
        Map with a ``[control]`` section.
    extra : mapping, optional
        A device's ``handback_values`` (field -> value in field units), overriding the map's.
    extras : bool
        False: only what a device's own revert timer resets (command, powers, mode).

    Returns
    -------
    list of (field name, value)
    """
    c = _control(rmap)
    out: list[tuple[str, float]] = []
    if c.command is not None:
        out.append((c.command.field, float(c.command.idle)))
    powers = (c.setpoint_field,) if c.kind == "signed" else (c.charge_field, c.discharge_field)
    out += [(str(f), 0.0) for f in dict.fromkeys(powers) if f is not None]
    if c.mode is not None:
        out.append((c.mode.field, float(c.mode.default)))
    if extras:
        out += [(k, float(v)) for k, v in {**c.extra_default, **(extra or {})}.items()]
    return out


def not_ready(rmap: RegisterMap, values: Mapping[str, object]) -> str | None:
    """Why the device may not be commanded now, from its running-state fields, or None.

    Parameters
    ----------
    rmap : RegisterMap
        The map; without ``[control] running`` entries nothing is judged.
    values : mapping
        A full reading (field -> value); a state field absent (not implemented) is not
        judged.

    Returns
    -------
    str or None
        E.g. ``"not running: batt_inverter_state (St) = 7 'fault' (ready: 4, 5, 8)"``.
    """
    c = rmap.control
    for st in c.running if c is not None else []:
        v = values.get(st.field)
        if not isinstance(v, int | float) or not math.isfinite(v):
            continue
        if int(v) not in st.ready:
            point = rmap.field(st.field).point
            where = f"{st.field} ({point})" if point else st.field
            ready = ", ".join(str(r) for r in st.ready)
            return f"not running: {where} = {int(v)} {st.name_of(int(v))!r} (ready: {ready})"
    return None


def power_window(
    rmap: RegisterMap,
    values: Mapping[str, float],
    charge_max_kw: float,
    discharge_max_kw: float,
) -> tuple[float, float] | None:
    """The battery power range (kW, site-bus sign) that the control values ask for.

    Parameters
    ----------
    rmap : RegisterMap
        Map with a ``[control]`` section.
    values : mapping
        Current control field values in field units.
    charge_max_kw, discharge_max_kw : float
        Physical limits (kW, positive), used where a mode leaves a side open.

    Returns
    -------
    (low, high) or None
        ``None`` when the device is in its own default mode; ``low == high`` for a forced
        setpoint. For ``sunspec_124``, ``StorCtl_Mod`` bit 0 alone applies ``InWRte`` as
        the charge limit and bit 1 alone ``OutWRte`` as the discharge limit (the other side
        stays at the physical limit).
    """
    c = _control(rmap)
    if c.mode is not None:
        mode = int(values.get(c.mode.field, c.mode.default))
        # SunSpec 124: any StorCtl_Mod bit applies its limit; other maps: only the active mode
        if mode == c.mode.default or (c.kind != "sunspec_124" and mode != c.mode.active):
            return None
    if c.kind == "signed":
        p = float(values[str(c.setpoint_field)])
        return (p, p)
    if c.kind == "split":
        assert c.command is not None
        cmd = int(values.get(c.command.field, c.command.idle))
        if cmd == c.command.charge:
            p = -abs(float(values[str(c.charge_field)]))
        elif cmd == c.command.discharge:
            p = abs(float(values[str(c.discharge_field)]))
        elif cmd == c.command.idle and c.mode is not None:
            p = 0.0
        else:
            return None
        return (p, p)
    return _window_124(c, values, charge_max_kw, discharge_max_kw)


def _window_124(
    c: ControlSpec, values: Mapping[str, float], charge_max_kw: float, discharge_max_kw: float
) -> tuple[float, float]:
    base = float(values[str(c.rate_base_field)])
    bits = int(values[c.mode.field]) if c.mode else 0  # type: ignore[index]
    low, high = -charge_max_kw, discharge_max_kw
    if bits & 1:
        low = -float(values[str(c.charge_field)]) / 100.0 * base
    if bits & 2:
        high = float(values[str(c.discharge_field)]) / 100.0 * base
    if c.mode is not None and bits != c.mode.active:
        # a partial mode limits one side only; the device's own logic picks within the window
        return (max(low, -charge_max_kw), min(high, discharge_max_kw))
    return (low, high)


def setpoint_of(window: tuple[float, float] | None) -> float | None:
    """The forced setpoint of a window (kW), or None when the device is free to choose."""
    if window is None or not math.isclose(window[0], window[1], abs_tol=1e-6):
        return None
    return window[0]
