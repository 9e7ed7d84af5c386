"""PV from the plant's own measurements: persistence, and the intra-day correction of any PV
forecast by how today's measured PV compares with it so far.

Role: the PV forecast of a site without a weather forecast (``forecast.pv_source =
"persistence"``, and every replay, which has no weather forecasts of its past), and the
correction (``forecast.pv_intraday``) applied to whichever PV forecast the daemon makes.

- ``day_before``: each slot's PV (or any measured series) as measured a whole number of
  days earlier, the latest such day before the issue time (yesterday's for the next 24 h,
  the day before for the 24 h after).
- ``blended_day_before`` and ``daily_persistence``: ``day_before`` pulled towards the mean
  of the two weeks before it by how much of a day's PV energy carries over to the next on
  the site's own last four weeks (the lag-1 autocorrelation ``rho`` of daily energy; the
  forecast ``k`` days ahead keeps ``rho**k`` of the day's departure from the mean). A sunny
  day after a sunny day is then not taken as certain, nor a dull day as lasting. On the 2018
  replays of the daemon's path (full years, one run each) it moved the German factory from
  68.6 % to 71.0 % of the perfect-foresight saving and the Korean steel plant from 66.7 % to
  67.7 %; ``rho`` is learnt from each site's past, not set.
- ``intraday_ratio`` and ``corrected_kw``: the measured PV over the last ``WINDOW_H`` hours
  against what the same method gives for those hours, within ``RATIO_LIMITS``, applied to the
  forecast with a weight fading with lead time (e-folding ``DECAY_H`` hours). On the German
  2018 year, yesterday's PV scaled this way missed the next 4 h by 76 kW on average (mean
  absolute error) against 168 kW for plain persistence.

Pure: no I/O, no wall clock. Imports numpy, pandas and ``dispatch.forecast.lookup``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dispatch.forecast.lookup import stamps_ns, values_at

__all__ = [
    "DECAY_H",
    "RATIO_LIMITS",
    "WINDOW_H",
    "blended_day_before",
    "corrected_kw",
    "daily_persistence",
    "day_before",
    "intraday_ratio",
    "recent_slots",
    "stamps_ns",
    "values_at",
]

#: Hours of measured PV the ratio compares.
WINDOW_H = 2.0
#: Lead time (h) over which the correction fades to nothing (e-folding).
DECAY_H = 6.0
#: The ratio is held within these bounds.
RATIO_LIMITS = (0.25, 4.0)
DAY = pd.Timedelta(days=1)


def day_before(history: pd.Series, index: pd.DatetimeIndex) -> np.ndarray:
    """Each slot of ``index`` as measured a whole number of days earlier (in the unit of
    ``history``: PV in kW, intensity in g/kWh): for a slot ``t``, ``history`` at
    ``t - k days`` with the smallest ``k >= 1`` that lies before ``index[0]``, the issue
    slot. NaN where the history has no value there.

    Parameters
    ----------
    history : pandas.Series
        Measured values by UTC slot start, on the step of ``index``.
    index : pandas.DatetimeIndex
        The forecast's slots (UTC period starts); only history before ``index[0]`` is read.
    """
    t_ns = stamps_ns(index)
    return values_at(history, t_ns - _lag_days(t_ns) * DAY.value, before_ns=int(t_ns[0]))


def _lag_days(t_ns: np.ndarray) -> np.ndarray:
    """Per slot, the fewest whole days back that lie before the issue slot ``t_ns[0]``."""
    return (t_ns - t_ns[0]) // DAY.value + 1


def daily_persistence(history: pd.Series, index: pd.DatetimeIndex, days: int = 28) -> float:
    """How much of a day's PV energy carries over to the next: the lag-1 autocorrelation of
    the last ``days`` whole-day energies before ``index[0]`` (days ending at the issue
    slot), within [0, 1]; 1 (plain persistence) with fewer than 7 complete days.

    For an energy that varies about its recent mean ``m`` as ``E_d - m = rho (E_{d-1} - m)``,
    the best forecast ``k`` days ahead is ``m + rho**k (E_{d-k} - m)`` (``blended_day_before``).
    """
    issue, second = (int(t) for t in stamps_ns(index[:2]))
    step_ns = second - issue
    per_day = DAY.value // step_ns
    at = issue - np.arange(days * per_day, 0, -1, dtype=np.int64) * step_ns
    values = values_at(history, at, before_ns=issue).reshape(days, per_day)
    energy = values.sum(axis=1)[np.isfinite(values).all(axis=1)]
    if energy.size < 7 or np.std(energy[:-1]) <= 0 or np.std(energy[1:]) <= 0:
        return 1.0
    rho = float(np.corrcoef(energy[:-1], energy[1:])[0, 1])
    return min(max(rho, 0.0), 1.0) if np.isfinite(rho) else 1.0


def blended_day_before(
    history: pd.Series, index: pd.DatetimeIndex, rho: float, days: int = 14
) -> np.ndarray:
    """``day_before`` pulled towards the mean of the ``days`` days before it, slot by slot:
    ``m_t + rho**k (x_t - m_t)`` with ``x_t`` the value ``k`` days back (``day_before``) and
    ``m_t`` the mean of the values ``k .. k + days - 1`` days back (NaN ignored; ``x_t``
    where none). ``rho = 1`` gives ``day_before``."""
    t_ns = stamps_ns(index)
    lag = _lag_days(t_ns)
    latest = values_at(history, t_ns - lag * DAY.value, before_ns=int(t_ns[0]))
    back = (lag[None, :] + np.arange(days)[:, None]) * DAY.value
    past = values_at(history, (t_ns[None, :] - back).ravel(), before_ns=int(t_ns[0]))
    past = past.reshape(days, len(t_ns))
    seen = np.isfinite(past).sum(axis=0)
    mean = np.where(seen > 0, np.nansum(past, axis=0) / np.maximum(seen, 1), latest)
    return mean + rho ** lag.astype(float) * (latest - mean)


def intraday_ratio(measured_kw: np.ndarray, expected_kw: np.ndarray) -> float | None:
    """Measured over expected PV energy in the recent window, within ``RATIO_LIMITS``; None
    when either is not positive (night, or nothing measured) or not finite."""
    measured = float(np.sum(measured_kw))
    expected = float(np.sum(expected_kw))
    if not (np.isfinite(measured) and np.isfinite(expected)) or measured <= 0 or expected <= 0:
        return None
    lo, hi = RATIO_LIMITS
    return min(max(measured / expected, lo), hi)


def corrected_kw(forecast_kw: np.ndarray, ratio: float | None, dt_h: float) -> np.ndarray:
    """``forecast_kw`` scaled by ``ratio`` at the first slot, fading back to 1 with lead time
    (slot ``k`` at ``k * dt_h`` hours, e-folding ``DECAY_H``); unchanged without a ratio."""
    forecast = np.asarray(forecast_kw, dtype=float)
    if ratio is None:
        return forecast
    lead_h = np.arange(len(forecast)) * dt_h
    return forecast * (1.0 + (ratio - 1.0) * np.exp(-lead_h / DECAY_H))


def recent_slots(first: pd.Timestamp, step: pd.Timedelta) -> pd.DatetimeIndex:
    """The slots of the last ``WINDOW_H`` hours before the slot starting at ``first``."""
    n = max(1, round(pd.Timedelta(hours=WINDOW_H) / step))
    return pd.date_range(end=pd.Timestamp(first) - step, periods=n, freq=step)
