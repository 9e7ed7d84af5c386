"""Pure carbon arithmetic: grid intensity per slot and Scope 2 emissions accounting.

Role: turn measured (or simulated) site flows and the grid intensity known for each interval
into location-based and market-based Scope 2 emissions, avoided emissions and battery losses.
May import only ``dispatch.types``, ``dispatch.config``, numpy and pandas; no I/O, no wall
clock.

Methods (``METHOD_VERSION``), per interval of ``dt`` hours with site-bus powers:

- **location-based**: ``import_kwh * ci / 1000`` (kg), ``ci`` the interval's intensity from the
  frame's ``ci_g_per_kwh`` where finite, else the configured profile or factor. Exports carry
  no emissions and earn no credit: they are kept out of the site's footprint.
- **no-battery counterfactual**: the same site, same PV and load, no battery:
  ``grid = load - pv_available`` (``pv_available`` = PV used + curtailed); a surplus is exported
  up to the export limit and curtailed beyond it. Its emissions use the same intensity.
- **avoided by PV** = ``(load - no-battery import) * ci`` = PV consumed directly by the load in
  the counterfactual times the intensity. PV that reaches the load through the battery is
  credited to the battery, at the intensity of the hour it displaces.
- **avoided by the battery** = no-battery emissions - actual emissions (negative when the
  battery adds emissions). So ``load * ci = actual + avoided_pv + avoided_battery`` exactly.
- **battery losses**: charged - discharged energy over a period (it includes the change of
  stored energy, negligible over long periods); their emissions are the losses times the
  average intensity of the charged energy, where charging is fed first by the interval's PV
  surplus and the rest by the grid (see ``battery_losses``).
- **market-based**: certificates and the residual mix, in ``dispatch.carbon.market``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dispatch.config import SiteConfig
from dispatch.types import InputError, check_time_index

METHOD_VERSION = "scope2-v1"
FLOW_COLUMNS = ("p_grid_kw", "p_batt_kw", "p_pv_kw", "p_load_kw")
KWH_COLUMNS = (
    "load_kwh", "pv_kwh", "curtail_kwh", "import_kwh", "export_kwh", "charge_kwh",
    "discharge_kwh", "charge_grid_kwh", "pv_direct_kwh", "nobatt_import_kwh",
    "nobatt_export_kwh",
)
KG_COLUMNS = (
    "location_kg_co2", "nobatt_kg_co2", "nopv_kg_co2", "avoided_pv_kg_co2",
    "avoided_battery_kg_co2", "charge_grid_kg_co2",
)
ACCOUNT_COLUMNS = (*KWH_COLUMNS, "ci_g_per_kwh", "ci_source", *KG_COLUMNS)
METHOD_NOTES = {  # one line per method, stated in every report
    "location": "grid imports x the intensity known for each interval (series, else the "
    "configured profile or factor); exports carry no emissions and no credit",
    "market": "certificates cover imports in their validity window pro rata to the uncovered "
    "imports (soonest-expiring first) at their own factor; the rest counts at the "
    "residual mix factor, or the interval's intensity when none is configured",
    "avoided_pv": "(load - no-battery import) x intensity: PV used directly by the load",
    "avoided_battery": "no-battery emissions - actual location-based emissions; no-battery grid "
    "= load - available PV, surplus exported up to the export limit",
    "battery_losses": "charged - discharged energy in the period, at the average intensity of "
    "the charged energy (PV surplus first, then grid)",
    "net": "basis emissions - offsets retired in the period; avoided emissions are not netted",
    "trend": "least-squares line through the monthly basis emissions of the last 12 months "
    "with data up to the period's end; target-year months without data are projected",
}


def grid_intensity_g_per_kwh(config: SiteConfig, index: pd.DatetimeIndex) -> pd.Series:
    """Configured grid carbon intensity for each slot (g CO2 per kWh).

    The 24-value hourly profile (site-local hour of the slot start) when configured, else the
    constant grid emission factor.

    Parameters
    ----------
    config : SiteConfig
        The site; ``carbon`` and ``site.timezone`` are used.
    index : pandas.DatetimeIndex
        UTC period starts at a fixed step.
    """
    check_time_index(index, "carbon intensity index")
    return _configured_intensity(config, index)


def _configured_intensity(config: SiteConfig, index: pd.DatetimeIndex) -> pd.Series:
    profile = config.carbon.hourly_profile_g_per_kwh
    if profile is None:
        values = np.full(len(index), config.carbon.grid_ci_g_per_kwh)
    else:
        hours = index.tz_convert(config.site.timezone).hour
        values = np.asarray(profile, dtype=float)[np.asarray(hours)]
    return pd.Series(values, index=index, name="ci_g_per_kwh")


def interval_intensity(frame: pd.DataFrame, config: SiteConfig) -> tuple[np.ndarray, np.ndarray]:
    """The intensity known for each interval and where it came from.

    Parameters
    ----------
    frame : pandas.DataFrame
        UTC-indexed at a fixed step; an optional ``ci_g_per_kwh`` column (g CO2/kWh, NaN where
        unknown).
    config : SiteConfig
        Supplies the configured profile or factor for intervals without a series value.

    Returns
    -------
    tuple of numpy.ndarray
        Intensity (g CO2/kWh) and its source per interval: ``"series"``, ``"config_profile"``
        or ``"config_factor"``.
    """
    configured = _configured_intensity(config, pd.DatetimeIndex(frame.index)).to_numpy(float)
    fallback = (
        "config_factor" if config.carbon.hourly_profile_g_per_kwh is None else "config_profile"
    )
    if "ci_g_per_kwh" in frame.columns:
        series = frame["ci_g_per_kwh"].to_numpy(float)
    else:
        series = np.full(len(frame), np.nan)
    known = np.isfinite(series)
    if (series[known] < 0).any():
        i = int(np.flatnonzero(known & (series < 0))[0])
        raise InputError(
            f"carbon: ci_g_per_kwh is negative ({series[i]}) at {frame.index[i].isoformat()}"
        )
    ci = np.where(known, series, configured)
    source = np.where(known, "series", fallback).astype(object)
    return ci, source


def _flows(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    missing = [c for c in FLOW_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"carbon: missing flow column(s) {missing}")
    cols = (*FLOW_COLUMNS, "p_curtail_kw")
    out = {
        c: frame[c].to_numpy(float) if c in frame.columns else np.zeros(len(frame)) for c in cols
    }
    for name, values in out.items():
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise InputError(f"carbon: {name} is not finite at {frame.index[bad[0]].isoformat()}")
        if name not in ("p_grid_kw", "p_batt_kw") and (values < 0).any():
            i = int(np.flatnonzero(values < 0)[0])
            raise InputError(
                f"carbon: {name} must be >= 0, got {values[i]} at {frame.index[i].isoformat()}"
            )
    return out


def _step_hours(index: pd.Index, step: pd.Timedelta | None) -> float:
    """Interval length (h): the index's fixed step, or ``step`` for any sorted UTC index."""
    if step is None:
        return check_time_index(index, "carbon flows") / pd.Timedelta(hours=1)
    ok = isinstance(index, pd.DatetimeIndex) and str(index.tz) == "UTC"
    if not ok or not index.is_monotonic_increasing or not index.is_unique:
        raise InputError("carbon flows: the index must be sorted, unique, tz-aware UTC stamps")
    if step <= pd.Timedelta(0):
        raise InputError(f"carbon flows: step must be positive, got {step}")
    return step / pd.Timedelta(hours=1)


def interval_accounting(
    frame: pd.DataFrame, config: SiteConfig, step: pd.Timedelta | None = None
) -> pd.DataFrame:
    """Per-interval energy flows and location-based, counterfactual and avoided emissions.

    Parameters
    ----------
    frame : pandas.DataFrame
        Indexed by UTC period start at a fixed step (``dt`` hours). Columns ``p_grid_kw``
        (> 0 import), ``p_batt_kw`` (> 0 discharge), ``p_pv_kw`` (PV used, >= 0),
        ``p_load_kw`` (>= 0), optional ``p_curtail_kw`` (kW, default 0) and ``ci_g_per_kwh``.
    config : SiteConfig
        Intensity fallback and the export limit of the no-battery counterfactual.
    step : pandas.Timedelta, optional
        Interval length, for a frame of one interval or with gaps; by default the index's
        fixed step.

    Returns
    -------
    pandas.DataFrame
        Same index, columns ``ACCOUNT_COLUMNS``: energies (kWh), ``ci_g_per_kwh``,
        ``ci_source`` and emissions (kg CO2), as described in the module docstring.
    """
    dt_h = _step_hours(frame.index, step)
    f = _flows(frame)
    ci, source = interval_intensity(frame, config)
    grid, batt, pv, load = f["p_grid_kw"], f["p_batt_kw"], f["p_pv_kw"], f["p_load_kw"]
    pv_avail = pv + f["p_curtail_kw"]
    nb_grid = load - pv_avail
    nb_surplus = np.maximum(-nb_grid, 0.0)
    charge = np.maximum(-batt, 0.0)
    charge_grid = np.maximum(charge - np.maximum(pv - load, 0.0), 0.0)
    kwh = {
        "load_kwh": load, "pv_kwh": pv, "curtail_kwh": f["p_curtail_kw"],
        "import_kwh": np.maximum(grid, 0.0), "export_kwh": np.maximum(-grid, 0.0),
        "charge_kwh": charge, "discharge_kwh": np.maximum(batt, 0.0),
        "charge_grid_kwh": charge_grid, "pv_direct_kwh": np.minimum(load, pv_avail),
        "nobatt_import_kwh": np.maximum(nb_grid, 0.0),
        "nobatt_export_kwh": np.minimum(nb_surplus, config.grid.export_limit_kw),
    }  # fmt: skip
    out = {k: v * dt_h for k, v in kwh.items()}
    kg = {
        "location_kg_co2": out["import_kwh"] * ci / 1000.0,
        "nobatt_kg_co2": out["nobatt_import_kwh"] * ci / 1000.0,
        "nopv_kg_co2": out["load_kwh"] * ci / 1000.0,
        "charge_grid_kg_co2": out["charge_grid_kwh"] * ci / 1000.0,
    }
    kg["avoided_pv_kg_co2"] = kg["nopv_kg_co2"] - kg["nobatt_kg_co2"]
    kg["avoided_battery_kg_co2"] = kg["nobatt_kg_co2"] - kg["location_kg_co2"]
    data = {**out, "ci_g_per_kwh": ci, "ci_source": source, **kg}
    return pd.DataFrame({c: data[c] for c in ACCOUNT_COLUMNS}, index=frame.index)


def battery_losses(accounts: pd.DataFrame) -> dict[str, float]:
    """Battery round-trip losses over the intervals given and their emissions.

    ``loss_kwh = charged - discharged``; ``loss_kg_co2 = loss_kwh * (grid-charged kg /
    charged kWh)``, the average intensity of the charged energy (PV-charged energy is free).

    Parameters
    ----------
    accounts : pandas.DataFrame
        With ``charge_kwh``, ``discharge_kwh`` and ``charge_grid_kg_co2``.

    Returns
    -------
    dict
        ``charge_kwh``, ``discharge_kwh``, ``loss_kwh``, ``charge_ci_g_per_kwh`` and
        ``loss_kg_co2``.
    """
    charged = float(accounts["charge_kwh"].sum())
    discharged = float(accounts["discharge_kwh"].sum())
    charge_kg = float(accounts["charge_grid_kg_co2"].sum())
    ci = 1000.0 * charge_kg / charged if charged > 0 else 0.0
    loss = charged - discharged
    return {
        "charge_kwh": charged,
        "discharge_kwh": discharged,
        "loss_kwh": loss,
        "charge_ci_g_per_kwh": ci,
        "loss_kg_co2": loss * ci / 1000.0,
    }


def project_year(monthly_t_co2: dict[int, float], last_month: int, year: int) -> dict[str, float]:
    """Emissions of a calendar year at the current linear trend.

    The trend is a least-squares line through the monthly emissions of the last 12 months
    with data up to ``last_month`` (flat with a single month). Each month of ``year`` takes
    its recorded value when it has one up to ``last_month``, else the line's value, never
    below zero. Months are numbered ``year * 12 + month - 1``.

    Parameters
    ----------
    monthly_t_co2 : dict of int to float
        Recorded emissions per month number (t CO2).
    last_month : int
        The last month that may be used (the report period's end).
    year : int
        The year to project.

    Returns
    -------
    dict
        ``trend_months`` (months used), ``trend_slope_t_co2_per_month`` and
        ``year_t_co2``; empty when no month in the window has data.
    """
    known = {k: v for k, v in monthly_t_co2.items() if k <= last_month}
    window = sorted(k for k in known if k > last_month - 12)
    if not window:
        return {}
    y = np.array([known[k] for k in window])
    if len(window) > 1:
        slope, icept = np.polyfit(np.array(window, dtype=float), y, 1)
    else:
        slope, icept = 0.0, float(y[0])
    months = range(year * 12, year * 12 + 12)
    values = [known[k] if k in known else max(slope * k + icept, 0.0) for k in months]
    return {
        "trend_months": len(window),
        "trend_slope_t_co2_per_month": float(slope),
        "year_t_co2": float(sum(values)),
    }
