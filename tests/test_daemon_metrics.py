"""The daemon's metrics with exact values: fault levels, setpoint tracking, safe state, peak
and target, the plan slot in force, the store's last commit and build info; then one control
cycle of a real daemon (no devices: the safe state) sets them from what it computed."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import platform
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dispatch.config import DeviceSection, load_config, parse_config
from dispatch.daemon import Clock, Daemon, Notifier, cycle, metrics
from dispatch.daemon.metrics import FollowCheck, Metrics, fault_level
from dispatch.daemon.observe import (
    accepted_kw,
    follow_tolerance_kw,
    measured_batt_kw,
    slot_in_force,
)
from dispatch.daemon.state import CycleState
from dispatch.devices.client import DeviceClient
from dispatch.types import Plan, PlanCosts, Setpoints, Snapshot

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 6, 1, 4, tzinfo=dt.UTC)
NAN = math.nan


def value(m: Metrics, name: str, **labels: str) -> float | None:
    """A sample's value as ``/metrics`` would render it."""
    return m.registry.get_sample_value(name, labels)


def snap(p_batt_kw: float = -50.0, **kw: object) -> Snapshot:
    base: dict[str, object] = dict(
        time=T0,
        p_grid_kw=100.0,
        p_pv_kw=30.0,
        p_batt_kw=p_batt_kw,
        p_load_kw=130.0 + p_batt_kw,  # grid + PV + battery
        soc_frac=0.5,
    )
    return Snapshot(**(base | kw))  # type: ignore[arg-type]


# ------------------------------------------------------------------ fault levels
@pytest.mark.parametrize(
    ("failures", "stale", "level"),
    [
        (0, False, 0),  # answered, fresh
        (0, True, 2),  # answered with frozen values
        (1, False, 1),  # a write failed after a good read: degraded
        (1, True, 1),  # one read failed: retried after backoff_initial_s
        (2, True, 2),  # failures in a row: not answering
        (7, True, 2),
    ],
)
def test_fault_levels(failures: int, stale: bool, level: int) -> None:
    assert fault_level(failures, stale) == level


def test_device_health_sets_the_level_and_opens_the_fault_counters() -> None:
    m = Metrics()
    assert value(m, "dispatch_device_faults_total", device="bess", op="read") is None
    assert m.device_health("bess", 1, True) == 1
    assert value(m, "dispatch_device_fault_level", device="bess") == 1.0
    assert value(m, "dispatch_device_faults_total", device="bess", op="read") == 0.0
    assert value(m, "dispatch_device_faults_total", device="bess", op="write") == 0.0
    m.device_health("bess", 0, False)
    assert value(m, "dispatch_device_fault_level", device="bess") == 0.0


# -------------------------------------------------------------- setpoint tracking
def test_not_following_after_three_cycles_in_a_row_off_by_more_than_the_tolerance() -> None:
    m = Metrics()
    tol = 5.0
    # (measured, accepted setpoint the cycle before) -> (off cycles, not following)
    steps = [
        ((-100.0, -100.0), (0, 0.0)),
        ((-95.0, -100.0), (0, 0.0)),  # exactly the tolerance: following
        ((-94.99, -100.0), (1, 0.0)),
        ((-80.0, -100.0), (2, 0.0)),
        ((-80.0, -100.0), (3, 1.0)),  # the third in a row
        ((-120.0, -100.0), (4, 1.0)),  # off on the other side counts too
        ((-101.0, -100.0), (0, 0.0)),  # back within: cleared at once
    ]
    for (measured, setpoint), (off, flag) in steps:
        m.follow(measured, setpoint, tol)
        assert value(m, "dispatch_setpoint_off_cycles") == off, (measured, setpoint)
        assert value(m, "dispatch_setpoint_not_following") == flag, (measured, setpoint)
    assert value(m, "dispatch_setpoint_tolerance_kw") == 5.0


@pytest.mark.parametrize(("measured", "setpoint"), [(0.0, None), (NAN, -100.0), (0.0, NAN)])
def test_a_cycle_with_nothing_to_compare_starts_the_count_again(
    measured: float, setpoint: float | None
) -> None:
    check = FollowCheck()
    assert [check.observe(0.0, -100.0, 5.0) for _ in range(3)] == [False, False, True]
    assert check.observe(measured, setpoint, 5.0) is False and check.off_cycles == 0
    assert [check.observe(0.0, -100.0, 5.0) for _ in range(3)] == [False, False, True]


def test_the_number_of_cycles_is_a_parameter() -> None:
    check = FollowCheck(cycles=1)
    assert check.observe(10.0, 0.0, 5.0) is True and check.off_cycles == 1


def device(name: str = "bess", deadband_kw: float = 0.5) -> DeviceClient:
    """A client of a SunSpec battery (never connected)."""
    return DeviceClient(DeviceSection(name=name, register_map="sunspec", deadband_kw=deadband_kw))


def test_the_tolerance_is_a_share_of_the_rating_never_below_the_deadbands() -> None:
    assert follow_tolerance_kw([device()], 100.0) == 5.0
    assert follow_tolerance_kw([device()], 3000.0) == 150.0
    two = [device("a", 3.0), device("b", 4.0)]
    assert follow_tolerance_kw(two, 100.0) == 7.0
    assert follow_tolerance_kw([], 100.0) == 5.0


def test_what_the_battery_is_compared_with() -> None:
    bess = [device()]
    assert measured_batt_kw(snap(-50.0), bess) == -50.0
    assert measured_batt_kw(snap(-50.0, stale=("meter",)), bess) == -50.0
    assert math.isnan(measured_batt_kw(snap(-50.0, stale=("bess",)), bess))
    assert math.isnan(measured_batt_kw(snap(-50.0, derived=("p_batt_kw",)), bess))

    def last(sp: Setpoints, written: float | None) -> CycleState:
        return CycleState(T0, snap(), sp, written)

    assert accepted_kw(None) is None
    assert accepted_kw(last(Setpoints(-60.0, "plan slot"), -55.0)) == -55.0  # after clamping
    assert accepted_kw(last(Setpoints(-60.0, "plan slot"), None)) is None  # a write failed
    handback = Setpoints(0.0, "safe: device fault", default_mode=True)
    assert accepted_kw(last(handback, 0.0)) is None  # the device runs its own mode


# ---------------------------------------------------------- cycle, safe, peaks, slot
def test_the_safe_state_gauge_follows_the_last_cycle() -> None:
    m = Metrics()
    assert value(m, "dispatch_safe_state") == 0.0
    m.cycle(snap(), Setpoints(0.0, "safe: device fault", default_mode=True), None, 0.01)
    assert value(m, "dispatch_safe_state") == 1.0
    m.cycle(snap(), Setpoints(0.0, "safe: plan is stale"), 0.0, 0.01)
    assert value(m, "dispatch_safe_state") == 1.0
    m.cycle(snap(), Setpoints(-50.0, "plan slot 2026-06-01T04:00:00+00:00: -50.0 kW"), 0.0, 0.01)
    assert value(m, "dispatch_safe_state") == 0.0
    assert value(m, "dispatch_safe_cycles_total") == 2.0 and value(m, "dispatch_cycles_total") == 3


def test_peak_and_target() -> None:
    m = Metrics()
    assert math.isnan(value(m, "dispatch_month_peak_kw") or 0.0)  # no cycle yet
    m.peaks(1234.5, 1500.0)
    assert value(m, "dispatch_month_peak_kw") == 1234.5
    assert value(m, "dispatch_peak_target_kw") == 1500.0
    m.peaks(0.0, None)
    assert value(m, "dispatch_month_peak_kw") == 0.0
    assert math.isnan(value(m, "dispatch_peak_target_kw") or 0.0)


def test_the_plan_slot_in_force_gives_prices_intensity_and_planned_powers() -> None:
    m = Metrics()
    row = {
        "price_import_per_kwh": 0.9612,
        "price_export_per_kwh": 0.391,
        "ci_g_per_kwh": 581.0,
        "p_batt_kw": 1500.0,
        "p_grid_kw": 2200.0,
    }
    m.plan_slot(row, "CNY")
    assert value(m, "dispatch_energy_price_per_kwh", direction="import", currency="CNY") == 0.9612
    assert value(m, "dispatch_energy_price_per_kwh", direction="export", currency="CNY") == 0.391
    assert value(m, "dispatch_grid_ci_g_per_kwh") == 581.0
    assert value(m, "dispatch_planned_power_kw", quantity="batt") == 1500.0
    assert value(m, "dispatch_planned_power_kw", quantity="grid") == 2200.0
    m.plan_slot(None, "CNY")
    for name, labels in [
        ("dispatch_energy_price_per_kwh", {"direction": "import", "currency": "CNY"}),
        ("dispatch_grid_ci_g_per_kwh", {}),
        ("dispatch_planned_power_kw", {"quantity": "batt"}),
    ]:
        assert math.isnan(value(m, name, **labels) or 0.0), name


def test_the_slot_in_force_is_the_one_containing_now() -> None:
    index = pd.date_range(T0, periods=3, freq="15min")
    frame = pd.DataFrame({"p_batt_kw": [1.0, 2.0, 3.0]}, index=index)
    plan = Plan("optimal", frame, PlanCosts(0.0, 0.0, 0.0, 0.0, 0.0), 0.0, 0.0, 1.0, "test")
    step = pd.Timedelta(minutes=15)
    at = dt.timedelta
    assert slot_in_force(plan, T0 - at(seconds=1), step) is None
    assert slot_in_force(plan, T0, step) == {"p_batt_kw": 1.0}
    assert slot_in_force(plan, T0 + at(minutes=14, seconds=59), step) == {"p_batt_kw": 1.0}
    assert slot_in_force(plan, T0 + at(minutes=15), step) == {"p_batt_kw": 2.0}
    assert slot_in_force(plan, T0 + at(minutes=44), step) == {"p_batt_kw": 3.0}
    assert slot_in_force(plan, T0 + at(minutes=45), step) is None  # past the horizon
    assert slot_in_force(None, T0, step) is None


# ---------------------------------------------------------------- store and build
def test_the_store_write_time_is_unix_seconds() -> None:
    m = Metrics()
    assert math.isnan(value(m, "dispatch_store_last_write_timestamp_seconds") or 0.0)
    m.store_written(T0)
    assert value(m, "dispatch_store_last_write_timestamp_seconds") == 1780286400.0  # 2026-06-01


def test_build_info_names_the_version_and_python() -> None:
    families = {f.name: f for f in text_string_to_metric_families(Metrics().render().decode())}
    (sample,) = families["dispatch_build_info"].samples
    assert sample.value == 1.0
    assert sample.labels == {
        "version": metrics.package_version(),
        "python": platform.python_version(),
    }


def test_the_version_falls_back_to_the_package_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    import dispatch

    def absent(name: str) -> str:
        raise metrics.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metrics.metadata, "version", absent)
    assert metrics.package_version() == dispatch.__version__


def test_job_error_counters_start_at_zero() -> None:
    m = Metrics()
    assert [value(m, "dispatch_job_errors_total", job=j) for j in metrics.JOBS] == [0.0] * 5


# ------------------------------------------------------- one cycle of a real daemon
def test_a_cycle_without_devices_sets_them_from_what_it_computed(tmp_path: Path) -> None:
    data = load_config(ROOT / "configs" / "suzhou-factory.toml").model_dump()
    data["store"] = {"path": str(tmp_path / "h.sqlite3")}
    data["http"] = {"enabled": False}
    data["forecast"] = {"load_kw": 3000.0}
    data["carbon"].pop("certificates", None)
    data["devices"] = []
    d = Daemon(parse_config(data), Clock(T0, 1.0), notifier=Notifier(""))

    async def run() -> None:
        await d.plan_job()
        await d.guarded("control", cycle.control_cycle)

    asyncio.run(run())
    m, ps = d.metrics, d.plan_state
    assert ps is not None and ps.peak_target_kw is not None and d.last_cycle is not None
    assert value(m, "dispatch_safe_state") == 1.0 and d.in_safe_state  # nothing measured
    assert value(m, "dispatch_peak_target_kw") == ps.peak_target_kw
    assert value(m, "dispatch_month_peak_kw") == 0.0  # no slot closed yet
    row = ps.plan.frame.iloc[0]  # the slot from T0, in force a moment later
    price = value(m, "dispatch_energy_price_per_kwh", direction="import", currency="CNY")
    assert price == row["price_import_per_kwh"] and price > 0
    assert value(m, "dispatch_grid_ci_g_per_kwh") == row["ci_g_per_kwh"]
    assert value(m, "dispatch_planned_power_kw", quantity="batt") == row["p_batt_kw"]
    written = value(m, "dispatch_store_last_write_timestamp_seconds") or 0.0
    assert T0.timestamp() < written <= d.clock.now().timestamp()
    assert value(m, "dispatch_setpoint_not_following") == 0.0
    assert value(m, "dispatch_setpoint_tolerance_kw") == 150.0  # 5 % of 3 MW
    d.worker.shutdown()
    d.store_pool.shutdown()
    d.store.close()
