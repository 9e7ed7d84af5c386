"""The daemon (``dispatch run``): the composition root where the core and the adapters meet.

Role: APScheduler 3 jobs for control, plan, forecast and housekeeping, and the carbon-ledger
job after cycles that complete an interval; immutable state swapped between them; status and
metrics over HTTP on 127.0.0.1; systemd notify and watchdog; clean shutdown with the safe
state. The one home of apscheduler. Imports the pure core (``control``, ``pipeline``,
``carbon_ledger``, ``carbon_report`` and what they compose), the adapters (``devices``,
``store``) and ``config``/``types``; nothing imports it but the CLI. Modules: ``clock``
(injectable, accelerable time), ``notify`` (sd_notify by hand), ``logs`` (journald-friendly,
loud once), ``state`` (published state), ``metrics`` (Prometheus), ``cycle`` (control cycle),
``planning`` (forecast and plan jobs), ``ledger_job`` (carbon ledger records and metrics),
``core`` (``Daemon``), ``http`` and ``page`` (status server).
"""

from dispatch.daemon.clock import Clock
from dispatch.daemon.core import Daemon, run, state_dir
from dispatch.daemon.logs import setup_logging
from dispatch.daemon.notify import Notifier

__all__ = ["Clock", "Daemon", "Notifier", "run", "setup_logging", "state_dir"]
