"""The plant behind a simulated Modbus device: ``sim.plant.Plant`` driven by register windows.

Role: adapt the energy-conserving plant (``sim.plant``) to ``sim.server``: the server turns
its control registers into a battery power window (or none: the device's own mode) and a
grid-charging flag (SunSpec ``ChaGriSet``), steps this physics on its clock and publishes the
measurements under every name a register map may use. Imports ``dispatch.config`` and
``sim.plant``; no sockets.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from dispatch.config import parse_config
from sim.plant import Plant, PlantOptions

DEFAULT_START = dt.datetime(2026, 6, 1, 4, tzinfo=dt.UTC)


class PlantPhysics:
    """Drives a ``sim.plant.Plant`` with the battery window the control registers ask for.

    The server owns the revert timers (they live in the register map), so the plant gets
    windows without a timeout and ``release`` when the registers say "default mode".
    ``p_pv_kw`` / ``p_load_kw`` (kW) are held constant unless ``None`` (then the plant's own
    series are used). Plant time starts at ``start`` (tz-aware) and advances with the steps.
    """

    def __init__(
        self,
        plant: Plant,
        start: dt.datetime,
        p_pv_kw: float | None = None,
        p_load_kw: float | None = None,
    ) -> None:
        self.plant, self.now = plant, start
        self.p_pv_kw, self.p_load_kw = p_pv_kw, p_load_kw
        b = plant.site.battery
        self.charge_max_kw, self.discharge_max_kw = b.charge_max_kw, b.discharge_max_kw
        self.soc_min_frac, self.energy_kwh = b.soc_min_frac, b.energy_kwh
        self._window: tuple[float, float] | None = None
        plant.step(start, 0.0, p_pv_kw, p_load_kw)

    @property
    def p_batt_kw(self) -> float:
        """Battery power now (kW, > 0 discharge)."""
        return float(self.plant.state.p_batt_kw)

    @property
    def soc_frac(self) -> float:
        """True state of charge (fraction)."""
        return float(self.plant.state.soc_frac)

    def step(
        self, dt_s: float, window: tuple[float, float] | None, grid_charging: bool = True
    ) -> None:
        """Advance ``dt_s`` plant seconds with the battery held in ``window`` (None: own mode)
        and, unless ``grid_charging``, charging from PV surplus only (SunSpec ``ChaGriSet``)."""
        if grid_charging != self.plant.options.grid_charging:
            self.plant.options = replace(self.plant.options, grid_charging=grid_charging)
        if window is not None:
            window = (min(window), window[1])
        if window != self._window:
            if window is None:
                self.plant.release(self.now)
            else:
                self.plant.set_battery_window(window[0], window[1], self.now)
            self._window = window
        self.plant.step(self.now, dt_s, self.p_pv_kw, self.p_load_kw)
        self.now += dt.timedelta(seconds=dt_s)

    def measurements(self) -> dict[str, float]:
        """Meter readings (our units) under every name a register map may publish."""
        m = {k: v for k, v in self.plant.measure().items() if not k.endswith("_max_kw")}
        p = m["p_batt_kw"]
        state = 3.0 if p > 1e-6 else 4.0 if p < -1e-6 else 6.0  # ChaSt
        m.update(soc_713_frac=m["soc_frac"], soc_802_frac=m["soc_frac"], p_inverter_ac_kw=p)
        m.update(charge_state=state, m802_w=p, m802_cha_st=state)
        return m


def default_physics(
    *,
    energy_kwh: float = 200.0,
    charge_max_kw: float = 100.0,
    discharge_max_kw: float = 100.0,
    soc_frac: float = 0.5,
    p_pv_kw: float = 30.0,
    p_load_kw: float = 80.0,
    start: dt.datetime = DEFAULT_START,
    **options: Any,
) -> PlantPhysics:
    """A plant for tests and demos: a 500 kW grid connection, SoC window 5-95 %, constant PV
    and load (kW); ``options`` override ``sim.plant.PlantOptions`` fields."""
    site = parse_config(
        {
            "site": {"latitude_deg": 31.3, "longitude_deg": 120.6, "timezone": "UTC"},
            "grid": {"import_max_kw": 500.0, "export_max_kw": 500.0},
            "battery": {
                "energy_kwh": energy_kwh,
                "charge_max_kw": charge_max_kw,
                "discharge_max_kw": discharge_max_kw,
                "soc_min_frac": 0.05,
                "soc_max_frac": 0.95,
            },
            "tariff": {
                "bands": {"flat": 0.1},
                "rules": [{"band": "flat", "start": "00:00", "end": "00:00"}],
            },
            "carbon": {"grid_ci_g_per_kwh": 500.0},
        },
        "sim.server.default_physics",
    )
    plant = Plant(site, PlantOptions(soc_initial_frac=soc_frac, **options), start=start)
    return PlantPhysics(plant, start, p_pv_kw, p_load_kw)
