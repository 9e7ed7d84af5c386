"""Plant physics: the battery, PV and load of one site, energy-conserving, for the simulator.

Role: the stand-in for the real plant behind the Modbus server (``sim.server``) and for
backtests. One ``Plant`` holds the true state of a battery at its AC terminals (PCS + BMS) and
integrates exact energy flows step by step; measurements with seeded noise are a separate view
that never feeds back into the physics. Input series (factory load, PV through the
``dispatch.forecast`` chain) come from ``sim.loadprofile``. Depends on ``dispatch`` (config,
types), numpy and pandas; ``dispatch`` never imports it. No wall clock: every time is an
argument (tz-aware, converted to UTC). Its value types (``PlantOptions``, ``Command``,
``PlantState``) live in ``sim.plant_types`` and are re-exported here.

Physics of one interval of ``h`` hours at constant powers (site-bus sign, ``p_batt_kw > 0``
discharge):

- standby (self-discharge) ``standby_loss_kw + standby_loss_frac_per_h * E`` leaves the store
  first, never below the SoC floor (the BMS disconnects there);
- the battery power follows the active command (a window, ``low == high`` for a setpoint) or
  the default mode (``self_consumption``: ``load - pv``; ``idle``: 0), clipped to the power
  limits derated linearly over the last ``derate_band_frac`` of SoC, to the energy room of
  the SoC window, to the export limit (discharge) and, optionally, the import limit (charge);
- PV is curtailed by the inverter so that export never exceeds ``grid.export_limit_kw``;
- ``E += eta_charge * charge * h - discharge / eta_discharge * h - standby``;
- ``p_grid_kw = p_load_kw - p_pv_kw - p_batt_kw``.

A command carries a revert timeout; a step that crosses the expiry (or the time a command was
written) is split there, so the battery returns to its default mode exactly at the timeout.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import replace

import numpy as np
import pandas as pd

from dispatch.config import SiteConfig
from dispatch.types import Snapshot
from sim.loadprofile import value_at
from sim.plant_types import COUNTERS, Command, PlantOptions, PlantState, check_options

TIME_TOL = dt.timedelta(milliseconds=1)

__all__ = ["COUNTERS", "Command", "Plant", "PlantOptions", "PlantState", "simulate", "utc"]


def utc(t: dt.datetime) -> dt.datetime:
    """``t`` as a ``datetime`` in UTC; raises ``ValueError`` for a naive time."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"time {t!r} must be tz-aware (UTC)")
    if isinstance(t, pd.Timestamp):
        t = t.to_pydatetime()
    return t.astimezone(dt.UTC)


class Plant:
    """An energy-conserving battery + PV + load plant at one grid connection point.

    Parameters
    ----------
    site : SiteConfig
        Battery (energy, power limits, SoC window, efficiencies) and grid (import and export
        limits) come from here.
    options : PlantOptions, optional
        Simulator settings; keyword ``overrides`` replace single fields of it.
    start : datetime, optional
        Plant time at construction (tz-aware); otherwise set by the first step.
    pv_kw, load_kw : pandas.Series, optional
        Available PV and load (kW) by UTC period start, used by ``step`` when it is not given
        the values (held over each period, read at the start of the step).
    """

    def __init__(self, site: SiteConfig, options: PlantOptions | None = None, *,
                 start: dt.datetime | None = None, pv_kw: pd.Series | None = None,
                 load_kw: pd.Series | None = None, **overrides: object) -> None:  # fmt: skip
        b = site.battery
        self.site = site
        self.options = replace(options or PlantOptions(), **overrides)  # type: ignore[arg-type]
        check_options(self.options, b.soc_min_frac, b.soc_max_frac)
        self.e_min_kwh = b.soc_min_frac * b.energy_kwh
        self.e_max_kwh = b.soc_max_frac * b.energy_kwh
        soc0 = self.options.soc_initial_frac
        if soc0 is None:
            soc0 = min(max(b.soc_initial_frac, b.soc_min_frac), b.soc_max_frac)
        self.energy_kwh = min(max(soc0 * b.energy_kwh, self.e_min_kwh), self.e_max_kwh)
        self.time = None if start is None else utc(start)
        self.pv_kw, self.load_kw = pv_kw, load_kw
        self.counters = dict.fromkeys(COUNTERS, 0.0)
        self.commands: list[Command] = []
        self._rng = np.random.default_rng(self.options.seed)
        self._flows = {"p_batt_kw": 0.0, "p_pv_kw": 0.0, "p_pv_available_kw": 0.0,
                       "p_load_kw": 0.0, "p_grid_kw": 0.0}  # fmt: skip
        self._meas = {"p_pv_kw": 0.0, "p_load_kw": 0.0}
        self._state: PlantState | None = None

    # --- commands ---
    def set_battery_setpoint(self, p_kw: float, now: dt.datetime,
                             revert_timeout_s: float | None = None) -> None:  # fmt: skip
        """Force the battery power to ``p_kw`` (kW, > 0 discharge) from ``now``.

        Parameters
        ----------
        p_kw : float
            Setpoint at the AC terminals; physics limits what is delivered.
        now : datetime
            When it was written (tz-aware).
        revert_timeout_s : float, optional
            Seconds after ``now`` at which the battery drops back to its default mode unless
            rewritten; ``None`` or ``<= 0`` holds it until replaced or released.
        """
        self.set_battery_window(p_kw, p_kw, now, revert_timeout_s)

    def set_battery_window(self, low_kw: float, high_kw: float, now: dt.datetime,
                           revert_timeout_s: float | None = None) -> None:  # fmt: skip
        """Limit the battery power to ``[low_kw, high_kw]`` (kW) from ``now``; the default
        mode picks within it. Arguments as in ``set_battery_setpoint``."""
        if not (math.isfinite(low_kw) and math.isfinite(high_kw) and low_kw <= high_kw):
            raise ValueError(f"battery window [{low_kw}, {high_kw}] kW must be finite and ordered")
        now = utc(now)
        end = None
        if revert_timeout_s is not None and revert_timeout_s > 0:
            end = now + dt.timedelta(seconds=float(revert_timeout_s))
        self._cut_commands(now)
        self.commands.append(Command(float(low_kw), float(high_kw), now, end))
        self._refresh()

    def release(self, now: dt.datetime) -> None:
        """Hand the battery back to its default mode from ``now``."""
        self._cut_commands(utc(now))
        self._refresh()

    def _cut_commands(self, now: dt.datetime) -> None:
        kept = []
        for c in self.commands:
            if c.start < now:
                kept.append(c if c.end is not None and c.end <= now else replace(c, end=now))
        self.commands = kept

    def command_at(self, t: dt.datetime) -> Command | None:
        """The command in force at ``t`` (``None``: default mode)."""
        return self._command_at(utc(t))

    def _command_at(self, t: dt.datetime) -> Command | None:
        return next((c for c in self.commands if c.active_at(t)), None)

    # --- physics ---
    def limits_kw(self, energy_kwh: float | None = None) -> tuple[float, float]:
        """Derated (charge, discharge) power limits (kW, both >= 0) at a stored energy (kWh;
        default the present one)."""
        b = self.site.battery
        e = self.energy_kwh if energy_kwh is None else energy_kwh
        ch, dis = b.charge_max_kw, b.discharge_max_kw
        band = self.options.derate_band_frac
        if band > 0.0:
            soc = e / b.energy_kwh
            ch *= min(max((b.soc_max_frac - soc) / band, 0.0), 1.0)
            dis *= min(max((soc - b.soc_min_frac) / band, 0.0), 1.0)
        if e >= self.e_max_kwh:
            ch = 0.0
        if e <= self.e_min_kwh:
            dis = 0.0
        return ch, dis

    def _battery_power(self, e_kwh: float, h: float, pv: float, load: float,
                       cmd: Command | None) -> float:  # fmt: skip
        b, grid = self.site.battery, self.site.grid
        p = load - pv if self.options.default_mode == "self_consumption" else 0.0
        if cmd is not None:
            p = min(max(p, cmd.low_kw), cmd.high_kw)
        ch, dis = self.limits_kw(e_kwh)
        if h > 0.0:
            ch = min(ch, max(self.e_max_kwh - e_kwh, 0.0) / (b.eta_charge * h))
            dis = min(dis, max(e_kwh - self.e_min_kwh, 0.0) * b.eta_discharge / h)
        dis = min(dis, max(load + grid.export_limit_kw, 0.0))
        if self.options.limit_import:
            ch = min(ch, max(pv + grid.import_max_kw - load, 0.0))
        if not self.options.grid_charging:
            ch = min(ch, max(pv - load, 0.0))
        return min(max(p, -ch), dis)

    def _advance(self, h: float, pv: float, load: float, cmd: Command | None) -> None:
        """Integrate ``h`` hours at constant inputs; updates energy, counters and flows."""
        b, o = self.site.battery, self.options
        rate = o.standby_loss_kw + o.standby_loss_frac_per_h * self.energy_kwh
        standby = min(rate * h, max(self.energy_kwh - self.e_min_kwh, 0.0))
        e = self.energy_kwh - standby
        p = self._battery_power(e, h, pv, load, cmd)
        exp = self.site.grid.export_limit_kw
        pv_used, grid = pv, load - pv - p
        if grid < -exp:  # the inverter curtails PV down to the export limit
            pv_used, grid = max(load - p + exp, 0.0), -exp
        charge, discharge = max(-p, 0.0) * h, max(p, 0.0) * h
        e += b.eta_charge * charge - discharge / b.eta_discharge
        self.energy_kwh = min(max(e, self.e_min_kwh), self.e_max_kwh)
        c = self.counters
        c["e_charge_kwh"] += charge
        c["e_discharge_kwh"] += discharge
        c["e_loss_kwh"] += (1.0 - b.eta_charge) * charge + discharge * (1.0 / b.eta_discharge - 1.0)
        c["e_standby_kwh"] += standby
        c["e_import_kwh"] += max(grid, 0.0) * h
        c["e_export_kwh"] += max(-grid, 0.0) * h
        c["e_pv_kwh"] += pv_used * h
        c["e_curtail_kwh"] += (pv - pv_used) * h
        c["e_load_kwh"] += load * h
        self._flows = {"p_batt_kw": p, "p_pv_kw": pv_used, "p_pv_available_kw": pv,
                       "p_load_kw": load, "p_grid_kw": grid}  # fmt: skip

    @staticmethod
    def _input(given: float | None, series: pd.Series | None, t0: dt.datetime, name: str) -> float:
        if given is None:
            if series is None:
                raise ValueError(f"step: give {name} or build the plant with its series")
            given = value_at(series, t0, name)
        if not (math.isfinite(given) and given >= 0.0):
            raise ValueError(f"step: {name} = {given} must be a finite number >= 0")
        return float(given)

    def _segments(self, t0: dt.datetime, t1: dt.datetime) -> list[tuple[dt.datetime, float]]:
        cuts = {t for c in self.commands for t in (c.start, c.end) if t is not None and t0 < t < t1}
        edges = [t0, *sorted(cuts), t1]
        return [(a, (b - a).total_seconds() / 3600.0) for a, b in itertools.pairwise(edges)]

    def step(self, now: dt.datetime, dt_s: float, p_pv_available_kw: float | None = None,
             p_load_kw: float | None = None) -> PlantState:  # fmt: skip
        """Advance the plant over ``[now, now + dt_s)`` and return its state at the end.

        Parameters
        ----------
        now : datetime
            Start of the interval (tz-aware). It may not lie before the plant time (more than
            1 ms); a later start leaves a gap in which nothing happens.
        dt_s : float
            Length of the interval (s, >= 0; 0 only refreshes the operating point).
        p_pv_available_kw, p_load_kw : float, optional
            PV the arrays could deliver and site load (kW, >= 0), constant over the interval;
            read from the plant's series at ``now`` when omitted.

        Returns
        -------
        PlantState
            The true state at ``now + dt_s``.
        """
        t0 = utc(now)
        if not (math.isfinite(dt_s) and dt_s >= 0.0):
            raise ValueError(f"step: dt_s = {dt_s} must be a finite number >= 0")
        if self.time is not None and t0 < self.time - TIME_TOL:
            raise ValueError(f"step: {t0.isoformat()} lies before the plant time "
                             f"{self.time.isoformat()}; time cannot run backwards")  # fmt: skip
        pv = self._input(p_pv_available_kw, self.pv_kw, t0, "p_pv_available_kw")
        load = self._input(p_load_kw, self.load_kw, t0, "p_load_kw")
        t1 = t0 + dt.timedelta(seconds=float(dt_s))
        for a, h in self._segments(t0, t1):
            self._advance(h, pv, load, self._command_at(a))
        self.time = t1
        self.commands = [c for c in self.commands if c.end is None or c.end > t1]
        self._refresh()
        self._measure_inputs(load)
        return self.state

    def _refresh(self) -> None:
        """Recompute the operating point at the plant time (no time passes); after a step
        and after every write, so the state answers a command at once."""
        self._state = None
        if self.time is not None:
            f = self._flows
            self._advance(0.0, f["p_pv_available_kw"], f["p_load_kw"], self._command_at(self.time))

    def _measure_inputs(self, load: float) -> None:
        o = self.options
        z = [float(x) for x in self._rng.standard_normal(2)]
        pv_used = self._flows["p_pv_kw"]
        sig = [math.hypot(o.noise_sigma_frac * v, o.noise_sigma_kw) for v in (pv_used, load)]
        self._meas = {"p_pv_kw": max(pv_used + sig[0] * z[0], 0.0),
                      "p_load_kw": max(load + sig[1] * z[1], 0.0)}  # fmt: skip

    # --- views ---
    @property
    def state(self) -> PlantState:
        """The true state now (``time`` is ``None`` before the first step without ``start``);
        built once per step or write, so change the plant only through its methods."""
        if self._state is not None:
            return self._state
        b = self.site.battery
        cmd = self._command_at(self.time) if self.time is not None else None
        mode = self.options.default_mode
        if cmd is not None:
            mode = "setpoint" if cmd.low_kw == cmd.high_kw else "window"
        ch, dis = self.limits_kw()
        self._state = PlantState(
            time=self.time, soc_frac=self.energy_kwh / b.energy_kwh, energy_kwh=self.energy_kwh,
            **self._flows, p_charge_max_kw=ch, p_discharge_max_kw=dis, mode=mode,
            setpoint_low_kw=cmd.low_kw if cmd else math.nan,
            setpoint_high_kw=cmd.high_kw if cmd else math.nan,
            setpoint_expires=cmd.end if cmd else None, **self.counters,
        )  # fmt: skip
        return self._state

    def measure(self) -> dict[str, float]:
        """What the meters read after the last step (kW, kWh, fractions; site-bus signs).

        PV and load carry the seeded noise; battery power, SoC and energies are the PCS/BMS
        values. ``p_grid_kw`` is the measured balance ``load - pv - batt``, so the readings
        are consistent with each other while the true flows stay untouched.
        """
        s, b = self.state, self.site.battery
        pv, load = self._meas["p_pv_kw"], self._meas["p_load_kw"]
        return {
            "p_grid_kw": load - pv - s.p_batt_kw, "p_pv_kw": pv, "p_batt_kw": s.p_batt_kw,
            "p_load_kw": load, "soc_frac": s.soc_frac,
            "p_charge_max_kw": s.p_charge_max_kw, "p_discharge_max_kw": s.p_discharge_max_kw,
            "energy_available_kwh": max(s.energy_kwh - self.e_min_kwh, 0.0) * b.eta_discharge,
            "batt_energy_in_kwh": s.e_charge_kwh, "batt_energy_out_kwh": s.e_discharge_kwh,
        }  # fmt: skip

    def snapshot(self) -> Snapshot:
        """The measurements as the controller's ``Snapshot`` (needs a plant time)."""
        if self.time is None:
            raise ValueError("snapshot: the plant has no time yet; step it or give start")
        m = self.measure()
        keys = ("p_grid_kw", "p_pv_kw", "p_batt_kw", "p_load_kw", "soc_frac",
                "p_charge_max_kw", "p_discharge_max_kw")  # fmt: skip
        return Snapshot(time=self.time, **{k: m[k] for k in keys},
                        values={f"plant.{k}": v for k, v in m.items()})  # fmt: skip


def simulate(plant: Plant, index: pd.DatetimeIndex, setpoint_kw: pd.Series | None = None,
             revert_timeout_s: float | None = None) -> pd.DataFrame:  # fmt: skip
    """Step ``plant`` through the periods of ``index`` (UTC starts, fixed step).

    Parameters
    ----------
    plant : Plant
        Built with ``pv_kw`` and ``load_kw`` series that cover ``index``.
    index : pandas.DatetimeIndex
        Period starts; the last period ends one step after the last stamp.
    setpoint_kw : pandas.Series, optional
        Battery setpoint (kW) written at each period start (NaN: none written).
    revert_timeout_s : float, optional
        Revert timeout of each written setpoint (s).

    Returns
    -------
    pandas.DataFrame
        One row per period, indexed by its start: mean powers over the period (kW)
        ``p_grid_kw``, ``p_batt_kw``, ``p_pv_kw`` (used), ``p_curtail_kw``, ``p_load_kw``;
        ``soc_frac``, ``energy_kwh`` and ``mode`` at its end; the cumulative ``e_*_kwh``.
    """
    step_s = (index[1] - index[0]).total_seconds()
    h = step_s / 3600.0
    rows = []
    for i, t in enumerate(index):
        if setpoint_kw is not None and math.isfinite(float(setpoint_kw.iloc[i])):
            plant.set_battery_setpoint(float(setpoint_kw.iloc[i]), t, revert_timeout_s)
        before = dict(plant.counters)
        s = plant.step(t, step_s)
        d = {k: plant.counters[k] - before[k] for k in COUNTERS}
        rows.append({
            "p_grid_kw": (d["e_import_kwh"] - d["e_export_kwh"]) / h,
            "p_batt_kw": (d["e_discharge_kwh"] - d["e_charge_kwh"]) / h,
            "p_pv_kw": d["e_pv_kwh"] / h, "p_curtail_kw": d["e_curtail_kwh"] / h,
            "p_load_kw": d["e_load_kwh"] / h, "soc_frac": s.soc_frac,
            "energy_kwh": s.energy_kwh, "mode": s.mode, **plant.counters,
        })  # fmt: skip
    return pd.DataFrame(rows, index=index)
