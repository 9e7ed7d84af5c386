"""One planning step composed from the pure core: forecast PV and load, complete the forecast
with the tariff's prices and the configured carbon intensity, label billing months, solve.

Role: the composition shared by the CLI, the daemon and the backtest. Imports the pure core
(``tariff``, ``carbon``, ``forecast``, ``optimise``) and the shared types; no I/O, no wall clock.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from dispatch import carbon, tariff
from dispatch.config import SiteConfig
from dispatch.forecast import calibrate, load, load_uncertainty, pv, pv_weather
from dispatch.optimise import DispatchModel
from dispatch.types import Forecast, InputError, Plan

DAY_AHEAD_COLUMN = "day_ahead_per_kwh"
#: Columns ``p_load_kw@0.9`` carry the load's quantile at that level (kW).
LOAD_QUANTILE_PREFIX = "p_load_kw@"
#: Columns ``p_load_kw#7`` carry a path the load may take (kW), here the forecast plus the
#: errors of the one issued 7 days before.
LOAD_SCENARIO_PREFIX = "p_load_kw#"


def split_load_quantiles(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Take the ``p_load_kw@<level>`` columns out of ``frame`` as a quantile frame (columns
    float levels), or None when there are none."""
    names = [c for c in frame.columns if str(c).startswith(LOAD_QUANTILE_PREFIX)]
    if not names:
        return frame, None
    try:
        levels = [float(str(c).removeprefix(LOAD_QUANTILE_PREFIX)) for c in names]
    except ValueError as exc:
        raise InputError(
            f"load quantile columns must be named like 'p_load_kw@0.9': {exc}"
        ) from None
    quantiles = frame[names].set_axis(pd.Index(levels, dtype=float), axis=1)
    return frame.drop(columns=names), quantiles


def split_load_scenarios(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Take the ``p_load_kw#<name>`` columns out of ``frame`` as a frame of load paths
    (columns the names), or None when there are none."""
    names = [c for c in frame.columns if str(c).startswith(LOAD_SCENARIO_PREFIX)]
    if not names:
        return frame, None
    paths = frame[names].set_axis([str(c).removeprefix(LOAD_SCENARIO_PREFIX) for c in names],
                                  axis=1)  # fmt: skip
    return frame.drop(columns=names), paths


def complete_forecast(
    config: SiteConfig, frame: pd.DataFrame, **quantiles: pd.DataFrame
) -> Forecast:
    """A ``Forecast`` with every column the optimiser needs.

    Parameters
    ----------
    config : SiteConfig
        Tariff and carbon configuration.
    frame : pandas.DataFrame
        UTC-indexed ``p_pv_kw`` and ``p_load_kw`` (kW); columns ``price_import_per_kwh``,
        ``price_export_per_kwh`` and ``ci_g_per_kwh`` where given override the configuration;
        ``day_ahead_per_kwh`` feeds a tariff with a day-ahead section.
        Columns ``p_load_kw@<level>`` become the load quantiles, ``p_load_kw#<name>`` the
        load scenarios.
    **quantiles : pandas.DataFrame
        ``load_quantiles_kw`` / ``pv_quantiles_kw`` / ``load_scenarios_kw`` passed through to
        the ``Forecast``.
    """
    out, load_q = split_load_quantiles(frame.copy())
    if load_q is not None:
        quantiles.setdefault("load_quantiles_kw", load_q)
    out, paths = split_load_scenarios(out)
    if paths is not None:
        quantiles.setdefault("load_scenarios_kw", paths)
    index = out.index
    day_ahead = out.pop(DAY_AHEAD_COLUMN) if DAY_AHEAD_COLUMN in out.columns else None
    if "price_import_per_kwh" not in out.columns:
        out["price_import_per_kwh"] = tariff.import_price_per_kwh(config, index, day_ahead)
    if "price_export_per_kwh" not in out.columns:
        out["price_export_per_kwh"] = tariff.export_price_per_kwh(config, index, day_ahead)
    if "ci_g_per_kwh" not in out.columns:
        out["ci_g_per_kwh"] = carbon.grid_intensity_g_per_kwh(config, index)
    return Forecast(out, **quantiles)


def plan(
    model: DispatchModel,
    forecast: Forecast,
    soc_frac: float | None = None,
    peak_so_far_kw: Mapping[str, float] | float = 0.0,
) -> Plan:
    """Solve one step with billing months from the tariff calendar.

    Parameters
    ----------
    model : DispatchModel
        The site's model, built once.
    forecast : Forecast
        A complete forecast (see ``complete_forecast``).
    soc_frac : float, optional
        Measured state of charge (fraction).
    peak_so_far_kw : mapping or float
        Peak import already reached per billing month label ``"YYYY-MM"`` (kW); a float
        applies to the month of the first slot.
    """
    months = tariff.billing_month(model.config, forecast.index).to_numpy()
    return model.solve(forecast, soc_frac, months, peak_so_far_kw)


def forecast_frame(
    config: SiteConfig,
    index: pd.DatetimeIndex,
    weather: pd.DataFrame | None = None,
    load_history_kw: pd.Series | None = None,
    load_kw: float | None = None,
    pv_calibration: calibrate.CalibrationFit | None = None,
) -> pd.DataFrame:
    """PV and load forecasts on ``index`` (UTC period starts at the plan step).

    Parameters
    ----------
    config : SiteConfig
        Site, PV arrays and calendar.
    index : pandas.DatetimeIndex
        The slots to forecast; the first one starts at the issue time.
    weather : pandas.DataFrame, optional
        Weather on ``index`` in pvlib columns and units; clear sky when omitted.
    load_history_kw : pandas.Series, optional
        Measured site load before ``index[0]`` (kW); the load forecast uses it.
    load_kw : float, optional
        A constant load (kW) instead of a forecast from history.
    pv_calibration : CalibrationFit, optional
        Site-level fit to the plant's measured PV (``dispatch calibrate-pv``): scales the
        total and each array alike, then clips the total.

    Returns
    -------
    pandas.DataFrame
        ``p_pv_kw`` (site total), one ``p_pv_<array>_kw`` column per array, ``p_load_kw``;
        from history and with ``plan.peak_risk_quantile`` above the median, also the load's
        quantile at that level from the forecaster's past errors, ``p_load_kw@<level>``, and
        with ``plan.peak_reserve_sizing = "scenarios"`` the paths of those errors on days of
        today's kind, ``p_load_kw#<days back>``.
    """
    if weather is None:
        weather = pv_weather.clearsky_weather(config.site, index)
    arrays = pv.pv_ac_kw(config.site, config.pv, weather) if config.pv else None
    out = pd.DataFrame(index=index)
    out["p_pv_kw"] = 0.0 if arrays is None else arrays["p_pv_kw"]
    ratio = pd.Series(1.0, index=index)
    if pv_calibration is not None and arrays is not None:
        raw = arrays["p_pv_kw"]
        out["p_pv_kw"] = calibrate.apply_calibration(raw, pv_calibration)
        ratio = (out["p_pv_kw"] / raw.where(raw > 0)).fillna(0.0)
    for a in config.pv:
        out[f"p_pv_{a.name}_kw"] = arrays[a.name] * ratio  # type: ignore[index]
    if load_kw is not None:
        out["p_load_kw"] = float(load_kw)
    elif load_history_kw is not None:
        calendar = load.FactoryCalendar.for_load(config)
        risk, step = config.plan.peak_risk_quantile, index[1] - index[0]
        if risk > 0.5:
            with_paths = config.plan.peak_reserve_sizing == "scenarios"
            point, q, *paths = load_uncertainty.forecast_load_with_quantiles(
                load_history_kw, index[0], calendar, len(index), step, levels=(risk,),
                scenarios=with_paths,
            )
            out["p_load_kw"] = point.to_numpy()
            out[f"{LOAD_QUANTILE_PREFIX}{risk:g}"] = q[risk].to_numpy()
            for name, path in (paths[0].items() if paths else ()):
                out[f"{LOAD_SCENARIO_PREFIX}{name}"] = path.to_numpy()
        else:
            out["p_load_kw"] = load.forecast_load(
                load_history_kw, index[0], calendar, len(index), step
            ).to_numpy()
    else:
        raise InputError("a load forecast needs measured load history or a constant load")
    return out


def calibrate_pv(
    config: SiteConfig, measured_kw: pd.Series, weather: pd.DataFrame | None = None
) -> calibrate.CalibrationFit:
    """Fit the site's PV model to its measured PV power.

    Parameters
    ----------
    config : SiteConfig
        Site and arrays.
    measured_kw : pandas.Series
        Measured site PV (kW), UTC period starts at a fixed step.
    weather : pandas.DataFrame, optional
        Measured or reanalysis weather on the same index; clear sky when omitted (then the
        fit also absorbs the weather, so use clear days or a long period).
    """
    index = pd.DatetimeIndex(measured_kw.index)
    if weather is None:
        weather = pv_weather.clearsky_weather(config.site, index)
    modelled = pv.pv_ac_kw(config.site, config.pv, weather)["p_pv_kw"]
    return calibrate.fit_calibration(measured_kw, modelled)
