"""Tests of ``dispatch.store`` on real files: round trips of every table, migrations, retention,
CSV export, a process killed with SIGKILL mid-writes, and a reader beside a writer (WAL)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dispatch.optimise import DispatchModel
from dispatch.store import MIGRATIONS, SCHEMA_VERSION, TABLES, Store, StoreError, migrate, schema
from dispatch.types import PLAN_COLUMNS, Forecast, InputError, Plan, PlanCosts, Setpoints, Snapshot
from tests.factories import config, forecast

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)


def snap(t: dt.datetime, i: float = 1.0, **kw) -> Snapshot:
    base = dict(time=t, p_grid_kw=100.0 + i, p_pv_kw=50.0, p_batt_kw=-10.0, p_load_kw=140.0 + i,
                soc_frac=0.5)  # fmt: skip
    base.update(kw)
    return Snapshot(**base)


def toy_plan(start: dt.datetime = T0, slots: int = 4, status: str = "optimal") -> Plan:
    idx = pd.date_range(start, periods=slots, freq="15min")
    frame = pd.DataFrame(
        np.arange(slots * len(PLAN_COLUMNS), dtype=float).reshape(slots, -1),
        index=idx,
        columns=list(PLAN_COLUMNS),
    )
    return Plan(status, frame, PlanCosts(1.0, 0.5, 2.0, 0.25, 0.125), 3.0, 42.0, 1.5, "toy")


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "h.sqlite3") as s:
        yield s


def same_snapshot(a: Snapshot, b: Snapshot) -> None:
    for name in Snapshot.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, float) and math.isnan(x):
            assert math.isnan(y), name
        else:
            assert x == y, name


# ---------------------------------------------------------------------------- round trips
def test_new_file_is_wal_at_the_current_version(store: Store):
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == store.version
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert set(TABLES) <= names
    conn.close()


def test_snapshot_round_trip_keeps_nan_and_lists(store: Store):
    s = snap(T0, p_load_kw=math.nan, faults=("meter: timeout",), stale=("meter",),
             missing=("p_load_kw",), derived=("p_pv_kw",), values={"pcs.soc_frac": 0.5},
             p_charge_max_kw=250.0)  # fmt: skip
    store.write_snapshot(s)
    (back,) = store.snapshots()
    same_snapshot(s, back)
    assert back.time == T0 and back.time.tzinfo is not None
    assert store.rows("measurements")[0]["ok"] == 0


def test_record_cycle_writes_measurement_setpoint_and_events(store: Store):
    plan_id = store.write_plan(toy_plan(), T0)
    sp = Setpoints(-120.5, "plan slot ...; peak guard", revert_timeout_s=300.0)
    ids = store.record_cycle(
        snap(T0), sp, T0, plan_id=plan_id, readback_p_batt_kw=-120.0, write_ok=True,
        events=[("warning", "fallback", "plan stale", None), ("error", "fault", "x", "pcs")],
    )  # fmt: skip
    assert ids == (1, 1)
    (row,) = store.rows("setpoints")
    assert row == {"id": 1, "time_ms": 1782864000000, "p_batt_kw": -120.5, "reason": sp.reason,
                   "revert_timeout_s": 300.0, "default_mode": 0, "plan_id": plan_id,
                   "readback_p_batt_kw": -120.0, "write_ok": 1,
                   "peak_target_kw": None, "measurement_id": 1}  # fmt: skip
    events = store.rows("events")
    assert [(e["level"], e["kind"], e["device"]) for e in events] == [
        ("warning", "fallback", None), ("error", "fault", "pcs")
    ]


def test_a_bad_event_level_writes_nothing_of_the_cycle(store: Store):
    with pytest.raises(InputError, match="level"):
        store.record_cycle(snap(T0), Setpoints(0.0, "x"), T0, events=[("loud", "k", "m", None)])
    assert store.count("measurements") == store.count("setpoints") == 0
    with pytest.raises(InputError, match="not finite"):
        store.write_setpoint(T0, Setpoints(math.nan, "x"))


def test_event_round_trip(store: Store):
    store.write_event(T0, "info", "restart", "daemon started")
    store.write_event(T0 - dt.timedelta(seconds=1), "critical", "fault", "bms alarm", "bms")
    rows = store.rows("events")
    assert [r["kind"] for r in rows] == ["fault", "restart"]  # time order
    assert rows[0]["device"] == "bms" and rows[1]["message"] == "daemon started"


def test_forecast_round_trip_with_quantiles(store: Store):
    f = forecast([10.0, 12.0, 9.0], pv_kw=[0.0, 3.5, 1.0], price=[0.1, 0.2, 0.3], ci=500.0)
    q = pd.DataFrame({0.1: [8.0, 9.0, 7.0], 0.9: [12.0, 15.0, 11.0]}, index=f.index)
    f = Forecast(f.frame, load_quantiles_kw=q, issued_at=pd.Timestamp(T0))
    f_id = store.write_forecast(f, source="test")
    back = store.load_forecast(f_id)
    pd.testing.assert_frame_equal(back.frame, f.frame, check_freq=False, check_index_type=False)
    pd.testing.assert_frame_equal(back.load_quantiles_kw, q, check_freq=False,
                                  check_index_type=False)  # fmt: skip
    assert back.pv_quantiles_kw is None and back.issued_at == pd.Timestamp(T0)
    assert back.load_scenarios_kw is None
    assert store.rows("forecasts")[0]["source"] == "test"
    no_prices = Forecast(f.frame[["p_pv_kw", "p_load_kw"]])
    back = store.load_forecast(store.write_forecast(no_prices, issued_at=T0))
    assert list(back.frame.columns) == ["p_pv_kw", "p_load_kw"]
    with pytest.raises(InputError, match="issued_at"):
        store.write_forecast(no_prices)  # no issue time anywhere


def test_forecast_round_trip_with_load_paths(store: Store):
    f = forecast([10.0, 12.0, 9.0], pv_kw=[0.0, 3.5, 1.0], price=[0.1, 0.2, 0.3], ci=500.0)
    paths = pd.DataFrame({1: [9.0, 13.5, 8.25], 7: [11.0, 12.0, 0.0]}, index=f.index)
    f = Forecast(f.frame, load_scenarios_kw=paths, issued_at=pd.Timestamp(T0))
    back = store.load_forecast(store.write_forecast(f))
    expected = paths.rename(columns=str)  # path names come back as text
    pd.testing.assert_frame_equal(back.load_scenarios_kw, expected, check_freq=False,
                                  check_index_type=False)  # fmt: skip
    assert back.load_quantiles_kw is None


def test_plan_round_trip_from_the_optimiser(store: Store):
    cfg = config(tariff={"demand_charge_per_kw_month": 5.0})
    plan = DispatchModel(cfg, n_slots=2).solve(forecast([10, 2], price=[0.1, 0.3]), 0.4)
    p_id = store.write_plan(plan, T0 + dt.timedelta(minutes=1))
    back = store.load_plan(p_id)
    pd.testing.assert_frame_equal(back.frame, plan.frame, check_freq=False,
                                  check_index_type=False)  # fmt: skip
    assert back.costs == plan.costs and back.status == plan.status
    # duals are not stored per slot; the summary stored with the plan names what binds
    assert back.duals == {} and plan.binding()
    live = plan.summary()
    assert back.summary() == live | {"binding": []}
    (head,) = store.rows("plans")
    assert json.loads(head["summary_json"])["binding"] == live["binding"]
    assert store.latest_plan_id() == p_id
    head = store.rows("plans")[0]
    assert head["slots"] == 2 and head["step_s"] == 3600.0
    assert head["cost_total"] == pytest.approx(plan.costs.total)


def test_fallback_plan_with_nan_objective_round_trips(store: Store):
    plan = toy_plan(status="fallback")
    back = store.load_plan(store.write_plan(plan, T0))
    assert back.status == "fallback" and math.isnan(back.objective)
    with pytest.raises(StoreError, match="no plan with id 99"):
        store.load_plan(99)


def test_demand_peak_keeps_the_month_maximum(store: Store):
    assert store.demand_peak("2026-07") is None
    p = store.update_demand_peak("2026-07", 5200.0, T0, slot_start=T0)
    assert (p.peak_import_kw, p.time, p.slot_start) == (5200.0, T0, T0)
    later = T0 + dt.timedelta(days=2)
    assert store.update_demand_peak("2026-07", 5000.0, later).peak_import_kw == 5200.0
    p = store.update_demand_peak("2026-07", 5300.0, later)
    assert (p.peak_import_kw, p.time, p.slot_start) == (5300.0, later, None)
    assert store.update_demand_peak("2026-08", 10.0, later).peak_import_kw == 10.0
    with pytest.raises(InputError, match="peak_import_kw"):
        store.update_demand_peak("2026-07", math.nan, later)


LEDGER_FLOATS = (
    "load_kwh", "pv_kwh", "curtail_kwh", "import_kwh", "export_kwh", "charge_kwh",
    "discharge_kwh", "ci_g_per_kwh", "charge_grid_kwh", "pv_direct_kwh", "nobatt_import_kwh",
    "nobatt_export_kwh", "location_kg_co2", "nobatt_kg_co2", "nopv_kg_co2", "avoided_pv_kg_co2",
    "avoided_battery_kg_co2", "charge_grid_kg_co2",
)  # fmt: skip


def ledger_record(i: int) -> dict:
    """A ledger row (columns of ``ledger_intervals``) for the 15-minute interval ``i``."""
    start = T0 + dt.timedelta(minutes=15 * i)
    return {
        "start_utc": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_utc": (start + dt.timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **{name: 0.25 * k for k, name in enumerate(LEDGER_FLOATS)},
        "ci_source": "config", "method_version": "1", "provenance": "measured",
        "factor_ref": f"config:grid_ci_g_per_kwh|1.75|{'b' * 64}", "inputs_hash": "a" * 64,
        "prev_hash": "0" * 64, "record_hash": f"{i % 10**6:064x}",
    }  # fmt: skip


def test_ledger_is_append_only_and_instruments_continue_their_head(store: Store):
    assert store.append_ledger([ledger_record(0), ledger_record(1)]) == 2
    rows = store.ledger()
    assert rows == [ledger_record(0), ledger_record(1)]  # append order, exact values
    later = store.rows("ledger_intervals", T0 + dt.timedelta(minutes=10), T0 + dt.timedelta(1))
    assert [r["seq"] for r in later] == [2]
    for sql in ("UPDATE ledger_intervals SET import_kwh = 0", "DELETE FROM ledger_intervals"):
        with pytest.raises(StoreError, match="append-only"), store.transaction() as conn:
            conn.execute(sql)
    with pytest.raises(StoreError, match="ledger_intervals"):
        store.append_ledger([ledger_record(2), {**ledger_record(3), "bogus_kwh": 1.0}])
    with pytest.raises(StoreError, match="ledger_intervals"):  # NaN is not a ledger value
        store.append_ledger([{**ledger_record(4), "import_kwh": math.nan}])
    assert store.count("ledger_intervals") == 2  # the failed batches left nothing
    record = {"kind": "purchase", "recorded_utc": "2026-06-01T00:00:00Z", "body": {"t": 1},
              "prev_hash": "0" * 64, "record_hash": "b" * 64}
    store.append_instrument(record)
    (row,) = store.rows("carbon_instruments", dt.datetime(2026, 6, 1, tzinfo=dt.UTC), T0)
    assert (row["kind"], row["body_json"], row["seq"]) == ("purchase", '{"t": 1}', 1)
    with pytest.raises(StoreError, match="does not continue the head"):
        store.append_instrument(record)  # the same record again: it does not continue it


def test_ledger_chain_from_dispatch_ledger_round_trips_and_verifies(store: Store):
    ledger = pytest.importorskip("dispatch.carbon.chain")
    conn = sqlite3.connect(store.path)
    names = [r[1] for r in conn.execute("PRAGMA table_info(ledger_intervals)")]
    conn.close()
    # the store mirrors the record (v10 added factor_ref as the last column)
    assert sorted(names) == sorted(("seq", *ledger.RECORD_FIELDS)) and names[-1] == "factor_ref"
    raw = []
    for i in range(5):
        row = ledger_record(i)
        raw.append(ledger.IntervalRecord(*(row[n] for n in ledger.VALUE_FIELDS)))
    records = ledger.chain(raw)
    store.append_ledger(r._asdict() for r in records)
    back = [ledger.IntervalRecord(**row) for row in store.ledger()]
    assert back == records and ledger.verify(back).ok


# ----------------------------------------------------------------------------- migrations
def test_migrates_v1_file_to_current_keeping_rows(tmp_path: Path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, str(path), target=1) == 1
    conn.execute("INSERT INTO setpoints (time_ms, p_batt_kw, reason, default_mode) "
                 "VALUES (1, 5.0, 'old', 0)")  # fmt: skip
    conn.execute("INSERT INTO demand_peak VALUES ('2026-01', 900.0, 1, NULL, 1)")
    conn.close()
    with Store(path) as s:
        assert s.version == SCHEMA_VERSION
        (row,) = s.rows("setpoints")
        assert (row["reason"], row["readback_p_batt_kw"], row["write_ok"]) == ("old", None, None)
        assert s.demand_peak("2026-01").peak_import_kw == 900.0
        s.append_ledger([ledger_record(0)])
        s.write_setpoint(T0, Setpoints(1.0, "new"), readback_p_batt_kw=0.9, write_ok=False)
        assert s.rows("setpoints")[1]["write_ok"] == 0


def test_each_intermediate_version_migrates(tmp_path: Path):
    for v in range(SCHEMA_VERSION + 1):
        path = tmp_path / f"v{v}.sqlite3"
        conn = sqlite3.connect(path, isolation_level=None)
        migrate(conn, str(path), target=v)
        conn.close()
        with Store(path) as s:
            assert s.version == SCHEMA_VERSION
            s.write_setpoint(T0, Setpoints(1.0, "x"), readback_p_batt_kw=1.0)
            s.append_ledger([ledger_record(0)])
        check = sqlite3.connect(path)
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        check.close()


def test_failed_migration_step_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "h.sqlite3"
    Store(path).close()
    bad = (*MIGRATIONS, ("CREATE TABLE half_done (a INTEGER)", "THIS IS NOT SQL"))
    monkeypatch.setattr(schema, "MIGRATIONS", bad)
    monkeypatch.setattr(schema, "SCHEMA_VERSION", len(bad))
    conn = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.Error):
        migrate(conn, str(path), target=len(bad))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    sql = "SELECT name FROM sqlite_master WHERE name = 'half_done'"
    assert conn.execute(sql).fetchone() is None
    conn.close()


def test_newer_schema_is_refused(tmp_path: Path):
    path = tmp_path / "new.sqlite3"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match=rf"newer than this program knows \({SCHEMA_VERSION}\)"):
        Store(path)


def test_unusable_paths_are_store_errors(tmp_path: Path):
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is no database" * 100)
    with pytest.raises(StoreError, match=r"junk\.sqlite3"):
        Store(path)
    with pytest.raises(StoreError, match="cannot create its folder"):
        Store(path / "below-a-file" / "h.sqlite3")
    with pytest.raises(StoreError, match="open"):
        Store(tmp_path)  # a directory


# ------------------------------------------------------------------ retention and export
def fill(store: Store, now: dt.datetime, ages_days: list[float]) -> None:
    for age in ages_days:
        t = now - dt.timedelta(days=age)
        p_id = store.write_plan(toy_plan(t), t)
        store.record_cycle(snap(t), Setpoints(1.0, "r"), t, plan_id=p_id,
                           events=[("info", "k", "m", None)])  # fmt: skip
        store.write_forecast(forecast([1.0, 2.0], start=t.isoformat()), issued_at=t)
    store.update_demand_peak("2020-01", 1.0, now - dt.timedelta(days=3000))
    store.append_ledger([ledger_record(-100_000)])


def test_prune_deletes_old_rows_per_table_in_one_call(tmp_path: Path):
    now = T0 + dt.timedelta(days=1000)
    with Store(tmp_path / "h.sqlite3", retention_days=30,
               retention_days_by_table={"events": 5}) as s:  # fmt: skip
        fill(s, now, [1, 10, 40, 400])
        deleted = s.prune(now)
        assert deleted == {"measurements": 2, "forecasts": 2, "plans": 2, "setpoints": 2,
                           "events": 3}  # fmt: skip
        assert s.count("plan_slots") == 2 * 4 and s.count("forecast_slots") == 2 * 2
        assert s.count("events") == 1 and s.count("setpoints") == 2
        assert s.count("demand_peak") == 1 and s.count("ledger_intervals") == 1
        assert s.prune(now, days={"plans": 5}) == {"measurements": 0, "forecasts": 0,
                                                    "plans": 1, "setpoints": 0, "events": 0}
        kept = s.rows("setpoints")  # the older one lost its plan, the row stays
        assert kept[0]["plan_id"] is None and kept[1]["plan_id"] is not None
        assert s.count("plan_slots") == 4
        assert s.prune(now, days=1)["measurements"] == 1
        with pytest.raises(StoreError, match="ledger_intervals"):
            s.prune(now, days={"ledger_intervals": 1})
        with pytest.raises(StoreError, match="unknown table 'nope'"):
            s.prune(now, days={"nope": 1})


def test_retention_from_config(tmp_path: Path):
    cfg = config(store={"path": "db/site.sqlite3", "retention_days": 7,
                        "retention_days_by_table": {"measurements": 2}})  # fmt: skip
    with Store.from_config(cfg, base_dir=tmp_path) as s:
        assert s.path == tmp_path / "db" / "site.sqlite3" and s.path.exists()
        assert s.retention["measurements"] == 2 and s.retention["events"] == 7
    with pytest.raises(StoreError, match="demand_peak"):
        Store(tmp_path / "x.sqlite3", retention_days_by_table={"demand_peak": 3})


def test_export_csv_range_and_errors(store: Store, tmp_path: Path):
    fill(store, T0, [0.0, 1.0, 2.0])
    out = tmp_path / "m.csv"
    n = store.export_csv("measurements", T0 - dt.timedelta(days=1.5), T0, out)
    assert n == 1
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert rows[0]["time_utc"] == "2026-06-30T00:00:00Z"
    assert float(rows[0]["p_grid_kw"]) == 101.0 and rows[0]["faults_json"] == "[]"
    for table in TABLES:  # every table exports, with a header
        store.export_csv(table, T0 - dt.timedelta(days=9000), T0 + dt.timedelta(days=1), out)
        header = next(csv.reader(out.open(encoding="utf-8")))
        assert header[0] == "time_utc" and TABLES[table][0] in header
    with pytest.raises(StoreError, match="unknown table 'bogus'"):
        store.export_csv("bogus", T0, T0 + dt.timedelta(days=1), out)
    with pytest.raises(InputError, match=r"export plans: start .* must be before end"):
        store.export_csv("plans", T0, T0, out)
    with pytest.raises(InputError, match="tz-aware"):
        store.export_csv("plans", T0.replace(tzinfo=None), T0, out)


def test_naive_times_and_closed_store_are_errors(tmp_path: Path):
    s = Store(tmp_path / "h.sqlite3")
    with pytest.raises(InputError, match="snapshot time"):
        s.write_snapshot(snap(T0.replace(tzinfo=None)))
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.count("events")


# ------------------------------------------------------------------- crash and concurrency
CHILD = """
import datetime as dt, sys, time
import numpy as np, pandas as pd
from dispatch.store import Store
from dispatch.types import PLAN_COLUMNS, Plan, PlanCosts, Setpoints, Snapshot
store = Store(sys.argv[1])
hang_at = int(sys.argv[2])
t0 = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
idx = pd.date_range(t0, periods=672, freq="15min")
frame = pd.DataFrame(np.ones((672, len(PLAN_COLUMNS))), index=idx, columns=list(PLAN_COLUMNS))
plan = Plan("optimal", frame, PlanCosts(0, 0, 0, 0, 0), 0.0, 0.0, 0.0, "child")
i = store.count("measurements")
while True:
    t = t0 + dt.timedelta(seconds=5 * i)
    if i % 4 == 0:
        store.write_plan(plan, t)
    if i == hang_at:  # a cycle that is killed inside its transaction
        with store.transaction() as conn:
            conn.execute("INSERT INTO events (time_ms, level, kind, message) "
                         "VALUES (0, 'info', 'half', 'never committed')")
            print("mid", flush=True)
            time.sleep(60)
    snap = Snapshot(t, float(i), 0.0, 0.0, float(i), 0.5)
    events = [("info", "cycle", str(i), None)] * 3
    store.record_cycle(snap, Setpoints(float(i), f"cycle {i}"), t, events=events)
    print(i, flush=True)
    i += 1
"""


def run_and_kill(path: Path, kill_after: int | None, hang_at: int) -> int:
    """Run the writer child, SIGKILL it after it printed cycle ``kill_after`` (while writing
    at full speed) or, when None, inside its hanging transaction; returns the last printed
    (so committed) cycle."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(hang_at)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    last = -1
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            if line.strip() == "mid":
                break
            last = int(line)
            if kill_after is not None and last >= kill_after:
                break
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, err
    return max([last, *(int(x) for x in rest.split() if x != "mid")])


def check_after_crash(path: Path, last: int) -> int:
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()
    with Store(path) as s:
        n = s.count("measurements")
        assert n in (last + 1, last + 2)  # every printed cycle committed; at most one more
        assert s.count("setpoints") == n and s.count("events") == 3 * n  # whole cycles only
        assert [r["p_grid_kw"] for r in s.rows("measurements")] == [float(i) for i in range(n)]
        plans = s.count("plans")
        assert plans >= last // 4 + 1
        assert s.count("plan_slots") == 672 * plans  # no half-written plan
    return n


def test_kill_9_mid_writes_loses_at_most_the_cycle_in_flight(tmp_path: Path):
    path = tmp_path / "killed.sqlite3"
    done = 0
    for kill_after, hang_offset in ((40, 10**6), (None, 15), (30, 10**6)):
        last = run_and_kill(path, None if kill_after is None else done + kill_after,
                            done + hang_offset)  # fmt: skip
        assert Path(f"{path}-wal").exists()  # recovery of an unclean WAL is exercised
        done = check_after_crash(path, last)
    assert done > 80


def test_reader_sees_committed_rows_while_a_writer_holds_a_transaction(store: Store):
    store.write_snapshot(snap(T0))
    inside, release, done = threading.Event(), threading.Event(), threading.Event()

    def writer() -> None:
        with store.transaction() as conn:
            conn.execute("DELETE FROM measurements")
            inside.set()
            release.wait(10)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert inside.wait(10)
    other = Store(store.path)  # another handle, as a second process would have
    assert store.count("measurements") == 1 and other.count("measurements") == 1  # no blocking
    release.set()
    thread.join(10)
    assert done.is_set() and store.count("measurements") == 0 == other.count("measurements")
    other.close()


def test_concurrent_writer_threads_and_reader(store: Store):
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(60):
                t = T0 + dt.timedelta(seconds=i, milliseconds=k)
                store.record_cycle(snap(t, i), Setpoints(float(k), "w"), t)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    for th in threads:
        th.start()
    seen = []
    while any(th.is_alive() for th in threads):
        seen.append(store.count("measurements"))
    for th in threads:
        th.join()
    assert not errors
    assert seen == sorted(seen)  # the reader only ever sees whole, growing history
    assert store.count("measurements") == store.count("setpoints") == 180
