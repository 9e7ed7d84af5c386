"""One control cycle's decision: the plan step in force plus a live reading -> battery setpoints.

Role: the pure, total core of the fast loop. Every input, however bad, maps to a bounded
``Setpoints`` with a reason; nothing here raises for data, performs I/O or reads the clock
(``now`` is an argument). May import only ``dispatch.types`` and ``dispatch.config``.

Precedence inside ``decide``:

1. **Safe state.** A clock that is not tz-aware, a snapshot older (or newer) than
   ``snapshot_max_age_s``, a device fault, stale or missing data (``not snapshot.ok``), a non
   finite or implausible grid/battery power or SoC -> ``safe_p_batt_kw`` (0 kW by default) with
   ``default_mode=True`` so the devices fall back to their own mode.
2. **Base setpoint.** The battery power of the plan slot containing ``now``; or, when there is no
   usable plan (none, status ``"fallback"``, older than ``plan_max_age_s``, ``now`` outside its
   horizon, unreadable), rule-based self-consumption: charge from PV surplus, discharge to cover
   import while the SoC is above the reserve (``soc_reserve_frac + soc_margin_frac``). An
   operator's manual setpoint (``manual_kw``) takes the plan's place; its guard holds only
   the import cap and the export limit.
3. **Live guard.** From the measured net load without the battery,
   ``net = p_grid_kw + p_batt_kw``, the grid power after a new setpoint ``p`` is ``net - p``.
   The guard keeps ``-export_limit <= net - p <= target``: if the import would exceed the
   target it discharges more (``p = planned + (grid - target)``), if the export would exceed
   the limit it charges more / discharges less. The import target is
   ``import_max_kw``, or with a peak target ``min(import_max_kw, max(peak_target_kw, planned
   import of the slot))`` so the month's peak so far is held between plans. The guard may
   discharge into the reserve; plan following ignores the reserve (the plan priced it).
   ``limits.guard = False`` turns off the import/peak correction of a fresh plan; the export
   limit (anti-backflow) and, in fallback, the import cap are always held.
   **Curtailed PV.** With export at the limit (``export_at_limit``) the inverters may be
   curtailing PV, so the measured net load hides the surplus; where the plan's PV forecast
   for the slot exceeds the PV measured, the battery charges that difference more (never
   raising the import above the target), and the next reading shows what was really there.
4. **Clamp** to the charge/discharge limits of the config and of the devices (when reported and
   finite) and the SoC guards: no discharge at/below ``soc_min_frac + margin``, no charge
   at/above ``soc_max_frac - margin``.

Sign convention as in ``dispatch.types``: ``p_batt_kw > 0`` discharge, ``p_grid_kw > 0`` import.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from dispatch.config import SiteConfig
from dispatch.types import Plan, Setpoints, Snapshot

#: Measured powers above this multiple of the largest configured limit are decoding errors.
PLAUSIBLE_FACTOR = 10.0
#: Export within this share of the PV DC peak of the export limit counts as at the limit.
LIMIT_TOL_FRAC = 0.01


@dataclass(frozen=True)
class ControlLimits:
    """Everything ``decide`` needs from the site configuration, plus the month's peak target.

    Attributes
    ----------
    import_max_kw : float
        Grid import cap (kW).
    export_limit_kw : float
        Grid export limit (kW, 0 on a zero-export site).
    charge_max_kw, discharge_max_kw : float
        Battery power limits at the AC bus (kW, >= 0).
    soc_min_frac, soc_max_frac, soc_reserve_frac : float
        SoC window and the reserve kept for the peak guard (fractions).
    soc_margin_frac : float
        Margin inside the SoC window at which charge/discharge stops (fraction).
    plan_max_age_s : float
        A plan older than this is stale (s); age from ``ControlState.plan_issued_at`` or, without
        it, from the plan's first slot start.
    plan_step_s : float
        Plan step, used for one-slot plans (s).
    snapshot_max_age_s : float
        A reading whose time differs from ``now`` by more than this is stale (s).
    safe_p_batt_kw : float
        Battery power of the safe state (kW), clamped to the limits.
    guard : bool
        Correct a fresh plan's import live (peak shaving); the export limit is always held.
    peak_target_kw : float or None
        The import (kW) the guard holds between plans: the daemon passes the larger of the
        billing month's peak so far and the plan's highest import in this month's slots (both
        cost no further demand charge). ``None`` holds only the import cap.
    plausible_kw : float
        Measured grid or battery power beyond this magnitude is treated as a bad reading (kW).
    limit_tol_kw : float
        Export within this of ``export_limit_kw`` counts as at the limit (kW): the inverters
        may be curtailing PV (``export_at_limit``).
    """

    import_max_kw: float
    export_limit_kw: float
    charge_max_kw: float
    discharge_max_kw: float
    soc_min_frac: float = 0.0
    soc_max_frac: float = 1.0
    soc_reserve_frac: float = 0.0
    soc_margin_frac: float = 0.01
    plan_max_age_s: float = 1800.0
    plan_step_s: float = 900.0
    snapshot_max_age_s: float = 15.0
    safe_p_batt_kw: float = 0.0
    guard: bool = True
    peak_target_kw: float | None = None
    plausible_kw: float = math.inf
    limit_tol_kw: float = 0.0

    def __post_init__(self) -> None:
        nonneg = ("import_max_kw", "export_limit_kw", "charge_max_kw", "discharge_max_kw",
                  "soc_margin_frac", "plan_max_age_s", "plan_step_s", "snapshot_max_age_s",
                  "limit_tol_kw")
        for name in nonneg:
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"ControlLimits.{name} = {value} must be finite and >= 0")
        if not math.isfinite(self.safe_p_batt_kw):
            raise ValueError(f"ControlLimits.safe_p_batt_kw = {self.safe_p_batt_kw} must be finite")
        lo, hi = self.soc_min_frac + self.soc_margin_frac, self.soc_max_frac - self.soc_margin_frac
        if not 0.0 <= self.soc_min_frac <= self.soc_reserve_frac <= self.soc_max_frac <= 1.0:
            raise ValueError("ControlLimits needs 0 <= soc_min <= soc_reserve <= soc_max <= 1")
        if lo >= hi:
            raise ValueError(f"soc margin {self.soc_margin_frac} closes the SoC window")
        p = self.peak_target_kw
        if p is not None and (not math.isfinite(p) or p < 0):
            raise ValueError(f"ControlLimits.peak_target_kw = {p} must be None or finite >= 0")
        if not self.plausible_kw > 0:
            raise ValueError(f"ControlLimits.plausible_kw = {self.plausible_kw} must be > 0")

    @classmethod
    def from_config(cls, config: SiteConfig, peak_target_kw: float | None = None) -> ControlLimits:
        """Build the limits from a validated site configuration.

        Parameters
        ----------
        config : SiteConfig
            Uses ``grid``, ``battery``, ``plan.step_min`` and ``control``.
        peak_target_kw : float, optional
            The billing month's peak so far (kW); see ``with_peak_target``.
        """
        g, b, c = config.grid, config.battery, config.control
        step_s = config.plan.step_min * 60.0
        pv_ac_kw = sum(a.ac_kw for a in config.pv)
        largest = max(g.import_max_kw, g.export_limit_kw, b.charge_max_kw, b.discharge_max_kw,
                      pv_ac_kw)  # fmt: skip
        limits = cls(
            import_max_kw=g.import_max_kw,
            export_limit_kw=g.export_limit_kw,
            charge_max_kw=b.charge_max_kw,
            discharge_max_kw=b.discharge_max_kw,
            soc_min_frac=b.soc_min_frac,
            soc_max_frac=b.soc_max_frac,
            soc_reserve_frac=b.reserve_frac,
            soc_margin_frac=c.soc_margin_frac,
            plan_max_age_s=c.plan_max_age_s if c.plan_max_age_s is not None else 2 * step_s,
            plan_step_s=step_s,
            snapshot_max_age_s=c.snapshot_max_age_s,
            safe_p_batt_kw=c.safe_p_batt_kw,
            guard=c.guard,
            plausible_kw=PLAUSIBLE_FACTOR * largest,
            limit_tol_kw=LIMIT_TOL_FRAC * config.pv_dc_kwp,
        )
        return limits.with_peak_target(peak_target_kw)

    def with_peak_target(self, peak_kw: float | None) -> ControlLimits:
        """A copy holding ``peak_kw`` (kW) as the month's peak target.

        ``None`` or a non-finite value drops the target (only the import cap is held); a
        negative value counts as 0.
        """
        if peak_kw is None or not math.isfinite(peak_kw):
            return dataclasses.replace(self, peak_target_kw=None)
        return dataclasses.replace(self, peak_target_kw=max(0.0, float(peak_kw)))


@dataclass(frozen=True)
class ControlState:
    """What the daemon knows about the plan beyond the plan itself.

    Attributes
    ----------
    plan_issued_at : datetime.datetime, optional
        When the plan was published (tz-aware). Without it a plan's age counts from its first
        slot start.
    """

    plan_issued_at: dt.datetime | None = None


class _Step(NamedTuple):
    slot_start: dt.datetime
    p_batt_kw: float
    p_import_kw: float
    p_pv_available_kw: float  # the plan's PV forecast before curtailment (NaN if unknown)


def export_at_limit(p_grid_kw: Any, limits: ControlLimits) -> bool:
    """Whether a grid reading (kW, import positive) shows export at the site's limit, where
    the inverters may be curtailing PV: the PV measured is then a lower bound of the PV
    available, and the net load (grid + battery) an upper bound of the true one. A reading
    that is not a number is not at the limit."""
    return bool(_num(p_grid_kw) <= -limits.export_limit_kw + limits.limit_tol_kw)


def hidden_pv_kw(snapshot: Snapshot, limits: ControlLimits, step: _Step | str) -> float:
    """PV the export limit may be hiding (kW, >= 0): with export at the limit, the plan's PV
    forecast for the slot above the PV measured; 0 otherwise or without a plan."""
    if not isinstance(step, _Step) or not export_at_limit(snapshot.p_grid_kw, limits):
        return 0.0
    hidden = step.p_pv_available_kw - _num(snapshot.p_pv_kw)
    return hidden if math.isfinite(hidden) and hidden > 0 else 0.0


def _aware(value: Any) -> dt.datetime | None:
    """``value`` if it is a tz-aware datetime (pandas Timestamps included), else None (also
    for pandas' NaT)."""
    if not isinstance(value, dt.datetime):
        return None
    try:
        return value if value.utcoffset() is not None else None
    except (ValueError, TypeError, OverflowError):  # NaT refuses utcoffset
        return None


def _num(value: Any) -> float:
    """``value`` as a float, NaN when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def snapshot_problem(snapshot: Snapshot, limits: ControlLimits, now: dt.datetime) -> str | None:
    """Why ``snapshot`` cannot be acted on at ``now``, or None when it can."""
    t = _aware(getattr(snapshot, "time", None))
    if t is None:
        return "stale snapshot: its time is not a tz-aware time stamp"
    try:
        age_s = (now - t).total_seconds()
    except (OverflowError, TypeError, ValueError):
        return "stale snapshot: its time cannot be compared with now"
    if not abs(age_s) <= limits.snapshot_max_age_s:
        when = "old" if age_s > 0 else "in the future"
        return f"stale snapshot: {abs(age_s):.1f} s {when} > {limits.snapshot_max_age_s:g} s"
    if snapshot.faults:
        return "device fault: " + "; ".join(map(str, snapshot.faults))
    if snapshot.stale:
        return "stale device data: " + ", ".join(map(str, snapshot.stale))
    if snapshot.missing:
        return "missing measurement: " + ", ".join(map(str, snapshot.missing))
    for name in ("p_grid_kw", "p_batt_kw", "soc_frac"):
        value = _num(getattr(snapshot, name))
        if not math.isfinite(value):
            return f"measurement {name} = {value} is not finite"
        if name != "soc_frac" and abs(value) > limits.plausible_kw:
            return f"implausible measurement {name} = {value:g} kW"
    soc = _num(snapshot.soc_frac)
    if not 0.0 <= soc <= 1.0:
        return f"soc out of range: soc_frac = {soc:g}"
    return None


def power_caps(snapshot: Snapshot, limits: ControlLimits) -> tuple[float, float, list[str]]:
    """Charge and discharge caps (kW, >= 0) after device limits and the SoC guards.

    Returns
    -------
    tuple of (float, float, list of str)
        ``(charge_cap_kw, discharge_cap_kw, notes)``; notes say which SoC guard closed a
        direction.
    """
    charge, discharge = limits.charge_max_kw, limits.discharge_max_kw
    dev_c, dev_d = _num(snapshot.p_charge_max_kw), _num(snapshot.p_discharge_max_kw)
    if math.isfinite(dev_c):
        charge = min(charge, max(dev_c, 0.0))
    if math.isfinite(dev_d):
        discharge = min(discharge, max(dev_d, 0.0))
    notes = []
    soc = _num(snapshot.soc_frac)
    if soc <= limits.soc_min_frac + limits.soc_margin_frac:
        discharge = 0.0
        notes.append(f"soc guard: soc {soc:.3f} at soc_min + margin, no discharge")
    if soc >= limits.soc_max_frac - limits.soc_margin_frac:
        charge = 0.0
        notes.append(f"soc guard: soc {soc:.3f} at soc_max - margin, no charge")
    return charge, discharge, notes


def plan_step(
    plan: Plan | None, limits: ControlLimits, now: dt.datetime, state: ControlState | None
) -> _Step | str:
    """The plan slot containing ``now``, or why the plan cannot be followed."""
    if plan is None:
        return "no plan"
    if plan.status == "fallback":
        return f"plan is a fallback ({plan.message or 'no reason given'})"
    try:
        index = plan.frame.index
        n = len(index)
        if n == 0:
            return "plan has no slots"
        start = index[0]
        step_s = (index[1] - index[0]).total_seconds() if n > 1 else limits.plan_step_s
        offset_s = (now - start).total_seconds()
        if step_s <= 0 or not 0.0 <= offset_s < n * step_s:
            return "now is outside the plan's horizon"
        issued = _aware(state.plan_issued_at) if state is not None else None
        age_s = (now - (issued or start)).total_seconds()
        if age_s > limits.plan_max_age_s or age_s < -limits.snapshot_max_age_s:
            return f"plan is stale: issued {age_s:.0f} s ago, max {limits.plan_max_age_s:g} s"
        row = plan.slot(int(offset_s // step_s))
        p_batt = _num(row["p_batt_kw"])
        p_import = max(_num(row["p_grid_kw"]), 0.0) if "p_grid_kw" in row else 0.0
        pv = _num(row.get("p_pv_kw", math.nan)) + _num(row.get("p_curtail_kw", 0.0))
        slot = index[int(offset_s // step_s)]
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
        return f"plan unreadable ({type(exc).__name__}: {exc})"
    if not math.isfinite(p_batt):
        return f"plan slot power is not finite ({p_batt})"
    return _Step(slot, p_batt, p_import if math.isfinite(p_import) else 0.0, pv)


def _safe(limits: ControlLimits, why: str) -> Setpoints:
    p = min(max(limits.safe_p_batt_kw, -limits.charge_max_kw), limits.discharge_max_kw)
    return Setpoints(p_batt_kw=float(p), reason=f"safe: {why}", default_mode=True)


def _self_consumption(
    net_kw: float, soc: float, limits: ControlLimits, why: str
) -> tuple[float, str]:
    """Rule-based base setpoint: battery power that would zero the grid flow, but no
    discharge at or below the reserve SoC (kept for the peak guard)."""
    p = net_kw
    note = f"fallback self-consumption ({why})"
    if p > 0 and soc <= limits.soc_reserve_frac + limits.soc_margin_frac:
        p = 0.0
        note += f"; at reserve soc {limits.soc_reserve_frac:.3f}, discharge left to the guard"
    return p, note


def guard_setpoint(
    p: float, net_kw: float, target_kw: float, export_kw: float
) -> tuple[float, str]:
    """Keep ``-export_kw <= net_kw - p <= target_kw`` by moving the battery setpoint ``p``
    (kW, > 0 discharge) for a net load ``net_kw`` (kW); returns the setpoint and a note."""
    grid = net_kw - p
    if grid > target_kw:
        return net_kw - target_kw, (
            f"peak guard: import {grid:.1f} kW > target {target_kw:.1f} kW, "
            f"+{grid - target_kw:.1f} kW discharge"
        )
    if grid < -export_kw:
        return net_kw + export_kw, (
            f"export guard: export {-grid:.1f} kW > limit {export_kw:.1f} kW, "
            f"{-grid - export_kw:.1f} kW toward charge"
        )
    return p, ""


def _clamp(p: float, charge_cap: float, discharge_cap: float, soc_notes: list[str]) -> tuple[
    float, str
]:
    if p > discharge_cap:
        why = "soc guard" if discharge_cap == 0 and soc_notes else "limit"
        return discharge_cap, f"{why}: clamped to discharge cap {discharge_cap:.1f} kW"
    if p < -charge_cap:
        why = "soc guard" if charge_cap == 0 and soc_notes else "limit"
        return -charge_cap, f"{why}: clamped to charge cap {charge_cap:.1f} kW"
    return p, ""


def import_target_kw(limits: ControlLimits, planned_import_kw: float | None) -> float:
    """The import the guard holds (kW): the cap, or the month's peak target (raised to the
    plan's own import in this slot, which the plan accepted) when one is set."""
    if limits.peak_target_kw is None:
        return limits.import_max_kw
    target = max(limits.peak_target_kw, planned_import_kw or 0.0)
    return min(limits.import_max_kw, target)


def decide(
    snapshot: Snapshot,
    plan: Plan | None,
    limits: ControlLimits,
    now: dt.datetime,
    state: ControlState | None = None,
    manual_kw: float | None = None,
) -> Setpoints:
    """Battery setpoint for the coming control cycle.

    Parameters
    ----------
    snapshot : Snapshot
        The live reading of every device (powers in kW, site-bus convention).
    plan : Plan or None
        The latest published plan.
    limits : ControlLimits
        Limits, margins, maximum ages and the month's peak target.
    now : datetime.datetime
        The current time (tz-aware).
    state : ControlState, optional
        When the plan was issued.
    manual_kw : float, optional
        An operator's fixed battery power (kW, > 0 discharge) in place of the plan: still
        inside the import cap, the export limit, the power limits and the SoC guards (not the
        peak target), and never outside the safe state's precedence.

    Returns
    -------
    Setpoints
        ``p_batt_kw`` within every limit (kW), with a reason naming the case: ``"plan"``,
        ``"fallback self-consumption"``, ``"operator: manual"``, ``"peak guard"``, ``"export
        guard"``, ``"soc guard"``, ``"limit"`` or ``"safe"``. Never raises for bad data.
    """
    now_utc = _aware(now)
    if now_utc is None:
        return _safe(limits, "clock: now is not a tz-aware time stamp")
    problem = snapshot_problem(snapshot, limits, now_utc)
    if problem is not None:
        return _safe(limits, problem)
    net_kw = _num(snapshot.p_grid_kw) + _num(snapshot.p_batt_kw)
    charge_cap, discharge_cap, soc_notes = power_caps(snapshot, limits)
    step = plan_step(plan, limits, now_utc, state)
    if manual_kw is not None and math.isfinite(manual_kw):
        p, notes, target = manual_kw, [f"operator: manual {manual_kw:.1f} kW"], limits.import_max_kw
        step = "manual setpoint"  # no plan slot: no forecast PV behind the export limit
    elif isinstance(step, _Step):
        p = step.p_batt_kw
        notes = [f"plan slot {step.slot_start.isoformat()}: {p:.1f} kW"]
        target = import_target_kw(limits, step.p_import_kw) if limits.guard else math.inf
    else:
        p, note = _self_consumption(net_kw, _num(snapshot.soc_frac), limits, step)
        notes = [note]
        target = import_target_kw(limits, None)
    p, note = guard_setpoint(p, net_kw, target, limits.export_limit_kw)
    notes.append(note)
    hidden = hidden_pv_kw(snapshot, limits, step)
    if hidden > 0:  # charge what the limit may be curtailing, never importing above target
        p_hidden, _ = guard_setpoint(p, net_kw - hidden, target, limits.export_limit_kw)
        p_hidden = max(p_hidden, net_kw - target)
        if p_hidden < p:
            notes.append(f"export at limit: +{p - p_hidden:.1f} kW charge for forecast PV "
                         "the limit may be curtailing")
            p = p_hidden
    p, note = _clamp(p, charge_cap, discharge_cap, soc_notes)
    notes.append(note)
    return Setpoints(p_batt_kw=float(p) + 0.0, reason="; ".join(n for n in notes if n))
