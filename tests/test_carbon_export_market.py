"""The standalone bundle verifier re-derives the market-based total from the rows, the
report's certificates and the residual mix (hand-computed), names a forged total, and
re-derives it too when a certificate's window crosses the period boundary (the bundle then
carries the rest of the window's rows)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from dispatch.__main__ import main
from dispatch.config import load_config
from dispatch.daemon.ledger_job import LedgerBook, append_completed
from dispatch.store import Store
from dispatch.types import Setpoints, Snapshot
from tests import test_cli_carbon as cli_site
from tests.test_carbon_export import rewrite, standalone

site = cli_site.site  # 8 intervals of 100 kWh import on 2026-06-01 at 570.3 g/kWh


def certificate(cfg: Path, mwh: str, claimed_to: str) -> None:
    args = ["carbon", "certificates", "add", "--config", str(cfg), "--id", "GEC-1"]
    args += ["--scheme", "GEC", "--mwh", mwh, "--generation-from", "2026-05-01"]
    args += ["--generation-to", "2026-05-31", "--serial-first", "G1", "--claimant", "Suzhou"]
    args += ["--boundary", "China mainland", "--claimed-from", "2026-06-01"]
    assert main([*args, "--claimed-to", claimed_to]) == 0


def bundle(cfg: Path, out: Path, capsys) -> Path:
    args = ["carbon", "export", "--config", str(cfg), "--period", "2026-06", "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    return out


def test_the_market_total_is_re_derived_and_a_forged_one_named(site: Path, tmp_path, capsys):
    certificate(site, "0.3", "2026-06-30")
    out = bundle(site, tmp_path / "b", capsys)
    # 800 kWh imported, 300 kWh covered at 0 g/kWh, 500 kWh at 570.3 g/kWh = 285.15 kg
    assert json.loads((out / "report.json").read_text())["totals"]["market_kg_co2"] == 285.15
    code, summary = standalone(out)
    assert (code, summary["market_kg_co2"]) == (0, "re-derived from 1 certificate(s)")

    def forge(doc: dict) -> None:
        doc["totals"]["market_kg_co2"] = 228.12  # as if 400 kWh were covered

    rewrite(out, "report.json", forge)
    code, summary = standalone(out)
    assert (code, summary["where"]) == (3, "report.json")
    assert summary["reason"] == (
        "totals market_kg_co2 = 228.12 but the rows and certificates give 285.15"
    )


def july_intervals(cfg: Path, n: int = 4) -> None:
    """``n`` more intervals from 2026-07-01T00:00Z, 200 kW import (50 kWh each)."""
    t0 = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    config = load_config(cfg)
    with Store.from_config(config) as store:
        for k in range(3 * n):
            t = t0 + dt.timedelta(minutes=5 * k)
            snap = Snapshot(time=t, p_grid_kw=200.0, p_pv_kw=0.0, p_batt_kw=0.0,
                            p_load_kw=200.0, soc_frac=0.5)
            store.record_cycle(snap, Setpoints(0.0, "t"), t)
        done = append_completed(store, config, t0 + dt.timedelta(minutes=15 * n),
                                LedgerBook(dt.timedelta(minutes=15)))
        assert done.records == n


def test_a_certificate_crossing_the_period_boundary_is_re_derived(site: Path, tmp_path, capsys):
    july_intervals(site)
    certificate(site, "0.3", "2026-07-31")  # June 1 .. July 31: 800 + 200 kWh in its window
    out = bundle(site, tmp_path / "b", capsys)
    doc = json.loads((out / "intervals.json").read_text())
    assert (doc["span"]["from"], doc["span"]["to"], len(doc["records"])) == (
        "2026-06-01", "2026-08-01", 12)
    # 300 kWh over 1000 kWh: 30 % of June's 800 kWh covered, 560 kWh x 570.3 g/kWh = 319.368 kg
    report = json.loads((out / "report.json").read_text())
    assert report["totals"]["market_kg_co2"] == 319.368
    code, summary = standalone(out)
    assert (code, summary["intervals"], summary["rows_outside_period"]) == (0, 8, 4)
    assert summary["market_kg_co2"] == (
        "re-derived from 1 certificate(s), 1 crossing the period boundary (4 rows outside "
        "the period)"
    )

    def drop_july(doc: dict) -> None:  # as if only the period's rows were exported
        doc["records"] = doc["records"][:8]
        doc["span"]["to"] = "2026-07-01"

    rewrite(out, "intervals.json", drop_july)
    code, summary = standalone(out)
    assert (code, summary["where"]) == (3, "intervals.json")
    assert summary["reason"].startswith("span 2026-06-01 .. 2026-07-01 but the period and")
