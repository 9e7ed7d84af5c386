"""Three simulated converters (150 kW each, SunSpec over TCP) share one 300 kW site battery
setpoint in the daemon at 240x; one trips (its running state reads "fault"): the site does
not go to its safe state, the tripped one is handed back to its own mode, and the two others
take its share within their own 150 kW limits. Once it runs again all three share again.

The plan charges in the valley (05:40-06:00; about 150 kW): a third each by configured
power; with one tripped, half each on the two others, whose parts add up to the site
setpoint; the toy tests of ``tests/test_sharing.py`` cover the parts at their limits.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dispatch.config import parse_config
from dispatch.daemon import Clock, Daemon, Notifier
from dispatch.store import Store
from sim.server import PlantServer, default_physics, start_server
from tests.integration.conftest import SPEED, T0, site_config

pytestmark = pytest.mark.slow
NAMES = ("pcs-a", "pcs-b", "pcs-c")
UNIT_KW = 150.0
SITE_KW = 300.0


def three_converters(ports: list[int], db: Path) -> dict:
    """The matrix's site with a 300 kW / 600 kWh battery behind three 150 kW converters."""
    doc = site_config(ports[0], db).model_dump(mode="json", exclude_unset=True)
    doc["battery"].update(energy_kwh=600.0, charge_max_kw=SITE_KW, discharge_max_kw=SITE_KW)
    one = doc["devices"][0]
    doc["devices"] = [one | {"name": n, "port": p, "charge_max_kw": UNIT_KW,
                             "discharge_max_kw": UNIT_KW} for n, p in zip(NAMES, ports,
                                                                         strict=True)]
    return doc


def setpoints_kw(sims: list[PlantServer]) -> list[float | None]:
    """Each converter's battery power window's value as its registers command it (kW)."""
    return [None if (w := s.window()) is None else w[0] for s in sims]


def test_a_tripped_converter_is_handed_back_and_the_others_take_its_share(
    tmp_path: Path,
) -> None:
    async def main() -> dict:
        physics = [default_physics(start=T0, soc_frac=0.5, charge_max_kw=UNIT_KW,
                                   discharge_max_kw=UNIT_KW) for _ in NAMES]
        sims = [await start_server("sunspec", speed=SPEED, battery=p) for p in physics]
        db = tmp_path / "dispatch.sqlite3"
        config = parse_config(three_converters([s.port for s in sims], db), "test")
        daemon = Daemon(config, Clock(T0, SPEED), notifier=Notifier(None))
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        seen: dict = {"max_kw": 0.0}

        async def until(cond, seconds: float) -> bool:
            for _ in range(round(seconds / 0.02)):
                await asyncio.sleep(0.02)
                seen["max_kw"] = max([seen["max_kw"], *(abs(s.battery.p_batt_kw) for s in sims)])
                if daemon.last_cycle is not None and cond():
                    return True
            return False

        def site_kw() -> float:
            return daemon.last_cycle.setpoints.p_batt_kw

        def all_three() -> bool:
            kw = setpoints_kw(sims)
            return None not in kw and kw == pytest.approx([site_kw() / 3] * 3, abs=1.0)

        def two() -> bool:
            a, b, c = setpoints_kw(sims)
            return b is None and None not in (a, c) and a + c == pytest.approx(site_kw(), abs=1.0)

        try:
            seen["shared"] = await until(all_three, 3.0) and setpoints_kw(sims)
            sims[1].faults.state_fault = True  # pcs-b trips
            seen["carried"] = await until(two, 2.0)
            await until(lambda: False, 0.3)  # a few cycles like this
            seen["still"] = two()
            seen["during"] = (setpoints_kw(sims), daemon.in_safe_state,
                              daemon.last_cycle.setpoints, dict(daemon.last_cycle.actions),
                              daemon.failures.failing())
            sims[1].faults.state_fault = False
            seen["back"] = await until(all_three, 3.0) and setpoints_kw(sims)
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
            for s in sims:
                await s.stop()
        return seen

    seen = asyncio.run(main())
    assert seen["shared"], seen  # a third each, by configured power
    assert seen["carried"] and seen["still"], seen
    kw, safe, sp, actions, failing = seen["during"]
    assert not safe and sp.reason.startswith("plan slot") and sp.p_batt_kw < -50.0, sp
    assert kw[1] is None and actions["pcs-b"] == "default_mode"  # handed back
    assert kw[0] == pytest.approx(kw[2], abs=1.0)  # half each of the site setpoint
    assert "share" in failing
    assert seen["back"], seen
    assert seen["max_kw"] <= UNIT_KW + 1e-6  # no converter beyond its own limit
    with Store(tmp_path / "dispatch.sqlite3") as store:
        kinds = {e["kind"] for e in store.rows("events")}
    assert {"converter_faulty", "converters_shared"} <= kinds, sorted(kinds)
    assert "safe_state" not in kinds
