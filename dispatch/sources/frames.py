"""Frame conventions shared by the providers: UTC period-start index, plausibility bounds, steps.

Role: turn a provider's raw columns into the package's frame shape and refuse values whose
magnitude betrays wrong units (kelvin for degC, km/h for m/s, per-MWh for per-kWh). Resamples
period means to another step. May import only ``dispatch.types``; does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from dispatch.types import DispatchError, InputError, SourceError

WEATHER_COLUMNS = ("ghi", "dni", "dhi", "temp_air", "wind_speed")
ResampleMethod = Literal["interpolate", "hold"]


class Bound(NamedTuple):
    """Plausible range of a column and a hint at the usual unit mistake."""

    low: float
    high: float
    hint: str


WEATHER_BOUNDS: Mapping[str, Bound] = {
    "ghi": Bound(0.0, 1500.0, "irradiance must be W/m2 (not kW/m2, Wh or J)"),
    "dni": Bound(0.0, 1500.0, "irradiance must be W/m2 (not kW/m2, Wh or J)"),
    "dhi": Bound(0.0, 1500.0, "irradiance must be W/m2 (not kW/m2, Wh or J)"),
    "temp_air": Bound(-90.0, 70.0, "temperature must be degC (about 273 more means kelvin)"),
    "wind_speed": Bound(0.0, 75.0, "wind speed must be m/s (km/h is 3.6 times larger)"),
}


def to_utc_index(index: pd.Index) -> pd.DatetimeIndex:
    """A tz-aware index converted to UTC at nanosecond resolution.

    Parameters
    ----------
    index : pandas.DatetimeIndex
        Tz-aware time stamps.

    Returns
    -------
    pandas.DatetimeIndex
        The same instants in UTC, ``datetime64[ns, UTC]``, named ``time``.
    """
    return pd.DatetimeIndex(index).tz_convert("UTC").as_unit("ns").rename("time")


def in_window(
    data: pd.DataFrame,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    what: str | None = None,
) -> pd.DataFrame:
    """The rows of ``data`` whose period start lies in ``[start, end)``.

    Parameters
    ----------
    data : pandas.DataFrame
        UTC period-start indexed.
    start, end : pandas.Timestamp, optional
        Tz-aware window bounds; ``None`` leaves that side open.
    what : str, optional
        When given, an empty result is an error: ``SourceError("<what> has no period in
        <start> .. <end>")``.

    Returns
    -------
    pandas.DataFrame
    """
    if start is not None:
        data = data[data.index >= start]
    if end is not None:
        data = data[data.index < end]
    if what is not None and data.empty:
        raise SourceError(f"{what} has no period in {start} .. {end}")
    return data


def check_bounds(
    frame: pd.DataFrame,
    bounds: Mapping[str, Bound],
    what: str,
    error: type[DispatchError],
) -> None:
    """Raise ``error`` at the first value outside its column's plausible range.

    Parameters
    ----------
    frame : pandas.DataFrame
        Time-indexed values.
    bounds : mapping
        Column name -> ``Bound``; columns absent from ``frame`` are skipped.
    what : str
        Prefix of the message (provider and URL, or file).
    error : type
        ``SourceError`` for providers, ``InputError`` for files.
    """
    for col, b in bounds.items():
        if col not in frame.columns:
            continue
        values = frame[col].to_numpy(dtype=float)
        bad = np.flatnonzero((values < b.low) | (values > b.high))
        if bad.size:
            i = int(bad[0])
            raise error(
                f"{what}: wrong units? {col} = {values[i]:g} at {frame.index[i].isoformat()} "
                f"is outside [{b.low:g}, {b.high:g}]; {b.hint}"
            )


def check_finite(frame: pd.DataFrame, what: str, error: type[DispatchError]) -> None:
    """Raise ``error`` naming the first missing (NaN) value's column and time."""
    values = frame.to_numpy(dtype=float)
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        i, j = (int(v) for v in bad[0])
        raise error(
            f"{what}: missing value in {frame.columns[j]} at {frame.index[i].isoformat()}"
        )


def fixed_step(index: pd.DatetimeIndex, what: str, error: type[DispatchError]) -> pd.Timedelta:
    """The fixed step of a sorted, duplicate-free index with at least two stamps.

    Raises
    ------
    DispatchError
        Of type ``error`` when the index has fewer than two stamps or an irregular step.
    """
    if len(index) < 2:
        raise error(f"{what}: at least two time stamps are needed, got {len(index)}")
    steps = np.diff(index.as_unit("ns").asi8)
    odd = np.flatnonzero(steps != steps[0])
    if odd.size:
        i = int(odd[0])
        raise error(
            f"{what}: irregular step at {index[i].isoformat()} -> {index[i + 1].isoformat()}, "
            f"the first step is {pd.Timedelta(int(steps[0]), unit='ns')}"
        )
    return pd.Timedelta(int(steps[0]), unit="ns")


def resample_means(
    frame: pd.DataFrame,
    step: pd.Timedelta,
    method: ResampleMethod = "interpolate",
    error: type[DispatchError] = InputError,
) -> pd.DataFrame:
    """Resample period means (UTC period-start index, fixed step) to ``step``.

    Coarser steps average the whole sub-periods of each new period (energy is kept exactly;
    incomplete periods at either end are dropped). Finer steps either ``hold`` each period's
    mean over its sub-periods (energy kept, step-shaped) or ``interpolate`` linearly between
    period midpoints, evaluated at the new midpoints (smooth; the values beyond the first and
    last midpoint are held).

    Parameters
    ----------
    frame : pandas.DataFrame
        Period means at a fixed step.
    step : pandas.Timedelta
        Wanted step; a whole multiple or a whole divisor of the frame's step.
    method : {"interpolate", "hold"}
        How to fill finer steps.
    error : type
        Raised when ``frame`` has fewer than two rows or an irregular step.

    Returns
    -------
    pandas.DataFrame
        Same columns, index at ``step`` (period start, UTC).
    """
    native = fixed_step(frame.index, "resample", error)
    step = pd.Timedelta(step)
    if step == native:
        return frame
    if step > native:
        if step % native:
            raise ValueError(f"step {step} is not a whole multiple of the data step {native}")
        grouped = frame.resample(step, label="left", closed="left", origin="epoch")
        full = grouped.count().min(axis=1) == step // native
        return grouped.mean()[full]
    if native % step:
        raise ValueError(f"step {step} does not divide the data step {native}")
    index = pd.date_range(
        frame.index[0], frame.index[-1] + native - step, freq=step, name=frame.index.name
    )
    if method == "hold":
        return frame.reindex(index, method="ffill")
    x = (frame.index + native / 2).asi8.astype(float)
    xq = (index + step / 2).asi8.astype(float)
    cols = {c: np.interp(xq, x, frame[c].to_numpy(dtype=float)) for c in frame.columns}
    return pd.DataFrame(cols, index=index)
