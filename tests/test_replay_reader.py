"""The replay's recorded-feed reader: the rows of ``[start, end)``, as a boolean mask gives."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.replay import _reader

INDEX = pd.date_range("2018-03-24", periods=300, freq="15min", tz="UTC")
SERIES = pd.Series(range(300), index=INDEX, dtype=float)


def _masked(series: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    frame = series.rename("v").to_frame()
    return frame[(frame.index >= start) & (frame.index < end)]


@settings(max_examples=60, deadline=None)
@given(st.integers(-20, 320), st.integers(-20, 320), st.integers(0, 14))
def test_reader_rows_match_the_mask(a: int, b: int, minute: int) -> None:
    """Any window, on or off the slot grid, empty or beyond the series."""
    start = INDEX[0] + pd.Timedelta(minutes=15 * a + minute)
    end = INDEX[0] + pd.Timedelta(minutes=15 * b)
    got = _reader(SERIES, "v")(start, end)
    pd.testing.assert_frame_equal(got, _masked(SERIES, start, end))


def test_reader_unsorted_series_falls_back_to_the_mask() -> None:
    shuffled = SERIES.iloc[::-1]
    start, end = INDEX[10], INDEX[50]
    got = _reader(shuffled, "v")(start, end)
    pd.testing.assert_frame_equal(got, _masked(shuffled, start, end))
    assert len(got) == 40


def test_reader_answer_is_a_copy() -> None:
    """Changing what it returned leaves the next answer alone."""
    read = _reader(SERIES, "v")
    first = read(INDEX[0], INDEX[5])
    first.iloc[0, 0] = -1.0
    assert read(INDEX[0], INDEX[5]).iloc[0, 0] == 0.0
