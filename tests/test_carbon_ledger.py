"""The daemon's carbon ledger: cycle samples -> interval records in a real SQLite store, its
head, restarts, gaps, bad data, and the carbon figures on /metrics (hand-computed values)."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from dispatch.carbon import audit
from dispatch.carbon import chain as ledger
from dispatch.carbon import compose as carbon_ledger
from dispatch.config import load_config, parse_config
from dispatch.daemon import Clock, Daemon, Notifier
from dispatch.daemon import ledger_job as ledger_job_module
from dispatch.daemon.ledger_job import LedgerBook, append_completed
from dispatch.store import GENESIS_HASH, Store, StoreError
from dispatch.types import Setpoints, Snapshot
from tests import factories
from tests import test_carbon_instruments as instruments_cases

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.UTC)
STEP = pd.Timedelta(minutes=15)
CONFIG = factories.config(carbon={"grid_ci_g_per_kwh": 400.0},
                          plan={"step_min": 15, "horizon_h": 1})  # fmt: skip


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def sample(store: Store, minutes: float, grid: float, pv: float, batt: float, load: float,
           **kw) -> None:  # fmt: skip
    snap = Snapshot(time=at(minutes), p_grid_kw=grid, p_pv_kw=pv, p_batt_kw=batt,
                    p_load_kw=load, soc_frac=0.5, **kw)  # fmt: skip
    store.record_cycle(snap, Setpoints(0.0, "test"), at(minutes))


def fill(store: Store) -> None:
    """Interval A (00:00): grid 120 then 180 kW (mean 150) and a faulty reading; B (00:15):
    PV 100 kW, load 60, export 40; nothing in C (00:30); D (00:45): battery discharges 20 kW;
    E (01:00): one sample, still running at 01:10."""
    sample(store, 0, 120.0, 0.0, 0.0, 120.0)
    sample(store, 5, math.nan, 0.0, 0.0, 9999.0, missing=("p_grid_kw",))  # dropped
    sample(store, 10, 180.0, 0.0, 0.0, 180.0)
    sample(store, 16, -40.0, 100.0, 0.0, 60.0)
    sample(store, 29, -40.0, 100.0, 0.0, 60.0, faults=("meter: timeout",))  # dropped
    sample(store, 50, 80.0, -0.4, 20.0, 100.0)  # PV meter offset at night: taken as 0
    sample(store, 62, 10.0, 0.0, 0.0, 10.0)


def rows(store: Store) -> dict[str, dict]:
    return {r["start_utc"]: r for r in store.ledger()}


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "h.sqlite3") as s:
        yield s


def test_completed_intervals_are_recorded_with_hand_computed_values(store: Store):
    fill(store)
    book = LedgerBook(STEP)
    done = append_completed(store, CONFIG, at(70), book)
    assert (done.records, done.behind) == (3, False)
    assert done.gaps == [("2026-03-02T00:30:00Z", "2026-03-02T00:45:00Z")]
    got = rows(store)
    assert list(got) == ["2026-03-02T00:00:00Z", "2026-03-02T00:15:00Z", "2026-03-02T00:45:00Z"]
    a, b, d = got.values()
    assert (a["import_kwh"], a["load_kwh"], a["location_kg_co2"]) == (37.5, 37.5, 15.0)
    assert (a["end_utc"], a["ci_g_per_kwh"], a["ci_source"]) == (
        "2026-03-02T00:15:00Z", 400.0, "config_factor")
    assert (b["import_kwh"], b["export_kwh"], b["pv_kwh"], b["location_kg_co2"]) == (
        0.0, 10.0, 25.0, 0.0)
    assert (d["import_kwh"], d["discharge_kwh"], d["pv_kwh"], d["location_kg_co2"]) == (
        20.0, 5.0, 0.0, 8.0)
    assert d["avoided_battery_kg_co2"] == 2.0  # 5 kWh more import without the battery x 0.4
    head = store.ledger_head()
    assert (head.records, head.end_utc, head.record_hash) == (
        3, "2026-03-02T01:00:00Z", d["record_hash"])
    check = audit.verify_rows(store.ledger(with_seq=True), head.record_hash)
    assert check.ok and check.records == 3


def test_restarts_are_idempotent_and_the_next_interval_continues_the_chain(store: Store):
    fill(store)
    append_completed(store, CONFIG, at(70), LedgerBook(STEP))
    again = append_completed(store, CONFIG, at(74), LedgerBook(STEP))  # a restarted daemon
    assert (again.records, again.gaps, store.count("ledger_intervals")) == (0, [], 3)
    later = append_completed(store, CONFIG, at(75), LedgerBook(STEP))
    assert (later.records, later.gaps) == (1, [])
    e = rows(store)["2026-03-02T01:00:00Z"]
    assert (e["import_kwh"], e["location_kg_co2"]) == (2.5, 1.0)
    assert audit.verify_rows(store.ledger(with_seq=True),
                                     store.ledger_head().record_hash).ok  # fmt: skip


def test_a_series_intensity_is_used_and_named(store: Store):
    fill(store)
    book = LedgerBook(STEP)
    book.remember_ci(pd.DataFrame({"ci_g_per_kwh": [100.0, math.nan]},
                                  index=pd.DatetimeIndex([at(0), at(15)])), at(-60))  # fmt: skip
    append_completed(store, CONFIG, at(30), book)
    a, b = rows(store).values()
    assert (a["ci_g_per_kwh"], a["ci_source"], a["location_kg_co2"]) == (100.0, "series", 3.75)
    assert (b["ci_g_per_kwh"], b["ci_source"]) == (400.0, "config_factor")


def test_a_long_backlog_is_read_in_chunks_without_skipping(store: Store,
                                                          monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(ledger_job_module, "CATCH_UP_SAMPLES", 6)
    for h in range(20):  # one sample an hour for 20 h
        sample(store, 60 * h, 40.0, 0.0, 0.0, 40.0)
    book = LedgerBook(STEP)
    first = append_completed(store, CONFIG, at(20 * 60), book)
    assert first.behind and first.records == 6  # up to the 7th sample (06:00), exclusive
    n, gaps = first.records, len(first.gaps)
    assert gaps == 5  # the 45 min without samples after each hour
    while True:
        done = append_completed(store, CONFIG, at(20 * 60), book)
        n, gaps = n + done.records, gaps + len(done.gaps)
        if not done.behind:
            break
    assert n == store.count("ledger_intervals") == 20 and gaps == 19


def test_appends_must_continue_the_stored_head(store: Store):
    fill(store)
    append_completed(store, CONFIG, at(70), LedgerBook(STEP))
    flows = carbon_ledger.interval_flows(
        pd.DataFrame({"p_grid_kw": [1.0], "p_pv_kw": [0.0], "p_batt_kw": [0.0],
                      "p_load_kw": [1.0]}, index=pd.DatetimeIndex([at(120)])), STEP)  # fmt: skip
    forged = carbon_ledger.interval_records(flows, CONFIG, STEP)  # chained from GENESIS
    with pytest.raises(StoreError, match="does not continue the chain"):
        store.append_ledger(r._asdict() for r in forged)
    assert store.count("ledger_intervals") == 3 and store.ledger_head().records == 3


def test_head_survives_and_detects_deleted_trailing_rows(store: Store, tmp_path: Path):
    fill(store)
    append_completed(store, CONFIG, at(70), LedgerBook(STEP))
    head = store.ledger_head().record_hash
    conn = sqlite3.connect(store.path)
    conn.execute("DROP TRIGGER ledger_no_delete")
    conn.execute("DELETE FROM ledger_intervals WHERE seq = 3")
    conn.commit()
    conn.close()
    rows_now = store.ledger(with_seq=True)
    assert audit.verify_rows(rows_now).ok  # the chain alone is a valid shorter chain
    check = audit.verify_rows(rows_now, store.ledger_head().record_hash)
    assert (check.ok, check.kind, check.index, store.ledger_head().record_hash) == (
        False, "truncated", 2, head)


@pytest.mark.parametrize(
    ("version", "blank"),
    [(3, ("provenance", "factor_ref")), (9, ("factor_ref",))],
    ids=["format 1 (schema v3)", "format 2 (schema v9)"],
)
def test_an_older_file_keeps_its_head_and_its_older_records_verify(
    tmp_path: Path, version: int, blank: tuple[str, ...]
):
    path = tmp_path / f"v{version}.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    from dispatch.store import migrate

    migrate(conn, str(path), target=version)
    conn.close()
    records = carbon_ledger.interval_records(
        carbon_ledger.interval_flows(pd.DataFrame(
            {"p_grid_kw": [4.0, 8.0], "p_pv_kw": 0.0, "p_batt_kw": 0.0, "p_load_kw": [4.0, 8.0]},
            index=pd.DatetimeIndex([at(0), at(15)])), STEP), CONFIG, STEP)  # fmt: skip
    assert all(r.factor_ref and r.provenance == "measured" for r in records)  # format 3 now
    # written before the blanked fields existed (no such columns, not in the hashes)
    records = ledger.chain([r._replace(**dict.fromkeys(blank, "")) for r in records])
    fields = [f for f in ledger.RECORD_FIELDS if f not in blank]
    conn = sqlite3.connect(path)
    marks = ", ".join("?" * len(fields))
    conn.executemany(
        f"INSERT INTO ledger_intervals ({', '.join(fields)}) VALUES ({marks})",
        [[getattr(r, f) for f in fields] for r in records],
    )
    if version >= 4:  # the head row is written with each append since schema v4
        conn.execute("INSERT INTO ledger_head VALUES (1, ?, ?, 2)",
                     (records[-1].record_hash, records[-1].end_utc))
    conn.commit()
    conn.close()
    with Store(path) as s:
        head = s.ledger_head()
        assert (head.record_hash, head.records, head.end_utc) == (
            records[-1].record_hash, 2, "2026-03-02T00:30:00Z")
        rows = s.ledger(with_seq=True)
        for name in blank:  # migrated: the older format kept
            assert [r[name] for r in rows] == ["", ""]
        assert audit.verify_rows(rows, head=head).ok
    with Store(tmp_path / "new.sqlite3") as s:
        assert s.ledger_head().record_hash == GENESIS_HASH == ledger.GENESIS


def test_a_tampered_cell_type_is_reported_not_raised(store: Store):
    fill(store)
    append_completed(store, CONFIG, at(70), LedgerBook(STEP))
    conn = sqlite3.connect(store.path)
    conn.execute("DROP TRIGGER ledger_no_update")
    conn.execute("UPDATE ledger_intervals SET import_kwh = 'lots' WHERE seq = 2")
    conn.commit()
    conn.close()
    check = audit.verify_rows(store.ledger(with_seq=True))
    assert (check.ok, check.index, check.seq, check.kind) == (False, 1, 2, "edited")
    assert "import_kwh" in check.reason


# ------------------------------------------------------------------------ daemon + metrics
def daemon_config(tmp_path: Path):
    data = load_config(ROOT / "configs" / "suzhou-factory.toml").model_dump()
    data["store"] = {"path": str(tmp_path / "d.sqlite3")}
    data["http"] = {"enabled": False}
    data["forecast"] = {"load_kw": 500.0}
    data["carbon"].pop("certificates", None)
    data["carbon"]["neutrality_target_year"] = 2030
    return parse_config(data)


def metric(text: str, name: str) -> float:
    line = next(x for x in text.splitlines() if x.startswith(name + " "))
    return float(line.split()[-1])


def test_the_daemon_job_records_and_exposes_carbon_metrics(tmp_path: Path):
    config = daemon_config(tmp_path)  # grid 570.3 g/kWh, Asia/Shanghai, 15 min steps
    now = dt.datetime(2026, 6, 1, 4, 0, 20, tzinfo=dt.UTC)
    d = Daemon(config, Clock(now, 1.0), notifier=Notifier(""))
    try:
        for k in range(3):  # 03:45 .. 04:00 UTC: 400 kW import for 15 min -> 100 kWh
            snap = Snapshot(time=dt.datetime(2026, 6, 1, 3, 45 + 5 * k, tzinfo=dt.UTC),
                            p_grid_kw=400.0, p_pv_kw=0.0, p_batt_kw=0.0, p_load_kw=400.0,
                            soc_frac=0.5)  # fmt: skip
            d.store.record_cycle(snap, Setpoints(0.0, "t"), snap.time)
        bought = instruments_cases.purchase("CCER:B-1", 0.05, purchased_on="2026-05-02")
        instruments_cases.append(d.store, "purchase", bought)
        retired = instruments_cases.retirement("CCER:B-1", 0.05, retired_on="2026-06-01")
        instruments_cases.append(d.store, "retirement", retired)
        assert d.ledger_book.due(now)
        assert asyncio.run(d.guarded("ledger", d._ledger))
        assert not d.ledger_book.due(now)
        text = d.metrics.render().decode()
    finally:
        d.store.close()
    loc = 'dispatch_carbon_month_to_date_tonnes{method="location"}'
    assert metric(text, loc) == pytest.approx(0.05703, abs=1e-12)
    assert metric(text, 'dispatch_carbon_month_to_date_tonnes{method="market"}') == (
        pytest.approx(0.05703, abs=1e-12))
    assert metric(text, 'dispatch_carbon_net_balance_tonnes{period="month"}') == (
        pytest.approx(0.00703, abs=1e-12))
    assert metric(text, 'dispatch_carbon_net_balance_tonnes{period="year"}') == (
        pytest.approx(0.00703, abs=1e-12))
    assert metric(text, "dispatch_carbon_neutrality_target_year") == 2030.0
    assert metric(text, "dispatch_carbon_ledger_records") == 1.0


def test_no_target_year_no_target_metric(tmp_path: Path):
    data = daemon_config(tmp_path).model_dump()
    data["carbon"]["neutrality_target_year"] = None
    d = Daemon(parse_config(data), Clock(T0, 1.0), notifier=Notifier(""))
    try:
        assert "neutrality_target_year" not in d.metrics.render().decode()
    finally:
        d.store.close()


def test_a_completed_control_cycle_starts_the_ledger_job_once(tmp_path: Path):
    now = dt.datetime(2026, 6, 1, 4, 0, 20, tzinfo=dt.UTC)
    d = Daemon(daemon_config(tmp_path), Clock(now, 1.0), notifier=Notifier(""))
    snap = Snapshot(time=now - dt.timedelta(minutes=10), p_grid_kw=40.0, p_pv_kw=0.0,
                    p_batt_kw=0.0, p_load_kw=40.0, soc_frac=0.5)  # fmt: skip
    d.store.record_cycle(snap, Setpoints(0.0, "t"), snap.time)

    async def twice() -> None:
        d.start_ledger_job()
        task = d.ledger_task
        d.start_ledger_job()  # still running (or done and not due): no second job
        assert d.ledger_task is task and task is not None
        assert await task

    try:
        asyncio.run(twice())
        assert d.store.count("ledger_intervals") == 1
        assert d.carbon_figures is not None and d.carbon_figures["records"] == 1
        assert not d.ledger_book.due(d.clock.now())
    finally:
        d.store.close()
