"""The ``dispatch carbon`` commands: verify the ledger, report a period, keep the offsets registry.

Role: parse the ``carbon`` sub-commands, open the store named by the config's ``[store]``
section, and call the ledger composition (``compose``) and the reports (``report``). Exit
codes: 0 ok, 1 bad input (``InputError``, via ``dispatch.__main__``), 3 a ledger that does not
verify, 78 a bad config. Reads the wall clock only for the default retirement date. Imports
``dispatch.carbon``'s ``compose``, ``offsets`` and ``report``, ``store`` (with ``state_dir``),
``config`` and ``types``; never ``daemon``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dispatch.carbon import anchor, audit, compose
from dispatch.carbon import offsets as credits
from dispatch.carbon import report as carbon_report
from dispatch.config import SiteConfig, load_config
from dispatch.store import Store
from dispatch.types import InputError

FORMATS = ("csv", "json", "html")
OFFSET_COLUMNS = ("credit_type", "serial", "vintage_year", "tonnes", "purchased_on",
                  "retired_on", "registry")  # fmt: skip


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
    if args.json:
        print(json.dumps(doc, indent=2))
    elif check.ok:
        span = f", {doc['first_start_utc']} .. {doc['last_end_utc']}" if rows else ""
        proved = f"; extends {len(bodies)} checkpoint(s)" if bodies else ""
        head = check.head or "(empty)"
        print(f"ledger intact: {check.records} records{span}; head {head}{proved} ({path})")
    else:
        print(
            f"dispatch: ledger does NOT verify ({check.kind}): first bad "
            f"{_location(check, rows)}: {check.reason} ({path})",
            file=sys.stderr,
        )
    return 0 if check.ok else anchor.EXIT_TAMPERED


def cmd_report(args: argparse.Namespace) -> int:
    """Build the carbon report of a period from the verified ledger and the offsets."""
    config = load_config(args.config)
    period = carbon_report.parse_period(args.period, config.site.timezone)
    with _open(config) as store:
        check = anchor.check_store(store)
        if not check.ok:
            raise InputError(f"the ledger does not verify ({check.kind} at row {check.index}: "
                             f"{check.reason}); run `dispatch carbon verify`")  # fmt: skip
        records = compose.records_from_rows(store.ledger())
        offsets = compose.offsets_from_rows(store.offsets())
    report = carbon_report.build_report(records, offsets, config, period)
    render = {"csv": carbon_report.to_csv, "json": carbon_report.to_json,
              "html": carbon_report.to_html}[args.format]  # fmt: skip
    text = render(report)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(json.dumps({"period": period.label, "format": args.format, "out": str(out),
                          "records": report["totals"]["intervals"]}))  # fmt: skip
    else:
        sys.stdout.write(text)
    return 0


def _date(text: str | None, what: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{what} {text!r} is not a date: use YYYY-MM-DD") from None


def _validated(registry: list[credits.OffsetRecord], changed: int) -> None:
    """Raise ``InputError`` with the problems of the registry that concern batch ``changed``."""
    problems = credits.check_offsets(registry)
    mine = [p for p in problems if p.startswith(f"offset {changed} ")]
    if mine:
        raise InputError("offsets: " + "; ".join(p.split(": ", 1)[1] for p in mine))


def _site_today(config: SiteConfig) -> dt.date:
    return dt.datetime.now(ZoneInfo(config.site.timezone)).date()


def _not_ahead(day: dt.date | None, what: str, config: SiteConfig) -> None:
    """Refuse a purchase or retirement dated after today at the site: a retirement is a
    fact on a registry, not a plan."""
    today = _site_today(config)
    if day is not None and day > today:
        raise InputError(f"offsets: {what} {day.isoformat()} lies after today ({today} at the "
                         f"site); record a purchase or retirement once it has happened")


def cmd_offsets_add(args: argparse.Namespace) -> int:
    """Register a purchased credit batch (optionally already retired)."""
    config = load_config(args.config)
    purchased = _date(args.purchased, "--purchased")
    retired = _date(args.retired, "--retired")
    assert purchased is not None
    _not_ahead(purchased, "--purchased", config)
    _not_ahead(retired, "--retired", config)
    new = credits.OffsetRecord(args.type, args.serial.strip(), args.vintage, args.tonnes,
                              purchased, retired, args.registry)  # fmt: skip
    with _open(config, must_exist=False) as store:
        registry = compose.offsets_from_rows(store.offsets())
        _validated([*registry, new], len(registry))
        store.add_offset({c: getattr(new, c) for c in OFFSET_COLUMNS})
    print(json.dumps(_offset_doc(new)))
    return 0


def cmd_offsets_retire(args: argparse.Namespace) -> int:
    """Retire (cancel) a held batch on a date (today by default)."""
    config = load_config(args.config)
    on = _date(args.on, "--on") or _site_today(config)
    _not_ahead(on, "--on", config)
    with _open(config) as store:
        registry = compose.offsets_from_rows(store.offsets())
        found = [i for i, o in enumerate(registry)
                 if o.credit_type == args.type and o.serial == args.serial.strip()]  # fmt: skip
        if not found:
            raise InputError(f"offsets: no {args.type} batch {args.serial!r} in the registry; "
                             "see `dispatch carbon offsets list`")  # fmt: skip
        i = found[0]
        if registry[i].retired_on is not None:
            raise InputError(f"offsets: {args.type} {args.serial!r} was already retired on "
                             f"{registry[i].retired_on} (a double retirement)")  # fmt: skip
        registry[i] = credits.OffsetRecord(**{**_fields(registry[i]), "retired_on": on})
        _validated(registry, i)
        store.retire_offset(args.type, registry[i].serial, on)
    print(json.dumps(_offset_doc(registry[i])))
    return 0


def _fields(o: credits.OffsetRecord) -> dict[str, Any]:
    return {c: getattr(o, c) for c in OFFSET_COLUMNS}


def _offset_doc(o: credits.OffsetRecord) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in _fields(o).items()}


def cmd_offsets_list(args: argparse.Namespace) -> int:
    """List the registry with held and retired totals."""
    config = load_config(args.config)
    with _open(config) as store:
        docs = [_offset_doc(o) for o in compose.offsets_from_rows(store.offsets())]
    held = sum(d["tonnes"] for d in docs if d["retired_on"] is None)
    retired = sum(d["tonnes"] for d in docs if d["retired_on"] is not None)
    if args.format == "json":
        print(json.dumps({"offsets": docs, "held_t_co2": held, "retired_t_co2": retired},
                         indent=2))  # fmt: skip
        return 0
    sep = "," if args.format == "csv" else "  "
    print(sep.join(OFFSET_COLUMNS))
    for d in docs:
        print(sep.join("" if d[c] is None else str(d[c]) for c in OFFSET_COLUMNS))
    if args.format == "table":
        print(f"# {len(docs)} batches; held {held:g} t CO2e, retired {retired:g} t CO2e")
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
        "report", help="carbon report of a month, quarter or year",
        description="Energy flows, location- and market-based emissions, avoided emissions, "
        "battery losses, offsets retired and the net balance toward neutrality, per month of "
        "the period (site-local), from the verified ledger.",
    )  # fmt: skip
    rep.add_argument("--config", required=True, help="site configuration (TOML)")
    rep.add_argument("--period", required=True, help="2026-10 (month), 2026-Q3, or 2026")
    rep.add_argument("--format", choices=FORMATS, default="csv", help="output format")
    rep.add_argument("--out", help="file to write (default: standard output)")
    rep.set_defaults(func=cmd_report)
    anchor.add_commands(csub)
    _add_offsets(csub)


def _add_offsets(csub: Any) -> None:
    off = csub.add_parser("offsets", help="the registry of carbon credits (CCER, ...)",
                          description="Register, retire and list carbon-credit batches.")
    osub = off.add_subparsers(dest="offsets_command", required=True, metavar="ACTION")
    add = osub.add_parser("add", help="register a purchased batch")
    add.add_argument("--config", required=True, help="site configuration (TOML)")
    add.add_argument("--type", required=True, choices=credits.CREDIT_TYPES,
                     help="credit type (carbon_inclusive: local carbon-inclusive credits)")
    add.add_argument("--serial", required=True, help="registry serial number or batch id")
    add.add_argument("--vintage", required=True, type=int, help="vintage year")
    add.add_argument("--tonnes", required=True, type=float, help="t CO2e in the batch (> 0)")
    add.add_argument("--purchased", required=True, help="purchase date YYYY-MM-DD")
    add.add_argument("--retired", help="retirement date YYYY-MM-DD if already retired")
    add.add_argument("--registry", default="", help="where it is registered (free text)")
    add.set_defaults(func=cmd_offsets_add)
    ret = osub.add_parser("retire", help="retire (cancel) a held batch")
    ret.add_argument("--config", required=True, help="site configuration (TOML)")
    ret.add_argument("--type", required=True, choices=credits.CREDIT_TYPES, help="credit type")
    ret.add_argument("--serial", required=True, help="serial number or batch id")
    ret.add_argument("--on", help="retirement date YYYY-MM-DD (default: today)")
    ret.set_defaults(func=cmd_offsets_retire)
    lst = osub.add_parser("list", help="list the registry with held and retired totals")
    lst.add_argument("--config", required=True, help="site configuration (TOML)")
    lst.add_argument("--format", choices=("table", "csv", "json"), default="table")
    lst.set_defaults(func=cmd_offsets_list)
