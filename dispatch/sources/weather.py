"""Weather forecast from the Open-Meteo forecast API, as a pvlib-named frame.

Role: ask ``/v1/forecast`` for shortwave (GHI), direct normal (DNI) and diffuse (DHI) irradiance,
2 m temperature and 10 m wind speed, check names and units, and return period means indexed by
UTC period start. May import only ``dispatch.types`` and ``dispatch.sources`` siblings.

Time convention. Open-Meteo gives its radiation variables as the mean over the period
*preceding* each stamp (15 minutes for ``minutely_15``, one hour for ``hourly``), while
temperature and wind are instantaneous values at the stamp. The frame returned here labels each
period by its start: radiation stamped ``t`` becomes the value of the period starting
``t - step``, and temperature and wind of the period ``[t, t + step)`` are the mean of the two
instantaneous values at its ends (trapezoid rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from dispatch.sources.frames import (
    WEATHER_BOUNDS,
    ResampleMethod,
    check_bounds,
    check_finite,
    in_window,
    resample_means,
    to_utc_index,
)
from dispatch.sources.http import Clock, Fetched, HttpClient, LastGoodCache, answer_shape, utc_now
from dispatch.sources.provider import HttpProvider
from dispatch.types import SourceError

OPEN_METEO_URL = "https://api.open-meteo.com/v1/forecast"
Resolution = Literal["minutely_15", "hourly"]
NATIVE_STEP = {"minutely_15": pd.Timedelta(minutes=15), "hourly": pd.Timedelta(hours=1)}
_TIME_PARAMS = {"minutely_15": ("start_minutely_15", "end_minutely_15"),
                "hourly": ("start_hour", "end_hour")}
# Open-Meteo variable -> pvlib column
VARIABLES = {
    "shortwave_radiation": "ghi",
    "direct_normal_irradiance": "dni",
    "diffuse_radiation": "dhi",
    "temperature_2m": "temp_air",
    "wind_speed_10m": "wind_speed",
}
_PRECEDING_MEANS = ("ghi", "dni", "dhi")
_WM2 = {"W/m²": 1.0, "W/m2": 1.0, "W m-2": 1.0}
# accepted unit strings -> factor to the package unit (temperature in degC only)
_UNITS: Mapping[str, Mapping[str, float]] = {
    "ghi": _WM2, "dni": _WM2, "dhi": _WM2,
    "temp_air": {"°C": 1.0, "degC": 1.0},
    "wind_speed": {"m/s": 1.0, "km/h": 1 / 3.6},
}


def _field(doc: Mapping[str, Any], name: str, what: str) -> Any:
    if not isinstance(doc, Mapping) or name not in doc:
        raise SourceError(f"{what}: missing field {name!r} in the answer")
    return doc[name]


def _stamps(block: Mapping[str, Any], doc: Mapping[str, Any], what: str) -> pd.DatetimeIndex:
    times = _field(block, "time", what)
    try:
        naive = pd.to_datetime(pd.Index(times), format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise SourceError(f"{what}: field 'time' is not ISO 8601 times: {exc}") from None
    offset = pd.Timedelta(seconds=float(doc.get("utc_offset_seconds", 0) or 0))
    if naive.tz is not None:
        return to_utc_index(naive)
    return to_utc_index((naive - offset).tz_localize("UTC"))


def _column(
    block: Mapping[str, Any], units: Mapping[str, Any], var: str, n: int, what: str
) -> np.ndarray:
    col = VARIABLES[var]
    raw = _field(block, var, what)
    if not isinstance(raw, list) or len(raw) != n:
        size = len(raw) if isinstance(raw, list) else type(raw).__name__
        raise SourceError(f"{what}: field {var!r} has {size} values, 'time' has {n}")
    unit = _field(units, var, what)
    factor = _UNITS[col].get(unit)
    if factor is None:
        raise SourceError(
            f"{what}: wrong units: {var} is in {unit!r}, expected one of {sorted(_UNITS[col])}"
        )
    try:
        values = np.array([np.nan if v is None else v for v in raw], dtype=float)
    except (TypeError, ValueError):
        raise SourceError(f"{what}: field {var!r} holds non-numbers") from None
    return values * factor


def parse_open_meteo(
    doc: Any, resolution: Resolution = "minutely_15", what: str = "open-meteo"
) -> pd.DataFrame:
    """Turn an Open-Meteo forecast answer into period means by UTC period start.

    Parameters
    ----------
    doc : dict
        The decoded JSON answer.
    resolution : {"minutely_15", "hourly"}
        The block to read.
    what : str
        Provider and URL for messages.

    Returns
    -------
    pandas.DataFrame
        Columns ``ghi``, ``dni``, ``dhi`` (W/m2), ``temp_air`` (degC), ``wind_speed`` (m/s, at
        10 m), one row per period between the first and the last stamp. Trailing periods with
        missing values (the end of the model's range) are dropped.

    Raises
    ------
    SourceError
        On a missing field (named), unknown units, lengths that disagree, missing values inside
        the range, or values outside plausible bounds.
    """
    block = _field(doc, resolution, what)
    units = _field(doc, f"{resolution}_units", what)
    stamps = _stamps(block, doc, what)
    if len(stamps) < 2:
        raise SourceError(f"{what}: at least two time stamps are needed, got {len(stamps)}")
    raw = {VARIABLES[v]: _column(block, units, v, len(stamps), what) for v in VARIABLES}
    data = {}
    for col, v in raw.items():
        data[col] = v[1:] if col in _PRECEDING_MEANS else (v[:-1] + v[1:]) / 2
    frame = pd.DataFrame(data, index=stamps[:-1], columns=list(raw))
    complete = frame.notna().all(axis=1).to_numpy()
    if not complete.any():
        raise SourceError(f"{what}: no period has all of {list(VARIABLES)}")
    frame = frame.iloc[: int(np.flatnonzero(complete)[-1]) + 1]
    check_finite(frame, what, SourceError)
    check_bounds(frame, WEATHER_BOUNDS, what, SourceError)
    return frame


class OpenMeteoWeather(HttpProvider):
    """Open-Meteo forecast for one site.

    Parameters
    ----------
    latitude_deg, longitude_deg : float
        Site position (degrees north, east).
    resolution : {"minutely_15", "hourly"}
        Which of Open-Meteo's time blocks to ask for.
    base_url : str
        Endpoint; tests point it at 127.0.0.1.
    client : HttpClient, optional
        Timeouts and retries; a default one is made when omitted.
    cache : LastGoodCache, optional
        Where the last good answer is kept for ``get``.
    clock : callable
        Returns the current UTC time (used for ages only).
    """

    name = "open-meteo"

    def __init__(
        self,
        latitude_deg: float,
        longitude_deg: float,
        *,
        resolution: Resolution = "minutely_15",
        base_url: str = OPEN_METEO_URL,
        client: HttpClient | None = None,
        cache: LastGoodCache | None = None,
        clock: Clock = utc_now,
    ) -> None:
        if resolution not in NATIVE_STEP:
            raise ValueError(f"resolution = {resolution!r}; use 'minutely_15' or 'hourly'")
        super().__init__(client, cache, clock)
        self.latitude_deg = latitude_deg
        self.longitude_deg = longitude_deg
        self.resolution = resolution
        self.base_url = base_url

    def params(self, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, str]:
        """Query parameters covering the periods ``[start, end)`` (UTC, aligned outward)."""
        native = NATIVE_STEP[self.resolution]
        first = pd.Timestamp(start).tz_convert("UTC").floor(native)
        last = pd.Timestamp(end).tz_convert("UTC").ceil(native)
        p_start, p_end = _TIME_PARAMS[self.resolution]
        return {
            "latitude": f"{self.latitude_deg:g}",
            "longitude": f"{self.longitude_deg:g}",
            self.resolution: ",".join(VARIABLES),
            "timezone": "UTC",
            "wind_speed_unit": "ms",
            "temperature_unit": "celsius",
            p_start: first.strftime("%Y-%m-%dT%H:%M"),
            p_end: last.strftime("%Y-%m-%dT%H:%M"),
        }

    def fetch(
        self,
        start: pd.Timestamp,
        end: pd.Timestamp,
        step: pd.Timedelta | None = None,
        method: ResampleMethod = "interpolate",
    ) -> pd.DataFrame:
        """Weather for the periods ``[start, end)``, resampled to ``step``.

        Parameters
        ----------
        start, end : pandas.Timestamp
            Tz-aware window; periods starting in ``[start, end)`` are returned.
        step : pandas.Timedelta, optional
            Wanted step (default: the provider's); see ``resample_means`` for ``method``.
        method : {"interpolate", "hold"}
            How to fill steps finer than the provider's.

        Returns
        -------
        pandas.DataFrame
            ``ghi``, ``dni``, ``dhi`` (W/m2), ``temp_air`` (degC), ``wind_speed`` (m/s).

        Raises
        ------
        SourceError
            On any transport or content failure, naming provider, URL and cause.
        """
        params = self.params(start, end)
        what = f"{self.name}: {self.base_url}"
        doc = self.client.get_json(self.name, self.base_url, params=params)
        with answer_shape(what):
            frame = parse_open_meteo(doc, self.resolution, what)
        if step is not None:
            frame = resample_means(frame, pd.Timedelta(step), method, SourceError)
        return in_window(frame, start, end, f"{what}: the answer")

    def get(
        self,
        start: pd.Timestamp,
        end: pd.Timestamp,
        step: pd.Timedelta | None = None,
        *,
        method: ResampleMethod = "interpolate",
        allow_stale_s: float = 0.0,
    ) -> Fetched:
        """Like ``fetch``, falling back to the last good answer up to ``allow_stale_s`` old."""
        key = f"{self.latitude_deg:g},{self.longitude_deg:g}:{self.resolution}:{step}"
        return self.with_fallback(
            lambda: self.fetch(start, end, step, method), key, allow_stale_s, start, end
        )
