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
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dispatch.types import InputError

COLUMNS = ("key", "source", "year", "region", "basis", "g_per_kwh", "published")


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


def restate(import_kwh: Sequence[float], recorded_kg: float, factor: Factor) -> dict[str, Any]:
    """The location-based emissions of a period restated with ``factor``, beside the recorded.

    Parameters
    ----------
    import_kwh : sequence of float
        Each interval's grid imports in the period (kWh).
    recorded_kg : float
        The location-based emissions the ledger recorded for them (kg CO2).
    factor : Factor
        The factor to restate with.
    """
    imports = math.fsum(import_kwh)
    kg = imports * factor.g_per_kwh / 1000.0
    return {
        "factor": factor.as_dict(),
        "import_kwh": round(imports, 6) + 0.0,
        "recorded_location_kg_co2": round(recorded_kg, 6) + 0.0,
        "restated_location_kg_co2": round(kg, 6) + 0.0,
        "restated_over_recorded": None if recorded_kg == 0 else round(kg / recorded_kg, 12),
    }
