"""The daemon's clock: wall time and monotonic seconds, optionally accelerated.

Role: the one place (with the CLI) where ``dispatch`` reads the wall clock. A ``Clock`` with
``speed > 1`` runs ``speed`` clock seconds per real second from a chosen start, so the daemon
can drive a simulated plant whose clock runs fast (tests, demo). Scheduling stays in real
seconds: ``real_s`` converts a clock duration. Imports only the standard library.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable


class Clock:
    """Wall time (tz-aware UTC) and monotonic seconds for the daemon.

    Parameters
    ----------
    start : datetime.datetime, optional
        Clock time at construction (tz-aware); the real UTC time when omitted.
    speed : float
        Clock seconds per real second (1 = real time; > 1 accelerated).
    monotonic : callable, optional
        Real monotonic seconds (tests may inject a fake).
    wall : callable, optional
        Real UTC time (tests may inject a fake), used only when ``start`` is omitted and
        ``speed == 1``.
    """

    def __init__(
        self,
        start: dt.datetime | None = None,
        speed: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"clock speed = {speed} must be a finite number > 0")
        if start is not None and start.utcoffset() is None:
            raise ValueError(f"clock start {start!r} must be tz-aware")
        self.speed = float(speed)
        self._mono = monotonic
        self._wall = wall or (lambda: dt.datetime.now(dt.UTC))
        self._t0 = monotonic()
        self._start = None if start is None else start.astimezone(dt.UTC)
        if self._start is None and self.speed != 1.0:
            self._start = self._wall()

    @property
    def accelerated(self) -> bool:
        """True when the clock does not follow the real wall clock."""
        return self._start is not None

    def monotonic(self) -> float:
        """Clock seconds since construction (never goes back; s)."""
        return (self._mono() - self._t0) * self.speed

    def now(self) -> dt.datetime:
        """Current clock time (tz-aware UTC)."""
        if self._start is None:
            return self._wall()
        return self._start + dt.timedelta(seconds=self.monotonic())

    def real_s(self, clock_s: float) -> float:
        """Real seconds that ``clock_s`` clock seconds take (s)."""
        return clock_s / self.speed

    def until_boundary_s(self, period_s: float) -> float:
        """Clock seconds from now to the next multiple of ``period_s`` since the epoch (s);
        a full period when now sits exactly on one."""
        ts = self.now().timestamp()
        rest = period_s - (ts % period_s)
        return rest if rest > 1e-6 else period_s
