"""Tests of ``dispatch.control``: one table row per case, and hypothesis properties (setpoints
always within limits; the guard holds the import target and the export limit)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dispatch.config import load_config
from dispatch.control import ControlLimits, ControlState, decide
from dispatch.types import PLAN_COLUMNS, Plan, PlanCosts, Snapshot
from tests.conftest import CONFIGS
from tests.factories import config

T0 = dt.datetime(2026, 7, 1, 10, 0, tzinfo=dt.UTC)  # first plan slot start
NOW = T0 + dt.timedelta(minutes=5)
STEP = dt.timedelta(minutes=15)

LIMITS = ControlLimits(
    import_max_kw=1000.0,
    export_limit_kw=0.0,
    charge_max_kw=500.0,
    discharge_max_kw=500.0,
    soc_min_frac=0.1,
    soc_max_frac=0.9,
    soc_reserve_frac=0.3,
    soc_margin_frac=0.01,
    plan_max_age_s=1800.0,
    plan_step_s=900.0,
    snapshot_max_age_s=15.0,
)


def snap(**kw: Any) -> Snapshot:
    """A healthy reading at NOW: import 300 kW, battery idle, SoC 0.5 (overrides in kw)."""
    base: dict[str, Any] = dict(
        time=NOW, p_grid_kw=300.0, p_pv_kw=200.0, p_batt_kw=0.0, p_load_kw=500.0, soc_frac=0.5
    )
    base.update(kw)
    return Snapshot(**base)


def make_plan(
    p_batt: list[float] | float = 100.0,
    p_grid: list[float] | float = 400.0,
    start: dt.datetime = T0,
    slots: int = 4,
    status: str = "optimal",
) -> Plan:
    """A plan of ``slots`` 15-minute slots with the given battery and grid powers (kW)."""
    idx = pd.date_range(start, periods=slots, freq="15min")
    frame = pd.DataFrame(0.0, index=idx, columns=list(PLAN_COLUMNS))
    frame["p_batt_kw"] = np.broadcast_to(np.asarray(p_batt, float), slots)
    frame["p_grid_kw"] = np.broadcast_to(np.asarray(p_grid, float), slots)
    costs = PlanCosts(0.0, 0.0, 0.0, 0.0, 0.0)
    return Plan(status, frame, costs, 0.0, float(frame["p_grid_kw"].max()), 1.0, "test")


PLAN = make_plan()
ISSUED_LONG_AGO = ControlState(plan_issued_at=NOW - dt.timedelta(hours=1))

# name, snapshot overrides, plan, limits overrides, now, state, expected kW, reason keyword, safe
CASES: list[tuple[str, dict, Plan | None, dict, Any, Any, float, str, bool]] = [
    ("follow plan", {}, PLAN, {}, NOW, None, 100.0, "plan slot", False),
    ("follow second slot", {}, make_plan([10, 20, 30, 40]), {}, T0 + 1.5 * STEP, None, 20.0,
     "plan slot 2026-07-01T10:15", False),
    ("peak guard holds the import cap", {"p_grid_kw": 1300.0}, PLAN, {}, NOW, None, 300.0,
     "peak guard", False),
    ("peak guard holds the month's peak", {"p_grid_kw": 900.0}, PLAN,
     {"peak_target_kw": 600.0}, NOW, None, 300.0, "peak guard", False),
    ("planned import above the peak target raises it", {"p_grid_kw": 900.0},
     make_plan(0.0, 900.0), {"peak_target_kw": 600.0}, NOW, None, 0.0, "plan slot", False),
    ("measured battery power is accounted", {"p_grid_kw": 700.0, "p_batt_kw": 200.0}, PLAN,
     {"peak_target_kw": 600.0}, NOW, None, 300.0, "peak guard", False),
    ("peak guard off", {"p_grid_kw": 1300.0}, PLAN, {"guard": False}, NOW, None, 100.0,
     "plan slot", False),
    ("zero export: discharge less", {"p_grid_kw": -50.0, "p_batt_kw": 100.0}, PLAN, {}, NOW,
     None, 50.0, "export guard", False),
    ("zero export: charge the surplus", {"p_grid_kw": -200.0}, make_plan(0.0), {}, NOW, None,
     -200.0, "export guard", False),
    ("zero export held with the guard off", {"p_grid_kw": -200.0}, make_plan(0.0),
     {"guard": False}, NOW, None, -200.0, "export guard", False),
    ("export limit 100 kW", {"p_grid_kw": -300.0}, make_plan(0.0), {"export_limit_kw": 100.0},
     NOW, None, -200.0, "export guard", False),
    ("soc guard: no discharge at soc_min + margin", {"soc_frac": 0.105}, PLAN, {}, NOW, None,
     0.0, "soc guard", False),
    ("soc guard: no charge at soc_max - margin", {"soc_frac": 0.895}, make_plan(-100.0), {},
     NOW, None, 0.0, "soc guard", False),
    ("plan following ignores the reserve", {"soc_frac": 0.2}, PLAN, {}, NOW, None, 100.0,
     "plan slot", False),
    ("config discharge limit", {"p_grid_kw": 900.0}, make_plan(800.0), {}, NOW, None, 500.0,
     "limit", False),
    ("config charge limit", {"p_grid_kw": -900.0}, make_plan(-900.0), {}, NOW, None, -500.0,
     "limit", False),
    ("device-reported discharge limit", {"p_discharge_max_kw": 200.0}, make_plan(300.0), {},
     NOW, None, 200.0, "limit", False),
    ("device limit NaN is ignored", {"p_discharge_max_kw": math.nan}, make_plan(300.0), {},
     NOW, None, 300.0, "plan slot", False),
    ("stale plan by age", {}, PLAN, {}, NOW, ISSUED_LONG_AGO, 300.0, "plan is stale", False),
    ("now past the plan's horizon", {"time": T0 + 5 * STEP}, PLAN, {}, T0 + 5 * STEP, None,
     300.0, "outside the plan", False),
    ("now before the plan", {"time": T0 - STEP}, PLAN, {}, T0 - STEP, None, 300.0,
     "outside the plan", False),
    ("no plan", {}, None, {}, NOW, None, 300.0, "no plan", False),
    ("fallback plan", {}, make_plan(status="fallback"), {}, NOW, None, 300.0,
     "plan is a fallback", False),
    ("plan slot NaN", {}, make_plan(math.nan), {}, NOW, None, 300.0, "not finite", False),
    ("self-consumption charges the surplus", {"p_grid_kw": -200.0}, None, {}, NOW, None,
     -200.0, "self-consumption", False),
    ("self-consumption keeps the reserve", {"soc_frac": 0.3}, None, {}, NOW, None, 0.0,
     "reserve", False),
    ("fallback still holds the import cap from the reserve", {"p_grid_kw": 1200.0,
     "soc_frac": 0.2}, None, {}, NOW, None, 200.0, "peak guard", False),
    ("fallback holds the month's peak from the reserve", {"p_grid_kw": 800.0, "soc_frac": 0.2},
     None, {"peak_target_kw": 600.0}, NOW, None, 200.0, "peak guard", False),
    ("self-consumption within the discharge limit", {"p_grid_kw": 900.0}, None, {}, NOW, None,
     500.0, "limit", False),
    ("stale snapshot", {"time": NOW - dt.timedelta(seconds=60)}, PLAN, {}, NOW, None, 0.0,
     "stale snapshot", True),
    ("snapshot from the future", {"time": NOW + dt.timedelta(seconds=60)}, PLAN, {}, NOW,
     None, 0.0, "in the future", True),
    ("snapshot time naive", {"time": NOW.replace(tzinfo=None)}, PLAN, {}, NOW, None, 0.0,
     "stale snapshot", True),
    ("device fault", {"faults": ("pcs: timeout",), "stale": ("pcs",)}, PLAN, {}, NOW, None,
     0.0, "device fault", True),
    ("stale device", {"stale": ("meter",)}, PLAN, {}, NOW, None, 0.0, "stale device", True),
    ("missing field", {"soc_frac": math.nan, "missing": ("soc_frac",)}, PLAN, {}, NOW, None,
     0.0, "missing", True),
    ("NaN grid power", {"p_grid_kw": math.nan}, PLAN, {}, NOW, None, 0.0, "not finite", True),
    ("inf battery power", {"p_batt_kw": math.inf}, PLAN, {}, NOW, None, 0.0, "not finite",
     True),
    ("implausible grid power", {"p_grid_kw": 1e9}, PLAN, {"plausible_kw": 1e4}, NOW, None, 0.0,
     "implausible", True),
    ("SoC out of range", {"soc_frac": 1.5}, PLAN, {}, NOW, None, 0.0, "soc out of range", True),
    ("naive now", {}, PLAN, {}, NOW.replace(tzinfo=None), None, 0.0, "clock", True),
    ("now NaT", {}, PLAN, {}, pd.NaT, None, 0.0, "clock", True),
    ("snapshot time NaT", {"time": pd.NaT}, PLAN, {}, NOW, None, 0.0, "stale snapshot", True),
    ("snapshot time far past", {"time": dt.datetime(1, 1, 1, tzinfo=dt.UTC)}, PLAN, {}, NOW,
     None, 0.0, "stale snapshot", True),
    ("configured safe power", {"faults": ("bms: alarm",)}, PLAN, {"safe_p_batt_kw": -50.0},
     NOW, None, -50.0, "device fault", True),
]


@pytest.mark.parametrize(
    ("name", "snap_kw", "plan", "limits_kw", "now", "state", "p_kw", "keyword", "safe"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_decide_table(name, snap_kw, plan, limits_kw, now, state, p_kw, keyword, safe):
    limits = dataclasses.replace(LIMITS, **limits_kw)
    sp = decide(snap(**{"time": now, **snap_kw}), plan, limits, now, state)
    assert sp.p_batt_kw == pytest.approx(p_kw, abs=1e-9), sp.reason
    assert keyword in sp.reason, sp.reason
    assert sp.default_mode is safe


def test_limits_from_config():
    cfg = config(
        grid={"import_max_kw": 800.0, "export_allowed": False, "export_max_kw": None},
        battery={"soc_min_frac": 0.1, "soc_max_frac": 0.9, "soc_reserve_frac": 0.25},
        plan={"step_min": 15, "horizon_h": 24},
        control={"soc_margin_frac": 0.02, "safe_p_batt_kw": -5.0, "guard": False},
    )
    limits = ControlLimits.from_config(cfg, peak_target_kw=300.0)
    assert limits.import_max_kw == 800.0 and limits.export_limit_kw == 0.0
    assert limits.soc_reserve_frac == 0.25 and limits.soc_margin_frac == 0.02
    assert limits.plan_max_age_s == 1800.0 and limits.plan_step_s == 900.0
    assert limits.peak_target_kw == 300.0 and limits.guard is False
    assert limits.with_peak_target(math.nan).peak_target_kw is None
    assert limits.with_peak_target(-3.0).peak_target_kw == 0.0
    with pytest.raises(ValueError, match="soc margin"):
        dataclasses.replace(limits, soc_margin_frac=0.5)
    with pytest.raises(ValueError, match="charge_max_kw"):
        dataclasses.replace(limits, charge_max_kw=math.nan)


def test_plan_issued_at_overrides_slot_start():
    fresh = ControlState(plan_issued_at=NOW - dt.timedelta(seconds=10))
    old_plan = make_plan(start=NOW - dt.timedelta(hours=3), slots=24)
    assert "plan stale" not in decide(snap(), old_plan, LIMITS, NOW, fresh).reason
    assert "plan is stale" in decide(snap(), old_plan, LIMITS, NOW).reason


# --------------------------------------------------------------------------- properties
wild = st.floats(allow_nan=True, allow_infinity=True, width=64)
kw = st.floats(-5000.0, 5000.0)
soc_any = st.one_of(st.floats(-0.5, 1.5), st.just(math.nan), st.floats(0.0, 1.0))


@st.composite
def limits_st(draw: st.DrawFn) -> ControlLimits:
    lo = draw(st.floats(0.0, 0.4))
    hi = draw(st.floats(0.6, 1.0))
    return ControlLimits(
        import_max_kw=draw(st.floats(1.0, 3000.0)),
        export_limit_kw=draw(st.one_of(st.just(0.0), st.floats(0.0, 3000.0))),
        charge_max_kw=draw(st.floats(0.0, 2000.0)),
        discharge_max_kw=draw(st.floats(0.0, 2000.0)),
        soc_min_frac=lo,
        soc_max_frac=hi,
        soc_reserve_frac=draw(st.floats(lo, hi)),
        soc_margin_frac=draw(st.floats(0.0, 0.05)),
        guard=draw(st.booleans()),
        safe_p_batt_kw=draw(st.floats(-100.0, 0.0)),
        peak_target_kw=draw(st.one_of(st.none(), st.floats(0.0, 3000.0))),
    )


@st.composite
def plan_st(draw: st.DrawFn) -> Plan | None:
    if draw(st.booleans()):
        return None
    n = draw(st.integers(1, 6))
    p_batt = draw(st.lists(st.one_of(kw, wild), min_size=n, max_size=n))
    p_grid = draw(st.lists(st.one_of(kw, wild), min_size=n, max_size=n))
    start = T0 + dt.timedelta(minutes=draw(st.one_of(st.just(0), st.integers(-120, 60))))
    if draw(st.integers(0, 9)) == 0:
        start = start.replace(tzinfo=None)  # a broken plan: naive times
    plan = make_plan(p_batt, p_grid, start, n, draw(st.sampled_from(["optimal", "fallback"])))
    if draw(st.integers(0, 9)) == 0:  # a broken plan: no grid column
        plan = dataclasses.replace(plan, frame=plan.frame.drop(columns="p_grid_kw"))
    return plan


@st.composite
def snapshot_st(draw: st.DrawFn, healthy: bool = False) -> Snapshot:
    power = kw if healthy else st.one_of(kw, wild)
    near = st.floats(-5.0, 5.0).map(lambda age_s: NOW - dt.timedelta(seconds=age_s))
    any_time = st.one_of(
        near,
        st.floats(-1e5, 1e5).map(lambda age_s: NOW - dt.timedelta(seconds=age_s)),
        st.datetimes(timezones=st.just(dt.UTC)),
        st.datetimes(),  # naive
        st.just(pd.NaT),
        st.none(),
    )
    return Snapshot(
        time=draw(near if healthy else any_time),
        p_grid_kw=draw(power),
        p_pv_kw=draw(power),
        p_batt_kw=draw(power),
        p_load_kw=draw(power),
        soc_frac=draw(st.floats(0.0, 1.0) if healthy else soc_any),
        p_charge_max_kw=draw(st.one_of(st.just(math.nan), st.floats(0.0, 3000.0), wild)),
        p_discharge_max_kw=draw(st.one_of(st.just(math.nan), st.floats(0.0, 3000.0), wild)),
        faults=() if healthy else tuple(draw(st.lists(st.just("pcs: x"), max_size=1))),
    )


def caps(s: Snapshot, lim: ControlLimits) -> tuple[float, float]:
    """Independent computation of the charge and discharge caps (kW)."""
    c, d = lim.charge_max_kw, lim.discharge_max_kw
    if math.isfinite(s.p_charge_max_kw):
        c = min(c, max(s.p_charge_max_kw, 0.0))
    if math.isfinite(s.p_discharge_max_kw):
        d = min(d, max(s.p_discharge_max_kw, 0.0))
    if s.soc_frac <= lim.soc_min_frac + lim.soc_margin_frac:
        d = 0.0
    if s.soc_frac >= lim.soc_max_frac - lim.soc_margin_frac:
        c = 0.0
    return c, d


PROPS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(
    s=snapshot_st(),
    plan=plan_st(),
    lim=limits_st(),
    now=st.one_of(
        st.just(NOW),
        st.floats(-1e5, 1e5).map(lambda shift_s: NOW + dt.timedelta(seconds=shift_s)),
        st.datetimes(timezones=st.just(dt.UTC)),
        st.datetimes(),  # naive
        st.just(pd.NaT),
    ),
)
def test_setpoints_always_within_limits(s, plan, lim, now):
    sp = decide(s, plan, lim, now)
    assert math.isfinite(sp.p_batt_kw)
    assert -lim.charge_max_kw - 1e-9 <= sp.p_batt_kw <= lim.discharge_max_kw + 1e-9
    assert sp.reason
    if sp.default_mode:
        assert sp.reason.startswith("safe")
        return
    c, d = caps(s, lim)
    assert -c - 1e-9 <= sp.p_batt_kw <= d + 1e-9, sp.reason


@PROPS
@given(s=snapshot_st(healthy=True), plan=plan_st(), lim=limits_st())
def test_guard_holds_import_target_when_battery_has_room(s, plan, lim):
    sp = decide(s, plan, lim, NOW)
    assert not sp.default_mode
    kinds = ("plan slot", "self-consumption", "peak guard", "export guard", "soc guard", "limit")
    event(", ".join(k for k in kinds if k in sp.reason))
    net = s.p_grid_kw + s.p_batt_kw
    grid_after = net - sp.p_batt_kw
    c, d = caps(s, lim)
    if sp.reason.startswith("plan slot"):
        if not lim.guard:
            return
        slot = plan.frame.iloc[int((NOW - plan.frame.index[0]) / STEP)]
        g = slot.get("p_grid_kw", 0.0)
        planned_import = max(g, 0.0) if math.isfinite(g) else 0.0
    else:
        planned_import = 0.0
    target = lim.import_max_kw
    if lim.peak_target_kw is not None:
        target = min(lim.import_max_kw, max(lim.peak_target_kw, planned_import))
    if -c <= net - target <= d:  # the battery can reach the target
        assert grid_after <= target + 1e-6, sp.reason
    else:
        assert grid_after <= target + 1e-6 or sp.p_batt_kw >= d - 1e-9, sp.reason


@PROPS
@given(s=snapshot_st(healthy=True), plan=plan_st(), lim=limits_st())
def test_battery_never_causes_export_beyond_the_limit(s, plan, lim):
    sp = decide(s, plan, lim, NOW)
    grid_after = s.p_grid_kw + s.p_batt_kw - sp.p_batt_kw
    if sp.p_batt_kw > 1e-9:
        assert grid_after >= -lim.export_limit_kw - 1e-6, sp.reason
    c, _ = caps(s, lim)
    net = s.p_grid_kw + s.p_batt_kw
    if -c <= net + lim.export_limit_kw:  # room to charge the excess export away
        assert grid_after >= -lim.export_limit_kw - 1e-6, sp.reason


@PROPS
@given(
    lim=limits_st(),
    planned_frac=st.floats(-1.0, 1.0),
    net_kw=st.floats(-3000.0, 6000.0),
    batt_now_kw=st.floats(-500.0, 500.0),
    soc=st.floats(0.45, 0.55),
)
def test_guard_correction_is_planned_plus_excess(lim, planned_frac, net_kw, batt_now_kw, soc):
    """Plan mode, healthy reading: new power = planned + (grid after plan - target), clamped."""
    lim = dataclasses.replace(lim, guard=True, soc_margin_frac=0.0)
    planned = planned_frac * (lim.discharge_max_kw if planned_frac > 0 else lim.charge_max_kw)
    plan = make_plan(planned, 0.0)
    s = snap(p_grid_kw=net_kw - batt_now_kw, p_batt_kw=batt_now_kw, soc_frac=soc)
    sp = decide(s, plan, lim, NOW)
    target = lim.import_max_kw if lim.peak_target_kw is None else min(
        lim.import_max_kw, lim.peak_target_kw
    )
    grid_planned = net_kw - planned
    if grid_planned > target:
        expected = planned + (grid_planned - target)
    elif grid_planned < -lim.export_limit_kw:
        expected = planned - (-lim.export_limit_kw - grid_planned)
    else:
        expected = planned
    expected = min(max(expected, -lim.charge_max_kw), lim.discharge_max_kw)
    assert sp.p_batt_kw == pytest.approx(expected, abs=1e-6), sp.reason


def test_limits_from_the_example_site():
    cfg = load_config(CONFIGS / "suzhou-factory.toml")
    limits = ControlLimits.from_config(cfg, peak_target_kw=4000.0)
    assert limits.import_max_kw == cfg.grid.import_max_kw and limits.export_limit_kw == 0.0
    assert limits.plausible_kw >= 10 * sum(a.ac_kw for a in cfg.pv)
    s = snap(p_grid_kw=4500.0, p_batt_kw=0.0, soc_frac=0.6)
    sp = decide(s, None, limits, NOW)  # no plan yet: self-consumption covers the import
    assert sp.p_batt_kw == pytest.approx(min(4500.0, cfg.battery.discharge_max_kw))
