"""Results kept while the rows they were computed from stay the same.

Role: the load forecast builds one profile per forecast day from the day table's rows of
the days before it; from one plan to the next those rows are mostly the same (only the day
still running changes), so a profile is looked up by its day and the exact rows it reads,
compared whole, instead of being computed again. Bounded: the least recently used entries
go. Pure: imports numpy only.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np

#: A miss (``None`` is a result that may be kept).
MISSING = object()


def _same(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> bool:
    """Whether two tuples of arrays hold the same dtypes, shapes and bytes (NaN equal to a
    NaN of the same bits)."""
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        for x, y in zip(a, b, strict=True)
    )


class WindowMemo:
    """Results by key, each valid only for the input arrays it was computed from.

    Parameters
    ----------
    size : int
        Entries kept (the least recently used go first).
    """

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self._entries: OrderedDict[Hashable, tuple[tuple[np.ndarray, ...], Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable, inputs: tuple[np.ndarray, ...]) -> Any:
        """The result kept for ``key`` when it was computed from ``inputs`` (the same
        values), else ``MISSING``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or not _same(entry[0], inputs):
                self.misses += 1
                return MISSING
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: Hashable, inputs: tuple[np.ndarray, ...], result: Any) -> None:
        """Keep ``result`` for ``key`` and copies of ``inputs``; a result array is made
        read-only (callers share it)."""
        if isinstance(result, np.ndarray):
            result.flags.writeable = False
        kept = tuple(np.array(a, copy=True) for a in inputs)
        with self._lock:
            self._entries[key] = (kept, result)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
