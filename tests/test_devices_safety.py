"""Writer safety against the simulator: limits whatever the request, re-arming, default mode."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.config import DeviceSection
from dispatch.devices.client import DeviceClient
from dispatch.types import DeviceError, Setpoints
from sim.server import PlantServer, start_server


def _client(ps: PlantServer, **kw: object) -> DeviceClient:
    data: dict[str, object] = dict(name="bess", register_map=ps.rmap.name, port=ps.port,
                                   timeout_s=0.3, retries=0, min_write_interval_s=0.0,
                                   deadband_kw=0.0)  # fmt: skip
    data.update(kw)
    return DeviceClient(DeviceSection.model_validate(data))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=st.floats(-1e4, 1e4, allow_nan=False), cap=st.sampled_from([None, 50.0]))
def test_written_power_never_exceeds_device_or_configured_limits(
    p: float, cap: float | None
) -> None:
    async def run() -> None:
        ps = await start_server("huawei_sun2000_luna")
        ps.put("p_charge_max_kw", 80.0)  # device-reported limits
        ps.put("p_discharge_max_kw", 60.0)
        c = _client(ps, charge_max_kw=cap, discharge_max_kw=cap)
        try:
            out = await c.write(Setpoints(p, "any"), 0.0)
            window = ps.window()
            assert window is not None
            lo = -min(80.0, cap or math.inf)
            hi = min(60.0, cap or math.inf)
            assert lo - 1e-3 <= window[0] == window[1] <= hi + 1e-3
            assert out.p_batt_kw == pytest.approx(window[0], abs=1e-3)
            assert out.clamped == (not lo <= p <= hi)
        finally:
            c.close()
            await ps.stop()

    asyncio.run(run())


def test_non_finite_setpoint_is_refused_without_writing() -> None:
    async def run() -> None:
        ps = await start_server("sunspec")
        c = _client(ps, charge_max_kw=100.0, discharge_max_kw=100.0)
        try:
            for bad in (math.nan, math.inf):
                with pytest.raises(DeviceError, match="not finite"):
                    await c.write(Setpoints(bad, "bad"), 1000.0 * (bad == math.inf))
            assert ps.get("storctl_mod") == 0
        finally:
            c.close()
            await ps.stop()

    asyncio.run(run())


def test_rearming_holds_the_forced_mode_and_default_mode_releases_it() -> None:
    async def run() -> None:
        ps = await start_server("sunspec", speed=200.0)
        c = _client(ps, charge_max_kw=100.0, discharge_max_kw=100.0, deadband_kw=1.0,
                    revert_timeout_s=20.0, min_write_interval_s=2.0)  # fmt: skip
        try:
            actions = []
            for _ in range(10):  # about 60 plant seconds, three revert periods
                out = await c.write(Setpoints(30.0, "hold"), ps.plant_time_s)
                actions.append(out.action)
                assert ps.window() == pytest.approx((30.0, 30.0))
                await asyncio.sleep(0.03)
            assert actions[0] == "written" and "rearmed" in actions and "deadband" in actions
            out = await c.write(Setpoints(0.0, "shutdown", default_mode=True), ps.plant_time_s)
            assert out.action == "default_mode"
            assert ps.window() is None and ps.get("storctl_mod") == 0
        finally:
            c.close()
            await ps.stop()

    asyncio.run(run())


def test_revert_timeout_below_register_resolution_is_refused() -> None:
    async def run() -> None:
        ps = await start_server("huawei_sun2000_luna")  # the period register counts minutes
        c = _client(ps)
        try:
            with pytest.raises(DeviceError, match="rounds to 0"):
                await c.write(Setpoints(20.0, "plan", revert_timeout_s=20.0), 0.0)
            assert ps.window() is None and ps.get("forcible_command") == 0
            out = await c.write(Setpoints(20.0, "plan", revert_timeout_s=120.0), 100.0)
            assert out.action == "written" and ps.get("revert_timeout_s") == 120.0
        finally:
            c.close()
            await ps.stop()

    asyncio.run(run())
