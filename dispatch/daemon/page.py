"""What the status server shows: JSON documents and the HTML page with an SVG chart.

Role: pure rendering of the daemon's published state (plan, last cycle, forecast, failures)
into ``/status`` and ``/plan`` documents and a self-contained HTML page (inline SVG polylines
of the plan's battery power and SoC, the measured SoC as a marker; no scripts, no external
resources). Imports the standard library and this package's state types.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from dispatch.daemon.core import Daemon

W, H, PAD = 720, 260, 40


def local_time(t: dt.datetime, timezone: str) -> str:
    """``t`` as the site reads it: ``YYYY-MM-DD HH:MM`` in ``timezone`` (IANA name)."""
    return t.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def percent(frac: Any) -> str:
    """A fraction as a whole percentage (``0.497`` -> ``50 %``); ``-`` when unknown."""
    ok = isinstance(frac, int | float) and math.isfinite(frac)
    return f"{100.0 * frac:.0f} %" if ok else "-"


def status_doc(d: Daemon) -> dict[str, Any]:
    """The ``/api/v1/status`` document (also ``/status``)."""
    now = d.clock.now()
    doc: dict[str, Any] = {"time": now.isoformat(), "clock_speed": d.clock.speed,
                           "started_at": d.started_at.isoformat(),
                           "site": d.config.site.name, "failing": d.failures.failing(),
                           "safe_state": d.in_safe_state}  # fmt: skip
    doc["overrides"] = [o.as_dict() for o in d.operator.peek(now).overrides]
    c = d.last_cycle
    if c is not None:
        s = c.snapshot
        doc["cycle"] = {
            "time": c.time.isoformat(), "age_s": (now - c.time).total_seconds(),
            "cycle_ms": c.cycle_s * 1e3, "setpoint_kw": c.setpoints.p_batt_kw,
            "reason": c.setpoints.reason, "default_mode": c.setpoints.default_mode,
            "written_kw": c.written_kw, "devices": c.actions,
            "snapshot": {"p_grid_kw": s.p_grid_kw, "p_pv_kw": s.p_pv_kw,
                         "p_batt_kw": s.p_batt_kw, "p_load_kw": s.p_load_kw,
                         "soc_frac": s.soc_frac, "ok": s.ok, "faults": list(s.faults)},
        }  # fmt: skip
    p = d.plan_state
    if p is not None:
        doc["plan"] = p.plan.summary() | {"plan_id": p.plan_id,
                                          "issued_at": p.issued_at.isoformat(),
                                          "age_s": (now - p.issued_at).total_seconds(),
                                          "peak_target_kw": p.peak_target_kw,
                                          "forecast": p.forecast_source,
                                          "warmup": p.warmup}  # fmt: skip
    f = d.forecast_state
    if f is not None:
        doc["forecast"] = {"issued_at": f.issued_at.isoformat(), "source": f.source,
                           "age_s": (now - f.issued_at).total_seconds(),
                           "warmup": f.warmup, "fallbacks": list(f.fallbacks)}  # fmt: skip
    return doc


def plan_doc(d: Daemon) -> dict[str, Any]:
    """The ``/plan`` document: summary and one record per slot."""
    p = d.plan_state
    if p is None:
        return {"plan": None}
    f = p.plan.frame
    slots = [{"time": t.isoformat(), **{k: float(v) for k, v in row.items()}}
             for t, row in zip(f.index, f.to_dict("records"), strict=True)]  # fmt: skip
    dt_h = (f.index[1] - f.index[0]).total_seconds() / 3600.0 if len(f) > 1 else 1.0
    duals = p.plan.duals
    prices = {}
    if duals:  # the marginal value of energy at the bus and in the battery, per slot
        prices = {"bus_per_kwh": [-float(v) / dt_h for v in duals["power_balance"]],
                  "stored_energy_per_kwh": [float(duals["energy_first"][0]),
                                            *map(float, duals["energy_dynamics"])]}  # fmt: skip
    return {"plan_id": p.plan_id, "issued_at": p.issued_at.isoformat(),
            "summary": p.plan.summary(), "shadow_prices": prices, "slots": slots}  # fmt: skip


def _points(values: list[float], lo: float, hi: float) -> str:
    n = max(len(values) - 1, 1)
    span = (hi - lo) or 1.0
    pts = []
    for i, v in enumerate(values):
        if not math.isfinite(v):
            continue
        x = PAD + (W - 2 * PAD) * i / n
        y = H - PAD - (H - 2 * PAD) * (v - lo) / span
        pts.append(f"{x:.1f},{y:.1f}")
    return " ".join(pts)


def plan_svg(d: Daemon) -> str:
    """Inline SVG: planned battery power (kW, left axis) and SoC (0-100 %, right axis)."""
    p = d.plan_state
    if p is None:
        return '<svg id="plan-chart" width="720" height="60"><text x="10" y="30">no plan yet' \
               "</text></svg>"
    f, tz = p.plan.frame, d.config.site.timezone
    batt = [float(v) for v in f["p_batt_kw"]]
    soc = [float(v) for v in f["soc_frac"]]
    lim = max(d.config.battery.charge_max_kw, d.config.battery.discharge_max_kw)
    zero_y = H - PAD - (H - 2 * PAD) * 0.5
    parts = [f'<svg id="plan-chart" xmlns="http://www.w3.org/2000/svg" width="{W}" '
             f'height="{H}" viewBox="0 0 {W} {H}">',
             f'<rect x="{PAD}" y="{PAD}" width="{W - 2 * PAD}" height="{H - 2 * PAD}" '
             'fill="none" stroke="#999"/>',
             f'<line x1="{PAD}" y1="{zero_y}" x2="{W - PAD}" y2="{zero_y}" stroke="#ccc"/>',
             f'<polyline id="p-batt" fill="none" stroke="#1f77b4" stroke-width="2" '
             f'points="{_points(batt, -lim, lim)}"/>',
             f'<polyline id="soc" fill="none" stroke="#2ca02c" stroke-width="2" '
             f'points="{_points(soc, 0.0, 1.0)}"/>',
             f'<text x="{PAD}" y="{PAD - 8}" fill="#174a7c">battery kW (+ discharge, '
             f'±{lim:g})</text>',
             f'<text x="{W - PAD}" y="{PAD - 8}" text-anchor="end" fill="#1e6b1e">SoC 0-100 %'
             "</text>",
             f'<text x="{PAD}" y="{H - 10}">{html.escape(local_time(f.index[0], tz))}</text>',
             f'<text x="{W - PAD}" y="{H - 10}" text-anchor="end">'
             f"{html.escape(local_time(f.index[-1], tz))} ({html.escape(tz)})</text>"]  # fmt: skip
    c = d.last_cycle
    if c is not None and math.isfinite(c.snapshot.soc_frac):
        y = H - PAD - (H - 2 * PAD) * c.snapshot.soc_frac
        parts.append(f'<circle id="soc-now" cx="{PAD}" cy="{y:.1f}" r="5" fill="#d62728">'
                     f"<title>measured SoC {percent(c.snapshot.soc_frac)}</title></circle>")
    parts.append("</svg>")
    return "".join(parts)


def html_page(d: Daemon) -> str:
    """The status page: headline figures and the plan chart; refreshes itself every 10 s."""
    s = status_doc(d)
    cyc, plan = s.get("cycle", {}), s.get("plan", {})
    snap = cyc.get("snapshot", {})

    def fmt(v: Any, spec: str = ".1f") -> str:
        return format(v, spec) if isinstance(v, int | float) and math.isfinite(v) else "-"

    tz = d.config.site.timezone
    issued = d.plan_state.issued_at if d.plan_state is not None else None
    age = fmt(plan.get("age_s"), ".0f")
    made = "-" if issued is None else f"{local_time(issued, tz)}, {age} s ago"
    rows = [("time", f"{local_time(d.clock.now(), tz)} ({tz})"),
            ("plan", f"{plan.get('status', '-')} ({plan.get('solver', '')}), made {made}"),
            ("setpoint", f"{fmt(cyc.get('setpoint_kw'))} kW: {cyc.get('reason', '-')}"),
            ("SoC", percent(snap.get("soc_frac"))),
            ("grid / pv / battery / load", " / ".join(fmt(snap.get(k)) for k in
             ("p_grid_kw", "p_pv_kw", "p_batt_kw", "p_load_kw")) + " kW"),
            ("forecast", s.get("forecast", {}).get("source", "-")),
            ("warm-up", plan.get("warmup") or "no"),
            ("limits that bind", ", ".join(f"{b['limit']} ({b['slots']} slots)"
                                           for b in plan.get("binding", [])) or "none"),
            ("peak target", f"{fmt(plan.get('peak_target_kw'))} kW"),
            ("failing", ", ".join(s["failing"]) or "none"),
            ("operator", "; ".join(o.describe() for o in d.operator.peek(d.clock.now()).overrides)
             or "none (following the plan)")]  # fmt: skip
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in rows)  # fmt: skip
    title = html.escape(f"dispatch - {d.config.site.name}")
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>'
            '<meta http-equiv="refresh" content="10"><style>body{font-family:sans-serif;'
            "margin:1em}th{text-align:left;padding-right:1em}</style></head><body>"
            f"<h1>{title}</h1><table>{table}</table><h2>Plan</h2>{plan_svg(d)}"
            '<p><a href="/api/v1/status">status</a> · <a href="/api/v1/plan">plan</a> · '
            '<a href="/metrics">metrics</a></p></body></html>')  # fmt: skip
