"""Read the per-slot input CSV of ``dispatch plan`` and the metered history of ``dispatch
import-history``, and write plan CSVs.

Role: file I/O for plans, with checks that turn bad CSVs into ``InputError`` naming the file,
row, column and what is wrong (missing columns, bad or offset-less times, gaps, duplicates,
unsorted rows, NaN, magnitudes that betray W instead of kW or per-MWh prices). Imports only
``dispatch.types`` and ``dispatch.config``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from dispatch.config import SiteConfig
from dispatch.types import PLAN_COLUMNS, InputError, Plan, check_time_index

REQUIRED = ("p_pv_kw", "p_load_kw")
OPTIONAL = ("price_import_per_kwh", "price_export_per_kwh", "ci_g_per_kwh", "day_ahead_per_kwh")
_PV_DETAIL = re.compile(r"^p_pv_.+_kw$")
_LOAD_UNCERTAINTY = re.compile(r"^p_load_kw(@0?\.\d+|#\w+)$")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
#: Largest plausible price per kWh in any currency we plan in; above it, per-MWh is likely.
PRICE_MAX_PER_KWH = 50.0
#: Highest plausible grid intensity (g/kWh); lignite is about 1,200.
CI_MAX_G_PER_KWH = 2000.0


def _parse_times(raw: pd.Series, where: str) -> pd.DatetimeIndex:
    text = raw.astype(str).str.strip()
    no_offset = ~text.str.contains(_OFFSET)
    if no_offset.any():
        i = int(np.flatnonzero(no_offset.to_numpy())[0])
        raise InputError(
            f"{where}: row {i + 2}: time {text.iloc[i]!r} has no UTC offset; write ISO 8601 "
            "with an offset, e.g. 2026-07-01T00:00:00+08:00 (period start)"
        )
    try:
        return pd.DatetimeIndex(pd.to_datetime(text, utc=True, format="ISO8601"))
    except (ValueError, TypeError) as exc:
        raise InputError(f"{where}: column time: not ISO 8601 time stamps ({exc})") from None


def _check_numbers(frame: pd.DataFrame, where: str) -> None:
    for col in frame.columns:
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            i = int(bad[0])
            raise InputError(
                f"{where}: row {i + 2} ({frame.index[i].isoformat()}): column {col} is "
                f"{frame[col].iloc[i]!r}, not a finite number"
            )
        frame[col] = values


def _check_magnitudes(frame: pd.DataFrame, config: SiteConfig, where: str) -> None:
    g, b = config.grid, config.battery
    site_kw = g.import_max_kw + config.pv_dc_kwp + b.discharge_max_kw
    checks = [
        ("p_load_kw", 0.0, 10.0 * site_kw, "kW (is it in W?)"),
        ("p_pv_kw", 0.0, 2.0 * config.pv_dc_kwp if config.pv else 0.0, "kW within the PV size"),
        ("price_import_per_kwh", -PRICE_MAX_PER_KWH, PRICE_MAX_PER_KWH, "per kWh (per MWh?)"),
        ("price_export_per_kwh", -PRICE_MAX_PER_KWH, PRICE_MAX_PER_KWH, "per kWh (per MWh?)"),
        ("day_ahead_per_kwh", -PRICE_MAX_PER_KWH, PRICE_MAX_PER_KWH, "per kWh (per MWh?)"),
        ("ci_g_per_kwh", 0.0, CI_MAX_G_PER_KWH, "g/kWh"),
    ]
    for col, lo, hi, unit in checks:
        for name in [c for c in frame.columns if c == col or c.startswith(col + "@")]:
            _check_range(frame, name, lo, hi, unit, where)


def _check_range(
    frame: pd.DataFrame, col: str, lo: float, hi: float, unit: str, where: str
) -> None:
    values = frame[col].to_numpy()
    bad = np.flatnonzero((values < lo - 1e-9) | (values > hi + 1e-9))
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"{where}: row {i + 2} ({frame.index[i].isoformat()}): {col} = {values[i]:g} "
            f"is outside [{lo:g}, {hi:g}]; expected {unit}"
        )


def _read_raw(path: str | Path, required: tuple[str, ...]) -> pd.DataFrame:
    """The CSV as text columns, stripped, with ``time`` and ``required`` present."""
    where = str(path)
    try:
        raw = pd.read_csv(path, dtype=str, skipinitialspace=True)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: cannot read the CSV: {exc}") from None
    raw.columns = [c.strip().lstrip("\ufeff") for c in raw.columns]
    missing = [c for c in ("time", *required) if c not in raw.columns]
    if missing:
        raise InputError(f"{where}: missing column(s) {missing}; have {list(raw.columns)}")
    return raw


def read_history_csv(path: str | Path, config: SiteConfig) -> pd.DataFrame:
    """Read and check a CSV of metered history for ``dispatch import-history``.

    Parameters
    ----------
    path : str or Path
        CSV with ``time`` (ISO 8601 with offset, period start), ``p_load_kw`` and optionally
        ``p_pv_kw`` and ``p_grid_kw`` (kW, means over each period), at a fixed step that
        divides ``plan.step_min``.
    config : SiteConfig
        The expected step and plausible magnitudes.

    Raises
    ------
    InputError
        Naming the file, row and column of the first problem (as ``read_plan_inputs``).
    """
    where = str(path)
    raw = _read_raw(path, ("p_load_kw",))
    known = ("time", "p_load_kw", "p_pv_kw", "p_grid_kw")
    unknown = [c for c in raw.columns if c not in known]
    if unknown:
        raise InputError(f"{where}: unknown column(s) {unknown}; allowed {list(known)}")
    frame = raw.drop(columns="time")
    frame.index = _parse_times(raw["time"], where)
    step = check_time_index(frame.index, where)
    plan_step = pd.Timedelta(minutes=config.plan.step_min)
    if step > plan_step or plan_step % step:
        raise InputError(f"{where}: the rows are {step} apart; it must divide plan.step_min = "
                         f"{config.plan.step_min} min")  # fmt: skip
    _check_numbers(frame, where)
    _check_magnitudes(frame, config, where)
    if "p_grid_kw" in frame:
        limit = 10.0 * (config.grid.import_max_kw + config.pv_dc_kwp)
        _check_range(frame, "p_grid_kw", -limit, limit, "kW (is it in W?)", where)
    return frame


def read_plan_inputs(path: str | Path, config: SiteConfig) -> pd.DataFrame:
    """Read and check a plan input CSV.

    Parameters
    ----------
    path : str or Path
        CSV with ``time`` (ISO 8601 with offset, period start), ``p_pv_kw``, ``p_load_kw`` and
        optionally ``price_import_per_kwh``, ``price_export_per_kwh``, ``ci_g_per_kwh``,
        ``day_ahead_per_kwh``, load quantiles ``p_load_kw@<level>`` (kW, e.g.
        ``p_load_kw@0.9``) and load scenarios ``p_load_kw#<name>`` (kW); per-array
        ``p_pv_<name>_kw`` columns are ignored.
    config : SiteConfig
        Used for the expected step and plausible magnitudes.

    Returns
    -------
    pandas.DataFrame
        Float columns indexed by UTC period start.

    Raises
    ------
    InputError
        Naming the file, row and column of the first problem.
    """
    where = str(path)
    raw = _read_raw(path, REQUIRED)
    detail = [c for c in raw.columns if _PV_DETAIL.match(c) and c != "p_pv_kw"]
    raw = raw.drop(columns=detail)  # per-array PV from `dispatch forecast`: shown, not planned
    known = ("time", *REQUIRED, *OPTIONAL)
    unknown = [c for c in raw.columns if c not in known and not _LOAD_UNCERTAINTY.match(c)]
    if unknown:
        allowed = [*known, "p_load_kw@<level>", "p_load_kw#<name>"]
        raise InputError(f"{where}: unknown column(s) {unknown}; allowed {allowed}")
    frame = raw.drop(columns="time")
    frame.index = _parse_times(raw["time"], where)
    step = check_time_index(frame.index, where)
    if step != pd.Timedelta(minutes=config.plan.step_min):
        raise InputError(
            f"{where}: the rows are {step} apart but plan.step_min is {config.plan.step_min} min"
        )
    _check_numbers(frame, where)
    _check_magnitudes(frame, config, where)
    return frame


def write_frame(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a UTC-indexed frame as CSV with an ISO 8601 ``time`` column first."""
    out = frame.copy()
    out.insert(0, "time", [t.isoformat() for t in out.index])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False, float_format="%.10g")


def write_plan(plan: Plan, path: str | Path) -> None:
    """Write a plan's per-slot frame (``PLAN_COLUMNS``) as CSV."""
    write_frame(plan.frame.loc[:, list(PLAN_COLUMNS)], path)
