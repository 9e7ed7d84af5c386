"""The forecast job's fast look-ups give what the pandas operations they replace give."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.forecast import intraday

STEP = pd.Timedelta(minutes=15)
START = pd.Timestamp("2018-03-24T00:00Z")


def _reindexed(history: pd.Series, index: pd.DatetimeIndex) -> np.ndarray:
    """The reference: ``day_before`` as pandas reindexing says it."""
    days = (index - index[0]) // intraday.DAY + 1
    source = index - pd.to_timedelta(np.asarray(days), unit="D")
    return history[history.index < index[0]].reindex(source).to_numpy(dtype=float)


@settings(max_examples=60, deadline=None)
@given(
    kept=st.lists(st.booleans(), min_size=1, max_size=400),
    first=st.integers(0, 500),
    n=st.integers(1, 250),
    reverse=st.booleans(),
)
def test_day_before_is_the_reindexed_history(kept, first, n, reverse):
    stamps = pd.date_range(START, periods=len(kept), freq=STEP)[np.asarray(kept)]
    history = pd.Series(np.arange(len(stamps)) * 1.5 - 3.0, index=stamps)
    if reverse:
        history = history.iloc[::-1]
    index = pd.date_range(START + first * STEP, periods=n, freq=STEP)
    expected = _reindexed(history, index)
    assert np.array_equal(intraday.day_before(history, index), expected, equal_nan=True)


def test_values_at_reads_nothing_at_or_after_before_ns():
    stamps = pd.date_range(START, periods=8, freq=STEP)
    history = pd.Series(np.arange(8.0), index=stamps)
    at = intraday.stamps_ns(stamps)
    got = intraday.values_at(history, at, before_ns=int(at[5]))
    assert np.array_equal(got, [0, 1, 2, 3, 4, np.nan, np.nan, np.nan], equal_nan=True)
    assert np.isnan(intraday.values_at(history.iloc[:0], at)).all()
