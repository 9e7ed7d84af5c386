"""systemd's notify protocol (``sd_notify``) written by hand: one datagram per message.

Role: tell systemd ``READY=1`` once the daemon runs, ``WATCHDOG=1`` after each completed
control cycle and ``STOPPING=1`` on exit. The socket comes from ``$NOTIFY_SOCKET`` (a path,
or ``@name`` for the abstract namespace); without it every call is a no-op. Never raises: a
lost notification is logged by the caller's watchdog, not by crashing the daemon. Imports only
the standard library.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping


def notify_address(env: Mapping[str, str] | None = None) -> str | None:
    """The datagram address of ``$NOTIFY_SOCKET`` (abstract names start with NUL), or None."""
    raw = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if not raw:
        return None
    if raw.startswith("@"):
        return "\0" + raw[1:]
    return raw if raw.startswith("/") else None


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """The watchdog period systemd expects (``$WATCHDOG_USEC``, s), or None when off."""
    e = os.environ if env is None else env
    usec = e.get("WATCHDOG_USEC", "")
    pid = e.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1e6


class Notifier:
    """Sends state lines to systemd; a no-op when the service is not ``Type=notify``.

    Parameters
    ----------
    address : str, optional
        The socket address; read from ``$NOTIFY_SOCKET`` when omitted.
    watchdog_min_s : float, optional
        Least real time between two ``WATCHDOG=1`` (s); a quarter of ``$WATCHDOG_USEC``
        (at most 1 s) when omitted, so a fast loop does not flood systemd.
    monotonic : callable
        Real monotonic seconds (tests may inject a fake).
    """

    def __init__(self, address: str | None = None, watchdog_min_s: float | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.address = address if address is not None else notify_address()
        if watchdog_min_s is None:
            interval = watchdog_interval_s()
            watchdog_min_s = min(interval / 4, 1.0) if interval else 1.0
        self.watchdog_min_s = watchdog_min_s
        self._mono = monotonic
        self._last_watchdog = -float("inf")
        self.is_stopping = False
        self.sent: list[str] = []
        self.errors = 0

    @property
    def enabled(self) -> bool:
        """True when there is a socket to talk to."""
        return bool(self.address)

    def send(self, *lines: str) -> bool:
        """Send ``lines`` (``"READY=1"``, ``"STATUS=..."``) in one datagram; True when sent."""
        if not self.address:
            return False
        payload = "\n".join(lines).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.connect(self.address)
                s.send(payload, socket.MSG_DONTWAIT)  # never block the control loop
        except OSError:
            self.errors += 1
            return False
        self.sent.append(payload.decode())
        return True

    def ready(self, status: str = "") -> bool:
        """``READY=1`` (and a status line)."""
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: call only after a completed control cycle; sent at most once per
        ``watchdog_min_s`` and never after ``STOPPING=1`` (a cycle still in flight when the
        stop began must not look like a live daemon). True when sent."""
        now = self._mono()
        if self.is_stopping or now - self._last_watchdog < self.watchdog_min_s:
            return False
        self._last_watchdog = now
        return self.send("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        """``STOPPING=1`` on the way out."""
        self.is_stopping = True
        return self.send("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        """A free-text status shown by ``systemctl status``."""
        return self.send(f"STATUS={text}")
