"""``dispatch plan`` and ``dispatch check-config`` end to end: files in, files and JSON out,
clear errors and exit codes for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dispatch.__main__ import EXIT_CONFIG, EXIT_INPUT, main
from dispatch.devices.registers import shipped_map_text
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


def test_check_config_reads_the_api_token_file_beside_the_config(tmp_path, capsys):
    site = tmp_path / "site.toml"
    site.write_text(SUZHOU.read_text() + '\n[http]\ntoken_file = "api-token"\n')
    code, _, err = run(capsys, "check-config", str(site))
    assert code == EXIT_CONFIG and "cannot read the API token" in err and "api-token" in err
    (tmp_path / "api-token").write_text("0123456789abcdef0123\n")
    assert run(capsys, "check-config", str(site))[0] == 0


def test_console_script_runs_as_a_process(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dispatch", "check-config", str(tmp_path / "no.toml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == EXIT_CONFIG
    assert "cannot read the file" in proc.stderr


def _with_device(register_map: str) -> str:
    """The Suzhou config with one device on ``register_map``."""
    return SUZHOU.read_text() + f'\n[[devices]]\nname = "pcs-1"\nregister_map = "{register_map}"\n'


def test_a_misspelt_register_map_exits_78_naming_the_key_and_the_known_maps(tmp_path, capsys):
    cfg = tmp_path / "site.toml"
    cfg.write_text(_with_device("huawei_sun2000_lun"))
    for command in (["check-config", str(cfg)], ["probe", "--config", str(cfg)]):
        code, out, err = run(capsys, *command)
        assert code == EXIT_CONFIG and not out
        assert "devices[0].register_map = 'huawei_sun2000_lun'" in err
        assert ("byd_container_pcs, huawei_sun2000_luna, sma_storage, sungrow_sh, sunspec, "
                "victron_gx_ess") in err


def test_a_map_of_ones_own_is_found_beside_the_config_from_any_cwd(tmp_path, capsys,
                                                                   monkeypatch):
    site, elsewhere = tmp_path / "etc", tmp_path / "var"
    site.mkdir()
    elsewhere.mkdir()
    own = site / "maps" / "my_pcs.toml"
    own.parent.mkdir()
    own.write_text(shipped_map_text("sunspec"), encoding="utf-8")
    (site / "site.toml").write_text(_with_device("maps/my_pcs.toml"))
    monkeypatch.chdir(elsewhere)
    code, out, _ = run(capsys, "check-config", str(site / "site.toml"))
    assert code == 0
    assert json.loads(out)["devices"][0]["register_map"] == str(own)
    own.write_text("name = [", encoding="utf-8")
    code, _, err = run(capsys, "check-config", str(site / "site.toml"))
    assert code == EXIT_CONFIG
    assert f"devices[0].register_map = '{own}': register map is not valid TOML" in err


@pytest.mark.parametrize(("old", "new", "key"), [
    ('solver = "auto"', 'solver = "GUROBI"', "plan.solver = 'GUROBI'"),
    ('solver = "auto"', 'solver = "auto"\nsolver_options = {bogus_option = 3}',
     "HiGHS rejected option bogus_option"),
    ("[plan]", "[control]\ncycle_s = 45\n\n[plan]", "control.cycle_s = 45 s cannot feed"),
])
def test_check_config_refuses_what_would_fail_in_service(tmp_path, capsys, old, new, key):
    bad = tmp_path / "site.toml"
    text = SUZHOU.read_text()
    assert old in text
    bad.write_text(text.replace(old, new, 1))
    code, out, err = run(capsys, "check-config", str(bad))
    assert code == EXIT_CONFIG and out == ""
    assert key in err


def test_check_config_warns_on_a_power_in_w_and_an_energy_in_mwh(tmp_path, capsys):
    slip = tmp_path / "site.toml"
    text = SUZHOU.read_text()
    assert "energy_kwh = 15550.0" in text
    slip.write_text(text.replace("energy_kwh = 15550.0", "energy_kwh = 15.55"))
    code, out, err = run(capsys, "check-config", str(slip))
    assert code == 0 and json.loads(out)["battery"]["energy_kwh"] == 15.55
    assert "battery.charge_max_kw = 3000 kW over battery.energy_kwh = 15.55 kWh is 193 C" in err
    code, _, err = run(capsys, "check-config", str(SUZHOU))
    assert code == 0 and "warning" not in err


def test_run_refuses_a_cycle_the_watchdog_cannot_wait_for(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WATCHDOG_USEC", "8000000")  # 8 s; the Suzhou cycle is 5 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    code, _, err = run(capsys, "run", "--config", str(SUZHOU))
    assert code == EXIT_CONFIG
    assert "control.cycle_s = 5 s cannot feed the systemd watchdog of 8 s" in err


def test_run_on_a_store_that_is_not_a_database_exits_78(tmp_path):
    store = tmp_path / "history.sqlite3"
    store.write_bytes(b"not a database, " * 512)
    site = tmp_path / "site.toml"
    site.write_text(SUZHOU.read_text().replace("[plan]", f'[store]\npath = "{store}"\n\n[plan]', 1))
    proc = subprocess.run([sys.executable, "-m", "dispatch", "run", "--config", str(site)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    assert "file is not a database" in proc.stderr
    assert store.read_bytes() == b"not a database, " * 512  # left as it was
