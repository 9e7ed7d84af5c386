"""The audit of the stored carbon ledger: chain, head row, triggers, checkpoints, clock.

Role: turn what the store holds (rows in ``seq`` order, the head row, the triggers that are
there) and what is kept off the box (signed checkpoints, a head noted elsewhere) into one
outcome naming the first row that departs from what was proved. Pure: imports
``dispatch.carbon``'s ``chain``, ``checkpoint``, ``compose`` and ``instruments`` and
``dispatch.types``; no I/O, no wall clock (``now_utc`` and ``today`` are passed in). The
carbon instruments (``verify_instruments``) are checked the same way.

Findings, each with the position where the ledger first differs (``index``):

- the chain (``chain.verify`` with the store's row numbers): an edited, inserted, deleted or
  reordered row, or one out of time order;
- a row that ends after ``now_utc`` (booked from the future);
- the head row (where the daemon resumes): its count, hash and ``end_utc`` against the rows;
- each checkpoint: the first row whose hash differs from the one it proved, or rows missing;
- a head noted elsewhere (``--head``) that is no row's hash;
- missing append-only triggers (no row is named: the ledger lost its protection).

The outcome is the finding with the smallest index (those without a row last); all findings
are kept for the report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dispatch.carbon import chain, checkpoint, compose, instruments
from dispatch.types import InputError

__all__ = [
    "Finding",
    "HeadRow",
    "LedgerCheck",
    "head_findings",
    "verify_instruments",
    "verify_rows",
]


class HeadRow(Protocol):
    """The stored head of a chain (``dispatch.store.LedgerHead`` has this shape)."""

    record_hash: str
    end_utc: str | None
    records: int


@dataclass(frozen=True)
class Finding:
    """One thing wrong: ``index`` of the first differing row (None: no row), kind, reason."""

    index: int | None
    kind: str
    reason: str


@dataclass(frozen=True)
class LedgerCheck:
    """Outcome of ``verify_rows``.

    Attributes
    ----------
    records : int
        Rows read.
    index : int or None
        Position of the first bad row (None when intact or when no row is to blame;
        ``records`` when rows are missing at the end).
    seq : int or None
        Its row id in ``ledger_intervals`` (None when intact or past the end).
    kind : str
        ``"ok"``, ``"edited"``, ``"inserted"``, ``"deleted"``, ``"reordered"``,
        ``"misdated"``, ``"truncated"``, ``"appended"``, ``"rewritten"``, ``"head"``,
        ``"diverged"`` or ``"unprotected"``.
    reason : str
        What was found first.
    head : str
        ``record_hash`` of the last row (empty for an empty ledger).
    findings : tuple of Finding
        Everything found, first the one reported.
    """

    records: int
    index: int | None
    seq: int | None
    kind: str
    reason: str
    head: str
    findings: tuple[Finding, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return self.kind == "ok"


def _kind(reason: str) -> str:
    for word, kind in (
        ("reordered", "reordered"),
        ("removed from the end", "truncated"),
        ("inserted", "inserted"),
        ("deleted", "deleted"),
        ("out of time order", "misdated"),
    ):
        if word in reason:
            return kind
    return "edited"


def head_findings(
    hashes: Sequence[str], ends: Sequence[str], head: HeadRow, table: str
) -> list[Finding]:
    """What the head row of a chain says against its rows (count, hash, resume time).

    Parameters
    ----------
    hashes, ends : sequence of str
        ``record_hash`` and ``end_utc`` of the rows in order.
    head : HeadRow
        The stored head.
    table : str
        The rows' table, for messages.
    """
    n, k = len(hashes), int(head.records)
    if k > n:
        return [
            Finding(
                n,
                "truncated",
                f"the head row counts {k} records, {table} has {n}: rows were removed from the end",
            )
        ]
    if k < n:
        return [
            Finding(
                k,
                "appended",
                f"the head row counts {k} records, {table} has {n}: "
                f"rows from index {k} were added without the daemon",
            )
        ]
    if n and hashes[-1] != head.record_hash:
        return [
            Finding(
                n - 1,
                "rewritten",
                f"the last row of {table} is not the head row's "
                f"hash {head.record_hash[:12]}...: it was rewritten",
            )
        ]
    last_end = ends[-1] if n else None
    if head.end_utc != last_end:
        return [
            Finding(
                n,
                "head",
                f"the head row's end_utc {head.end_utc} (where the daemon "
                f"resumes) is not the last row's end {last_end}",
            )
        ]
    return []


def checkpoint_findings(
    hashes: Sequence[str], checkpoints: Sequence[Mapping[str, Any]], name: str
) -> list[Finding]:
    """Where the chain ``name`` departs from each checkpoint body (already signature-checked)."""
    out = []
    for body in checkpoints:
        state = body["chains"].get(name)
        if state is None:
            continue
        d = checkpoint.divergence(hashes, state, body["created_utc"])
        if d is not None:
            out.append(Finding(d.index, d.kind, d.reason))
    return out


def _first(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.index is None, f.index or 0))


def verify_rows(
    rows: list[Mapping[str, Any]],
    expected_head: str | None = None,
    *,
    head: HeadRow | None = None,
    noted_head: str | None = None,
    checkpoints: Sequence[Mapping[str, Any]] = (),
    missing_triggers: Sequence[str] = (),
    now_utc: str | None = None,
) -> LedgerCheck:
    """Verify stored ledger rows (in ``seq`` order) and everything kept about them.

    Parameters
    ----------
    rows : list of mapping
        ``Store.ledger(with_seq=True)``.
    expected_head : str, optional
        ``record_hash`` the last row must have; detects rows deleted from the end.
    head : HeadRow, optional
        The stored head row: its count, hash and ``end_utc`` must match the rows.
    noted_head : str, optional
        A head noted earlier: some row must have this hash (the ledger may have grown).
    checkpoints : sequence of mapping
        Checkpoint bodies (``checkpoint.read_checkpoint``) the ledger must extend.
    missing_triggers : sequence of str
        Append-only triggers that are not in the store.
    now_utc : str, optional
        ``YYYY-MM-DDTHH:MM:SSZ``; no row may end after it.
    """
    last = str(rows[-1].get("record_hash", "")) if rows else ""
    try:
        records = compose.records_from_rows(rows)
    except InputError:
        i = next(i for i, row in enumerate(rows) if compose.type_problem(i, row) is not None)
        problem = str(compose.type_problem(i, rows[i]))
        found = Finding(i, "edited", problem)
        return LedgerCheck(len(rows), i, rows[i].get("seq"), "edited", problem, last, (found,))
    seqs = [r.get("seq") for r in rows]
    numbered = all(isinstance(s, int) for s in seqs)
    result = chain.verify(records, expected_head=expected_head, seqs=seqs if numbered else None)
    findings = [] if result.ok else [Finding(result.index, _kind(result.reason), result.reason)]
    hashes = [r.record_hash for r in records]
    findings += _clock_findings(records, now_utc)
    if head is not None:
        findings += head_findings(hashes, [r.end_utc for r in records], head, "ledger_intervals")
    findings += checkpoint_findings(hashes, checkpoints, "intervals")
    if noted_head is not None and noted_head not in set(hashes):
        findings.append(
            Finding(
                None,
                "diverged",
                f"no row has the noted head "
                f"{noted_head[:12]}...: rows before it were rewritten or "
                f"removed (a checkpoint names the row)",
            )
        )
    if missing_triggers:
        findings.append(
            Finding(
                None,
                "unprotected",
                f"append-only trigger(s) "
                f"{', '.join(missing_triggers)} are missing: they were "
                f"dropped to edit rows",
            )
        )
    if not findings:
        return LedgerCheck(len(rows), None, None, "ok", "ok", last)
    ordered = _first(findings)
    top = ordered[0]
    seq = rows[top.index].get("seq") if top.index is not None and top.index < len(rows) else None
    return LedgerCheck(len(rows), top.index, seq, top.kind, top.reason, last, tuple(ordered))


def _clock_findings(records: list[chain.IntervalRecord], now_utc: str | None) -> list[Finding]:
    if now_utc is None:
        return []
    for i, rec in enumerate(records):
        if rec.end_utc > now_utc:
            return [
                Finding(
                    i,
                    "misdated",
                    f"record {rec.start_utc} ends at {rec.end_utc}, "
                    f"after now ({now_utc}): it was booked ahead of time",
                )
            ]
    return []


def verify_instruments(
    rows: list[Mapping[str, Any]],
    head: HeadRow | None = None,
    checkpoints: Sequence[Mapping[str, Any]] = (),
    today: dt.date | None = None,
    now_utc: str | None = None,
) -> LedgerCheck:
    """Verify the stored carbon instruments (``Store.instruments()``) like the ledger: chain
    and row numbers, the head row, each checkpoint's ``"instruments"`` chain, and (with
    ``today``) every record's registry fields (``instruments.problems``); with ``now_utc``,
    none recorded after it."""
    last = str(rows[-1].get("record_hash", "")) if rows else ""
    try:
        recs = compose.instruments_from_rows(rows)
    except InputError as exc:
        i = len(compose_prefix(rows))
        found = Finding(i, "malformed", str(exc))
        return LedgerCheck(len(rows), i, rows[i].get("seq"), "malformed", str(exc), last, (found,))
    bad = instruments.verify(recs)
    findings = [] if bad is None else [Finding(bad[0], _instrument_kind(bad[1]), bad[1])]
    hashes = [r.record_hash for r in recs]
    if head is not None:
        ends = [r.recorded_utc for r in recs]
        findings += head_findings(hashes, ends, head, "carbon_instruments")
    findings += checkpoint_findings(hashes, checkpoints, "instruments")
    ahead = [i for i, r in enumerate(recs) if now_utc is not None and r.recorded_utc > now_utc]
    if ahead:
        findings.append(
            Finding(
                ahead[0],
                "misdated",
                f"{recs[ahead[0]].name(ahead[0])} was "
                f"recorded at {recs[ahead[0]].recorded_utc}, after now",
            )
        )
    if today is not None:
        findings += _registry_findings(recs, today)
    if not findings:
        return LedgerCheck(len(rows), None, None, "ok", "ok", last)
    top = _first(findings)[0]
    seq = rows[top.index].get("seq") if top.index is not None and top.index < len(rows) else None
    return LedgerCheck(len(rows), top.index, seq, top.kind, top.reason, last, tuple(findings))


def _instrument_kind(reason: str) -> str:
    word = reason.split(":")[0]
    return word if word in ("inserted", "deleted", "edited", "misdated") else "deleted"


def compose_prefix(rows: list[Mapping[str, Any]]) -> list[Any]:
    """The instrument records before the first malformed row."""
    out: list[Any] = []
    for r in rows:
        try:
            out += compose.instruments_from_rows([r])
        except InputError:
            return out
    return out


def _registry_findings(recs: list[instruments.Instrument], today: dt.date) -> list[Finding]:
    for i in range(len(recs)):
        found = instruments.problems(recs[: i + 1], today)
        if found:
            return [Finding(i, "malformed", found[0])]
    return []
