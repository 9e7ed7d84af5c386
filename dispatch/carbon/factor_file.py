"""The factor table a site uses: the shipped CSV with the user's rows, and its grid factor.

Role: read ``data/grid_factors.csv`` (a package resource) and the file of ``[carbon]
factor_table_path``, merge them (``dispatch.carbon.factors.merged``) and resolve the site's
grid factor of record (``factors.configured``), for the CLI, the export and the daemon's ledger
job. Reads files; imports ``dispatch.carbon.factors``, ``config`` and ``types``.
"""

from __future__ import annotations

import csv
import io
from importlib import resources
from pathlib import Path

from dispatch.carbon import factors
from dispatch.config import SiteConfig
from dispatch.types import InputError

__all__ = ["factor_table", "grid_factor", "table_csv"]


def factor_table(config: SiteConfig) -> dict[str, factors.Factor]:
    """The shipped factor table with the user's ``[carbon] factor_table_path`` rows added.

    Raises
    ------
    InputError
        For a user file that cannot be read or holds a bad row.
    """
    shipped = resources.files("dispatch.carbon").joinpath("data/grid_factors.csv")
    table = factors.read_table(shipped.read_text(encoding="utf-8"), "grid_factors.csv")
    user: list[factors.Factor] = []
    path = config.carbon.factor_table_path
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"carbon.factor_table_path {path}: {exc.strerror}") from None
        user = factors.read_table(text, f"carbon.factor_table_path {path}")
    return factors.merged(table, user)


def grid_factor(config: SiteConfig) -> factors.Factor:
    """The site's grid factor of record (``factors.configured`` on ``factor_table``)."""
    key = config.carbon.grid_factor_key
    table = factor_table(config) if key is not None else {}
    return factors.configured(config.carbon.grid_ci_g_per_kwh, key, table)


def table_csv(table: dict[str, factors.Factor]) -> str:
    """The table as CSV text with the ``factors.COLUMNS`` header (``read_table`` reads it)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(factors.COLUMNS)
    for f in table.values():
        writer.writerow([f.as_dict()[c] for c in factors.COLUMNS])
    return out.getvalue()
