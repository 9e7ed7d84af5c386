"""The site forecast composed: PV (weather chain or persistence, intra-day correction,
calibration), load (from measured history, with a warm-up fallback) and the load's margin from
the controller's own past errors.

Role: the forecast half of the one path. The daemon's plan job calls ``site_forecast`` with
what it has at ``now`` (measured history, the weather feed's answer, the error book); the CLI
(``dispatch forecast``) calls ``forecast_frame`` with files. Replays run the daemon's jobs, so
they call it the same way. Pure: no I/O, no wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dispatch.config import SiteConfig
from dispatch.forecast import calibrate, curtailment, intraday, load
from dispatch.forecast.uncertainty import ForecastErrors
from dispatch.pipeline.clear_sky import ClearSkyPV, chain
from dispatch.types import InputError, float_frame

DAY_AHEAD_COLUMN = "day_ahead_per_kwh"
#: Columns ``p_load_kw@0.9`` carry the load's quantile at that level (kW).
LOAD_QUANTILE_PREFIX = "p_load_kw@"
#: Columns ``p_load_kw#3`` carry a path the load may take (kW): the forecast plus the errors
#: of a past forecast issued at the same time of day.
LOAD_SCENARIO_PREFIX = "p_load_kw#"
#: Less measured load than this and the load forecast is the warm-up fallback: a constant at
#: the recent level, from which no peak target is derived (``dispatch.daemon.planning``).
WARMUP_HISTORY = pd.Timedelta(days=1)
#: The warm-up level is the mean load over this much of the latest history.
LEVEL_WINDOW = pd.Timedelta(hours=1)


@dataclass(frozen=True)
class SiteForecast:
    """A forecast frame and what it was made of.

    Attributes
    ----------
    frame : pandas.DataFrame
        ``p_pv_kw`` (site total), ``p_pv_<array>_kw`` where the weather chain made it,
        ``p_load_kw``, and the load's quantile and path columns.
    notes : tuple of str
        One phrase per part (``"pv: weather open_meteo, intra-day x0.82"``, ...).
    warmup : str or None
        Why the load forecast is a warm-up fallback, None when it is not.
    """

    frame: pd.DataFrame
    notes: tuple[str, ...]
    warmup: str | None = None

    @property
    def source(self) -> str:
        """The notes as one line."""
        return "; ".join(self.notes)


def available_pv_history(
    config: SiteConfig, measured_kw: pd.Series, limited: pd.Series, clear_sky: ClearSkyPV
) -> pd.Series:
    """Measured PV (kW) with the slots where export was at the limit raised to the PV that
    was available (``dispatch.forecast.curtailment``); what persistence, the intra-day
    correction and the error book learn from."""
    if measured_kw.empty or not limited.any():
        return measured_kw
    return curtailment.available_pv_kw(measured_kw, limited, clear_sky.on(measured_kw.index),
                                       config.site.timezone)


def _covers(weather: pd.DataFrame | None, index: pd.DatetimeIndex) -> bool:
    return weather is not None and bool(index.isin(weather.index).all())


def pv_forecast(
    config: SiteConfig,
    index: pd.DatetimeIndex,
    weather: pd.DataFrame | None = None,
    pv_history_kw: pd.Series | None = None,
    fit: calibrate.CalibrationFit | None = None,
    clear_sky: ClearSkyPV | None = None,
) -> tuple[pd.DataFrame, str]:
    """PV on ``index`` by ``forecast.pv_source``, corrected intra-day by ``forecast.pv_intraday``.

    Parameters
    ----------
    config : SiteConfig
        Arrays and the ``[forecast]`` choices.
    index : pandas.DatetimeIndex
        The forecast's slots; ``index[0]`` is the issue slot.
    weather : pandas.DataFrame, optional
        Weather in pvlib columns covering ``index`` (and, for the intra-day correction, the
        window before it); clear sky when omitted.
    pv_history_kw : pandas.Series, optional
        Measured site PV (kW) per slot before ``index[0]``.
    fit : CalibrationFit, optional
        ``dispatch calibrate-pv``'s fit, applied to the weather chain.
    clear_sky : ClearSkyPV, optional
        The site's clear-sky chain kept per day (the same values, computed once a day).

    Returns
    -------
    frame, note
        ``p_pv_kw`` (and per-array columns from the chain) (kW); what it was made of.
    """
    fc, step = config.forecast, index[1] - index[0]
    past = intraday.recent_slots(index[0], step)
    history = pv_history_kw if pv_history_kw is not None else pd.Series(dtype=float)
    if fc.pv_source == "persistence":
        values, expected_past, how = _persistence(fc.pv_persistence, history, index, past)
        if np.isfinite(values).any():
            known = np.isfinite(values)
            if not known.all():
                clear = chain(config, index, None, None, clear_sky)["p_pv_kw"].to_numpy()
                values = np.where(known, values, clear)
            frame = pd.DataFrame({"p_pv_kw": values}, index=index)
            note = "pv: persistence" + ("" if known.all() else " (gaps from clear sky)") + how
            return _intraday(config, frame, history, past, expected_past, note)
        note = "pv: persistence has no PV measured a day ago, clear sky"
        weather = None
    else:
        note = "pv: weather" if weather is not None else "pv: clear sky"
    frame = chain(config, index, weather, fit, clear_sky)
    if not fc.pv_intraday or pv_history_kw is None:
        return frame, note
    basis = weather if _covers(weather, past) else None
    if weather is not None and basis is None:
        return frame, note + " (no weather for the last hours: no intra-day correction)"
    expected_past = chain(config, past, basis, fit, clear_sky)["p_pv_kw"].to_numpy()
    return _intraday(config, frame, history, past, expected_past, note)


def _persistence(
    how: str, history: pd.Series, index: pd.DatetimeIndex, past: pd.DatetimeIndex
) -> tuple[np.ndarray, np.ndarray, str]:
    """PV by persistence (``forecast.pv_persistence``) on ``index`` and on the recent slots
    ``past`` the intra-day ratio compares (kW), and a note of the blend's carry-over."""
    if how == "blend":
        rho = intraday.daily_persistence(history, index)
        values = intraday.blended_day_before(history, index, rho)
        expected_past = intraday.blended_day_before(history, past, rho)
        return values, expected_past, f", blended (day-to-day carry-over {rho:.2f})"
    a_day_back_ns = intraday.stamps_ns(past) - intraday.DAY.value
    return intraday.day_before(history, index), intraday.values_at(history, a_day_back_ns), ""


def _intraday(config: SiteConfig, frame: pd.DataFrame, history: pd.Series,
              past: pd.DatetimeIndex, expected_past_kw: np.ndarray,
              note: str) -> tuple[pd.DataFrame, str]:  # fmt: skip
    """Apply the intra-day correction (when configured) to every PV column of ``frame``."""
    if not config.forecast.pv_intraday:
        return frame, note
    measured = intraday.values_at(history, intraday.stamps_ns(past))
    ratio = intraday.intraday_ratio(measured, expected_past_kw)
    if ratio is None:
        return frame, note
    dt_h = (frame.index[1] - frame.index[0]).total_seconds() / 3600.0
    corrected = {c: intraday.corrected_kw(frame[c].to_numpy(), ratio, dt_h) for c in frame.columns}
    return pd.DataFrame(corrected, index=frame.index), f"{note}, intra-day x{ratio:.2f}"


def _warmup_level(history: pd.Series | None, now_kw: float | None) -> tuple[float, str]:
    """The recent mean load (kW) and why the history is not enough; with no history, the
    load measured now (``now_kw``), else 0."""
    finite = history.dropna() if history is not None else pd.Series(dtype=float)
    if finite.empty:
        if now_kw is not None and np.isfinite(now_kw):
            return max(float(now_kw), 0.0), "warm-up: no load history yet, the load measured now"
        return 0.0, "warm-up: no measured load yet"
    span = finite.index[-1] - finite.index[0]
    recent = finite[finite.index > finite.index[-1] - LEVEL_WINDOW]
    return float(recent.mean()), (
        f"warm-up: {span / pd.Timedelta(hours=1):.1f} h of measured load, "
        f"{WARMUP_HISTORY / pd.Timedelta(hours=1):g} h needed"
    )


def load_forecast(
    config: SiteConfig,
    index: pd.DatetimeIndex,
    history_kw: pd.Series | None = None,
    load_kw: float | None = None,
    now_kw: float | None = None,
    calendar: load.FactoryCalendar | None = None,
) -> tuple[pd.Series, str, str | None]:
    """The expected load on ``index`` (kW), what it is, and why it is a warm-up fallback.

    A constant ``load_kw`` when given; from ``history_kw`` (``dispatch.forecast.load``) once
    it spans ``WARMUP_HISTORY``; before that, the warm-up fallback: the mean of the last hour
    measured, or with no history the load measured now (``now_kw``), else 0 kW.
    ``calendar`` is the site's load calendar (``FactoryCalendar.for_load``) when the caller
    keeps one.
    """
    if load_kw is not None:
        return pd.Series(float(load_kw), index=index), f"load: constant {load_kw:g} kW", None
    finite = history_kw.dropna() if history_kw is not None else pd.Series(dtype=float)
    if len(finite) and finite.index[-1] - finite.index[0] >= WARMUP_HISTORY - (index[1] - index[0]):
        calendar = calendar or load.FactoryCalendar.for_load(config)
        point = load.forecast_load(finite, index[0], calendar, len(index), index[1] - index[0])
        days = (finite.index[-1] - finite.index[0]) / pd.Timedelta(days=1)
        return point.set_axis(index), f"load: history {days:.1f} d", None
    level, why = _warmup_level(history_kw, now_kw)
    return pd.Series(level, index=index), f"load: constant {level:.1f} kW ({why})", why


def site_forecast(
    config: SiteConfig,
    index: pd.DatetimeIndex,
    *,
    weather: pd.DataFrame | None = None,
    weather_note: str | None = None,
    load_history_kw: pd.Series | None = None,
    pv_history_kw: pd.Series | None = None,
    load_kw: float | None = None,
    pv_calibration: calibrate.CalibrationFit | None = None,
    errors: ForecastErrors | None = None,
    load_now_kw: float | None = None,
    calendar: load.FactoryCalendar | None = None,
    clear_sky: ClearSkyPV | None = None,
) -> SiteForecast:
    """PV, load and the load's margin on ``index`` (UTC slot starts from the issue slot).

    Parameters
    ----------
    config : SiteConfig
        The site.
    index : pandas.DatetimeIndex
        The slots; ``index[0]`` is the issue slot, history is read only before it.
    weather : pandas.DataFrame, optional
        Weather in pvlib columns (see ``pv_forecast``); clear sky when omitted.
    weather_note : str, optional
        Where the weather came from, for the notes.
    load_history_kw, pv_history_kw : pandas.Series, optional
        Measured load and PV (kW) per slot before ``index[0]``.
    load_kw : float, optional
        A constant load (kW) instead of a forecast.
    pv_calibration : CalibrationFit, optional
        Applied to the weather chain's PV.
    errors : ForecastErrors, optional
        The controller's past errors; with ``plan.peak_risk_quantile`` above the median the
        frame carries ``p_load_kw@<level>`` (the load plus the net load's margin) and, with
        ``plan.peak_reserve_sizing = "scenarios"``, load paths ``p_load_kw#<n>``.
    load_now_kw : float, optional
        The load measured now (kW): the warm-up level while there is no load history.
    calendar : FactoryCalendar, optional
        The site's load calendar, when the caller keeps one.
    clear_sky : ClearSkyPV, optional
        The site's clear-sky chain kept per day, when the caller keeps one.
    """
    pv_frame, pv_note = pv_forecast(
        config, index, weather, pv_history_kw, pv_calibration, clear_sky
    )
    if weather_note and config.forecast.pv_source == "weather":
        pv_note = f"{pv_note} ({weather_note})"
    point, load_note, warmup = load_forecast(config, index, load_history_kw, load_kw,
                                             load_now_kw, calendar)  # fmt: skip
    columns = {c: pv_frame[c].to_numpy() for c in pv_frame.columns}
    columns["p_load_kw"] = load_point = point.to_numpy()
    plan = config.plan
    if errors is not None and load_kw is None and plan.peak_risk_quantile > 0.5:
        margin = errors.margin_kw(index[0], load_point)
        columns[f"{LOAD_QUANTILE_PREFIX}{plan.peak_risk_quantile:g}"] = load_point + margin
        if plan.peak_reserve_sizing == "scenarios":
            pv_kw = columns["p_pv_kw"]
            paths = errors.paths_kw(index[0], load_point - pv_kw)
            for k, path in enumerate(paths if paths is not None else ()):
                columns[f"{LOAD_SCENARIO_PREFIX}{k}"] = np.maximum(path + pv_kw, 0.0)
    frame = float_frame(columns, pv_frame.index)  # one frame, built once
    return SiteForecast(frame, (pv_note, load_note), warmup)


def measured_net_kw(load_kw: pd.Series, pv_kw: pd.Series) -> pd.Series:
    """Measured net load (load - PV, kW) where both are known (not NaN): what the error book
    observes."""
    if load_kw.index.equals(pv_kw.index):  # one history: nothing to align
        load, pv = load_kw.to_numpy(float), pv_kw.to_numpy(float)
        both = ~np.isnan(load) & ~np.isnan(pv)
        return pd.Series(load[both] - pv[both], index=load_kw.index[both])
    aligned = pd.concat([load_kw, pv_kw], axis=1).dropna()
    return aligned.iloc[:, 0] - aligned.iloc[:, 1]


def net_load_kw(frame: pd.DataFrame) -> np.ndarray:
    """Expected net load (load - PV, kW) of a forecast frame: what the error book records."""
    return frame["p_load_kw"].to_numpy(float) - frame["p_pv_kw"].to_numpy(float)


def errors_from_history(
    config: SiteConfig, load_history_kw: pd.Series, now: pd.Timestamp, n_slots: int
) -> ForecastErrors:
    """An error book made by forecasting the past: every hour of the last
    ``forecast.history_days`` before ``now``, the load forecast issued from the history
    before that hour (PV left out: no PV history). For the CLI, which has no record of the
    forecasts the daemon issued."""
    step = pd.Timedelta(minutes=config.plan.step_min)
    errors = ForecastErrors(load.FactoryCalendar.for_load(config), step,
                            config.plan.peak_risk_quantile)  # fmt: skip
    history = load_history_kw.dropna()
    history = history[history.index < now]
    if history.empty:
        raise InputError("a load forecast needs measured load history or a constant load")
    errors.observe(history)
    days = pd.Timedelta(days=config.forecast.history_days)
    first = max(history.index[0] + WARMUP_HISTORY, now - days)
    for issue in pd.date_range(first.ceil("h"), now - step, freq="h"):
        index = pd.date_range(issue, periods=n_slots, freq=step)
        point, _, warmup = load_forecast(config, index, history[history.index < issue])
        if warmup is None:
            errors.issue(issue, point.to_numpy())
    return errors


def forecast_frame(
    config: SiteConfig,
    index: pd.DatetimeIndex,
    weather: pd.DataFrame | None = None,
    load_history_kw: pd.Series | None = None,
    load_kw: float | None = None,
    pv_calibration: calibrate.CalibrationFit | None = None,
) -> pd.DataFrame:
    """PV and load forecasts on ``index`` for the CLI (``dispatch forecast``): the weather
    chain (clear sky without ``weather``), load from history or a constant, and, with
    ``plan.peak_risk_quantile`` above the median, the margin from an error book made by
    forecasting the history itself (``errors_from_history``).

    Raises
    ------
    InputError
        Without load history or a constant load.
    """
    if load_kw is None and load_history_kw is None:
        raise InputError("a load forecast needs measured load history or a constant load")
    errors = None
    if load_kw is None and config.plan.peak_risk_quantile > 0.5:
        errors = errors_from_history(config, load_history_kw, index[0], len(index))
    return site_forecast(config, index, weather=weather, load_history_kw=load_history_kw,
                         load_kw=load_kw, pv_calibration=pv_calibration,
                         errors=errors).frame  # fmt: skip
