"""What the status server shows: JSON documents and the control room's HTML page.

Role: pure rendering of the daemon's published state (plan, last cycle, forecast, failures)
into ``/status`` and ``/plan`` documents and a self-contained HTML page: the headline, then
the panels of ``page_panels`` (live reading, next hours, plan and price charts against the
tariff bands, grid import against the peak target, savings against no battery) and the
devices, faults, plan and overrides here. Server-rendered inline SVG: no scripts, no
external resources, so it works offline on a plant LAN. The savings are read from the store
(``savings``). Imports the standard library, pandas, ``tariff`` and this package.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd

from dispatch import tariff
from dispatch.daemon import page_panels as panels
from dispatch.daemon import savings as sv
from dispatch.types import DispatchError

if TYPE_CHECKING:
    from dispatch.daemon.core import Daemon

STYLE = (
    "body{font-family:sans-serif;margin:1em;max-width:940px;color:#222}"
    "h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.2em 0 .3em}"
    "th{text-align:left;padding-right:1em;vertical-align:top}td{padding-right:1em}"
    "td.num{text-align:right;white-space:nowrap}.note{color:#555;font-size:.9em}"
    ".missing{color:#a33}.big{font-size:1.3em;margin:.2em 0}.bad{color:#a33;font-weight:bold}"
    ".legend{list-style:none;padding:0;margin:.2em 0}.legend li{display:inline-block;"
    "margin-right:1em;font-size:.9em}.swatch{display:inline-block;width:1em;height:1em;"
    "border:1px solid #aaa;vertical-align:middle;margin-right:.3em}"
    "#headline td{font-weight:bold}#savings-table td,#savings-table th{white-space:nowrap}"
)


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
    health = d.state.health if d.state is not None else None
    doc["health"] = {"level": health.level, "reasons": list(health.reasons)} if health else None
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


def plan_bands(d: Daemon) -> pd.Series | None:
    """The tariff band of each slot of the plan in force (None without a plan)."""
    p = d.plan_state
    if p is None or p.plan.frame.empty:
        return None
    index = p.plan.frame.index
    step = pd.Timedelta(minutes=d.config.plan.step_min)
    full = index.append(pd.DatetimeIndex([index[-1] + step])) if len(index) == 1 else index
    return tariff.band_per_slot(d.config, full).reindex(index)


def forecast_kind(d: Daemon) -> str:
    """Where the plan's forecast came from in one word: weather, fallback or warm-up."""
    f, p = d.forecast_state, d.plan_state
    if p is not None and p.warmup:
        return "warm-up"
    if f is None:
        return "-"
    if f.fallbacks:
        return f"fallback ({', '.join(f.fallbacks)})"
    return "weather" if "weather" in f.source else "no weather source (clear sky)"


def override_words(kind: str, value: str | float) -> str:
    """An operator override in words: pause, a manual kW, a reserve in %, a peak target."""
    if kind == "mode":
        return (
            "paused (devices in their default mode)"
            if value == "pause"
            else (f"manual battery {panels.kw(float(value))}")
        )
    if kind == "reserve":
        return f"reserve SoC {percent(float(value))}"
    return f"peak target {panels.kw(float(value))}"


def status_panel(d: Daemon) -> str:
    """Devices up or down, the safe state, failing jobs, the plan, forecast and overrides."""
    now, tz, c = d.clock.now(), d.config.site.timezone, d.last_cycle
    health = d.state.health if d.state is not None and c is not None else None
    rows = [("site", health.describe() if health is not None else "unknown (no cycle yet)")]
    for client in d.clients:
        if c is None:
            state = "unknown (no cycle yet)"
        else:
            faults = [f for f in c.snapshot.faults if f.startswith(f"{client.name}:")]
            down = faults or client.name in c.snapshot.stale
            state = f"DOWN: {'; '.join(faults) or 'stale'}" if down else "up"
            if client.name in c.actions:
                state += f", write: {c.actions[client.name]}"
        rows.append((f"device {client.name}", state))
    if not d.clients:
        rows.append(("devices", "none configured"))
    reason = c.setpoints.reason if c is not None else ""
    rows.append(("safe state", f"YES: {reason}" if d.in_safe_state else "no"))
    failing = d.failures.failing()
    rows.append(("failing", ", ".join(f"{k} ({n}x)" for k, n in failing.items()) or "none"))
    p = d.plan_state
    if p is None:
        rows.append(("plan", "no plan yet"))
    else:
        s = p.plan.summary()
        age = panels.ago((now - p.issued_at).total_seconds())
        made = f"made {local_time(p.issued_at, tz)}, {age} ago"
        rows.append(("plan", f"{s['status']} ({s['solver']}), {made}"))
        binding = ", ".join(f"{b['limit']} ({b['slots']} slots)" for b in s.get("binding", []))
        rows.append(("limits that bind", binding or "none"))
    rows.append(("forecast", forecast_kind(d)))
    f = d.forecast_state
    if f is not None:
        rows.append(("forecast made of", f.source))
    rows.append(("warm-up", (p.warmup if p is not None else None) or "no"))
    overrides = d.operator.peek(now).overrides
    text = "; ".join(
        f"{override_words(o.kind, o.value)} until {local_time(o.until, tz)} by {o.who}: {o.why}"
        for o in overrides
    )
    rows.append(("operator", text or "none (following the plan)"))
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td{' class=bad' * _bad(k, v)}>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    return f'<section id="status"><h2>Devices, faults and plan</h2><table>{body}</table></section>'


def _bad(key: str, value: str) -> bool:
    return value.startswith(("DOWN", "YES", "fault", "warning")) or (
        key == "failing" and value != "none"
    )


def _savings(d: Daemon) -> tuple[sv.Savings, sv.Savings, pd.DataFrame, str]:
    """Today's and this month's savings, today's interval accounts and a problem (empty
    figures and the error on a store or input error: the page still renders)."""
    cfg, now = d.config, d.clock.now()
    day, month = sv.day_start(now, cfg.site.timezone), sv.month_start(now, cfg.billing_timezone)
    known = d.forecast_state.frame if d.forecast_state is not None else None
    empty = pd.DataFrame(columns=list(sv.COLUMNS), index=pd.DatetimeIndex([], tz="UTC"))
    try:
        accounts = sv.measured_accounts(d.store, cfg, min(day, month), now)
        today = accounts[accounts.index >= pd.Timestamp(day)]
        this_month = accounts[accounts.index >= pd.Timestamp(month)]
        return sv.savings(today, cfg, known), sv.savings(this_month, cfg, known), today, ""
    except DispatchError as exc:
        none = sv.savings(empty, cfg)
        return none, none, empty, f"savings cannot be computed: {exc}"


def html_page(d: Daemon) -> str:
    """The status page; refreshes itself every 30 s (a meta refresh, no script)."""
    cfg, now = d.config, d.clock.now()
    tz = cfg.site.timezone
    c = d.last_cycle
    bands = plan_bands(d)
    today, month, today_accounts, problem = _savings(d)
    target, _, _, _ = panels.peak_values(d)
    offset = pd.Timestamp(now).tz_convert(tz).strftime("UTC%z")
    cur = cfg.tariff.currency
    saved = panels.money(today.saved, cur) if today.intervals else "nothing measured yet"
    mode = "no control cycle yet"
    if c is not None:
        mode = "SAFE STATE" if d.in_safe_state else c.setpoints.reason.split(":")[0]
    headline = [
        ("time", f"{local_time(now, tz)} ({tz})", f"site time, {offset[:-2]}:{offset[-2:]}"),
        ("SoC", percent(c.snapshot.soc_frac) if c is not None else "-", ""),
        ("battery", panels.batt_words(c.snapshot.p_batt_kw) if c is not None else "-", mode),
        ("peak target", panels.kw(target), "this month's grid import limit"),
        ("saved today", saved, "energy cost against no battery"),
    ]
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td>"
        f"<td class='note'>{html.escape(n)}</td></tr>"
        for k, v, n in headline
    )
    title = html.escape(f"dispatch - {cfg.site.name}")
    body = (
        f'<h1>{title}</h1><table id="headline">{rows}</table>'
        f"{panels.live_panel(d)}{panels.next_hours_panel(d, bands)}"
        f"{panels.plan_panel(d, bands)}{panels.peak_panel(d, today_accounts)}"
        f"{panels.savings_panel(d, today, month, problem)}{status_panel(d)}"
        '<p><a href="/api/v1/status">status</a> · <a href="/api/v1/plan">plan</a> · '
        '<a href="/metrics">metrics</a></p>'
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta http-equiv="refresh" content="30"><style>{STYLE}</style></head>'
        f"<body>{body}</body></html>"
    )
