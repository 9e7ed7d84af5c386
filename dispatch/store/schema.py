"""The versioned SQLite schema of the store and the migration runner.

Role: the tables as a list of migration steps (``MIGRATIONS[i]`` takes a file from version
``i`` to ``i + 1``; ``PRAGMA user_version`` counts the steps applied), which tables exist and
their time columns. Never edit a released step: append a new one. Imports ``dispatch.types``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from dispatch.store.chain_migration import offsets_into_chain
from dispatch.types import DispatchError

_PLAN_SLOT_COLS = (
    "p_batt_kw REAL, p_charge_kw REAL, p_discharge_kw REAL, p_grid_kw REAL, p_import_kw REAL, "
    "p_export_kw REAL, p_pv_kw REAL, p_curtail_kw REAL, p_load_kw REAL, soc_frac REAL, "
    "price_import_per_kwh REAL, price_export_per_kwh REAL, ci_g_per_kwh REAL"
)
#: Each step is SQL text or a function of the connection (run inside the same transaction).
MIGRATIONS: tuple[tuple[str | Callable[[sqlite3.Connection], None], ...], ...] = (
    (  # v1: the daemon's history
        "CREATE TABLE measurements (id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, "
        "p_grid_kw REAL, p_pv_kw REAL, p_batt_kw REAL, p_load_kw REAL, soc_frac REAL, "
        "p_charge_max_kw REAL, p_discharge_max_kw REAL, ok INTEGER NOT NULL, "
        "faults_json TEXT NOT NULL, stale_json TEXT NOT NULL, missing_json TEXT NOT NULL, "
        "derived_json TEXT NOT NULL, values_json TEXT NOT NULL)",
        "CREATE INDEX measurements_time ON measurements (time_ms)",
        "CREATE TABLE forecasts (id INTEGER PRIMARY KEY, issued_ms INTEGER NOT NULL, "
        "start_ms INTEGER NOT NULL, step_s REAL NOT NULL, slots INTEGER NOT NULL, "
        "source TEXT NOT NULL)",
        "CREATE INDEX forecasts_issued ON forecasts (issued_ms)",
        "CREATE TABLE forecast_slots (forecast_id INTEGER NOT NULL REFERENCES forecasts (id) "
        "ON DELETE CASCADE, slot_start_ms INTEGER NOT NULL, p_pv_kw REAL, p_load_kw REAL, "
        "price_import_per_kwh REAL, price_export_per_kwh REAL, ci_g_per_kwh REAL, "
        "load_quantiles_kw_json TEXT, pv_quantiles_kw_json TEXT, "
        "PRIMARY KEY (forecast_id, slot_start_ms))",
        "CREATE TABLE plans (id INTEGER PRIMARY KEY, made_ms INTEGER NOT NULL, "
        "start_ms INTEGER NOT NULL, step_s REAL NOT NULL, slots INTEGER NOT NULL, "
        "status TEXT NOT NULL, solver TEXT NOT NULL, message TEXT NOT NULL, objective REAL, "
        "solve_ms REAL, peak_import_kw REAL, kg_co2 REAL, cost_total REAL, "
        "costs_json TEXT NOT NULL, soft_violation_kwh_json TEXT NOT NULL, "
        "summary_json TEXT NOT NULL)",
        "CREATE INDEX plans_made ON plans (made_ms)",
        "CREATE TABLE plan_slots (plan_id INTEGER NOT NULL REFERENCES plans (id) "
        f"ON DELETE CASCADE, slot_start_ms INTEGER NOT NULL, {_PLAN_SLOT_COLS}, "
        "PRIMARY KEY (plan_id, slot_start_ms))",
        "CREATE TABLE setpoints (id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, "
        "p_batt_kw REAL NOT NULL, reason TEXT NOT NULL, revert_timeout_s REAL, "
        "default_mode INTEGER NOT NULL, "
        "plan_id INTEGER REFERENCES plans (id) ON DELETE SET NULL)",
        "CREATE INDEX setpoints_time ON setpoints (time_ms)",
        "CREATE TABLE events (id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, "
        "level TEXT NOT NULL CHECK (level IN ('debug', 'info', 'warning', 'error', "
        "'critical')), kind TEXT NOT NULL, device TEXT, message TEXT NOT NULL)",
        "CREATE INDEX events_time ON events (time_ms)",
        "CREATE TABLE demand_peak (billing_month TEXT PRIMARY KEY, "
        "peak_import_kw REAL NOT NULL, time_ms INTEGER NOT NULL, slot_start_ms INTEGER, "
        "updated_ms INTEGER NOT NULL)",
    ),
    (  # v2: carbon ledger (columns = dispatch.carbon.chain.IntervalRecord fields) and offsets
        "CREATE TABLE ledger_intervals (seq INTEGER PRIMARY KEY, start_utc TEXT NOT NULL "
        "UNIQUE, end_utc TEXT NOT NULL, load_kwh REAL NOT NULL, pv_kwh REAL NOT NULL, "
        "curtail_kwh REAL NOT NULL, import_kwh REAL NOT NULL, export_kwh REAL NOT NULL, "
        "charge_kwh REAL NOT NULL, discharge_kwh REAL NOT NULL, ci_g_per_kwh REAL NOT NULL, "
        "ci_source TEXT NOT NULL, method_version TEXT NOT NULL, charge_grid_kwh REAL NOT NULL, "
        "pv_direct_kwh REAL NOT NULL, nobatt_import_kwh REAL NOT NULL, "
        "nobatt_export_kwh REAL NOT NULL, location_kg_co2 REAL NOT NULL, "
        "nobatt_kg_co2 REAL NOT NULL, nopv_kg_co2 REAL NOT NULL, "
        "avoided_pv_kg_co2 REAL NOT NULL, avoided_battery_kg_co2 REAL NOT NULL, "
        "charge_grid_kg_co2 REAL NOT NULL, inputs_hash TEXT NOT NULL, prev_hash TEXT NOT NULL, "
        "record_hash TEXT NOT NULL)",
        "CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger_intervals "
        "BEGIN SELECT RAISE(ABORT, 'ledger_intervals is append-only'); END",
        "CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger_intervals "
        "BEGIN SELECT RAISE(ABORT, 'ledger_intervals is append-only'); END",
        "CREATE TABLE offsets (id INTEGER PRIMARY KEY, credit_type TEXT NOT NULL, "
        "serial TEXT NOT NULL, vintage_year INTEGER NOT NULL, "
        "tonnes REAL NOT NULL CHECK (tonnes > 0), purchased_on TEXT NOT NULL, "
        "retired_on TEXT, registry TEXT NOT NULL DEFAULT '', UNIQUE (credit_type, serial))",
    ),
    (  # v3: the outcome of writing each setpoint (read-back)
        "ALTER TABLE setpoints ADD COLUMN readback_p_batt_kw REAL",
        "ALTER TABLE setpoints ADD COLUMN write_ok INTEGER",
    ),
    (  # v4: the ledger's head kept beside the ledger (one row), written with every append
        "CREATE TABLE ledger_head (id INTEGER PRIMARY KEY CHECK (id = 1), "
        "record_hash TEXT NOT NULL, end_utc TEXT, records INTEGER NOT NULL)",
        "INSERT INTO ledger_head SELECT 1, record_hash, end_utc, "
        "(SELECT count(*) FROM ledger_intervals) FROM ledger_intervals "
        "ORDER BY seq DESC LIMIT 1",
    ),
    (  # v5: each plan slot's peak target and the energy held back for peaks
        "ALTER TABLE plan_slots ADD COLUMN peak_target_kw REAL",
        "ALTER TABLE plan_slots ADD COLUMN peak_reserve_kwh REAL",
    ),
    (  # v6: the load paths a forecast carries (the peak reserve sized on scenarios)
        "ALTER TABLE forecast_slots ADD COLUMN load_scenarios_kw_json TEXT",
    ),
    (  # v7: what a plan was solved from, and the peak target each setpoint held
        "ALTER TABLE plans ADD COLUMN inputs_json TEXT",
        "ALTER TABLE setpoints ADD COLUMN peak_target_kw REAL",
        "ALTER TABLE setpoints ADD COLUMN measurement_id INTEGER",
    ),
    (  # v8: carbon instruments (credit purchases, partial retirements, certificates) chained
        "CREATE TABLE carbon_instruments (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, "
        "recorded_utc TEXT NOT NULL, body_json TEXT NOT NULL, prev_hash TEXT NOT NULL, "
        "record_hash TEXT NOT NULL)",
        "CREATE TRIGGER instruments_no_update BEFORE UPDATE ON carbon_instruments "
        "BEGIN SELECT RAISE(ABORT, 'carbon_instruments is append-only'); END",
        "CREATE TRIGGER instruments_no_delete BEFORE DELETE ON carbon_instruments "
        "BEGIN SELECT RAISE(ABORT, 'carbon_instruments is append-only'); END",
        "CREATE TABLE instruments_head (id INTEGER PRIMARY KEY CHECK (id = 1), "
        "record_hash TEXT NOT NULL, recorded_utc TEXT, records INTEGER NOT NULL)",
        offsets_into_chain,  # the v2 offsets rows become chained records; the table goes
    ),
    (  # v9: each ledger interval's provenance (measured, imported, estimated); '' = format 1
        "ALTER TABLE ledger_intervals ADD COLUMN provenance TEXT NOT NULL DEFAULT ''",
    ),
    (  # v10: each ledger interval's grid factor reference (record format 3); '' = format 1/2
        "ALTER TABLE ledger_intervals ADD COLUMN factor_ref TEXT NOT NULL DEFAULT ''",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

#: Table -> (time column, its kind, pruned by retention). Kinds: ``"ms"`` epoch milliseconds
#: UTC; ``"utc"`` text ``YYYY-MM-DDTHH:MM:SSZ`` (the ledger keeps the hashed text); ``"date"``
#: text ``YYYY-MM-DD``.
TABLES: dict[str, tuple[str, str, bool]] = {
    "measurements": ("time_ms", "ms", True),
    "forecasts": ("issued_ms", "ms", True),
    "forecast_slots": ("slot_start_ms", "ms", False),  # go with their forecast
    "plans": ("made_ms", "ms", True),
    "plan_slots": ("slot_start_ms", "ms", False),  # go with their plan
    "setpoints": ("time_ms", "ms", True),
    "events": ("time_ms", "ms", True),
    "demand_peak": ("time_ms", "ms", False),
    "ledger_intervals": ("start_utc", "utc", False),  # append-only, never pruned
    "carbon_instruments": ("recorded_utc", "utc", False),  # append-only, never pruned
}
RETAINED = tuple(t for t, (_, _, pruned) in TABLES.items() if pruned)


class StoreError(DispatchError):
    """The history database cannot be used; the message names the file or table and cause."""


class StoreOpenError(StoreError):
    """The history database cannot be opened at all (not a database, unreadable, no folder):
    a person must fix it, so the command line exits 78 and systemd does not retry."""


def check_table(name: str) -> str:
    """``name`` if it is a table of the store, else ``StoreError`` listing the tables."""
    if name not in TABLES:
        raise StoreError(f"unknown table {name!r}; tables are {', '.join(TABLES)}")
    return name


def schema_version(conn: sqlite3.Connection) -> int:
    """The file's ``PRAGMA user_version`` (0 for a new file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: str, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema of ``conn`` (autocommit mode) to version ``target`` in one transaction.

    Parameters
    ----------
    conn : sqlite3.Connection
        Opened with ``isolation_level=None``.
    path : str
        The file, for messages.
    target : int
        Version to reach; a file already at or above it is left alone.

    Returns
    -------
    int
        The file's version afterwards.

    Raises
    ------
    StoreError
        When the file's version is newer than this program knows.
    sqlite3.Error
        When a step fails; the transaction is rolled back and the file keeps its old version.
    """
    current = schema_version(conn)
    if target <= current <= SCHEMA_VERSION:
        return current  # nothing to do: no write lock taken, readers open beside a writer
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = schema_version(conn)  # again, under the lock: another process may have won
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{path}: schema version {current} is newer than this program knows "
                f"({SCHEMA_VERSION}); upgrade factory-dispatch or use another database file"
            )
        for step in MIGRATIONS[current:target]:
            for statement in step:
                if isinstance(statement, str):
                    conn.execute(statement)
                else:
                    statement(conn)
        if target > current:
            conn.execute(f"PRAGMA user_version = {int(target)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return max(current, target)
