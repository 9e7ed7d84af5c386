"""The daemon's fast paths against what they stand for: the slot history's array table
against the slots it closed (never stale, whatever the order readings arrive in), and the
billing month of a time against pandas' local month."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.daemon.history import COLUMNS, SlotHistory
from dispatch.daemon.state import billing_month_of

STEP = pd.Timedelta(minutes=15)
T0 = pd.Timestamp("2026-03-01", tz="UTC")


def _series_from_slots(h: SlotHistory, column: str, since: pd.Timestamp | None) -> pd.Series:
    """What ``series`` must return: the closed slots' means, read from the slots' dict."""
    i = COLUMNS.index(column)
    first = -math.inf if since is None else int(since.value // STEP.value)
    slots = sorted(k for k in h._closed if k >= first)
    index = pd.DatetimeIndex(np.asarray(slots, dtype=np.int64) * STEP.value, tz="UTC")
    return pd.Series([h._closed[k][i] for k in slots], index=index, dtype=float)


_reading = st.tuples(
    st.integers(-3, 6),  # slots moved from the last reading (back: a clock step back)
    st.floats(0, 1e3) | st.just(math.nan),
    st.floats(0, 1e3),
    st.floats(-1e3, 1e3),
    st.booleans(),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(_reading, min_size=1, max_size=120), st.integers(1, 40), st.data())
def test_series_equal_the_closed_slots_after_every_reading(readings, keep_slots, data):
    h = SlotHistory(STEP, keep_slots * STEP)
    slot = 0
    for move, load, pv, grid, limited in readings:
        slot = max(slot + move, 0)
        t = T0 + slot * STEP + pd.Timedelta(minutes=1)
        h.close_before(t)
        h.add(t, load, pv, grid, limited)
        since = T0 + data.draw(st.integers(-2, slot + 2)) * STEP
        for column in COLUMNS:
            for s in (None, since):
                pd.testing.assert_series_equal(
                    h.series(column, s), _series_from_slots(h, column, s)
                )


def test_a_slot_closed_again_replaces_its_means():
    h = SlotHistory(STEP, pd.Timedelta(days=1))
    h.add(T0, 10.0, 1.0, 5.0)
    h.add(T0 + STEP, 20.0, 2.0, 6.0)  # closes the first slot
    h.add(T0, 30.0, 3.0, 7.0)  # the clock went back: closes the second, reopens the first
    h.add(T0 + 2 * STEP, 40.0, 4.0, 8.0)  # closes the first again
    assert h.series("p_load_kw").tolist() == [30.0, 20.0]
    h.add(T0 + 3 * STEP, 1.0, 0.0, 0.0)
    assert h.series("p_load_kw").tolist() == [30.0, 20.0, 40.0]


def test_old_slots_leave_the_series_and_a_returned_series_is_a_copy():
    h = SlotHistory(STEP, 4 * STEP)
    for k in range(10):
        h.add(T0 + k * STEP, float(k), 0.0, 0.0)
    load = h.series("p_load_kw")
    assert load.tolist() == [4.0, 5.0, 6.0, 7.0, 8.0]  # slot 9 still open; 4 slots kept back
    load.iloc[:] = -1.0
    assert h.series("p_load_kw").tolist() == [4.0, 5.0, 6.0, 7.0, 8.0]


@settings(max_examples=100, deadline=None)
@given(
    st.integers(-30 * 365 * 24 * 4, 60 * 365 * 24 * 4),
    st.sampled_from(
        (
            "UTC",
            "Europe/Berlin",
            "Asia/Shanghai",
            "America/Santiago",
            "Pacific/Apia",
            "Australia/Lord_Howe",
            "Asia/Kathmandu",
        )
    ),
)
def test_billing_month_of_is_the_pandas_local_month(quarters, zone):
    t = pd.Timestamp("2000-01-01", tz="UTC") + pd.Timedelta(minutes=15 * quarters)
    expected = t.tz_convert(zone).strftime("%Y-%m")
    assert billing_month_of(t.to_pydatetime(), zone) == expected
    assert billing_month_of(t, zone) == expected
