"""The in-process plant behind the device interface the daemon's Modbus clients implement.

Role: what a replay puts in ``Services.devices`` instead of ``dispatch.devices.DeviceClient``:
``read`` gives the plant's meters in our units, ``write`` commands its battery (clamped to the
limits it reports, like the client clamps to a device's), ``restore_default`` hands it back to
its default mode. No Modbus, no back-off (it never fails), so the daemon's jobs run unchanged
at the speed of the physics. Depends on ``dispatch`` (config, devices' value types, types)
and ``sim.plant``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

from dispatch.config import DeviceSection, SiteConfig
from dispatch.devices.client import DeviceReading, WriteOutcome
from dispatch.types import DeviceError, Setpoints
from sim.plant import Plant

#: The meter fields a reading carries (the plant's ``measure`` keys).
FIELDS = ("p_grid_kw", "p_pv_kw", "p_batt_kw", "p_load_kw", "soc_frac", "p_charge_max_kw",
          "p_discharge_max_kw")  # fmt: skip


class PlantDevice:
    """One battery device that is the simulated plant.

    Parameters
    ----------
    plant : Plant
        The physics; the replay steps it between control cycles.
    config : SiteConfig
        The site (its battery limits cap the device's, as ``[[devices]]`` would).
    now : callable
        The replay's clock (tz-aware UTC), for the time a command is written.
    """

    def __init__(self, plant: Plant, config: SiteConfig, now: Callable[[], dt.datetime]) -> None:
        b = config.battery
        self.plant, self._now = plant, now
        self.cfg = DeviceSection(name="plant", register_map="in-process",
                                 charge_max_kw=b.charge_max_kw,
                                 discharge_max_kw=b.discharge_max_kw)  # fmt: skip
        self.failures = 0
        self.next_try_s = -math.inf

    @property
    def name(self) -> str:
        """The device's name in snapshots and setpoints."""
        return self.cfg.name

    @property
    def commands_battery(self) -> bool:
        """The plant's battery takes setpoints."""
        return True

    def backoff_check(self, now_s: float) -> None:
        """Never backing off: the plant always answers."""

    def record_success(self) -> None:
        """Nothing to reset."""

    def backoff_reason(self, now_s: float) -> str | None:
        """Never backing off."""
        return None

    def record_failure(self, now_s: float, cause: str) -> None:
        """Cannot happen (no I/O)."""

    def held_fault(self, now_s: float) -> str | None:
        """Never held: the plant keeps every command."""
        return None

    async def read(self, names: list[str] | None = None) -> DeviceReading:
        """The plant's meters now (kW, fraction)."""
        m = self.plant.measure()
        return DeviceReading({k: m[k] for k in FIELDS}, ())

    async def write(self, sp: Setpoints, now_s: float) -> WriteOutcome:
        """Command the battery with ``sp`` (clamped to the plant's limits), or hand it back to
        its default mode."""
        if sp.default_mode:
            await self.restore_default()
            return WriteOutcome("default_mode", 0.0)
        if not math.isfinite(sp.p_batt_kw):
            raise DeviceError(f"device {self.name!r}: setpoint {sp.p_batt_kw} is not finite")
        m = self.plant.measure()
        p = min(max(sp.p_batt_kw, -m["p_charge_max_kw"]), m["p_discharge_max_kw"])
        self.plant.set_battery_setpoint(p, self._now(), sp.revert_timeout_s or None)
        return WriteOutcome("written", p, p != sp.p_batt_kw)

    async def restore_default(self) -> None:
        """The battery back in its default mode."""
        self.plant.release(self._now())

    def close(self) -> None:
        """Nothing to close."""
