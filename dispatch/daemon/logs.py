"""Logging for the daemon: stderr, journald-friendly, and "loud once, quiet until recovery".

Role: ``setup_logging`` sends records to stderr; under systemd (``$JOURNAL_STREAM`` set) lines
carry a ``<N>`` syslog priority prefix and no time stamp (journald adds its own).
``FailureLog`` lets a job boundary log the first failure of a kind loudly (with the
traceback), repeats quietly (debug) and one line when it recovers. Imports the standard
library and ``dispatch.types``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from dispatch.types import DispatchError

LOGGER = "dispatch.daemon"
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}  # fmt: skip


class JournalFormatter(logging.Formatter):
    """``<priority>logger: message`` lines, which journald maps to its priority levels."""

    def format(self, record: logging.LogRecord) -> str:
        prio = _PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        return "\n".join(f"<{prio}>{line}" for line in text.splitlines())


def setup_logging(level: int = logging.INFO, env: Mapping[str, str] | None = None) -> None:
    """Configure the ``dispatch`` loggers to write to stderr (idempotent)."""
    e = os.environ if env is None else env
    handler = logging.StreamHandler(sys.stderr)
    if e.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("dispatch")
    for h in list(root.handlers):
        if getattr(h, "_dispatch_daemon", False):
            root.removeHandler(h)
    handler._dispatch_daemon = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    for noisy in ("apscheduler", "pymodbus"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@dataclass
class FailureLog:
    """Per-key failure counters: loud first failure, quiet repeats, one recovery line.

    Attributes
    ----------
    logger : logging.Logger
        Where to log.
    counts : dict of str to int
        Consecutive failures per key (a job name or ``"device:<name>"``).
    """

    logger: logging.Logger = field(default_factory=lambda: logging.getLogger(LOGGER))
    counts: dict[str, int] = field(default_factory=dict)

    def failed(self, key: str, message: str, exc: BaseException | None = None) -> bool:
        """Record a failure; returns True when it was the first (logged loudly)."""
        n = self.counts.get(key, 0) + 1
        self.counts[key] = n
        if n == 1:
            self.logger.error("%s: %s", key, message, exc_info=exc if _unexpected(exc) else None)
            return True
        self.logger.debug("%s: failing again (%d in a row): %s", key, n, message)
        return False

    def ok(self, key: str) -> int:
        """Record a success; returns how many failures it ended (logged once when > 0)."""
        n = self.counts.pop(key, 0)
        if n:
            self.logger.warning("%s: recovered after %d failure(s)", key, n)
        return n

    def failing(self) -> dict[str, int]:
        """Keys failing now and their counts."""
        return dict(self.counts)


def _unexpected(exc: BaseException | None) -> bool:
    """A traceback only for errors we did not raise on purpose."""
    return exc is not None and not isinstance(exc, DispatchError)
