"""Grid carbon intensity (g CO2 per kWh): constant, 24-hour profile, CSV series, Electricity Maps.

Role: give the planner a ``ci_g_per_kwh`` column on a UTC period-start index from a file or the
Electricity Maps v3 API (the configured constant or profile is expanded by the pure
``dispatch.carbon.accounting.grid_intensity_g_per_kwh``) (``/carbon-intensity/latest`` and
``/carbon-intensity/forecast``, ``auth-token`` header). May import only ``dispatch.types``,
``dispatch.config`` and ``dispatch.sources`` siblings.

Electricity Maps stamps each value with the start of the period it describes (``datetime``);
that stamp is kept as the period start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dispatch.sources.files import read_series_csv
from dispatch.sources.frames import Bound, check_bounds, fixed_step, in_window, to_utc_index
from dispatch.sources.http import Clock, Fetched, HttpClient, LastGoodCache, answer_shape, utc_now
from dispatch.sources.provider import HttpProvider
from dispatch.types import InputError, SourceError

COLUMN = "ci_g_per_kwh"
ELECTRICITY_MAPS_URL = "https://api.electricitymaps.com/v3"
CI_BOUNDS: Mapping[str, Bound] = {
    COLUMN: Bound(0.0, 2000.0, "carbon intensity must be g CO2/kWh (= kg/MWh), never negative")
}


def _frame(index: pd.DatetimeIndex, values: Any) -> pd.DataFrame:
    return pd.DataFrame({COLUMN: np.asarray(values, dtype=float)}, index=to_utc_index(index))


def read_ci_csv(path: str | Path) -> pd.DataFrame:
    """Read a carbon-intensity CSV: ``time`` (ISO 8601 with offset) and ``ci_g_per_kwh``.

    Raises
    ------
    InputError
        As ``read_series_csv``, and for negative or implausibly large values.
    """
    frame = read_series_csv(path, [COLUMN])
    check_bounds(frame, CI_BOUNDS, str(path), InputError)
    return frame


def _get(doc: Any, name: str, what: str) -> Any:
    if not isinstance(doc, Mapping) or name not in doc or doc[name] is None:
        raise SourceError(f"{what}: missing field {name!r} in the answer")
    return doc[name]


def _points(items: Sequence[Any], what: str) -> pd.DataFrame:
    stamps, values = [], []
    for i, item in enumerate(items):
        where = f"{what}: forecast[{i}]"
        raw = _get(item, "carbonIntensity", where)
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise SourceError(f"{where}: carbonIntensity {raw!r} is not a number")
        try:
            stamps.append(pd.Timestamp(_get(item, "datetime", where)))
        except ValueError:
            raise SourceError(f"{where}: datetime {item['datetime']!r} is not ISO 8601") from None
        values.append(float(raw))
    if any(s.tz is None for s in stamps):
        raise SourceError(f"{what}: datetime without a UTC offset")
    frame = _frame(pd.DatetimeIndex(stamps), values)
    check_bounds(frame, CI_BOUNDS, what, SourceError)
    return frame


def parse_latest(doc: Any, what: str = "electricity-maps") -> pd.DataFrame:
    """One-row frame from a ``/carbon-intensity/latest`` answer (fields named in errors)."""
    return _points([doc], what)


def parse_forecast(doc: Any, what: str = "electricity-maps") -> pd.DataFrame:
    """Frame from a ``/carbon-intensity/forecast`` answer: ``{"forecast": [...]}``."""
    items = _get(doc, "forecast", what)
    if not isinstance(items, list) or not items:
        raise SourceError(f"{what}: field 'forecast' is empty or not a list")
    frame = _points(items, what)
    if not frame.index.is_monotonic_increasing or frame.index.has_duplicates:
        raise SourceError(f"{what}: forecast times are not strictly increasing")
    if len(frame) > 1:
        fixed_step(frame.index, what, SourceError)
    return frame


class ElectricityMapsCI(HttpProvider):
    """Electricity Maps v3 carbon intensity for one zone.

    Parameters
    ----------
    zone : str
        Zone key, e.g. ``"DE"``.
    token : str
        API token, sent in the ``auth-token`` header (never in URLs or messages).
    base_url : str
        API root ending in ``/v3``; tests point it at 127.0.0.1.
    emission_factor_type : {"lifecycle", "direct"}, optional
        Asked of the API when given; its default otherwise.
    client, cache, clock
        As for ``OpenMeteoWeather``.
    """

    name = "electricity-maps"

    def __init__(
        self,
        zone: str,
        token: str,
        *,
        base_url: str = ELECTRICITY_MAPS_URL,
        emission_factor_type: str | None = None,
        client: HttpClient | None = None,
        cache: LastGoodCache | None = None,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(client, cache, clock)
        self.zone = zone
        self._headers = {"auth-token": token}
        self.base_url = base_url.rstrip("/")
        self.emission_factor_type = emission_factor_type

    def _call(self, endpoint: str) -> tuple[Any, str]:
        url = f"{self.base_url}/carbon-intensity/{endpoint}"
        params = {"zone": self.zone}
        if self.emission_factor_type:
            params["emissionFactorType"] = self.emission_factor_type
        doc = self.client.get_json(self.name, url, params=params, headers=self._headers)
        return doc, f"{self.name}: {url}"

    def latest(self) -> pd.DataFrame:
        """The latest value: one row ``ci_g_per_kwh`` at its period start. Raises SourceError."""
        doc, what = self._call("latest")
        with answer_shape(what):
            return parse_latest(doc, what)

    def forecast(self) -> pd.DataFrame:
        """The forecast (g CO2/kWh) by UTC period start. Raises SourceError."""
        doc, what = self._call("forecast")
        with answer_shape(what):
            return parse_forecast(doc, what)

    def get_latest(self, *, allow_stale_s: float = 0.0) -> Fetched:
        """``latest`` with the last good answer as fallback up to ``allow_stale_s`` old."""
        return self.with_fallback(self.latest, self._key("latest"), allow_stale_s)

    def get_forecast(
        self,
        *,
        allow_stale_s: float = 0.0,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
    ) -> Fetched:
        """``forecast`` cut to ``[start, end)``, with the last good answer as fallback."""

        def fetch() -> pd.DataFrame:
            return in_window(self.forecast(), start, end, f"{self.name}: the forecast")

        return self.with_fallback(fetch, self._key("forecast"), allow_stale_s, start, end)

    def _key(self, endpoint: str) -> str:
        return f"{self.zone}:{self.emission_factor_type}:{endpoint}"

__all__ = [
    "COLUMN",
    "ElectricityMapsCI",
    "parse_forecast",
    "parse_latest",
    "read_ci_csv",
]
