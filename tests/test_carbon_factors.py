"""Grid factors by year and region: the shipped table, a user's extension, and a report that
restates a period with a second factor beside the recorded figure (exact ratio)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from dispatch.__main__ import main
from dispatch.carbon import chain, compose, factors
from dispatch.config import load_config
from dispatch.daemon.ledger_job import LedgerBook, append_completed
from dispatch.store import Store
from dispatch.types import InputError, Setpoints, Snapshot
from tests import test_cli_carbon as cli_site

ROOT = Path(__file__).resolve().parents[1]

site = cli_site.site  # 8 intervals: 800 kWh imported at 570.3 g/kWh = 456.24 kg
HEADER = ",".join(factors.COLUMNS)


def test_the_shipped_table_holds_the_official_factors(site: Path, capsys):
    assert main(["carbon", "factors", "--config", str(site)]) == 0
    table = factors.read_table(capsys.readouterr().out, "out")
    by_key = {f.key: f for f in table}
    assert (by_key["CN-national-2022"].g_per_kwh, by_key["CN-national-2022"].year) == (536.6, 2022)
    assert by_key["CN-national-2021"].g_per_kwh == 556.8
    assert by_key["CN-east-2022"].region == "East China grid"
    assert by_key["CN-national-nonfossil-excluded-2022"].g_per_kwh == 585.6


def test_a_bad_factor_row_is_named():
    with pytest.raises(InputError, match=r"user\.csv line 3"):
        factors.read_table(f"{HEADER}\na,s,2022,r,b,1.0,p\nb,s,2022,r,b,lots,p\n", "user.csv")
    with pytest.raises(InputError, match="the header must be"):
        factors.read_table("key,value\n", "user.csv")


def test_restating_a_period_with_a_second_factor(site: Path, tmp_path: Path, capsys):
    args = ["carbon", "report", "--config", str(site), "--period", "2026-06", "--format", "json"]
    assert main([*args, "--restate", "CN-national-2022"]) == 0
    r = json.loads(capsys.readouterr().out)["restatement"]
    # 800 kWh x 536.6 g/kWh = 429.28 kg beside the recorded 800 x 570.3 = 456.24 kg
    assert (r["recorded_location_kg_co2"], r["restated_location_kg_co2"]) == (456.24, 429.28)
    assert r["restated_over_recorded"] == round(536.6 / 570.3, 12)
    assert main([*args, "--restate", "JS-2022"]) == 1
    assert "factor 'JS-2022' is not in the factor table" in capsys.readouterr().err
    user = tmp_path / "factors.csv"
    user.write_text(f"{HEADER}\nJS-2022,our own transcription,2022,Jiangsu,average,600.0,x\n")
    text = site.read_text().replace("\n[carbon]\n", f"\n[carbon]\nfactor_table_path = '{user}'\n")
    site.write_text(text)
    assert main([*args, "--restate", "JS-2022"]) == 0
    r = json.loads(capsys.readouterr().out)["restatement"]
    assert (r["restated_location_kg_co2"], r["factor"]["region"]) == (480.0, "Jiangsu")


def site_with_key(tmp_path: Path, key: str) -> Path:
    """The fixture's site (8 intervals of 100 kWh) with ``[carbon] grid_factor_key``."""
    cfg = cli_site.write_config(tmp_path)
    lines = [x for x in cfg.read_text().splitlines() if not x.startswith("grid_factor_key")]
    text = "\n".join(lines).replace("\n[carbon]\n", f"\n[carbon]\ngrid_factor_key = '{key}'\n")
    cfg.write_text(text + "\n")
    config = load_config(cfg)
    with Store.from_config(config) as store:
        for k in range(cli_site.N * 3):
            t = cli_site.T0 + dt.timedelta(minutes=5 * k)
            snap = Snapshot(time=t, p_grid_kw=400.0, p_pv_kw=0.0, p_batt_kw=0.0, p_load_kw=400.0,
                            soc_frac=0.5)
            store.record_cycle(snap, Setpoints(0.0, "t"), t)
        append_completed(store, config, cli_site.T0 + dt.timedelta(minutes=15 * cli_site.N),
                         LedgerBook(dt.timedelta(minutes=15)))
    return cfg


def shipped_entry(key: str) -> tuple[dict, str]:
    """The shipped CSV row of ``key`` as JSON types, and the SHA-256 of its sorted JSON
    (computed here from the file, not with ``factors``)."""
    text = (ROOT / "dispatch" / "carbon" / "data" / "grid_factors.csv").read_text()
    row = next(r for r in csv.DictReader(text.splitlines()) if r["key"] == key)
    entry = {**row, "year": int(row["year"]), "g_per_kwh": float(row["g_per_kwh"])}
    text = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return entry, hashlib.sha256(text.encode()).hexdigest()


KEY = "CN-national-reporting-2023notice"  # 570.3 g/kWh, the suzhou config's value


def test_each_record_hashes_its_factor_reference_and_reports_check_it(tmp_path: Path, capsys):
    cfg = site_with_key(tmp_path, KEY)
    _, digest = shipped_entry(KEY)
    with Store.from_config(load_config(cfg)) as store:
        rows = store.ledger()
    assert {r["factor_ref"] for r in rows} == {f"{KEY}|570.3|{digest}"}
    recs = compose.records_from_rows(rows)
    blanked = [recs[0], recs[1]._replace(factor_ref=""), *recs[2:]]  # hashes left alone
    assert chain.verify(blanked).index == 1
    other = recs[1]._replace(factor_ref=f"{KEY}|536.6|{digest}")  # rehashed: value disagrees
    check = chain.verify(chain.chain([recs[0], other]))
    assert check.index == 1
    assert "ci_g_per_kwh 570.3 is not the value of its factor reference" in check.reason
    args = ["carbon", "report", "--config", str(cfg), "--period", "2026-06", "--format", "json"]
    assert main([*args, "--restate", "CN-national-2022"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["factor_references"] == [{"key": KEY, "g_per_kwh": 570.3, "entry_sha256": digest,
                                         "records": 8, "status": "matches the table"}]
    r = doc["restatement"]
    assert r["recorded_factors"] == [
        {"key": KEY, "g_per_kwh": 570.3, "records": 8, "status": "matches the table"}]
    assert r["factor_over_recorded_factor"] == round(536.6 / 570.3, 12)
    assert main(["carbon", "report", "--config", str(cfg), "--period", "2026-06"]) == 0
    assert (f"# factor reference {KEY} (570.3 g/kWh, entry {digest}): 8 record(s), matches the "
            "table\n") in capsys.readouterr().out
    assert main([*args[:-1], "html"]) == 0
    page = capsys.readouterr().out
    refs = page[page.index("<h2>Factor references in the records</h2>"):]
    assert f"<td>{KEY}</td>" in refs and f"<td>{digest}</td><td>8</td><td>matches the table" in refs
    # the official factor revised under the same key: the records name the old entry
    user = tmp_path / "factors.csv"
    user.write_text(f"{HEADER}\n{KEY},revised,2022,China,average (reporting use),571.0,2025\n")
    text = cfg.read_text().replace("\n[carbon]\n", f"\n[carbon]\nfactor_table_path = '{user}'\n")
    cfg.write_text(text.replace("grid_ci_g_per_kwh = 570.3", "grid_ci_g_per_kwh = 571.0"))
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["factor_references"][0]["status"] == "revised in the table"
    assert (f"2026-06: 8 record(s) were booked with factor {KEY!r} at 570.3 g/kWh; the table's "
            "entry now differs (571.0 g/kWh): restate") in doc["warnings"]


def test_a_key_whose_value_is_not_the_configured_factor_is_refused(tmp_path: Path):
    with pytest.raises(InputError, match=r"'CN-national-2022' is 536\.6 g/kWh in the factor table"):
        site_with_key(tmp_path, "CN-national-2022")
