"""Commissioning a battery device: ``dispatch commission --config C``.

Role: walk each battery device of a new site through what the daemon will ask of it, at a
small power, and report pass or fail per check with what was measured:

1. ``connect``: connect and discover (SunSpec models where the map is SunSpec);
2. ``read``: read every point; battery power and SoC present, SoC in 0..1;
3. ``hold``: command 0 kW; the measured battery power settles within the tolerance;
4. ``charge`` / ``discharge``: command -P / +P kW; measured power follows within the
   tolerance before the timeout (discharge is skipped, not failed, at the SoC floor);
5. ``revert``: command +P with a short revert timer, stop re-arming; the device must drop
   the command by itself (its control registers back to the default) before the timer plus
   the timeout;
6. ``handback``: hand the battery back to its default mode; the control registers read back
   their handback values, the map's ``extra_default`` (SunSpec ``ChaGriSet`` = 0, PV only)
   and the device's ``handback_values`` included.

A device whose running-state field (``[control] running``) is not "ready" fails ``read``,
naming the state.

Stops at the first failed check of a device (the battery is then handed back). Real seconds
throughout (an accelerated simulator passes sooner). Imports this package, ``config`` and
``types``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import time
from dataclasses import dataclass

from dispatch.config import DeviceSection
from dispatch.devices import commands
from dispatch.devices.client import DeviceClient
from dispatch.devices.snapshot import read_snapshot
from dispatch.types import DeviceError, Setpoints

#: Test power as a share of the device's smaller power limit, and its floor (kW).
TEST_FRAC, TEST_MIN_KW = 0.05, 1.0
#: Tolerance of "follows" as a share of the test power, and its floor (kW).
TOL_FRAC, TOL_MIN_KW = 0.2, 0.5
POLL_S = 0.25
#: At or below this SoC the discharge check is skipped (not failed).
SOC_FLOOR = 0.10


@dataclass(frozen=True)
class Check:
    """One check's result: ``ok`` None means skipped (with why in ``detail``)."""

    device: str
    name: str
    ok: bool | None
    detail: str


@dataclass(frozen=True)
class Settings:
    """How hard the checks push (powers in kW, times in real s).

    Attributes
    ----------
    p_kw : float or None
        Test power; ``TEST_FRAC`` of the device's smaller limit (at least ``TEST_MIN_KW``)
        when None.
    follow_timeout_s : float
        How long the measured power may take to follow.
    revert_s : float
        The revert timer armed in the ``revert`` check.
    hold_s : float
        How long a followed power must stay followed.
    """

    p_kw: float | None = None
    follow_timeout_s: float = 10.0
    revert_s: float = 10.0
    hold_s: float = 5.0


async def _measured(c: DeviceClient) -> tuple[float, float]:
    snap = await read_snapshot([c], dt.datetime.now(dt.UTC), time.monotonic())
    if snap.faults:
        raise DeviceError("; ".join(snap.faults))
    return snap.p_batt_kw, snap.soc_frac


async def _follows(
    c: DeviceClient, target_kw: float, tol_kw: float, timeout_s: float, hold_s: float
) -> tuple[bool, str]:
    """Whether the measured battery power comes within ``tol_kw`` of ``target_kw`` before
    ``timeout_s`` and stays there for ``hold_s`` (a device that drops the command soon after,
    a local operator or a reboot, fails)."""
    t0 = time.monotonic()
    p = math.nan
    while time.monotonic() - t0 <= timeout_s:
        p, _ = await _measured(c)
        if abs(p - target_kw) <= tol_kw:
            break
        await asyncio.sleep(POLL_S)
    else:
        return False, (
            f"measured {p:.1f} kW, not within {tol_kw:.1f} kW of {target_kw:.1f} kW in "
            f"{timeout_s:g} s"
        )
    took = time.monotonic() - t0
    while time.monotonic() - t0 - took < hold_s:
        await asyncio.sleep(POLL_S)
        p, _ = await _measured(c)
        if abs(p - target_kw) > tol_kw:
            held = time.monotonic() - t0 - took
            return False, f"reached after {took:.1f} s, then left: {p:.1f} kW after {held:.1f} s"
    return True, f"{p:.1f} kW after {took:.1f} s, held {hold_s:g} s"


def _at_default(c: DeviceClient, values: dict[str, object], extras: bool = True) -> list[str]:
    """The control fields not at their handback value; ``extras`` False: only those a revert
    timer resets (command, powers, mode), not the map's ``extra_default`` (``ChaGriSet``)."""
    defaults = commands.default_writes(c.map, c.cfg.handback_values, extras=extras)
    return [n for n, v in defaults if not math.isclose(_num(values.get(n)), v, abs_tol=0.01)]


def _num(x: object) -> float:
    return float(x) if isinstance(x, int | float) else math.nan


async def _handback(c: DeviceClient) -> tuple[bool, str]:
    """Hand back; whether the control registers then read their default values."""
    await c.restore_default()
    left = _at_default(c, (await c.read()).values)
    return not left, "default mode" if not left else f"not reset: {', '.join(left)}"


async def commission_device(cfg: DeviceSection, s: Settings) -> list[Check]:
    """Run the checks on one device; never raises for device problems."""
    c = DeviceClient(cfg)
    out: list[Check] = []

    def check(name: str, ok: bool | None, detail: str) -> bool:
        out.append(Check(cfg.name, name, ok, detail))
        return ok is not False

    try:
        fields = await c.open()
        models = ", ".join(str(m) for m, _ in sorted(c.models)) or "fixed map"
        if not check("connect", True, f"{c.map.name}: {len(fields)} fields ({models})"):
            return out
        reading = await c.read()
        p, soc = await _measured(c)
        bad = not (math.isfinite(p) and 0.0 <= soc <= 1.0)
        got = f"{len(reading.values)} points, battery {p:.1f} kW, SoC {soc:.3f}"
        if not check("read", not bad, got + (" (out of range)" if bad else "")):
            return out
        if not c.commands_battery:
            check("control", None, "the device does not command the battery (skipped)")
            return out
        ch, dis, _ = await c.limits_kw()
        p_kw = s.p_kw if s.p_kw is not None else max(TEST_FRAC * min(ch, dis), TEST_MIN_KW)
        tol = max(TOL_FRAC * p_kw, TOL_MIN_KW, cfg.deadband_kw)
        steps = [("hold", 0.0), ("charge", -p_kw), ("discharge", p_kw)]
        for name, kw in steps:
            if name == "discharge" and soc <= SOC_FLOOR:
                check(name, None, f"SoC {soc:.3f} at its floor (skipped)")
                continue
            await c.write(Setpoints(kw, f"commission: {name}"), time.monotonic())
            ok, detail = await _follows(c, kw, tol, s.follow_timeout_s, s.hold_s)
            if not check(name, ok, f"command {kw:+.1f} kW: {detail}"):
                return out
        if c.map.control is None or c.map.control.revert_field is None:
            check(
                "revert",
                None,
                "the map has no revert timer: if the daemon stops without "
                "its handback, the device holds the last command (skipped)",
            )
            check("handback", *await _handback(c))
            return out
        await c.write(
            Setpoints(p_kw, "commission: revert", revert_timeout_s=s.revert_s), time.monotonic()
        )
        t0 = time.monotonic()
        left: list[str] = ["(not read)"]
        while time.monotonic() - t0 <= s.revert_s + s.follow_timeout_s:
            values = (await c.read([n for n, _ in c.commanded])).values
            left = _at_default(c, values, extras=False)
            if not left:
                break
            await asyncio.sleep(POLL_S)
        took = time.monotonic() - t0
        ok = not left
        detail = (
            f"dropped the command by itself after {took:.1f} s (timer {s.revert_s:g} s)"
            if ok
            else f"still commanded after {took:.1f} s: {', '.join(left)}"
        )
        if not check("revert", ok, detail):
            return out
        check("handback", *await _handback(c))
    except DeviceError as exc:
        done = {x.name for x in out}
        step = next(
            n
            for n in ("connect", "read", "hold", "charge", "discharge", "revert", "handback")
            if n not in done
        )
        check(step, False, str(exc))
    finally:
        with contextlib.suppress(DeviceError):  # already reported: the device does not answer
            await c.restore_default()
        c.close()
    return out


async def commission(devices: list[DeviceSection], s: Settings) -> list[Check]:
    """Every device's checks, one device after the other."""
    out: list[Check] = []
    for cfg in devices:
        out += await commission_device(cfg, s)
    return out


def format_checks(checks: list[Check]) -> str:
    """The pass/fail table."""
    mark = {True: "PASS", False: "FAIL", None: "skip"}
    width = max([len(c.device) for c in checks] + [6])
    lines = [f"{'device':<{width}}  {'check':<9}  result  detail"]
    lines += [f"{c.device:<{width}}  {c.name:<9}  {mark[c.ok]:<6}  {c.detail}" for c in checks]
    return "\n".join(lines)
