"""Pure offsets registry: carbon-credit batches and the checks a registry must pass.

Role: the record type of a purchased carbon-credit batch and the registry checks (known credit
type, serial, tonnes > 0, plausible vintage, no double retirement). May import only
``dispatch.types``, numpy and the standard library; no I/O, no wall clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from dispatch.types import InputError

CREDIT_TYPES = ("CCER", "carbon_inclusive", "VCS", "GS", "other")


@dataclass(frozen=True)
class OffsetRecord:
    """One purchased carbon credit batch in the offsets registry.

    Attributes
    ----------
    credit_type : str
        One of ``CREDIT_TYPES`` (``"CCER"``, ``"carbon_inclusive"`` for local carbon-inclusive
        (普惠) credits, ``"VCS"``, ``"GS"``, ``"other"``).
    serial : str
        Registry serial number or batch id, unique per credit type.
    vintage_year : int
        Year the reduction took place.
    tonnes : float
        t CO2e in the batch (> 0).
    purchased_on : datetime.date
        Purchase date.
    retired_on : datetime.date or None
        Retirement (cancellation) date; None while held.
    registry : str
        Where the credit is registered (free text).
    """

    credit_type: str
    serial: str
    vintage_year: int
    tonnes: float
    purchased_on: dt.date
    retired_on: dt.date | None = None
    registry: str = ""


def _offset_problems(i: int, o: OffsetRecord) -> list[str]:
    where = f"offset {i} ({o.credit_type} {o.serial!r})"
    problems = []
    if o.credit_type not in CREDIT_TYPES:
        problems.append(f"{where}: credit_type must be one of {list(CREDIT_TYPES)}")
    if not o.serial.strip():
        problems.append(f"{where}: serial is empty")
    if not (np.isfinite(o.tonnes) and o.tonnes > 0):
        problems.append(f"{where}: tonnes = {o.tonnes} must be > 0")
    if not 1990 <= o.vintage_year <= 2100:
        problems.append(f"{where}: vintage_year = {o.vintage_year} must lie in 1990..2100")
    if o.retired_on is not None and o.retired_on < o.purchased_on:
        problems.append(
            f"{where}: retired_on {o.retired_on} is before purchased_on {o.purchased_on}"
        )
    if o.retired_on is not None and o.vintage_year > o.retired_on.year:
        problems.append(f"{where}: vintage {o.vintage_year} is after its retirement {o.retired_on}")
    return problems


def check_offsets(offsets: list[OffsetRecord]) -> list[str]:
    """Problems in an offsets registry, one line each (empty when valid).

    Each batch needs a known credit type, a serial, tonnes > 0, a plausible vintage, and a
    retirement not before its purchase nor before its vintage year. A serial (per credit type)
    may appear once: the same serial retired twice is a double retirement.
    """
    problems = [p for i, o in enumerate(offsets) for p in _offset_problems(i, o)]
    seen: dict[tuple[str, str], int] = {}
    for i, o in enumerate(offsets):
        key = (o.credit_type, o.serial.strip())
        if key in seen:
            j = seen[key]
            both = o.retired_on is not None and offsets[j].retired_on is not None
            what = "retired twice (double retirement)" if both else "listed twice"
            problems.append(f"offset {i} ({o.credit_type} {o.serial!r}): {what}, see offset {j}")
        else:
            seen[key] = i
    return problems


def validate_offsets(offsets: list[OffsetRecord]) -> None:
    """Raise ``InputError`` listing every problem ``check_offsets`` finds."""
    problems = check_offsets(offsets)
    if problems:
        raise InputError("offsets registry:\n" + "\n".join(f"  - {p}" for p in problems))
