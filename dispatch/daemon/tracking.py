"""Whether the battery follows its setpoint, as a fault: the safe state for a battery that
does not do what it accepted.

Role: count the cycles in a row whose measured battery power misses the setpoint the
devices accepted in the cycle before by more than the tolerance (``observe``'s rules, which
the ``dispatch_setpoint_not_following`` metric also follows); after
``control.follow_fault_cycles`` of them the fault latches for ``control.follow_fault_hold_s``
(clock seconds). While latched the cycle reports a device fault, so ``control.decide`` gives
the safe state (each battery handed back to its default mode); then control resumes and the
count starts again. Imports only the standard library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class TrackingFault:
    """The tracking fault of one site's batteries.

    Attributes
    ----------
    cycles : int
        Cycles in a row off the setpoint that raise the fault (0: never).
    hold_s : float
        How long the fault holds once raised (clock s).
    off_cycles : int
        Cycles in a row off the setpoint so far.
    until_s : float or None
        Monotonic clock second the fault holds until (None: no fault).
    """

    cycles: int
    hold_s: float
    off_cycles: int = 0
    until_s: float | None = None

    def observe(
        self, measured_kw: float, setpoint_kw: float | None, tolerance_kw: float, now_s: float
    ) -> str | None:
        """Count one cycle (kW, > 0 discharge; ``setpoint_kw`` None when there was nothing
        to follow); returns the fault's message when it is raised by this cycle."""
        if setpoint_kw is None or not (math.isfinite(measured_kw) and math.isfinite(setpoint_kw)):
            self.off_cycles = 0
            return None
        if abs(measured_kw - setpoint_kw) <= tolerance_kw:
            self.off_cycles = 0
            return None
        self.off_cycles += 1
        if self.cycles == 0 or self.off_cycles < self.cycles or self.latched(now_s):
            return None
        self.until_s, self.off_cycles = now_s + self.hold_s, 0
        return (
            f"battery not following: measured {measured_kw:.1f} kW against the accepted "
            f"{setpoint_kw:.1f} kW (tolerance {tolerance_kw:.1f} kW) for {self.cycles} "
            f"cycles; safe state for {self.hold_s:g} s"
        )

    def latched(self, now_s: float) -> bool:
        """Whether the fault holds at ``now_s``."""
        return self.until_s is not None and now_s < self.until_s

    def release(self, now_s: float) -> bool:
        """Clear a fault whose hold has ended; True when it did."""
        if self.until_s is not None and now_s >= self.until_s:
            self.until_s = None
            return True
        return False
