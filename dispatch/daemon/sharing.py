"""One site setpoint shared by several battery converters, and what a faulty one changes.

Role: ``split_kw`` gives each converter its part of the site's battery setpoint by configured
power, within its own limit, and hands what a converter cannot take (its limit reached, or it
is faulty) to the others by their configured power (water filling), so the parts add up to
the site setpoint whenever the healthy converters' limits allow. ``faulty`` names the
converters this cycle cannot command (not answering or backing off, values frozen, not
running, held after a read-back mismatch); ``degraded`` is the cycle's snapshot as the site
decision sees it while only some converters are faulty: without their faults, with the
healthy converters' limits, so the healthy ones go on (a fault of any other kind, or of every
converter, leaves the snapshot as it is: the site's safe state). Pure; imports ``types`` and
``devices``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping, Sequence

from dispatch.devices.client import DeviceClient
from dispatch.types import Snapshot

#: Power below which nothing is left to hand out (kW).
EPS_KW = 1e-9


def split_kw(
    site_kw: float,
    weight_kw: Mapping[str, float],
    limit_kw: Mapping[str, float],
    healthy: Collection[str],
) -> dict[str, float]:
    """Each converter's part of ``site_kw`` (kW, > 0 discharge; same sign as ``site_kw``).

    Parameters
    ----------
    site_kw : float
        The site's battery setpoint (kW, > 0 discharge).
    weight_kw : mapping of str to float
        Each converter's configured power in the setpoint's direction (kW, > 0): the shares'
        proportions.
    limit_kw : mapping of str to float
        Each converter's own limit in that direction (kW, >= 0; ``inf`` for none).
    healthy : collection of str
        The converters that may be commanded; every other one gets 0.

    Returns
    -------
    dict of str to float
        Every converter of ``weight_kw``: within ``[0, limit]`` in magnitude; the parts add
        up to ``site_kw`` when the healthy converters' limits allow, else to their sum.
    """
    want = abs(float(site_kw))
    sign = 1.0 if site_kw >= 0 else -1.0
    part = dict.fromkeys(weight_kw, 0.0)
    active = [n for n in weight_kw if n in healthy and limit_kw[n] > 0 and weight_kw[n] > 0]
    while active and want > EPS_KW:
        total = sum(weight_kw[n] for n in active)
        full = [n for n in active if want * weight_kw[n] / total >= limit_kw[n]]
        if not full:
            for n in active:
                part[n] = want * weight_kw[n] / total
            break
        for n in full:  # at their limit: the rest goes to the others
            part[n] = float(limit_kw[n])
            want -= part[n]
        active = [n for n in active if n not in full]
    return {n: sign * p for n, p in part.items()}


def weights_and_limits(
    site_kw: float, clients: Sequence[DeviceClient], snap: Snapshot | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """Configured power (1 kW each without one: equal shares) and own limit (the configured
    one, or the device's reported one in ``snap`` when lower; ``inf`` without either) of
    each converter in ``site_kw``'s direction (kW)."""
    discharge = site_kw > 0
    key = "p_discharge_max_kw" if discharge else "p_charge_max_kw"
    weights, limits = {}, {}
    for c in clients:
        configured = c.cfg.discharge_max_kw if discharge else c.cfg.charge_max_kw
        weights[c.name] = float(configured or 1.0)
        limit = float(configured) if configured else math.inf
        reported = abs(snap.values.get(f"{c.name}.{key}", math.nan)) if snap else math.nan
        limits[c.name] = min(limit, reported) if math.isfinite(reported) else limit
    return weights, limits


def faulty(clients: Sequence[DeviceClient], snap: Snapshot, now_s: float) -> set[str]:
    """The converters this cycle cannot command: backing off, stale (no fresh values), with
    a fault of their own in ``snap`` (not running, frozen), or held after a read-back
    mismatch."""
    out = set()
    for c in clients:
        own = any(f.startswith(f"{c.name}:") for f in snap.faults)
        if own or c.name in snap.stale or now_s < c.next_try_s or c.held_fault(now_s):
            out.add(c.name)
    return out


def degraded(snap: Snapshot, clients: Sequence[DeviceClient], bad: Collection[str]) -> Snapshot:
    """``snap`` as the site decision sees it while converters ``bad`` (of the battery
    converters ``clients``) are faulty and at least one is healthy: their faults and stale
    marks removed, the battery limits those of the healthy converters. ``snap`` itself when
    nothing is faulty, every converter is, or a fault or stale mark is not a faulty
    converter's (another device's, the tracking fault's)."""
    healthy = [c for c in clients if c.name not in bad]
    if not bad or not healthy:
        return snap
    mine = tuple(f for f in snap.faults if any(f.startswith(f"{n}:") for n in bad))
    if len(mine) != len(snap.faults) or not set(snap.stale) <= set(bad):
        return snap
    charge = _sum(weights_and_limits(-1.0, healthy, snap)[1].values())
    discharge = _sum(weights_and_limits(1.0, healthy, snap)[1].values())
    return dataclasses.replace(
        snap, faults=(), stale=(), p_charge_max_kw=charge, p_discharge_max_kw=discharge
    )


def healthy_batt_kw(snap: Snapshot, clients: Sequence[DeviceClient], bad: Collection[str]) -> float:
    """The battery power the healthy converters measured this cycle (kW, > 0 discharge);
    NaN when one of them reported none."""
    values = [snap.values.get(f"{c.name}.p_batt_kw", math.nan) for c in clients]
    values = [v for c, v in zip(clients, values, strict=True) if c.name not in bad]
    return math.fsum(values) if values and all(math.isfinite(v) for v in values) else math.nan


def _sum(values: Collection[float]) -> float:
    total = math.fsum(values)
    return total if math.isfinite(total) else math.nan
