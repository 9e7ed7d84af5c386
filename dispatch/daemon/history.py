"""The measured history the forecast needs, kept in memory as plan-slot means.

Role: every control cycle adds its reading (load, PV, and the import the cycle leaves after
its setpoint); a slot is closed once time has passed its end, and its mean import is then
checked against the month's peak (``runtime.settle``). A slot also keeps the share of its
readings with export at the site's limit (``pv_limited``): there the measured PV may have
been curtailed (``dispatch.forecast.curtailment``). The forecast reads the closed slots'
load and PV from here instead of the store, so a plan costs no database read. On start the
history is rebuilt from the store's measurements (``from_rows``). Imports pandas, numpy and
``dispatch.control``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from dispatch.control import ControlLimits, export_at_limit

#: What each slot keeps: mean load, PV and grid power (kW; import positive), and the share of
#: readings with export at the limit.
COLUMNS = ("p_load_kw", "p_pv_kw", "p_grid_kw", "pv_limited")


class SlotHistory:
    """Per plan slot, the means of the readings taken in it.

    Parameters
    ----------
    step : pandas.Timedelta
        The plan step.
    keep : pandas.Timedelta
        How far back closed slots are kept.
    """

    def __init__(self, step: pd.Timedelta, keep: pd.Timedelta) -> None:
        self.step, self.keep = pd.Timedelta(step), pd.Timedelta(keep)
        self._closed: dict[int, tuple[float, ...]] = {}
        self._table = _SlotTable()  # the closed slots as sorted arrays, for ``series``
        self._index: tuple[tuple[int, int] | None, pd.DatetimeIndex | None] = (None, None)
        self._open: int | None = None
        self._sums = np.zeros(len(COLUMNS))
        self._counts = np.zeros(len(COLUMNS))

    def _slot(self, t: pd.Timestamp) -> int:
        return int(pd.Timestamp(t).value // self.step.value)

    def add(
        self,
        t: pd.Timestamp,
        p_load_kw: float,
        p_pv_kw: float,
        p_grid_kw: float,
        at_limit: bool = False,
    ) -> None:
        """Add one reading taken at ``t`` (kW; ``at_limit``: its export was at the site's
        limit, ``dispatch.control.export_at_limit``); a NaN value is not counted."""
        slot = self._slot(t)
        if self._open is not None and slot != self._open:
            self._close()
        self._open = slot
        values = np.array([p_load_kw, p_pv_kw, p_grid_kw, float(at_limit)], dtype=float)
        ok = np.isfinite(values)
        self._sums[ok] += values[ok]
        self._counts[ok] += 1

    def _close(self) -> tuple[pd.Timestamp, float] | None:
        """Close the open slot; its start and mean import (kW, >= 0) when it had readings."""
        slot, self._open = self._open, None
        sums, counts = self._sums, self._counts
        self._sums, self._counts = np.zeros(len(COLUMNS)), np.zeros(len(COLUMNS))
        if slot is None or not counts.any():
            return None
        means = np.where(counts > 0, sums / np.maximum(counts, 1), math.nan)
        self._closed[slot] = tuple(float(m) for m in means)
        self._table.put(slot, self._closed[slot])
        oldest = slot - int(self.keep / self.step)
        for k in [k for k in self._closed if k < oldest]:
            del self._closed[k]
        self._table.drop_before(oldest)
        start = pd.Timestamp(slot * self.step.value, tz="UTC")
        return start, max(float(means[2]), 0.0) if math.isfinite(means[2]) else 0.0

    def close_before(self, now: pd.Timestamp) -> list[tuple[pd.Timestamp, float]]:
        """Close the open slot when ``now`` lies past its end; returns ``(slot start, mean
        import kW)`` of what was closed."""
        if self._open is None or self._slot(now) <= self._open:
            return []
        done = self._close()
        return [done] if done is not None else []

    def series(self, column: str, since: pd.Timestamp | None = None) -> pd.Series:
        """Closed slots' means of ``column`` (kW) by UTC slot start, from ``since`` on."""
        i = COLUMNS.index(column)
        slots, values = self._table.arrays(self._closed)
        start = 0 if since is None else int(np.searchsorted(slots, self._slot(since)))
        key = (self._table.version, start)
        if self._index[0] != key:  # the forecast asks for several columns of one span
            self._index = (key, pd.DatetimeIndex(slots[start:] * self.step.value, tz="UTC"))
        return pd.Series(values[start:, i].copy(), index=self._index[1], dtype=float)

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Mapping[str, Any]],
        step: pd.Timedelta,
        keep: pd.Timedelta,
        limits: ControlLimits | None = None,
    ) -> SlotHistory:
        """Rebuild from stored measurement rows (``time_ms`` and the measured ``COLUMNS``) in
        time order; every slot is closed (the daemon was not running in between). With
        ``limits``, readings with export at the limit are marked so."""
        history = cls(step, keep)
        for r in rows:
            t = pd.Timestamp(int(r["time_ms"]), unit="ms", tz="UTC")
            load, pv, grid = (math.nan if r[c] is None else float(r[c]) for c in COLUMNS[:3])
            limited = limits is not None and math.isfinite(grid) and export_at_limit(grid, limits)
            history.add(t, load, pv, grid, limited)
        history._close()
        return history


class _SlotTable:
    """The closed slots (ids, ascending) and their means, as arrays grown in place while
    slots close in time order; any other change (a slot closed again, or out of order)
    rebuilds them from the slots' dict on the next read."""

    def __init__(self) -> None:
        self._slots = np.empty(0, dtype=np.int64)
        self._values = np.empty((0, len(COLUMNS)))
        self._lo = self._n = 0  # rows [lo, n) are live
        self._stale = False
        self.version = 0  # counts every change of the live rows

    def put(self, slot: int, means: tuple[float, ...]) -> None:
        """Record ``slot`` closed with ``means`` (``COLUMNS`` order)."""
        self.version += 1
        if self._stale or (self._n > self._lo and slot <= self._slots[self._n - 1]):
            self._stale = True
            return
        if self._n == len(self._slots):  # full: keep the live rows, double the room
            live = slice(self._lo, self._n)
            size = max(64, 2 * (self._n - self._lo))
            slots, values = np.empty(size, dtype=np.int64), np.empty((size, len(COLUMNS)))
            slots[: self._n - self._lo] = self._slots[live]
            values[: self._n - self._lo] = self._values[live]
            self._slots, self._values, self._n, self._lo = slots, values, self._n - self._lo, 0
        self._slots[self._n] = slot
        self._values[self._n] = means
        self._n += 1

    def drop_before(self, oldest: int) -> None:
        """Forget slots before ``oldest``."""
        if not self._stale:
            live = self._slots[self._lo : self._n]
            dropped = int(np.searchsorted(live, oldest))
            self._lo += dropped
            self.version += dropped > 0

    def arrays(self, closed: Mapping[int, tuple[float, ...]]) -> tuple[np.ndarray, np.ndarray]:
        """The live slot ids and their means (views), rebuilt from ``closed`` when stale."""
        if self._stale:
            slots = sorted(closed)
            rows = [closed[k] for k in slots]
            self._slots = np.asarray(slots, dtype=np.int64)
            self._values = np.array(rows, dtype=float).reshape(len(slots), len(COLUMNS))
            self._lo, self._n, self._stale = 0, len(slots), False
        return self._slots[self._lo : self._n], self._values[self._lo : self._n]
