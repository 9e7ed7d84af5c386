"""PV from the plant's own measurements: persistence, and the intra-day correction of any PV
forecast by how today's measured PV compares with it so far.

Role: the PV forecast of a site without a weather forecast (``forecast.pv_source =
"persistence"``, and every replay, which has no weather forecasts of its past), and the
correction (``forecast.pv_intraday``) applied to whichever PV forecast the daemon makes.

- ``day_before``: each slot's PV (or any measured series) as measured a whole number of
  days earlier, the latest such day before the issue time (yesterday's for the next 24 h,
  the day before for the 24 h after).
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

__all__ = ["DECAY_H", "RATIO_LIMITS", "WINDOW_H", "corrected_kw", "day_before",
           "intraday_ratio", "recent_slots", "stamps_ns", "values_at"]  # fmt: skip

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
    day_ns = DAY.value
    source = t_ns - ((t_ns - t_ns[0]) // day_ns + 1) * day_ns
    return values_at(history, source, before_ns=int(t_ns[0]))


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
