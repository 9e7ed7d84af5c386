"""The panels of the status page, each a piece of HTML from the daemon's published state.

Role: what a control-room reader needs, one function per panel: the live reading with its
signs, what the battery does next (in words), the plan and price charts against the tariff
bands, grid import against the month's peak target, savings against no battery, and the
devices, faults, plan and overrides. Every panel renders when its data is missing (a cold
start) and says what is missing. Imports ``tariff``, this package's charts and savings, and
pandas; the ``Daemon`` only for typing.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from dispatch import tariff
from dispatch.daemon import page_charts as charts
from dispatch.daemon.savings import Savings
from dispatch.daemon.state import billing_month_of

if TYPE_CHECKING:
    from dispatch.daemon.core import Daemon

#: Battery power below this share of its rating reads as idle in the words of the plan.
IDLE_FRAC = 0.02
#: How far ahead the plan is told in words (h).
WORDS_AHEAD_H = 12.0


def esc(x: object) -> str:
    """``x`` as escaped text."""
    return html.escape(str(x))


def local_hm(t: dt.datetime | pd.Timestamp, timezone: str) -> str:
    """``HH:MM`` in ``timezone``."""
    return pd.Timestamp(t).tz_convert(timezone).strftime("%H:%M")


def local_day_hm(t: dt.datetime | pd.Timestamp, timezone: str, now: dt.datetime) -> str:
    """``HH:MM``, with the weekday and date when ``t`` is not on ``now``'s local day."""
    a, b = pd.Timestamp(t).tz_convert(timezone), pd.Timestamp(now).tz_convert(timezone)
    return a.strftime("%H:%M") if a.date() == b.date() else a.strftime("%a %d %b %H:%M")


def kw(v: Any) -> str:
    """A power as people read it: ``2,127 kW``, ``12.5 kW``; ``-`` when unknown."""
    if not isinstance(v, int | float) or not math.isfinite(v):
        return "-"
    return f"{v:,.0f} kW" if abs(v) >= 100 else f"{v:.1f} kW"


def money(v: float, currency: str) -> str:
    """Money rounded to whole units from 100 on (``1,234 CNY``), else to cents."""
    return f"{v:,.0f} {currency}" if abs(v) >= 100 else f"{v:,.2f} {currency}"


def co2(kg: float) -> str:
    """Emissions in kg below a tonne, else in t."""
    return f"{kg:,.0f} kg CO2" if abs(kg) < 1000 else f"{kg / 1000:,.2f} t CO2"


def ago(seconds: float) -> str:
    """An age in words: ``40 s``, ``12 min``, ``3.5 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def batt_words(p: float) -> str:
    """Battery power with its direction (> 0 discharge)."""
    if not math.isfinite(p):
        return "-"
    if abs(p) < 1.0:
        return "idle (0 kW)"
    return f"{'discharging' if p > 0 else 'charging'} {kw(abs(p))}"


def grid_words(p: float) -> str:
    """Grid power with its direction (> 0 import)."""
    if not math.isfinite(p):
        return "-"
    return f"{'importing' if p >= 0 else 'exporting'} {kw(abs(p))}"


def live_panel(d: Daemon) -> str:
    """The last reading: SoC, PV, load, grid and battery with their signs, the setpoint."""
    c = d.last_cycle
    if c is None:
        return (
            '<section id="live"><h2>Now</h2><p class="missing">No control cycle yet: the '
            "devices have not been read, live values are unknown.</p></section>"
        )
    s, tz, now = c.snapshot, d.config.site.timezone, d.clock.now()
    e_kwh = s.soc_frac * d.config.battery.energy_kwh if math.isfinite(s.soc_frac) else math.nan
    rows = [
        ("PV", kw(s.p_pv_kw), "generation (>= 0)"),
        ("load", kw(s.p_load_kw), "site consumption (>= 0)"),
        ("grid", f"{kw(s.p_grid_kw)} ({grid_words(s.p_grid_kw)})", "+ import, - export"),
        ("battery", f"{kw(s.p_batt_kw)} ({batt_words(s.p_batt_kw)})", "+ discharge, - charge"),
        (
            "setpoint",
            f"{kw(c.setpoints.p_batt_kw)} ({batt_words(c.setpoints.p_batt_kw)})",
            c.setpoints.reason,
        ),
    ]
    body = "".join(
        f"<tr><th>{esc(a)}</th><td class='num'>{esc(b)}</td><td class='note'>{esc(n)}</td></tr>"
        for a, b, n in rows
    )
    soc = charts.esc(f"{100 * s.soc_frac:.0f} %") if math.isfinite(s.soc_frac) else "-"
    stored = f" ({e_kwh:,.0f} kWh stored)" if math.isfinite(e_kwh) else ""
    return (
        f'<section id="live"><h2>Now</h2><p class="big">SoC <span id="soc-value">{soc}</span>'
        f"{esc(stored)}</p><table id='live-powers'>{body}</table><p class='note'>Read at "
        f"{esc(local_hm(c.time, tz))}, {esc(ago((now - c.time).total_seconds()))} ago. "
        "Site-bus view: load = grid + PV + battery.</p></section>"
    )


def _segments(f: pd.DataFrame, bands: pd.Series, lim: float) -> list[dict[str, Any]]:
    """Runs of slots in which the battery does the same thing (charge, discharge, idle)."""
    out: list[dict[str, Any]] = []
    step = f.index[1] - f.index[0] if len(f) > 1 else pd.Timedelta(minutes=15)
    for t, p, soc in zip(f.index, f["p_batt_kw"], f["soc_frac"], strict=True):
        what = "idle" if abs(p) < IDLE_FRAC * lim else ("discharge" if p > 0 else "charge")
        if out and out[-1]["what"] == what:
            seg = out[-1]
            seg["end"], seg["soc"] = t + step, soc
            seg["max_kw"] = max(seg["max_kw"], abs(p))
            seg["bands"].setdefault(bands.get(t, ""), None)
        else:
            out.append(
                {
                    "what": what,
                    "start": t,
                    "end": t + step,
                    "max_kw": abs(p),
                    "soc": soc,
                    "bands": {bands.get(t, ""): None},
                }
            )
    return out


def next_hours_panel(d: Daemon, bands: pd.Series | None) -> str:
    """What the battery will do in the next hours, in words, from the plan in force."""
    p = d.plan_state
    if p is None or bands is None:
        return (
            '<section id="next"><h2>Next hours</h2><p class="missing">No plan yet: the battery '
            "follows rule-based self-consumption until the first plan is made.</p></section>"
        )
    now, tz = d.clock.now(), d.config.site.timezone
    f = p.plan.frame
    f = f[(f.index + (f.index[1] - f.index[0] if len(f) > 1 else pd.Timedelta(0))) > now]
    f = f[f.index < pd.Timestamp(now) + pd.Timedelta(hours=WORDS_AHEAD_H)]
    lim = max(d.config.battery.charge_max_kw, d.config.battery.discharge_max_kw)
    items = []
    for seg in _segments(f, bands, lim):
        when = f"{local_day_hm(max(seg['start'], now), tz, now)}-{local_hm(seg['end'], tz)}"
        names = ", ".join(b for b in seg["bands"] if b)
        if seg["what"] == "idle":
            text = f"{when} idle"
        else:
            text = f"{when} {seg['what']}, up to {kw(seg['max_kw'])}"
        items.append(
            f"<li>{esc(text)} ({esc(names)}), SoC {100 * seg['soc']:.0f} % at the end</li>"
        )
    caveat = ""
    if p.plan.is_fallback:
        caveat = (
            f'<p class="missing">The plan is a fallback ({esc(p.plan.message or "no solve")}):'
            " control runs rule-based self-consumption instead.</p>"
        )
    return (
        f'<section id="next"><h2>Next {WORDS_AHEAD_H:.0f} hours (plan)</h2>{caveat}'
        f'<ol id="next-hours">{"".join(items)}</ol></section>'
    )


def _soc_lines(ch: charts.TimeChart, d: Daemon, now: pd.Timestamp) -> None:
    """The SoC window, the reserve in force (an operator's when set) and the measured SoC."""
    b = d.config.battery
    for elem, v, label in (
        ("soc-min-line", b.soc_min_frac, "SoC min"),
        ("soc-max-line", b.soc_max_frac, "SoC max"),
    ):
        ch.hline(elem, v, "#8c564b", f"{label} {v:.0%}", 0, 1, anchor="end")
    reserve = d.operator.peek(now.to_pydatetime()).get("reserve")
    r = max(float(reserve.value), b.reserve_frac) if reserve is not None else b.reserve_frac
    who = " (operator)" if reserve is not None else ""
    ch.hline("soc-reserve-line", r, "#e377c2", f"reserve {r:.0%}{who}", 0, 1, "2 3")
    c = d.last_cycle
    if c is not None and math.isfinite(c.snapshot.soc_frac):
        x, y = ch.x(max(now, ch.t0)), ch.y(c.snapshot.soc_frac, 0.0, 1.0)
        ch.parts.append(
            f'<circle id="soc-now" cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#d62728">'
            f"<title>measured SoC {100 * c.snapshot.soc_frac:.0f} %</title></circle>"
        )


def _price_chart(
    d: Daemon,
    f: pd.DataFrame,
    bands: pd.Series,
    names: list[str],
    step: pd.Timedelta,
    now: pd.Timestamp,
) -> str:
    """The import price of the plan's slots over the tariff bands."""
    tz, cur = d.config.site.timezone, d.config.tariff.currency
    price = f["price_import_per_kwh"]
    hi = max(float(price.max()) * 1.15, 0.01)
    t1 = f.index[-1] + step
    pc = charts.TimeChart(
        "price-chart", f.index[0], t1, 0.0, hi, tz, 150, f"import price {cur}/kWh"
    )
    pc.bands(bands, step, names)
    pc.grid(charts.nice_ticks(0.0, hi, 4), "{:.2f}")
    pc.hour_ticks()
    pc.steps("price-import", price, step, charts.PRICE, title="import price")
    pc.now(now, local_hm(now, tz))
    return pc.svg("import price")


def plan_panel(d: Daemon, bands: pd.Series | None) -> str:
    """The plan horizon: battery power and SoC over the tariff bands, and the import price."""
    p = d.plan_state
    if p is None or bands is None:
        return (
            '<section id="plan"><h2>Plan</h2><svg id="plan-chart" width="720" height="40">'
            '<text x="10" y="25">no plan yet</text></svg></section>'
        )
    cfg, tz, now = d.config, d.config.site.timezone, pd.Timestamp(d.clock.now())
    f = p.plan.frame
    step = f.index[1] - f.index[0] if len(f) > 1 else pd.Timedelta(minutes=cfg.plan.step_min)
    t0, t1 = f.index[0], f.index[-1] + step
    lim = max(cfg.battery.charge_max_kw, cfg.battery.discharge_max_kw)
    names = list(cfg.tariff.bands) if cfg.tariff.rules else [tariff.DAY_AHEAD_LABEL]
    unit = "battery kW (+ discharge, - charge)  |  SoC % (right)"
    ch = charts.TimeChart("plan-chart", t0, t1, -lim, lim, tz, 280, unit)
    ch.bands(bands, step, names)
    ch.grid(charts.nice_ticks(-lim, lim, 6), "{:,.0f}")
    ch.right_axis([0.0, 0.25, 0.5, 0.75, 1.0], 0.0, 1.0, "{:.0%}")
    ch.hour_ticks()
    _soc_lines(ch, d, now)
    ch.steps("p-batt", f["p_batt_kw"], step, charts.BATT, title="planned battery kW")
    ch.steps("soc", f["soc_frac"], step, charts.SOC, 0.0, 1.0, title="planned SoC")
    ch.now(now, local_hm(now, tz))
    prices = cfg.tariff.band_prices_per_kwh() if cfg.tariff.rules else {}
    when = local_day_hm(t0, tz, now.to_pydatetime()), local_day_hm(t1, tz, now.to_pydatetime())
    return (
        f'<section id="plan"><h2>Plan: {esc(when[0])} to {esc(when[1])}</h2>'
        f"{charts.legend(names, prices, cfg.tariff.currency)}"
        f'<p class="note"><span style="color:{charts.BATT}">&#9632; battery kW</span> '
        f'<span style="color:{charts.SOC}">&#9632; SoC</span>; dashed: SoC window and reserve.'
        f"</p>{ch.svg('planned battery power and SoC')}"
        f"{_price_chart(d, f, bands, names, step, now)}</section>"
    )


def peak_values(d: Daemon) -> tuple[float | None, float | None, dt.datetime | None, str]:
    """The month's peak target in force, the peak so far and when (kW, UTC) and its source."""
    now = d.clock.now()
    month = billing_month_of(now, d.config.billing_timezone)
    peak = d.store.demand_peak(month)
    so_far = peak.peak_import_kw if peak is not None else None
    when = peak.slot_start if peak is not None else None
    target, source = None, "no plan yet"
    if d.plan_state is not None:
        target, source = d.plan_state.peak_target_kw, "the plan in force"
    override = d.operator.peek(now).get("peak_target")
    if override is not None:
        target, source = float(override.value), f"operator override by {override.who}"
    return target, so_far, when, source


def peak_panel(d: Daemon, today: pd.DataFrame) -> str:
    """Grid import (measured today, planned ahead) against the month's peak target."""
    cfg, tz, now = d.config, d.config.site.timezone, pd.Timestamp(d.clock.now())
    target, so_far, when, source = peak_values(d)
    dc, cur = cfg.tariff.demand_charge_per_kw_month, cfg.tariff.currency
    step = pd.Timedelta(minutes=cfg.plan.step_min)
    measured = today["import_kwh"] / (step / pd.Timedelta(hours=1)) if len(today) else None
    p = d.plan_state
    planned = p.plan.frame["p_import_kw"] if p is not None else None
    t0 = pd.Timestamp(now).tz_convert(tz).normalize().tz_convert("UTC")
    t1 = planned.index[-1] + step if planned is not None else t0 + pd.Timedelta(days=1)
    tops = [v for v in (target, so_far) if v is not None]
    for s in (measured, planned):
        if s is not None and len(s):
            tops.append(float(s.max()))
    hi = max([*tops, 1.0]) * 1.15
    ch = charts.TimeChart("grid-chart", t0, t1, 0.0, hi, tz, 240, "grid import kW")
    ch.grid(charts.nice_ticks(0.0, hi, 5), "{:,.0f}")
    ch.hour_ticks()
    if measured is not None:
        ch.steps("grid-measured", measured, step, charts.GRID, title="measured import")
    if planned is not None:
        ch.steps("grid-planned", planned, step, charts.PLANNED, dash="4 3", title="planned import")
    if so_far is not None:
        ch.hline("peak-so-far-line", so_far, "#ff7f0e", f"peak so far {kw(so_far)}", dash="2 2")
    if target is not None:
        ch.hline("peak-target-line", target, "#d62728", f"peak target {kw(target)}", anchor="end")
    ch.now(now, local_hm(now, tz))
    month = billing_month_of(now.to_pydatetime(), cfg.billing_timezone)
    lines = []
    if dc <= 0:
        lines.append("This tariff has no demand charge: no peak target.")
    elif target is None:
        lines.append(f"No peak target yet ({esc(source)}).")
    else:
        lines.append(
            f'Peak target for {esc(month)}: <b id="peak-target">{esc(kw(target))}</b> '
            f"({esc(source)}): the import the battery holds the site under; at "
            f"{dc:g} {esc(cur)}/kW-month it bills {esc(money(target * dc, cur))}."
        )
    if so_far is not None:
        at = f" in the slot from {local_day_hm(when, tz, now)}" if when is not None else ""
        lines.append(
            f'Peak so far: <b id="peak-so-far">{esc(kw(so_far))}</b>{esc(at)} (15-min mean import).'
        )
    elif dc > 0:
        lines.append("Peak so far: none recorded this month.")
    legend = (
        f'<span style="color:{charts.GRID}">&#9632; measured</span> '
        f'<span style="color:{charts.PLANNED}">&#9632; planned (dashed)</span>'
    )
    return (
        f'<section id="peak"><h2>Grid import and the month\'s peak</h2><p>{" ".join(lines)}</p>'
        f'<p class="note">{legend}</p>{ch.svg("grid import against the peak target")}</section>'
    )


def _savings_row(label: str, s: Savings, tz: str, now: dt.datetime) -> str:
    if s.intervals == 0:
        missing = "<td colspan='6' class='missing'>nothing measured yet</td>"
        return f"<tr><th>{esc(label)}</th>{missing}</tr>"
    cur = s.currency
    until = local_day_hm(s.until, tz, now) if s.until is not None else "-"
    cells = [
        f"{s.intervals} x {s.step_min:g} min, to {until}",
        money(s.cost, cur),
        money(s.cost_nobatt, cur),
        money(s.saved, cur),
        co2(s.kg_co2),
        co2(s.kg_co2_avoided),
    ]
    cls = ["", "num", "num", "num saved", "num", "num"]
    tds = "".join(f"<td class='{c}'>{esc(v)}</td>" for c, v in zip(cls, cells, strict=True))
    return f"<tr class='savings-{esc(label.split()[0].lower())}'><th>{esc(label)}</th>{tds}</tr>"


def savings_panel(d: Daemon, today: Savings, month: Savings, problem: str = "") -> str:
    """Today's and this month's cost and CO2 against the same site without a battery
    (``problem``: why they could not be computed, shown first)."""
    tz, now, cur = d.config.site.timezone, d.clock.now(), d.config.tariff.currency
    head = (
        "<tr><th></th><th>counted</th><th>energy cost</th><th>without battery</th>"
        "<th>saved</th><th>CO2</th><th>CO2 avoided</th></tr>"
    )
    rows = _savings_row("today", today, tz, now) + _savings_row("this month", month, tz, now)
    notes = [problem] if problem else []
    if month.intervals and month.demand_charge_per_kw > 0:
        notes.append(
            f"Demand charge: the month's highest 15-min import so far is {kw(month.peak_kw)} "
            f"against {kw(month.peak_nobatt_kw)} without the battery: "
            f"{money(abs(month.demand_saved), cur)} "
            f"{'less' if month.demand_saved >= 0 else 'more'} demand charge this month if "
            "the peak holds (not in the energy saving above)."
        )
    if today.unpriced or month.unpriced:
        notes.append(f"{month.unpriced} interval(s) without a known price are not counted.")
    notes.append(
        "How: each completed 15-min interval's mean measured grid flows, priced with the "
        "tariff of that interval, against the same load and PV with no battery (grid = load - "
        "PV, surplus exported up to the export limit); CO2 is imports x the grid intensity, so "
        "storage losses show as added CO2. Intervals without a valid reading are not counted."
    )
    paragraphs = "".join(f'<p class="note">{esc(n)}</p>' for n in notes)
    return (
        '<section id="savings"><h2>Savings against no battery</h2>'
        f'<table id="savings-table">{head}{rows}</table>'
        f"{paragraphs}</section>"
    )
