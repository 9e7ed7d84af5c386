"""Retention and CSV export of the store's tables.

Role: range queries over a table's time column, deleting rows past their retention and
writing a time range of a table to CSV. Works on a ``sqlite3`` connection handed in by
``Store``; imports ``dispatch.types`` and the store's own modules.
"""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from dispatch.store.codec import from_ms, to_ms
from dispatch.store.schema import RETAINED, TABLES, StoreError, check_table
from dispatch.types import InputError

MS_PER_DAY = 86_400_000


def bound(t: dt.datetime, kind: str, what: str) -> int | str:
    """A time bound in the form of a time column of ``kind`` (see ``schema.TABLES``)."""
    ms = to_ms(t, what)
    if kind == "ms":
        return ms
    utc = from_ms(ms)
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ") if kind == "utc" else utc.date().isoformat()


def range_query(
    table: str, start: dt.datetime | None, end: dt.datetime | None
) -> tuple[str, tuple[int | str, ...]]:
    """SQL and arguments selecting the rows of ``table`` with time in ``[start, end)``, in
    time order (either bound may be None)."""
    col, kind, _ = TABLES[check_table(table)]
    where, args = [], []
    if start is not None:
        where.append(f"{col} >= ?")
        args.append(bound(start, kind, f"{table} start"))
    if end is not None:
        where.append(f"{col} < ?")
        args.append(bound(end, kind, f"{table} end"))
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    return f"SELECT * FROM {table}{clause} ORDER BY {col}, rowid", tuple(args)


def retention_days(
    default: Mapping[str, int], days: int | Mapping[str, int] | None
) -> dict[str, int]:
    """Days to keep per retained table: ``default``, replaced by one ``days`` for all or
    overridden per table by a mapping.

    Raises
    ------
    StoreError
        For a table that is unknown or not retained (ledger, demand peak, slots).
    InputError
        For a retention below one day.
    """
    keep = dict(default)
    if isinstance(days, Mapping):
        for table, d in days.items():
            if check_table(table) not in RETAINED:
                raise StoreError(f"retention for {table!r}: retained tables are {RETAINED}")
            keep[table] = int(d)
    elif days is not None:
        keep = dict.fromkeys(RETAINED, int(days))
    short = {t: d for t, d in keep.items() if d < 1}
    if short:
        raise InputError(f"retention must be at least 1 day, got {short}")
    return keep


def prune(conn: sqlite3.Connection, now: dt.datetime, keep: Mapping[str, int]) -> dict[str, int]:
    """Delete rows older than ``keep[table]`` days before ``now`` (inside the caller's
    transaction); returns rows deleted per table."""
    now_ms = to_ms(now, "prune now")
    deleted = {}
    for table, days in keep.items():
        col = TABLES[table][0]
        cur = conn.execute(f"DELETE FROM {table} WHERE {col} < ?", (now_ms - days * MS_PER_DAY,))
        deleted[table] = cur.rowcount
    return deleted


def export_csv(
    conn: sqlite3.Connection, table: str, start: dt.datetime, end: dt.datetime, path: str | Path
) -> int:
    """Write the rows of ``table`` in ``[start, end)`` to ``path`` as CSV: a ``time_utc``
    ISO 8601 column (``Z``; the date for date-keyed tables), then the stored columns (NULL as
    an empty field).

    Returns
    -------
    int
        Number of data rows written.

    Raises
    ------
    StoreError
        For an unknown table.
    InputError
        For a naive time or ``start >= end``.
    """
    check_table(table)
    if to_ms(start, f"export {table} start") >= to_ms(end, f"export {table} end"):
        raise InputError(f"export {table}: start {start} must be before end {end}")
    sql, args = range_query(table, start, end)
    cur = conn.execute(sql, args)
    names = [d[0] for d in cur.description]
    col, kind, _ = TABLES[table]
    at = names.index(col)
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["time_utc", *names])
        for row in cur:
            t = row[at]
            iso = from_ms(t).isoformat().replace("+00:00", "Z") if kind == "ms" else t
            out.writerow([iso, *("" if v is None else v for v in row)])
            n += 1
    return n
