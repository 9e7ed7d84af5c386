"""A safe first start and restart, the real daemon against the simulator over Modbus TCP:
the first plan after a (re)start comes from the measured SoC, and a fresh store with no load
history never discharges to hold a 0 kW peak target (it runs in warm-up and says so)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dispatch.config import SiteConfig, parse_config
from dispatch.daemon import Clock, Daemon, Notifier
from dispatch.daemon.page import html_page, status_doc
from dispatch.store import Store
from sim.server import PlantServer, default_physics, start_server
from tests.integration.conftest import SPEED, T0, site_config

pytestmark = pytest.mark.slow


def config(port: int, db: Path, **changes: dict[str, Any]) -> SiteConfig:
    data = site_config(port, db).model_dump()
    for section, values in changes.items():
        data[section] = {**data.get(section, {}), **values} if values else {}
    return parse_config(data, "tests.integration.start")


async def run_for(config: SiteConfig, sim: PlantServer, seconds: float) -> dict[str, Any]:
    """Run a daemon on ``config`` for ``seconds`` real seconds; what it published."""
    daemon = Daemon(config, Clock(sim.battery.now, SPEED), notifier=Notifier(""))
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    seen: dict[str, Any] = {}
    try:
        while daemon.plan_state is None and not task.done():
            await asyncio.sleep(0.005)
        seen["first_plan"] = daemon.plan_state
        seen["soc_at_start"] = sim.battery.soc_frac  # the plant's true SoC as the plan appears
        await asyncio.sleep(seconds)
        seen["status"] = json.loads(json.dumps(status_doc(daemon), default=str))
        seen["page"] = html_page(daemon)
        seen["metrics"] = {(s.name, tuple(s.labels.items())): s.value
                           for f in text_string_to_metric_families(daemon.metrics.render()
                                                                   .decode())
                           for s in f.samples}  # fmt: skip
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    return seen


def test_a_start_and_a_restart_plan_from_the_measured_soc(tmp_path: Path) -> None:
    db = tmp_path / "dispatch.sqlite3"

    async def main() -> tuple[dict[str, Any], dict[str, Any], float]:
        sim = await start_server("sunspec", speed=SPEED,
                                 battery=default_physics(start=T0, soc_frac=0.30))  # fmt: skip
        try:
            cfg = config(sim.port, db)  # battery.soc_initial_frac stays at its 0.50
            first = await run_for(cfg, sim, 1.5)
            moved = sim.battery.soc_frac
            second = await run_for(cfg, sim, 0.5)
        finally:
            await sim.stop()
        return first, second, moved

    first, second, moved = asyncio.run(main())
    for run in (first, second):
        plan = run["first_plan"]
        assert plan.inputs.soc_frac == pytest.approx(run["soc_at_start"], abs=0.005)
        # the plan's first slot ends near the measured SoC, not 0.5 (5 min at <= 100 kW of
        # a 200 kWh battery moves it by at most 0.042)
        assert abs(plan.plan.frame["soc_frac"].iloc[0] - run["soc_at_start"]) < 0.045
    assert first["first_plan"].inputs.soc_frac == pytest.approx(0.30, abs=0.005)
    assert abs(moved - 0.30) > 0.01  # the battery moved during the first run
    with Store(db) as s:
        stored = s.plan_inputs(second["first_plan"].plan_id)
    assert stored is not None and stored["soc_frac"] == pytest.approx(second["soc_at_start"],
                                                                      abs=0.005)  # fmt: skip


def test_a_fresh_store_never_discharges_to_hold_a_zero_peak_target(tmp_path: Path) -> None:
    db = tmp_path / "dispatch.sqlite3"

    async def main() -> tuple[dict[str, Any], list[float]]:
        sim = await start_server("sunspec", speed=SPEED,
                                 battery=default_physics(start=T0, soc_frac=0.5))  # fmt: skip
        try:
            # a demand charge, and the load forecast from history, of which there is none yet
            cfg = config(sim.port, db, tariff={"demand_charge_per_kw_month": 30.0},
                         forecast={})  # fmt: skip
            seen = await run_for(cfg, sim, 3.0)
            soc = [sim.battery.soc_frac]
        finally:
            await sim.stop()
        return seen, soc

    seen, soc = asyncio.run(main())
    plan = seen["first_plan"]
    assert plan.warmup is not None and "no load history yet" in plan.warmup
    assert "load: constant 80.0 kW" in plan.forecast_source  # the load measured, not 0 kW
    with Store(db) as s:
        setpoints = s.rows("setpoints")
    targets = [r["peak_target_kw"] for r in setpoints]
    assert len(setpoints) > 20
    with Store(db) as s:
        peak = s.rows("demand_peak")[0]["peak_import_kw"]  # the slot means measured
    # never 0 kW: no target while nothing is measured, then the month's measured peak
    assert targets[0] is None and all(t is None or 1.0 < t <= peak + 1e-9 for t in targets)
    guard = [r for r in setpoints if "peak guard" in r["reason"]]
    assert all(r["peak_target_kw"] is not None for r in guard)
    assert abs(soc[0] - 0.5) < 0.1  # no full-power discharge every cycle
    assert seen["status"]["plan"]["warmup"].startswith("warm-up:")
    assert "warm-up" in seen["page"]
    # the page reads as the site does: local time, SoC in whole percent
    page = seen["page"]  # a UTC site: the zone named, minutes, no ISO offset or microseconds
    assert re.search(r"<th>time</th><td>\d{4}-\d\d-\d\d \d\d:\d\d \(UTC\)</td>", page)
    assert re.search(r"<th>SoC</th><td>\d{1,3} %</td>", page)
    assert seen["metrics"][("dispatch_warmup", ())] == 1.0
