"""Done-means of the carbon ledger: a German factory year (2018, real data) from the backtest
with a battery feeds the ledger through the daemon's own path (cycle samples in a real SQLite
store -> ``append_completed``), verifies through the CLI, and its yearly report's
location-based kg CO2 equals the backtest KPI to the gram; a tampered copy is caught."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from dispatch.config import load_config
from dispatch.daemon.ledger_job import LedgerBook, append_completed
from dispatch.store import Store, codec
from dispatch.types import Snapshot

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "configs" / "scenarios" / "germany-factory-2018.toml"
SITE = ROOT / "configs" / "germany-factory-dayahead.toml"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatch", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)  # fmt: skip


def store_samples(store: Store, frame: pd.DataFrame, step: pd.Timedelta) -> int:
    """The backtest's per-slot flows as the daemon's cycle samples: two complete readings per
    interval (at its start and half-way), written as ``record_cycle`` writes measurements."""
    cols = ("p_grid_kw", "p_pv_kw", "p_batt_kw", "p_load_kw", "soc_frac")
    rows = []
    for offset in (pd.Timedelta(0), step / 2):
        for t, values in zip(frame.index + offset, frame[list(cols)].itertuples(index=False),
                             strict=True):  # fmt: skip
            snap = Snapshot(t.to_pydatetime(), *map(float, values))
            rows.append(codec.snapshot_row(snap))
    names = list(rows[0])
    with store.transaction("bulk samples") as conn:
        conn.executemany(f"INSERT INTO measurements ({', '.join(names)}) VALUES "
                         f"({', '.join('?' * len(names))})",
                         [tuple(r[n] for n in names) for r in rows])  # fmt: skip
    return len(rows)


def test_a_german_factory_year_feeds_the_ledger_to_the_gram(shared_data: Path, tmp_path: Path):
    from sim import backtest, kpis, scenario

    t0 = time.perf_counter()
    sc = scenario.load_scenario(SCENARIO)
    out = backtest.self_consumption(sc)  # the inverter's rule with the 3 MW / 15.55 MWh battery
    assert (out.frame["p_batt_kw"] != 0).sum() > 1000  # the battery does work
    table = kpis.strategy_kpis(out.frame, sc.config, out.strategy)
    kpi_kg = float(table.loc[table["month"] == "total", "kg_co2"].iloc[0])

    cfg = tmp_path / "site.toml"
    text = SITE.read_text(encoding="utf-8") + f"\n[store]\npath = '{tmp_path / 'y.sqlite3'}'\n"
    cfg.write_text(text, encoding="utf-8")
    config = load_config(cfg)
    step = pd.Timedelta(minutes=config.plan.step_min)
    end = out.frame.index[-1] + step
    with Store.from_config(config) as store:
        assert store_samples(store, out.frame, step) == 2 * len(out.frame)
        book = LedgerBook(step)
        book.remember_ci(out.frame[["ci_g_per_kwh"]], out.frame.index[0])  # the known series
        while True:
            done = append_completed(store, config, end.to_pydatetime(), book)
            assert done.gaps == []
            if not done.behind:
                break
        assert store.count("ledger_intervals") == len(out.frame) == 35040

    verified = cli("carbon", "verify", "--config", str(cfg))
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("ledger intact: 35040 records, 2017-12-31T23:00:00Z .. "
                                      "2018-12-31T23:00:00Z")  # fmt: skip
    made = cli("carbon", "report", "--config", str(cfg), "--period", "2018", "--format", "json")
    assert made.returncode == 0, made.stderr
    report = json.loads(made.stdout)
    ledger_kg = report["totals"]["location_kg_co2"]
    diff_g = (ledger_kg - kpi_kg) * 1000.0
    print(f"\nyear: ledger {ledger_kg:.6f} kg CO2, backtest KPI {kpi_kg:.6f} kg CO2, "
          f"difference {diff_g:+.3f} g, {time.perf_counter() - t0:.1f} s")  # fmt: skip
    assert abs(diff_g) < 1.0
    assert report["totals"]["intervals"] == 35040
    assert report["factors"]["intensity_sources"] == {"series": 35040}
    assert report["totals"]["import_kwh"] == pytest.approx(
        float(table.loc[table["month"] == "total", "import_kwh"].iloc[0]), abs=0.05)

    copy = tmp_path / "tampered.sqlite3"
    shutil.copy(tmp_path / "y.sqlite3", copy)
    conn = sqlite3.connect(copy, isolation_level=None)
    conn.execute("DROP TRIGGER ledger_no_update")
    conn.execute("UPDATE ledger_intervals SET ci_g_per_kwh = ci_g_per_kwh - 1 WHERE seq = 20000")
    conn.close()
    cfg.write_text(text.replace("y.sqlite3", "tampered.sqlite3"), encoding="utf-8")
    caught = cli("carbon", "verify", "--config", str(cfg))
    assert caught.returncode == 3
    assert "first bad row 19999 (seq 20000, interval 2018-07-28T" in caught.stderr
