"""The ``dispatch carbon export`` command: a verifiable bundle of one period for an auditor.

Role: write a folder holding the period's ledger rows with the hash of the row before them
(``intervals.json``), the whole chain of carbon instruments with the stored utility bill
(``instruments.json``), the factor table the report checked the records' factor references
against (``factors.csv``), copies of the given signed checkpoints (``checkpoints/``), the
period's report in JSON, CSV and HTML, and ``manifest.json`` with the SHA-256 of every file.
``tools/verify_carbon_bundle.py`` (standard library only) re-derives every hash and the
report's totals from it. Reads and writes files; imports ``dispatch.carbon``'s ``anchor``,
``audit``, ``chain``, ``compose``, ``factor_file``, ``instruments`` and ``report``, ``config``
and ``types``.

The rows span the period and, when a certificate's window crosses the period boundary, the
rest of that window (and of every window overlapping it, ``allocation_span``): certificates
are allocated pro rata over all imports in their windows, so those rows are needed to
re-derive the period's market-based figure. ``intervals.json`` states the span.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from dispatch.carbon import anchor, audit, chain, compose, factor_file, instruments
from dispatch.carbon import report as carbon_report
from dispatch.config import load_config
from dispatch.types import InputError

FORMAT = "dispatch-carbon-bundle/2"

__all__ = ["FORMAT", "add_commands", "allocation_span", "cmd_export"]


def _dump(doc: Any) -> str:
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _period_rows(rows: list[dict[str, Any]], lo: str, hi: str) -> tuple[int, list[dict]]:
    """Index of the first row starting in ``[lo, hi)`` (UTC text) and those rows."""
    inside = [i for i, r in enumerate(rows) if lo <= r["start_utc"] < hi]
    if not inside:
        return len(rows), []
    return inside[0], rows[inside[0] : inside[-1] + 1]


def allocation_span(
    lo: dt.date, hi: dt.date, windows: Sequence[tuple[dt.date, dt.date]]
) -> tuple[dt.date, dt.date]:
    """The site-local dates ``[lo, hi)`` grown until every certificate window (inclusive
    ``(valid_from, valid_to)``) that meets them lies inside them."""
    grown = True
    while grown:
        grown = False
        for first, last in windows:
            if first < hi and last >= lo and (first < lo or last >= hi):
                lo, hi = min(lo, first), max(hi, last + dt.timedelta(days=1))
                grown = True
    return lo, hi


def cmd_export(args: argparse.Namespace) -> int:
    """Write the bundle of a period (the ledger must verify against the given checkpoints,
    unless ``--allow-broken``: then the manifest says what ``verify`` found)."""
    config = load_config(args.config)
    period = carbon_report.parse_period(args.period, config.site.timezone)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise InputError(f"export: {out} is not empty; write each bundle to a new folder")
    trusted = args.public_key or config.carbon.checkpoint_public_key
    bodies = anchor.load_checkpoints(args.checkpoint or [], trusted)
    with anchor.open_store(config) as store:
        check = anchor.check_store(store, None, bodies)
        if not check.ok and not args.allow_broken:
            raise InputError(
                f"export: the ledger does not verify ({check.kind} at row "
                f"{check.index}: {check.reason}); run `dispatch carbon verify`"
            )
        rows = store.ledger()
        inst_rows = store.instruments()
        held = audit.verify_instruments(inst_rows, store.instruments_head(), bodies)
        if not held.ok and not args.allow_broken:
            raise InputError(
                f"export: the carbon instruments do not verify ({held.kind} at "
                f"record {held.index}: {held.reason})"
            )
        recs = compose.instruments_from_rows(inst_rows)
    certs = [*config.carbon.certificates, *instruments.certificate_view(recs)]
    tz = config.site.timezone
    span = allocation_span(
        period.start.date(), period.end.date(), [(c.valid_from, c.valid_to) for c in certs]
    )
    fmt = chain.TIME_FORMAT
    lo, hi = (pd.Timestamp(d).tz_localize(tz).tz_convert("UTC").strftime(fmt) for d in span)
    first, inside = _period_rows(rows, lo, hi)
    records = compose.records_from_rows(rows)
    table = factor_file.factor_table(config)
    report = carbon_report.build_report(
        records, instruments.offset_view(recs), config, period,
        instruments.certificate_view(recs), None, instruments.bill_view(recs), table,
    )
    files = {
        "intervals.json": _dump(
            {
                "first_index": first,
                "prev_hash": inside[0]["prev_hash"] if inside else "",
                "span": {"from": span[0].isoformat(), "to": span[1].isoformat(),
                         "timezone": tz},
                "fields": list(chain.RECORD_FIELDS),
                "records": [[r[f] for f in chain.RECORD_FIELDS] for r in inside],
            }
        ),
        "factors.csv": factor_file.table_csv(table),
        "instruments.json": _dump(
            {
                "records": [
                    {**{k: r[k] for k in r if k != "body_json"}, "body": json.loads(r["body_json"])}
                    for r in inst_rows
                ]
            }
        ),
        "report.json": carbon_report.to_json(report),
        "report.csv": carbon_report.to_csv(report),
        "report.html": carbon_report.to_html(report),
    }
    for i, p in enumerate(args.checkpoint or []):
        files[f"checkpoints/{i:02d}-{Path(p).name}"] = Path(p).read_text(encoding="utf-8")
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text, encoding="utf-8")
    manifest = {
        "format": FORMAT,
        "period": period.label,
        "created_utc": anchor.now_utc(),
        "ledger_records": len(rows),
        "verified_on_export": {"ok": check.ok, "kind": check.kind, "index": check.index},
        "files": {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in sorted(files)},
    }
    (out / "manifest.json").write_text(_dump(manifest), encoding="utf-8")
    print(
        json.dumps(
            {
                "out": str(out),
                "period": period.label,
                "intervals": len(inside),
                "instruments": len(inst_rows),
                "checkpoints": len(bodies),
            }
        )
    )
    return 0


def add_commands(csub: Any) -> None:
    """The ``export`` action of ``dispatch carbon``."""
    exp = csub.add_parser(
        "export",
        help="write a verifiable bundle of a period for an auditor",
        description="The period's ledger rows with their predecessor hash (and the rest of "
        "any certificate window crossing the period), the carbon instruments and stored "
        "utility bill, the factor table, the given checkpoints, the report (JSON, CSV, "
        "HTML) and a manifest of SHA-256 hashes; tools/verify_carbon_bundle.py checks it "
        "with the Python standard library alone.",
    )
    exp.add_argument("--config", required=True, help="site configuration (TOML)")
    exp.add_argument("--period", required=True, help="2026-10 (month), 2026-Q3, or 2026")
    exp.add_argument("--out", required=True, help="folder to create (must be new or empty)")
    exp.add_argument(
        "--checkpoint",
        action="append",
        metavar="FILE",
        help="signed checkpoint to include (repeatable)",
    )
    exp.add_argument("--public-key", help="trusted checkpoint key, 64 hex digits")
    exp.add_argument(
        "--allow-broken",
        action="store_true",
        help="write the bundle of a ledger that does not verify (to show it)",
    )
    exp.set_defaults(func=cmd_export)
