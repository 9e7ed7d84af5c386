"""Device clients: read a device through its register map, write battery setpoints safely.

Role: per configured device, a ``DeviceClient`` that discovers SunSpec models, reads every
mapped field into values in our units, and writes a ``Setpoints`` in the safe order (revert
timeout, then powers or rates, then mode, then command), reading each register back before the
next one, clamped to the device-reported limits, with a deadband, a write-rate limit, re-arming
of the revert timer at half its period and an exponential back-off after failures.
``read_snapshot`` merges all devices into one frozen ``Snapshot``. Time comes in as arguments
(``now`` UTC for the snapshot, ``now_s`` monotonic seconds for write timing).
Imports ``dispatch.config``, ``dispatch.types`` and this package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dispatch.config import DeviceSection
from dispatch.devices import codec, commands
from dispatch.devices.registers import RegisterMap, Resolved, load_map, resolve
from dispatch.devices.transport import Transport
from dispatch.types import DeviceError, Setpoints

MAX_BLOCK = 120
MAX_GAP = 16


#: Relative (and absolute, in the field's units) tolerance of the command check: a device
#: holding its last command reads back what was written, to its register's resolution.
DRIFT_TOL = 0.01


class ReadbackError(DeviceError):
    """A register read back differs from what was written: the device does not keep its
    commands (a fault; the client then tries the handback)."""


@dataclass(frozen=True)
class WriteOutcome:
    """What ``DeviceClient.write`` did.

    Attributes
    ----------
    action : str
        ``"written"``, ``"rearmed"``, ``"rewritten"`` (the device had dropped the last
        command: ``drifted`` names the fields), ``"deadband"``, ``"rate_limited"`` or
        ``"default_mode"``.
    p_batt_kw : float
        The setpoint after clamping (kW, > 0 discharge).
    clamped : bool
        True when the request was cut to a device or configured limit.
    drifted : tuple of str
        The command fields the device no longer held before a rewrite.
    """

    action: str
    p_batt_kw: float
    clamped: bool = False
    drifted: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeviceReading:
    """Decoded values of one device read (our units) and the fields it lacks; ``not_ready``
    says why a full read's running-state fields forbid commanding it (None: they allow it,
    or the map has none)."""

    values: dict[str, Any]
    missing: tuple[str, ...]
    frozen: bool = False
    not_ready: str | None = None


Block = tuple[str, int | None, int, int, list[Resolved]]


def _blocks(fields: list[Resolved]) -> list[Block]:
    """Group fields into (table, unit id, start, count, members) reads of nearby registers."""
    out: list[Block] = []
    groups = sorted({(f.spec.table, f.spec.unit_id or -1) for f in fields})
    for table, unit in groups:
        uid = None if unit < 0 else unit
        members = sorted(
            (f for f in fields if f.spec.table == table and f.spec.unit_id == uid),
            key=lambda f: f.address,
        )
        cur: list[Resolved] = []
        for f in members:
            if cur:
                start = cur[0].address
                end = max(c.address + c.spec.count for c in cur)
                if f.address - end > MAX_GAP or f.address + f.spec.count - start > MAX_BLOCK:
                    out.append((table, uid, start, end - start, cur))
                    cur = []
            cur.append(f)
        if cur:
            start = cur[0].address
            end = max(c.address + c.spec.count for c in cur)
            out.append((table, uid, start, end - start, cur))
    return out


class DeviceClient:
    """One configured device.

    Parameters
    ----------
    cfg : DeviceSection
        The ``[[devices]]`` entry.
    rmap : RegisterMap, optional
        The register map; loaded from ``cfg.register_map`` when omitted.
    """

    def __init__(self, cfg: DeviceSection, rmap: RegisterMap | None = None) -> None:
        self.cfg = cfg
        self.map = rmap if rmap is not None else load_map(cfg.register_map)
        self.transport = Transport(cfg)
        self.fields: dict[str, Resolved] | None = None
        self.models: dict[tuple[int, int], int] = {}
        self.last_written_kw: float | None = None
        self.last_write_s: float | None = None
        self.commanded: list[tuple[str, float]] = []  # the last command's field writes
        self.last_revert_s: float | None = None  # its revert timer (s)
        self.failures = 0
        self.next_try_s = -math.inf
        self.last_error: str | None = None  # the cause of the last failure
        self._last_image: list[list[int]] | None = None
        self._same_reads = 0
        self.readback_hold_until_s = -math.inf  # a command not kept: safe state until then

    @property
    def name(self) -> str:
        """The device's configured name."""
        return self.cfg.name

    @property
    def commands_battery(self) -> bool:
        """True when the daemon writes battery setpoints to this device."""
        return self.cfg.controls_battery and self.map.control is not None

    async def open(self) -> dict[str, Resolved]:
        """Connect and resolve field addresses (SunSpec discovery where the map needs it)."""
        if self.fields is None:
            bases = None
            if self.map.kind == "sunspec":
                bases = await self.transport.discover_sunspec(self.map.sunspec_bases)
                self.models = dict(bases)
            self.fields = resolve(self.map, bases)
        return self.fields

    def close(self) -> None:
        """Drop the connection; the next call reconnects."""
        self.transport.close()

    def backoff_reason(self, now_s: float) -> str | None:
        """While the device is backing off after failures, why (the wait left, in s, and
        the last failure's cause); else None."""
        if now_s >= self.next_try_s:
            return None
        last = f"; last: {self.last_error}" if self.last_error else ""
        return (f"backing off for {self.next_try_s - now_s:.1f} s after {self.failures} "
                f"failure(s){last}")

    def backoff_check(self, now_s: float) -> None:
        """``DeviceError`` while the device is backing off after failures."""
        reason = self.backoff_reason(now_s)
        if reason is not None:
            raise DeviceError(f"device {self.name!r}: {reason}")

    def held_fault(self, now_s: float) -> str | None:
        """While a read-back mismatch holds the device in the safe state (``backoff_max_s``
        after the last one), why; else None. A read that works does not clear it: the device
        answers, but does not keep what it is told."""
        left = self.readback_hold_until_s - now_s
        if left <= 0:
            return None
        return (f"did not keep its last command (read-back mismatch), handed back; safe state "
                f"for {left:.0f} s more")

    def record_success(self) -> None:
        """Reset the back-off after a successful exchange."""
        self.failures = 0
        self.next_try_s = -math.inf
        self.last_error = None

    def record_failure(self, now_s: float, cause: str) -> None:
        """Count a failure, keep its ``cause`` for the back-off messages, and back off
        exponentially (``backoff_initial_s`` doubling up to ``backoff_max_s``)."""
        self.failures += 1
        self.last_error = cause
        delay = self.cfg.backoff_initial_s * 2.0 ** (self.failures - 1)
        self.next_try_s = now_s + min(delay, self.cfg.backoff_max_s)

    async def read(self, names: list[str] | None = None) -> DeviceReading:
        """Read mapped fields and decode them into our units.

        Parameters
        ----------
        names : list of str, optional
            Only these fields (plus the scale-factor fields they need); all when omitted.

        Returns
        -------
        DeviceReading
            ``values`` by field name; ``missing`` lists fields the device does not have or
            answered with a "not implemented" sentinel.
        """
        fields = await self.open()
        wanted = set(names) if names is not None else set(fields)
        wanted |= {fields[n].spec.sf for n in list(wanted) if n in fields and fields[n].spec.sf}
        chosen = [fields[n] for n in wanted if n in fields]
        raw: dict[str, list[int]] = {}
        for table, uid, start, count, members in _blocks(chosen):
            regs = await self.transport.read(start, count, table, uid)
            for f in members:
                raw[f.spec.name] = regs[f.address - start : f.address - start + f.spec.count]
        # frozen is judged on the measured (read-only) points: our own writes to the control
        # registers must not make a frozen device look alive again
        image = [raw[n] for n in sorted(raw) if fields[n].spec.access != "rw"]
        values, missing = self._decode(raw, fields)
        missing += [n for n in sorted(wanted) if n not in fields and n not in values]
        why = commands.not_ready(self.map, values) if names is None else None
        return DeviceReading(values, tuple(sorted(set(missing))), self._frozen(image, names), why)

    def _decode(
        self, raw: dict[str, list[int]], fields: dict[str, Resolved]
    ) -> tuple[dict[str, Any], list[str]]:
        values: dict[str, Any] = {}
        missing: list[str] = []
        for name, words in raw.items():
            r = fields[name]
            try:
                sf = 0
                if r.spec.sf is not None:
                    sf = int(codec.raw_from_words(fields[r.spec.sf].spec, raw[r.spec.sf]))
                values[name] = codec.decode(r, words, sf)
            except codec.MissingValueError:
                missing.append(name)
                continue
            total = r.spec.sum_into
            if total is not None:
                values[total] = values.get(total, 0.0) + float(values[name])
        return values, missing

    def _frozen(self, image: list[list[int]], names: list[str] | None) -> bool:
        """Whether the measured points have read the same ``cfg.frozen_reads`` times in a row
        (latched until one of them moves)."""
        if names is not None:
            return False
        self._same_reads = self._same_reads + 1 if image == self._last_image else 0
        self._last_image = image
        return 0 < self.cfg.frozen_reads <= self._same_reads

    async def _sf_of(self, name: str) -> int:
        fields = await self.open()
        spec = fields[name].spec
        if spec.sf is None:
            return 0
        sf_field = fields[spec.sf]
        words = await self.transport.read(
            sf_field.address, 1, sf_field.spec.table, sf_field.spec.unit_id
        )
        return int(codec.raw_from_words(sf_field.spec, words))

    async def write_field(self, name: str, value: float) -> None:
        """Write one field (our units), read it back, ``DeviceError`` on any mismatch."""
        fields = await self.open()
        if name not in fields:
            raise DeviceError(f"device {self.name!r}: map {self.map.name!r} has no field {name!r}")
        r = fields[name]
        if r.spec.access != "rw":
            raise DeviceError(f"device {self.name!r}: field {name!r} is read-only")
        words = codec.encode(r, value, await self._sf_of(name))
        await self.transport.write(r.address, words, r.spec.unit_id)
        back = await self.transport.read(r.address, len(words), r.spec.table, r.spec.unit_id)
        if back != words:
            raise ReadbackError(
                f"device {self.name!r}: read-back mismatch at {r.address} ({name}): wrote "
                f"{words}, read {back}; no further control registers written"
            )

    async def limits_kw(self) -> tuple[float, float, float | None]:
        """Charge and discharge limits (kW, positive) and the 124 rate base, from the device
        where the map reports them, capped by the configured limits."""
        c = self.map.control
        if c is None:
            raise DeviceError(f"device {self.name!r}: map {self.map.name!r} is read-only")
        names = [n for n in (c.charge_limit_field, c.discharge_limit_field, c.rate_base_field) if n]
        reading = await self.read(names) if names else DeviceReading({}, ())
        dev_ch = reading.values.get(c.charge_limit_field or "", math.inf)
        dev_dis = reading.values.get(c.discharge_limit_field or "", dev_ch)
        reg_ch, reg_dis = await self._register_caps_kw()
        ch = min(abs(float(dev_ch)), self.cfg.charge_max_kw or math.inf, reg_ch)
        dis = min(abs(float(dev_dis)), self.cfg.discharge_max_kw or math.inf, reg_dis)
        if not (math.isfinite(ch) and math.isfinite(dis)):
            raise DeviceError(
                f"device {self.name!r}: no power limit reported by the device and none "
                "configured (set charge_max_kw and discharge_max_kw)"
            )
        base = reading.values.get(c.rate_base_field or "")
        return ch, dis, None if base is None else float(base)

    async def _check_revert_resolution(self, revert_s: float) -> None:
        """A revert timeout that rounds to 0 in its register would disable the timer."""
        name = self.map.control.revert_field if self.map.control else None
        if name is None:
            return
        spec = self.map.field(name)
        if codec.to_raw(spec, revert_s, await self._sf_of(name)) == 0:
            raise DeviceError(
                f"device {self.name!r}: revert timeout {revert_s} s rounds to 0 in {name} "
                f"({spec.unit or spec.type}); a 0 would disable the device's revert timer"
            )

    async def _register_caps_kw(self) -> tuple[float, float]:
        """What the power registers can hold (kW): a 16-bit W register stops at 32.7 or 65.5 kW."""
        c = self.map.control
        assert c is not None
        if c.kind == "sunspec_124":
            return math.inf, math.inf  # percent rates; WChaMax bounds them
        caps = []
        for name, sign in ((c.setpoint_field or c.charge_field, -1),
                           (c.setpoint_field or c.discharge_field, 1)):
            spec = self.map.field(str(name))
            if spec.type not in codec.INT_RANGE:
                caps.append(math.inf)
                continue
            lo, hi = codec.INT_RANGE[spec.type]
            f = codec.factor(spec, await self._sf_of(spec.name))
            ends = ((lo + 1) * f, (hi - 1) * f)
            caps.append(abs(min(ends)) if (c.kind == "signed" and sign < 0) else max(ends))
        return caps[0], caps[1]

    async def write(self, sp: Setpoints, now_s: float) -> WriteOutcome:
        """Command the battery.

        Parameters
        ----------
        sp : Setpoints
            The request (kW, site-bus sign); ``default_mode`` hands control back.
        now_s : float
            Monotonic time (s), for the rate limit, re-arming and back-off.

        Raises
        ------
        DeviceError
            On back-off, I/O failure, exception response or read-back mismatch; the device
            then backs off exponentially.
        """
        self.backoff_check(now_s)
        try:
            if sp.default_mode:
                await self.restore_default()
                return WriteOutcome("default_mode", 0.0)
            return await self._write(sp, now_s)
        except DeviceError as exc:
            self.record_failure(now_s, str(exc))
            self.last_written_kw = None  # a half-done sequence: the next write is a full one
            self.commanded = []
            raise

    async def _write(self, sp: Setpoints, now_s: float) -> WriteOutcome:
        if not math.isfinite(sp.p_batt_kw):
            raise DeviceError(f"device {self.name!r}: setpoint {sp.p_batt_kw} is not finite")
        ch, dis, base = await self.limits_kw()
        p = min(max(sp.p_batt_kw, -ch), dis)
        clamped = p != sp.p_batt_kw
        revert = sp.revert_timeout_s or self.cfg.revert_timeout_s
        await self._check_revert_resolution(revert)
        age = None if self.last_write_s is None else now_s - self.last_write_s
        rearm = age is not None and age >= revert / 2
        same_timer = revert == self.last_revert_s  # a new revert timer is always written
        skip = None
        if self.last_written_kw is not None and not rearm and same_timer:
            if abs(p - self.last_written_kw) < self.cfg.deadband_kw:
                skip = "deadband"
            elif age is not None and age < self.cfg.min_write_interval_s:
                skip = "rate_limited"
        drifted = await self._drifted() if skip else []
        if skip and not drifted:
            return WriteOutcome(skip, self.last_written_kw, clamped)  # type: ignore[arg-type]
        prev = self.last_written_kw
        writes = commands.command_writes(self.map, p, revert, base)
        try:
            for name, value in writes:
                await self.write_field(name, value)
        except ReadbackError as exc:  # the device does not keep what it is told: hand back
            self.readback_hold_until_s = now_s + self.cfg.backoff_max_s
            raise ReadbackError(f"{exc}; {await self._hand_back()}") from None
        self.last_written_kw, self.last_write_s = p, now_s
        self.record_success()
        self.commanded, self.last_revert_s = writes, revert
        if drifted:  # dropped out of our command (a reboot, a local operator): rewritten now
            return WriteOutcome("rewritten", p, clamped, tuple(drifted))
        unchanged = rearm and prev is not None and abs(p - prev) < self.cfg.deadband_kw
        return WriteOutcome("rearmed" if unchanged else "written", p, clamped)

    async def _drifted(self) -> list[str]:
        """The fields of the last command that the device no longer holds (compared within
        ``DRIFT_TOL`` of the value written, in the field's units)."""
        if not self.commanded:
            return []
        got = (await self.read([n for n, _ in self.commanded])).values
        return [n for n, v in self.commanded
                if not math.isclose(got.get(n, math.nan), v, rel_tol=DRIFT_TOL, abs_tol=DRIFT_TOL)]

    async def _hand_back(self) -> str:
        """Try the handback after a failed command; says how it went."""
        try:
            await self.restore_default()
        except DeviceError as exc:
            return f"the handback to the default mode failed too: {exc}"
        return "handed back to the device's default mode"

    async def restore_default(self) -> None:
        """Hand the battery back to the device's default mode (shutdown, fallback): command
        idle, powers 0, mode default, then the map's ``extra_default`` with the device's
        ``handback_values`` over it."""
        self.commanded = []
        for name, value in commands.default_writes(self.map, self.cfg.handback_values):
            await self.write_field(name, value)
        self.last_written_kw = None
        self.last_write_s = None
