"""Operator overrides: validation against the site's limits, events, expiry, and what the
control step does with them (``control.decide(manual_kw=...)``, ``InForce.limits``)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.config import SiteConfig, load_config
from dispatch.control import ControlLimits, decide, import_target_kw
from dispatch.daemon.operator import (
    CommandError,
    CommandStoreError,
    InForce,
    ModeCommand,
    Operator,
    PeakTargetCommand,
    ReserveCommand,
    parse_command,
)
from dispatch.types import Snapshot

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 6, 1, 4, tzinfo=dt.UTC)
CONFIG: SiteConfig = load_config(ROOT / "configs" / "suzhou-factory.toml")  # 3 MW / 15.55 MWh
WHO = {"who": "li", "why": "maintenance"}


class Book:
    """A clock the test moves and the events the operator stored."""

    def __init__(self, fail: bool = False) -> None:
        self.now, self.events, self.fail = T0, [], fail

    def record(self, t: dt.datetime, level: str, kind: str, message: str) -> None:
        if self.fail:
            raise OSError("disk full")
        self.events.append((t, level, kind, message))

    def operator(self) -> Operator:
        return Operator(CONFIG, lambda: self.now, self.record)


def snap(p_grid_kw: float, p_batt_kw: float = 0.0, soc: float = 0.5) -> Snapshot:
    return Snapshot(
        time=T0,
        p_grid_kw=p_grid_kw,
        p_pv_kw=0.0,
        p_batt_kw=p_batt_kw,
        p_load_kw=p_grid_kw + p_batt_kw,
        soc_frac=soc,
    )


@pytest.mark.parametrize(
    ("cmd", "message"),
    [
        (
            ModeCommand(mode="manual", p_batt_kw=3500.0, minutes=10, **WHO),
            "p_batt_kw = 3500 kW is beyond the battery's limits: charge 3000 kW (negative), "
            "discharge 3000 kW",
        ),
        (ModeCommand(mode="manual", minutes=10, **WHO), "mode 'manual' needs a finite"),
        (ModeCommand(mode="pause", p_batt_kw=10.0, minutes=10, **WHO), "only for mode 'manual'"),
        (ModeCommand(mode="pause", **WHO), "minutes: required"),
        (ModeCommand(mode="pause", minutes=24 * 60 + 1, **WHO), "minutes = 1441 > 1440"),
        (
            ReserveCommand(soc_reserve_frac=0.99, minutes=10, **WHO),
            "soc_reserve_frac = 0.99 is outside",
        ),
        (PeakTargetCommand(peak_target_kw=1e6, minutes=10, **WHO), "> grid.import_max_kw"),
    ],
)
def test_commands_beyond_the_sites_limits_are_refused_and_the_refusal_stored(
    cmd: ModeCommand | ReserveCommand | PeakTargetCommand, message: str
) -> None:
    book = Book()
    op = book.operator()
    with pytest.raises(CommandError, match=re.escape(message)):
        op.submit(cmd, "api")
    assert op.peek(T0).overrides == ()
    [(_, level, kind, text)] = book.events
    assert (level, kind) == ("warning", "operator_refused") and "li (maintenance)" in text


def test_a_manual_setpoint_is_stored_before_it_applies_and_expires_by_itself() -> None:
    book = Book()
    op = book.operator()
    new = op.submit(ModeCommand(mode="manual", p_batt_kw=-1200.0, minutes=30, **WHO), "mqtt")
    assert new is not None and new.until == T0 + dt.timedelta(minutes=30)
    [(_, level, kind, text)] = book.events
    assert (level, kind) == ("warning", "operator_mode")
    assert text == "mqtt: manual -1200 kW until 2026-06-01T04:30:00+00:00 by li: maintenance"
    force, expired = op.in_force(T0 + dt.timedelta(minutes=29, seconds=59))
    assert force.manual_kw == -1200.0 and expired == []
    force, expired = op.in_force(T0 + dt.timedelta(minutes=30))
    assert force.manual_kw is None and force.overrides == ()
    assert expired == [
        "expired, back to the plan: manual -1200 kW until "
        "2026-06-01T04:30:00+00:00 by li: maintenance"
    ]
    assert op.in_force(T0 + dt.timedelta(hours=1)) == (InForce(), [])  # reported once


def test_auto_clears_the_mode_and_null_clears_a_reserve() -> None:
    book = Book()
    op = book.operator()
    op.submit(ModeCommand(mode="pause", minutes=5, **WHO), "api")
    op.submit(ReserveCommand(soc_reserve_frac=0.6, minutes=5, **WHO), "api")
    assert op.peek(T0).paused is not None and op.peek(T0).get("reserve") is not None
    assert op.submit(ModeCommand(mode="auto", **WHO), "api") is None
    assert op.submit(ReserveCommand(soc_reserve_frac=None, **WHO), "api") is None
    assert op.peek(T0).overrides == ()
    assert [e[2] for e in book.events] == [
        "operator_mode",
        "operator_reserve",
        "operator_mode",
        "operator_reserve",
    ]


def test_a_command_whose_event_cannot_be_stored_is_not_applied() -> None:
    op = Book(fail=True).operator()
    with pytest.raises(CommandStoreError, match=r"cannot store its event.*disk full"):
        op.submit(ModeCommand(mode="pause", minutes=5, **WHO), "api")
    assert op.peek(T0).overrides == ()


def test_parse_command_names_the_bad_field() -> None:
    with pytest.raises(CommandError, match=r"^mode: minutes: Input should be greater than 0"):
        parse_command("mode", {"mode": "pause", "minutes": -1, **WHO})
    with pytest.raises(CommandError, match=r"^reserve: colour: Extra inputs"):
        parse_command("reserve", {"soc_reserve_frac": 0.5, "colour": 1, **WHO})
    with pytest.raises(CommandError, match="unknown command 'boost'"):
        parse_command("boost", {})
    assert parse_command(
        "peak_target", {"peak_target_kw": 900, "minutes": 5, **WHO}
    ) == PeakTargetCommand(peak_target_kw=900.0, minutes=5.0, **WHO)


def test_reserve_and_peak_target_overrides_change_the_limits_the_cycle_uses() -> None:
    book = Book()
    op = book.operator()
    op.submit(ReserveCommand(soc_reserve_frac=0.6, minutes=5, **WHO), "api")
    op.submit(PeakTargetCommand(peak_target_kw=800.0, minutes=5, **WHO), "api")
    base = ControlLimits.from_config(CONFIG, peak_target_kw=2000.0)
    limits = op.peek(T0).limits(base)
    assert (limits.soc_min_frac, limits.soc_reserve_frac, limits.peak_target_kw) == (
        0.6,
        0.6,
        800.0,
    )
    # at soc 0.6 + margin no discharge, even for the peak guard; the guard holds 800 kW
    held = decide(snap(2500.0, soc=0.605), None, limits, T0)
    assert held.p_batt_kw == 0.0 and "soc guard" in held.reason
    assert import_target_kw(limits, 700.0) == 800.0 and import_target_kw(base, 700.0) == 2000.0


def test_a_pause_hands_every_battery_back_to_its_default_mode() -> None:
    book = Book()
    op = book.operator()
    assert op.peek(T0).pause_setpoints() is None
    op.submit(ModeCommand(mode="pause", minutes=5, **WHO), "api")
    sp = op.peek(T0).pause_setpoints()
    assert sp is not None and sp.default_mode and sp.p_batt_kw == 0.0
    assert sp.reason.startswith("operator: paused, pause until") and not sp.reason.startswith(
        "safe"
    )


LIMITS = ControlLimits.from_config(CONFIG, peak_target_kw=1500.0)


@given(
    manual=st.floats(-3000.0, 3000.0),
    grid=st.floats(-2000.0, 9000.0),
    batt=st.floats(-3000.0, 3000.0),
    soc=st.floats(0.0, 1.0),
)
def test_a_manual_setpoint_stays_inside_every_hard_limit(
    manual: float, grid: float, batt: float, soc: float
) -> None:
    sp = decide(snap(grid, batt, soc), None, LIMITS, T0, manual_kw=manual)
    net = grid + batt
    lo, hi = (
        LIMITS.soc_min_frac + LIMITS.soc_margin_frac,
        LIMITS.soc_max_frac - LIMITS.soc_margin_frac,
    )
    assert -LIMITS.charge_max_kw <= sp.p_batt_kw <= LIMITS.discharge_max_kw
    assert not (soc <= lo and sp.p_batt_kw > 0) and not (soc >= hi and sp.p_batt_kw < 0)
    after = net - sp.p_batt_kw
    if sp.p_batt_kw != manual and "limit" not in sp.reason and "soc guard" not in sp.reason:
        # moved only to keep the import cap or the export limit, never for the peak target
        assert after == pytest.approx(LIMITS.import_max_kw) or after == pytest.approx(
            -LIMITS.export_limit_kw
        )
    if sp.p_batt_kw == pytest.approx(manual):
        assert sp.reason.startswith("operator: manual")


def test_the_safe_state_comes_before_a_manual_setpoint() -> None:
    bad = Snapshot(
        time=T0,
        p_grid_kw=100.0,
        p_pv_kw=0.0,
        p_batt_kw=0.0,
        p_load_kw=100.0,
        soc_frac=0.5,
        faults=("bess: timeout",),
    )
    sp = decide(bad, None, LIMITS, T0, manual_kw=-2000.0)
    assert sp.reason.startswith("safe: device fault") and sp.default_mode
