"""The forecast job's day-ahead prices: one publication prepared once, read again when the
source changes, the same answers as the plain functions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dispatch import tariff
from dispatch.config import load_config
from dispatch.daemon.prices import DayAheadPrices, published_until
from dispatch.forecast.prices import PublishedDayAhead, extend_day_ahead
from dispatch.types import InputError

GERMANY = Path(__file__).resolve().parents[1] / "configs" / "germany-factory-dayahead.toml"
STEP = pd.Timedelta(minutes=15)


def _prices(days: int, nan_at: set[int]) -> pd.Series:
    index = pd.date_range("2018-03-10", periods=days * 96, freq=STEP, tz="UTC")
    values = 0.03 + 0.01 * np.sin(np.arange(len(index)) / 9.0) + (index.day_of_week == 5) * 0.02
    values[[i for i in nan_at if i < len(values)]] = np.nan
    return pd.Series(values, index=index)


@settings(max_examples=50, deadline=None)
@given(
    days=st.integers(1, 16),
    nan_at=st.sets(st.integers(0, 16 * 96 - 1), max_size=4),
    first=st.integers(-100, 16 * 96),
    n=st.integers(2, 200),
    shift_min=st.sampled_from([0, 0, 0, 5]),
)
@example(days=14, nan_at=set(), first=14 * 96 - 50, n=200, shift_min=0)  # a weekend beyond
def test_a_prepared_publication_answers_as_extend_day_ahead(days, nan_at, first, n, shift_min):
    published = _prices(days, nan_at)
    start = published.index[0] + first * STEP + pd.Timedelta(minutes=shift_min)
    index = pd.date_range(start, periods=n, freq=STEP)
    try:
        expected = extend_day_ahead(published, index, "Europe/Berlin")
    except InputError as exc:
        with pytest.raises(InputError, match=str(exc)[:40]):
            PublishedDayAhead(published, STEP, "Europe/Berlin").on(index)
        return
    got = PublishedDayAhead(published, STEP, "Europe/Berlin").on(index)
    pd.testing.assert_series_equal(got, expected, check_exact=True)


@pytest.mark.parametrize("market_tz", ["Europe/Berlin", "America/Santiago", "Asia/Tokyo"])
def test_published_until_is_the_tariff_s_at_every_time_of_the_year(market_tz):
    config = load_config(GERMANY)
    market = config.tariff.day_ahead_market.model_copy(update={"timezone": market_tz})
    config = config.model_copy(
        update={"tariff": config.tariff.model_copy(update={"day_ahead_market": market})}
    )
    nows = pd.date_range("2018-01-01", "2019-01-01", freq="37min", tz="UTC")
    expected = tariff.day_ahead_published_until(config, nows)
    assert [published_until(config, t) for t in nows] == list(expected)


class _Source:
    """A price source whose series can change between reads."""

    def __init__(self, series: pd.Series) -> None:
        self.series, self.reads = series, 0

    def read(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        self.reads += 1
        frame = self.series.rename("price_per_kwh").to_frame()
        return frame[(frame.index >= start) & (frame.index < end)]


def _fresh(config, source, index, now):
    return DayAheadPrices(config, source.read).on(index, now)


def test_the_cached_prices_follow_a_changed_source_and_a_new_publication():
    config = load_config(GERMANY)
    hourly = pd.date_range("2018-03-01", "2018-03-31", freq="h", tz="UTC")
    source = _Source(pd.Series(0.05 + 0.001 * (np.arange(len(hourly)) % 24), index=hourly))
    prices = DayAheadPrices(config, source.read)
    now = pd.Timestamp("2018-03-20T10:07Z")  # before 13:00 Berlin: up to tonight
    index = pd.date_range(now.floor(STEP), periods=145, freq=STEP)
    first = prices.on(index, now)
    pd.testing.assert_series_equal(first, _fresh(config, source, index, now), check_exact=True)
    # a price already published is corrected at the source: the next answer has it
    source.series = source.series.copy()
    source.series[pd.Timestamp("2018-03-20T20:00Z")] = 0.5
    changed = prices.on(index, now)
    assert changed[pd.Timestamp("2018-03-20T20:00Z")] == 0.5
    pd.testing.assert_series_equal(changed, _fresh(config, source, index, now), check_exact=True)
    # 13:00 Berlin: tomorrow's prices are out, and the next day begins at midnight
    for later in ("2018-03-20T12:00Z", "2018-03-20T23:59Z", "2018-03-21T00:01Z"):
        t = pd.Timestamp(later)
        ix = pd.date_range(t.floor(STEP), periods=145, freq=STEP)
        got = prices.on(ix, t)
        pd.testing.assert_series_equal(got, _fresh(config, source, ix, t), check_exact=True)
    assert not np.array_equal(prices.on(index, now).to_numpy(), first.to_numpy())
