"""Checks of a site config that a schema cannot make: plausibility, the solver, the watchdog.

Role: what ``dispatch check-config`` and ``dispatch run`` ask before a site goes live.

- ``plausibility_warnings``: values that validate but are probably typed in the wrong unit
  (a power in W in a kW key, an energy in MWh in a kWh key), said so, not refused;
- ``check_solver``: the configured solver and its options solve the site's own program once
  (a flat day), so a solver that is not installed or an option it rejects is a config error
  at commissioning, not a fallback plan every step;
- ``check_watchdog``: the control period must feed the systemd watchdog (the daemon feeds it
  after each completed control cycle), with room for one slow cycle.

Imports the config, ``optimise`` and ``types``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dispatch.config import SiteConfig
from dispatch.optimise import DispatchModel
from dispatch.pipeline import complete_forecast
from dispatch.types import ConfigError, DispatchError, Forecast

__all__ = ["C_RATE_RANGE_PER_H", "SHIPPED_WATCHDOG_S", "check_solver", "check_watchdog",
           "plausibility_warnings"]

#: Battery power over energy (per hour) outside this range is flagged: stationary storage
#: runs from about 0.1 C (long duration) to about 2 C (fast frequency response).
C_RATE_RANGE_PER_H = (0.05, 4.0)
#: WatchdogSec of the shipped unit (systemd/dispatch.service), s.
SHIPPED_WATCHDOG_S = 60.0


def plausibility_warnings(config: SiteConfig) -> list[str]:
    """One line per value that is valid but implausible, naming the keys and the likely
    slip."""
    b, out = config.battery, []
    lo, hi = C_RATE_RANGE_PER_H
    for key in ("charge_max_kw", "discharge_max_kw"):
        c_rate = getattr(b, key) / b.energy_kwh
        if not lo <= c_rate <= hi:
            out.append(
                f"battery.{key} = {getattr(b, key):g} kW over battery.energy_kwh = "
                f"{b.energy_kwh:g} kWh is {c_rate:.3g} C (per hour); storage runs at {lo:g}-"
                f"{hi:g} C: is a power in W or an energy in MWh? (both keys are kW and kWh)"
            )
    kwp = config.pv_dc_kwp
    if kwp > 50 * max(config.grid.import_max_kw, 1.0):
        out.append(
            f"pv arrays total {kwp:g} kWp against grid.import_max_kw = "
            f"{config.grid.import_max_kw:g} kW: is a power in W? (both keys are kW)"
        )
    return out


def check_solver(config: SiteConfig) -> None:
    """Solve the site's own program once on a flat day (load at half the import limit, no
    PV, the tariff's prices) with ``plan.solver`` and ``plan.solver_options``.

    Raises
    ------
    ConfigError
        Naming ``plan.solver`` / ``plan.solver_options`` when the solver is not installed,
        rejects an option or fails on a program that has a solution.
    """
    n = config.plan.n_slots
    index = pd.date_range("2026-01-05", periods=n, freq=f"{config.plan.step_min}min", tz="UTC")
    load_kw = np.full(n, 0.5 * config.grid.import_max_kw)
    frame = pd.DataFrame({"p_load_kw": load_kw, "p_pv_kw": np.zeros(n)}, index=index)
    if config.uses_day_ahead:
        frame["day_ahead_per_kwh"] = 0.1
    forecast: Forecast = complete_forecast(config, frame)
    plan_cfg = config.plan
    where = f"plan.solver = {plan_cfg.solver!r}, plan.solver_options = {plan_cfg.solver_options}"
    try:
        plan = DispatchModel(config).solve(forecast, soc_frac=0.5, peak_so_far_kw=0.0)
    except (DispatchError, ValueError, TypeError, RuntimeError) as exc:
        raise ConfigError(f"{where}: the solver cannot be used: {exc}") from None
    if plan.is_fallback:
        raise ConfigError(f"{where}: a test solve of a flat day failed: {plan.message}")


def check_watchdog(config: SiteConfig, watchdog_s: float | None) -> None:
    """Refuse a control period that cannot feed a watchdog of ``watchdog_s`` seconds (None:
    no watchdog): a cycle may take up to its period, so the period must be at most half of
    the watchdog.

    Raises
    ------
    ConfigError
        Naming ``control.cycle_s`` and the watchdog.
    """
    if watchdog_s is None:
        return
    if config.control.cycle_s > watchdog_s / 2:
        raise ConfigError(
            f"control.cycle_s = {config.control.cycle_s:g} s cannot feed the systemd watchdog "
            f"of {watchdog_s:g} s (WatchdogSec; fed after each control cycle): keep it at most "
            f"{watchdog_s / 2:g} s, or raise WatchdogSec to at least twice the cycle"
        )
