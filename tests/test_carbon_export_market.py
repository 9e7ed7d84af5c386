"""The standalone bundle verifier re-derives the market-based total from the rows, the
report's certificates and the residual mix (hand-computed), names a forged total, and says
when a certificate valid beyond the period leaves it not re-derivable from the bundle."""

from __future__ import annotations

import json
from pathlib import Path

from dispatch.__main__ import main
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


def test_a_certificate_valid_beyond_the_period_is_said_not_re_derived(site: Path, tmp_path, capsys):
    certificate(site, "0.3", "2026-07-31")
    code, summary = standalone(bundle(site, tmp_path / "b", capsys))
    assert code == 0
    assert summary["market_kg_co2"] == (
        "not re-derived: certificate GEC-1 is valid beyond the period"
    )
