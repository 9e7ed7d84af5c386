"""``Store``: the site's history database (connections, transactions, writes and reads).

Role: the only class that opens SQLite files. One connection per thread, every public write
one transaction; see the package docstring for the design. The ledger and offsets methods
come from ``ledger_tables.LedgerTables``. Imports ``dispatch.types``, ``dispatch.config`` and
the store's own modules.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import itertools
import json
import math
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from dispatch.config import SiteConfig
from dispatch.store import codec, housekeeping
from dispatch.store.codec import DemandPeak
from dispatch.store.instrument_tables import InstrumentTables
from dispatch.store.ledger_tables import LedgerTables
from dispatch.store.schema import RETAINED, TABLES, StoreError, StoreOpenError, check_table, migrate
from dispatch.types import PLAN_COLUMNS, Forecast, InputError, Plan, Setpoints, Snapshot

#: An event as ``(level, kind, message, device or None)``.
Event = tuple[str, str, str, str | None]


def insert_rows(
    conn: sqlite3.Connection, head: str, rows: list[tuple[Any, ...]], width: int
) -> None:
    """Insert ``rows`` (``width`` values each) with ``head`` (``INSERT INTO t (...) VALUES``)
    in as few statements as SQLite's bound-variable limit allows: one multi-row ``VALUES``
    list per chunk, in order (the rows and row ids ``executemany`` would write)."""
    per = max(1, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    for i in range(0, len(rows), per):
        chunk = rows[i : i + per]
        if any(len(r) != width for r in chunk):
            raise InputError(f"{head}: rows of {width} values expected")
        values = list(itertools.chain.from_iterable(chunk))
        conn.execute(_values_sql(head, width, len(chunk)), values)


@functools.lru_cache(maxsize=32)
def _values_sql(head: str, width: int, n_rows: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return f"{head} " + ", ".join([row] * n_rows)


class Store(LedgerTables, InstrumentTables):
    """The history database of one site.

    Parameters
    ----------
    path : str or Path
        The SQLite file (created with its folder if absent; migrated if older).
    retention_days : int
        Default age (days) beyond which ``prune`` deletes rows of the retained tables.
    retention_days_by_table : mapping of str to int, optional
        Per-table overrides of ``retention_days``.
    timeout_s : float
        How long a write waits for another writer (s).
    durable : bool
        Sync every commit to disk (``synchronous = FULL``, the daemon's default); a replay on
        a simulated clock, whose store need not survive a power cut, may turn it off.

    Raises
    ------
    StoreError
        When the file is not a database, its schema is newer than known, or a retention
        override names a table that is not retained.
    """

    def __init__(
        self,
        path: str | Path,
        retention_days: int = 400,
        retention_days_by_table: Mapping[str, int] | None = None,
        timeout_s: float = 10.0,
        durable: bool = True,
    ) -> None:
        self.path = Path(path)
        self.timeout_s = float(timeout_s)
        self.synchronous = "FULL" if durable else "OFF"
        base = dict.fromkeys(RETAINED, int(retention_days))
        self.retention = housekeeping.retention_days(base, retention_days_by_table or {})
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreOpenError(f"{self.path}: cannot create its folder: {exc.strerror}") from exc
        with self._errors("open", StoreOpenError):
            self.version = migrate(self._conn(), str(self.path))

    @classmethod
    def from_config(
        cls, config: SiteConfig, base_dir: str | Path | None = None, must_exist: bool = False
    ) -> Store:
        """Open the store of ``config.store``; a relative path is taken under ``base_dir``
        (e.g. systemd's ``$STATE_DIRECTORY``) when given. With ``must_exist`` (a command that
        only reads or checks history) a missing file is ``StoreOpenError``, not a new empty
        store."""
        s = config.store
        path = Path(s.path) if base_dir is None else Path(base_dir) / s.path
        if must_exist and not path.is_file():
            raise StoreOpenError(
                f"{path}: no store there (store.path = {s.path!r}): the daemon has not run "
                f"with this config, or the path is wrong; nothing to read"
            )
        return cls(path, s.retention_days, s.retention_days_by_table)

    # ------------------------------------------------------------ connections
    @contextlib.contextmanager
    def _errors(self, what: str, error: type[StoreError] = StoreError) -> Iterator[None]:
        """Turn sqlite errors into ``error`` naming the file and the action."""
        try:
            yield
        except sqlite3.Error as exc:
            raise error(f"{self.path}: {what}: {exc}") from exc

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (WAL, FULL sync unless not durable,
        foreign keys)."""
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed")
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        conn = sqlite3.connect(
            self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            conn.row_factory = sqlite3.Row
            pragmas = ("journal_mode = WAL", f"synchronous = {self.synchronous}",
                       "foreign_keys = ON")  # fmt: skip
            for pragma in pragmas:
                conn.execute(f"PRAGMA {pragma}")
        except sqlite3.Error:
            conn.close()
            raise
        self._local.conn = conn
        with self._lock:
            self._conns.append(conn)
        return conn

    @contextlib.contextmanager
    def transaction(self, what: str = "write") -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): all of it commits, or none of it.

        Yields this thread's connection for raw statements; the ``write_*`` methods open
        their own transaction and cannot be nested inside this one.
        """
        with self._errors(what):
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _read(self, what: str, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._errors(what):
            return self._conn().execute(sql, args).fetchall()

    def close(self) -> None:
        """Close every thread's connection; later calls raise ``StoreError``."""
        with self._lock:
            self._closed = True
            for conn in self._conns:
                conn.close()
            self._conns.clear()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _insert(self, conn: sqlite3.Connection, table: str, row: Mapping[str, Any]) -> int:
        sql = f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"
        with self._errors(f"insert into {table}"):
            return int(conn.execute(sql, tuple(row.values())).lastrowid or 0)

    # ----------------------------------------------------------------- writes
    def record_cycle(
        self,
        snapshot: Snapshot,
        setpoints: Setpoints,
        time: dt.datetime,
        plan_id: int | None = None,
        readback_p_batt_kw: float | None = None,
        write_ok: bool | None = None,
        events: Iterable[Event] = (),
        peak_target_kw: float | None = None,
    ) -> tuple[int, int]:
        """Store one control cycle in one transaction: the reading, the setpoint written at
        ``time`` with its read-back (kW) and outcome, events ``(level, kind, message,
        device)`` and the peak target the guard held (kW). Returns the row ids of the
        measurement and the setpoint."""
        m_row = codec.snapshot_row(snapshot)
        s_row = codec.setpoint_row(setpoints, time, plan_id, readback_p_batt_kw, write_ok,
                                   peak_target_kw)  # fmt: skip
        e_rows = [codec.event_row(time, *e) for e in events]
        with self.transaction("record cycle") as conn:
            m_id = self._insert(conn, "measurements", m_row)
            s_id = self._insert(conn, "setpoints", s_row | {"measurement_id": m_id})
            for row in e_rows:
                self._insert(conn, "events", row)
        return m_id, s_id

    def write_snapshot(self, snapshot: Snapshot) -> int:
        """Store one reading; returns its row id."""
        row = codec.snapshot_row(snapshot)
        with self.transaction() as conn:
            return self._insert(conn, "measurements", row)

    def import_history(self, frame: pd.DataFrame) -> int:
        """Store metered history (``p_load_kw`` and optionally ``p_pv_kw``, ``p_grid_kw``, kW,
        by UTC period start) as measurements marked ``import_history`` in their values, with
        the battery power and SoC unknown (NaN: the carbon ledger does not book them); returns
        the rows written.

        Raises
        ------
        StoreError
            When the store already holds measurements inside the imported period (nothing is
            written: imported history never mixes with the daemon's own).
        """
        if frame.empty:
            return 0
        index = pd.DatetimeIndex(frame.index)
        first, last = codec.index_ms(index[[0, -1]])
        clash = self._read("read measurements", "SELECT min(time_ms) FROM measurements WHERE "
                           "time_ms >= ? AND time_ms <= ?", (first, last))[0][0]  # fmt: skip
        if clash is not None:
            raise StoreError(
                f"{self.path}: measurements: the store already holds readings from "
                f"{codec.from_ms(clash).isoformat()}, inside the imported period "
                f"{index[0].isoformat()} .. {index[-1].isoformat()}; import only history "
                "before the daemon's own"
            )
        rows = [codec.snapshot_row(s) for s in codec.imported_snapshots(frame)]
        cols = list(rows[0])
        sql = f"INSERT INTO measurements ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        with self.transaction("import history") as conn:
            conn.executemany(sql, [tuple(r[c] for c in cols) for r in rows])
        return len(rows)

    def write_setpoint(
        self,
        time: dt.datetime,
        setpoints: Setpoints,
        plan_id: int | None = None,
        readback_p_batt_kw: float | None = None,
        write_ok: bool | None = None,
    ) -> int:
        """Store a setpoint with its reason and read-back (kW); returns its row id."""
        row = codec.setpoint_row(setpoints, time, plan_id, readback_p_batt_kw, write_ok)
        with self.transaction() as conn:
            return self._insert(conn, "setpoints", row)

    def write_event(
        self, time: dt.datetime, level: str, kind: str, message: str, device: str | None = None
    ) -> int:
        """Store an event (fault, fallback, restart...) with a level from ``EVENT_LEVELS``."""
        row = codec.event_row(time, level, kind, message, device)
        with self.transaction() as conn:
            return self._insert(conn, "events", row)

    def write_forecast(
        self, forecast: Forecast, issued_at: dt.datetime | None = None, source: str = ""
    ) -> int:
        """Store a forecast and its slots; ``issued_at`` defaults to ``forecast.issued_at``."""
        head = codec.forecast_head(forecast, issued_at, source)
        with self.transaction("write forecast") as conn:
            f_id = self._insert(conn, "forecasts", head)
            rows = codec.forecast_slot_rows(f_id, forecast)
            with self._errors("insert into forecast_slots"):
                insert_rows(conn, "INSERT INTO forecast_slots VALUES", rows, 10)
        return f_id

    def write_plan(
        self, plan: Plan, made_at: dt.datetime, inputs: Mapping[str, Any] | None = None
    ) -> int:
        """Store a plan (status, costs, summary, the inputs it was solved from as JSON) and
        all its slots; returns the plan id."""
        head = codec.plan_head(plan, made_at, inputs)
        cols = ("plan_id", "slot_start_ms", *PLAN_COLUMNS)
        sql = f"INSERT INTO plan_slots ({', '.join(cols)}) VALUES"
        with self.transaction("write plan") as conn:
            p_id = self._insert(conn, "plans", head)
            rows = codec.plan_slot_rows(p_id, plan)
            with self._errors("insert into plan_slots"):
                insert_rows(conn, sql, rows, len(cols))
        return p_id

    def update_demand_peak(
        self,
        billing_month: str,
        peak_import_kw: float,
        time: dt.datetime,
        slot_start: dt.datetime | None = None,
    ) -> DemandPeak:
        """Raise the month's peak to ``peak_import_kw`` (kW) if higher; returns the peak kept."""
        if not math.isfinite(peak_import_kw) or peak_import_kw < 0:
            raise InputError(f"demand_peak: peak_import_kw = {peak_import_kw} must be >= 0")
        t_ms = codec.to_ms(time, "demand_peak time")
        slot_ms = None if slot_start is None else codec.to_ms(slot_start, "demand_peak slot")
        with self.transaction("write demand_peak") as conn:
            conn.execute(
                "INSERT INTO demand_peak VALUES (?, ?, ?, ?, ?) ON CONFLICT (billing_month) DO "
                "UPDATE SET peak_import_kw = excluded.peak_import_kw, time_ms = excluded.time_ms,"
                " slot_start_ms = excluded.slot_start_ms, updated_ms = excluded.updated_ms "
                "WHERE excluded.peak_import_kw > demand_peak.peak_import_kw",
                (billing_month, float(peak_import_kw), t_ms, slot_ms, t_ms),
            )
        peak = self.demand_peak(billing_month)
        if peak is None:  # pragma: no cover - the row was just written
            raise StoreError(f"{self.path}: demand_peak: {billing_month!r} vanished")
        return peak

    # ------------------------------------------------------------------ reads
    def rows(
        self, table: str, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """Rows of ``table`` with time in ``[start, end)`` (all when omitted), in time order."""
        sql, args = housekeeping.range_query(table, start, end)
        return [dict(r) for r in self._read(f"read {table}", sql, args)]

    def count(self, table: str) -> int:
        """Number of rows in ``table``."""
        return int(self._read(f"count {table}", f"SELECT count(*) FROM {check_table(table)}")[0][0])

    def snapshots(
        self, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> list[Snapshot]:
        """Stored readings in ``[start, end)`` as ``Snapshot`` objects (NULL -> NaN)."""
        return [codec.snapshot_of(r) for r in self.rows("measurements", start, end)]

    def latest_plan_id(self) -> int | None:
        """Id of the most recently made plan, or None."""
        rows = self._read("read plans", "SELECT id FROM plans ORDER BY made_ms DESC, id DESC")
        return int(rows[0][0]) if rows else None

    def load_plan(self, plan_id: int) -> Plan:
        """The stored plan ``plan_id`` (frame, costs and fields as written; NULL -> NaN)."""
        head = self._read("read plans", "SELECT * FROM plans WHERE id = ?", (plan_id,))
        if not head:
            raise StoreError(f"{self.path}: plans: no plan with id {plan_id}")
        sql = "SELECT * FROM plan_slots WHERE plan_id = ? ORDER BY slot_start_ms"
        return codec.plan_of(head[0], self._read("read plan_slots", sql, (plan_id,)))

    def first_time(self, table: str) -> dt.datetime | None:
        """The earliest time of ``table`` (a table with a millisecond time column), or None."""
        col, kind, _ = TABLES[check_table(table)]
        if kind != "ms":
            raise StoreError(f"{self.path}: {table}: its time column {col} is not in ms")
        rows = self._read(f"read {table}", f"SELECT min({col}) FROM {table}")
        return None if rows[0][0] is None else codec.from_ms(int(rows[0][0]))

    def issued_net_load(
        self, start: dt.datetime, end: dt.datetime, skip_source: str = "warm-up"
    ) -> list[tuple[dt.datetime, list[float]]]:
        """The net load (load - PV, kW) of each forecast issued in ``[start, end)``, from its
        first slot on, in issue order; forecasts whose source names ``skip_source`` are
        left out (the daemon's error book does not count warm-up forecasts)."""
        sql = ("SELECT f.id, f.start_ms, s.p_load_kw - s.p_pv_kw FROM forecasts f JOIN "
               "forecast_slots s ON s.forecast_id = f.id WHERE f.issued_ms >= ? AND "
               "f.issued_ms < ? AND instr(f.source, ?) = 0 ORDER BY f.issued_ms, f.id, "
               "s.slot_start_ms")  # fmt: skip
        args = (codec.to_ms(start), codec.to_ms(end), skip_source)
        out: dict[int, tuple[dt.datetime, list[float]]] = {}
        for f_id, start_ms, net in self._read("read forecasts", sql, args):
            entry = out.setdefault(f_id, (codec.from_ms(start_ms), []))
            entry[1].append(math.nan if net is None else float(net))
        return list(out.values())

    def plan_inputs(self, plan_id: int) -> dict[str, Any] | None:
        """The inputs stored with plan ``plan_id`` (None when it was stored without them)."""
        rows = self._read("read plans", "SELECT inputs_json FROM plans WHERE id = ?", (plan_id,))
        if not rows:
            raise StoreError(f"{self.path}: plans: no plan with id {plan_id}")
        return None if rows[0][0] is None else dict(json.loads(rows[0][0]))

    def load_forecast(self, forecast_id: int) -> Forecast:
        """The stored forecast ``forecast_id`` (with its quantiles and issue time)."""
        head = self._read("read forecasts", "SELECT * FROM forecasts WHERE id = ?", (forecast_id,))
        if not head:
            raise StoreError(f"{self.path}: forecasts: no forecast with id {forecast_id}")
        sql = "SELECT * FROM forecast_slots WHERE forecast_id = ? ORDER BY slot_start_ms"
        return codec.forecast_of(head[0], self._read("read forecast_slots", sql, (forecast_id,)))

    def demand_peak(self, billing_month: str) -> DemandPeak | None:
        """The stored peak of ``billing_month``, or None."""
        sql = "SELECT * FROM demand_peak WHERE billing_month = ?"
        rows = self._read("read demand_peak", sql, (billing_month,))
        if not rows:
            return None
        r = rows[0]
        slot = None if r["slot_start_ms"] is None else codec.from_ms(r["slot_start_ms"])
        return DemandPeak(
            r["billing_month"], r["peak_import_kw"], codec.from_ms(r["time_ms"]), slot
        )

    # ----------------------------------------------------------- housekeeping
    def prune(
        self, now: dt.datetime, days: int | Mapping[str, int] | None = None
    ) -> dict[str, int]:
        """Delete rows older than their table's retention, all tables in one transaction;
        plan and forecast slots go with their plan or forecast.

        Parameters
        ----------
        now : datetime.datetime
            The reference time (tz-aware).
        days : int or mapping, optional
            One age (days) for every retained table, or per-table overrides of the
            configured retention.

        Returns
        -------
        dict of str to int
            Rows deleted per retained table.
        """
        keep = housekeeping.retention_days(self.retention, days)
        with self.transaction("prune") as conn:
            return housekeeping.prune(conn, now, keep)

    def export_csv(
        self, table: str, start: dt.datetime, end: dt.datetime, path: str | Path
    ) -> int:
        """Write the rows of ``table`` in ``[start, end)`` to CSV (``dispatch export``); see
        ``housekeeping.export_csv``. Returns the number of rows written."""
        with self._errors(f"export {table}"):
            return housekeeping.export_csv(self._conn(), table, start, end, path)
