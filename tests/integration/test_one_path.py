"""One path: ``dispatch run`` as a real process against ``dispatch sim-device`` over Modbus TCP
for a simulated day, from history seeded with ``dispatch import-history``; then the replay
of that day from the inputs it stored: every plan solved again (``reproduce.replan_all``)
agrees with the stored one slot by slot, and every setpoint decided again
(``reproduce.redecide``) with the stored setpoint."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dispatch.config import load_config
from dispatch.daemon.reproduce import redecide, replan_all
from dispatch.plan_io import write_frame
from dispatch.store import Store
from sim.loadprofile import demo_load_kw
from tests.integration.conftest import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
START = dt.datetime(2026, 6, 1, 16, 0, tzinfo=dt.UTC)  # midnight in Suzhou
SPEED = 1200.0  # a simulated day in 72 s
DAY_S = 24 * 3600.0

SITE = """
[site]
latitude_deg = 31.3
longitude_deg = 120.6
timezone = "Asia/Shanghai"
[grid]
import_max_kw = 400.0
export_allowed = false
[battery]
energy_kwh = 300.0
charge_max_kw = 100.0
discharge_max_kw = 100.0
[[pv]]
name = "roof"
dc_kwp = 150.0
ac_kw = 130.0
[tariff]
demand_charge_per_kw_month = 40.0
bands = {{ valley = 0.3, flat = 0.6, peak = 1.0 }}
rules = [{{ band = "valley", start = "00:00", end = "08:00" }},
         {{ band = "flat", start = "08:00", end = "17:00" }},
         {{ band = "peak", start = "17:00", end = "22:00" }},
         {{ band = "valley", start = "22:00", end = "24:00" }}]
[carbon]
grid_ci_g_per_kwh = 570.0
[plan]
step_min = 15
horizon_h = 12
terminal_soc = "free"
peak_risk_quantile = 0.9
[[devices]]
name = "bess"
register_map = "sunspec"
port = {port}
timeout_s = 0.3
retries = 0
min_write_interval_s = 0.0
deadband_kw = 0.0
revert_timeout_s = 600.0
charge_max_kw = 100.0
discharge_max_kw = 100.0
[control]
cycle_s = 60.0
snapshot_max_age_s = 120.0
[store]
path = "{db}"
[http]
port = 0
"""


def dispatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "dispatch", *args]


def plan_span(db: Path) -> pd.Timedelta:
    """From the first stored plan's start to the last's (0 while there is none)."""
    if not db.exists():
        return pd.Timedelta(0)
    with Store(db) as store:
        heads = store.rows("plans")
    if not heads:
        return pd.Timedelta(0)
    return pd.Timestamp(heads[-1]["start_ms"], unit="ms") - pd.Timestamp(
        heads[0]["start_ms"], unit="ms"
    )


def test_the_daemon_and_its_replay_from_stored_inputs_agree(tmp_path: Path) -> None:
    port, db = free_port(), tmp_path / "dispatch.sqlite3"
    cfg_path = tmp_path / "site.toml"
    cfg_path.write_text(SITE.format(port=port, db=db))
    config = load_config(cfg_path)
    # a week of the demo load before the start, as a plant would export it from its meters
    week = demo_load_kw(config, START - dt.timedelta(days=7), days=7)
    write_frame(week.rename("p_load_kw").to_frame(), tmp_path / "history.csv")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(dispatch("import-history", "--config", str(cfg_path), "--csv",
                                   str(tmp_path / "history.csv")),
                          cwd=ROOT, env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    start = START.isoformat()
    sim = subprocess.Popen(dispatch("sim-device", "--config", str(cfg_path), "--port", str(port),
                                    "--speed", str(SPEED), "--start", start),
                           cwd=ROOT, env=env, stdout=subprocess.DEVNULL)  # fmt: skip
    time.sleep(1.0)  # the simulator binds (a few plant minutes pass: the daemon reads them)
    run = subprocess.Popen(dispatch("run", "--config", str(cfg_path), "--clock-speed",
                                    str(SPEED), "--clock-start", start),
                           cwd=ROOT, env=env, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + DAY_S / SPEED + 90.0  # a loaded machine starts slowly
        while time.monotonic() < deadline and plan_span(db) < pd.Timedelta(hours=23, minutes=30):
            assert run.poll() is None, run.stderr.read().decode() if run.stderr else ""
            time.sleep(1.0)
        assert run.poll() is None, run.stderr.read().decode() if run.stderr else ""
        run.send_signal(signal.SIGTERM)
        assert run.wait(90) == 0  # a clean stop; slow on a loaded machine
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(10)
    with Store(db) as store:
        plans = list(replan_all(config, store))
        heads = store.rows("plans")
        again = {p.plan_id: p.again for p in plans}
        decided = list(redecide(config, store, again))
    span = (pd.Timestamp(heads[-1]["start_ms"], unit="ms") -
            pd.Timestamp(heads[0]["start_ms"], unit="ms"))  # fmt: skip
    assert span >= pd.Timedelta(hours=23), span  # a simulated day of plans
    assert len(plans) >= 90 and all(p.stored.status == "optimal" for p in plans)
    for p in plans:
        stored = p.stored.frame["p_batt_kw"].to_numpy()
        np.testing.assert_allclose(p.again.frame["p_batt_kw"].to_numpy(), stored, rtol=1e-6,
                                   atol=1e-6, err_msg=f"plan {p.plan_id}")  # fmt: skip
    assert len(decided) > 1000
    for row, sp in decided:
        assert sp.p_batt_kw == pytest.approx(row["p_batt_kw"], rel=1e-6, abs=1e-6), row
        assert sp.reason == row["reason"]
    # the forecasts came from the imported history (no warm-up), and the battery worked
    with Store(db) as store:
        sources = [f["source"] for f in store.rows("forecasts")]
    assert all("load: history" in src for src in sources), sources[0]
    assert max(abs(row["p_batt_kw"]) for row, _ in decided) > 50.0
