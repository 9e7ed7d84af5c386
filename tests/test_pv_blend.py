"""The blended PV persistence: the day before pulled towards its recent mean by the carry-over
of daily energy (``intraday.daily_persistence`` / ``blended_day_before``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.forecast import intraday

STEP = pd.Timedelta(minutes=15)
SHAPE = np.clip(np.sin((np.arange(96) / 96 - 0.25) * 2 * np.pi), 0.0, None)  # one day's PV


def _history(scales: np.ndarray, end: str = "2018-06-01") -> pd.Series:
    """PV (kW) of whole days before ``end``, day ``d`` the shape times ``scales[d]``."""
    index = pd.date_range(
        end=pd.Timestamp(end, tz="UTC") - STEP, periods=96 * len(scales), freq=STEP
    )
    return pd.Series((scales[:, None] * SHAPE[None, :]).ravel() * 1000.0, index=index)


def _forecast_index(n: int = 144, start: str = "2018-06-01") -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(start, tz="UTC"), periods=n, freq=STEP)


def test_rho_one_is_the_day_before():
    history = _history(np.random.default_rng(1).uniform(0.2, 1.0, 30))
    index = _forecast_index()
    assert np.array_equal(
        intraday.blended_day_before(history, index, 1.0), intraday.day_before(history, index)
    )


def test_rho_zero_is_the_mean_of_the_last_days_at_each_slot():
    scales = np.arange(1, 31) / 30.0  # day d at (d + 1) / 30
    index = _forecast_index()
    got = intraday.blended_day_before(_history(scales), index, 0.0, days=14)
    # both forecast days read the last 14 measured days (the second one 2 to 15 days back)
    want = np.r_[SHAPE, SHAPE[:48]] * scales[-14:].mean() * 1000.0
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)


def test_the_second_day_is_pulled_by_rho_squared():
    scales = np.r_[np.full(29, 0.5), 1.0]  # a sunny day after four weeks of half sun
    got = intraday.blended_day_before(_history(scales), _forecast_index(), 0.5, days=14)
    mean = (13 * 0.5 + 1.0) / 14
    first, second = got[40] / SHAPE[40] / 1000.0, got[96 + 40] / SHAPE[40] / 1000.0
    np.testing.assert_allclose(
        [first, second], [mean + 0.5 * (1.0 - mean), mean + 0.25 * (1.0 - mean)], rtol=1e-12
    )


def test_persistence_of_an_ar1_energy_is_found():
    rng = np.random.default_rng(7)
    e = np.empty(28)
    e[0] = 0.6
    for d in range(1, 28):  # strongly persistent weather
        e[d] = 0.6 + 0.9 * (e[d - 1] - 0.6) + rng.normal(0, 0.05)
    alternating = np.tile([0.2, 1.0], 14)  # every day the opposite of the last
    index = _forecast_index()
    assert intraday.daily_persistence(_history(e), index) > 0.5
    assert intraday.daily_persistence(_history(alternating), index) == 0.0


def test_too_few_days_keep_plain_persistence():
    index = _forecast_index()
    assert intraday.daily_persistence(_history(np.full(6, 0.7) + np.arange(6) / 10), index) == 1.0
    assert intraday.daily_persistence(pd.Series(dtype=float), index) == 1.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=15, max_size=40), st.floats(0.0, 1.0))
def test_the_blend_lies_between_the_day_before_and_the_mean(scales, rho):
    history = _history(np.asarray(scales))
    index = _forecast_index()
    got = intraday.blended_day_before(history, index, rho)
    latest = intraday.day_before(history, index)
    rho_zero = intraday.blended_day_before(history, index, 0.0)
    lo, hi = np.minimum(latest, rho_zero), np.maximum(latest, rho_zero)
    assert np.all(got >= lo - 1e-9) and np.all(got <= hi + 1e-9)


def test_nothing_at_or_after_the_issue_slot_is_read():
    history = _history(np.random.default_rng(3).uniform(0.2, 1.0, 30), end="2018-06-03")
    index = _forecast_index()
    cut = history[history.index < index[0]]
    assert np.array_equal(
        intraday.blended_day_before(history, index, 0.4),
        intraday.blended_day_before(cut, index, 0.4),
    )
    assert intraday.daily_persistence(history, index) == intraday.daily_persistence(cut, index)
