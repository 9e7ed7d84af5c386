"""Pure HTML rendering of a carbon report: one self-contained page, inline SVG, no scripts.

Role: turn the plain-data report of ``dispatch.carbon.report.build_report`` into HTML text
(re-exported there as ``report.to_html``). Imports only the standard library; no I/O,
no wall clock: the same report gives the same text.
"""

from __future__ import annotations

import html
import json
from typing import Any

__all__ = ["HTML_COLUMNS", "to_html"]

HTML_COLUMNS = (
    "intervals",
    "import_kwh",
    "export_kwh",
    "location_kg_co2",
    "market_kg_co2",
    "avoided_pv_kg_co2",
    "avoided_battery_kg_co2",
    "battery_loss_kwh",
    "offsets_retired_t_co2",
    "scope2_net_t_co2",
    "coverage_frac",
)

_SERIES = (
    ("location_kg_co2", "location-based", "#8c8c8c"),
    ("market_kg_co2", "market-based", "#2e7d32"),
    ("avoided_battery_kg_co2", "avoided by battery", "#1565c0"),
)


def _svg_chart(months: list[dict[str, Any]]) -> str:
    """Grouped monthly bars (t CO2) as inline SVG; negative values hang below the axis."""
    w, h, left, top, bottom = 720, 280, 60, 20, 50
    values = [[r[k] / 1000.0 for k, _, _ in _SERIES] for r in months]
    hi = max([0.0, *(v for row in values for v in row)]) or 1.0
    lo = min([0.0, *(v for row in values for v in row)])
    scale = (h - top - bottom) / (hi - lo)
    zero = top + hi * scale
    slot = (w - left - 10) / max(len(months), 1)
    bar = slot * 0.8 / len(_SERIES)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        f'aria-label="monthly emissions, t CO2">',
        f'<line x1="{left}" y1="{zero:.1f}" x2="{w - 10}" y2="{zero:.1f}" stroke="#000"/>',
        f'<text x="4" y="{top + 4}" font-size="11">{hi:.3f} t</text>',
        f'<text x="4" y="{zero + 4:.1f}" font-size="11">0 t</text>',
    ]
    if lo < 0:
        out.append(f'<text x="4" y="{h - bottom + 4}" font-size="11">{lo:.3f} t</text>')
    for i, (row, r) in enumerate(zip(values, months, strict=True)):
        x0 = left + i * slot + slot * 0.1
        for j, (v, (_, name, colour)) in enumerate(zip(row, _SERIES, strict=True)):
            y, height = (zero - v * scale, v * scale) if v >= 0 else (zero, -v * scale)
            out.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}" fill="{colour}"><title>{r["month"]} {name}: '
                f"{v:.3f} t</title></rect>"
            )
        out.append(
            f'<text x="{x0 + slot * 0.4:.1f}" y="{h - bottom + 16}" font-size="10" '
            f'text-anchor="middle">{r["month"]}</text>'
        )
    for j, (_, name, colour) in enumerate(_SERIES):
        x = left + j * 170
        out.append(
            f'<rect x="{x}" y="{h - 18}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{h - 9}" font-size="11">{html.escape(name)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _bill_table(report: dict[str, Any]) -> str:
    recon = report.get("reconciliation")
    if not recon:
        return "<p>No utility bill given (<code>report --bill FILE</code>).</p>"
    rows = [(r["month"], {k: v for k, v in r.items() if k != "month"}) for r in recon["months"]]
    return _table([("source", recon["source"]), *rows])


def _target_table(target: dict[str, Any]) -> str:
    rows = [(k, v) for k, v in target.items() if k != "path"]
    path = [
        (str(r["year"]), {k: v for k, v in r.items() if k != "year"})
        for r in target.get("path", [])
    ]
    return _table(rows) + (_table(path) if path else "")


_PATH_BARS = (  # class, key, offset in bars, fill, extra attributes
    ("projected", "projected_t_co2", 0, "#ffffff", ' stroke="#555" stroke-dasharray="4 3"'),
    ("recorded", "recorded_t_co2", 0, "#8c8c8c", ""),
    ("retired", "offsets_retired_t_co2", 1, "#2e7d32", ""),
)


def _path_year(
    r: dict[str, Any], x: float, slot: float, zero: float, scale: float, top: float, year: Any
) -> list[str]:
    """One year's bars (t CO2 at ``scale`` px/t above ``zero``), its label and, in the
    target year, the target line."""
    x0, bar = x + slot * 0.1, slot * 0.8 / 2
    out = []
    for cls, key, at, fill, extra in _PATH_BARS:
        v = r[key]
        if v is None or (cls == "retired" and v == 0):
            continue
        out.append(
            f'<rect class="{cls}" x="{x0 + at * bar:.1f}" y="{zero - v * scale:.1f}" '
            f'width="{bar:.1f}" height="{v * scale:.1f}" fill="{fill}"{extra}>'
            f"<title>{r['year']} {cls}: {v:,.3f} t</title></rect>"
        )
    out.append(
        f'<text x="{x0 + bar:.1f}" y="{zero + 16}" font-size="11" '
        f'text-anchor="middle">{r["year"]}</text>'
    )
    if r["year"] == year:
        xt = x + slot / 2
        out.append(
            f'<line class="target" x1="{xt:.1f}" y1="{top}" x2="{xt:.1f}" '
            f'y2="{zero}" stroke="#c62828" stroke-dasharray="6 3"/>'
            f'<text x="{xt:.1f}" y="{top - 8}" font-size="12" fill="#c62828" '
            f'text-anchor="middle">target {r["year"]}: net 0</text>'
        )
    return out


def _path_svg(target: dict[str, Any]) -> str:
    """The path to the target year as inline SVG: recorded and projected emissions by year
    (t CO2), offsets retired, and the target year marked; empty without a target."""
    rows = target.get("path") or []
    if not rows:
        return "<p>No neutrality_target_year configured, or no data.</p>"
    w, h, left, top, bottom = 720, 300, 70, 24, 56
    values = [
        v
        for r in rows
        for v in (r["recorded_t_co2"], r["projected_t_co2"], r["offsets_retired_t_co2"])
        if v is not None
    ]
    hi = max([0.0, *values]) or 1.0
    scale = (h - top - bottom) / hi
    zero = h - bottom
    slot = (w - left - 10) / len(rows)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" '
        f'id="scope2-path" aria-label="path to a zero Scope 2 balance, t CO2 by year">',
        f'<line x1="{left}" y1="{zero}" x2="{w - 10}" y2="{zero}" stroke="#000"/>',
    ]
    for k in range(5):  # gridlines and labels at 0, 1/4, ... of the top
        v, y = hi * k / 4, zero - hi * k / 4 * scale
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{w - 10}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{v:,.1f} t</text>"
        )
    for i, r in enumerate(rows):
        out += _path_year(r, left + i * slot, slot, zero, scale, top, target.get("target_year"))
    legend = (
        ("#8c8c8c", "recorded Scope 2 CO2"),
        ("#ffffff", "projected (trend)"),
        ("#2e7d32", "offsets retired"),
    )
    for j, (colour, name) in enumerate(legend):
        x = left + j * 190
        out.append(
            f'<rect x="{x}" y="{h - 18}" width="10" height="10" fill="{colour}" '
            f'stroke="#555"/><text x="{x + 14}" y="{h - 9}" font-size="11">{name}</text>'
        )
    out.append("</svg>")
    note = target.get("warning")
    return "\n".join(out) + (f"<p><strong>{html.escape(note)}</strong></p>" if note else "")


def _table(rows: list[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_text(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{body}</table>"


def _text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}"
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True)


def _records_table(records: list[dict[str, Any]]) -> str:
    """One row per record (certificate, retirement) and one column per field, named in
    words; "none" when there are none."""
    if not records:
        return "<p>none</p>"
    keys = list(dict.fromkeys(k for r in records for k in r))
    head = "".join(f"<th>{html.escape(k.replace('_', ' '))}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_text(r.get(k, '')))}</td>" for k in keys) + "</tr>"
        for r in records
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _month_table(report: dict[str, Any]) -> str:
    rows = [*report["months"], {"month": "total", **report["totals"]}]
    head = "".join(f"<th>{c}</th>" for c in ("month", *HTML_COLUMNS))
    body = "".join(
        f"<tr><td>{html.escape(r['month'])}</td>"
        + "".join(f"<td>{_text(r[c])}</td>" for c in HTML_COLUMNS) + "</tr>"
        for r in rows
    )  # fmt: skip
    return f"<table><tr>{head}</tr>{body}</table>"


def _warnings(items: list[str]) -> str:
    if not items:
        return "<p>none: every interval of the period up to the last record is recorded</p>"
    return "<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in items) + "</ul>"


def _signed_by(led: dict[str, Any]) -> str:
    key = led.get("checkpoint_public_key")
    return f"; checkpoints signed by Ed25519 key {key}" if key else ""


def to_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page: summary, monthly chart (inline SVG), monthly
    table, certificates, offsets retired, target, methods, factors and the factor references
    the records carry. No scripts."""
    p, led = report["period"], report["ledger"]
    title = html.escape(f"Scope 2 electricity CO2 report {p['label']}")
    sections = [
        ("What this report covers", _table(list(report.get("scope", {}).items()))),
        ("Warnings", _warnings(report.get("warnings", []))),
        ("Totals", _table(list(report["totals"].items()))),
        ("Coverage", _table(list(report.get("coverage", {}).items()))),
        ("Restatement", _table(list((report.get("restatement") or {}).items()))),
        ("Reconciliation against the utility bill (kWh)", _bill_table(report)),
        ("Monthly emissions (t CO2)", _svg_chart(report["months"])),
        ("By month", _month_table(report)),
        ("Certificates", _records_table(report["certificates"])),
        ("Offsets retired", _records_table(report["offsets_retired"])),
        ("Path to a zero Scope 2 balance (t CO2 by year)", _path_svg(report["scope2_target"])),
        ("Scope 2 electricity net balance target", _target_table(report["scope2_target"])),
        ("Methods", _table(list(report["methods"].items()))),
        ("Factors", _table(list(report["factors"].items()))),
        ("Factor references in the records", _records_table(report.get("factor_references", []))),
    ]
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{text-align:left}</style>",
        f"</head><body>\n<h1>{title}</h1>",
        html.escape(f"{p['start']} to {p['end']} ({p['timezone']}); ledger of {led['records']} "
                    f"records, head {led['head']}{_signed_by(led)}").join(("<p>", "</p>")),
        *(f"<h2>{name}</h2>\n{body}" for name, body in sections),
        "</body></html>",
    ]  # fmt: skip
    return "\n".join(parts) + "\n"
