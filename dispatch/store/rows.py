"""Whole columns of store rows built at once: the codec's fast path for slot tables.

Role: turn float arrays and time indexes into the Python values ``executemany`` binds, a
column at a time instead of a value at a time: REAL columns with NULL (None) for NaN and
infinities, epoch milliseconds, and per-row JSON objects written as ``json.dumps`` writes
them. Imports numpy and pandas only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dispatch.types import InputError

#: Index ticks per millisecond, by unit (pandas holds s, ms, us or ns).
_TICKS_PER_MS = {"ns": 1_000_000, "us": 1_000, "ms": 1}


def real_column(values: np.ndarray) -> list[float | None]:
    """A REAL column: the floats of ``values`` (1-D), None (NULL) where not finite."""
    a = np.asarray(values, dtype=float)
    out: list[float | None] = a.tolist()
    bad = ~np.isfinite(a)
    if bad.any():
        for i in np.flatnonzero(bad).tolist():
            out[i] = None
    return out


def real_rows(values: np.ndarray) -> list[list[float | None]]:
    """Rows of a 2-D float array as lists, None (NULL) where not finite."""
    a = np.asarray(values, dtype=float)
    out: list[list[float | None]] = a.tolist()
    bad = ~np.isfinite(a)
    if bad.any():
        for i, j in zip(*(ix.tolist() for ix in np.nonzero(bad)), strict=True):
            out[i][j] = None
    return out


def stamps_ms(index: pd.DatetimeIndex) -> list[int]:
    """Epoch milliseconds (floored) of a tz-aware index's stamps."""
    if not isinstance(index, pd.DatetimeIndex):
        index = pd.DatetimeIndex(index)
    if index.tz is None:
        raise InputError("time index is not tz-aware; give UTC stamps")
    ticks = index.asi8  # in the index's unit
    per_ms = _TICKS_PER_MS.get(index.unit)
    if per_ms is None:  # a unit coarser than ms: whole milliseconds already
        return (ticks * int(pd.Timedelta(1, unit=index.unit) // pd.Timedelta(1, "ms"))).tolist()
    return (ticks // per_ms).tolist()


def json_rows(names: Sequence[str], values: np.ndarray) -> list[str]:
    """Each row of ``values`` (rows x len(names) floats) as the JSON object ``{name: value}``,
    null where not finite: the text ``json.dumps`` writes for the same dict."""
    a = np.asarray(values, dtype=float)
    if a.ndim != 2 or a.shape[1] != len(names):
        raise InputError(f"json rows: {a.shape} values for {len(names)} names")
    if not names:
        return ["{}"] * len(a)
    pairs = [_pairs(json.dumps(str(n)) + ": ", a[:, j]) for j, n in enumerate(names)]
    return ["{" + ", ".join(row) + "}" for row in zip(*pairs, strict=True)]


def _pairs(key: str, column: np.ndarray) -> list[str]:
    """``key`` followed by each value as JSON: ``repr`` of the float (what ``json.dumps``
    writes; one ``repr`` of the list, whose items a float's text never splits), null where
    not finite."""
    values = column.tolist()
    if not values:
        return []
    texts = repr(values)[1:-1].split(", ")
    bad = ~np.isfinite(column)
    if bad.any():
        for i in np.flatnonzero(bad).tolist():
            texts[i] = "null"
    return [key + text for text in texts]
