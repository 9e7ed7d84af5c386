"""The error book keeps the measured net load as the last value observed for each slot, and
its paths follow a corrected measurement (no stale copy)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dispatch.calendar import FactoryCalendar
from dispatch.forecast.uncertainty import ForecastErrors

H = pd.Timedelta(hours=1)
START = pd.Timestamp("2026-03-02", tz="UTC")


def _book(days: int = 8) -> ForecastErrors:
    """Zero forecasts of 3 h issued every day at 06:00 for ``days`` days; actual 100 + hour."""
    calendar = FactoryCalendar("UTC", weekend_days=())  # every day a working day
    errors = ForecastErrors(calendar, H, 0.9, history_days=10, warmup_days=0)
    index = pd.date_range(START, periods=24 * (days + 1), freq=H)
    errors.observe(pd.Series(100.0 + np.arange(len(index)) % 24, index=index))
    for d in range(days):
        errors.issue(START + pd.Timedelta(days=d, hours=6), np.zeros(3))
    return errors


def test_paths_are_the_measured_errors_of_the_days_before():
    errors = _book()
    paths = errors.paths_kw(START + pd.Timedelta(days=8, hours=6), np.zeros(3))
    assert paths is not None and paths.shape == (8, 3)
    np.testing.assert_array_equal(paths, np.tile([106.0, 107.0, 108.0], (8, 1)))


def test_a_corrected_measurement_is_what_the_paths_read():
    errors = _book()
    day5 = START + pd.Timedelta(days=5, hours=7)
    errors.observe(pd.Series([500.0, np.nan], index=[day5, day5 + H]))  # NaN changes nothing
    paths = errors.paths_kw(START + pd.Timedelta(days=8, hours=6), np.zeros(3))
    expected = np.tile([106.0, 107.0, 108.0], (8, 1))
    expected[2] = [106.0, 500.0, 108.0]  # newest first: day 7, 6, 5, ...
    np.testing.assert_array_equal(paths, expected)


def test_repeated_stamps_of_one_slot_leave_the_last_value():
    errors = _book()
    slot = START + pd.Timedelta(days=6, hours=8)
    errors.observe(pd.Series([1.0, 2.0, 3.0], index=[slot, slot + H / 4, slot + H / 2]))
    paths = errors.paths_kw(START + pd.Timedelta(days=8, hours=6), np.zeros(3))
    assert paths[1, 2] == 3.0


def test_a_slot_measured_before_the_first_is_kept():
    errors = _book()
    before = START - pd.Timedelta(days=1)
    errors.observe(pd.Series([7.0], index=[before]))
    assert errors.first_slot == errors.slot(before)
    paths = errors.paths_kw(START + pd.Timedelta(days=8, hours=6), np.zeros(3))
    np.testing.assert_array_equal(paths, np.tile([106.0, 107.0, 108.0], (8, 1)))
