"""File sources: time-series CSV files and the weather formats pvlib.iotools reads.

Role: read a CSV series (a ``time`` column in ISO 8601 with a UTC offset, period start, plus
unit-suffixed value columns) with errors that name the line and time, and map TMY3, EPW and NSRDB
PSM4 files to the weather frame (``ghi``, ``dni``, ``dhi`` in W/m2, ``temp_air`` in degC,
``wind_speed`` in m/s) indexed by UTC period start. May import only ``dispatch.types`` and
``dispatch.sources`` siblings; pvlib is used for its file readers only.

Raises ``InputError`` (a file's content is unusable) naming the file, the line and the time.
Missing values are never filled silently: they are errors naming column and time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pvlib import iotools

from dispatch.sources.frames import (
    WEATHER_BOUNDS,
    WEATHER_COLUMNS,
    check_bounds,
    check_finite,
    fixed_step,
    to_utc_index,
)
from dispatch.types import InputError

_OFFSET = re.compile(r"[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$")
_HEADER_LINES = 1


def _line(i: int) -> int:
    """File line of data row ``i`` (0-based), counting the header."""
    return i + 1 + _HEADER_LINES


def _read_table(path: Path, what: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{what}: cannot read the file: {exc}") from None


def _parse_times(text: pd.Series, what: str) -> pd.DatetimeIndex:
    for i, s in enumerate(text):
        if not _OFFSET.search(s.strip()):
            raise InputError(
                f"{what}: line {_line(i)}: time {s!r} needs a UTC offset "
                "(ISO 8601 such as 2026-06-21T10:00:00+02:00 or ...Z)"
            )
    try:
        stamps = pd.to_datetime(text.str.strip(), format="ISO8601", utc=True)
    except (ValueError, TypeError):
        for i, s in enumerate(text):
            try:
                pd.Timestamp(s)
            except ValueError:
                raise InputError(f"{what}: line {_line(i)}: time {s!r} is not ISO 8601") from None
        raise InputError(f"{what}: column time is not ISO 8601 throughout") from None
    return to_utc_index(pd.DatetimeIndex(stamps))


def _check_order(index: pd.DatetimeIndex, what: str) -> None:
    steps = np.diff(index.as_unit("ns").asi8)
    bad = np.flatnonzero(steps <= 0)
    if not bad.size:
        return
    i = int(bad[0]) + 1
    if steps[i - 1] == 0:
        raise InputError(
            f"{what}: line {_line(i)}: duplicate time {index[i].isoformat()} "
            f"(also line {_line(i - 1)})"
        )
    raise InputError(
        f"{what}: line {_line(i)}: time {index[i].isoformat()} is not after line "
        f"{_line(i - 1)} ({index[i - 1].isoformat()}); sort the file by time"
    )


def _numbers(table: pd.DataFrame, columns: Sequence[str], index: pd.DatetimeIndex,
             what: str) -> pd.DataFrame:
    out = {}
    for col in columns:
        text = table[col].str.strip()
        values = pd.to_numeric(text.where(text != ""), errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            i = int(bad[0])
            shown = text.iloc[i] or "empty"
            raise InputError(
                f"{what}: line {_line(i)} (time {index[i].isoformat()}): column {col} is "
                f"missing or not a finite number ({shown!r})"
            )
        out[col] = values
    return pd.DataFrame(out, index=index)


def csv_columns(path: str | Path) -> list[str]:
    """The header names of a CSV file (to pick among alternative columns)."""
    return list(_read_table(Path(path), str(path)).columns)


def read_series_csv(path: str | Path, columns: Sequence[str]) -> pd.DataFrame:
    """Read a CSV time series: a ``time`` column and the named value columns.

    Parameters
    ----------
    path : str or Path
        The file. ``time`` holds ISO 8601 stamps with a UTC offset (``Z`` or ``+02:00``) marking
        the start of each period; other columns than ``time`` and ``columns`` are ignored.
    columns : sequence of str
        Required value columns (unit-suffixed names such as ``ci_g_per_kwh``).

    Returns
    -------
    pandas.DataFrame
        ``columns`` as floats, indexed by UTC period start at a fixed step.

    Raises
    ------
    InputError
        Naming the file and, where it applies, the line and time: missing column, a time
        without offset or not ISO 8601, unsorted or duplicate times, an irregular step, a
        missing or non-numeric value.
    """
    what = str(path)
    table = _read_table(Path(path), what)
    missing = [c for c in ("time", *columns) if c not in table.columns]
    if missing:
        raise InputError(f"{what}: missing column(s) {missing}; have {list(table.columns)}")
    if table.empty:
        raise InputError(f"{what}: no data rows")
    index = _parse_times(table["time"], what)
    _check_order(index, what)
    fixed_step(index, what, InputError)
    return _numbers(table, columns, index, what)


def read_weather_csv(path: str | Path) -> pd.DataFrame:
    """Read a weather CSV: ``time`` and ``ghi``, ``dni``, ``dhi``, ``temp_air``, ``wind_speed``.

    Values are period means: irradiance in W/m2, temperature in degC, wind speed in m/s.

    Raises
    ------
    InputError
        As ``read_series_csv``, and for values outside plausible bounds (wrong units).
    """
    frame = read_series_csv(path, WEATHER_COLUMNS)
    check_bounds(frame, WEATHER_BOUNDS, str(path), InputError)
    return frame


def _weather_frame(data: pd.DataFrame, shift: pd.Timedelta, what: str) -> pd.DataFrame:
    missing = [c for c in WEATHER_COLUMNS if c not in data.columns]
    if missing:
        raise InputError(f"{what}: missing column(s) {missing} after reading")
    frame = data.loc[:, list(WEATHER_COLUMNS)].astype(float)
    frame.index = to_utc_index(frame.index - shift)
    check_finite(frame, what, InputError)
    _check_order(frame.index, what)
    check_bounds(frame, WEATHER_BOUNDS, what, InputError)
    return frame


def _non_leap(year: int) -> int:
    if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        raise ValueError(f"year = {year} is a leap year; a typical year has no 29 February")
    return year


def read_tmy3(path: str | Path, year: int) -> pd.DataFrame:
    """Read a TMY3 file (hour-ending stamps in local standard time) as a weather frame.

    Parameters
    ----------
    path : str or Path
        The TMY3 CSV file.
    year : int
        Non-leap year given to every row (a typical year mixes months of several years).

    Returns
    -------
    pandas.DataFrame
        Weather frame, 8760 hourly periods, UTC period start (each stamp moved one hour back).
    """
    year = _non_leap(year)
    try:
        data, _meta = iotools.read_tmy3(str(path), coerce_year=year, map_variables=True)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: cannot read as TMY3: {exc}") from None
    return _weather_frame(data, pd.Timedelta(hours=1), str(path))


def read_epw(path: str | Path, year: int) -> pd.DataFrame:
    """Read an EnergyPlus EPW file (hour-ending stamps, local standard time) as a weather frame.

    Parameters
    ----------
    path : str or Path
        The EPW file.
    year : int
        Non-leap year given to every row.

    Returns
    -------
    pandas.DataFrame
        Weather frame, hourly, UTC period start (each stamp moved one hour back).
    """
    year = _non_leap(year)
    try:
        data, _meta = iotools.read_epw(str(path), coerce_year=year)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise InputError(f"{path}: cannot read as EPW: {exc}") from None
    return _weather_frame(data, pd.Timedelta(hours=1), str(path))


def read_nsrdb_psm4(path: str | Path) -> pd.DataFrame:
    """Read an NSRDB PSM4 CSV file as a weather frame.

    NSRDB values are satellite estimates valid at the stamp (the file's own solar zenith
    matches the stamps), so each value stands for the period centred on its stamp: the
    period start is the stamp minus half a step. Without that shift, PV computed at period
    midpoints would see the sun a quarter of a 30-min step late. Wind speed is the NSRDB's
    (2 m) value.

    Returns
    -------
    pandas.DataFrame
        Weather frame at the file's step (30 or 60 min), UTC period start.
    """
    try:
        data, _meta = iotools.read_nsrdb_psm4(str(path), map_variables=True)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: cannot read as NSRDB PSM4: {exc}") from None
    half_step = (data.index[1] - data.index[0]) / 2 if len(data.index) > 1 else pd.Timedelta(0)
    return _weather_frame(data, half_step, str(path))
