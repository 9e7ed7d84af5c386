"""``dispatch plan`` and ``dispatch check-config`` end to end: files in, files and JSON out,
clear errors and exit codes for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dispatch.__main__ import EXIT_CONFIG, EXIT_INPUT, main
from tests.conftest import CONFIGS

SUZHOU = CONFIGS / "suzhou-factory.toml"


def write_inputs(path: Path, n: int = 96, **overrides) -> pd.DataFrame:
    idx = pd.date_range("2026-07-01T00:00+08:00", periods=n, freq="15min")
    hour = idx.hour + idx.minute / 60
    frame = pd.DataFrame(
        {
            "time": [t.isoformat() for t in idx],
            "p_pv_kw": 5000 * np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None),
            "p_load_kw": 3000 + 2000 * ((hour >= 8) & (hour < 20)),
        }
    )
    for col, value in overrides.items():
        frame[col] = value
    frame.to_csv(path, index=False)
    return frame


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_writes_csv_and_summary(tmp_path, capsys):
    write_inputs(tmp_path / "in.csv")
    out = tmp_path / "plan.csv"
    code, stdout, err = run(
        capsys,
        "plan",
        "--config",
        str(SUZHOU),
        "--inputs",
        str(tmp_path / "in.csv"),
        "--out",
        str(out),
        "--soc-frac",
        "0.3",
        "--peak-kw",
        "4000",
    )
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["status"] == "optimal"
    assert summary["slots"] == 96
    plan = pd.read_csv(out)
    assert list(plan.columns[:3]) == ["time", "p_batt_kw", "p_charge_kw"]
    assert len(plan) == 96
    # zero-export site: never exports; the tariff filled the prices (peak 1.08 at 09:00 local)
    assert plan["p_grid_kw"].min() >= -1e-6
    assert (
        plan.loc[plan["time"] == "2026-07-01T01:00:00+00:00", "price_import_per_kwh"].item() == 1.08
    )
    total = sum(
        summary["costs"][k] for k in ("energy_cost", "demand_charge", "carbon_cost", "wear_cost")
    )
    assert summary["costs"]["total"] == pytest.approx(total - summary["costs"]["export_revenue"])


def test_price_columns_override_the_tariff(tmp_path, capsys):
    write_inputs(tmp_path / "in.csv", price_import_per_kwh=0.5, ci_g_per_kwh=100.0)
    code, _, _ = run(
        capsys,
        "plan",
        "--config",
        str(SUZHOU),
        "--inputs",
        str(tmp_path / "in.csv"),
        "--out",
        str(tmp_path / "p.csv"),
    )
    assert code == 0
    plan = pd.read_csv(tmp_path / "p.csv")
    assert (plan["price_import_per_kwh"] == 0.5).all()
    assert (plan["ci_g_per_kwh"] == 100.0).all()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns="p_load_kw"), "missing column(s) ['p_load_kw']"),
        (lambda f: f.drop(index=5), "step is not fixed"),
        (lambda f: pd.concat([f.iloc[:3], f.iloc[2:]]), "duplicate time stamp"),
        (lambda f: f.iloc[[1, 0, *range(2, len(f))]], "not sorted"),
        (lambda f: f.assign(p_load_kw=f["p_load_kw"].where(f.index != 7)), "row 9"),
        (lambda f: f.assign(p_load_kw=f["p_load_kw"] * 1000), "is it in W?"),
        (lambda f: f.assign(price_import_per_kwh=640.0), "per MWh?"),
        (lambda f: f.assign(time=f["time"].str[:19]), "has no UTC offset"),
        (lambda f: f.assign(extra=1), "unknown column"),
    ],
)
def test_bad_csv_is_a_clear_error_not_a_plan(tmp_path, capsys, mutate, message):
    frame = write_inputs(tmp_path / "good.csv")
    mutate(frame).to_csv(tmp_path / "bad.csv", index=False)
    out = tmp_path / "plan.csv"
    code, _, err = run(
        capsys,
        "plan",
        "--config",
        str(SUZHOU),
        "--inputs",
        str(tmp_path / "bad.csv"),
        "--out",
        str(out),
    )
    assert code == EXIT_INPUT
    assert message in err
    assert not out.exists()


def test_check_config_prints_normalised_config(capsys):
    code, out, _ = run(capsys, "check-config", str(SUZHOU))
    assert code == 0
    data = json.loads(out)
    assert data["battery"]["energy_kwh"] == 15550.0
    assert data["grid"]["export_allowed"] is False


def test_bad_config_exits_78_naming_the_key(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(SUZHOU.read_text().replace("soc_min_frac = 0.05", "soc_min_frac = 1.5"))
    code, _, err = run(capsys, "check-config", str(bad))
    assert code == EXIT_CONFIG
    assert "battery.soc_min_frac = 1.5" in err


def test_console_script_runs_as_a_process(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dispatch", "check-config", str(tmp_path / "no.toml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == EXIT_CONFIG
    assert "cannot read the file" in proc.stderr
