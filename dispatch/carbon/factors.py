"""Pure grid emission factors by year and region, and restating a period with one of them.

Role: read the factor table (``data/grid_factors.csv`` shipped with the package, extendable by
a user CSV of the same columns: ``key, source, year, region, basis, g_per_kwh, published``),
and restate the location-based emissions of ledger records with another factor. May import
only ``dispatch.types`` and the standard library; no I/O (the caller passes the text), no
wall clock.

China's official factors (MEE and NBS: national, regional, provincial, the average excluding
market-traded non-fossil electricity, fossil) come about two years after their data year and
are revised, so a factory restates past periods with the current factor: each interval's
imports times the new factor (``import_kwh * g_per_kwh / 1000`` kg), beside the figure the
ledger recorded at the time. Provincial factors (e.g. Jiangsu) are added by the user.

Factor reference (hashed into each ledger record, ``chain.IntervalRecord.factor_ref``):
``KEY|G_PER_KWH|SHA256`` with the factor's key, its value (``repr`` of the float) and
``entry_hash``, the SHA-256 of the table entry's sorted-key JSON without spaces. It names the
grid factor of record: the configured factor (``[carbon] grid_factor_key`` in the table, or
``CONFIG_KEY`` for ``grid_ci_g_per_kwh`` without one), whose value is the interval's intensity
when its ``ci_source`` is ``config_factor``. A report checks each reference against the table
it is given (``check_references``): an entry revised since (same key, another hash) or gone is
a warning, and a restatement shows the factor it replaces.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dispatch.types import InputError

COLUMNS = ("key", "source", "year", "region", "basis", "g_per_kwh", "published")
#: Key of the factor synthesised from ``[carbon] grid_ci_g_per_kwh`` without a table key.
CONFIG_KEY = "config:grid_ci_g_per_kwh"


@dataclass(frozen=True)
class Factor:
    """One grid emission factor (g CO2/kWh = kg/MWh) with where it comes from."""

    key: str
    source: str
    year: int
    region: str
    basis: str
    g_per_kwh: float
    published: str

    def as_dict(self) -> dict[str, Any]:
        """The factor as plain data (for reports)."""
        return {c: getattr(self, c) for c in COLUMNS}


def read_table(text: str, where: str) -> list[Factor]:
    """Factors from CSV text with the ``COLUMNS`` header.

    Raises
    ------
    InputError
        Naming ``where``, the line and the column of a value that is not one.
    """
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or tuple(reader.fieldnames) != COLUMNS:
        raise InputError(f"{where}: the header must be {','.join(COLUMNS)}")
    out = []
    for n, row in enumerate(reader, start=2):
        try:
            value = float(row["g_per_kwh"])
            year = int(row["year"])
            if not (math.isfinite(value) and value >= 0) or not row["key"].strip():
                raise ValueError("g_per_kwh must be a number >= 0 and key not empty")
            if "|" in row["key"]:
                raise ValueError(f"key {row['key']!r} must not hold '|'")
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where} line {n}: {exc}") from None
        out.append(
            Factor(
                row["key"].strip(),
                row["source"],
                year,
                row["region"],
                row["basis"],
                value,
                row["published"],
            )
        )
    return out


def merged(shipped: Sequence[Factor], user: Sequence[Factor]) -> dict[str, Factor]:
    """The shipped table with the user's rows added (a user row replaces one of the same key)."""
    return {f.key: f for f in [*shipped, *user]}


def find(table: dict[str, Factor], key: str) -> Factor:
    """The factor ``key`` (``InputError`` listing the keys when unknown)."""
    if key not in table:
        raise InputError(f"factor {key!r} is not in the factor table; keys: {', '.join(table)}")
    return table[key]


def restate(
    import_kwh: Sequence[float],
    recorded_kg: float,
    factor: Factor,
    references: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The location-based emissions of a period restated with ``factor``, beside the recorded.

    Parameters
    ----------
    import_kwh : sequence of float
        Each interval's grid imports in the period (kWh).
    recorded_kg : float
        The location-based emissions the ledger recorded for them (kg CO2).
    factor : Factor
        The factor to restate with.
    references : sequence of dict
        ``check_references`` rows of the period's records: the factors of record the
        restatement replaces (``recorded_factors``); with exactly one,
        ``factor_over_recorded_factor`` is the ratio of the two factors.
    """
    imports = math.fsum(import_kwh)
    kg = imports * factor.g_per_kwh / 1000.0
    named = [r for r in references if r.get("g_per_kwh") is not None]
    ratio = None
    if len(named) == 1 and len(references) == 1 and named[0]["g_per_kwh"] > 0:
        ratio = round(factor.g_per_kwh / named[0]["g_per_kwh"], 12)
    return {
        "factor": factor.as_dict(),
        "recorded_factors": [
            {k: r[k] for k in ("key", "g_per_kwh", "records", "status")} for r in references
        ],
        "factor_over_recorded_factor": ratio,
        "import_kwh": round(imports, 6) + 0.0,
        "recorded_location_kg_co2": round(recorded_kg, 6) + 0.0,
        "restated_location_kg_co2": round(kg, 6) + 0.0,
        "restated_over_recorded": None if recorded_kg == 0 else round(kg / recorded_kg, 12),
    }


def entry_hash(factor: Factor) -> str:
    """SHA-256 (hex) of the factor's table entry: sorted-key JSON of ``as_dict`` without
    spaces (UTF-8; the value and year as JSON numbers)."""
    text = json.dumps(factor.as_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def reference(factor: Factor) -> str:
    """The factor reference ``KEY|G_PER_KWH|SHA256`` a ledger record holds."""
    return f"{factor.key}|{factor.g_per_kwh!r}|{entry_hash(factor)}"


def parse_reference(text: str) -> tuple[str, float, str]:
    """``(key, g_per_kwh, entry hash)`` of a factor reference.

    Raises
    ------
    InputError
        When the text is not ``KEY|G_PER_KWH|SHA256``.
    """
    parts = text.rsplit("|", 2)
    try:
        key, value, digest = parts
        g = float(value)
        if not key or len(digest) != 64 or not math.isfinite(g):
            raise ValueError
    except ValueError:
        raise InputError(f"factor reference {text!r} is not KEY|G_PER_KWH|SHA256") from None
    return key, g, digest


def configured(grid_ci_g_per_kwh: float, key: str | None, table: dict[str, Factor]) -> Factor:
    """The grid factor of record of a site: the table entry ``key`` (its value must be the
    configured ``grid_ci_g_per_kwh``), or without a key one synthesised from the value.

    Raises
    ------
    InputError
        For an unknown key, or an entry whose value is not the configured one.
    """
    if key is None:
        return Factor(CONFIG_KEY, "[carbon] grid_ci_g_per_kwh", 0, "", "configured",
                      float(grid_ci_g_per_kwh), "")
    entry = find(table, key)
    if entry.g_per_kwh != float(grid_ci_g_per_kwh):
        raise InputError(
            f"[carbon] grid_factor_key {key!r} is {entry.g_per_kwh} g/kWh in the factor table "
            f"but grid_ci_g_per_kwh is {grid_ci_g_per_kwh}: make them agree"
        )
    return entry


def check_references(
    refs: dict[str, int], table: dict[str, Factor] | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The factor references of a period checked against a factor table.

    Parameters
    ----------
    refs : dict of str to int
        Each distinct ``factor_ref`` of the period's records and how many records hold it
        (``""``: records written before factor references).
    table : dict of str to Factor or None
        The factor table (shipped and user rows); None: not checked (status
        ``"not checked"``, no warnings).

    Returns
    -------
    tuple of (list of dict, list of str)
        One row per reference (``key``, ``g_per_kwh``, ``entry_sha256``, ``records``,
        ``status``: ``"matches the table"``, ``"revised in the table"`` (same key, another
        entry), ``"not in the table"``, ``"configured value"`` (``CONFIG_KEY``) or
        ``"not recorded"``) and a warning per revised or missing entry.
    """
    rows, warns = [], []
    for ref, n in sorted(refs.items()):
        if not ref:
            rows.append({"key": None, "g_per_kwh": None, "entry_sha256": None, "records": n,
                         "status": "not recorded"})
            continue
        key, g, digest = parse_reference(ref)
        if key == CONFIG_KEY:
            status = "configured value"
        elif table is None:
            status = "not checked"
        elif key not in table:
            status = "not in the table"
            warns.append(f"{n} record(s) name factor {key!r} ({g} g/kWh), which is not in "
                         "the factor table")
        elif entry_hash(table[key]) != digest:
            status = "revised in the table"
            warns.append(f"{n} record(s) were booked with factor {key!r} at {g} g/kWh; the "
                         f"table's entry now differs ({table[key].g_per_kwh} g/kWh): restate")
        else:
            status = "matches the table"
        rows.append({"key": key, "g_per_kwh": g, "entry_sha256": digest, "records": n,
                     "status": status})
    return rows, warns
