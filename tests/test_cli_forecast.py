"""``dispatch forecast`` end to end: its CSV feeds ``dispatch plan``; JSON on stdout is clean."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dispatch.__main__ import EXIT_INPUT, main
from tests.conftest import CONFIGS

SUZHOU = str(CONFIGS / "suzhou-factory.toml")


def test_forecast_feeds_plan_and_prints_clean_json(tmp_path):
    history = pd.date_range(
        "2026-06-17T00:00Z", "2026-06-30T16:00Z", freq="15min", inclusive="left"
    )
    local_hour = (history.hour + 8) % 24
    load = 3000 + 2000 * ((local_hour >= 8) & (local_hour < 20))
    pd.DataFrame({"time": [t.isoformat() for t in history], "p_load_kw": load}).to_csv(
        tmp_path / "history.csv", index=False
    )
    fc = subprocess.run(
        [sys.executable, "-m", "dispatch", "forecast", "--config", SUZHOU, "--start",
         "2026-07-01T00:00+08:00", "--hours", "24", "--load-history",
         str(tmp_path / "history.csv"), "--out", str(tmp_path / "fc.csv")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert fc.returncode == 0, fc.stderr
    assert json.loads(fc.stdout)["slots"] == 96
    frame = pd.read_csv(tmp_path / "fc.csv")
    assert frame["time"].iloc[0] == "2026-06-30T16:00:00+00:00"
    # the weekly-periodic history is forecast as itself; PV is zero at night and the arrays add up
    hour = (pd.to_datetime(frame["time"]).dt.hour + 8) % 24
    np.testing.assert_allclose(
        frame["p_load_kw"], 3000 + 2000 * ((hour >= 8) & (hour < 20)), rtol=1e-6
    )
    arrays = frame["p_pv_roof-south_kw"] + frame["p_pv_roof-east-west_kw"]
    np.testing.assert_allclose(frame["p_pv_kw"], arrays, atol=1e-6)
    assert frame.loc[hour == 0, "p_pv_kw"].max() == 0.0
    assert frame["p_pv_kw"].max() > 3000
    plan = subprocess.run(
        [sys.executable, "-m", "dispatch", "plan", "--config", SUZHOU, "--inputs",
         str(tmp_path / "fc.csv"), "--out", str(tmp_path / "plan.csv")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["status"] == "optimal"


def test_forecast_start_without_offset_is_an_error(tmp_path, capsys):
    code = main(["forecast", "--config", SUZHOU, "--start", "2026-07-01T00:00", "--load-kw",
                 "100", "--out", str(tmp_path / "f.csv")])  # fmt: skip
    assert code == EXIT_INPUT
    assert "needs a UTC offset" in capsys.readouterr().err


def test_forecast_without_load_source_is_an_error(tmp_path, capsys):
    code = main(["forecast", "--config", SUZHOU, "--start", "2026-07-01T00:00+08:00",
                 "--out", str(tmp_path / "f.csv")])  # fmt: skip
    assert code == EXIT_INPUT
    assert "load history or a constant load" in capsys.readouterr().err


def test_calibrate_pv_recovers_scale_and_clip_and_forecast_applies_it(tmp_path, capsys):
    from dispatch.config import load_config
    from dispatch.forecast import pv, pv_weather

    config = load_config(SUZHOU)
    index = pd.date_range("2026-06-01T00:00Z", periods=14 * 96, freq="15min")
    model = pv.pv_ac_kw(config.site, config.pv, pv_weather.clearsky_weather(config.site, index))
    measured = (0.87 * model["p_pv_kw"]).clip(upper=3500.0)
    pd.DataFrame({"time": [t.isoformat() for t in index], "p_pv_kw": measured}).to_csv(
        tmp_path / "pv.csv", index=False
    )
    assert main(["calibrate-pv", "--config", SUZHOU, "--measured", str(tmp_path / "pv.csv"),
                 "--out", str(tmp_path / "fit.json")]) == 0  # fmt: skip
    fit = json.loads(capsys.readouterr().out)
    assert fit["scale"] == pytest.approx(0.87, rel=1e-3)
    assert fit["clip_kw"] == pytest.approx(3500.0, rel=1e-3)
    assert main(["forecast", "--config", SUZHOU, "--start", "2026-06-20T00:00+08:00",
                 "--load-kw", "100", "--pv-calibration", str(tmp_path / "fit.json"),
                 "--out", str(tmp_path / "fc.csv")]) == 0  # fmt: skip
    frame = pd.read_csv(tmp_path / "fc.csv")
    assert frame["p_pv_kw"].max() == pytest.approx(3500.0, rel=1e-3)
    arrays = frame["p_pv_roof-south_kw"] + frame["p_pv_roof-east-west_kw"]
    np.testing.assert_allclose(frame["p_pv_kw"], arrays, atol=1e-3)
