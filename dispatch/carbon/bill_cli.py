"""The ``dispatch carbon bill`` commands: store a utility bill in the chain, list it.

Role: read a utility bill CSV (``dispatch.carbon.bill.parse_bill``: grid import kWh per
site-local month) and append one chained ``bill`` record per month to the carbon instruments
(``instruments_cli.append_records``), skipping months already stored with the same kWh (a
different figure is appended as a correction: the latest counts); list the stored bill. The
reports and the export reconcile against what is stored. Reads files; imports
``dispatch.carbon``'s ``anchor``, ``bill``, ``instruments`` and ``instruments_cli``, ``config``
and ``types``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from dispatch.carbon import anchor, bill, instruments, instruments_cli
from dispatch.config import load_config
from dispatch.types import InputError

__all__ = ["add_commands", "read_bill"]


def read_bill(path: str) -> tuple[dict[str, float], dict[str, str]]:
    """The bill file's import (kWh) by month and where it came from (``file``, ``sha256``).

    Raises
    ------
    InputError
        When the file cannot be read, is not UTF-8 or holds a bad row (``parse_bill``).
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"bill {path}: cannot read it ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"bill {path}: not UTF-8 text") from None
    months = bill.parse_bill(text, f"bill {path}")
    return months, {"file": path, "sha256": hashlib.sha256(raw).hexdigest()}


def cmd_bill_import(args: argparse.Namespace) -> int:
    """Append the bill's months to the chain (unchanged months skipped)."""
    config = load_config(args.config)
    months, source = read_bill(args.csv)
    with anchor.open_store(config, must_exist=False) as store:
        stored = instruments.bill_view(instruments_cli.load(store, config))
        have = {} if stored is None else stored["months"]
        new = [
            ("bill", {"month": m, "import_kwh": kwh, "source_file": Path(source["file"]).name,
                      "source_sha256": source["sha256"]})
            for m, kwh in sorted(months.items())
            if have.get(m) != kwh
        ]
        if new:
            instruments_cli.append_records(store, config, new)
    corrected = sorted(m for _, b in new if (m := b["month"]) in have)
    print(json.dumps({"file": source["file"], "sha256": source["sha256"],
                      "months": len(months), "appended": len(new), "corrected": corrected}))
    return 0


def cmd_bill_list(args: argparse.Namespace) -> int:
    """Print the stored bill (the record of each month that counts) as JSON."""
    config = load_config(args.config)
    with anchor.open_store(config) as store:
        stored = instruments.bill_view(instruments_cli.load(store, config))
    print(json.dumps({"bill": [] if stored is None else stored["source"]["records"]}, indent=2))
    return 0


def add_commands(csub: Any) -> None:
    """The ``bill import|list`` actions of ``dispatch carbon``."""
    bp = csub.add_parser(
        "bill",
        help="the utility bill (grid import kWh per month) in the chain",
        description="Store a utility bill's monthly grid import as chained records (the "
        "reports reconcile each month against it, the export bundle carries it); list it.",
    )
    bsub = bp.add_subparsers(dest="bill_command", required=True, metavar="ACTION")
    imp = bsub.add_parser("import", help="append a bill CSV (columns month, import_kwh)")
    imp.add_argument("--config", required=True, help="site configuration (TOML)")
    imp.add_argument("--csv", required=True, help="the bill: month (YYYY-MM), import_kwh")
    imp.set_defaults(func=cmd_bill_import)
    lst = bsub.add_parser("list", help="the stored bill, one record per month (JSON)")
    lst.add_argument("--config", required=True, help="site configuration (TOML)")
    lst.set_defaults(func=cmd_bill_list)
