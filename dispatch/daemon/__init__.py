"""The daemon (``dispatch run``): the composition root where the core and the adapters meet.

Role: the jobs of the one path, as plain functions over explicit dependencies
(``runtime.Services``) and published state (``runtime.SiteState``): ``planning.plan_job``
(forecast when due, plan from a fresh reading) and ``cycle.control_cycle`` (read, decide,
write, store); the ``Daemon`` (``core``) runs them with APScheduler 3, a replay (``sim``)
calls the same functions on a simulated clock. Also the carbon-ledger job, status and metrics
over HTTP on 127.0.0.1, systemd notify and watchdog, and a clean shutdown with the safe
state. The one home of apscheduler. Modules: ``clock`` (injectable, accelerable time),
``notify`` (sd_notify by hand), ``logs`` (journald-friendly, loud once), ``state`` (published
state, plan inputs), ``runtime`` (services and state of the jobs), ``history`` (measured
slot means in memory), ``feeds`` and ``prices`` (weather, day-ahead prices and intensity as
known at a time), ``files`` (sources another job keeps current, the PV fit), ``restore``
(the jobs' state from the store at start), ``planning`` and ``cycle`` (the jobs),
``reproduce`` (stored plans and setpoints re-run from their stored inputs), ``ledger_job``,
``metrics`` and ``observe`` (what a cycle tells them), ``core`` (``Daemon``), ``http`` and
``page`` (status server). No job module
imports ``core``.
"""

from dispatch.daemon.clock import Clock
from dispatch.daemon.core import Daemon, run, state_dir
from dispatch.daemon.logs import setup_logging
from dispatch.daemon.notify import Notifier

__all__ = ["Clock", "Daemon", "Notifier", "run", "setup_logging", "state_dir"]
