"""A series' values at given UTC stamps, by binary search: ``Series.reindex`` without its cost.

Role: the forecast job reads its histories (load, PV, intensity, prices) at a few hundred
stamps every plan; ``reindex`` builds indexes and checks them each time, which cost more than
the forecast itself. Pure: imports numpy and pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["stamps_ns", "values_at"]


#: Nanoseconds per tick of each unit pandas may hold stamps in.
_NS_PER = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def stamps_ns(index: pd.DatetimeIndex) -> np.ndarray:
    """UTC nanoseconds since the epoch of tz-aware stamps (int64)."""
    per = _NS_PER[index.unit]
    return index.asi8 if per == 1 else index.asi8 * per


def values_at(history: pd.Series, at_ns: np.ndarray, before_ns: int | None = None) -> np.ndarray:
    """``history``'s values (as float) at the UTC stamps ``at_ns`` (ns since the epoch), NaN
    where it has none (or, with ``before_ns``, where the stamp is not before it): what
    ``history.reindex`` gives, by binary search when the index is sorted and unique."""
    at_ns = np.asarray(at_ns, dtype=np.int64)
    if history.empty:
        return np.full(len(at_ns), np.nan)
    index = history.index
    sorted_unique = isinstance(index, pd.DatetimeIndex) and index.is_monotonic_increasing
    if not (sorted_unique and index.is_unique):
        past = history
        if before_ns is not None:
            past = history[history.index < pd.Timestamp(before_ns, tz="UTC")]
        return past.reindex(pd.DatetimeIndex(at_ns, tz="UTC")).to_numpy(dtype=float)
    known = stamps_ns(index)
    values = history.to_numpy(dtype=float)
    pos = np.minimum(np.searchsorted(known, at_ns), len(known) - 1)
    hit = known[pos] == at_ns
    if before_ns is not None:
        hit &= at_ns < before_ns
    return np.where(hit, values[pos], np.nan)
