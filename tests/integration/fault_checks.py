"""What every fault-matrix row checks beside the plant: the rows the store had committed
before the fault (count, largest key and a content hash per table, read with a separate
read-only SQLite connection) and values of the Prometheus text of ``/metrics``."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

#: The tables whose committed rows must survive every fault, and their key column.
TABLES = {
    "measurements": "id",
    "setpoints": "id",
    "plans": "id",
    "plan_slots": "plan_id",
    "events": "id",
    "ledger_intervals": "seq",
}


@dataclass(frozen=True)
class Committed:
    """The committed rows of one table up to a key.

    Attributes
    ----------
    count : int
        Rows with a key up to ``max_key``.
    max_key : int
        The largest key (0 for an empty table).
    sha256 : str
        Hash of those rows, every column, in key order.
    """

    count: int
    max_key: int
    sha256: str


def committed(db: Path, upto: Mapping[str, Committed] | None = None) -> dict[str, Committed]:
    """Each table's committed rows (up to ``upto``'s largest keys when given: the rows that
    existed then, to compare with ``upto``)."""
    out: dict[str, Committed] = {}
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10.0)) as conn:
        for table, key in TABLES.items():
            top = conn.execute(f"SELECT COALESCE(MAX({key}), 0) FROM {table}").fetchone()[0]
            limit = upto[table].max_key if upto is not None else int(top)
            rows = conn.execute(
                f"SELECT * FROM {table} WHERE {key} <= ? ORDER BY {key}, rowid", (limit,)
            ).fetchall()
            digest = hashlib.sha256(repr(rows).encode()).hexdigest()
            out[table] = Committed(len(rows), limit, digest)
    return out


def metric(text: str, name: str, **labels: str) -> float:
    """The value of sample ``name`` with exactly ``labels`` in Prometheus text ``text``.

    Raises
    ------
    KeyError
        When no such sample is exported.
    """
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    raise KeyError(f"{name}{labels} not in the metrics")
