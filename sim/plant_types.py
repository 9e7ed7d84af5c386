"""The simulator plant's value types: options, battery commands and the true state.

Role: the data that ``sim.plant.Plant`` takes and gives (re-exported from ``sim.plant``), kept
apart from its physics. Imports only the standard library.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

# Cumulative energy counters of a plant (kWh), in the order ``PlantState`` lists them.
COUNTERS = ("e_charge_kwh", "e_discharge_kwh", "e_loss_kwh", "e_standby_kwh", "e_import_kwh",
            "e_export_kwh", "e_pv_kwh", "e_curtail_kwh", "e_load_kwh")  # fmt: skip


@dataclass(frozen=True)
class PlantOptions:
    """Simulator settings beyond the site configuration.

    Attributes
    ----------
    soc_initial_frac : float, optional
        Initial state of charge (fraction); defaults to ``battery.soc_initial_frac`` clipped
        into the SoC window.
    derate_band_frac : float
        SoC width over which the power limits fall linearly to 0 at the SoC limits (fraction;
        0 disables derating).
    standby_loss_kw : float
        Constant self-discharge of the store (kWh per h).
    standby_loss_frac_per_h : float
        Self-discharge proportional to the stored energy (fraction of it per hour).
    default_mode : {"self_consumption", "idle"}
        What the battery does without a valid command.
    noise_sigma_frac, noise_sigma_kw : float
        Standard deviation of the PV and load measurement noise, relative (fraction of the
        value) and absolute (kW), combined in quadrature.
    seed : int
        Seed of the measurement-noise generator.
    limit_import : bool
        Reduce charging so that it does not push the import above ``grid.import_max_kw``.
    grid_charging : bool
        Whether the battery may charge from the grid; ``False`` (SunSpec ``ChaGriSet`` = PV)
        limits charging to the PV surplus ``max(pv - load, 0)`` (kW).
    """

    soc_initial_frac: float | None = None
    derate_band_frac: float = 0.05
    standby_loss_kw: float = 0.0
    standby_loss_frac_per_h: float = 5e-5
    default_mode: Literal["self_consumption", "idle"] = "self_consumption"
    noise_sigma_frac: float = 0.0
    noise_sigma_kw: float = 0.0
    seed: int = 0
    limit_import: bool = True
    grid_charging: bool = True


def check_options(o: PlantOptions, soc_min: float, soc_max: float) -> None:
    """Check ``o`` against the SoC window ``[soc_min, soc_max]`` (fractions).

    Raises
    ------
    ValueError
        Naming every bad field, its value and what is allowed.
    """
    problems = []
    if o.soc_initial_frac is not None and not soc_min <= o.soc_initial_frac <= soc_max:
        problems.append(f"soc_initial_frac = {o.soc_initial_frac} must lie in the SoC window "
                        f"[{soc_min}, {soc_max}]")  # fmt: skip
    if not 0.0 <= o.derate_band_frac < 1.0:
        problems.append(f"derate_band_frac = {o.derate_band_frac} must lie in [0, 1)")
    for name in ("standby_loss_kw", "standby_loss_frac_per_h", "noise_sigma_frac",
                 "noise_sigma_kw"):  # fmt: skip
        if not (math.isfinite(getattr(o, name)) and getattr(o, name) >= 0.0):
            problems.append(f"{name} = {getattr(o, name)} must be a finite number >= 0")
    if o.default_mode not in ("self_consumption", "idle"):
        problems.append(f"default_mode = {o.default_mode!r} must be 'self_consumption' or 'idle'")
    if problems:
        raise ValueError("plant options: " + "; ".join(problems))


@dataclass(frozen=True)
class Command:
    """A battery command: a power window (kW, site-bus sign) valid over ``[start, end)``.

    ``low_kw == high_kw`` forces a setpoint; otherwise the default-mode power is clipped into
    the window. ``end`` is the revert time (``None``: held until replaced or released).
    """

    low_kw: float
    high_kw: float
    start: dt.datetime
    end: dt.datetime | None

    def active_at(self, t: dt.datetime) -> bool:
        """True when the command governs the battery at ``t``."""
        return self.start <= t and (self.end is None or t < self.end)


@dataclass(frozen=True)
class PlantState:
    """The true state of the plant at ``time`` (end of the last step), site-bus signs.

    Powers (kW) are the operating point at ``time``: what the plant does from then on with
    the last inputs and the command in force (they always balance,
    ``p_load_kw = p_grid_kw + p_pv_kw + p_batt_kw``). ``p_pv_kw`` is PV after
    curtailment, ``p_pv_available_kw`` before. ``mode`` is ``"setpoint"``, ``"window"`` or the
    default mode; ``setpoint_*`` describe the command in force at ``time`` (NaN / None when
    none). ``p_charge_max_kw`` and ``p_discharge_max_kw`` are the derated limits at ``time``.
    The ``e_*_kwh`` counters are cumulative since the plant was built: charge and discharge at
    the AC terminals, conversion loss, standby loss, grid import and export, PV used and
    curtailed, load.
    """

    time: dt.datetime | None
    soc_frac: float
    energy_kwh: float
    p_batt_kw: float
    p_pv_kw: float
    p_pv_available_kw: float
    p_load_kw: float
    p_grid_kw: float
    p_charge_max_kw: float
    p_discharge_max_kw: float
    mode: str
    setpoint_low_kw: float
    setpoint_high_kw: float
    setpoint_expires: dt.datetime | None
    e_charge_kwh: float
    e_discharge_kwh: float
    e_loss_kwh: float
    e_standby_kwh: float
    e_import_kwh: float
    e_export_kwh: float
    e_pv_kwh: float
    e_curtail_kwh: float
    e_load_kwh: float
