"""Operator overrides: pause, a manual setpoint, a reserve SoC and a peak target, each expiring.

Role: the one write path of the REST API (``daemon.api``) and MQTT (``daemon.mqtt``). A
command is validated against the site's limits (``CommandError`` names the field and the
limit), stored as an event with who and why *before* it takes effect (no event, no command),
and kept with its expiry; the control cycle reads the overrides in force at its ``now``
(``Operator.in_force``), which drops the expired ones and reports each as an event of the
cycle. Overrides live in memory: a restart is back in auto (the stored events say what was
set). Thread-safe: the HTTP and MQTT threads submit, the control loop reads. Imports pydantic,
``dispatch.types``, ``dispatch.config`` and ``dispatch.control``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dispatch.config import SiteConfig
from dispatch.control import ControlLimits
from dispatch.types import DispatchError, Setpoints

#: Stores one event ``(time, level, kind, message)``; raises when it cannot.
Recorder = Callable[[dt.datetime, str, str, str], None]
Who = Annotated[str, Field(min_length=1, max_length=64, description="who sends it (a name)")]
Why = Annotated[str, Field(min_length=1, max_length=200, description="why (kept in the event)")]
Minutes = Annotated[float, Field(gt=0, description="minutes until it expires by itself")]


class CommandError(DispatchError):
    """A command that is refused: bad field, beyond the site's limits, or not stored."""


class CommandStoreError(CommandError):
    """A valid command refused because its event could not be stored (try again)."""


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # no "1" for 1, no true for 1.0
    who: Who
    why: Why


class ModeCommand(_Command):
    """Operating mode: ``auto`` (the plan), ``pause`` (each battery handed back to its own
    default mode) or ``manual`` (a fixed battery power); pause and manual need ``minutes``."""

    mode: Literal["auto", "pause", "manual"]
    p_batt_kw: float | None = Field(None, description="manual only: kW, > 0 discharge")
    minutes: Minutes | None = None


class ReserveCommand(_Command):
    """A reserve SoC the battery does not discharge below (null: clear the override)."""

    soc_reserve_frac: Annotated[float, Field(ge=0, le=1)] | None
    minutes: Minutes | None = None


class PeakTargetCommand(_Command):
    """A grid-import target the guard holds and the plan caps its import at (null: clear)."""

    peak_target_kw: Annotated[float, Field(ge=0)] | None
    minutes: Minutes | None = None


Command = ModeCommand | ReserveCommand | PeakTargetCommand
KINDS: dict[str, type[_Command]] = {
    "mode": ModeCommand,
    "reserve": ReserveCommand,
    "peak_target": PeakTargetCommand,
}


@dataclass(frozen=True)
class Override:
    """One override in force.

    Attributes
    ----------
    kind : str
        ``"mode"``, ``"reserve"`` or ``"peak_target"``.
    value : str or float
        ``"pause"`` or the manual kW (mode), the SoC fraction (reserve), the kW (peak target).
    until : datetime.datetime
        When it expires (tz-aware UTC).
    who, why : str
        From the command.
    set_at : datetime.datetime
        When it was accepted.
    """

    kind: str
    value: str | float
    until: dt.datetime
    who: str
    why: str
    set_at: dt.datetime

    def describe(self) -> str:
        """One line: what, until when, who and why."""
        v = self.value
        if self.kind == "mode":
            what = "pause" if v == "pause" else f"manual {v:g} kW"
        else:
            what = f"reserve soc {v:.3f}" if self.kind == "reserve" else f"peak target {v:g} kW"
        return f"{what} until {self.until.isoformat(timespec='seconds')} by {self.who}: {self.why}"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields."""
        d = dataclasses.asdict(self)
        d["until"], d["set_at"] = self.until.isoformat(), self.set_at.isoformat()
        return d


@dataclass(frozen=True)
class InForce:
    """The overrides one control cycle applies."""

    overrides: tuple[Override, ...] = ()

    def get(self, kind: str) -> Override | None:
        """The override of this kind, if any."""
        return next((o for o in self.overrides if o.kind == kind), None)

    @property
    def paused(self) -> Override | None:
        """The pause in force."""
        o = self.get("mode")
        return o if o is not None and o.value == "pause" else None

    @property
    def manual_kw(self) -> float | None:
        """The manual battery setpoint in force (kW, > 0 discharge)."""
        o = self.get("mode")
        return float(o.value) if o is not None and o.value != "pause" else None

    def limits(self, limits: ControlLimits) -> ControlLimits:
        """``limits`` with the reserve (a floor for every discharge) and the peak target."""
        reserve, target = self.get("reserve"), self.get("peak_target")
        if reserve is not None:
            frac = max(float(reserve.value), limits.soc_min_frac)
            limits = dataclasses.replace(
                limits, soc_min_frac=frac, soc_reserve_frac=max(frac, limits.soc_reserve_frac)
            )
        if target is not None:
            limits = dataclasses.replace(limits, peak_target_kw=float(target.value))
        return limits

    def pause_setpoints(self, revert_timeout_s: float | None = None) -> Setpoints | None:
        """The handback of a pause (every battery in its default mode), or None."""
        p = self.paused
        if p is None:
            return None
        return Setpoints(
            0.0, f"operator: paused, {p.describe()}", revert_timeout_s, default_mode=True
        )


def check_command(cmd: Command, config: SiteConfig, max_minutes: float) -> None:
    """Refuse a command beyond the site's limits (``CommandError`` naming field and limit)."""
    b, g, c = config.battery, config.grid, config.control
    minutes = cmd.minutes
    sets = not isinstance(cmd, ModeCommand) or cmd.mode != "auto"
    clearing = (isinstance(cmd, ReserveCommand) and cmd.soc_reserve_frac is None) or (
        isinstance(cmd, PeakTargetCommand) and cmd.peak_target_kw is None
    )
    if sets and not clearing:
        if minutes is None:
            raise CommandError("minutes: required (every override expires by itself)")
        if minutes > max_minutes:
            raise CommandError(
                f"minutes = {minutes:g} > {max_minutes:g}, the longest override "
                "([http] max_override_h)"
            )
    if isinstance(cmd, ModeCommand):
        p = cmd.p_batt_kw
        if cmd.mode != "manual":
            if p is not None:
                raise CommandError(f"p_batt_kw: only for mode 'manual', not '{cmd.mode}'")
            return
        if p is None or not math.isfinite(p):
            raise CommandError("p_batt_kw: mode 'manual' needs a finite battery power (kW)")
        if not -b.charge_max_kw <= p <= b.discharge_max_kw:
            raise CommandError(
                f"p_batt_kw = {p:g} kW is beyond the battery's limits: charge "
                f"{b.charge_max_kw:g} kW (negative), discharge "
                f"{b.discharge_max_kw:g} kW"
            )
    elif isinstance(cmd, ReserveCommand) and cmd.soc_reserve_frac is not None:
        hi = b.soc_max_frac - 2 * c.soc_margin_frac
        if not b.soc_min_frac <= cmd.soc_reserve_frac <= hi:
            raise CommandError(
                f"soc_reserve_frac = {cmd.soc_reserve_frac:g} is outside "
                f"[{b.soc_min_frac:g}, {hi:g}] (battery.soc_min_frac to "
                "soc_max_frac less twice control.soc_margin_frac)"
            )
    elif isinstance(cmd, PeakTargetCommand) and (cmd.peak_target_kw or 0.0) > g.import_max_kw:
        raise CommandError(
            f"peak_target_kw = {cmd.peak_target_kw:g} kW > grid.import_max_kw "
            f"{g.import_max_kw:g} kW"
        )


def parse_command(kind: str, doc: object) -> Command:
    """A command of ``kind`` from a JSON document (MQTT payloads); ``CommandError`` names the
    bad field."""
    model = KINDS.get(kind)
    if model is None:
        raise CommandError(f"unknown command '{kind}': one of {', '.join(KINDS)}")
    try:
        return model.model_validate(doc)  # type: ignore[return-value]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or kind
        raise CommandError(f"{kind}: {where}: {first['msg']}") from None


class Operator:
    """The overrides of one daemon.

    Parameters
    ----------
    config : SiteConfig
        Limits to check commands against; ``http.max_override_h``.
    now : callable
        The daemon clock (tz-aware UTC).
    record : Recorder
        Stores an event; a command is refused when its event cannot be stored.
    """

    def __init__(
        self, config: SiteConfig, now: Callable[[], dt.datetime], record: Recorder
    ) -> None:
        self.config, self.now, self.record = config, now, record
        self.max_minutes = config.http.max_override_h * 60.0
        self._lock = threading.Lock()
        self._overrides: dict[str, Override] = {}

    def submit(self, cmd: Command, source: str) -> Override | None:
        """Validate, store as an event, then apply ``cmd``; returns the override now in force
        for its kind (None: cleared, back to auto). ``source`` says where it came from
        (``"api"``, ``"mqtt"``). Raises ``CommandError`` (stored as a refused event)."""
        kind = next(k for k, m in KINDS.items() if isinstance(cmd, m))
        now = self.now()
        try:
            check_command(cmd, self.config, self.max_minutes)
        except CommandError as exc:
            refused = f"{source}: {kind} from {cmd.who} ({cmd.why}) refused: {exc}"
            with contextlib.suppress(CommandStoreError):  # the refusal itself matters more
                self._record(now, "warning", "operator_refused", refused)
            raise
        value = _value(cmd)
        new = None
        if value is not None:
            until = now + dt.timedelta(minutes=float(cmd.minutes))  # type: ignore[arg-type]
            new = Override(kind, value, until, cmd.who, cmd.why, now)
        message = (
            f"{source}: {new.describe()}"
            if new
            else f"{source}: {kind} cleared by {cmd.who}: {cmd.why}"
        )
        self._record(now, "warning" if new else "info", f"operator_{kind}", message)
        with self._lock:
            if new is None:
                self._overrides.pop(kind, None)
            else:
                self._overrides[kind] = new
        return new

    def _record(self, now: dt.datetime, level: str, kind: str, message: str) -> None:
        try:
            self.record(now, level, kind, message)
        except Exception as exc:
            raise CommandStoreError(f"not applied: cannot store its event ({exc})") from None

    def in_force(self, now: dt.datetime) -> tuple[InForce, list[str]]:
        """The overrides in force at ``now`` and one message per override that expired (the
        caller stores them as events)."""
        with self._lock:
            expired = [o for o in self._overrides.values() if o.until <= now]
            for o in expired:
                del self._overrides[o.kind]
            live = tuple(self._overrides.values())
        return InForce(live), [f"expired, back to the plan: {o.describe()}" for o in expired]

    def peek(self, now: dt.datetime) -> InForce:
        """The overrides in force at ``now``, leaving the expired ones for the cycle."""
        with self._lock:
            return InForce(tuple(o for o in self._overrides.values() if o.until > now))


def _value(cmd: Command) -> str | float | None:
    """What an override of ``cmd`` holds: ``"pause"`` or the manual kW (mode; None for auto),
    the SoC fraction (reserve), the kW (peak target); None clears it."""
    if isinstance(cmd, ModeCommand):
        if cmd.mode == "manual":
            return float(cmd.p_batt_kw)  # type: ignore[arg-type]  # checked by check_command
        return "pause" if cmd.mode == "pause" else None
    if isinstance(cmd, ReserveCommand):
        return cmd.soc_reserve_frac
    return cmd.peak_target_kw
