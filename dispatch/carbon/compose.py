"""Composition of the carbon ledger: measured samples -> interval records; stored rows -> records.

Role: the one code path that turns the control cycles' measured powers into chained ledger
records (used by the daemon, and by the backtest tests on simulated flows), and turns the
store's rows back into interval and instrument records (used by ``audit``, the CLI and the
daemon). Pure: imports ``dispatch.carbon``'s ``accounting``, ``chain`` and ``instruments``,
``dispatch.config``, ``dispatch.types``, numpy and pandas; no I/O, no wall clock. The store's
rows come in as plain mappings (``Store.rows("measurements")``, ``Store.ledger(with_seq=True)``,
``Store.offsets()``).

From cycles to an interval (a plan step, e.g. 15 min):

- a cycle sample counts when its reading was complete (``ok``) and its four powers are finite;
  other samples are dropped (a faulty meter never reaches the ledger);
- the interval's mean power of each flow is the mean of its valid samples (the cycle runs at a
  fixed period, so this is the time average), times the interval length for energy; PV and
  load means below zero (meter offsets at night) are taken as zero;
- an interval without one valid sample is **not recorded**: a daemon that was down leaves a
  gap in the ledger rather than invented zero flows, and the daemon logs and stores an event
  naming each gap (the report's ``intervals`` count shows it too);
- imported history (``dispatch import-history`` rows, battery unknown) counts with the
  battery at 0 kW; each record's ``provenance`` is the worst of its samples: ``measured``
  (the daemon's readings), ``imported`` (history with a metered grid flow) or ``estimated``
  (history whose grid flow is load - PV);
- the intensity is the one known for the interval: the forecast's series value when it had
  one (``ci_source = "series"``), else the configured profile or factor;
- each record holds the reference of the site's grid factor of record (``factor_ref``,
  ``dispatch.carbon.factors.reference``): the configured factor's table entry.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from dispatch.carbon import accounting, chain, factors
from dispatch.carbon.instruments import Instrument
from dispatch.config import SiteConfig
from dispatch.types import InputError

__all__ = [
    "FLOWS",
    "instruments_from_rows",
    "interval_flows",
    "interval_records",
    "records_from_rows",
    "samples_from_rows",
    "type_problem",
]

FLOWS = ("p_grid_kw", "p_pv_kw", "p_batt_kw", "p_load_kw")
BATTERY = FLOWS.index("p_batt_kw")
#: The marks ``dispatch import-history`` leaves in a measurement's ``values_json`` (the
#: store's ``codec.IMPORTED`` and ``codec.GRID_ESTIMATED``): history, and a grid flow that was
#: not metered (load - PV).
IMPORTED, GRID_ESTIMATED = '"import_history"', '"grid_estimated"'
_NON_NEGATIVE = ("p_pv_kw", "p_load_kw", "p_curtail_kw")


def samples_from_rows(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Valid cycle samples from ``measurements`` rows, each with its provenance.

    Parameters
    ----------
    rows : iterable of mapping
        With ``time_ms`` (epoch ms UTC), ``ok`` (0/1), the ``FLOWS`` (kW, None for NULL) and
        ``values_json`` (the marks of imported history: ``IMPORTED``, ``GRID_ESTIMATED``).

    Returns
    -------
    pandas.DataFrame
        ``FLOWS`` columns (kW) indexed by UTC sample time, only complete finite readings, and
        ``provenance_rank`` (the index in ``chain.PROVENANCE``). An imported history row
        (battery power unknown) counts with the battery at 0 kW: rank 1, or 2 when its grid
        flow was not metered.
    """
    times, values = [], []
    for r in rows:
        row = [_number(r.get(c)) for c in FLOWS]
        marks = str(r.get("values_json") or "")
        rank = 0.0
        if IMPORTED in marks:
            row[BATTERY] = 0.0 if math.isnan(row[BATTERY]) else row[BATTERY]
            rank = 2.0 if GRID_ESTIMATED in marks else 1.0
        if r.get("ok") and all(math.isfinite(v) for v in row):
            times.append(int(r["time_ms"]))
            values.append([*row, rank])
    index = pd.DatetimeIndex(pd.to_datetime(times, unit="ms", utc=True), name="time")
    data = np.array(values, dtype=float).reshape(-1, len(FLOWS) + 1)
    return pd.DataFrame(data, index=index, columns=[*FLOWS, "provenance_rank"])


def _number(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


def interval_flows(
    samples: pd.DataFrame, step: pd.Timedelta, until: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Mean power per interval of the valid samples in it.

    Parameters
    ----------
    samples : pandas.DataFrame
        UTC-indexed (any order) ``FLOWS`` in kW and optionally ``p_curtail_kw``; rows with a
        non-finite flow are dropped.
    step : pandas.Timedelta
        Interval length; intervals start at multiples of it since the epoch.
    until : pandas.Timestamp, optional
        Only intervals ending at or before it (complete intervals) are returned.

    Returns
    -------
    pandas.DataFrame
        Indexed by UTC interval start (sorted; intervals without a valid sample absent): the
        mean of each flow (kW; PV, load and curtailment clipped at 0), ``samples`` and (when
        the samples have it) ``provenance_rank``, the worst of the interval's samples.
    """
    if step <= pd.Timedelta(0):
        raise InputError(f"ledger intervals: step must be positive, got {step}")
    missing = [c for c in FLOWS if c not in samples.columns]
    if missing:
        raise InputError(f"ledger intervals: missing flow column(s) {missing}")
    extra = [c for c in ("p_curtail_kw", "provenance_rank") if c in samples.columns]
    cols = [*FLOWS, *extra]
    data = samples[cols].astype(float)
    data = data[np.isfinite(data.to_numpy()).all(axis=1)]
    index = pd.DatetimeIndex(data.index)
    if index.tz is None:
        raise InputError("ledger intervals: sample times must be tz-aware UTC")
    starts = index.tz_convert("UTC").floor(step)
    grouped = data.groupby(starts)
    out = grouped.mean()
    out["samples"] = grouped.size()
    if "provenance_rank" in out.columns:  # an interval is as good as its worst sample
        out["provenance_rank"] = grouped["provenance_rank"].max()
    out.index = pd.DatetimeIndex(out.index, name="start")
    if until is not None:
        out = out[out.index + step <= pd.Timestamp(until)]
    for c in _NON_NEGATIVE:
        if c in out.columns:
            out[c] = out[c].clip(lower=0.0)
    return out.sort_index()


def interval_records(
    flows: pd.DataFrame,
    config: SiteConfig,
    step: pd.Timedelta,
    ci_series: pd.Series | None = None,
    prev_hash: str = chain.GENESIS,
    factor: factors.Factor | None = None,
) -> list[chain.IntervalRecord]:
    """Chained ledger records of intervals' mean flows.

    Parameters
    ----------
    flows : pandas.DataFrame
        From ``interval_flows``: UTC interval starts, ``FLOWS`` (kW), optional
        ``p_curtail_kw`` and ``provenance_rank`` (absent: every interval ``"measured"``).
    config : SiteConfig
        Configured intensity (profile or factor) and export limit.
    step : pandas.Timedelta
        Interval length.
    ci_series : pandas.Series, optional
        Intensity known from a series (g CO2/kWh) by UTC interval start; NaN or absent
        intervals fall back to the configuration.
    prev_hash : str
        Head of the ledger the records continue.
    factor : Factor, optional
        The grid factor of record (``factors.configured``); default: the configured
        ``grid_ci_g_per_kwh`` without a table key.

    Returns
    -------
    list of IntervalRecord
        One per row of ``flows``, values quantised, hashes set (format 3, with ``factor_ref``).
    """
    if flows.empty:
        return []
    cols = [c for c in (*FLOWS, "p_curtail_kw") if c in flows.columns]
    frame = flows[cols].copy()
    if ci_series is not None:
        frame["ci_g_per_kwh"] = ci_series.reindex(frame.index).to_numpy(float)
    accounts = accounting.interval_accounting(frame, config, step)
    if "provenance_rank" in flows.columns:
        ranks = flows["provenance_rank"].to_numpy(int)
        provenance: str | list[str] = [chain.PROVENANCE[k] for k in ranks]
    else:
        provenance = "measured"
    if factor is None:
        factor = factors.configured(config.carbon.grid_ci_g_per_kwh, None, {})
    ref = factors.reference(factor)
    raw = chain.records_from_accounts(
        accounts, step, accounting.METHOD_VERSION, provenance, ref
    )
    return chain.chain(raw, prev_hash)


# -------------------------------------------------------------------- reading back
def _bad_column(row: Mapping[str, Any]) -> str | None:
    for f in chain.RECORD_FIELDS:
        v = row.get(f)
        want_text = f in chain.STRING_FIELDS
        if (want_text and not isinstance(v, str)) or (
            not want_text and not (isinstance(v, int | float) and not isinstance(v, bool))
        ):
            return f
    return None


def records_from_rows(rows: list[Mapping[str, Any]]) -> list[chain.IntervalRecord]:
    """Ledger records from stored rows (``seq`` ignored).

    Raises
    ------
    InputError
        Naming the row and column whose value has the wrong type (a tampered cell).
    """
    out = []
    kinds = [str if f in chain.STRING_FIELDS else float for f in chain.RECORD_FIELDS]
    for i, row in enumerate(rows):
        values = [row.get(f) for f in chain.RECORD_FIELDS]
        if not all(type(v) is k for v, k in zip(values, kinds, strict=True)):  # slow path
            problem = type_problem(i, row)
            if problem is not None:
                raise InputError(problem)
            values = [float(v) if k is float else v for v, k in zip(values, kinds, strict=True)]
        out.append(chain.IntervalRecord(*values))
    return out


def type_problem(i: int, row: Mapping[str, Any]) -> str | None:
    """Why stored row ``i`` cannot be a record (a cell of the wrong type), or None."""
    bad = _bad_column(row)
    if bad is None:
        return None
    want = "text" if bad in chain.STRING_FIELDS else "number"
    return (
        f"edited value at {row.get('start_utc')}: column {bad} holds {row.get(bad)!r}, "
        f"not a {want}"
    )


def instruments_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[Instrument]:
    """Instrument records from ``Store.instruments()`` rows (``body_json`` parsed).

    Raises
    ------
    InputError
        For a row whose body is not a JSON object or whose columns are not text, naming its
        position and seq: it was edited outside ``dispatch carbon``.
    """
    out = []
    for i, r in enumerate(rows):
        try:
            body = json.loads(r["body_json"])
            texts = [r[c] for c in ("kind", "recorded_utc", "prev_hash", "record_hash")]
            if not isinstance(body, dict) or not all(isinstance(t, str) for t in texts):
                raise ValueError("a body that is not an object, or a column that is not text")
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"instrument record {i} (seq {r.get('seq')}) is malformed: {exc}; it was "
                "edited outside `dispatch carbon`"
            ) from None
        out.append(Instrument(*texts[:2], body, *texts[2:], seq=int(r.get("seq") or 0)))
    return out
