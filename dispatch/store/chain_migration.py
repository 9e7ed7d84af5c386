"""Schema step 8: the v7 ``offsets`` table moved into the chained ``carbon_instruments``.

Role: one migration step (``schema.MIGRATIONS[7]`` calls ``offsets_into_chain``). It repeats
the record-hash rule of ``dispatch.carbon.instruments.record_hash`` (the store does not import
the core; ``tests/test_carbon_instruments.py`` holds the two equal). Imports only the
standard library.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from typing import Any

GENESIS_HASH = "0" * 64


def _hash(kind: str, recorded_utc: str, body: Mapping[str, Any], prev_hash: str) -> str:
    """The record hash of ``dispatch.carbon.instruments.record_hash`` (same rule)."""
    doc = {"body": dict(body), "kind": kind, "recorded_utc": recorded_utc}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + text).encode()).hexdigest()


def _legacy_records(row: sqlite3.Row | tuple) -> list[tuple[str, str, dict[str, Any]]]:
    """The purchase (and whole-batch retirement) records of one v7 ``offsets`` row."""
    _, credit_type, serial, vintage, tonnes, purchased, retired, registry = tuple(row)
    batch = f"{credit_type}:{serial}"
    buy = {
        "batch": batch,
        "credit_type": credit_type,
        "registry": registry or "(not recorded)",
        "project_id": "",
        "methodology": "",
        "vintage_year": int(vintage),
        "monitoring_from": f"{int(vintage)}-01-01",
        "monitoring_to": f"{int(vintage)}-12-31",
        "serial_first": serial,
        "serial_last": serial,
        "tonnes": float(tonnes),
        "purchased_on": purchased,
    }
    out = [("purchase", f"{purchased}T00:00:00Z", buy)]
    if retired is not None:
        out.append(
            (
                "retirement",
                f"{retired}T00:00:00Z",
                {
                    "batch": batch,
                    "tonnes": float(tonnes),
                    "retired_on": retired,
                    "cancellation_number": "",
                    "beneficiary": "(not recorded)",
                    "claimed_from": retired,
                    "claimed_to": retired,
                },
            )
        )
    return out


def offsets_into_chain(conn: sqlite3.Connection) -> None:
    """Chain every ``offsets`` row's purchase and retirement into ``carbon_instruments`` in
    recorded order (its dates), set the head, and drop the old table."""
    prev, n, last = GENESIS_HASH, 0, None
    rows = conn.execute("SELECT * FROM offsets ORDER BY id").fetchall()
    legacy = [(rec, i) for i, row in enumerate(rows) for rec in _legacy_records(row)]
    legacy.sort(key=lambda x: (x[0][1], x[0][0] != "purchase", x[1]))  # in recorded order
    for (kind, recorded, body), _ in legacy:
        h = _hash(kind, recorded, body, prev)
        conn.execute(
            "INSERT INTO carbon_instruments (kind, recorded_utc, body_json, prev_hash, "
            "record_hash) VALUES (?, ?, ?, ?, ?)",
            (kind, recorded, json.dumps(body, sort_keys=True, ensure_ascii=False), prev, h),
        )
        prev, n, last = h, n + 1, recorded
    if n:
        conn.execute("INSERT INTO instruments_head VALUES (1, ?, ?, ?)", (prev, last, n))
    conn.execute("DROP TABLE offsets")
