"""Immutable state the daemon publishes between its jobs and to the status server.

Role: each job builds a new frozen object and swaps the daemon's reference to it, so a reader
(the control loop, the HTTP thread) always sees one consistent version without locks. Also
the demand-peak tracker over plan-slot averages. Imports ``dispatch.types`` and pandas.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import pandas as pd

from dispatch.types import Plan, Setpoints, Snapshot


@dataclass(frozen=True)
class ForecastState:
    """PV and load expected over a window longer than the plan horizon.

    Attributes
    ----------
    frame : pandas.DataFrame
        ``p_pv_kw`` and ``p_load_kw`` (kW) by UTC slot start.
    issued_at : datetime.datetime
        When it was made (clock time, UTC).
    source : str
        What it is made of (``"clear-sky pv; load history 28 d"``, ``"fallback: ..."``).
    """

    frame: pd.DataFrame
    issued_at: dt.datetime
    source: str

    @property
    def is_fallback(self) -> bool:
        """True when the load part is a fallback."""
        return self.source.startswith("fallback")


@dataclass(frozen=True)
class PlanState:
    """The plan in force.

    Attributes
    ----------
    plan : Plan
        The schedule.
    plan_id : int or None
        Its row id in the store (None when storing failed).
    issued_at : datetime.datetime
        When it was published (clock time, UTC).
    peak_target_kw : float or None
        Import the live guard holds this month (kW): the larger of the month's peak so far
        and the plan's highest import in this month's slots; None without a demand charge.
    forecast_source : str
        Where its forecast came from.
    """

    plan: Plan
    plan_id: int | None
    issued_at: dt.datetime
    peak_target_kw: float | None
    forecast_source: str


@dataclass(frozen=True)
class CycleState:
    """The last completed control cycle.

    Attributes
    ----------
    time : datetime.datetime
        When the setpoint was decided (clock time, UTC).
    snapshot : Snapshot
        The reading.
    setpoints : Setpoints
        The decision for the whole site (kW, > 0 discharge).
    written_kw : float or None
        Sum of what the devices accepted and read back (kW); None when a write failed.
    actions : dict of str to str
        Per device: the write action or the error.
    cycle_s : float
        Real duration of the cycle (s).
    """

    time: dt.datetime
    snapshot: Snapshot
    setpoints: Setpoints
    written_kw: float | None
    actions: dict[str, str] = field(default_factory=dict)
    cycle_s: float = math.nan


def billing_month_of(t: dt.datetime, timezone: str) -> str:
    """Billing-month label ``"YYYY-MM"`` of ``t`` counted in ``timezone``."""
    return pd.Timestamp(t).tz_convert(timezone).strftime("%Y-%m")


@dataclass
class PeakTracker:
    """Mean grid import per plan slot; reports a slot's mean when the slot is over.

    Attributes
    ----------
    step_s : float
        Plan step (s).
    slot_start : pandas.Timestamp or None
        The slot being averaged.
    """

    step_s: float
    slot_start: pd.Timestamp | None = None
    _sum_kw: float = 0.0
    _n: int = 0

    def add(self, t: dt.datetime, p_grid_kw: float) -> tuple[pd.Timestamp, float] | None:
        """Add a reading at ``t``; returns ``(slot start, mean import kW)`` of the slot that
        just ended (import only: export counts as 0), else None."""
        start = pd.Timestamp(t).floor(pd.Timedelta(seconds=self.step_s))
        done = None
        if self.slot_start is not None and start != self.slot_start and self._n:
            done = (self.slot_start, max(self._sum_kw / self._n, 0.0))
        if start != self.slot_start:
            self.slot_start, self._sum_kw, self._n = start, 0.0, 0
        if math.isfinite(p_grid_kw):
            self._sum_kw += p_grid_kw
            self._n += 1
        return done
