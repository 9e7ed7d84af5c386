"""The ledger job: one carbon-ledger record per completed plan interval, and the carbon metrics.

Role: after a control cycle that crossed an interval boundary, read the stored cycle samples of
the completed intervals not yet in the ledger, build their records through
``dispatch.carbon.compose`` (the same path the backtest tests use) and append them with the
ledger head in one store transaction; then recompute the month-to-date figures for ``/metrics``
from the ledger and the chained carbon instruments, as ``dispatch carbon report`` would. Imports
``dispatch.carbon``'s ``compose``, ``factor_file``, ``instruments`` and ``report``, ``store``,
``config`` and ``types``.

Restarts are idempotent: the next interval to record is the stored head's ``end_utc``, so an
interval is never recorded twice, and appends must continue the stored head. Intervals
without a valid sample (the daemon was down, or every reading was faulty) are not recorded;
each such gap is logged and stored as a ``ledger_gap`` event when the next record is appended.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dispatch.carbon import compose, factor_file, instruments
from dispatch.carbon import report as carbon_report
from dispatch.carbon.chain import TIME_FORMAT
from dispatch.config import SiteConfig
from dispatch.daemon.runtime import Services, SiteState, store_event
from dispatch.store import Store

log = logging.getLogger("dispatch.daemon")
#: Cycle samples one job run reads at most (about 5.5 h at a 1 s cycle); a longer backlog is
#: taken in several runs, so the job stays short.
CATCH_UP_SAMPLES = 20_000


@dataclass
class LedgerBook:
    """What the ledger job remembers between runs (all of it can be lost: it is re-derived).

    Attributes
    ----------
    step : pandas.Timedelta
        Interval length (the plan step).
    scanned_until : pandas.Timestamp or None
        Samples before it were read already (no valid one left to record).
    behind : bool
        True while completed intervals remain to be read.
    ci_known : pandas.Series
        Intensity (g CO2/kWh) by UTC interval start from forecasts that carried a series.
    """

    step: pd.Timedelta
    scanned_until: pd.Timestamp | None = None
    behind: bool = True
    ci_known: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    _checked: pd.Timestamp | None = None

    def due(self, now: dt.datetime) -> bool:
        """True when an interval completed since the last run, or a backlog remains."""
        slot = pd.Timestamp(now).floor(self.step)
        return self.behind or self._checked is None or slot > self._checked

    def remember_ci(self, frame: pd.DataFrame | None, keep_from: pd.Timestamp) -> None:
        """Keep the series intensity of a forecast frame (if it has one) for its slots."""
        known = self.ci_known
        if frame is not None and "ci_g_per_kwh" in frame.columns:
            new = frame["ci_g_per_kwh"].astype(float).dropna()
            new.index = pd.DatetimeIndex(new.index).tz_convert("UTC")
            known = new.combine_first(known) if len(known) else new.sort_index()
        self.ci_known = known[known.index >= keep_from] if len(known) else known


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
    after = None if scan is None else scan.to_pydatetime()
    first = store.measurement_time(after)
    if first is None or pd.Timestamp(first).floor(step) + step > until:
        return Appended(0, [], False)
    lo = pd.Timestamp(first).floor(step)
    last = store.measurement_time(after, CATCH_UP_SAMPLES)
    hi = until if last is None else min(max(pd.Timestamp(last).floor(step), lo + step), until)
    rows = store.rows("measurements", lo.to_pydatetime(), hi.to_pydatetime())
    flows = compose.interval_flows(compose.samples_from_rows(rows), step, hi)
    if start is not None:
        flows = flows[flows.index >= start]  # never before the head (e.g. after a step change)
    factor = factor_file.grid_factor(config)
    records = compose.interval_records(
        flows, config, step, book.ci_known, head.record_hash, factor
    )
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

    Only the records from the start of the previous site-local year are read (what the month,
    the year and the 12-month trend need; it keeps the job short on a ledger of many years):
    a certificate valid before that is allocated as if the ledger began there, so in that
    rare case the figures can differ from ``dispatch carbon report``.

    Returns
    -------
    dict
        ``month`` (site-local ``YYYY-MM``), ``location_t_co2`` and ``market_t_co2`` (this
        month so far), ``net_month_t_co2`` and ``net_year_t_co2`` (basis emissions minus the
        offsets retired in the month / year), ``target_year`` (or None),
        ``offsets_needed_t_co2`` (or None) and ``records`` (in the whole ledger).
    """
    local = pd.Timestamp(now).tz_convert(config.site.timezone)
    since = pd.Timestamp(year=local.year - 1, month=1, day=1, tz=config.site.timezone)
    first = since.tz_convert("UTC").strftime(TIME_FORMAT)  # the stored text sorts as time
    rows = [r for r in store.ledger() if r["start_utc"] >= first]
    records = compose.records_from_rows(rows)
    recs = compose.instruments_from_rows(store.instruments())
    instruments.validate(recs, local.date())
    offsets, certs = instruments.offset_view(recs), instruments.certificate_view(recs)
    month = local.strftime("%Y-%m")
    report = carbon_report.build_report(records, offsets, config, month[:4], certs)
    row = next(r for r in report["months"] if r["month"] == month)
    target = report["scope2_target"]
    return {
        "month": month,
        "location_t_co2": row["location_kg_co2"] / 1000.0,
        "market_t_co2": row["market_kg_co2"] / 1000.0,
        "net_month_t_co2": row["scope2_net_t_co2"],
        "net_year_t_co2": report["totals"]["scope2_net_t_co2"],
        "target_year": target.get("target_year"),
        "offsets_needed_t_co2": target.get("offsets_needed_t_co2"),
        "records": store.ledger_head().records,
    }


async def ledger_job(
    sv: Services, st: SiteState, book: LedgerBook, refresh_figures: bool = False
) -> tuple[Appended, dict[str, Any] | None]:
    """Record completed intervals, report gaps once; returns what was appended and the new
    carbon figures (also set in the metrics) when records were appended or
    ``refresh_figures`` asks for them, else None."""
    now = sv.clock.now()
    fs = st.forecast_state
    book.remember_ci(fs.frame if fs is not None and fs.ci_series else None,
                     pd.Timestamp(now).floor(book.step) - pd.Timedelta(days=1))  # fmt: skip
    done = await sv.storer(append_completed, sv.store, sv.config, now, book)
    book.behind = done.behind
    book._checked = pd.Timestamp(now).floor(book.step)
    for lo, hi in done.gaps:
        message = f"no valid measurements from {lo} to {hi}: those intervals are not recorded"
        log.warning("carbon ledger: %s", message)
        await store_event(sv, "warning", "ledger_gap", message)
    if not (done.records or refresh_figures):
        return done, None
    figures = await sv.solver(carbon_figures, sv.store, sv.config, now)
    sv.metrics.carbon(figures)
    return done, figures
