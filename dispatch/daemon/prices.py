"""The day-ahead prices of the daemon's forecast: read, cut at publication, forecast beyond.

Role: for a tariff priced on a day-ahead series (``SiteConfig.uses_day_ahead``), give the
forecast job a ``day_ahead_per_kwh`` column on its slots. The prices come from ``[prices]``
(a CSV another job keeps current, or the aWATTar API); only those published by ``now``
(``tariff.day_ahead_published_until``) are used, so a CSV holding a whole past year cannot
leak future prices into a plan; the slots beyond are forecast as the replays forecast them
(``dispatch.forecast.prices``). Imports ``dispatch`` core modules and sources only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from dispatch.config import SiteConfig, minute_of_day
from dispatch.daemon.files import MtimeCache
from dispatch.forecast.lookup import stamps_ns
from dispatch.forecast.prices import PublishedDayAhead
from dispatch.sources import AwattarPrices, read_price_csv
from dispatch.sources.frames import resample_means
from dispatch.sources.prices import COLUMN
from dispatch.types import ConfigError, InputError

#: A cached aWATTar answer older than this is not used (s): the next day's prices are out.
AWATTAR_MAX_STALE_S = 24 * 3600.0


def check_source(config: SiteConfig) -> None:
    """Refuse a tariff priced on day-ahead prices without a ``[prices]`` source.

    Raises
    ------
    ConfigError
        Naming the tariff setting that needs the prices and the missing setting.
    """
    if config.uses_day_ahead and config.prices.source == "none":
        raise ConfigError(
            "the tariff is priced on day-ahead prices (tariff.day_ahead or export.mode = "
            "'day_ahead'), but prices.source = 'none': set [prices] source = 'csv' with "
            "csv_path, or 'awattar'"
        )


#: Reads the prices a source holds for ``[start, end)``: a frame with ``price_per_kwh``.
PriceReader = Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame]


class DayAheadPrices:
    """The configured source of day-ahead prices (``[prices]``).

    Parameters
    ----------
    config : SiteConfig
        The site; ``prices`` names the source, ``tariff.day_ahead_market`` when prices are out.
    read : callable, optional
        Reads the source instead of ``[prices]`` (a replay's recorded series); the prices are
        cut at publication all the same.
    """

    def __init__(self, config: SiteConfig, read: PriceReader | None = None) -> None:
        self.config = config
        p = config.prices
        if read is None:
            check_source(config)
            if p.source == "awattar":
                provider = AwattarPrices(p.awattar_country, base_url=p.awattar_url)
                read = self._awattar(provider)
            else:
                read = self._csv(str(p.csv_path))
        self.read = read
        self.what = "awattar" if p.source == "awattar" else str(p.csv_path)
        # the last publication read and what it gave (the read frame is compared whole)
        self._read: tuple[pd.DataFrame, pd.Series] | None = None
        self._extension: PublishedDayAhead | None = None

    @staticmethod
    def _awattar(provider: AwattarPrices) -> PriceReader:
        def read(start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
            return provider.get(start, end, allow_stale_s=AWATTAR_MAX_STALE_S).data

        return read

    @staticmethod
    def _csv(path: str) -> PriceReader:
        cache = MtimeCache(path, read_price_csv)

        def read(start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
            return cache.get()

        return read

    def published(self, now: pd.Timestamp, until: pd.Timestamp) -> pd.Series:
        """Prices (currency per kWh) published by ``now``, from ``prices.history_days`` before
        it up to ``until`` at most, on the plan step.

        Raises
        ------
        InputError, SourceError
            For an unreadable or irregular file or answer (named), or when none is published.
        """
        p = self.config.prices
        start = now.floor("D") - pd.Timedelta(days=p.history_days)
        out = published_until(self.config, now)
        end = min(until, out) if out is not None else until
        frame = _between(self.read(start, end), start, end)
        if len(frame) < 2:
            raise InputError(
                f"day-ahead prices ({self.what}): none published between {start.isoformat()} "
                f"and {end.isoformat()}"
            )
        last = self._read
        if last is not None and _same(last[0], frame):
            return last[1]  # the same prices as last time: the same series
        step = pd.Timedelta(minutes=self.config.plan.step_min)
        series = resample_means(frame, step, "hold")[COLUMN]
        self._read = (frame, series)
        return series

    def on(self, index: pd.DatetimeIndex, now: pd.Timestamp) -> pd.Series:
        """``day_ahead_per_kwh`` on the forecast's ``index``: published, else forecast."""
        step = index[1] - index[0]
        published = self.published(now, index[-1] + step)
        market = self.config.tariff.day_ahead_market
        if market is None:  # no publication time: the source is taken as known ahead
            return published.reindex(index).rename("day_ahead_per_kwh")
        if self._extension is None or self._extension.published is not published:
            self._extension = PublishedDayAhead(published, step, market.timezone)
        return self._extension.on(index)


def _between(frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The rows of ``frame`` stamped in ``[start, end)``."""
    index = frame.index
    if isinstance(index, pd.DatetimeIndex) and index.is_monotonic_increasing:
        ns = stamps_ns(index)
        lo, hi = np.searchsorted(ns, [start.value, end.value], side="left")
        return frame.iloc[lo:hi]
    return frame[(index >= start) & (index < end)]


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two frames hold the same stamps (and time zone), columns, dtypes and values
    (``DataFrame.equals`` compares the columns' dtypes)."""
    return a.index.dtype == b.index.dtype and a.equals(b)


def published_until(config: SiteConfig, now: pd.Timestamp) -> pd.Timestamp | None:
    """``tariff.day_ahead_published_until`` for one time ``now`` (tz-aware), in scalar
    arithmetic: the exclusive UTC end of the last delivery day whose prices are out."""
    market = config.tariff.day_ahead_market
    if market is None:
        return None
    wall = pd.Timestamp(now).tz_convert(market.timezone).tz_localize(None)
    days_ahead = 2 if wall.hour * 60 + wall.minute >= minute_of_day(market.published) else 1
    end = wall.normalize() + pd.Timedelta(days=days_ahead)
    local = end.tz_localize(market.timezone, ambiguous=True, nonexistent="shift_forward")
    return local.tz_convert("UTC")
