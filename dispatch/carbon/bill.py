"""Pure monthly reconciliation of the ledger's grid import against the utility's bill.

Role: read a utility bill's monthly grid import (CSV text, kWh per site-local month) and set
it beside the ledger's import of each month of a report, with the difference in kWh and as a
fraction of the bill, and a warning where they differ by more than ``TOLERANCE_FRAC`` (a
gap in the ledger, a meter that drifts, a bill for another connection point). May import
only ``dispatch.types`` and the standard library; no I/O, no wall clock (the caller reads the
file and passes its text).

Bill CSV::

    month,import_kwh
    2026-05,1234567.8
    2026-06,1198000

``month`` is ``YYYY-MM`` (the site-local calendar month the bill covers), ``import_kwh`` the
metered grid import (kWh, >= 0); each month at most once.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from dispatch.types import InputError

TOLERANCE_FRAC = 0.02
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

__all__ = ["TOLERANCE_FRAC", "parse_bill", "reconcile"]


def parse_bill(text: str, where: str) -> dict[str, float]:
    """The bill's import (kWh) by month ``YYYY-MM``.

    Raises
    ------
    InputError
        Naming ``where``, the line and the column of the first problem: a missing column, a
        month that is not ``YYYY-MM`` or repeats, an import that is not a number >= 0.
    """
    rows = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("month", "import_kwh") if c not in (rows.fieldnames or [])]
    if missing:
        raise InputError(
            f"{where}: the bill needs the columns month, import_kwh; missing {', '.join(missing)}"
        )
    out: dict[str, float] = {}
    for line, row in enumerate(rows, start=2):
        month = (row["month"] or "").strip()
        if not _MONTH.match(month):
            raise InputError(f"{where}: line {line}: month {month!r} is not YYYY-MM")
        if month in out:
            raise InputError(f"{where}: line {line}: month {month} appears twice")
        try:
            kwh = float(row["import_kwh"])
        except (TypeError, ValueError):
            kwh = math.nan
        if not math.isfinite(kwh) or kwh < 0:
            raise InputError(
                f"{where}: line {line}: import_kwh {row['import_kwh']!r} is not "
                "a number of kWh >= 0"
            )
        out[month] = kwh
    if not out:
        raise InputError(f"{where}: the bill has no month")
    return out


def reconcile(
    months: Sequence[Mapping[str, Any]], bill: Mapping[str, float], source: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The reconciliation section of a report and its warnings.

    Parameters
    ----------
    months : sequence of mapping
        The report's month rows (``month``, ``import_kwh``, ``coverage_frac``).
    bill : mapping of str to float
        ``parse_bill``'s import (kWh) by month.
    source : mapping
        Where the bill came from (``file``, ``sha256``), repeated in the section.

    Returns
    -------
    tuple of (dict, list of str)
        ``{"source", "tolerance_frac", "months": [{"month", "ledger_import_kwh",
        "bill_import_kwh" (None: not on the bill), "difference_kwh" (ledger - bill),
        "difference_frac" (of the bill; None without a bill or for a zero bill),
        "coverage_frac"}]}`` and a warning per month beyond ``TOLERANCE_FRAC`` or missing.
    """
    rows, warns = [], []
    for m in months:
        ledger, billed = float(m["import_kwh"]), bill.get(m["month"])
        diff = None if billed is None else round(ledger - billed, 6) + 0.0
        frac = None if billed is None or billed == 0 else round(diff / billed, 6) + 0.0
        rows.append(
            {
                "month": m["month"],
                "ledger_import_kwh": ledger,
                "bill_import_kwh": billed,
                "difference_kwh": diff,
                "difference_frac": frac,
                "coverage_frac": m.get("coverage_frac"),
            }
        )
        if billed is None:
            warns.append(f"{m['month']}: not on the utility bill: not reconciled")
        elif (frac is None and ledger > 0) or (frac is not None and abs(frac) > TOLERANCE_FRAC):
            pct = "" if frac is None else f" ({100 * frac:+.1f} %)"
            warns.append(
                f"{m['month']}: the ledger's grid import {ledger:,.1f} kWh differs from "
                f"the bill's {billed:,.1f} kWh by {diff:+,.1f} kWh{pct}"
            )
    section = {"source": dict(source), "tolerance_frac": TOLERANCE_FRAC, "months": rows}
    return section, warns
