"""Several converters sharing one site setpoint (``dispatch.daemon.sharing``): exact toy
answers by hand, properties of the split (hypothesis), which converters count as faulty, and
the snapshot the site decision sees while some are."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.config import DeviceSection
from dispatch.daemon.sharing import degraded, faulty, healthy_batt_kw, split_kw, weights_and_limits
from dispatch.devices.client import DeviceClient
from dispatch.types import Snapshot

T0 = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
SIZES = {"a": 1500.0, "b": 1000.0, "c": 500.0}  # the 3 MW site as three converters


def test_no_fault_shares_by_configured_power() -> None:
    assert split_kw(1800.0, SIZES, SIZES, SIZES) == pytest.approx({"a": 900, "b": 600, "c": 300})
    assert split_kw(-2400.0, SIZES, SIZES, SIZES) == pytest.approx(
        {"a": -1200, "b": -800, "c": -400}
    )
    assert split_kw(0.0, SIZES, SIZES, SIZES) == {"a": 0.0, "b": 0.0, "c": 0.0}


def test_a_faulty_converter_gets_nothing_and_the_others_take_its_part() -> None:
    healthy = {"a", "c"}
    # 1800 over a and c (3:1): 1350 and 450, both within their limits
    assert split_kw(1800.0, SIZES, SIZES, healthy) == pytest.approx({"a": 1350, "b": 0, "c": 450})
    # 2400 asks 1800 of a (limit 1500) and 600 of c (limit 500): both at their limits
    assert split_kw(2400.0, SIZES, SIZES, healthy) == pytest.approx({"a": 1500, "b": 0, "c": 500})


def test_a_converter_at_its_own_limit_hands_the_rest_to_the_others() -> None:
    limits = {"a": 1000.0, "b": 1000.0, "c": 500.0}  # a derated to 1000 kW
    # 1400 over a and c asks 1050 of a: a at 1000, the 400 left to c
    got = split_kw(1400.0, SIZES, limits, {"a", "c"})
    assert got == pytest.approx({"a": 1000, "b": 0, "c": 400})
    # all healthy, 2700: a asks 1350 -> 1000; 1700 over b and c (2:1): 1133.3 -> 1000, then c 500
    got = split_kw(2700.0, SIZES, limits, SIZES)
    assert got == pytest.approx({"a": 1000, "b": 1000, "c": 500})
    got = split_kw(2400.0, SIZES, limits, SIZES)  # a 1000; 1400 over b, c: 933.3 and 466.7
    assert got == pytest.approx({"a": 1000, "b": 2800 / 3, "c": 1400 / 3})


def test_no_healthy_converter_gets_nothing() -> None:
    assert split_kw(1000.0, SIZES, SIZES, set()) == {"a": 0.0, "b": 0.0, "c": 0.0}


power = st.floats(1.0, 5000.0)


@given(
    site_kw=st.floats(-10000.0, 10000.0),
    sizes=st.lists(st.tuples(power, st.floats(0.0, 5000.0), st.booleans()), min_size=1,
                   max_size=6),
)
def test_split_properties(site_kw: float, sizes: list[tuple[float, float, bool]]) -> None:
    names = [f"pcs{i}" for i in range(len(sizes))]
    weight = {n: w for n, (w, _, _) in zip(names, sizes, strict=True)}
    limit = {n: lim for n, (_, lim, _) in zip(names, sizes, strict=True)}
    healthy = {n for n, (_, _, ok) in zip(names, sizes, strict=True) if ok}
    got = split_kw(site_kw, weight, limit, healthy)
    assert set(got) == set(names)
    for n, kw in got.items():
        assert abs(kw) <= limit[n] * (1 + 1e-12)  # within its own limit
        assert kw == 0.0 or math.copysign(1.0, kw) == math.copysign(1.0, site_kw)
        if n not in healthy:
            assert kw == 0.0  # a faulty converter gets nothing
    room = sum(limit[n] for n in healthy)
    expected = math.copysign(min(abs(site_kw), room), site_kw)
    assert math.fsum(got.values()) == pytest.approx(expected, rel=1e-9, abs=1e-6)
    # below their limits, the healthy ones share in proportion to their configured power
    free = [n for n in healthy if abs(got[n]) < limit[n] * (1 - 1e-9)]
    for x in free:
        for y in free:
            assert got[x] * weight[y] == pytest.approx(got[y] * weight[x], rel=1e-9, abs=1e-6)


def _clients() -> list[DeviceClient]:
    return [
        DeviceClient(DeviceSection(name=n, register_map="sunspec", port=1, charge_max_kw=kw,
                                   discharge_max_kw=kw))
        for n, kw in SIZES.items()
    ]


def _snap(faults: tuple[str, ...] = (), stale: tuple[str, ...] = (), **values: float) -> Snapshot:
    return Snapshot(time=T0, p_grid_kw=500.0, p_pv_kw=0.0, p_batt_kw=300.0, p_load_kw=800.0,
                    soc_frac=0.5, p_charge_max_kw=3000.0, p_discharge_max_kw=3000.0,
                    faults=faults, stale=stale, values=values)


def test_faulty_names_the_converters_the_cycle_cannot_command() -> None:
    a, b, _ = clients = _clients()
    assert faulty(clients, _snap(), 0.0) == set()
    assert faulty(clients, _snap(("b: not running (state 7)",)), 0.0) == {"b"}
    assert faulty(clients, _snap(stale=("c",)), 0.0) == {"c"}
    a.next_try_s = 5.0  # backing off until 5 s
    assert faulty(clients, _snap(), 4.0) == {"a"} and faulty(clients, _snap(), 5.0) == set()
    b.readback_hold_until_s = 20.0  # held after a read-back mismatch
    assert faulty(clients, _snap(), 10.0) == {"b"}


def test_degraded_snapshot_drops_the_faulty_converters_faults_and_limits() -> None:
    clients = _clients()
    snap = _snap(("b: not running (state 7)",), ("b",), **{"a.p_discharge_max_kw": 1200.0})
    seen = degraded(snap, clients, {"b"})
    assert seen.faults == () and seen.stale == () and seen.ok
    assert seen.p_discharge_max_kw == 1700.0  # a reports 1200 (below its 1500), c 500
    assert seen.p_charge_max_kw == 2000.0  # the configured 1500 + 500
    assert degraded(snap, clients, set()) is snap
    assert degraded(snap, clients, {"a", "b", "c"}) is snap  # none healthy: the safe state
    other = _snap(("b: not running", "battery not following its setpoint"), ("b",))
    assert degraded(other, clients, {"b"}) is other  # a fault that is not b's
    meter = _snap(("b: not running",), ("b", "meter"))
    assert degraded(meter, clients, {"b"}) is meter  # another device is stale


def test_weights_and_limits_and_the_healthy_battery_power() -> None:
    clients = _clients()
    snap = _snap(**{"a.p_charge_max_kw": -900.0, "a.p_batt_kw": -800.0, "c.p_batt_kw": -300.0})
    weights, limits = weights_and_limits(-1000.0, clients, snap)
    assert weights == SIZES and limits == {"a": 900.0, "b": 1000.0, "c": 500.0}
    assert healthy_batt_kw(snap, clients, {"b"}) == -1100.0
    assert math.isnan(healthy_batt_kw(snap, clients, {"c"}))  # b reported no power
