"""The ``dispatch carbon`` commands: verify the ledger, report a period; the rest registered.

Role: parse the ``carbon`` sub-commands (``keygen`` and ``checkpoint`` from ``anchor``, ``export``,
``offsets`` and ``certificates`` from ``instruments_cli``, ``bill`` from ``bill_cli``), open the
store named by the
config's ``[store]`` section, and call the audit, the composition and the reports. Exit codes:
0 ok, 1 bad input (``InputError``, via ``dispatch.__main__``), 3 a ledger or instruments chain
that does not verify, 78 a bad config. Imports ``dispatch.carbon``'s ``anchor``, ``audit``,
``bill_cli``, ``compose``, ``export``, ``factor_file``, ``factors``, ``instruments``,
``instruments_cli`` and ``report``, ``store``, ``config`` and ``types``; never ``daemon``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from dispatch.carbon import (
    anchor,
    audit,
    bill_cli,
    compose,
    export,
    factor_file,
    factors,
    instruments,
    instruments_cli,
)
from dispatch.carbon import report as carbon_report
from dispatch.config import SiteConfig, load_config
from dispatch.store import Store
from dispatch.types import InputError

FORMATS = ("csv", "json", "html")

def _open(config: SiteConfig, must_exist: bool = True) -> Store:
    return anchor.open_store(config, must_exist)


def _location(check: audit.LedgerCheck, rows: list[dict[str, Any]]) -> str:
    """Where the first problem is, in words: a row, past the last row, or no row."""
    if check.index is None:
        return "no single row (see the reason)"
    if check.index < len(rows):
        return f"row {check.index} (seq {check.seq}, interval {rows[check.index]['start_utc']})"
    return f"after the last row (index {check.index})"


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify the ledger's chain, head row, triggers and checkpoints; name the first bad row."""
    config = load_config(args.config)
    trusted = args.public_key or config.carbon.checkpoint_public_key
    bodies = anchor.load_checkpoints(args.checkpoint or [], trusted)
    with _open(config) as store:
        check = anchor.check_store(store, args.head, bodies)
        held = audit.verify_instruments(store.instruments(), store.instruments_head(), bodies,
                                        instruments_cli.site_today(config), anchor.now_utc())
        rows = store.ledger()
        path = str(store.path)
    doc: dict[str, Any] = {
        "store": path,
        "records": check.records,
        "ok": check.ok,
        "kind": check.kind,
        "head": check.head,
        "checkpoints": [
            {"file": f, "created_utc": b["created_utc"], "public_key": b["public_key"],
             "pinned": trusted is not None}
            for f, b in zip(args.checkpoint or [], bodies, strict=True)
        ],
    }
    if rows:
        doc |= {"first_start_utc": rows[0]["start_utc"], "last_end_utc": rows[-1]["end_utc"]}
    if not check.ok:
        bad = rows[check.index] if check.index is not None and check.index < len(rows) else None
        doc |= {
            "index": check.index,
            "seq": check.seq,
            "reason": check.reason,
            "start_utc": bad["start_utc"] if bad else None,
            "findings": [dataclasses.asdict(f) for f in check.findings],
        }
    doc["instruments"] = {"records": held.records, "ok": held.ok, "kind": held.kind,
                          "index": held.index, "seq": held.seq, "reason": held.reason}
    doc["ok"] = check.ok and held.ok
    if args.json:
        print(json.dumps(doc, indent=2))
    elif doc["ok"]:
        span = f", {doc['first_start_utc']} .. {doc['last_end_utc']}" if rows else ""
        proved = f"; extends {len(bodies)} checkpoint(s)" if bodies else ""
        head = check.head or "(empty)"
        print(f"ledger intact: {check.records} records{span}; head {head}; "
              f"{held.records} instrument records{proved} ({path})")
    if not check.ok and not args.json:
        print(f"dispatch: ledger does NOT verify ({check.kind}): first bad "
              f"{_location(check, rows)}: {check.reason} ({path})", file=sys.stderr)
    if not held.ok and not args.json:
        print(f"dispatch: carbon instruments do NOT verify ({held.kind}): first bad record "
              f"{held.index} (seq {held.seq}): {held.reason} ({path})", file=sys.stderr)
    return 0 if doc["ok"] else anchor.EXIT_TAMPERED


def cmd_factors(args: argparse.Namespace) -> int:
    """Print the factor table as CSV."""
    table = factor_file.factor_table(load_config(args.config))
    print(",".join(factors.COLUMNS))
    for f in table.values():
        print(",".join(f'"{v}"' if "," in str(v) else str(v) for v in f.as_dict().values()))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Build the carbon report of a period from the verified ledger and the offsets."""
    config = load_config(args.config)
    period = carbon_report.parse_period(args.period, config.site.timezone)
    table = factor_file.factor_table(config)
    restate = factors.find(table, args.restate) if args.restate else None
    with _open(config) as store:
        check = anchor.check_store(store)
        if not check.ok:
            raise InputError(f"the ledger does not verify ({check.kind} at row {check.index}: "
                             f"{check.reason}); run `dispatch carbon verify`")  # fmt: skip
        records = compose.records_from_rows(store.ledger())
        recs = instruments_cli.load(store, config)
    offsets = instruments.offset_view(recs)
    certs = instruments.certificate_view(recs)
    utility_bill = instruments.bill_view(recs)  # the stored bill, unless a file is given
    if args.bill:
        months, source = bill_cli.read_bill(args.bill)
        utility_bill = {"months": months, "source": source}
    report = carbon_report.build_report(records, offsets, config, period, certs, restate,
                                        utility_bill, table)
    render = {"csv": carbon_report.to_csv, "json": carbon_report.to_json,
              "html": carbon_report.to_html}[args.format]  # fmt: skip
    text = render(report)
    for warning in report["warnings"]:
        print(f"dispatch: warning: {warning}", file=sys.stderr)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(json.dumps({"period": period.label, "format": args.format, "out": str(out),
                          "records": report["totals"]["intervals"]}))  # fmt: skip
    else:
        sys.stdout.write(text)
    return 0


def add_commands(sub: Any) -> None:
    """The ``carbon`` command with ``verify``, ``report`` and ``offsets add|retire|list``."""
    carbon = sub.add_parser(
        "carbon", help="carbon ledger: verify, period reports, offsets registry",
        description="The daemon appends one hash-chained record per completed plan interval "
        "to the store's carbon ledger. These commands check it, report on it and keep the "
        "registry of carbon credits (offsets).",
    )  # fmt: skip
    csub = carbon.add_subparsers(dest="carbon_command", required=True, metavar="ACTION")
    ver = csub.add_parser(
        "verify", help="check the ledger's chain, head row, triggers and checkpoints",
        description="Exit 0 and a summary when intact; exit 3 naming the first row that "
        "differs otherwise: edited, inserted, deleted, reordered or misdated rows, rows "
        "removed from the end or added past the head row, dropped append-only triggers, "
        "and any row that departs from a signed checkpoint (--checkpoint).",
    )  # fmt: skip
    ver.add_argument("--config", required=True, help="site configuration (TOML); [store] path")
    ver.add_argument("--head", help="a head hash noted earlier: the ledger must pass through it")
    ver.add_argument("--checkpoint", action="append", metavar="FILE",
                     help="signed checkpoint the ledger must extend (repeatable)")
    ver.add_argument("--public-key", help="trusted checkpoint key, 64 hex digits "
                     "(default: [carbon] checkpoint_public_key; else the key in the file)")
    ver.add_argument("--json", action="store_true", help="print the outcome as JSON")
    ver.set_defaults(func=cmd_verify)
    rep = csub.add_parser(
        "report", help="Scope 2 electricity CO2 report of a month, quarter or year",
        description="Energy flows, location- and market-based emissions, avoided emissions, "
        "battery losses, offsets retired and the Scope 2 net balance (electricity CO2 minus "
        "offsets; not ISO 14068-1 neutrality, which needs Scopes 1 and 3), per month of the "
        "period (site-local), from the verified ledger.",
    )  # fmt: skip
    rep.add_argument("--config", required=True, help="site configuration (TOML)")
    rep.add_argument("--period", required=True, help="2026-10 (month), 2026-Q3, or 2026")
    rep.add_argument("--format", choices=FORMATS, default="csv", help="output format")
    rep.add_argument("--out", help="file to write (default: standard output)")
    rep.add_argument("--bill", metavar="CSV",
                     help="utility bill, grid import kWh per month (columns month, import_kwh): "
                     "each month reconciled against the ledger, the difference shown "
                     "(default: the bill stored by `dispatch carbon bill import`)")
    rep.add_argument("--restate", metavar="KEY",
                     help="restate location-based emissions with this factor of the table "
                     "(`dispatch carbon factors`), shown beside the recorded figure")
    fac = csub.add_parser("factors", help="the grid factor table (year, region, source)",
                          description="The shipped factors (China MEE/NBS) and those of "
                          "[carbon] factor_table_path, as CSV.")
    fac.add_argument("--config", required=True, help="site configuration (TOML)")
    fac.set_defaults(func=cmd_factors)
    rep.set_defaults(func=cmd_report)
    anchor.add_commands(csub)
    export.add_commands(csub)
    bill_cli.add_commands(csub)
    instruments_cli.add_commands(csub)
