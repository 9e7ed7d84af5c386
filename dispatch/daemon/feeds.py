"""The forecast's input seams: weather, day-ahead prices and grid intensity as known at a time.

Role: each feed answers for the slots of a forecast what a plant would know at ``now``, with a
note saying where it came from and whether it is a fallback:

- ``WeatherFeed`` (``[weather]``): clear sky, Open-Meteo, or a file another job keeps
  current; asked again every ``weather.refresh_min``; the last good answer is used up to
  ``weather.max_age_h`` old, then clear sky, named as the fallback;
- day-ahead prices (``dispatch.daemon.prices.DayAheadPrices``): published by ``now`` only,
  forecast beyond;
- ``IntensityFeed`` (``[carbon] source``): the configured factor or profile (known ahead), a
  measured CSV (known up to ``now``; beyond, the same time a day earlier) or Electricity
  Maps' forecast; a failure falls back to the configured factor and says so.

A replay builds the same feeds with ``read`` functions over its recorded series, so its plans
see exactly what the daemon's would. Imports ``sources``, ``forecast`` and ``config``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dispatch.carbon import accounting
from dispatch.config import SiteConfig
from dispatch.daemon.files import MtimeCache
from dispatch.daemon.prices import DayAheadPrices
from dispatch.forecast.intraday import day_before
from dispatch.sources import (
    ElectricityMapsCI,
    HttpClient,
    OpenMeteoWeather,
    read_ci_csv,
    read_weather_csv,
    resample_means,
)
from dispatch.sources.carbon_intensity import ELECTRICITY_MAPS_URL
from dispatch.sources.weather import OPEN_METEO_URL
from dispatch.types import ConfigError, DispatchError

log = logging.getLogger("dispatch.daemon")
#: Reads a source's frame for the window ``[start, end)``.
Reader = Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame]


@dataclass(frozen=True)
class Answer:
    """What a feed gave for a forecast.

    Attributes
    ----------
    frame : pandas.DataFrame or None
        Values on the slots asked for; None: use the configured default (clear sky, the
        configured intensity).
    note : str
        Where it came from (``"open_meteo, 1.2 h old"``, ``"fallback: clear sky (...)"``;
        empty for a configured default).
    fallback : bool
        True when the configured source could not answer.
    """

    frame: pd.DataFrame | None
    note: str
    fallback: bool = False


def _on_step(frame: pd.DataFrame, step: pd.Timedelta) -> pd.DataFrame:
    """``frame`` on the plan step (means of finer data, interpolated coarser data)."""
    if len(frame) > 1 and frame.index[1] - frame.index[0] != step:
        return resample_means(frame, step)
    return frame


class WeatherFeed:
    """The weather for the PV forecast (``[weather]``).

    Parameters
    ----------
    config : SiteConfig
        ``weather`` and the site's position.
    read : callable, optional
        Reads weather for ``[start, end)`` (pvlib columns) instead of the configured source.
    client : HttpClient, optional
        Timeouts and retries of the Open-Meteo client (tests shorten them).
    """

    def __init__(self, config: SiteConfig, read: Reader | None = None,
                 client: HttpClient | None = None) -> None:  # fmt: skip
        w = config.weather
        self.config, self.source = config, w.source if read is None else "recorded"
        self.refresh = pd.Timedelta(minutes=w.refresh_min)
        self.max_age = pd.Timedelta(hours=w.max_age_h)
        self.read = read or self._reader(config, client)
        self._last: tuple[pd.Timestamp, pd.DataFrame] | None = None

    @staticmethod
    def _reader(config: SiteConfig, client: HttpClient | None) -> Reader | None:
        w, step = config.weather, pd.Timedelta(minutes=config.plan.step_min)
        if w.source == "open_meteo":
            provider = OpenMeteoWeather(config.site.latitude_deg, config.site.longitude_deg,
                                        base_url=w.open_meteo_url or OPEN_METEO_URL,
                                        client=client)  # fmt: skip
            return lambda start, end: provider.fetch(start, end, step)
        if w.source == "file":
            cache = MtimeCache(str(w.file_path), read_weather_csv)
            return lambda start, end: cache.get()
        return None

    def __call__(self, index: pd.DatetimeIndex, now: pd.Timestamp) -> Answer:
        """Weather on ``index`` (which may start before ``now``, for the intra-day window)."""
        if self.read is None:
            return Answer(None, "")  # clear sky is the configured source
        step = index[1] - index[0]
        fresh = self._last is not None and now - self._last[0] < self.refresh
        error = None
        if not fresh:
            try:
                # ask ``max_age`` beyond the horizon: a last good answer still covers it
                frame = _on_step(self.read(index[0], index[-1] + step + self.max_age), step)
                self._last = (now, frame)
            except DispatchError as exc:
                error = str(exc)
        if self._last is not None and now - self._last[0] <= self.max_age:
            fetched, frame = self._last
            if index.isin(frame.index).all():
                age_h = (now - fetched) / pd.Timedelta(hours=1)
                note = f"{self.source}, {age_h:.1f} h old" + (f"; now failing: {error}"
                                                               if error else "")  # fmt: skip
                return Answer(frame.loc[index], note)
            error = error or f"{self.source} does not cover {index[0]} .. {index[-1]}"
        why = error or f"{self.source}: last good answer older than {self.max_age}"
        log.warning("weather: %s; PV from clear sky", why)
        return Answer(None, f"fallback: clear sky ({why})", fallback=True)


class IntensityFeed:
    """The grid intensity of a forecast's slots (``[carbon] source``).

    Parameters
    ----------
    config : SiteConfig
        ``carbon``.
    read : callable, optional
        Reads the measured intensity (``ci_g_per_kwh``) for ``[start, end)`` instead of the
        configured source (a replay's recorded series, taken as a measured one).
    """

    def __init__(self, config: SiteConfig, read: Reader | None = None) -> None:
        c = config.carbon
        self.config = config
        self.source = "recorded" if read is not None else c.source
        self.read = read or self._reader(config)

    @staticmethod
    def _reader(config: SiteConfig) -> Reader | None:
        c = config.carbon
        if c.source == "csv":
            cache = MtimeCache(str(c.csv_path), read_ci_csv)
            return lambda start, end: cache.get()
        if c.source == "electricity_maps":
            token = os.environ.get(c.electricity_maps_token_env)
            if not token:
                raise ConfigError(f"carbon.source = 'electricity_maps' needs its API token in "
                                  f"${c.electricity_maps_token_env}")  # fmt: skip
            api = ElectricityMapsCI(str(c.electricity_maps_zone), token,
                                    base_url=c.electricity_maps_url or ELECTRICITY_MAPS_URL)
            return lambda start, end: api.get_forecast(start=start, end=end,
                                                       allow_stale_s=6 * 3600.0).data
        return None

    def __call__(self, index: pd.DatetimeIndex, now: pd.Timestamp) -> Answer:
        """``ci_g_per_kwh`` on ``index``; None for the configured factor or profile."""
        if self.read is None:
            return Answer(None, "configured")
        step = index[1] - index[0]
        try:
            measured = self.source in ("csv", "recorded")
            start = index[0] - pd.Timedelta(days=2) if measured else index[0]
            frame = _on_step(self.read(start, index[-1] + step), step)
        except DispatchError as exc:
            log.warning("carbon intensity: %s; using the configured factor", exc)
            return Answer(None, f"fallback: configured ({exc})", fallback=True)
        series = frame["ci_g_per_kwh"]
        values = day_before(series, index) if measured else series.reindex(index).to_numpy()
        gaps = ~np.isfinite(values)
        if gaps.any():
            default = accounting.grid_intensity_g_per_kwh(self.config, index).to_numpy()
            values = np.where(gaps, default, values)
        out = pd.DataFrame({"ci_g_per_kwh": values}, index=index)
        return Answer(out, self.source + (" (gaps: configured)" if gaps.any() else ""))


@dataclass(frozen=True)
class Feeds:
    """The daemon's input seams (see the module docstring).

    Attributes
    ----------
    weather : WeatherFeed
    intensity : IntensityFeed
    day_ahead : DayAheadPrices or None
        Only for a tariff priced on day-ahead prices.
    """

    weather: WeatherFeed
    intensity: IntensityFeed
    day_ahead: DayAheadPrices | None

    @classmethod
    def from_config(cls, config: SiteConfig) -> Feeds:
        """The configured sources. Raises ``ConfigError`` for a source that cannot work."""
        day_ahead = DayAheadPrices(config) if config.uses_day_ahead else None
        return cls(WeatherFeed(config), IntensityFeed(config), day_ahead)
