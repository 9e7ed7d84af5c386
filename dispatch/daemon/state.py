"""Immutable state the daemon publishes between its jobs and to the status server.

Role: each job builds a new frozen object and swaps the daemon's reference to it, so a reader
(the control loop, the HTTP thread) always sees one consistent version without locks.
Imports ``dispatch.types`` and pandas.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dispatch.types import Forecast, Plan, Setpoints, Snapshot


@dataclass(frozen=True)
class ForecastState:
    """The forecast in force: PV, load, prices and intensity over a window longer than the
    plan horizon, complete (every column the optimiser needs).

    Attributes
    ----------
    forecast : Forecast
        By UTC slot start; with the load's quantile and paths where the plan sizes a peak
        reserve.
    forecast_id : int or None
        Its row id in the store (None when storing failed).
    issued_at : datetime.datetime
        When it was made (clock time, UTC).
    source : str
        What it is made of (``"pv: weather open_meteo, intra-day x0.9; load: history 28.0
        d; ..."``).
    warmup : str or None
        Why the load part is a warm-up fallback (too little measured load), else None.
    fallbacks : tuple of str
        The inputs that fell back from their configured source (``"weather"``, ...).
    ci_series : bool
        Whether its intensity came from a source (a series), not from the configuration.
    """

    forecast: Forecast
    forecast_id: int | None
    issued_at: dt.datetime
    source: str
    warmup: str | None = None
    fallbacks: tuple[str, ...] = ()
    ci_series: bool = False

    @property
    def frame(self) -> pd.DataFrame:
        """The forecast's frame."""
        return self.forecast.frame

    @property
    def is_fallback(self) -> bool:
        """True when the load part is a warm-up fallback."""
        return self.warmup is not None


@dataclass(frozen=True)
class PlanInputs:
    """Everything a plan was solved from besides its forecast: what ``dispatch plan
    --stored`` needs to reproduce it.

    Attributes
    ----------
    forecast_id : int or None
        The stored forecast it sliced.
    soc_frac : float or None
        Measured state of charge (None: ``battery.soc_initial_frac``).
    peak_so_far_kw, held_target_kw : dict of str to float
        Per billing month, the peak so far and the guard's target in force (kW).
    import_cap_kw : float or None
        The warm-up's cap on the planned import (kW), None outside warm-up.
    """

    forecast_id: int | None
    soc_frac: float | None
    peak_so_far_kw: dict[str, float]
    held_target_kw: dict[str, float]
    import_cap_kw: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the store keeps them with the plan)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PlanInputs:
        """The inverse of ``as_dict``."""
        soc = doc.get("soc_frac")
        cap = doc.get("import_cap_kw")
        return cls(doc.get("forecast_id"), None if soc is None else float(soc),
                   {str(k): float(v) for k, v in dict(doc.get("peak_so_far_kw", {})).items()},
                   {str(k): float(v) for k, v in dict(doc.get("held_target_kw", {})).items()},
                   None if cap is None else float(cap))


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
        and the plan's highest import in this month's slots; in warm-up the peak so far
        alone (None while it is 0); None without a demand charge.
    forecast_source : str
        Where its forecast came from.
    inputs : PlanInputs, optional
        What it was solved from.
    warmup : str or None
        Why it runs in warm-up (its forecast's load is a fallback), else None.
    """

    plan: Plan
    plan_id: int | None
    issued_at: dt.datetime
    peak_target_kw: float | None
    forecast_source: str
    inputs: PlanInputs | None = None
    warmup: str | None = None


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
    """Billing-month label ``"YYYY-MM"`` of ``t`` counted in ``timezone`` (a tz-aware
    datetime goes through the zone's rules directly, as pandas' ``tz_convert`` would)."""
    zone = _zone(timezone) if isinstance(t, dt.datetime) and t.utcoffset() is not None else None
    local = t.astimezone(zone) if zone is not None else pd.Timestamp(t).tz_convert(timezone)
    return f"{local.year:04d}-{local.month:02d}"


@functools.lru_cache(maxsize=16)
def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The IANA zone ``name``; None for a name only pandas knows (then pandas converts)."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
