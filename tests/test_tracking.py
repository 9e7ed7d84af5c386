"""``TrackingFault``: the count, the latch and its hold, exact to the cycle."""

from __future__ import annotations

import math

from dispatch.daemon.tracking import TrackingFault


def test_the_fault_rises_on_the_nth_cycle_off_holds_and_releases() -> None:
    tr = TrackingFault(cycles=3, hold_s=100.0)
    raised = [tr.observe(50.0, 100.0, 5.0, t) for t in (0.0, 10.0, 20.0)]
    assert raised[:2] == [None, None] and raised[2] is not None
    assert "measured 50.0 kW against the accepted 100.0 kW (tolerance 5.0 kW) for 3" in raised[2]
    assert tr.latched(20.0) and tr.latched(119.9) and not tr.latched(120.0)
    assert not tr.release(119.9) and tr.release(120.0) and not tr.release(130.0)


def test_a_cycle_within_the_tolerance_or_with_nothing_to_follow_restarts_the_count() -> None:
    tr = TrackingFault(cycles=3, hold_s=100.0)
    for t, (measured, setpoint) in enumerate(
        [
            (50, 100),
            (50, 100),
            (95, 100),
            (50, 100),
            (50, 100),
            (math.nan, 100),
            (50, None),
            (50, 100),
            (50, 100),
        ]
    ):
        assert tr.observe(float(measured), setpoint, 5.0, float(t)) is None
    assert tr.off_cycles == 2 and not tr.latched(9.0)
    assert tr.observe(105.0, 100.0, 5.0, 9.0) is None  # exactly at the tolerance: following
    assert tr.off_cycles == 0


def test_zero_cycles_never_raises() -> None:
    tr = TrackingFault(cycles=0, hold_s=100.0)
    assert all(tr.observe(0.0, 100.0, 5.0, float(t)) is None for t in range(50))
