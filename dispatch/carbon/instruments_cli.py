"""The ``dispatch carbon offsets`` and ``dispatch carbon certificates`` commands.

Role: append credit purchases, partial retirements and certificate allocations to the chained
``carbon_instruments`` (each record continues the stored head after the whole chain and every
record's registry fields check out), and list them. Reads the wall clock (the site's today:
no purchase or retirement dated after it; ``recorded_utc``). Imports ``dispatch.carbon``'s
``anchor``, ``audit``, ``compose`` and ``instruments``, ``store``, ``config`` and ``types``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

from dispatch.carbon import anchor, audit, compose, instruments
from dispatch.carbon.offsets import CREDIT_TYPES
from dispatch.config import SiteConfig, load_config
from dispatch.store import Store
from dispatch.types import InputError

__all__ = ["add_commands", "append_records", "load"]

#: Where each credit type is registered when ``--registry`` is not given.
REGISTRY = {
    "CCER": "national CCER registry",
    "carbon_inclusive": "city carbon-inclusive platform (e.g. Suzhou PHCER)",
    "VCS": "Verra registry",
    "GS": "Gold Standard registry",
    "other": "other registry",
}
#: Where each certificate scheme is issued when ``--registry`` is not given.
SCHEME_REGISTRY = {
    "GEC": "China green electricity certificate (GEC) platform",
    "I-REC": "I-REC Standard registry",
    "PPA": "bilateral power purchase agreement",
    "other": "other registry",
}
LIST_COLUMNS = (
    "credit_type",
    "serial",
    "vintage_year",
    "tonnes",
    "purchased_on",
    "retired_on",
    "registry",
)


def site_today(config: SiteConfig) -> dt.date:
    """Today at the site (its time zone)."""
    return dt.datetime.now(ZoneInfo(config.site.timezone)).date()


def load(store: Store, config: SiteConfig) -> list[instruments.Instrument]:
    """The stored instruments, verified (chain, head row) and checked (``InputError``)."""
    rows = store.instruments()
    check = audit.verify_instruments(rows, store.instruments_head())
    if not check.ok:
        raise InputError(
            f"carbon instruments do not verify ({check.kind} at record "
            f"{check.index}: {check.reason}); run `dispatch carbon verify`"
        )
    recs = compose.instruments_from_rows(rows)
    instruments.validate(recs, site_today(config))
    return recs


def _date(text: str | None, what: str) -> str | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise InputError(f"{what} {text!r} is not a date: use YYYY-MM-DD") from None


def _not_ahead(day: str | None, what: str, config: SiteConfig) -> None:
    today = site_today(config)
    if day is not None and day > today.isoformat():
        raise InputError(
            f"offsets: {what} {day} lies after today ({today} at the site); record "
            "a purchase or retirement once it has happened"
        )


def append_records(
    store: Store, config: SiteConfig, new: list[tuple[str, dict[str, Any]]]
) -> None:
    """Chain and append records after checking the chain with them (errors name the new
    record; nothing is written then)."""
    recs = load(store, config)
    head = store.instruments_head().record_hash
    now = anchor.now_utc()
    chained = []
    for kind, body in new:
        rec = instruments.chained(kind, now, body, head)
        chained.append(rec)
        head = rec.record_hash
    found = instruments.problems([*recs, *chained], site_today(config))
    if found:
        raise InputError("carbon instruments: " + "; ".join(p.split(": ", 1)[1] for p in found))
    for rec in chained:
        store.append_instrument(
            {
                "kind": rec.kind,
                "recorded_utc": rec.recorded_utc,
                "body": rec.body,
                "prev_hash": rec.prev_hash,
                "record_hash": rec.record_hash,
            }
        )


def cmd_offsets_add(args: argparse.Namespace) -> int:
    """Record a purchased credit batch (and its retirement when ``--retired`` is given)."""
    config = load_config(args.config)
    purchased = _date(args.purchased, "--purchased")
    retired = _date(args.retired, "--retired")
    _not_ahead(purchased, "--purchased", config)
    _not_ahead(retired, "--retired", config)
    serial = args.serial.strip()
    batch = f"{args.type}:{serial}"
    buy = {
        "batch": batch,
        "credit_type": args.type,
        "registry": args.registry or REGISTRY[args.type],
        "project_id": args.project,
        "methodology": args.methodology,
        "vintage_year": args.vintage,
        "monitoring_from": _date(args.monitoring_from, "--monitoring-from")
        or f"{args.vintage}-01-01",
        "monitoring_to": _date(args.monitoring_to, "--monitoring-to") or f"{args.vintage}-12-31",
        "serial_first": serial,
        "serial_last": (args.serial_last or serial).strip(),
        "tonnes": args.tonnes,
        "purchased_on": purchased,
    }
    new = [("purchase", buy)]
    if retired is not None:
        new.append(("retirement", _retirement(args, batch, args.tonnes, retired)))
    with anchor.open_store(config, must_exist=False) as store:
        append_records(store, config, new)
    print(
        json.dumps(
            {
                "batch": batch,
                **{k: v for k, v in buy.items() if k != "batch"},
                "retired_on": retired,
            }
        )
    )
    return 0


def _retirement(args: argparse.Namespace, batch: str, tonnes: float, on: str) -> dict[str, Any]:
    return {
        "batch": batch,
        "tonnes": tonnes,
        "retired_on": on,
        "cancellation_number": args.cancellation,
        "beneficiary": args.beneficiary,
        "claimed_from": _date(args.claimed_from, "--claimed-from") or f"{on[:4]}-01-01",
        "claimed_to": _date(args.claimed_to, "--claimed-to") or f"{on[:4]}-12-31",
    }


def cmd_offsets_retire(args: argparse.Namespace) -> int:
    """Retire (cancel) all or part of a held batch on a date (today by default)."""
    config = load_config(args.config)
    on = _date(args.on, "--on") or site_today(config).isoformat()
    _not_ahead(on, "--on", config)
    batch = f"{args.type}:{args.serial.strip()}"
    with anchor.open_store(config) as store:
        recs = load(store, config)
        held = _held(recs)
        if batch not in held:
            raise InputError(
                f"offsets: no {args.type} batch {args.serial!r} in the registry; "
                "see `dispatch carbon offsets list`"
            )
        left, last = held[batch]
        if left <= 1e-9:
            raise InputError(
                f"offsets: {args.type} {args.serial!r} was already retired on "
                f"{last} (a double retirement)"
            )
        tonnes = left if args.tonnes is None else args.tonnes
        append_records(store, config, [("retirement", _retirement(args, batch, tonnes, on))])
    print(
        json.dumps(
            {
                "batch": batch,
                "tonnes": tonnes,
                "retired_on": on,
                "held_t_co2": round(left - tonnes, 6),
            }
        )
    )
    return 0


def _held(recs: list[instruments.Instrument]) -> dict[str, tuple[float, str | None]]:
    """Batch -> (tonnes still held, last retirement date)."""
    out: dict[str, tuple[float, str | None]] = {}
    for r in recs:
        b = r.body
        if r.kind == "purchase":
            out[b["batch"]] = (float(b["tonnes"]), None)
        elif r.kind == "retirement":
            left, _ = out[b["batch"]]
            out[b["batch"]] = (left - float(b["tonnes"]), b["retired_on"])
    return out


def cmd_offsets_list(args: argparse.Namespace) -> int:
    """List the batches (one line per retirement and per held rest) with the totals."""
    config = load_config(args.config)
    with anchor.open_store(config) as store:
        view = instruments.offset_view(load(store, config))
    docs = [{c: getattr(o, c) for c in LIST_COLUMNS} for o in view]
    for d in docs:
        d.update({k: v.isoformat() for k, v in d.items() if isinstance(v, dt.date)})
    held = sum(d["tonnes"] for d in docs if d["retired_on"] is None)
    retired = sum(d["tonnes"] for d in docs if d["retired_on"] is not None)
    if args.format == "json":
        print(json.dumps({"offsets": docs, "held_t_co2": held, "retired_t_co2": retired}, indent=2))
        return 0
    sep = "," if args.format == "csv" else "  "
    print(sep.join(LIST_COLUMNS))
    for d in docs:
        print(sep.join("" if d[c] is None else str(d[c]) for c in LIST_COLUMNS))
    if args.format == "table":
        print(f"# {len(docs)} lines; held {held:g} t CO2e, retired {retired:g} t CO2e")
    return 0


def cmd_certificates_add(args: argparse.Namespace) -> int:
    """Record a green certificate (GEC, I-REC) or PPA allocated to the site's imports."""
    config = load_config(args.config)
    body = {
        "certificate_id": args.id.strip(),
        "scheme": args.scheme,
        "registry": args.registry or SCHEME_REGISTRY[args.scheme],
        "project_id": args.project,
        "generation_from": _date(args.generation_from, "--generation-from"),
        "generation_to": _date(args.generation_to, "--generation-to"),
        "serial_first": args.serial_first,
        "serial_last": args.serial_last,
        "mwh": args.mwh,
        "ci_g_per_kwh": args.ci,
        "claimant": args.claimant,
        "market_boundary": args.boundary,
        "claimed_from": _date(args.claimed_from, "--claimed-from"),
        "claimed_to": _date(args.claimed_to, "--claimed-to"),
        "cancellation_number": args.cancellation,
    }
    with anchor.open_store(config, must_exist=False) as store:
        append_records(store, config, [("certificate", body)])
    print(json.dumps(body))
    return 0


def cmd_certificates_list(args: argparse.Namespace) -> int:
    """List the certificates in the chain (JSON)."""
    config = load_config(args.config)
    with anchor.open_store(config) as store:
        recs = load(store, config)
    docs = [dict(r.body) for r in recs if r.kind == "certificate"]
    print(json.dumps({"certificates": docs}, indent=2))
    return 0


def add_commands(csub: Any) -> None:
    """The ``offsets add|retire|list`` and ``certificates add|list`` actions."""
    off = csub.add_parser(
        "offsets",
        help="carbon credits (CCER, PHCER, ...) in the chain",
        description="Record purchases and (partial) retirements of "
        "carbon-credit batches as chained records; list them.",
    )
    osub = off.add_subparsers(dest="offsets_command", required=True, metavar="ACTION")
    add = osub.add_parser("add", help="record a purchased batch")
    add.add_argument("--config", required=True, help="site configuration (TOML)")
    add.add_argument(
        "--type",
        required=True,
        choices=CREDIT_TYPES,
        help="credit type (carbon_inclusive: local carbon-inclusive credits)",
    )
    add.add_argument("--serial", required=True, help="first serial number of the batch")
    add.add_argument("--serial-last", help="last serial number (default: --serial)")
    add.add_argument("--vintage", required=True, type=int, help="vintage year")
    add.add_argument("--tonnes", required=True, type=float, help="t CO2e in the batch (> 0)")
    add.add_argument("--purchased", required=True, help="purchase date YYYY-MM-DD")
    add.add_argument("--registry", help="registry (default: by type, e.g. national CCER registry)")
    add.add_argument("--project", default="", help="registry project ID")
    add.add_argument("--methodology", default="", help="methodology, e.g. CCER-14-001-V01")
    add.add_argument("--monitoring-from", help="monitoring period start (default: vintage Jan 1)")
    add.add_argument("--monitoring-to", help="monitoring period end (default: vintage Dec 31)")
    add.add_argument("--retired", help="retirement date YYYY-MM-DD if already retired (all)")
    _retire_args(add)
    add.set_defaults(func=cmd_offsets_add)
    ret = osub.add_parser("retire", help="retire (cancel) all or part of a held batch")
    ret.add_argument("--config", required=True, help="site configuration (TOML)")
    ret.add_argument("--type", required=True, choices=CREDIT_TYPES, help="credit type")
    ret.add_argument("--serial", required=True, help="first serial number of the batch")
    ret.add_argument("--tonnes", type=float, help="t CO2e to retire (default: all held)")
    ret.add_argument("--on", help="retirement date YYYY-MM-DD (default: today)")
    _retire_args(ret)
    ret.set_defaults(func=cmd_offsets_retire)
    lst = osub.add_parser("list", help="list the batches with held and retired totals")
    lst.add_argument("--config", required=True, help="site configuration (TOML)")
    lst.add_argument("--format", choices=("table", "csv", "json"), default="table")
    lst.set_defaults(func=cmd_offsets_list)
    _add_certificates(csub)


def _retire_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cancellation", default="", help="registry cancellation certificate no.")
    p.add_argument("--beneficiary", default="the site", help="on whose behalf it is retired")
    p.add_argument("--claimed-from", help="claimed period start (default: Jan 1 of the year)")
    p.add_argument("--claimed-to", help="claimed period end (default: Dec 31 of the year)")


def _add_certificates(csub: Any) -> None:
    cert = csub.add_parser(
        "certificates",
        help="green certificates (GEC, I-REC) and PPAs",
        description="Record certificates allocated to the site's grid "
        "imports (market-based Scope 2) as chained records.",
    )
    csub2 = cert.add_subparsers(dest="certificates_command", required=True, metavar="ACTION")
    add = csub2.add_parser("add", help="record a certificate or PPA allocation")
    add.add_argument("--config", required=True, help="site configuration (TOML)")
    add.add_argument("--id", required=True, help="certificate or contract id, unique")
    add.add_argument("--scheme", required=True, choices=instruments.SCHEMES)
    add.add_argument("--registry", help="issuing registry (default: by scheme)")
    add.add_argument("--project", default="", help="generating project ID")
    add.add_argument("--generation-from", required=True, help="generation period start")
    add.add_argument("--generation-to", required=True, help="generation period end")
    add.add_argument("--serial-first", required=True, help="first certificate serial")
    add.add_argument("--serial-last", default="", help="last certificate serial")
    add.add_argument("--mwh", required=True, type=float, help="energy covered (MWh, > 0)")
    add.add_argument("--ci", type=float, default=0.0, help="factor of the covered energy g/kWh")
    add.add_argument("--claimant", required=True, help="the company claiming it")
    add.add_argument("--boundary", required=True, help="market boundary (e.g. China mainland)")
    add.add_argument("--claimed-from", required=True, help="consumption period start")
    add.add_argument("--claimed-to", required=True, help="consumption period end")
    add.add_argument("--cancellation", default="", help="redemption / cancellation number")
    add.set_defaults(func=cmd_certificates_add)
    lst = csub2.add_parser("list", help="list the certificates (JSON)")
    lst.add_argument("--config", required=True, help="site configuration (TOML)")
    lst.set_defaults(func=cmd_certificates_list)
