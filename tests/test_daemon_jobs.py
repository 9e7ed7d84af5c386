"""Daemon job boundaries and the forecast fallback, without a plant (no devices)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import pandas as pd
import pytest

from dispatch.config import SiteConfig, load_config, parse_config
from dispatch.daemon import Clock, Daemon, Notifier
from dispatch.daemon.planning import forecast_slots, make_forecast
from dispatch.daemon.state import ForecastState
from dispatch.store import Store

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 6, 1, 4, tzinfo=dt.UTC)


def config(tmp_path: Path, **forecast: float) -> SiteConfig:
    data = load_config(ROOT / "configs" / "suzhou-factory.toml").model_dump()
    data["store"] = {"path": str(tmp_path / "h.sqlite3")}
    data["http"] = {"enabled": False}
    data["forecast"] = forecast
    data["carbon"].pop("certificates", None)
    return parse_config(data)


def plan_once(d: Daemon) -> None:
    """Restore the daemon's state, then run its plan job once (it forecasts first)."""
    asyncio.run(d.plan_job())


def daemon(tmp_path: Path, **forecast: float) -> Daemon:
    return Daemon(config(tmp_path, **forecast), Clock(T0, 1.0), notifier=Notifier(""))


def forecast_now(d: Daemon) -> ForecastState:
    """A forecast at T0 from what the daemon has (no devices, nothing measured)."""
    st = asyncio.run(d.prepare())
    empty = pd.Series(dtype=float)
    return make_forecast(d.services, st, T0, empty, empty)


def test_forecast_without_history_is_a_warmup_and_says_so(tmp_path: Path) -> None:
    d = daemon(tmp_path)
    fs = forecast_now(d)
    assert fs.is_fallback and fs.warmup == "warm-up: no measured load yet"
    assert "load: constant 0.0 kW" in fs.source
    assert len(fs.frame) == forecast_slots(d.services) and (fs.frame["p_pv_kw"] >= 0).all()
    d.store.close()


def test_forecast_from_a_constant_load(tmp_path: Path) -> None:
    d = daemon(tmp_path, load_kw=1234.0)
    fs = forecast_now(d)
    assert not fs.is_fallback and (fs.frame["p_load_kw"] == 1234.0).all()
    d.store.close()


def test_a_failing_job_is_logged_once_stored_once_and_recovers(tmp_path: Path) -> None:
    d = daemon(tmp_path)
    calls = {"n": 0}

    async def flaky(*_: object) -> None:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise RuntimeError("solver exploded")

    async def run() -> list[bool]:
        return [await d.guarded("plan", flaky) for _ in range(4)]

    assert asyncio.run(run()) == [False, False, False, True]
    d.worker.shutdown()
    d.store_pool.shutdown()
    d.store.close()
    with Store(tmp_path / "h.sqlite3") as s:
        kinds = [e["kind"] for e in s.rows("events")]
    assert kinds == ["plan_failed", "plan_recovered"]
    assert d.metrics.job_errors.labels("plan")._value.get() == 3


def test_the_plan_job_publishes_a_plan_without_devices(tmp_path: Path) -> None:
    d = daemon(tmp_path, load_kw=3000.0)

    plan_once(d)
    ps = d.plan_state
    assert ps is not None and ps.plan.status == "optimal" and ps.plan_id == 1
    assert ps.peak_target_kw is not None  # the site has a demand charge
    assert ps.plan.frame.index[0] == T0
    d.worker.shutdown()
    d.store_pool.shutdown()
    d.store.close()


def test_the_forecast_job_stores_what_it_publishes(tmp_path: Path) -> None:
    d = daemon(tmp_path, load_kw=2500.0)
    plan_once(d)
    fs = d.forecast_state
    assert fs is not None
    d.worker.shutdown()
    d.store_pool.shutdown()
    d.store.close()
    with Store(tmp_path / "h.sqlite3") as s:
        heads = s.rows("forecasts")
        assert [h["source"] for h in heads] == [fs.source] and fs.forecast_id == heads[0]["id"]
        stored = s.load_forecast(heads[0]["id"])
    assert stored.frame.index.equals(fs.frame.index)
    for column in ("p_pv_kw", "p_load_kw"):
        assert stored.frame[column].to_numpy() == pytest.approx(fs.frame[column].to_numpy())
    assert stored.frame["price_import_per_kwh"].notna().all()  # completed with the tariff


@pytest.mark.parametrize("port", [0])
def test_status_server_serves_json_and_html_without_a_plan(tmp_path: Path, port: int) -> None:
    import json
    import urllib.request

    data = config(tmp_path).model_dump()
    data["http"] = {"port": port}
    data["carbon"].pop("certificates", None)
    d = Daemon(parse_config(data), Clock(T0, 1.0), notifier=Notifier(""))
    d.http.start()
    try:
        base = d.http.url
        assert base is not None
        status = json.loads(urllib.request.urlopen(base + "status", timeout=5).read())
        assert status["site"] == "suzhou-factory" and "plan" not in status
        page = urllib.request.urlopen(base, timeout=5).read().decode()
        assert "no plan yet" in page and "<script" not in page
        assert json.loads(urllib.request.urlopen(base + "plan", timeout=5).read()) == {"plan": None}
    finally:
        d.http.stop()
        d.store.close()


def test_jobs_held_back_by_a_wall_clock_jump_are_rescheduled(tmp_path: Path) -> None:
    """APScheduler plans on the wall clock: after a backward jump the next run lies far in
    the future. The stall guard (asyncio timers are monotonic) brings the jobs back."""
    data = config(tmp_path, load_kw=3000.0).model_dump()
    data["control"] = {"cycle_s": 0.2}
    data["carbon"].pop("certificates", None)
    d = Daemon(parse_config(data), Clock(T0, 1.0), notifier=Notifier(""))

    async def run() -> tuple[int, int, bool]:
        stop = asyncio.Event()
        task = asyncio.create_task(d.run(stop))
        while d.cycles_completed < 3:
            await asyncio.sleep(0.05)
        job = d.scheduler.get_job("control")  # type: ignore[union-attr]
        job.modify(next_run_time=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
        d.wall_s = lambda: time.time() - 3600.0  # what APScheduler saw: the clock went back
        await asyncio.sleep(0.3)
        held = d.cycles_completed
        await asyncio.sleep(1.2)  # > STALL_CYCLES x 0.2 s: the guard reschedules
        after = d.cycles_completed
        stop.set()
        await task
        return held, after, True

    held, after, _ = asyncio.run(run())
    assert after > held + 1


def test_a_long_cycle_is_not_taken_for_a_clock_jump(tmp_path: Path) -> None:
    """A slow device holds the control job longer than three cycles: the wall clock kept pace
    with the monotonic one, so nothing is rescheduled (no burst of extra plans)."""
    data = config(tmp_path, load_kw=3000.0).model_dump()
    data["control"] = {"cycle_s": 0.2}
    data["carbon"].pop("certificates", None)
    d = Daemon(parse_config(data), Clock(T0, 1.0), notifier=Notifier(""))

    async def run() -> tuple[bool, bool]:
        stop = asyncio.Event()
        task = asyncio.create_task(d.run(stop))
        while d.cycles_completed < 2:
            await asyncio.sleep(0.05)
        d.last_control_run_s, d.last_control_wall_s = time.monotonic() - 5, time.time() - 5
        long_cycle = d.check_stall()
        d.last_control_run_s, d.last_control_wall_s = time.monotonic() - 5, time.time() + 3595
        jumped = d.check_stall()
        stop.set()
        await task
        return long_cycle, jumped

    assert asyncio.run(run()) == (False, True)


@pytest.mark.filterwarnings("ignore:Solution may be inaccurate")
def test_a_failed_solve_publishes_the_fallback_plan_with_its_reason(tmp_path: Path) -> None:
    data = config(tmp_path, load_kw=3000.0).model_dump()
    data["plan"].update(solver="CLARABEL", solver_options={"max_iter": 1})
    data["carbon"].pop("certificates", None)
    d = Daemon(parse_config(data), Clock(T0, 1.0), notifier=Notifier(""))

    plan_once(d)
    ps = d.plan_state
    assert ps is not None and ps.plan.is_fallback and "solver" in ps.plan.message
    assert d.metrics.plan_status._states[d.metrics.plan_status._value] == "fallback"
    d.worker.shutdown()
    d.store_pool.shutdown()
    d.store.close()


def test_window_cuts_the_forecast_to_the_plan_slots_or_says_it_does_not_cover() -> None:
    from dispatch.daemon.planning import window
    from dispatch.types import Forecast

    index = pd.date_range("2026-07-01", periods=8, freq="15min", tz="UTC")
    columns = {"p_pv_kw": range(8), "p_load_kw": range(10, 18)}
    frame = pd.DataFrame(columns, index=index, dtype=float)
    paths = pd.DataFrame({"1": range(20, 28)}, index=index, dtype=float)
    forecast = Forecast(frame, load_scenarios_kw=paths)
    cut = window(forecast, index[2:6])
    assert cut is not None
    assert cut.frame["p_pv_kw"].tolist() == [2.0, 3.0, 4.0, 5.0]
    assert cut.load_scenarios_kw is not None and cut.load_scenarios_kw.index.equals(index[2:6])
    later = pd.date_range(index[6], periods=4, freq="15min")  # runs past the forecast
    assert window(forecast, later) is None
    earlier = pd.date_range(index[0] - pd.Timedelta(minutes=15), periods=4, freq="15min")
    assert window(forecast, earlier) is None
