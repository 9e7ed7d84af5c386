"""Day-ahead prices beyond the last published day: a seasonal-naive forecast with a level.

Role: the price side of a forecast. The day-ahead auction publishes the next day's prices once
a day (``tariff.day_ahead_market``), so a plan reaching past them forecasts the rest:

- a slot's price is the last published day's price at the same time of day;
- a Saturday, Sunday or Monday in market time, whose prices differ from the day before, takes
  the price a week earlier plus the change of the daily mean between the last published day
  and the same day a week before it.

On the German 2018 prices this forecast of the next day misses by 9.37 EUR/MWh on average, the
last day's prices alone by 9.87, last week's by 11.16. The daemon's forecast job and the
replays (``sim.foresight``) share it; the forecast job, which asks every plan, keeps one
``PublishedDayAhead`` per publication. Pure: imports numpy, pandas, ``dispatch.types``,
``dispatch.forecast.lookup`` and ``dispatch.forecast.load`` (market-time weekdays).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dispatch.forecast.load import local_weekdays
from dispatch.forecast.lookup import stamps_ns
from dispatch.types import InputError

__all__ = ["WEEKLY_DAYS", "PublishedDayAhead", "day_ahead_ahead", "extend_day_ahead"]

#: Market-time weekdays (Monday = 0) forecast from the same weekday of the week before.
WEEKLY_DAYS = (5, 6, 0)


def day_ahead_ahead(
    known: np.ndarray, t: np.ndarray, end: int, slots_per_day: int, weekly: np.ndarray
) -> np.ndarray:
    """Day-ahead prices of slots ``t`` when those before slot ``end`` are published.

    Parameters
    ----------
    known : numpy.ndarray
        Prices per slot (currency per kWh); only those before ``end`` are read.
    t : numpy.ndarray
        Slot numbers wanted (int).
    end : int
        First slot not yet published.
    slots_per_day : int
        Slots in a day.
    weekly : numpy.ndarray
        Per slot (indexable by ``t``), whether its market day is one of ``WEEKLY_DAYS``.

    Returns
    -------
    numpy.ndarray
        The published price before ``end``; after it the forecast of the module docstring (the
        weekly rule only once the eight days before ``end`` are known, else the last day's price).
    """
    day, week = slots_per_day, 7 * slots_per_day
    last_day = np.maximum(t - ((t - end) // day + 1) * day, 0)  # the last published day
    out = np.where(t < end, known[np.minimum(t, end - 1)], known[last_day])
    if end - day - week >= 0:
        level = known[end - day : end].mean() - known[end - day - week : end - week].mean()
        week_back = t - ((t - end) // week + 1) * week  # a week (or more) back, published
        seasonal = (t >= end) & weekly[t]
        out = np.where(seasonal, known[np.maximum(week_back, 0)] + level, out)
    return out


def extend_day_ahead(
    published: pd.Series, index: pd.DatetimeIndex, market_timezone: str
) -> pd.Series:
    """The day-ahead prices on ``index``: the published ones, forecast beyond them.

    Parameters
    ----------
    published : pandas.Series
        Every price published so far that is wanted (currency per kWh), at UTC period starts
        on the step of ``index``; at least the last full day before ``index``'s first unknown
        slot, and its eight days for the weekly rule. Its last stamp is the last published slot.
    index : pandas.DatetimeIndex
        UTC period starts at a fixed step (the forecast's).
    market_timezone : str
        The market's IANA time zone (``tariff.day_ahead_market.timezone``).

    Returns
    -------
    pandas.Series
        ``day_ahead_per_kwh`` on ``index``.

    Raises
    ------
    InputError
        When nothing is published, the prices do not lie on the step of ``index``, or a
        published slot in the last day is missing.
    """
    prices = published.dropna()
    if prices.empty:
        raise InputError("day-ahead prices: none published; the plan needs at least one day")
    step = index[1] - index[0]
    if ((prices.index - index[0]) % step != pd.Timedelta(0)).any():
        raise InputError(f"day-ahead prices: stamps are not on the forecast's {step} grid")
    day = round(pd.Timedelta(days=1) / step)
    last = prices.index[-1]
    grid = pd.date_range(min(prices.index[0], index[0]), max(index[-1], last), freq=step)
    values = prices.reindex(grid).to_numpy(float)
    end = int(grid.get_loc(last)) + 1
    if end < day or not np.isfinite(values[end - day : end]).all():
        raise _incomplete(last)
    weekly = np.isin(grid.tz_convert(market_timezone).day_of_week, WEEKLY_DAYS)
    if end < 8 * day or not np.isfinite(values[end - 8 * day : end]).all():
        weekly[:] = False  # no level without those eight days: the last day's prices
    t = np.asarray(grid.get_indexer(index), dtype=np.int64)
    out = day_ahead_ahead(values, t, end, day, weekly)
    return pd.Series(out, index=index, name="day_ahead_per_kwh")


def _incomplete(last: pd.Timestamp) -> InputError:
    return InputError(
        f"day-ahead prices: the day up to {last.isoformat()} is incomplete; the forecast "
        "beyond the published prices needs that whole day"
    )


class PublishedDayAhead:
    """``extend_day_ahead`` of one publication, prepared once for the many indexes a
    forecast job asks about until the next one.

    Parameters
    ----------
    published : pandas.Series
        As for ``extend_day_ahead``; kept, not copied (not to be changed).
    step : pandas.Timedelta
        The forecasts' step.
    market_timezone : str
        The market's IANA time zone.

    Raises
    ------
    InputError
        When nothing is published.
    """

    def __init__(self, published: pd.Series, step: pd.Timedelta, market_timezone: str) -> None:
        self.published, self.step, self.timezone = published, pd.Timedelta(step), market_timezone
        prices = published.dropna()
        if prices.empty:
            raise InputError("day-ahead prices: none published; the plan needs at least one day")
        ns = stamps_ns(prices.index)
        self.first_ns, self.last = int(ns[0]), prices.index[-1]
        self.on_grid = not ((ns - ns[0]) % self.step.value).any()
        self.day = round(pd.Timedelta(days=1) / self.step)
        grid = pd.date_range(prices.index[0], self.last, freq=self.step)
        self.known = prices.reindex(grid).to_numpy(float) if self.on_grid else np.empty(0)
        end, day = len(self.known), self.day
        self.complete = end >= day and bool(np.isfinite(self.known[end - day : end]).all())
        self.weekly_ok = end >= 8 * day and bool(np.isfinite(self.known[end - 8 * day :]).all())

    def on(self, index: pd.DatetimeIndex) -> pd.Series:
        """``extend_day_ahead(published, index, market_timezone)``.

        Raises
        ------
        InputError
            As ``extend_day_ahead``.
        """
        t_ns = stamps_ns(index)
        offset = t_ns - self.first_ns
        regular = len(t_ns) > 1 and (np.diff(t_ns) == self.step.value).all()
        if not (self.on_grid and regular and offset[0] >= 0 and offset[0] % self.step.value == 0):
            return extend_day_ahead(self.published, index, self.timezone)
        if not self.complete:
            raise _incomplete(self.last)
        t = offset // self.step.value
        weekly = np.zeros(int(t[-1]) + 1, dtype=bool)
        if self.weekly_ok:
            weekdays = local_weekdays(index, self.timezone, self.step)
            weekly[t] = np.isin(weekdays, WEEKLY_DAYS)
        out = day_ahead_ahead(self.known, t, len(self.known), self.day, weekly)
        return pd.Series(out, index=index, name="day_ahead_per_kwh")
