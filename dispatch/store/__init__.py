"""The daemon's embedded history: SQLite in WAL mode with a versioned schema.

Role: the one home of ``sqlite3`` (an I/O adapter). Keeps measurements (snapshots), forecasts,
plans (a row per plan plus its slots), setpoints with their reasons and read-back, events, the
billing month's demand peak and the carbon ledger (interval records and carbon instruments,
each chained by hash). May import ``dispatch.types`` and ``dispatch.config``; never the pure
core or the other adapters. Modules: ``schema`` (tables, migrations), ``codec`` (value types
<-> rows), ``housekeeping`` (retention, CSV export), ``ledger_tables`` and
``instrument_tables`` (the chains), ``chain_migration`` (schema step 8), ``db`` (``Store``),
``paths`` (``state_dir``).

Design
------
- **Time** is stored as integer epoch milliseconds UTC in columns ending ``_ms`` (compact,
  exact, ordered, cheap range queries). Every method takes tz-aware datetimes; naive ones are an
  ``InputError``. Ranges are half open, ``[start, end)``. CSV exports add an ISO 8601 column.
  Two exceptions keep what is hashed or certified as text: the ledger's ``start_utc`` /
  ``end_utc`` (``YYYY-MM-DDTHH:MM:SSZ``) and the offsets' dates (``YYYY-MM-DD``).
  Units are in every column name (``p_grid_kw``, ``soc_frac``, ``ci_g_per_kwh``, ``tonnes_co2``).
- **Schema versions**: ``PRAGMA user_version`` counts the applied steps of ``MIGRATIONS``.
  Opening an older file applies the missing steps in one transaction; a file newer than this
  program knows raises ``StoreError``.
- **Transactions**: every public write is one ``BEGIN IMMEDIATE ... COMMIT``; ``record_cycle``
  writes a whole control cycle at once, so a killed process loses at most the cycle in flight.
  ``synchronous = FULL``: a committed cycle survives a power cut as well.
- **Threads**: one connection per thread, opened on first use and all closed by ``close``.
  WAL lets readers (status page, exports) read while one writer commits; writers (the control
  loop in the asyncio thread, a plan solved in an executor thread) wait up to ``timeout_s`` for
  each other. Never share a ``sqlite3`` connection between threads yourself.
- **Ledger**: ``ledger_intervals`` has a column per field of
  ``dispatch.carbon.chain.IntervalRecord`` (stored as given, so ``IntervalRecord(**row)``
  re-verifies), is append-only (triggers refuse UPDATE and DELETE; tamper tests drop them
  first) and is never pruned. ``carbon_instruments`` (schema v8) chains the credit purchases,
  retirements and certificates of ``dispatch.carbon.instruments`` the same way (a v7
  ``offsets`` table is moved into it by ``chain_migration``). The store and the core are
  siblings: the composition maps records to rows. ``ledger_head`` and ``instruments_head``
  (one row each) keep each chain's head outside it, written in the same transaction as each
  append, which must continue it (``ledger_tables``, ``instrument_tables``).
"""

from dispatch.store.codec import EVENT_LEVELS, DemandPeak, from_ms, to_ms
from dispatch.store.db import Store
from dispatch.store.ledger_tables import GENESIS_HASH, LedgerHead
from dispatch.store.paths import state_dir
from dispatch.store.schema import (
    MIGRATIONS,
    RETAINED,
    SCHEMA_VERSION,
    TABLES,
    StoreError,
    StoreOpenError,
    migrate,
)

__all__ = [
    "EVENT_LEVELS",
    "GENESIS_HASH",
    "MIGRATIONS",
    "RETAINED",
    "SCHEMA_VERSION",
    "TABLES",
    "DemandPeak",
    "LedgerHead",
    "Store",
    "StoreError",
    "StoreOpenError",
    "from_ms",
    "migrate",
    "state_dir",
    "to_ms",
]
