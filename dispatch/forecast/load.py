"""Load forecast: site load (kW) from its own history and the factory calendar.

Role: the point forecast of ``p_load_kw``. A profile by day type (working day, first weekend day,
other rest day, public holiday, shutdown) and site-local time of day, built from the recent
matching days of history with exponential recency weights (a working day from working days of
its own weekday once the history holds enough of them), plus the recent level (actual minus
profile over the last hours) added with a weight that decays with lead time, so that a shift
that starts late is followed. With less than ``min_history_days`` of history, and for day types
seen fewer than ``min_days`` times, the profile falls back to the same local time a week back
(else a day back); the recent level is added to it all the same, so a cold start on a holiday
follows the first working day's shift, and where that fallback is a day of another type the
level holds to the end of the day instead of decaying (it is all the forecaster knows of the
day). A day off whose recent hours rise from its own profile towards the working day's (the
plant works, unannounced, fully or in part) takes for the rest of it the blend of the two that
fits those hours best. Never negative.

Only history strictly before the issue time ``now`` is used: the series is sliced at ``now``
before anything else and the slice is asserted.

Day types come from ``dispatch.calendar`` (``FactoryCalendar`` and ``DAY_TYPE_NAMES`` are
re-exported here). Pure: no I/O, no wall clock. May import ``dispatch.types``,
``dispatch.config``, ``dispatch.calendar``, numpy and pandas. Quantiles from past errors live in
``dispatch.forecast.load_uncertainty``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dispatch.calendar import (
    DAY_TYPE_NAMES,
    HOLIDAY,
    REST,
    SHUTDOWN,
    WEEKEND_FIRST,
    WORK,
    FactoryCalendar,
)
from dispatch.forecast.lookup import stamps_ns, values_at
from dispatch.types import InputError

__all__ = ["DAY_TYPE_NAMES", "FactoryCalendar", "LoadOptions", "forecast_from_prepared",
           "forecast_index", "forecast_load", "local_weekdays", "prepare_history",
           "seasonal_naive"]

# Which day types stand in, in order, when a type has too few days in the history.
_STAND_INS = {WORK: (WORK,), WEEKEND_FIRST: (WEEKEND_FIRST, REST, HOLIDAY),
              REST: (REST, HOLIDAY, WEEKEND_FIRST),
              HOLIDAY: (HOLIDAY, REST, SHUTDOWN, WEEKEND_FIRST),
              SHUTDOWN: (SHUTDOWN, HOLIDAY, REST, WEEKEND_FIRST)}
STEP_DEFAULT = pd.Timedelta(minutes=15)
_HOUR_NS = pd.Timedelta(hours=1).value
_DAY_NS = pd.Timedelta(days=1).value


@dataclass(frozen=True)
class LoadOptions:
    """Tuning of the load forecaster.

    Attributes
    ----------
    lookback_days : int
        Days of history searched for matching days (d).
    n_workdays, n_offdays : int
        Most recent matching days averaged per slot for working days / other day types.
    decay : float
        Weight ratio of each older matching day to the next newer one, in (0, 1].
    center : str
        ``"median"`` (weighted median, robust to odd days) or ``"mean"`` (weighted mean).
    min_days : int
        Matching days needed before a day type has its own profile; else a stand-in type.
    min_history_days : float
        Less history than this (d) and the profile is the same local time a week back (else
        a day back), plus the recent level. Without the level there, the replays' first
        working day (after a holiday, no working day in the history) was forecast at the
        holiday's load all day: the Korean January captured 56 % of its perfect-foresight
        saving, 66 % with it.
    level_window_h, level_halflife_h : float
        Recent window (h) over which actual minus profile is averaged, with weights halving
        every ``level_halflife_h`` (h) into the past.
    level_tau_h : float
        Time constant (h) of the exponential decay of that offset with lead time.
    same_weekday_days : int
        A working day's profile comes from working days of the same weekday once the history
        holds this many (0: from all working days). Factories run short Fridays or slow
        Mondays: on the German factory year the Friday afternoon is 1.3-2.8 MW below the
        other working days'. Chosen on the 2018 replays (``bench_backtest``, share of the
        perfect-foresight saving captured, German / Korean): 0 gave 68.1 / 61.3 %, 2 gave
        70.0 / 61.4 %, 3 gave 70.6 / 62.3 %, 4 gave 69.3 / 62.2 %. The day-ahead working-day
        nMAE (``bench_forecast_load``) went from 0.132 to 0.124 on the German factory and from
        0.328 to 0.355 on the Korean steel plant, whose spiky load is noisier over fewer days.
    """

    lookback_days: int = 56
    n_workdays: int = 10
    n_offdays: int = 5
    decay: float = 0.9
    center: str = "median"
    min_days: int = 2
    min_history_days: float = 2.0
    level_window_h: float = 2.0
    level_halflife_h: float = 0.5
    level_tau_h: float = 1.5
    same_weekday_days: int = 3

    def __post_init__(self) -> None:
        if self.center not in ("median", "mean"):
            raise InputError(
                f"load options: center must be 'median' or 'mean', got {self.center!r}"
            )
        if not 0 < self.decay <= 1:
            raise InputError(f"load options: decay must lie in (0, 1], got {self.decay}")


def forecast_index(
    now: pd.Timestamp, horizon: int | pd.Timestamp, step: pd.Timedelta
) -> pd.DatetimeIndex:
    """Period starts (UTC) from ``now`` (tz-aware) rounded up to ``step``, for ``horizon``
    slots or up to the exclusive end time ``horizon``."""
    now = _utc(now, "now")
    step = pd.Timedelta(step)
    if step <= pd.Timedelta(0) or pd.Timedelta(days=1) % step:
        raise InputError(f"step: {step} must be positive and divide a day")
    start = now.ceil(step)
    if isinstance(horizon, int | np.integer):
        if horizon < 1:
            raise InputError(f"horizon: need at least one slot, got {horizon}")
        return pd.date_range(start, periods=int(horizon), freq=step)
    end = _utc(pd.Timestamp(horizon), "horizon end")
    index = pd.date_range(start, end, freq=step, inclusive="left")
    if len(index) == 0:
        raise InputError(f"horizon: end {end.isoformat()} leaves no slot after {start.isoformat()}")
    return index


def _utc(ts: pd.Timestamp, what: str) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    if ts.tzinfo is None:
        raise InputError(f"{what}: time stamp {ts} must be tz-aware (UTC)")
    return ts.tz_convert("UTC")


def prepare_history(
    history: pd.Series, now: pd.Timestamp, step: pd.Timedelta, since: pd.Timestamp | None = None
) -> pd.Series:
    """History strictly before ``now`` (and from ``since``), as means over ``step`` (kW).

    The result sits on a regular UTC grid of period starts; a slot still running at ``now``
    is dropped.

    Raises
    ------
    InputError
        Not a series, empty, index not tz-aware UTC, unsorted or duplicated stamps, an
        irregular step, a step coarser than (or not dividing) ``step``, nothing before ``now``.
    """
    now = _utc(now, "now")
    if not isinstance(history, pd.Series):
        raise InputError(f"history: must be a pandas Series of p_load_kw, got {type(history)}")
    idx = history.index
    if len(history) == 0:
        raise InputError("history: empty, no load values")
    if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None or str(idx.tz) != "UTC":
        tz = getattr(idx, "tz", None)
        raise InputError(f"history: index must be tz-aware UTC time stamps, got tz={tz}")
    ns = stamps_ns(idx)
    diffs = np.diff(ns)
    if (diffs <= 0).any():
        raise InputError("history: time stamps must be strictly increasing (unsorted or duplicate)")
    hstep = pd.Timedelta(int(diffs.min()), unit="ns") if diffs.size else step
    if diffs.size and (diffs % diffs.min()).any():
        raise InputError(f"history: stamps are not on a fixed step of {hstep}")
    if hstep > step or step % hstep:
        raise InputError(f"history: step {hstep} is coarser than, or does not divide, the "
                         f"forecast step {step}")
    values = history
    if history.dtype != np.float64:
        values = pd.to_numeric(history, errors="coerce").astype(float)
    lo = 0 if since is None else int(np.searchsorted(ns, pd.Timestamp(since).value, "left"))
    hi = int(np.searchsorted(ns, now.value, "left"))  # the only data the forecast may see
    values = values.iloc[lo:max(lo, hi)]
    assert values.empty or values.index[-1] < now
    if hstep == step and not (ns[lo:hi] % step.value).any():
        # the resample below, without its cost; a slot still running at ``now`` is dropped
        grid = _on_grid(values, ns[lo:hi], step, now)
    else:
        grid = values.resample(step, origin="epoch", closed="left", label="left").mean()
        grid = grid[grid.index + step <= now]  # drop a slot still running at ``now``
    if not np.isfinite(grid.to_numpy()).any():
        since_text = f"from {pd.Timestamp(since).isoformat()} " if since is not None else ""
        raise InputError(f"history: no finite load value {since_text}before now = "
                         f"{now.isoformat()}")
    grid.name = "p_load_kw"
    return grid


def _on_grid(values: pd.Series, ns: np.ndarray, step: pd.Timedelta, now: pd.Timestamp) -> pd.Series:
    """``values`` (stamps ``ns``, on the epoch grid of ``step``) on every slot from its first
    to its last, NaN where missing, without the slots still running at ``now``: the resample
    of ``prepare_history`` (the mean over a slot of its one value is that value)."""
    last = min(int(ns[-1]), now.value - step.value) if len(ns) else None
    if last is None or last < ns[0]:
        grid = values.resample(step, origin="epoch", closed="left", label="left").mean()
        return grid[grid.index + step <= now]
    n = (last - int(ns[0])) // step.value + 1
    slots = (ns - ns[0]) // step.value
    keep = slots < n
    out = np.full(n, np.nan)
    out[slots[keep]] = values.to_numpy()[keep]
    index = pd.date_range(values.index[0], periods=n, freq=step)
    return pd.Series(out, index=index)


def _local_keys(index: pd.DatetimeIndex, tz: str, step: pd.Timedelta) -> tuple[np.ndarray, ...]:
    """Site-local date (datetime64[D]) and time-of-day bin of each UTC stamp; for stamps on
    the grid of ``step``, from each UTC day's keys worked out once (``_day_keys``)."""
    ns, step_ns = stamps_ns(index), int(step.total_seconds() * 10**9)
    per_day = _DAY_NS // step_ns
    if len(ns) == 0 or _DAY_NS % step_ns or (ns % step_ns).any():
        return _stamp_keys(ns, tz, step_ns)
    slots = ns // step_ns
    if len(slots) > 1 and (np.diff(slots) == 1).all():  # a run of slots: a slice of its days
        first_day, last_day = int(slots[0] // per_day), int(slots[-1] // per_day)
        at = int(slots[0]) - first_day * per_day
        run = _days_keys(tz, step_ns, first_day, last_day)
        return tuple(a[at : at + len(slots)].copy() for a in run)
    days = slots // per_day
    uniq, row = np.unique(days, return_inverse=True)
    tables = [_day_keys(tz, step_ns, int(d)) for d in uniq]
    col = slots - days * per_day
    dates = np.stack([t[0] for t in tables])[row, col]
    bins = np.stack([t[1] for t in tables])[row, col]
    return dates, bins


@functools.lru_cache(maxsize=16)
def _days_keys(tz: str, step_ns: int, first_day: int, last_day: int) -> tuple[np.ndarray, ...]:
    """``_day_keys`` of the UTC days ``first_day`` .. ``last_day`` end to end, read-only (the
    history and the horizon of one plan span the same days as the plan's before)."""
    days = [_day_keys(tz, step_ns, d) for d in range(first_day, last_day + 1)]
    keys = tuple(np.concatenate([k[i] for k in days]) for i in range(2))
    for a in keys:
        a.flags.writeable = False
    return keys


def local_weekdays(index: pd.DatetimeIndex, tz: str, step: pd.Timedelta) -> np.ndarray:
    """Weekday (Monday = 0) in time zone ``tz`` of each stamp of the UTC ``index``: the
    ``day_of_week`` of ``index.tz_convert(tz)``, from the per-day keys kept for stamps on the
    grid of ``step`` (``_local_keys``)."""
    return _weekday(_local_keys(index, tz, step)[0])


def _stamp_keys(ns: np.ndarray, tz: str, step_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """``_local_keys`` of UTC stamps ``ns`` (ns since the epoch), stamp by stamp."""
    utc = pd.DatetimeIndex(ns.astype("datetime64[ns]"), tz="UTC")
    wall = stamps_ns(utc.tz_convert(tz).tz_localize(None))
    dates = (wall // _DAY_NS).astype("datetime64[D]")
    bins = (wall % _DAY_NS) // step_ns
    return dates, bins.astype(np.int64)


@functools.lru_cache(maxsize=1024)
def _day_keys(tz: str, step_ns: int, day: int) -> tuple[np.ndarray, np.ndarray]:
    """``_stamp_keys`` of the slots of UTC ``day`` (days since the epoch), read-only."""
    per_day = _DAY_NS // step_ns
    keys = _stamp_keys((day * per_day + np.arange(per_day)) * step_ns, tz, step_ns)
    for a in keys:
        a.flags.writeable = False
    return keys


def _day_table(series: pd.Series, tz: str, step: pd.Timedelta) -> tuple[np.ndarray, np.ndarray]:
    """Rows of local dates (oldest first) x time-of-day bins, NaN where missing (kW)."""
    dates, bins = _local_keys(series.index, tz, step)
    n_bins = int(pd.Timedelta("1D") / step)
    uniq, row = _sorted_unique(dates)
    vals = series.to_numpy(dtype=float)
    ok = np.isfinite(vals)
    # sums in stamp order, as np.add.at would: a repeated DST hour is averaged
    cell = row[ok] * n_bins + bins[ok]
    size = len(uniq) * n_bins
    total = np.bincount(cell, weights=vals[ok], minlength=size).reshape(len(uniq), n_bins)
    count = np.bincount(cell, minlength=size).astype(float).reshape(len(uniq), n_bins)
    with np.errstate(invalid="ignore"):
        return uniq, total / count


def _sorted_unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)``, without the sort when ``values`` is
    sorted already (the local dates of a UTC history)."""
    if len(values) < 2 or (values[1:] < values[:-1]).any():
        return np.unique(values, return_inverse=True)
    new = np.empty(len(values), dtype=bool)
    new[0], new[1:] = True, values[1:] != values[:-1]
    return values[new], np.cumsum(new) - 1


def _weighted_center(rows: np.ndarray, n: int, opts: LoadOptions) -> np.ndarray:
    """Per bin, the recency-weighted centre of the ``n`` newest finite values.

    ``rows`` holds one day per row, newest first (kW); the result has one value per bin.
    """
    mask = np.isfinite(rows)
    rank = np.cumsum(mask, axis=0)
    use = mask & (rank <= n)
    w = np.where(use, opts.decay ** (rank - 1.0), 0.0)
    wsum = w.sum(axis=0)
    filled = np.where(use, rows, 0.0)
    if opts.center == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(wsum > 0, (w * filled).sum(axis=0) / wsum, np.nan)
    order = np.argsort(np.where(use, rows, np.inf), axis=0, kind="stable")
    v = np.take_along_axis(filled, order, axis=0)
    cw = np.cumsum(np.take_along_axis(w, order, axis=0), axis=0)
    pick = np.argmax(cw >= 0.5 * wsum - 1e-12, axis=0)
    return np.where(wsum > 0, v[pick, np.arange(rows.shape[1])], np.nan)


def _weekday(dates: np.ndarray | np.datetime64) -> np.ndarray:
    """Weekday of datetime64[D] dates, Monday = 0 (1970-01-01 was a Thursday)."""
    return (np.asarray(dates, dtype="datetime64[D]").astype(np.int64) + 3) % 7


def _profile(
    table: tuple[np.ndarray, np.ndarray], types: np.ndarray, day: np.datetime64, kind: int,
    opts: LoadOptions,
) -> np.ndarray | None:
    """Profile (kW per bin) of ``day`` of type ``kind`` from table rows strictly before ``day``."""
    dates, values = table
    before = (dates < day) & (dates >= day - np.timedelta64(opts.lookback_days, "D"))
    full = np.isfinite(values).mean(axis=1) >= 0.5
    if kind == WORK and opts.same_weekday_days:
        same = before & (types == WORK) & (_weekday(dates) == _weekday(day))
        sel = np.flatnonzero(same)
        if np.count_nonzero(full[sel]) >= opts.same_weekday_days:
            return _weighted_center(values[sel][::-1], opts.n_workdays, opts)
    for cand in _STAND_INS[kind]:
        sel = np.flatnonzero(before & (types == cand))
        if np.count_nonzero(full[sel]) < opts.min_days:
            continue
        n = opts.n_workdays if cand == WORK else opts.n_offdays
        if kind == SHUTDOWN and cand != SHUTDOWN:  # no shutdown seen: base load of rest days
            return np.fmin.reduce(values[sel][::-1][:n], axis=0)
        return _weighted_center(values[sel][::-1], n, opts)
    return None


def _lagged_ns(
    index: pd.DatetimeIndex, timezone: str, lags_days: Sequence[int], step_ns: int | None = None
) -> np.ndarray:
    """UTC stamps (ns since the epoch) of the same site-local wall-clock time ``lag`` days
    before each stamp of ``index``, one row per lag; a wall-clock time that does not exist
    (the spring-forward hour) is shifted forward, one that exists twice takes the plain
    ``lag`` x 24 h back. Stamps on the grid of ``step_ns`` (ns, dividing a day) are read from
    each UTC day's answer worked out once (``_day_lagged``): the answer is stamp by stamp."""
    ns, lags = stamps_ns(index), tuple(int(lag) for lag in lags_days)
    if step_ns is None or step_ns <= 0 or len(ns) == 0 or _DAY_NS % step_ns or (ns % step_ns).any():
        return _stamp_lagged(ns, timezone, lags)
    per_day = _DAY_NS // step_ns
    slots = ns // step_ns
    days = slots // per_day
    uniq, row = np.unique(days, return_inverse=True)
    tables = np.stack([_day_lagged(timezone, step_ns, int(d), lags) for d in uniq])
    return np.ascontiguousarray(tables[row, :, slots - days * per_day].T)


def _stamp_lagged(ns: np.ndarray, timezone: str, lags_days: tuple[int, ...]) -> np.ndarray:
    """``_lagged_ns`` of UTC stamps ``ns`` (ns since the epoch), stamp by stamp."""
    lags = np.asarray(lags_days, dtype=np.int64)[:, None] * _DAY_NS
    utc = pd.DatetimeIndex(ns.astype("datetime64[ns]"), tz="UTC")
    wall = stamps_ns(utc.tz_convert(timezone).tz_localize(None))
    naive = pd.DatetimeIndex((wall[None, :] - lags).ravel())
    back = naive.tz_localize(timezone, ambiguous="NaT", nonexistent="shift_forward")
    plain = (ns[None, :] - lags).ravel()
    return np.where(back.isna(), plain, stamps_ns(back.tz_convert("UTC"))).reshape(lags.size, -1)


@functools.lru_cache(maxsize=256)
def _day_lagged(timezone: str, step_ns: int, day: int, lags_days: tuple[int, ...]) -> np.ndarray:
    """``_stamp_lagged`` of the slots of UTC ``day`` (days since the epoch), read-only."""
    per_day = _DAY_NS // step_ns
    out = _stamp_lagged((day * per_day + np.arange(per_day)) * step_ns, timezone, lags_days)
    out.flags.writeable = False
    return out


def seasonal_naive(
    series: pd.Series, index: pd.DatetimeIndex, timezone: str, lag_days: int = 7
) -> np.ndarray:
    """Load (kW) of ``series`` (UTC grid, e.g. from ``prepare_history``) at the same site-local
    wall-clock time ``lag_days`` before each stamp of ``index``; NaN where unknown. With the
    default lag of 7 days this is the seasonal-naive reference (same weekday last week)."""
    return values_at(series, _lagged_ns(index, timezone, [lag_days])[0])


#: The lags (d) ``_fallback`` tries, in order.
_FALLBACK_LAGS = (7, 14, 21, 28, 1, 2, 3, 4, 5, 6)


def _fallback(series: pd.Series, index: pd.DatetimeIndex, tz: str) -> np.ndarray:
    """Same local time 1..4 weeks back, else 1..6 days back, else the mean of the history."""
    return _fallback_lags(series, index, tz)[0]


def _fallback_lags(
    series: pd.Series, index: pd.DatetimeIndex, tz: str
) -> tuple[np.ndarray, np.ndarray]:
    """``_fallback``'s values (kW) and the lag (d) each was read at (0: the history's mean)."""
    if len(index) == 0:
        return np.full(0, np.nan), np.zeros(0, dtype=np.int64)
    own = stamps_ns(series.index)
    step_ns = int(own[1] - own[0]) if len(own) > 1 else None  # a grid the index may be on
    stamps = _lagged_ns(index, tz, _FALLBACK_LAGS, step_ns)
    values = values_at(series, stamps.ravel()).reshape(stamps.shape)
    first = np.argmax(~np.isnan(values), axis=0)  # the first lag with a value (else lag 0)
    out = values[first, np.arange(len(index))]
    lags = np.where(np.isnan(out), 0, np.asarray(_FALLBACK_LAGS)[first])
    return np.where(np.isnan(out), float(np.nanmean(series.to_numpy())), out), lags


def _level_held(
    index: pd.DatetimeIndex, lags: np.ndarray, fell_back: np.ndarray, calendar: FactoryCalendar,
    step: pd.Timedelta,
) -> np.ndarray:
    """The slots on the issue's local date (``index[0]``'s) whose profile is a fallback read
    from a day of another day type (or the history's mean, lag 0): for them the recent level
    is the only word on the day, so it holds undecayed to the day's end."""
    dates = _local_keys(index, calendar.timezone, step)[0]
    today = dates == dates[0]
    held = today & fell_back
    if not held.any():
        return held
    own = calendar.day_types([dates[0].astype("datetime64[D]").item()])[0]
    back = dates[held] - lags[held].astype("timedelta64[D]")
    uniq, inverse = np.unique(back, return_inverse=True)
    kinds = calendar.day_types(uniq.astype("datetime64[D]").tolist())[inverse]
    same = (lags[held] > 0) & (kinds == own)
    held[np.flatnonzero(held)[same]] = False
    return held


@dataclass(frozen=True)
class _Days:
    """The history by local day and the local keys of the stamps asked about, worked out once
    per forecast: ``table`` (dates x bins, kW), ``keys`` (dates and bins of each index),
    ``all_dates`` and their day-type ``codes``, and ``types`` of the table's rows."""

    table: tuple[np.ndarray, np.ndarray]
    keys: list[tuple[np.ndarray, np.ndarray]]
    all_dates: np.ndarray
    codes: np.ndarray
    types: np.ndarray

    def code(self, day: np.datetime64) -> int:
        """The day type of local date ``day`` (one of ``all_dates``)."""
        return int(self.codes[np.searchsorted(self.all_dates, day)])


def _days(
    series: pd.Series, step: pd.Timedelta, calendar: FactoryCalendar, *indexes: pd.DatetimeIndex
) -> _Days:
    """``_Days`` of the history ``series`` for the stamps of ``indexes``."""
    table = _day_table(series, calendar.timezone, step)
    keys = [_local_keys(index, calendar.timezone, step) for index in indexes]
    all_dates = np.unique(np.concatenate([table[0], *(d for d, _ in keys)]))
    codes = calendar.day_types(all_dates.astype("datetime64[D]").tolist())  # datetime.date
    return _Days(table, keys, all_dates, codes, codes[np.searchsorted(all_dates, table[0])])


def _profiles(
    days: _Days, opts: LoadOptions, worked: np.datetime64 | None = None
) -> list[np.ndarray]:
    """Calendar profile (kW) at each stamp of each index of ``days``; NaN where none is
    known. The local date ``worked`` (when given) takes the working-day profile, whatever its
    type."""
    found: dict[np.datetime64, np.ndarray | None] = {}
    results = []
    for dates, bins in days.keys:
        out = np.full(len(dates), np.nan)
        for day in np.unique(dates):
            if day not in found:
                kind = WORK if day == worked else days.code(day)
                found[day] = _profile(days.table, days.types, day, kind, opts)
            at = dates == day
            if found[day] is not None:
                out[at] = found[day][bins[at]]
        results.append(out)
    return results


def _worked_day_off(
    days: _Days, opts: LoadOptions, recent: pd.Series, prof: np.ndarray, prof_recent: np.ndarray
) -> None:
    """On a day off whose recent hours lie above the day's own profile, towards the
    working-day profile (the plant works today, unannounced, fully or in part), the rest of
    the day takes the blend ``own + w (working - own)`` that fits the recent hours best (least
    squares, ``w`` clipped to [0, 1]): ``prof`` and ``prof_recent`` (on the forecast's and the
    recent stamps of ``days``) are changed in place on the issue's local date."""
    dates, recent_dates = days.keys[0][0], days.keys[1][0]
    today = dates[0]
    if days.code(today) == WORK:
        return
    actual = recent.to_numpy(dtype=float)
    mine = (recent_dates == today) & np.isfinite(actual) & np.isfinite(prof_recent)
    if not mine.any() or (actual[mine] - prof_recent[mine]).mean() <= 0:
        return  # not above the day-off profile: nothing to explain
    work, work_recent = _profiles(days, opts, worked=today)
    ok = mine & np.isfinite(work_recent)
    towards = work_recent[ok] - prof_recent[ok]
    scale = float(np.dot(towards, towards))
    if scale <= 0:
        return
    w = float(np.clip(np.dot(actual[ok] - prof_recent[ok], towards) / scale, 0.0, 1.0))
    if w == 0.0:
        return
    on = dates == today
    prof[on] += w * (work[on] - prof[on])
    prof_recent[mine] += w * (work_recent[mine] - prof_recent[mine])


def _level_offset(
    recent: pd.Series, profile: np.ndarray, now: pd.Timestamp, step: pd.Timedelta,
    opts: LoadOptions,
) -> float:
    """Recency-weighted mean of actual minus profile over the ``recent`` slots (kW)."""
    resid = recent.to_numpy(dtype=float) - profile
    age_h = (now.value - (stamps_ns(recent.index) + step.value)) / _HOUR_NS
    w = 0.5 ** (age_h / opts.level_halflife_h)
    ok = np.isfinite(resid)
    if not ok.any():
        return 0.0
    return float(np.sum(w[ok] * resid[ok]) / np.sum(w[ok]))


def forecast_load(
    history: pd.Series,
    now: pd.Timestamp,
    calendar: FactoryCalendar,
    horizon: int | pd.Timestamp,
    step: pd.Timedelta = STEP_DEFAULT,
    options: LoadOptions | None = None,
) -> pd.Series:
    """Point forecast of the site load (kW) from ``now`` over the horizon.

    Parameters
    ----------
    history : pandas.Series
        Measured ``p_load_kw`` (kW), UTC period starts at a fixed step no coarser than ``step``;
        gaps and NaN are allowed. Values at or after ``now`` are ignored.
    now : pandas.Timestamp
        Issue time (tz-aware).
    calendar : FactoryCalendar
        Site time zone and day types.
    horizon : int or pandas.Timestamp
        Number of slots, or the exclusive end time.
    step : pandas.Timedelta
        Forecast step.
    options : LoadOptions, optional
        Tuning; defaults to ``LoadOptions()``.

    Returns
    -------
    pandas.Series
        ``p_load_kw`` (kW, >= 0) indexed by UTC period start from ``now`` rounded up to ``step``.

    Raises
    ------
    InputError
        On unusable history or time arguments (see ``prepare_history``).
    """
    opts = options or LoadOptions()
    now = _utc(now, "now")
    index = forecast_index(now, horizon, step)
    lookback = pd.Timedelta(days=opts.lookback_days + 2)
    series = prepare_history(history, now, step, since=now - lookback)
    return forecast_from_prepared(series, now, index, step, calendar, opts)


def forecast_from_prepared(
    series: pd.Series, now: pd.Timestamp, index: pd.DatetimeIndex, step: pd.Timedelta,
    calendar: FactoryCalendar, opts: LoadOptions,
) -> pd.Series:
    """``forecast_load`` for the UTC ``index`` from a ``prepare_history`` result.

    For callers that forecast many times from one prepared history (the quantile backtest).
    ``series`` must end before ``now``; ``opts`` is a ``LoadOptions``.
    """
    if series.index[-1] >= now:
        raise InputError(f"history: data at {series.index[-1].isoformat()} is not before now")
    ns = stamps_ns(series.index)
    if not (np.diff(ns) == step.value).all():
        series = series.reindex(pd.date_range(series.index[0], series.index[-1], freq=step))
        ns = stamps_ns(series.index)
    first_finite_ns = ns[np.isfinite(series.to_numpy())][0]
    level_from = now - pd.Timedelta(hours=opts.level_window_h)
    recent = series.iloc[int(np.searchsorted(ns, level_from.value, "left")):]
    lags = np.zeros(len(index), dtype=np.int64)
    if now.value - first_finite_ns < pd.Timedelta(days=opts.min_history_days).value:
        prof, lags = _fallback_lags(series, index, calendar.timezone)
        prof_recent = _fallback(series, recent.index, calendar.timezone)
        fell_back = np.ones(len(index), dtype=bool)
    else:
        days = _days(series, step, calendar, index, recent.index)
        prof, prof_recent = _profiles(days, opts)
        _worked_day_off(days, opts, recent, prof, prof_recent)
        fell_back = np.isnan(prof)
        if fell_back.any():
            prof[fell_back], lags[fell_back] = _fallback_lags(series, index[fell_back],
                                                              calendar.timezone)
    lead_h = (stamps_ns(index) + (step / 2).value - now.value) / _HOUR_NS
    decay = np.exp(-lead_h / opts.level_tau_h)
    if fell_back.any():
        decay[_level_held(index, lags, fell_back, calendar, step)] = 1.0
    values = prof + _level_offset(recent, prof_recent, now, step, opts) * decay
    return pd.Series(np.maximum(values, 0.0), index=index, name="p_load_kw")
