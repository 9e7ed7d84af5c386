"""Provenance of each ledger interval (measured / imported history / estimated) on a real
SQLite store: booked from ``import-history`` rows and the daemon's cycles, hashed in format-2
records while format-1 records keep their hashes, counted in the report's coverage, and
re-derived by the standalone bundle verifier."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dispatch.__main__ import main
from dispatch.carbon import chain
from dispatch.config import load_config
from dispatch.daemon.ledger_job import LedgerBook, append_completed
from dispatch.store import Store
from dispatch.types import Setpoints, Snapshot
from tests.test_cli_carbon import write_config

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 6, 1, 0, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=15)
LEGACY = dict(
    start_utc="2026-06-01T00:00:00Z",
    end_utc="2026-06-01T00:15:00Z",
    load_kwh=100.0,
    pv_kwh=0.0,
    curtail_kwh=0.0,
    import_kwh=100.0,
    export_kwh=0.0,
    charge_kwh=0.0,
    discharge_kwh=0.0,
    ci_g_per_kwh=570.3,
    ci_source="config",
    method_version="v",
    charge_grid_kwh=0.0,
    pv_direct_kwh=0.0,
    nobatt_import_kwh=100.0,
    nobatt_export_kwh=0.0,
    location_kg_co2=57.03,
    nobatt_kg_co2=57.03,
    nopv_kg_co2=57.03,
    avoided_pv_kg_co2=0.0,
    avoided_battery_kg_co2=0.0,
    charge_grid_kg_co2=0.0,
)


def test_a_format_1_record_keeps_the_hashes_it_was_written_with():
    # computed by the code before provenance existed (main at 3a81edd)
    (old,) = chain.chain([chain.IntervalRecord(**LEGACY)])
    assert old.inputs_hash == "2874404d40312889c8adbe4d5daa59c692f21125b9fbb33936ba78c93cade6cb"
    assert old.record_hash == "2468fe170c5ed3cebddba9900016551ec38fd71d88e31aaa1a76df986866bd54"
    (new,) = chain.chain([chain.IntervalRecord(**LEGACY, provenance="measured")])
    assert '"provenance":"measured"' in chain.canonical(new)
    assert new.record_hash != old.record_hash and chain.verify([new]).ok
    for forged in ("", "imported", "guessed"):  # blanked to look like format 1, or changed
        check = chain.verify([new._replace(provenance=forged)])
        assert (check.index, check.reason) == (
            0,
            "edited input at 2026-06-01T00:00:00Z: inputs_hash does not match",
        )


def site(tmp_path: Path, history: dict[str, float], imported: int, measured: int) -> Path:
    """A store with ``imported`` 15-min rows of history from T0, then ``measured`` intervals
    of the daemon's cycles (400 kW import), booked into the ledger."""
    cfg = write_config(tmp_path)
    config = load_config(cfg)
    index = pd.date_range(T0, periods=imported, freq="15min")
    frame = pd.DataFrame({k: v for k, v in history.items()}, index=index)
    with Store.from_config(config) as store:
        assert store.import_history(frame) == imported
        first = T0 + imported * STEP
        for k in range(measured * 3):
            t = first + k * STEP / 3
            snap = Snapshot(
                time=t, p_grid_kw=400.0, p_pv_kw=0.0, p_batt_kw=0.0, p_load_kw=400.0, soc_frac=0.5
            )
            store.record_cycle(snap, Setpoints(0.0, "t"), t)
        end = first + measured * STEP
        done = append_completed(store, config, end, LedgerBook(pd.Timedelta(STEP)))
        assert done.records == imported + measured
    return cfg


def report(cfg: Path, capsys: pytest.CaptureFixture) -> dict:
    assert (
        main(["carbon", "report", "--config", str(cfg), "--period", "2026-06", "--format", "json"])
        == 0
    )
    return json.loads(capsys.readouterr().out)


def test_imported_history_and_the_daemons_cycles_are_booked_with_their_provenance(
    tmp_path: Path, capsys: pytest.CaptureFixture
):
    # 4 imported intervals at 200 kW grid (50 kWh each), 4 measured at 400 kW (100 kWh each)
    cfg = site(tmp_path, {"p_load_kw": 300.0, "p_pv_kw": 100.0, "p_grid_kw": 200.0}, 4, 4)
    with Store.from_config(load_config(cfg)) as store:
        rows = store.ledger()
    assert [r["provenance"] for r in rows] == ["imported"] * 4 + ["measured"] * 4
    assert [r["import_kwh"] for r in rows] == [50.0] * 4 + [100.0] * 4
    assert [r["charge_kwh"] + r["discharge_kwh"] for r in rows[:4]] == [0.0] * 4  # battery 0
    assert main(["carbon", "verify", "--config", str(cfg)]) == 0
    capsys.readouterr()
    doc = report(cfg, capsys)
    prov = doc["coverage"]["provenance"]
    assert prov["intervals"] == {"measured": 4, "imported": 4, "estimated": 0, "unflagged": 0}
    assert prov["import_kwh"] == {
        "measured": 400.0,
        "imported": 200.0,
        "estimated": 0.0,
        "unflagged": 0.0,
    }
    assert (
        "2026-06: intervals not measured by the daemon: 4 from imported history"
        in (doc["warnings"])
    )
    assert report_csv(cfg, capsys).count("# provenance measured 4, imported 4, estimated 0") == 1


def report_csv(cfg: Path, capsys: pytest.CaptureFixture) -> str:
    assert (
        main(["carbon", "report", "--config", str(cfg), "--period", "2026-06", "--format", "csv"])
        == 0
    )
    return capsys.readouterr().out


def test_history_without_a_metered_grid_flow_is_estimated(
    tmp_path: Path, capsys: pytest.CaptureFixture
):
    cfg = site(tmp_path, {"p_load_kw": 300.0, "p_pv_kw": 100.0}, 2, 1)  # grid = 300 - 100
    with Store.from_config(load_config(cfg)) as store:
        rows = store.ledger()
    assert [(r["provenance"], r["import_kwh"]) for r in rows] == [
        ("estimated", 50.0),
        ("estimated", 50.0),
        ("measured", 100.0),
    ]
    warns = report(cfg, capsys)["warnings"]
    assert any("2 estimated (grid flow taken as load - PV)" in w for w in warns)


def test_a_forged_provenance_is_caught_by_verify_and_the_standalone_verifier(
    tmp_path: Path, capsys: pytest.CaptureFixture
):
    cfg = site(tmp_path, {"p_load_kw": 300.0, "p_pv_kw": 100.0}, 2, 2)
    out = tmp_path / "bundle"
    assert (
        main(["carbon", "export", "--config", str(cfg), "--period", "2026-06", "--out", str(out)])
        == 0
    )
    tool = [sys.executable, str(ROOT / "tools" / "verify_carbon_bundle.py"), str(out)]
    ok = subprocess.run(tool, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    conn = sqlite3.connect(load_config(cfg).store.path, isolation_level=None)
    conn.execute("DROP TRIGGER ledger_no_update")
    conn.execute("UPDATE ledger_intervals SET provenance = 'measured' WHERE seq = 2")
    conn.close()
    capsys.readouterr()
    assert main(["carbon", "verify", "--config", str(cfg), "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert (doc["index"], doc["kind"]) == (1, "edited")
    bundle = json.loads((out / "intervals.json").read_text())
    at = bundle["fields"].index("provenance")
    bundle["records"][1][at] = "measured"
    (out / "intervals.json").write_text(json.dumps(bundle))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"].pop("intervals.json")  # so the row check, not the manifest, decides
    (out / "manifest.json").write_text(json.dumps(manifest))
    bad = subprocess.run(tool, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 3 and "interval row 1" in bad.stdout + bad.stderr
    assert "inputs_hash does not match" in bad.stdout + bad.stderr


def test_the_demo_daemons_seeded_week_is_booked_as_estimated(tmp_path: Path):
    from sim.demo_daemon import seed_history

    config = load_config(write_config(tmp_path))
    start = dt.datetime(2026, 6, 8, 0, 0, tzinfo=dt.UTC)
    seed_history(config, Path(config.store.path), start)
    with Store.from_config(config) as store:
        done = append_completed(store, config, start, LedgerBook(pd.Timedelta(STEP)))
        marks = {r["provenance"] for r in store.ledger()}
    assert done.records == 7 * 96 and marks == {"estimated"}
