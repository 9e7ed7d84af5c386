"""Done-means of the carbon ledger: a German factory year (2018, real data) from the backtest
with a battery feeds the ledger through the daemon's own path (cycle samples in a real SQLite
store -> ``append_completed``), verifies through the CLI, and its yearly report's
location-based kg CO2 equals the backtest KPI to the gram; a tampered copy is caught."""

from __future__ import annotations

import json
import math
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
from tests.conftest import SHARED_DATA

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


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory):
    """The year's ledger, built once: (config file, its text, backtest KPI table, seconds)."""
    from sim import backtest, kpis, scenario

    if not SHARED_DATA.is_dir():  # as the function-scoped ``shared_data`` fixture does
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the project in CI)")

    t0 = time.perf_counter()
    tmp_path = tmp_path_factory.mktemp("year")
    sc = scenario.load_scenario(SCENARIO)
    out = backtest.self_consumption(sc)  # the inverter's rule with the 3 MW / 15.55 MWh battery
    assert (out.frame["p_batt_kw"] != 0).sum() > 1000  # the battery does work
    table = kpis.strategy_kpis(out.frame, sc.config, out.strategy)
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
    return cfg, text, table, time.perf_counter() - t0


def test_a_german_factory_year_feeds_the_ledger_to_the_gram(year, tmp_path: Path):
    t0 = time.perf_counter()
    cfg, text, table, built_s = year
    kpi_kg = float(table.loc[table["month"] == "total", "kg_co2"].iloc[0])

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
          f"difference {diff_g:+.3f} g, ledger built in {built_s:.1f} s, "
          f"checked in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    assert abs(diff_g) < 1.0
    assert report["totals"]["intervals"] == 35040
    assert report["factors"]["intensity_sources"] == {"series": 35040}
    assert report["totals"]["import_kwh"] == pytest.approx(
        float(table.loc[table["month"] == "total", "import_kwh"].iloc[0]), abs=0.05)

    copy = tmp_path / "tampered.sqlite3"
    shutil.copy(load_config(cfg).store.path, copy)
    conn = sqlite3.connect(copy, isolation_level=None)
    conn.execute("DROP TRIGGER ledger_no_update")
    conn.execute("UPDATE ledger_intervals SET ci_g_per_kwh = ci_g_per_kwh - 1 WHERE seq = 20000")
    conn.close()
    tampered = tmp_path / "tampered.toml"
    tampered.write_text(text.replace(str(load_config(cfg).store.path), str(copy)),
                        encoding="utf-8")
    caught = cli("carbon", "verify", "--config", str(tampered))
    assert caught.returncode == 3
    assert "first bad row 19999 (seq 20000, interval 2018-07-28T" in caught.stderr


def test_restating_the_year_with_a_second_factor_gives_the_exact_ratio(year, tmp_path: Path):
    """The year (series intensity, 35040 intervals) restated with a second factor: the
    restated kg is the stored rows' imports times it, and the ratio to the recorded figure is
    that over the stored rows' location kg, both exactly (rows read from SQLite directly)."""
    cfg, text, table, _ = year
    g_per_kwh = 250.0  # a test factor, not an official value
    user = tmp_path / "factors.csv"
    user.write_text("key,source,year,region,basis,g_per_kwh,published\n"
                    f"TEST-2018,test factor,2018,Germany,average,{g_per_kwh},2026-12-07\n")
    site = tmp_path / "site.toml"
    site.write_text(text.replace("\n[carbon]\n", f"\n[carbon]\nfactor_table_path = '{user}'\n"),
                    encoding="utf-8")
    made = cli("carbon", "report", "--config", str(site), "--period", "2018", "--format", "json",
               "--restate", "TEST-2018")
    assert made.returncode == 0, made.stderr
    report = json.loads(made.stdout)
    conn = sqlite3.connect(load_config(cfg).store.path)
    rows = conn.execute("SELECT import_kwh, location_kg_co2, factor_ref FROM ledger_intervals "
                        "ORDER BY seq").fetchall()
    conn.close()
    imports = math.fsum(r[0] for r in rows)
    recorded = math.fsum(r[1] for r in rows)
    r = report["restatement"]
    assert r["restated_location_kg_co2"] == round(imports * g_per_kwh / 1000.0, 6)
    assert r["recorded_location_kg_co2"] == round(recorded, 6) == report["totals"][
        "location_kg_co2"]
    assert r["restated_over_recorded"] == round(imports * g_per_kwh / 1000.0 / recorded, 12)
    kpi_import = float(table.loc[table["month"] == "total", "import_kwh"].iloc[0])
    assert r["restated_location_kg_co2"] == pytest.approx(kpi_import * g_per_kwh / 1000.0,
                                                          abs=0.05 * g_per_kwh / 1000.0)
    # every record names the configured 380 g/kWh (no table key): the factor ratio is exact
    assert {row[2].split("|")[:2][1] for row in rows} == {"380.0"}
    assert r["recorded_factors"] == [{"key": "config:grid_ci_g_per_kwh", "g_per_kwh": 380.0,
                                      "records": 35040, "status": "configured value"}]
    assert r["factor_over_recorded_factor"] == round(g_per_kwh / 380.0, 12)
