"""The site's fault level after a control cycle: ``ok``, ``warning`` or ``fault``, with why.

Role: one level for the whole site from what the cycle knows: ``fault`` in the safe state or
with a device that failed (``metrics.fault_level`` 2); ``warning`` with a device retrying
(level 1), a battery off its setpoint for some cycles (before the tracking fault), or a job
or the store failing; ``ok`` otherwise. The cycle stores an event when the level changes,
the status page and ``/api/v1/status`` show it, ``dispatch_site_fault_level`` exports it.
Imports only the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

LEVELS = ("ok", "warning", "fault")
#: The event level of each site level.
EVENT_LEVEL = {"ok": "info", "warning": "warning", "fault": "error"}


@dataclass(frozen=True)
class Health:
    """The site's level and the reasons for it (empty when ``ok``)."""

    level: str = "ok"
    reasons: tuple[str, ...] = ()

    @property
    def code(self) -> int:
        """0 ok, 1 warning, 2 fault."""
        return LEVELS.index(self.level)

    def describe(self) -> str:
        """``level`` or ``level: reason; reason``."""
        return f"{self.level}: {'; '.join(self.reasons)}" if self.reasons else self.level


def site_health(
    device_levels: Mapping[str, int],
    safe_reason: str | None,
    off_cycles: int,
    failing: Mapping[str, int],
) -> Health:
    """The site's ``Health``.

    Parameters
    ----------
    device_levels : mapping of str to int
        Each device's fault level (0 ok, 1 retrying, 2 failed).
    safe_reason : str or None
        The safe state's reason when the cycle ended in it.
    off_cycles : int
        Cycles in a row the battery missed its accepted setpoint.
    failing : mapping of str to int
        Failing jobs and store writes (``FailureLog.failing``) and their counts.
    """
    faults, warnings = [], []
    if safe_reason is not None:
        faults.append(safe_reason)
    for name, level in device_levels.items():
        if level >= 2:
            faults.append(f"device {name} failed")
        elif level == 1:
            warnings.append(f"device {name} retrying")
    if off_cycles > 0:
        warnings.append(f"battery off its setpoint for {off_cycles} cycle(s)")
    warnings += [f"{key} failing ({n}x)" for key, n in failing.items()]
    if faults:
        return Health("fault", tuple(faults + warnings))
    return Health("warning", tuple(warnings)) if warnings else Health()
