"""Load forecast uncertainty: empirical quantiles of the forecaster's own past errors.

Role: ``load_quantiles`` backtests ``dispatch.forecast.load`` on the history itself, issuing the
same forecast (same time of day, same horizon) on each of the last ``backtest_days`` days from
the history available at that moment, collects the errors (actual minus forecast, kW) by day
type and site-local hour, and adds their empirical quantiles, taken about their median, to
today's point forecast: the median quantile is the point forecast and the spread is what past
forecasts of the same kind of slot missed by. Only history strictly before ``now`` is used, as
in the point forecast.

Pure: no I/O, no wall clock. May import ``dispatch.types``, ``dispatch.config``,
``dispatch.calendar``, ``dispatch.forecast.load``, numpy and pandas.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dispatch.calendar import WORK, FactoryCalendar
from dispatch.forecast.load import (
    STEP_DEFAULT,
    LoadOptions,
    forecast_from_prepared,
    forecast_index,
    prepare_history,
)
from dispatch.types import InputError

__all__ = ["forecast_load_with_quantiles", "load_quantiles"]

LEVELS_DEFAULT = (0.1, 0.5, 0.9)


def _groups(index: pd.DatetimeIndex, calendar: FactoryCalendar) -> tuple[np.ndarray, ...]:
    """Day type, working-or-not and site-local hour of each stamp."""
    local = index.tz_convert(calendar.timezone)
    dates = [d.date() for d in local.tz_localize(None).normalize()]
    uniq = sorted(set(dates))
    codes = dict(zip(uniq, calendar.day_types(uniq), strict=True))
    kind = np.array([codes[d] for d in dates], dtype=np.int64)
    return kind, (kind == WORK).astype(np.int64), np.asarray(local.hour, dtype=np.int64)


def _past_error_paths(
    series: pd.Series, now: pd.Timestamp, index: pd.DatetimeIndex, step: pd.Timedelta,
    calendar: FactoryCalendar, opts: LoadOptions, backtest_days: int,
) -> list[tuple[int, np.ndarray]]:
    """Per day ``k`` in 1..``backtest_days``: the errors (actual - forecast, kW; NaN where not
    measured) of the same forecast issued ``k`` days ago, over ``index`` moved back ``k`` days."""
    paths = []
    lookback = pd.Timedelta(days=opts.lookback_days + 2)
    for k in range(1, backtest_days + 1):
        issued = now - pd.Timedelta(days=k)
        past = series[(series.index >= issued - lookback) & (series.index + step <= issued)]
        if not np.isfinite(past.to_numpy()).any():
            break
        target = index - pd.Timedelta(days=k)
        fc = forecast_from_prepared(past, issued, target, step, calendar, opts)
        paths.append((k, series.reindex(target).to_numpy(dtype=float) - fc.to_numpy()))
    return paths


def _past_errors(
    paths: list[tuple[int, np.ndarray]], index: pd.DatetimeIndex
) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """The known errors of all paths and the slots they fell on."""
    errors, stamps = [], []
    for k, err in paths:
        ok = np.isfinite(err)
        errors.append(err[ok])
        stamps.append((index - pd.Timedelta(days=k))[ok])
    if not errors:
        return np.empty(0), pd.DatetimeIndex([], tz="UTC")
    return np.concatenate(errors), stamps[0].append(stamps[1:])


def _scenarios(
    point: pd.Series, paths: list[tuple[int, np.ndarray]], now: pd.Timestamp,
    calendar: FactoryCalendar,
) -> pd.DataFrame:
    """The point forecast plus each complete error path of a forecast issued on a day of the
    same kind (working or not) as today's, >= 0 (kW); columns are the days back."""
    today = _groups(pd.DatetimeIndex([now]), calendar)[1][0]
    cols = {}
    for k, err in paths:
        issued = pd.DatetimeIndex([now - pd.Timedelta(days=k)])
        if np.isfinite(err).all() and _groups(issued, calendar)[1][0] == today:
            cols[k] = np.maximum(point.to_numpy() + err, 0.0)
    return pd.DataFrame(cols, index=point.index, dtype=float)


def _error_quantiles(
    errors: np.ndarray, err_keys: tuple[np.ndarray, ...], keys: tuple[np.ndarray, ...],
    levels: np.ndarray, min_samples: int,
) -> np.ndarray:
    """Per target slot, the spread (kW) of past errors about their median, at ``levels``.

    Each slot takes the finest group with ``min_samples`` errors: (day type, hour), (working
    day or not, hour), (hour), all errors. Centring on the median keeps the median quantile on
    the point forecast: a past median bias per hour was noise in the benchmark (it raised the
    pinball loss at every level on both plants). No past errors at all: zero spread.
    """

    def spread(e: np.ndarray) -> np.ndarray:
        q = np.quantile(e, np.r_[levels, 0.5])
        return q[:-1] - q[-1]

    table: dict[tuple[int, ...], np.ndarray] = {}
    for rank, cols in enumerate(((0, 2), (1, 2), (2,))):
        frame = pd.DataFrame({f"k{c}": err_keys[c] for c in cols}).assign(e=errors)
        for key, g in frame.groupby([f"k{c}" for c in cols])["e"]:
            if len(g) >= min_samples:
                table[(rank, *np.atleast_1d(key).tolist())] = spread(g.to_numpy())
    if errors.size:
        table[(3,)] = spread(errors)
    kind, work, hour = keys
    out = np.zeros((len(kind), len(levels)))
    for i in range(len(kind)):
        for key in ((0, kind[i], hour[i]), (1, work[i], hour[i]), (2, hour[i]), (3,)):
            found = table.get(tuple(int(k) for k in key))
            if found is not None:
                out[i] = found
                break
    return out


def forecast_load_with_quantiles(
    history: pd.Series,
    now: pd.Timestamp,
    calendar: FactoryCalendar,
    horizon: int | pd.Timestamp,
    step: pd.Timedelta = STEP_DEFAULT,
    levels: Sequence[float] = LEVELS_DEFAULT,
    options: LoadOptions | None = None,
    backtest_days: int = 28,
    min_samples: int = 24,
    scenarios: bool = False,
) -> tuple[pd.Series, pd.DataFrame] | tuple[pd.Series, pd.DataFrame, pd.DataFrame]:
    """Point forecast and quantiles of the site load (kW), from errors of past forecasts;
    with ``scenarios``, also load paths: the point forecast plus the errors of each past
    forecast issued on a day of the same kind (working or not).

    Parameters
    ----------
    history, now, calendar, horizon, step, options
        As for ``dispatch.forecast.load.forecast_load``.
    levels : sequence of float
        Quantile levels in (0, 1).
    backtest_days : int
        How many past issue times (one per day, same time of day) supply errors.
    min_samples : int
        Errors needed in a (day type, hour) group before it is used; coarser groups otherwise.

    Returns
    -------
    point : pandas.Series
        ``p_load_kw`` (kW), as ``forecast_load`` returns it.
    quantiles : pandas.DataFrame
        Same index, one column per distinct level (float, ascending), non-decreasing in level,
        >= 0 (kW); the 0.5 column, if asked for, equals ``point``. Ready for
        ``dispatch.types.Forecast(frame, load_quantiles_kw=quantiles)``.
    scenarios : pandas.DataFrame
        Only with ``scenarios``: same index, one column per past issue day (days back, int),
        >= 0 (kW); for ``Forecast(..., load_scenarios_kw=scenarios)``.

    Raises
    ------
    InputError
        On unusable history, time arguments or levels.
    """
    lv = np.unique(np.asarray(list(levels), dtype=float))
    if lv.size == 0 or ((lv <= 0) | (lv >= 1)).any():
        raise InputError(f"levels: need quantile levels in (0, 1), got {list(levels)}")
    opts = options or LoadOptions()
    index = forecast_index(now, horizon, step)  # also checks that ``now`` is tz-aware
    now = pd.Timestamp(now).tz_convert("UTC")
    span = pd.Timedelta(days=opts.lookback_days + backtest_days + 3)
    series = prepare_history(history, now, step, since=now - span)
    point = forecast_from_prepared(series, now, index, step, calendar, opts)
    paths = _past_error_paths(series, now, index, step, calendar, opts, backtest_days)
    errors, stamps = _past_errors(paths, index)
    qerr = _error_quantiles(errors, _groups(stamps, calendar), _groups(index, calendar), lv,
                            min_samples)
    values = np.maximum.accumulate(np.maximum(point.to_numpy()[:, None] + qerr, 0.0), axis=1)
    frame = pd.DataFrame(values, index=index, columns=pd.Index(lv, dtype=float))
    if scenarios:
        return point, frame, _scenarios(point, paths, now, calendar)
    return point, frame


def load_quantiles(
    history: pd.Series,
    now: pd.Timestamp,
    calendar: FactoryCalendar,
    horizon: int | pd.Timestamp,
    step: pd.Timedelta = STEP_DEFAULT,
    levels: Sequence[float] = LEVELS_DEFAULT,
    options: LoadOptions | None = None,
    backtest_days: int = 28,
) -> pd.DataFrame:
    """Load quantiles (kW) only; see ``forecast_load_with_quantiles``."""
    return forecast_load_with_quantiles(
        history, now, calendar, horizon, step, levels, options, backtest_days
    )[1]

