"""Grid factors by year and region: the shipped table, a user's extension, and a report that
restates a period with a second factor beside the recorded figure (exact ratio)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dispatch.__main__ import main
from dispatch.carbon import factors
from dispatch.types import InputError
from tests import test_cli_carbon as cli_site

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
