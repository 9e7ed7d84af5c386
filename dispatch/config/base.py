"""Shared pieces of the configuration models: the strict frozen base model, unit-bearing
number types, time-of-day and time-zone parsing. May import only ``dispatch.types``."""

from __future__ import annotations

import re
import zoneinfo
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Frac = Annotated[float, Field(ge=0.0, le=1.0)]
PosFloat = Annotated[float, Field(gt=0.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]
DAY_TYPES = ("workday", "weekend", "holiday")
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_MMDD = re.compile(r"^(0[1-9]|1[0-2])-([0-2]\d|3[01])$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as 'Asia/Shanghai'"
        ) from exc
    return name


def minute_of_day(text: str) -> int:
    """Parse ``"HH:MM"`` (``"24:00"`` allowed) into minutes after midnight."""
    m = _HHMM.match(text)
    if not m or (m.group(1) == "24" and m.group(2) != "00"):
        raise ValueError(f"time of day {text!r} must be 'HH:MM' between 00:00 and 24:00")
    return int(m.group(1)) * 60 + int(m.group(2))
