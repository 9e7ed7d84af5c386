"""One planning step composed from the pure core: forecast PV and load (``forecast``),
complete the forecast with the tariff's prices and the carbon intensity, label billing months,
solve.

Role: the composition shared by the CLI, the daemon and its replays. Imports the pure core
(``tariff``, ``carbon``, ``forecast``, ``optimise``) and the shared types; no I/O, no wall clock.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd

from dispatch import tariff
from dispatch.carbon import accounting
from dispatch.config import SiteConfig
from dispatch.forecast import calibrate, pv, pv_weather
from dispatch.optimise import DispatchModel
from dispatch.pipeline.forecast import (
    DAY_AHEAD_COLUMN,
    LOAD_QUANTILE_PREFIX,
    LOAD_SCENARIO_PREFIX,
    SiteForecast,
    errors_from_history,
    forecast_frame,
    measured_net_kw,
    site_forecast,
)
from dispatch.types import Forecast, InputError, Plan, float_frame

__all__ = ["DAY_AHEAD_COLUMN", "LOAD_QUANTILE_PREFIX", "LOAD_SCENARIO_PREFIX", "SiteForecast",
           "calibrate_pv", "complete_columns", "complete_forecast", "errors_from_history",
           "forecast_frame", "measured_net_kw", "plan", "site_forecast", "split_load_quantiles",
           "split_load_scenarios"]  # fmt: skip


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


def _plain_floats(frame: pd.DataFrame) -> bool:
    """Whether ``frame``'s columns are uniquely named, unnamed as a whole and all float64."""
    columns = frame.columns
    floats = all(dtype == np.float64 for dtype in frame.dtypes)
    return columns.name is None and columns.is_unique and floats


def _split_columns(
    index: pd.DatetimeIndex, columns: Mapping[object, np.ndarray]
) -> tuple[dict[object, np.ndarray], pd.DataFrame | None, pd.DataFrame | None]:
    """``split_load_quantiles`` then ``split_load_scenarios`` of float columns by name: the
    other columns' values by name, the quantiles and the paths (frames on ``index``)."""
    names = {key: str(key) for key in columns}
    q = [k for k, c in names.items() if c.startswith(LOAD_QUANTILE_PREFIX)]
    p = [k for k, c in names.items() if c.startswith(LOAD_SCENARIO_PREFIX)]
    quantiles = paths = None
    if q:
        try:
            levels = [float(names[k].removeprefix(LOAD_QUANTILE_PREFIX)) for k in q]
        except ValueError as exc:
            raise InputError(
                f"load quantile columns must be named like 'p_load_kw@0.9': {exc}"
            ) from None
        values = np.column_stack([columns[k] for k in q]).astype(float, copy=False)
        quantiles = pd.DataFrame(values, index=index, columns=pd.Index(levels, dtype=float))
    if p:
        labels = [names[k].removeprefix(LOAD_SCENARIO_PREFIX) for k in p]
        values = np.column_stack([columns[k] for k in p]).astype(float, copy=False)
        paths = pd.DataFrame(values, index=index, columns=labels)
    split = set(q) | set(p)
    rest = {k: np.asarray(v, dtype=float) for k, v in columns.items() if k not in split}
    return rest, quantiles, paths


def _prices_and_intensity(
    config: SiteConfig,
    index: pd.DatetimeIndex,
    have: Collection[object],
    day_ahead: pd.Series | None,
) -> dict[str, pd.Series]:
    """The import and export prices and the grid intensity on ``index`` that a forecast with
    the columns ``have`` lacks, in that order."""
    out = {}
    if "price_import_per_kwh" not in have and "price_export_per_kwh" not in have:
        both = tariff.prices_per_kwh(config, index, day_ahead)  # one check of the inputs
        out["price_import_per_kwh"], out["price_export_per_kwh"] = both
    elif "price_import_per_kwh" not in have:
        out["price_import_per_kwh"] = tariff.import_price_per_kwh(config, index, day_ahead)
    elif "price_export_per_kwh" not in have:
        out["price_export_per_kwh"] = tariff.export_price_per_kwh(config, index, day_ahead)
    if "ci_g_per_kwh" not in have:
        out["ci_g_per_kwh"] = accounting.grid_intensity_g_per_kwh(config, index)
    return out


def complete_forecast(
    config: SiteConfig,
    frame: pd.DataFrame,
    issued_at: pd.Timestamp | None = None,
    **quantiles: pd.DataFrame,
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
    issued_at : pandas.Timestamp, optional
        When the forecast was made (``Forecast.issued_at``).
    **quantiles : pandas.DataFrame
        ``load_quantiles_kw`` / ``pv_quantiles_kw`` / ``load_scenarios_kw`` passed through to
        the ``Forecast``.
    """
    if _plain_floats(frame):
        values = frame.to_numpy(dtype=float, copy=True)
        columns = {c: values[:, i] for i, c in enumerate(frame.columns)}
        return complete_columns(config, frame.index, columns, issued_at, **quantiles)
    out, load_q = split_load_quantiles(frame.copy())
    out, paths = split_load_scenarios(out)
    index = out.index
    day_ahead = out.pop(DAY_AHEAD_COLUMN) if DAY_AHEAD_COLUMN in out.columns else None
    for name, values in _prices_and_intensity(config, index, out.columns, day_ahead).items():
        out[name] = values
    return _forecast(out, load_q, paths, issued_at, quantiles)


def complete_columns(
    config: SiteConfig,
    index: pd.DatetimeIndex,
    columns: Mapping[object, np.ndarray],
    issued_at: pd.Timestamp | None = None,
    **quantiles: pd.DataFrame,
) -> Forecast:
    """``complete_forecast`` of the float columns ``columns`` (arrays by name, uniquely named,
    one value per stamp of the UTC ``index``), without a frame in between: what the plan job
    builds its forecast from."""
    rest, load_q, paths = _split_columns(index, columns)
    da = rest.pop(DAY_AHEAD_COLUMN, None)
    day_ahead = None if da is None else pd.Series(da, index=index, name=DAY_AHEAD_COLUMN)
    for name, values in _prices_and_intensity(config, index, rest, day_ahead).items():
        aligned = values if values.index.equals(index) else values.reindex(index)
        rest[name] = aligned.to_numpy()
    out = float_frame(rest, index)  # one frame, built once
    return _forecast(out, load_q, paths, issued_at, quantiles)


def _forecast(
    out: pd.DataFrame, load_q: pd.DataFrame | None, paths: pd.DataFrame | None,
    issued_at: pd.Timestamp | None, quantiles: dict[str, pd.DataFrame],
) -> Forecast:
    """The ``Forecast`` of a completed frame with its split quantiles and paths (those
    given in ``quantiles`` win)."""
    if load_q is not None:
        quantiles.setdefault("load_quantiles_kw", load_q)
    if paths is not None:
        quantiles.setdefault("load_scenarios_kw", paths)
    return Forecast(out, **quantiles, issued_at=issued_at)


def plan(
    model: DispatchModel,
    forecast: Forecast,
    soc_frac: float | None = None,
    peak_so_far_kw: Mapping[str, float] | float = 0.0,
    held_target_kw: Mapping[str, float] | None = None,
    import_cap_kw: float | None = None,
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
    held_target_kw : mapping, optional
        The peak target the live guard holds per billing month (kW), the plan in force's;
        the peak reserve is sized on it.
    import_cap_kw : float, optional
        A (soft) cap on the planned import below ``grid.import_max_kw`` (kW), every slot.
    """
    months = tariff.billing_month(model.config, forecast.index).to_numpy()
    caps = None
    if import_cap_kw is not None:
        caps = {"import_cap_kw": np.full(len(forecast.index), float(import_cap_kw))}
    return model.solve(forecast, soc_frac, months, peak_so_far_kw, caps,
                       held_target_kw=held_target_kw)  # fmt: skip


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
