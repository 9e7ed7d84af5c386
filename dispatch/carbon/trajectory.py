"""Pure path to a zero Scope 2 balance: emissions by year, offsets retired, the projection.

Role: from the ledger's monthly basis emissions (t CO2, Scope 2 electricity only) and the
offsets retired by month, build the target section of a report: whether a trend may be
projected at all, the projection of the target year and the offsets it needs, and the path
year by year (recorded, projected, retired) that ``report_html`` draws. May import
``dispatch.carbon.accounting`` and the standard library; no I/O, no wall clock.

Rule: a linear trend is projected only from a full year of data: ``MIN_TREND_MONTHS`` months
with records among the 12 up to the report period's end. With fewer, the projection is
refused (no projected tonnes, no offsets needed) and a warning says why: two months of data
extrapolated to 2030 say nothing. With a year of data whose coverage is below
``MIN_TREND_COVERAGE`` the projection is made and a warning says how much is missing.
Months are numbered ``year * 12 + month - 1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dispatch.carbon import accounting

MIN_TREND_MONTHS = 12
MIN_TREND_COVERAGE = 0.9

__all__ = ["MIN_TREND_COVERAGE", "MIN_TREND_MONTHS", "target_section"]


def _r(x: float) -> float:
    return round(float(x), 6) + 0.0


def target_section(
    monthly_t_co2: Mapping[int, float],
    retired_t_by_month: Mapping[int, float],
    held_t: float,
    last_month: int,
    year: int,
    trend_coverage_frac: float | None,
) -> dict[str, Any]:
    """The ``scope2_target`` section of a report.

    Parameters
    ----------
    monthly_t_co2 : mapping of int to float
        Recorded basis emissions per month number (t CO2).
    retired_t_by_month : mapping of int to float
        Offsets retired per month number (t, credits netted 1:1).
    held_t : float
        Offsets held unretired at the period's end (t).
    last_month : int
        The report period's last month: nothing after it is used.
    year : int
        ``carbon.neutrality_target_year``.
    trend_coverage_frac : float or None
        Coverage of the 12 months up to ``last_month`` (recorded / expected intervals).

    Returns
    -------
    dict
        ``target_year``, ``trend_months``, ``trend_coverage_frac``, ``projection``
        (``"trend"`` or ``"refused"``), ``warning`` (or None), ``trend_slope_t_co2_per_month``,
        ``target_year_projected_t_co2`` and ``offsets_needed_t_co2`` (None when refused),
        ``offsets_held_t_co2`` and ``path`` (one row per year, see ``path``).
    """
    known = {k: float(v) for k, v in monthly_t_co2.items() if k <= last_month}
    window = [k for k in known if last_month - 12 < k]
    trend = accounting.project_year(known, last_month, year) if window else {}
    allowed = len(window) >= MIN_TREND_MONTHS
    cov = trend_coverage_frac
    warning = None
    if not allowed:
        warning = (
            f"projection to {year} refused: {len(window)} month(s) with data in the 12 up to "
            f"the period's end; a trend needs {MIN_TREND_MONTHS}"
        )
    elif cov is not None and cov < MIN_TREND_COVERAGE:
        warning = (
            f"projection to {year} from a year with {100 * cov:.1f} % coverage: emissions in "
            "the gaps are not counted, so the trend is low"
        )
    projected = trend.get("year_t_co2") if allowed else None
    slope = trend.get("trend_slope_t_co2_per_month")
    return {
        "target_year": year,
        "boundary": "Scope 2 electricity, CO2 only",
        "trend_months": len(window),
        "trend_coverage_frac": cov,
        "projection": "trend" if allowed else "refused",
        "warning": warning,
        "trend_slope_t_co2_per_month": None if slope is None or not allowed else _r(slope),
        "target_year_projected_t_co2": None if projected is None else _r(projected),
        "offsets_held_t_co2": _r(held_t),
        "offsets_needed_t_co2": None if projected is None else _r(max(projected - held_t, 0.0)),
        "path": path(known, retired_t_by_month, last_month, year, allowed),
    }


def path(
    known: Mapping[int, float],
    retired_t_by_month: Mapping[int, float],
    last_month: int,
    year: int,
    projected: bool,
) -> list[dict[str, Any]]:
    """The path year by year from the first year with data to the target year.

    Returns
    -------
    list of dict
        ``year``, ``recorded_t_co2`` (sum of the recorded months, None without any),
        ``recorded_months``, ``projected_t_co2`` (recorded months plus the trend for the
        others, from the period's year on; None before it or when the projection is
        refused) and ``offsets_retired_t_co2`` (up to the period's end).
    """
    years = [k // 12 for k in known] + [last_month // 12]
    rows = []
    for y in range(min(years), max(year, last_month // 12) + 1):
        months = [k for k in range(y * 12, y * 12 + 12) if k <= last_month]
        recorded = [known[k] for k in months if k in known]
        proj = None
        if projected and y >= last_month // 12:
            proj = _r(accounting.project_year(dict(known), last_month, y)["year_t_co2"])
        rows.append(
            {
                "year": y,
                "recorded_t_co2": _r(sum(recorded)) if recorded else None,
                "recorded_months": len(recorded),
                "projected_t_co2": proj,
                "offsets_retired_t_co2": _r(sum(retired_t_by_month.get(k, 0.0) for k in months)),
            }
        )
    return rows
