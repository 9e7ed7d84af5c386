"""Forecasters for replays: what a controller is told about the horizon at each step, and how
far the net load may exceed what it was told.

Role: the forecast side of ``sim.backtest``. A forecaster reads the padded truth only before the
step's first slot (except ``perfect``); ``EmpiricalMargin`` learns the spread of a forecaster's
own past errors as the replay goes. Depends on ``dispatch`` (calendar, load forecast, types).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from dispatch.calendar import WORK, FactoryCalendar
from dispatch.config import SiteConfig
from dispatch.forecast.load import forecast_load
from dispatch.optimise.outcome import SlotInputs

#: A forecaster maps (truth with padding, first slot, horizon) to (pv_kw, load_kw) forecasts;
#: it may read the truth only before the first slot, except the ``perfect`` one.
Forecaster = Callable[[SlotInputs, int, int], tuple[np.ndarray, np.ndarray]]


def perfect(truth: SlotInputs, i: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """The future as it will be (the upper bound of any forecaster)."""
    return truth.pv_kw[i : i + horizon], truth.load_kw[i : i + horizon]


def _lagged(values: np.ndarray, i: int, horizon: int, lag: int) -> np.ndarray:
    """``values[t - k * lag]`` for t in ``[i, i + horizon)``, with the smallest k >= 1 that
    reaches before ``i``; before any history, the first value."""
    t = np.arange(i, i + horizon)
    k = (t - i) // lag + 1
    src = t - k * lag
    return values[np.where(src >= 0, src, 0)]


def persistence(truth: SlotInputs, i: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Load of the same time last week, PV of the same time yesterday (naive forecasts)."""
    day = round(24 / truth.dt_h)
    return _lagged(truth.pv_kw, i, horizon, day), _lagged(truth.load_kw, i, horizon, 7 * day)


def pv_scaled_persistence(
    truth: SlotInputs, i: int, horizon: int, window_h: float = 2.0, decay_h: float = 6.0
) -> np.ndarray:
    """Yesterday's PV scaled by how today compares so far (kW): the ratio of the PV measured
    over the last ``window_h`` hours to yesterday's over the same hours (within [0.25, 4]),
    fading back to 1 with lead time (e-folding ``decay_h`` hours). Without PV in that window
    (night) or its yesterday's counterpart: plain persistence."""
    day = round(24 / truth.dt_h)
    pv = _lagged(truth.pv_kw, i, horizon, day)
    n = max(1, round(window_h / truth.dt_h))
    if i < day + n:
        return pv
    today = float(truth.pv_kw[i - n : i].sum())
    yesterday = float(truth.pv_kw[i - n - day : i - day].sum())
    if today <= 0.0 or yesterday <= 0.0:
        return pv
    ratio = min(max(today / yesterday, 0.25), 4.0)
    lead_h = np.arange(horizon) * truth.dt_h
    return pv * (1.0 + (ratio - 1.0) * np.exp(-lead_h / decay_h))


def load_forecaster(config: SiteConfig, history_days: int = 42) -> Forecaster:
    """The daemon's own load forecaster (``dispatch.forecast.load``) on the measured load
    before each slot, with the site's factory calendar and its planned shutdowns
    (``forecast.shutdowns``); PV as ``pv_scaled_persistence`` (no weather forecasts in a
    replay; on the German year its mean absolute error over the next 4 h is 76 kW against 168
    kW for plain persistence). Before one day of history: plain persistence.
    """
    calendar = FactoryCalendar.for_load(config)

    def forecast(truth: SlotInputs, i: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        pv, naive_load = persistence(truth, i, horizon)
        day = round(24 / truth.dt_h)
        if i < day:
            return pv, naive_load
        pv = pv_scaled_persistence(truth, i, horizon)
        first = max(0, i - history_days * day)
        history = pd.Series(truth.load_kw[first:i], index=truth.index[first:i])
        step = truth.index[1] - truth.index[0]
        load = forecast_load(history, truth.index[i], calendar, horizon, step)
        return pv, load.to_numpy()

    return forecast


def noisy(sigma_frac: float = 0.1, seed: int = 0) -> Forecaster:
    """Truth times a seeded multiplicative error growing with lead time (an error model)."""
    rng = np.random.default_rng(seed)

    def forecast(truth: SlotInputs, i: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        lead = np.sqrt(np.arange(1, horizon + 1) / horizon)
        pv, load = perfect(truth, i, horizon)
        e_pv, e_load = rng.standard_normal((2, horizon)) * sigma_frac * lead
        return np.maximum(pv * (1 + e_pv), 0.0), np.maximum(load * (1 + e_load), 0.0)

    return forecast


class EmpiricalMargin:
    """How far the net load may exceed its forecast at risk ``level`` (kW): empirical quantiles
    of the controller's own past errors, learnt during the replay.

    Each step the replay hands over the forecast it just issued; once a slot is past, its errors
    (actual minus forecast net load, kW) at every lead time are known. Once a day the errors of
    the last ``history_days`` days are grouped by working day or not, site-local hour and lead
    time (under 1 h, 1-4 h, 4-12 h, beyond) and their ``level`` quantile is taken, falling back
    to (hour, lead) below ``min_samples`` errors. Forecasts issued in the first
    ``warmup_days`` of the replay are left out: made with almost no history, their errors say
    little about the forecaster (a daemon has its history when commissioned). Until a slot's
    group has errors, its margin is ``cold_start_frac`` of the forecast load: a forecaster
    without history is the least to be trusted, and the errors of other hours (the night's,
    in the first days after the warmup) say nothing about the day's peaks. Only slots before
    the step are read.

    Parameters
    ----------
    truth : SlotInputs
        The padded period (``sim.backtest``); its load and PV are read only before each step.
    horizon : int
        Slots per forecast.
    level : float
        Quantile level of the error, in [0.5, 1).
    calendar : FactoryCalendar
        Working days of the site.
    history_days : int
        Days of past errors per refresh.
    min_samples : int
        Errors a group needs to be used.
    warmup_days : int
        Days at the start whose forecasts do not count.
    cold_start_frac : float
        Margin as a share of the forecast load where no errors are known. 0.4 was chosen on
        the 2018 replays (share of the perfect-foresight saving: 0.25 gave 66.1 % German and
        60.8 % Korean, 0.4 gave 68.1 % and 61.3 %; the German January went from 29 % to 58 %).
    """

    LEAD_EDGES_H = (1.0, 4.0, 12.0)

    def __init__(
        self,
        truth: SlotInputs,
        horizon: int,
        level: float,
        calendar: FactoryCalendar,
        history_days: int = 28,
        min_samples: int = 50,
        warmup_days: int = 14,
        cold_start_frac: float = 0.4,
    ):
        self.level, self.horizon = level, horizon
        self.day = round(24 / truth.dt_h)
        self.history = history_days * self.day
        self.min_samples = min_samples
        self.warmup = warmup_days * self.day
        self.cold_start_frac = cold_start_frac
        self.net_true = truth.load_kw - truth.pv_kw
        self.issued = np.full((len(truth.index), horizon), np.nan)
        local = truth.index.tz_convert(calendar.timezone)
        dates = [d.date() for d in local.tz_localize(None).normalize()]
        uniq = sorted(set(dates))
        work = dict(zip(uniq, calendar.day_types(uniq), strict=True))
        self.work = np.array([work[d] == WORK for d in dates], dtype=np.int64)
        self.hour = np.asarray(local.hour, dtype=np.int64)
        lead_h = np.arange(horizon) * truth.dt_h
        self.bucket = np.searchsorted(self.LEAD_EDGES_H, lead_h, side="right")
        self.table: np.ndarray | None = None
        self.table_day = -1

    def __call__(self, i: int, pv_kw: np.ndarray, load_kw: np.ndarray) -> np.ndarray:
        """Record the forecast issued at slot ``i`` and return the margin for its horizon."""
        self.issued[i] = load_kw - pv_kw
        if i // self.day != self.table_day:
            self.table_day = i // self.day
            self.table = self._refresh(i)
        cold = self.cold_start_frac * np.maximum(load_kw, 0.0)
        if self.table is None:
            return cold
        t = i + np.arange(self.horizon)
        known = self.table[self.work[t], self.hour[t], self.bucket]
        return np.where(np.isfinite(known), np.maximum(known, 0.0), cold)

    def scenarios(self, i: int, min_paths: int = 5) -> np.ndarray | None:
        """Net load paths for the forecast issued at slot ``i`` (kW, one row per path): that
        forecast plus the error path of each forecast issued at the same time of day on the
        last ``history_days`` days of the same kind (working or not), after the warmup; None
        below ``min_paths`` such days. Call after ``__call__`` for slot ``i``."""
        issue = i - np.arange(1, self.history // self.day + 1) * self.day
        known = (issue >= self.warmup) & (issue + self.horizon <= i)  # all its slots are past
        issue = issue[known & (self.work[np.maximum(issue, 0)] == self.work[i])]
        if len(issue) < min_paths:
            return None
        slots = issue[:, None] + np.arange(self.horizon)[None, :]
        errors = self.net_true[slots] - self.issued[issue]
        return self.issued[i][None, :] + errors

    def _refresh(self, i: int) -> np.ndarray | None:
        """Quantile table [working, hour, lead bucket] from errors of slots before ``i``; NaN
        where no group has ``min_samples`` errors."""
        slots = np.arange(max(0, i - self.history), i)[:, None]
        leads = np.arange(self.horizon)[None, :]
        issue = slots - leads
        forecast = self.issued[np.maximum(issue, 0), np.broadcast_to(leads, issue.shape)]
        err = np.where(issue >= self.warmup, self.net_true[slots] - forecast, np.nan)
        ok = np.isfinite(err)
        if ok.sum() < self.min_samples:
            return None
        frame = pd.DataFrame({
            "work": np.broadcast_to(self.work[slots], err.shape)[ok],
            "hour": np.broadcast_to(self.hour[slots], err.shape)[ok],
            "lead": np.broadcast_to(self.bucket[leads], err.shape)[ok],
            "err": err[ok],
        })  # fmt: skip
        n_lead = len(self.LEAD_EDGES_H) + 1
        table = np.full((2, 24, n_lead), np.nan)
        for keys in (["hour", "lead"], ["work", "hour", "lead"]):
            grouped = frame.groupby(keys)["err"]
            q = grouped.quantile(self.level)[grouped.size() >= self.min_samples]
            for key, value in q.items():
                key = key if isinstance(key, tuple) else (key,)
                sel = tuple(slice(None) if k not in keys else key[keys.index(k)]
                            for k in ("work", "hour", "lead"))  # fmt: skip
                table[sel] = value
        return table
