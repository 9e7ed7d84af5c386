"""The ledger job: one carbon-ledger record per completed plan interval, and the carbon metrics.

Role: after a control cycle that crossed an interval boundary, read the stored cycle samples
of the completed intervals not yet in the ledger, build their records through
``dispatch.carbon_ledger`` (the same path the backtest tests use) and append them with the
ledger head in one store transaction; then recompute the month-to-date figures for
``/metrics`` from the ledger and the offsets registry, as ``dispatch carbon report`` would.
Imports ``carbon_ledger``, ``carbon_report``, ``store``, ``config`` and ``types``.

Restarts are idempotent: the next interval to record is the stored head's ``end_utc``, so an
interval is never recorded twice, and appends must continue the stored head. Intervals
without a valid sample (the daemon was down, or every reading was faulty) are not recorded;
each such gap is logged and stored as a ``ledger_gap`` event when the next record is appended.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from dispatch import carbon_ledger, carbon_report
from dispatch.config import SiteConfig
from dispatch.ledger import TIME_FORMAT
from dispatch.store import Store

if TYPE_CHECKING:
    from dispatch.daemon.core import Daemon

log = logging.getLogger("dispatch.daemon")
#: Measurement time (h) one job run reads at most; a long backlog is taken in several runs.
CATCH_UP_H = 6.0


@dataclass
class LedgerBook:
    """What the ledger job remembers between runs (all of it can be lost: it is re-derived).

    Attributes
    ----------
    step : pandas.Timedelta
        Interval length (the plan step).
    scanned_until : pandas.Timestamp or None
        Samples before it were read already (no valid one left to record).
    ci_known : dict
        Intensity (g CO2/kWh) by UTC interval start from a forecast that carried a series.
    """

    step: pd.Timedelta
    scanned_until: pd.Timestamp | None = None
    behind: bool = True
    ci_known: dict[pd.Timestamp, float] = field(default_factory=dict)
    _checked: pd.Timestamp | None = None

    def due(self, now: dt.datetime) -> bool:
        """True when an interval completed since the last run, or a backlog remains."""
        slot = pd.Timestamp(now).floor(self.step)
        return self.behind or self._checked is None or slot > self._checked

    def remember_ci(self, frame: pd.DataFrame | None, keep_from: pd.Timestamp) -> None:
        """Keep the series intensity of a forecast frame (if it has one) for its slots."""
        if frame is not None and "ci_g_per_kwh" in frame.columns:
            for t, v in frame["ci_g_per_kwh"].dropna().items():
                self.ci_known[pd.Timestamp(t)] = float(v)
        self.ci_known = {t: v for t, v in self.ci_known.items() if t >= keep_from}

    def ci_series(self) -> pd.Series:
        """The remembered intensities as a series (g CO2/kWh)."""
        return pd.Series(self.ci_known, dtype=float)


@dataclass(frozen=True)
class Appended:
    """Outcome of one ``append_completed`` run.

    Attributes
    ----------
    records : int
        Records appended.
    gaps : list of tuple of str
        ``(from, to)`` UTC text of the intervals left unrecorded before appended records.
    behind : bool
        True when completed intervals remain to be read (a backlog).
    """

    records: int
    gaps: list[tuple[str, str]]
    behind: bool


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=dt.UTC))


def append_completed(store: Store, config: SiteConfig, now: dt.datetime,
                     book: LedgerBook) -> Appended:  # fmt: skip
    """Append the records of the completed intervals not yet in the ledger (store thread).

    Parameters
    ----------
    store : Store
        The history with the cycle samples (``measurements``) and the ledger.
    config : SiteConfig
        Plan step, configured intensity, export limit.
    now : datetime.datetime
        Clock time; intervals ending at or before its plan-step floor are complete.
    book : LedgerBook
        Remembered scan position and series intensities (updated).
    """
    step, until = book.step, pd.Timestamp(now).floor(book.step)
    head = store.ledger_head()
    start = _utc(head.end_utc) if head.end_utc else None
    marks = [t for t in (start, book.scanned_until) if t is not None]
    scan = max(marks) if marks else None
    first = store.first_measurement_time(None if scan is None else scan.to_pydatetime())
    if first is None or pd.Timestamp(first).floor(step) + step > until:
        return Appended(0, [], False)
    lo = pd.Timestamp(first).floor(step)
    hi = min(lo + pd.Timedelta(hours=CATCH_UP_H), until)
    rows = store.rows("measurements", lo.to_pydatetime(), hi.to_pydatetime())
    flows = carbon_ledger.interval_flows(carbon_ledger.samples_from_rows(rows), step, hi)
    if start is not None:
        flows = flows[flows.index >= start]  # never before the head (e.g. after a step change)
    records = carbon_ledger.interval_records(flows, config, step, book.ci_series(),
                                             head.record_hash)  # fmt: skip
    store.append_ledger(r._asdict() for r in records)
    book.scanned_until = hi
    expected = start if start is not None else lo
    gaps = []
    for t in flows.index:
        if t > expected:
            gaps.append((expected.strftime(TIME_FORMAT), t.strftime(TIME_FORMAT)))
        expected = t + step
    return Appended(len(records), gaps, hi < until)


def carbon_figures(store: Store, config: SiteConfig, now: dt.datetime) -> dict[str, Any]:
    """Month-to-date and year-to-date figures of the ledger, as the carbon report gives them.

    Returns
    -------
    dict
        ``month`` (site-local ``YYYY-MM``), ``location_t_co2`` and ``market_t_co2`` (this
        month so far), ``net_month_t_co2`` and ``net_year_t_co2`` (basis emissions minus the
        offsets retired in the month / year), ``target_year`` (or None),
        ``offsets_needed_t_co2`` (or None) and ``records``.
    """
    records = carbon_ledger.records_from_rows(store.ledger())
    offsets = carbon_ledger.offsets_from_rows(store.offsets())
    month = pd.Timestamp(now).tz_convert(config.site.timezone).strftime("%Y-%m")
    report = carbon_report.build_report(records, offsets, config, month[:4])
    row = next(r for r in report["months"] if r["month"] == month)
    target = report["target"]
    return {
        "month": month,
        "location_t_co2": row["location_kg_co2"] / 1000.0,
        "market_t_co2": row["market_kg_co2"] / 1000.0,
        "net_month_t_co2": row["net_t_co2"],
        "net_year_t_co2": report["totals"]["net_t_co2"],
        "target_year": target.get("target_year"),
        "offsets_needed_t_co2": target.get("offsets_needed_t_co2"),
        "records": len(records),
    }


async def ledger_job(d: Daemon) -> Appended:
    """Record completed intervals, report gaps once, refresh the carbon metrics."""
    now = d.clock.now()
    book = d.ledger_book
    fs = d.forecast_state
    book.remember_ci(fs.frame if fs is not None else None,
                     pd.Timestamp(now).floor(book.step) - pd.Timedelta(days=1))  # fmt: skip
    done = await d.in_store(append_completed, d.store, d.config, now, book)
    book.behind = done.behind
    book._checked = pd.Timestamp(now).floor(book.step)
    for lo, hi in done.gaps:
        message = f"no valid measurements from {lo} to {hi}: those intervals are not recorded"
        log.warning("carbon ledger: %s", message)
        await d._event("warning", "ledger_gap", message)
    if done.records or d.carbon_figures is None:
        figures = await d.in_worker(carbon_figures, d.store, d.config, now)
        d.carbon_figures = figures
        d.metrics.carbon(figures)
    return done
