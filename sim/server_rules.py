"""What a simulated device accepts in a write: the range rules behind exception 3.

Role: decide, for one writable field and the value a write would store (our units, after the
scale factor), whether a real device would take it (SunSpec ranges: rates within +-100 %,
``StorCtl_Mod`` bits 0 and 1 only, enums within their symbols, powers within the rating,
reserves within 0..100 %, timers within a day) or answer exception 3 (illegal data value).
A "not implemented" sentinel written into a writable point is refused before this (the codec
raises ``MissingValueError``). Pure: imports ``dispatch.devices.registers`` only.
"""

from __future__ import annotations

import math

from dispatch.devices.registers import RegisterMap

# Enumerations and bitfields the simulator knows (field name -> accepted raw values); the
# control section's mode and command values are added per map by ``allowed_values``.
ENUMS = {
    "storctl_mod": {0, 1, 2, 3},  # SunSpec 124 StorCtl_Mod: bit 0 charge, bit 1 discharge
    "grid_charging": {0, 1},  # 124 ChaGriSet: 0 PV, 1 GRID
    "wset_enable": {0, 1},  # 704 WSetEna
    "wset_mode": {0, 1},  # 704 WSetMod: 0 % of WMax, 1 W
    "m704_wset_ena_rvrt": {0, 1},  # 704 WSetEnaRvrt
    "ess_mode": {1, 2, 3},  # Victron settings 2902
    "ess_disable_charge": {0, 1},  # Victron vebus 38
    "ess_disable_feed_in": {0, 1},  # Victron vebus 39
    "ems_mode": {0, 2, 3},  # Sungrow 13050
}
MAX_TIMER_S = 86400.0  # revert timers up to a day


def allowed_values(rmap: RegisterMap, name: str) -> set[int] | None:
    """Raw values an enumeration or bitfield field accepts (None: not an enumeration)."""
    out = set(ENUMS.get(name, set()))
    c = rmap.control
    if c is not None and c.mode is not None and c.mode.field == name:
        out |= {c.mode.active, c.mode.default}
    if c is not None and c.command is not None and c.command.field == name:
        out |= {c.command.charge, c.command.discharge, c.command.idle}
    return out or None


def accepts(rmap: RegisterMap, name: str, value: float, power_kw: float) -> bool:
    """True when a device would store ``value`` (our units) in field ``name``.

    Parameters
    ----------
    rmap : RegisterMap
        The device's map (for its control section's mode and command values).
    name : str
        A writable field.
    value : float
        The value the write would store, decoded with the field's scale (our units: kW, s,
        %, fraction, raw enumeration value).
    power_kw : float
        The device's power rating (kW): the largest power a setpoint or limit may ask for.

    Returns
    -------
    bool
    """
    if not math.isfinite(value):
        return False
    enum = allowed_values(rmap, name)
    if enum is not None:
        return int(value) == value and int(value) in enum
    step = 1e-6 * max(power_kw, 1.0)
    if name.endswith("_pct"):
        return -100.0 - 1e-9 <= value <= 100.0 + 1e-9
    if name.endswith("_frac"):
        return 0.0 <= value <= 1.0 + 1e-9
    if name.endswith("_kw"):
        return abs(value) <= power_kw + step
    if name.endswith("_s"):
        return 0.0 <= value <= MAX_TIMER_S
    return True
