"""``dispatch import-history`` (metered history into the store, with the checks of ``plan``)
and ``dispatch plan --stored`` (a stored daemon plan solved again from its stored inputs)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dispatch.__main__ import main
from dispatch.config import load_config
from dispatch.daemon import Clock, Daemon, Notifier
from dispatch.daemon.history import SlotHistory
from dispatch.store import Store

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 6, 1, 4, tzinfo=dt.UTC)


def site_file(tmp_path: Path) -> Path:
    """The Suzhou example with its store in ``tmp_path`` and no status server."""
    text = (ROOT / "configs" / "suzhou-factory.toml").read_text(encoding="utf-8")
    path = tmp_path / "site.toml"
    path.write_text(f"{text}\n[store]\npath = \"{tmp_path / 'h.sqlite3'}\"\n"
                    "[http]\nenabled = false\n", encoding="utf-8")  # fmt: skip
    return path


def history_csv(tmp_path: Path, days: float = 2.0, step: str = "15min", **cols: object) -> Path:
    index = pd.date_range(T0 - pd.Timedelta(days=days), T0, freq=step, inclusive="left")
    frame = pd.DataFrame({"time": [t.isoformat() for t in index],
                          "p_load_kw": 3000.0 + 500.0 * np.sin(np.arange(len(index)) / 10),
                          "p_pv_kw": 100.0, **cols})  # fmt: skip
    path = tmp_path / "history.csv"
    frame.to_csv(path, index=False)
    return path


def test_import_history_stores_marked_readings_that_feed_the_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = site_file(tmp_path)
    assert main(["import-history", "--config", str(cfg), "--csv",
                 str(history_csv(tmp_path))]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["rows"] == 192 and out["days"] == pytest.approx(2.0 - 1 / 96, abs=0.01)
    with Store(tmp_path / "h.sqlite3") as s:
        rows = s.rows("measurements")
        assert len(rows) == 192
    marks = {"import_history": 1.0, "grid_estimated": 1.0}  # no p_grid_kw: load - PV
    assert all(json.loads(r["values_json"]) == marks for r in rows)
    assert all(r["p_batt_kw"] is None and r["soc_frac"] is None for r in rows)
    assert rows[0]["p_grid_kw"] == pytest.approx(rows[0]["p_load_kw"] - 100.0)
    h = SlotHistory.from_rows(rows, pd.Timedelta(minutes=15), pd.Timedelta(days=5))
    assert len(h.series("p_load_kw")) == 192 and (h.series("p_pv_kw") == 100.0).all()
    # the daemon's first forecast comes from it: no warm-up
    d = Daemon(load_config(cfg), Clock(T0, 1.0), notifier=Notifier(""))
    asyncio.run(d.plan_job())
    assert d.plan_state is not None and d.plan_state.warmup is None
    assert "load: history 2.0 d" in d.plan_state.forecast_source
    d.worker.shutdown()
    d.store_pool.shutdown()
    d.store.close()


@pytest.mark.parametrize("change, says", [
    ({"p_load_kw": 3.0e6}, "is it in W?"),
    ({"p_pv_kw": "n/a"}, "not a finite number"),
    ({"p_batt_kw": 0.0}, "unknown column"),
])  # fmt: skip
def test_import_history_refuses_bad_csvs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         change: dict, says: str) -> None:  # fmt: skip
    cfg = site_file(tmp_path)
    assert main(["import-history", "--config", str(cfg), "--csv",
                 str(history_csv(tmp_path, **change))]) == 1  # fmt: skip
    assert says in capsys.readouterr().err
    with Store(tmp_path / "h.sqlite3") as s:
        assert s.count("measurements") == 0  # nothing written


def test_import_history_refuses_a_gap_and_an_hourly_file_for_15_min_plans(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = site_file(tmp_path)
    path = history_csv(tmp_path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:50] + lines[52:]) + "\n")
    assert main(["import-history", "--config", str(cfg), "--csv", str(path)]) == 1
    assert "step is not fixed" in capsys.readouterr().err
    assert main(["import-history", "--config", str(cfg), "--csv",
                 str(history_csv(tmp_path, step="1h"))]) == 1  # fmt: skip
    assert "must divide plan.step_min" in capsys.readouterr().err


def test_import_history_never_mixes_with_the_daemons_own_readings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = site_file(tmp_path)
    path = str(history_csv(tmp_path))
    assert main(["import-history", "--config", str(cfg), "--csv", path]) == 0
    capsys.readouterr()
    assert main(["import-history", "--config", str(cfg), "--csv", path]) == 1
    assert "already holds readings" in capsys.readouterr().err
    with Store(tmp_path / "h.sqlite3") as s:
        assert s.count("measurements") == 192


def test_plan_stored_solves_a_daemon_plan_again_from_its_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = site_file(tmp_path)
    assert main(["import-history", "--config", str(cfg), "--csv",
                 str(history_csv(tmp_path))]) == 0  # fmt: skip
    d = Daemon(load_config(cfg), Clock(T0, 1.0), notifier=Notifier(""))
    asyncio.run(d.plan_job())
    ps = d.plan_state
    assert ps is not None and ps.plan_id is not None
    d.worker.shutdown()
    d.store_pool.shutdown()
    d.store.close()
    capsys.readouterr()
    out = tmp_path / "again.csv"
    assert main(["plan", "--config", str(cfg), "--stored", str(ps.plan_id), "--out",
                 str(out)]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["max_battery_diff_kw"] < 1e-6 and summary["status"] == "optimal"
    again = pd.read_csv(out)
    np.testing.assert_allclose(again["p_batt_kw"], ps.plan.frame["p_batt_kw"], atol=1e-6)
    assert main(["plan", "--config", str(cfg), "--stored", "99", "--out", str(out)]) == 1
    assert "no plan with id 99" in capsys.readouterr().err
