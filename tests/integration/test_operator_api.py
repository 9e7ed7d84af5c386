"""Operator writes over real HTTP to the running daemon, which drives the simulator over
Modbus TCP (clock 240x): a manual setpoint reaches the plant, expires by itself and control
returns to the plan; a pause hands the battery back; refused writes change nothing; every
write is an event."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dispatch.store import Store
from tests.integration.conftest import SPEED, Run, run_daemon

pytestmark = pytest.mark.slow
TOKEN = "integration-token-0123456789abcdef"
WHO = {"who": "shift lead", "why": "test of the write path"}


def real_s(plant_minutes: float) -> float:
    return plant_minutes * 60.0 / SPEED


def test_manual_setpoint_expires_back_to_the_plan_and_pause_hands_back(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)

    async def post(run: Run, path: str, doc: dict, token: str = TOKEN) -> tuple[int, dict]:
        return await asyncio.to_thread(run.post, path, doc, token)

    async def scenario(run: Run) -> None:
        await run.watch(1.0)
        ex = run.extra
        ex["auto_reason"] = run.daemon.last_cycle.setpoints.reason
        manual = {"mode": "manual", "p_batt_kw": 60.0, "minutes": 4, **WHO}
        ex["no_token"] = await post(run, "/api/v1/mode", manual, token="x" * 20)
        ex["too_big"] = await post(run, "/api/v1/mode", manual | {"p_batt_kw": 150.0})
        ex["manual"] = await post(run, "/api/v1/mode", manual)
        await run.watch(real_s(2))
        c = run.daemon.last_cycle
        ex["during"] = (c.setpoints.reason, c.written_kw, run.sim.battery.p_batt_kw)
        await run.watch(real_s(3))  # past the expiry
        ex["after"] = run.daemon.last_cycle.setpoints.reason
        ex["pause"] = await post(run, "/api/v1/mode", {"mode": "pause", "minutes": 5, **WHO})
        await run.watch(real_s(1))
        c = run.daemon.last_cycle
        ex["paused"] = (c.setpoints.default_mode, c.actions, c.setpoints.reason)
        ex["status"] = await run.fetch_json("/api/v1/status")

    run = run_daemon(tmp_path, scenario, http={"token_file": str(tmp_path / "token")})
    ex = run.extra
    assert ex["auto_reason"].startswith("plan slot")
    assert ex["no_token"][0] == 401
    assert ex["too_big"][0] == 422 and "beyond the battery's limits" in ex["too_big"][1]["detail"]
    assert ex["manual"][0] == 200 and ex["manual"][1]["override"]["value"] == 60.0
    reason, written, plant_kw = ex["during"]
    assert reason.startswith("operator: manual 60.0 kW")
    assert written == pytest.approx(60.0) and plant_kw == pytest.approx(60.0, abs=2.0)
    assert ex["after"].startswith("plan slot")  # expired by itself, back to the plan
    assert ex["pause"][0] == 200
    default_mode, actions, reason = ex["paused"]
    assert default_mode and actions == {"bess": "default_mode"}
    assert reason.startswith("operator: paused")
    assert [o["kind"] for o in ex["status"]["overrides"]] == ["mode"]
    with Store(tmp_path / "dispatch.sqlite3") as store:
        kinds = [e["kind"] for e in store.rows("events") if e["kind"].startswith("operator")]
        setpoints = store.rows("setpoints")
    assert kinds == ["operator_refused", "operator_mode", "operator_expired", "operator_mode"]
    assert any(r["reason"].startswith("operator: manual") for r in setpoints)
    assert all(abs(r["p_batt_kw"]) <= 100.0 + 1e-6 for r in setpoints)
