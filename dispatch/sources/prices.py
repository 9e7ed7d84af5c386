"""Energy prices (currency per kWh): a CSV series and the aWATTar day-ahead API (DE, AT).

Role: give the planner a ``price_per_kwh`` column (a market or day-ahead price, before the
tariff's adders) on a UTC period-start index. The tariff calendar itself is ``dispatch.tariff``'s
job. May import only ``dispatch.types`` and ``dispatch.sources`` siblings.

aWATTar's ``/v1/marketdata`` answers ``{"object": "list", "data": [{"start_timestamp": ms,
"end_timestamp": ms, "marketprice": EUR/MWh, "unit": "Eur/MWh"}, ...]}`` with the EPEX SPOT
day-ahead price; it needs no key. ``start_timestamp`` is the period start (UTC milliseconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dispatch.sources.files import csv_columns, read_series_csv
from dispatch.sources.frames import Bound, check_bounds, fixed_step, in_window, to_utc_index
from dispatch.sources.http import Clock, Fetched, HttpClient, LastGoodCache, answer_shape, utc_now
from dispatch.sources.provider import HttpProvider
from dispatch.types import InputError, SourceError

COLUMN = "price_per_kwh"
AWATTAR_URLS = {
    "DE": "https://api.awattar.de/v1/marketdata",
    "AT": "https://api.awattar.at/v1/marketdata",
}
MAX_ABS_PER_KWH = 5.0  # above the EPEX day-ahead cap of 4 EUR/kWh; raise it for e.g. JPY
_PER_MWH_COLUMNS = ("price_per_mwh", "price_eur_per_mwh")


def price_bounds(max_abs_per_kwh: float = MAX_ABS_PER_KWH) -> Mapping[str, Bound]:
    """Plausible range of ``price_per_kwh``: values beyond it look like per-MWh prices."""
    hint = "prices must be per kWh; values this large look like per-MWh (divide by 1000)"
    return {COLUMN: Bound(-max_abs_per_kwh, max_abs_per_kwh, hint)}


def read_price_csv(path: str | Path, *, max_abs_per_kwh: float = MAX_ABS_PER_KWH) -> pd.DataFrame:
    """Read a price CSV: ``time`` and ``price_per_kwh``, or ``price_eur_per_mwh`` (converted).

    Parameters
    ----------
    path : str or Path
        The file; ``time`` in ISO 8601 with a UTC offset, period start.
    max_abs_per_kwh : float
        Largest plausible magnitude of a price per kWh.

    Returns
    -------
    pandas.DataFrame
        Column ``price_per_kwh`` (currency per kWh) by UTC period start.

    Raises
    ------
    InputError
        As ``read_series_csv``; when no price column is present; and for magnitudes that look
        like per-MWh prices in a per-kWh column.
    """
    have = csv_columns(path)
    if COLUMN in have:
        frame = read_series_csv(path, [COLUMN])
    else:
        per_mwh = next((c for c in _PER_MWH_COLUMNS if c in have), None)
        if per_mwh is None:
            raise InputError(
                f"{path}: missing column {COLUMN!r} (or one of {list(_PER_MWH_COLUMNS)}); "
                f"have {have}"
            )
        frame = read_series_csv(path, [per_mwh]) / 1000.0
        frame.columns = [COLUMN]
    check_bounds(frame, price_bounds(max_abs_per_kwh), str(path), InputError)
    return frame


def _item(item: Any, i: int, what: str) -> tuple[int, int, float, str]:
    where = f"{what}: data[{i}]"
    if not isinstance(item, Mapping):
        raise SourceError(f"{where} is not an object")
    for name in ("start_timestamp", "end_timestamp", "marketprice", "unit"):
        if item.get(name) is None:
            raise SourceError(f"{where}: missing field {name!r} in the answer")
    start, end, price = item["start_timestamp"], item["end_timestamp"], item["marketprice"]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (start, end, price)):
        raise SourceError(
            f"{where}: start_timestamp, end_timestamp and marketprice must be numbers"
        )
    return int(start), int(end), float(price), str(item["unit"])


def parse_awattar(
    doc: Any, what: str = "awattar", max_abs_per_kwh: float = MAX_ABS_PER_KWH
) -> pd.DataFrame:
    """Frame ``price_per_kwh`` (EUR/kWh) from an aWATTar ``marketdata`` answer.

    Raises
    ------
    SourceError
        On a missing field (named with its item), a unit other than EUR/MWh, overlapping or
        irregular periods, or prices implausible per kWh after conversion.
    """
    if not isinstance(doc, Mapping) or "data" not in doc:
        raise SourceError(f"{what}: missing field 'data' in the answer")
    items = doc["data"]
    if not isinstance(items, list) or not items:
        raise SourceError(f"{what}: field 'data' is empty or not a list (not yet published?)")
    rows = [_item(item, i, what) for i, item in enumerate(items)]
    for i, (_s, _e, _p, unit) in enumerate(rows):
        if unit.lower() != "eur/mwh":
            raise SourceError(f"{what}: wrong units: data[{i}].unit = {unit!r}, expected 'Eur/MWh'")
    starts = np.array([r[0] for r in rows], dtype="int64")
    lengths = {r[1] - r[0] for r in rows}
    if len(lengths) != 1 or lengths.pop() <= 0:
        raise SourceError(f"{what}: periods have unequal or non-positive lengths")
    index = to_utc_index(pd.to_datetime(starts, unit="ms", utc=True))
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise SourceError(f"{what}: start_timestamp values are not strictly increasing")
    frame = pd.DataFrame({COLUMN: [r[2] / 1000.0 for r in rows]}, index=index)
    if len(frame) > 1:
        fixed_step(frame.index, what, SourceError)
    check_bounds(frame, price_bounds(max_abs_per_kwh), what, SourceError)
    return frame


class AwattarPrices(HttpProvider):
    """aWATTar day-ahead prices (EPEX SPOT, EUR) for Germany or Austria; no key needed.

    Parameters
    ----------
    country : {"DE", "AT"}
        Market area.
    base_url : str, optional
        Endpoint; defaults to the country's ``/v1/marketdata``; tests use 127.0.0.1.
    max_abs_per_kwh : float
        Largest plausible magnitude of a price (EUR/kWh).
    client, cache, clock
        As for ``OpenMeteoWeather``.
    """

    name = "awattar"

    def __init__(
        self,
        country: str = "DE",
        *,
        base_url: str | None = None,
        max_abs_per_kwh: float = MAX_ABS_PER_KWH,
        client: HttpClient | None = None,
        cache: LastGoodCache | None = None,
        clock: Clock = utc_now,
    ) -> None:
        if base_url is None and country not in AWATTAR_URLS:
            raise ValueError(f"country = {country!r}; aWATTar serves {sorted(AWATTAR_URLS)}")
        super().__init__(client, cache, clock)
        self.country = country
        self.base_url = base_url or AWATTAR_URLS[country]
        self.max_abs_per_kwh = max_abs_per_kwh

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Prices of the periods starting in ``[start, end)`` (EUR/kWh). Raises SourceError."""
        params = {"start": str(_ms(start)), "end": str(_ms(end))}
        what = f"{self.name}: {self.base_url}"
        doc = self.client.get_json(self.name, self.base_url, params=params)
        with answer_shape(what):
            frame = parse_awattar(doc, what, self.max_abs_per_kwh)
        return in_window(frame, start, end, f"{what}: the answer")

    def get(
        self, start: pd.Timestamp, end: pd.Timestamp, *, allow_stale_s: float = 0.0
    ) -> Fetched:
        """``fetch`` with the last good answer as fallback up to ``allow_stale_s`` old."""
        return self.with_fallback(
            lambda: self.fetch(start, end), self.country, allow_stale_s, start, end
        )


def _ms(t: pd.Timestamp) -> int:
    ts = pd.Timestamp(t)
    if ts.tz is None:
        raise ValueError(f"time {ts} must be tz-aware")
    return int(ts.tz_convert("UTC").as_unit("ns").value) // 1_000_000


__all__ = ["COLUMN", "AwattarPrices", "parse_awattar", "read_price_csv"]
