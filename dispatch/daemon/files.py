"""Files the daemon reads: sources another job keeps current, and the PV calibration.

Role: the daemon's file sources (day-ahead prices, weather, grid intensity) are re-read when
their modification time or size changes, not on every plan (``MtimeCache``); the reader (a
``dispatch.sources`` function) raises its own errors. ``read_calibration`` reads the fit of
``dispatch calibrate-pv``. Imports the standard library, pandas and ``forecast.calibrate``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from dispatch.forecast.calibrate import CalibrationFit
from dispatch.types import DispatchError, InputError, SourceError


class MtimeCache:
    """The last reading of ``path`` by ``reader``, refreshed when the file changes.

    Parameters
    ----------
    path : str
        The file.
    reader : callable
        ``reader(path) -> DataFrame``; raises ``InputError``/``SourceError`` for bad content.
    """

    def __init__(self, path: str, reader: Callable[[str], pd.DataFrame]) -> None:
        self.path, self.reader = path, reader
        self._key: tuple[float, int] | None = None
        self._frame: pd.DataFrame | None = None

    def get(self) -> pd.DataFrame:
        """The file's frame; re-read when its modification time or size changed.

        Raises
        ------
        SourceError
            When the file cannot be found or read.
        """
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise SourceError(f"{self.path}: cannot read: {exc.strerror}") from None
        key = (st.st_mtime, st.st_size)
        if self._frame is None or key != self._key:
            self._frame = self.reader(self.path)
            self._key = key
        return self._frame


def read_calibration(path: str, error: type[DispatchError] = InputError) -> CalibrationFit:
    """A PV calibration written by ``dispatch calibrate-pv`` (JSON).

    Raises
    ------
    InputError (or ``error``)
        Naming the file and what is wrong with it.
    """
    try:
        return CalibrationFit(**json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise error(f"{path}: not a PV calibration from `dispatch calibrate-pv`: {exc}") from None
