"""The carbon-instruments table of the store: chained purchases, retirements, certificates.

Role: the ``Store`` methods (a mixin of ``dispatch.store.db.Store``) that append to the
append-only ``carbon_instruments`` table, keep its head in ``instruments_head`` in the same
transaction and read both back. Like ``ledger_tables`` it checks only that an appended record
continues the stored head; hashing and verification are ``dispatch.carbon.instruments``'s.
Imports the store's own modules.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dispatch.store.ledger_tables import LedgerHead
from dispatch.store.schema import StoreError

_HEAD_SQL = "SELECT record_hash, recorded_utc, records FROM instruments_head"


class InstrumentTables:
    """Carbon-instrument methods of ``Store`` (relies on its transaction helpers)."""

    if TYPE_CHECKING:  # provided by Store
        path: Any

        def transaction(
            self, what: str = ...
        ) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...

        def _read(self, what: str, sql: str, args: tuple[Any, ...] = ...) -> list[sqlite3.Row]: ...

    def append_instrument(self, record: Mapping[str, Any]) -> None:
        """Append one instrument record and move the head, in one transaction.

        ``record`` holds ``kind``, ``recorded_utc``, ``body`` (a mapping, stored as JSON),
        ``prev_hash`` (the stored head's ``record_hash``) and ``record_hash``.

        Raises
        ------
        StoreError
            When it does not continue the stored head; nothing is written.
        """
        with self.transaction("append carbon_instruments") as conn:
            head = _head(conn.execute(_HEAD_SQL).fetchone())
            if record["prev_hash"] != head.record_hash:
                raise StoreError(
                    f"{self.path}: append carbon_instruments: prev_hash "
                    f"{str(record['prev_hash'])[:12]}... does not continue the head "
                    f"{head.record_hash[:12]}..."
                )
            body = json.dumps(dict(record["body"]), sort_keys=True, ensure_ascii=False)
            conn.execute(
                "INSERT INTO carbon_instruments (kind, recorded_utc, body_json, prev_hash, "
                "record_hash) VALUES (?, ?, ?, ?, ?)",
                (
                    record["kind"],
                    record["recorded_utc"],
                    body,
                    record["prev_hash"],
                    record["record_hash"],
                ),
            )
            conn.execute(
                "INSERT INTO instruments_head VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE "
                "SET record_hash = excluded.record_hash, recorded_utc = excluded.recorded_utc, "
                "records = excluded.records",
                (record["record_hash"], record["recorded_utc"], head.records + 1),
            )

    def instruments(self) -> list[dict[str, Any]]:
        """Every instrument row in stored order: ``seq``, ``kind``, ``recorded_utc``,
        ``body_json`` (text, as stored), ``prev_hash`` and ``record_hash``."""
        rows = self._read(
            "read carbon_instruments", "SELECT * FROM carbon_instruments ORDER BY seq"
        )
        return [dict(r) for r in rows]

    def instruments_head(self) -> LedgerHead:
        """The stored head (``end_utc`` holds the last ``recorded_utc``)."""
        rows = self._read("read instruments_head", _HEAD_SQL)
        return _head(rows[0] if rows else None)


def _head(row: Any) -> LedgerHead:
    return LedgerHead() if row is None else LedgerHead(str(row[0]), row[1], int(row[2]))
