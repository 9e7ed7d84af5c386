"""Where the store lives: the service's state directory.

Role: the one reading of systemd's ``$STATE_DIRECTORY``, shared by the daemon and the command
line (``dispatch carbon``, ``dispatch history``), so neither needs the other. Imports only the
standard library.
"""

from __future__ import annotations

import os


def state_dir() -> str | None:
    """systemd's ``$STATE_DIRECTORY`` (its first entry), or None when unset or empty."""
    raw = os.environ.get("STATE_DIRECTORY", "")
    return raw.split(":")[0] or None
