"""The carbon-ledger tables of the store: interval records, their head, the triggers.

Role: the ``Store`` methods (a mixin of ``dispatch.store.db.Store``) that append to the
append-only ``ledger_intervals`` table, keep its head in ``ledger_head`` in the same
transaction, read both back, and list missing append-only triggers. The store does not import
``dispatch.carbon.chain`` (siblings): it checks only that each appended record's ``prev_hash``
continues the stored head, so no writer can fork or re-start the chain; hashing and
verification are the pure core's. Imports ``dispatch.types`` and the store's own modules.

The head row (``record_hash``, ``end_utc`` and ``records`` of the last appended record) sits
outside the ledger table, so deleting the last rows of the ledger, which leaves a valid shorter
chain, no longer matches it (``dispatch carbon verify``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dispatch.store import codec
from dispatch.store.schema import StoreError

#: ``prev_hash`` of the first record (equals ``dispatch.carbon.chain.GENESIS``).
GENESIS_HASH = "0" * 64
#: The triggers that keep the ledger tables append-only (``dispatch carbon verify`` checks them).
LEDGER_TRIGGERS = ("ledger_no_update", "ledger_no_delete", "instruments_no_update",
                   "instruments_no_delete")


@dataclass(frozen=True)
class LedgerHead:
    """The stored head of the ledger.

    Attributes
    ----------
    record_hash : str
        ``record_hash`` of the last appended record (``GENESIS_HASH`` for an empty ledger).
    end_utc : str or None
        Its interval end, ``YYYY-MM-DDTHH:MM:SSZ`` (exclusive); None for an empty ledger.
    records : int
        Number of records appended.
    """

    record_hash: str = GENESIS_HASH
    end_utc: str | None = None
    records: int = 0


class LedgerTables:
    """Ledger methods of ``Store`` (relies on its transaction helpers)."""

    if TYPE_CHECKING:  # provided by Store
        path: Any

        def transaction(self, what: str = ...) -> contextlib.AbstractContextManager[
            sqlite3.Connection]: ...

        def _insert(self, conn: sqlite3.Connection, table: str, row: Mapping[str, Any]) -> int:
            ...

        def _read(self, what: str, sql: str, args: tuple[Any, ...] = ...) -> list[sqlite3.Row]:
            ...

    # ---------------------------------------------------------------- ledger
    def append_ledger(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Append carbon-ledger interval records and move the head, in one transaction.

        Each record maps the columns of ``ledger_intervals`` (the fields of
        ``dispatch.carbon.chain.IntervalRecord``, e.g. ``record._asdict()``) to values. The first
        record's ``prev_hash`` must be the stored head's ``record_hash`` (``GENESIS_HASH`` for
        an empty ledger) and each next one the ``record_hash`` of the one before.

        Returns
        -------
        int
            How many records were appended (all of them, or none on an error).

        Raises
        ------
        StoreError
            A record that does not continue the chain, an unknown column, a NULL or NaN; the
            transaction is rolled back and the ledger and its head are unchanged.
        """
        n = 0
        with self.transaction("append ledger_intervals") as conn:
            head = _head_of(conn)
            expected, end, count = head.record_hash, head.end_utc, head.records
            for record in records:
                if record.get("prev_hash") != expected:
                    raise StoreError(
                        f"{self.path}: append ledger_intervals: record {record.get('start_utc')}"
                        f" has prev_hash {str(record.get('prev_hash'))[:12]}... but the ledger"
                        f" head is {expected[:12]}...: it does not continue the chain"
                    )
                self._insert(conn, "ledger_intervals", record)
                expected, end, count = str(record["record_hash"]), record["end_utc"], count + 1
                n += 1
            if n:
                conn.execute(
                    "INSERT INTO ledger_head VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                    "record_hash = excluded.record_hash, end_utc = excluded.end_utc, "
                    "records = excluded.records",
                    (expected, end, count),
                )
        return n

    def ledger(self, with_seq: bool = False, since_utc: str | None = None) -> list[dict[str, Any]]:
        """Every ledger record in stored (append) order; ``seq`` (the row id) on request;
        only those starting at or after ``since_utc`` (``TIME_FORMAT`` text) when given."""
        if since_utc is None:
            rows = self._read("read ledger", "SELECT * FROM ledger_intervals ORDER BY seq")
        else:
            sql = "SELECT * FROM ledger_intervals WHERE start_utc >= ? ORDER BY seq"
            rows = self._read("read ledger", sql, (since_utc,))
        if not rows:
            return []
        names = list(rows[0].keys())
        first = 0 if with_seq else names.index("seq") + 1  # seq is the first column
        keys = names[first:]
        return [dict(zip(keys, tuple(r)[first:], strict=True)) for r in rows]

    def missing_triggers(self) -> list[str]:
        """The append-only triggers of ``LEDGER_TRIGGERS`` that are not in the file."""
        rows = self._read("read triggers", "SELECT name FROM sqlite_master WHERE type = 'trigger'")
        have = {str(r[0]) for r in rows}
        return [t for t in LEDGER_TRIGGERS if t not in have]

    def ledger_head(self) -> LedgerHead:
        """The stored head (an empty ``LedgerHead`` when nothing was appended)."""
        rows = self._read("read ledger_head", _HEAD_SQL)
        return _head_row(rows[0] if rows else None)

    def measurement_time(
        self, at_or_after: dt.datetime | None = None, skip: int = 0
    ) -> dt.datetime | None:
        """Time of the first stored measurement at or after ``at_or_after`` (UTC; all when
        None), or of the ``skip``-th one after it; None when there are not that many."""
        lo = -(2**62) if at_or_after is None else codec.to_ms(at_or_after, "measurement time")
        rows = self._read(
            "read measurements",
            "SELECT time_ms FROM measurements WHERE time_ms >= ? ORDER BY time_ms LIMIT 1 "
            "OFFSET ?",
            (lo, max(int(skip), 0)),
        )
        return codec.from_ms(int(rows[0][0])) if rows else None


_HEAD_SQL = "SELECT record_hash, end_utc, records FROM ledger_head"


def _head_row(row: Any) -> LedgerHead:
    return LedgerHead() if row is None else LedgerHead(str(row[0]), row[1], int(row[2]))


def _head_of(conn: sqlite3.Connection) -> LedgerHead:
    return _head_row(conn.execute(_HEAD_SQL).fetchone())
