"""Pure carbon reports: per-period totals from ledger records, the Scope 2 net-balance trend,
rendering.

Role: turn ledger records (``chain``) and the offsets registry into a report for a month
(``2026-10``), quarter (``2026-Q3``) or year (``2026``) counted in the site's time zone, and
render it as CSV, JSON or self-contained HTML (``to_html``, from ``report_html``). May import
only ``dispatch.types``, ``dispatch.config``, the pure parts of ``dispatch.carbon``
(``accounting``, ``market``, ``chain``, ``offsets``, ``report_html``), numpy, pandas and the
standard library; no I/O, no wall clock: the same records give the same text.

Net balance: the basis emissions (``carbon.neutrality_basis``, market-based by default) minus
the offsets retired in the period (by retirement date). Avoided emissions are reported beside
it and never netted. Certificates are allocated over the whole ledger before the period is cut
out, so a month has the same market-based figure in its monthly, quarterly and yearly reports.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dispatch.carbon import accounting, bill, chain, coverage, factors, trajectory
from dispatch.carbon import market as carbon_market
from dispatch.carbon.offsets import OffsetRecord, validate_offsets
from dispatch.carbon.report_html import to_html
from dispatch.config import CertificateSection, SiteConfig
from dispatch.types import InputError

#: What every figure of a report covers: said in its JSON, CSV and HTML.
SCOPE = {
    "boundary": "Scope 2 (purchased grid electricity) only",
    "gas": "CO2 (the grid factors are CO2 factors; not CO2e)",
    "net_balance": "Scope 2 electricity CO2 minus offsets retired; not carbon neutrality in "
    "the sense of ISO 14068-1, which needs Scopes 1, 2 and relevant Scope 3",
    "offsets": "credits are issued in t CO2e and netted 1:1 against t CO2",
}

__all__ = ["Period", "build_report", "neutrality_target", "parse_period", "to_csv", "to_html",
           "to_json"]

_PERIOD = re.compile(r"^(\d{4})(?:-(?:(\d{2})|[Qq](\d)))?$")
SUM_KWH = (
    "load_kwh", "pv_kwh", "pv_direct_kwh", "curtail_kwh", "import_kwh", "export_kwh",
    "charge_kwh", "discharge_kwh", "covered_kwh",
)
SUM_KG = (
    "location_kg_co2", "market_kg_co2", "nobatt_kg_co2", "nopv_kg_co2", "avoided_pv_kg_co2",
    "avoided_battery_kg_co2", "charge_grid_kg_co2",
)
ROUND = 6


def _r(x: float) -> float:
    """Round to ``ROUND`` decimals, with no negative zero (stable text)."""
    return round(float(x), ROUND) + 0.0


@dataclass(frozen=True)
class Period:
    """A reporting period in the site's time zone: ``[start, end)`` local midnight bounds."""

    label: str
    kind: str
    start: pd.Timestamp
    end: pd.Timestamp

    def months(self) -> list[str]:
        """Labels ``YYYY-MM`` of the calendar months the period spans."""
        return [
            p.strftime("%Y-%m")
            for p in pd.period_range(self.start.tz_localize(None), periods=self.n_months, freq="M")
        ]

    @property
    def n_months(self) -> int:
        """Number of months (1, 3 or 12)."""
        return {"month": 1, "quarter": 3, "year": 12}[self.kind]


def parse_period(text: str, tz: str = "UTC") -> Period:
    """Parse ``YYYY``, ``YYYY-MM`` or ``YYYY-Qn`` into a period in time zone ``tz``.

    Raises
    ------
    InputError
        Naming the text and the accepted forms, or the out-of-range month or quarter.
    """
    forms = "use YYYY (2026), YYYY-MM (2026-10) or YYYY-Qn (2026-Q3)"
    m = _PERIOD.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise InputError(f"period {text!r} is not understood: {forms}")
    year, month, quarter = int(m.group(1)), m.group(2), m.group(3)
    if not 1900 <= year <= 2200:
        raise InputError(f"period {text!r}: year {year} is out of range 1900..2200")
    if month is not None:
        if not 1 <= int(month) <= 12:
            raise InputError(f"period {text!r}: month {month} must be 01..12; {forms}")
        kind, first, label = "month", int(month), f"{year}-{month}"
    elif quarter is not None:
        if not 1 <= int(quarter) <= 4:
            raise InputError(f"period {text!r}: quarter Q{quarter} must be Q1..Q4; {forms}")
        kind, first, label = "quarter", 3 * int(quarter) - 2, f"{year}-Q{quarter}"
    else:
        kind, first, label = "year", 1, f"{year}"
    start = pd.Timestamp(year=year, month=first, day=1)
    n = {"month": 1, "quarter": 3, "year": 12}[kind]
    end = start + pd.DateOffset(months=n)
    return Period(label, kind, start.tz_localize(tz), end.tz_localize(tz))


def _ledger_frame(
    records: list[chain.IntervalRecord], config: SiteConfig, certs: list[CertificateSection]
) -> tuple[pd.DataFrame, list]:
    """All records as one frame with the market-based columns and a local month label."""
    frame = chain.records_frame(records)
    market, uses = carbon_market.market_based(frame, config, certs)
    frame = frame.join(market)
    frame["month"] = frame.index.tz_convert(config.site.timezone).strftime("%Y-%m")
    return frame, uses


def _retired_by_month(offsets: list[OffsetRecord]) -> dict[str, float]:
    out: dict[str, float] = {}
    for o in offsets:
        if o.retired_on is not None:
            key = o.retired_on.strftime("%Y-%m")
            out[key] = out.get(key, 0.0) + o.tonnes
    return out


def _row(part: pd.DataFrame, retired_t: float, basis: str) -> dict[str, Any]:
    row: dict[str, Any] = {"intervals": len(part)}
    row.update({c: _r(float(part[c].sum())) for c in (*SUM_KWH, *SUM_KG)})
    losses = accounting.battery_losses(part) if len(part) else {"loss_kwh": 0.0, "loss_kg_co2": 0.0}
    row["battery_loss_kwh"] = _r(losses["loss_kwh"])
    row["battery_loss_kg_co2"] = _r(losses["loss_kg_co2"])
    basis_t = float(part[f"{basis}_kg_co2"].sum()) / 1000.0 if len(part) else 0.0
    row["scope2_basis_t_co2"] = _r(basis_t)
    row["offsets_retired_t_co2"] = _r(retired_t)
    row["scope2_net_t_co2"] = _r(basis_t - retired_t)
    return row


def _factors(config: SiteConfig, part: pd.DataFrame) -> dict[str, Any]:
    c = config.carbon
    imports = float(part["import_kwh"].sum()) if len(part) else 0.0
    weighted = 1000.0 * float(part["location_kg_co2"].sum()) / imports if imports > 0 else None
    sources = part["ci_source"].value_counts().sort_index() if len(part) else pd.Series(dtype=int)
    return {
        "grid_ci_g_per_kwh": c.grid_ci_g_per_kwh,
        "hourly_profile_g_per_kwh": c.hourly_profile_g_per_kwh,
        "residual_mix_g_per_kwh": c.residual_mix_g_per_kwh,
        "import_weighted_ci_g_per_kwh": None if weighted is None else _r(weighted),
        "intensity_sources": {str(k): int(v) for k, v in sources.items()},
        "method_versions": sorted(set(part["method_version"])) if len(part) else [],
        "neutrality_basis": c.neutrality_basis,
        "timezone": config.site.timezone,
    }


def _certificates(
    certs: list[CertificateSection], n_config: int, uses: list[carbon_market.CertificateUse]
) -> list[dict[str, Any]]:
    return [
        {**c.model_dump(mode="json"), "allocated_mwh": _r(u.allocated_mwh),
         "unused_mwh": _r(u.unused_mwh), "source": "config" if k < n_config else "chain"}
        for k, (c, u) in enumerate(zip(certs, uses, strict=True))
    ]


def build_report(
    records: list[chain.IntervalRecord],
    offsets: list[OffsetRecord],
    config: SiteConfig,
    period: str | Period,
    certificates: list[CertificateSection] | None = None,
    restate_with: factors.Factor | None = None,
    utility_bill: dict[str, Any] | None = None,
    factor_table: dict[str, factors.Factor] | None = None,
) -> dict[str, Any]:
    """The report of one period as plain data (JSON-ready, floats rounded to 6 decimals).

    Parameters
    ----------
    records : list of IntervalRecord
        The whole ledger (certificates are allocated over all of it); verify it first.
    offsets : list of OffsetRecord
        The offsets registry (validated with ``validate_offsets``).
    config : SiteConfig
        Site time zone, factors, certificates, neutrality target and basis.
    period : str or Period
        ``"2026-10"``, ``"2026-Q3"``, ``"2026"`` or a parsed period.
    certificates : list of CertificateSection, optional
        Certificates recorded in the chained instruments, allocated after the config's
        (whose ``source`` the report marks ``"config"``: editing the config restates them).
    restate_with : Factor, optional
        A factor of the table to restate the period's location-based emissions with
        (``restatement``: both figures and their ratio).
    utility_bill : dict, optional
        ``{"months": bill.parse_bill(...), "source": {"file", "sha256"}}``: each month's
        grid import reconciled against it (``reconciliation``; None without a bill).
    factor_table : dict of str to Factor, optional
        The factor table the records' factor references are checked against
        (``factor_references``: each reference, its record count and status; a revised or
        missing entry is a warning). None: listed, not checked.

    Returns
    -------
    dict
        ``period``, ``ledger`` (record count, head hash and the public key that signs its
        checkpoints, or None), ``methods``, ``factors``,
        ``certificates``, ``months`` (one row per calendar month: energies in kWh, emissions in
        kg CO2, the Scope 2 basis, offsets and net in t CO2), ``totals``, ``offsets_retired``,
        ``scope`` (``SCOPE``: Scope 2 electricity, CO2 only) and ``scope2_target``.
    """
    tz = config.site.timezone
    p = parse_period(period, tz) if isinstance(period, str) else period
    validate_offsets(offsets)
    certs = [*config.carbon.certificates, *(certificates or [])]
    frame, uses = _ledger_frame(records, config, certs)
    basis = config.carbon.neutrality_basis
    retired = _retired_by_month(offsets)
    months = [
        {"month": m, **_row(frame[frame["month"] == m], retired.get(m, 0.0), basis)}
        for m in p.months()
    ]
    inside = frame[frame["month"].isin(p.months())]
    totals = _row(inside, sum(retired.get(m, 0.0) for m in p.months()), basis)
    cov, warns = _coverage(frame, records, config, p, months)
    target = neutrality_target(frame, offsets, config, p)
    recon = None
    if utility_bill is not None:
        recon, more = bill.reconcile(months, utility_bill["months"], utility_bill["source"])
        warns += more
    if target.get("warning"):
        warns.append(f"{p.label}: {target['warning']}")
    counts = inside["factor_ref"].value_counts() if len(inside) else pd.Series(dtype=int)
    refs, more = factors.check_references({str(k): int(v) for k, v in counts.items()},
                                          factor_table)
    warns += [f"{p.label}: {w}" for w in more]
    totals["coverage_frac"] = cov["coverage_frac"]
    months_in = set(p.months())
    in_period = [o for o in offsets if o.retired_on and o.retired_on.strftime("%Y-%m") in months_in]
    return {
        "period": {"label": p.label, "kind": p.kind, "start": p.start.isoformat(),
                   "end": p.end.isoformat(), "timezone": tz},
        "ledger": {
            "records": len(records),
            "head": records[-1].record_hash if records else "",
            "checkpoint_public_key": config.carbon.checkpoint_public_key,
        },
        "scope": dict(SCOPE),
        "methods": {"version": accounting.METHOD_VERSION, **accounting.METHOD_NOTES},
        "factors": _factors(config, inside),
        "factor_references": refs,
        "certificates": _certificates(certs, len(config.carbon.certificates), uses),
        "months": months,
        "totals": totals,
        "coverage": cov,
        "warnings": warns,
        "restatement": None if restate_with is None else factors.restate(
            inside["import_kwh"].tolist(), math.fsum(inside["location_kg_co2"]), restate_with,
            refs,
        ),
        "offsets_retired": [
            _offset_row(o) for o in sorted(in_period, key=lambda o: (o.retired_on, o.serial))
        ],
        "scope2_target": target,
        "reconciliation": recon,
    }


def _coverage(
    frame: pd.DataFrame,
    records: list[chain.IntervalRecord],
    config: SiteConfig,
    p: Period,
    months: list[dict[str, Any]],
) -> tuple[dict[str, Any], list[str]]:
    """Coverage of the period and of each month (set in the month rows), and the warnings."""
    step = pd.Timedelta(minutes=config.plan.step_min)
    until = pd.Timestamp(records[-1].end_utc) if records else None
    tz = config.site.timezone
    warns: list[str] = []
    for row in months:
        lo = pd.Timestamp(f"{row['month']}-01").tz_localize(tz)
        part = frame[frame["month"] == row["month"]]
        cov = coverage.coverage(list(part.index), lo, lo + pd.DateOffset(months=1), step, until)
        row["coverage_frac"] = cov["coverage_frac"]
        warns += coverage.warnings(row["month"], cov)
    inside = frame[frame["month"].isin(p.months())]
    total = coverage.coverage(list(inside.index), p.start, p.end, step, until)
    prov = coverage.provenance(list(inside["provenance"]), list(inside["import_kwh"]))
    warns += coverage.provenance_warnings(p.label, prov)
    return {"step_min": config.plan.step_min, **total, "provenance": prov}, warns


def _offset_row(o: OffsetRecord) -> dict[str, Any]:
    return {
        "credit_type": o.credit_type,
        "serial": o.serial,
        "vintage_year": o.vintage_year,
        "tonnes": o.tonnes,
        "purchased_on": o.purchased_on.isoformat(),
        "retired_on": None if o.retired_on is None else o.retired_on.isoformat(),
        "registry": o.registry,
    }


def _month_number(label: str) -> int:
    return int(label[:4]) * 12 + int(label[5:7]) - 1


def neutrality_target(
    frame: pd.DataFrame, offsets: list[OffsetRecord], config: SiteConfig, period: Period
) -> dict[str, Any]:
    """Offsets needed for a zero Scope 2 electricity CO2 balance in the target year, at the
    current trend (not ISO 14068-1 neutrality: Scopes 1 and 3 are not in the ledger).

    The target year's basis emissions are projected with ``accounting.project_year`` from the
    monthly basis emissions (before offsets, since offsets are what is being sized) of the
    last 12 months up to the period's end, only from a full year of data
    (``trajectory.target_section``: refused with a warning otherwise). ``offsets_needed_t_co2``
    is that projection minus the offsets held unretired at the period end, never below zero.
    ``path`` gives the emissions, projection and offsets retired by year to the target year.

    Parameters
    ----------
    frame : pandas.DataFrame
        The ledger frame with ``month`` labels and the basis emissions column.
    offsets : list of OffsetRecord
        The registry.
    config : SiteConfig
        ``carbon.neutrality_target_year``, ``carbon.neutrality_basis`` and the plan step.
    period : Period
        The report period; nothing after its end is used.
    """
    year = config.carbon.neutrality_target_year
    if year is None:
        return {"target_year": None}
    col = f"{config.carbon.neutrality_basis}_kg_co2"
    monthly = frame.groupby("month")[col].sum() / 1000.0 if len(frame) else pd.Series(dtype=float)
    known = {_month_number(m): float(v) for m, v in monthly.items()}
    retired = {_month_number(m): t for m, t in _retired_by_month(offsets).items()}
    last = _month_number(period.months()[-1])
    end_day = (period.end - pd.Timedelta(days=1)).date()
    held = sum(o.tonnes for o in offsets if o.purchased_on <= end_day and not _retired(o, end_day))
    step = pd.Timedelta(minutes=config.plan.step_min)
    lo = (period.end - pd.DateOffset(months=12)).tz_convert("UTC")
    starts = [t for t in frame.index if lo <= t < period.end]
    until = frame.index.max() + step if len(frame) else None
    cov = coverage.coverage(starts, lo, period.end, step, until)["coverage_frac"]
    return trajectory.target_section(known, retired, float(held), last, year, cov)


def _retired(o: OffsetRecord, by: dt.date) -> bool:
    return o.retired_on is not None and o.retired_on <= by


def to_json(report: dict[str, Any]) -> str:
    """The report as JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(report, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


_BALANCE = ("scope2_basis_t_co2", "offsets_retired_t_co2", "scope2_net_t_co2", "coverage_frac")
CSV_COLUMNS = ("intervals", *SUM_KWH, "battery_loss_kwh", *SUM_KG, "battery_loss_kg_co2", *_BALANCE)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    return str(v) if isinstance(v, int) else f"{v:.{ROUND}f}"


def to_csv(report: dict[str, Any]) -> str:
    """The report as CSV: ``#`` comment lines with the period, methods and factors, then one
    row per month and a ``total`` row (energies kWh, emissions kg CO2, balance t CO2)."""
    lines = [
        f"# Scope 2 electricity CO2 report {report['period']['label']} "
        f"({report['period']['timezone']})",
        f"# boundary: {report['scope']['boundary']}; gas: {report['scope']['gas']}",
        f"# ledger records {report['ledger']['records']} head {report['ledger']['head']}",
    ]
    key = report["ledger"].get("checkpoint_public_key")
    if key:
        lines.append(f"# ledger checkpoints signed by Ed25519 key {key}")
    lines += [f"# method {k}: {v}" for k, v in report["methods"].items()]
    lines += [
        f"# factor {k}: {json.dumps(v, sort_keys=True)}" for k, v in report["factors"].items()
    ]
    target = report["scope2_target"]
    lines += [f"# scope2_target {k}: {json.dumps(v)}" for k, v in target.items() if k != "path"]
    lines += [f"# scope2_path {json.dumps(row, sort_keys=True)}" for row in target.get("path", [])]
    cov = report["coverage"]
    lines.append(f"# coverage {cov['recorded_intervals']} of {cov['expected_intervals']} "
                 f"intervals, {cov['gap_count']} gap(s), {cov['gap_hours']:g} h")
    if "provenance" in cov:
        counts = cov["provenance"]["intervals"]
        lines.append("# provenance " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    lines += [
        f"# factor reference {r['key']} ({r['g_per_kwh']} g/kWh, entry {r['entry_sha256']}): "
        f"{r['records']} record(s), {r['status']}"
        for r in report.get("factor_references", [])
    ]
    recon = report.get("reconciliation") or {"months": []}
    lines += [f"# bill {json.dumps(r, sort_keys=True)}" for r in recon["months"]]
    lines += [f"# warning {w}" for w in report["warnings"]]
    if report.get("restatement"):
        r = report["restatement"]
        f = r["factor"]
        lines.append(
            f"# restated with {f['key']} ({f['g_per_kwh']} g/kWh, {f['year']}, {f['region']}): "
            f"recorded {r['recorded_location_kg_co2']} kg, "
            f"restated {r['restated_location_kg_co2']} kg"
        )
    lines.append(",".join(("month", *CSV_COLUMNS)))
    rows = [*report["months"], {"month": "total", **report["totals"]}]
    lines += [",".join((r["month"], *(_cell(r[c]) for c in CSV_COLUMNS))) for r in rows]
    return "\n".join(lines) + "\n"
