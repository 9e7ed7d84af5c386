"""Pure completeness of a report period: coverage of the ledger's intervals, gaps, warnings.

Role: say how much of a period the ledger's records cover, where the gaps are and what to
warn about, so a period the daemon was down for reads as a gap, not as low emissions. May
import only pandas and the standard library; no I/O, no wall clock.

Rule: a period ``[lo, hi)`` (UTC bounds of site-local months) is expected to hold one record
per plan step up to ``until``, the end of the ledger's last record (the report takes no
clock, so time after the last record is "not yet recorded", reported as such); the coverage
is recorded / expected intervals, and each uncovered span is a gap ``[from, to)``. Recorded
intervals are counted by provenance (``provenance``): measured by the daemon, imported
history, estimated, or unflagged (format-1 records, written before provenance was kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

MAX_GAPS_LISTED = 50
#: Provenance as counted in reports: ``chain.PROVENANCE`` and ``""`` (format 1) as
#: ``"unflagged"``.
PROVENANCE_KEYS = ("measured", "imported", "estimated", "unflagged")
_FMT = "%Y-%m-%dT%H:%M:%SZ"


def coverage(
    starts: Sequence[pd.Timestamp],
    lo: pd.Timestamp,
    hi: pd.Timestamp,
    step: pd.Timedelta,
    until: pd.Timestamp | None,
) -> dict[str, Any]:
    """Coverage of ``[lo, hi)`` by records starting at ``starts`` (UTC, sorted).

    Parameters
    ----------
    starts : sequence of pandas.Timestamp
        Interval starts of the records in the period, sorted.
    lo, hi : pandas.Timestamp
        The period's bounds (tz-aware).
    step : pandas.Timedelta
        The plan step (one record per step is complete).
    until : pandas.Timestamp or None
        End of the ledger's last record (None for an empty ledger): expected intervals stop
        there.

    Returns
    -------
    dict
        ``expected_intervals``, ``recorded_intervals``, ``coverage_frac`` (None when nothing
        was expected yet), ``gap_count``, ``gap_hours``, ``gaps`` (the first
        ``MAX_GAPS_LISTED`` as ``[from, to]`` UTC text) and ``not_yet_recorded_hours`` (from
        ``until`` to the period end).
    """
    lo, hi = pd.Timestamp(lo).tz_convert("UTC"), pd.Timestamp(hi).tz_convert("UTC")
    end = lo if until is None else min(hi, max(lo, pd.Timestamp(until).tz_convert("UTC")))
    expected = max(int((end - lo) / step), 0)
    gaps, cursor = [], lo
    for t in starts:
        if t > cursor:
            gaps.append((cursor, min(t, end)))
        cursor = max(cursor, t + step)
    if cursor < end:
        gaps.append((cursor, end))
    gaps = [(a, b) for a, b in gaps if b > a]
    hours = sum((b - a) / pd.Timedelta(hours=1) for a, b in gaps)
    return {
        "expected_intervals": expected,
        "recorded_intervals": len(starts),
        "coverage_frac": round(len(starts) / expected, 6) if expected else None,
        "gap_count": len(gaps),
        "gap_hours": round(hours, 6),
        "gaps": [[a.strftime(_FMT), b.strftime(_FMT)] for a, b in gaps[:MAX_GAPS_LISTED]],
        "not_yet_recorded_hours": round((hi - end) / pd.Timedelta(hours=1), 6),
    }


def warnings(label: str, cov: dict[str, Any]) -> list[str]:
    """The warnings a period's coverage calls for (empty when it is complete)."""
    if cov["recorded_intervals"] == 0:
        return [f"{label}: no data: the ledger holds no interval here; its figures are zeros "
                "for lack of records, not measured"]
    out = []
    if cov["gap_count"]:
        pct = 100.0 * (cov["coverage_frac"] or 0.0)
        out.append(f"{label}: coverage {pct:.1f} %: {cov['gap_count']} gap(s), "
                   f"{cov['gap_hours']:g} h without records; emissions in them are not "
                   "counted")
    if cov["not_yet_recorded_hours"] > 0:
        out.append(f"{label}: the last {cov['not_yet_recorded_hours']:g} h are not recorded "
                   "yet (after the ledger's last interval)")
    return out


def provenance(marks: Sequence[str], import_kwh: Sequence[float]) -> dict[str, Any]:
    """Recorded intervals and their grid import by provenance.

    Parameters
    ----------
    marks : sequence of str
        Each record's ``provenance`` (``""``: a format-1 record).
    import_kwh : sequence of float
        Each record's grid import (kWh), in the same order.

    Returns
    -------
    dict
        ``intervals`` and ``import_kwh`` (rounded to 6 decimals), each a mapping of
        ``PROVENANCE_KEYS`` to the count and the kWh.
    """
    counts = dict.fromkeys(PROVENANCE_KEYS, 0)
    kwh = dict.fromkeys(PROVENANCE_KEYS, 0.0)
    for m, e in zip(marks, import_kwh, strict=True):
        key = m or "unflagged"
        if key not in counts:
            raise ValueError(f"provenance {m!r} is not one of {PROVENANCE_KEYS[:3]}")
        counts[key] += 1
        kwh[key] += float(e)
    return {"intervals": counts, "import_kwh": {k: round(v, 6) for k, v in kwh.items()}}


def provenance_warnings(label: str, prov: dict[str, Any]) -> list[str]:
    """Say how much of a period is not the daemon's own measurement (empty when none)."""
    n = prov["intervals"]
    parts = [
        f"{n['imported']} from imported history" if n["imported"] else "",
        f"{n['estimated']} estimated (grid flow taken as load - PV)" if n["estimated"] else "",
        f"{n['unflagged']} unflagged (recorded before provenance was kept)"
        if n["unflagged"]
        else "",
    ]
    parts = [p for p in parts if p]
    if not parts:
        return []
    return [f"{label}: intervals not measured by the daemon: {', '.join(parts)}"]
