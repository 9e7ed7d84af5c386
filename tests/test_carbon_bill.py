"""Monthly reconciliation against an imported utility bill: the bill CSV's checks, and
``carbon report --bill`` on a real SQLite store with hand-computed differences."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from dispatch.__main__ import main
from dispatch.carbon import bill
from dispatch.types import InputError
from tests import test_cli_carbon as cli_site

site = cli_site.site  # the fixture: 8 intervals of 100 kWh import in 2026-06 (800 kWh)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("month,kwh\n2026-06,1\n", "needs the columns month, import_kwh; missing import_kwh"),
        ("month,import_kwh\n2026-6,1\n", "line 2: month '2026-6' is not YYYY-MM"),
        ("month,import_kwh\n2026-06,1\n2026-06,2\n", "line 3: month 2026-06 appears twice"),
        ("month,import_kwh\n2026-06,-5\n", "line 2: import_kwh '-5' is not a number of kWh"),
        ("month,import_kwh\n2026-06,n/a\n", "line 2: import_kwh 'n/a' is not a number"),
        ("month,import_kwh\n", "the bill has no month"),
    ],
)
def test_a_bad_bill_is_an_error_naming_the_line(text: str, says: str):
    with pytest.raises(InputError, match=rf"^bill.csv: .*{says}"):
        bill.parse_bill(text, "bill.csv")


def report_with(site: Path, tmp_path: Path, text: str, capsys, fmt: str = "json") -> str:
    path = tmp_path / "bill.csv"
    path.write_text(text, encoding="utf-8")
    args = ["carbon", "report", "--config", str(site), "--period", "2026-06", "--format", fmt]
    assert main([*args, "--bill", str(path)]) == 0
    return capsys.readouterr().out


def test_the_report_shows_each_months_difference_from_the_bill(site: Path, tmp_path: Path, capsys):
    text = "month,import_kwh\n2026-05,999\n2026-06,1000\n"
    doc = json.loads(report_with(site, tmp_path, text, capsys))
    recon = doc["reconciliation"]
    assert recon["source"] == {
        "file": str(tmp_path / "bill.csv"),
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
    }
    assert recon["months"] == [
        {
            "month": "2026-06",
            "ledger_import_kwh": 800.0,
            "bill_import_kwh": 1000.0,
            "difference_kwh": -200.0,
            "difference_frac": -0.2,
            "coverage_frac": doc["months"][0]["coverage_frac"],
        }
    ]
    assert (
        "2026-06: the ledger's grid import 800.0 kWh differs from the bill's 1,000.0 kWh "
        "by -200.0 kWh (-20.0 %)"
    ) in doc["warnings"]
    page = report_with(site, tmp_path, text, capsys, "html")
    assert "<h2>Reconciliation against the utility bill (kWh)</h2>" in page
    csv = report_with(site, tmp_path, text, capsys, "csv")
    assert '# bill {"bill_import_kwh": 1000.0, ' in csv and '"difference_kwh": -200.0' in csv


def test_a_bill_that_matches_raises_no_warning_and_a_missing_month_does(
    site: Path, tmp_path: Path, capsys
):
    doc = json.loads(report_with(site, tmp_path, "month,import_kwh\n2026-06,800\n", capsys))
    (row,) = doc["reconciliation"]["months"]
    assert (row["difference_kwh"], row["difference_frac"]) == (0.0, 0.0)
    assert not [w for w in doc["warnings"] if "bill" in w]
    doc = json.loads(report_with(site, tmp_path, "month,import_kwh\n2026-05,800\n", capsys))
    assert doc["reconciliation"]["months"][0]["bill_import_kwh"] is None
    assert "2026-06: not on the utility bill: not reconciled" in doc["warnings"]


def test_an_unreadable_bill_is_named(site: Path, tmp_path: Path, capsys):
    args = ["carbon", "report", "--config", str(site), "--period", "2026-06"]
    assert main([*args, "--bill", str(tmp_path / "none.csv")]) == 1
    assert f"bill {tmp_path / 'none.csv'}: cannot read it" in capsys.readouterr().err


def import_bill(site: Path, tmp_path: Path, text: str, capsys, name: str = "bill.csv") -> dict:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert main(["carbon", "bill", "import", "--config", str(site), "--csv", str(path)]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_stored_bill_is_chained_reconciled_by_default_and_corrected_by_appending(
    site: Path, tmp_path: Path, capsys
):
    first = "month,import_kwh\n2026-05,999\n2026-06,1000\n"
    done = import_bill(site, tmp_path, first, capsys)
    assert (done["months"], done["appended"], done["corrected"]) == (2, 2, [])
    assert import_bill(site, tmp_path, first, capsys)["appended"] == 0  # unchanged: skipped
    args = ["carbon", "report", "--config", str(site), "--period", "2026-06", "--format", "json"]
    assert main(args) == 0
    recon = json.loads(capsys.readouterr().out)["reconciliation"]
    assert (recon["months"][0]["bill_import_kwh"], recon["months"][0]["difference_kwh"]) == (
        1000.0, -200.0)
    assert recon["source"]["chain"] == "carbon_instruments"
    done = import_bill(site, tmp_path, "month,import_kwh\n2026-06,800\n", capsys, "fixed.csv")
    assert (done["appended"], done["corrected"]) == (1, ["2026-06"])
    assert main(args) == 0
    recon = json.loads(capsys.readouterr().out)["reconciliation"]
    (row,) = recon["months"]
    assert (row["bill_import_kwh"], row["difference_kwh"]) == (800.0, 0.0)  # the latest counts
    assert recon["source"]["records"][1]["source_file"] == "fixed.csv"
    assert main(["carbon", "bill", "list", "--config", str(site)]) == 0
    listed = json.loads(capsys.readouterr().out)["bill"]
    assert [(b["month"], b["import_kwh"], b["seq"]) for b in listed] == [
        ("2026-05", 999.0, 1), ("2026-06", 800.0, 3)]
    assert main(["carbon", "verify", "--config", str(site)]) == 0
    assert "3 instrument records" in capsys.readouterr().out
