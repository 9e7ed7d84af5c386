"""Backtest report: KPI and time-series CSVs, PNG plots and one self-contained HTML page.

Role: write the files of a backtest (``sim.backtest_cli``) into an output folder. Depends on
``sim.kpis``, ``sim.plots`` (matplotlib), pandas. Files:

- ``kpis.csv``: one row per strategy and billing month plus a ``total`` row per strategy
  (columns: see ``sim.kpis.strategy_kpis`` and ``kpi_table``);
- ``timeseries.csv``: LONG format, one row per strategy and slot: ``time`` (UTC period start,
  ISO 8601), ``strategy``, ``billing_month``, then the outcome frame's columns (kW, fraction,
  price per kWh, g/kWh);
- ``dispatch_day.png``, ``monthly_bill.png``, ``monthly_peak.png`` and, given a carbon-price
  sweep, ``tradeoff.png`` and ``tradeoff.csv``;
- ``report.html``: a headline per strategy, the notes on partial months and on the grid factor,
  human-named KPI tables in site-local time (``sim.report_text``) and every PNG inlined as a
  base64 data URI (no other files needed).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from dispatch import tariff
from dispatch.config import SiteConfig
from sim import plots, report_text
from sim.kpis import BASELINE, BOUND, TOTAL, against_best_rule, kpi_table
from sim.labels import number, strategy_name, zone_label
from sim.replay import NAME as OURS

DAY_PREFERENCE = (
    "receding_robust",
    "receding_perfect",
    "receding_naive",
    "receding_noisy",
    "perfect_foresight",
)
PEAK_COLUMNS = ("month", "strategy", "peak_target_kw", "peak_import_kw", "peak_time")


def peak_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per billing month and strategy: the peak target its live guard held (NaN without a
    guard), the realised peak and the UTC start of the slot that set it."""
    monthly = table[table["month"] != TOTAL]
    return monthly[list(PEAK_COLUMNS)].sort_values(["month", "strategy"], kind="stable")


def timeseries_long(outcomes: Sequence, config: SiteConfig) -> pd.DataFrame:
    """Every outcome's frame stacked in long format (see the module docstring)."""
    parts = []
    for o in outcomes:
        f = o.frame.copy()
        f.insert(0, "billing_month", tariff.billing_month(config, f.index).to_numpy(str))
        f.insert(0, "strategy", o.strategy)
        parts.append(f)
    out = pd.concat(parts)
    out.index = out.index.map(lambda t: t.isoformat())
    out.index.name = "time"
    return out.reset_index()


def default_day(outcomes: Sequence, config: SiteConfig) -> str:
    """Site-local date (``YYYY-MM-DD``) of the first outcome's highest import slot."""
    grid = outcomes[0].frame["p_grid_kw"]
    return grid.idxmax().tz_convert(config.site.timezone).strftime("%Y-%m-%d")


def day_strategy(outcomes: Sequence) -> object:
    """The outcome shown in the day plot: the receding-horizon optimiser where present."""
    by_name = {o.strategy: o for o in outcomes}
    for name in DAY_PREFERENCE:
        if name in by_name:
            return by_name[name]
    return outcomes[-1]


def month_peak(table: pd.DataFrame, shown, config: SiteConfig, day: str) -> float:
    """The realised peak import (kW) of ``shown``'s strategy in the billing month of ``day``."""
    noon = pd.Timestamp(f"{day} 12:00").tz_localize(config.site.timezone)
    month = noon.tz_convert(config.billing_timezone).strftime("%Y-%m")  # as tariff.billing_month
    rows = table[(table["strategy"] == shown.strategy) & (table["month"] == month)]
    return float(rows["peak_import_kw"].iloc[0]) if len(rows) else float("nan")


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as PNG (100 dpi) and return the path."""
    fig.savefig(path, dpi=100)
    return path


def write_report(
    out_dir: str | Path,
    outcomes: Sequence,
    config: SiteConfig,
    title: str,
    day: str | None = None,
    tradeoff_points: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write the report files of a backtest into ``out_dir`` (created if needed).

    Parameters
    ----------
    out_dir : str or Path
        Output folder.
    outcomes : sequence of Outcome
        The strategies' outcomes on one scenario.
    config : SiteConfig
        The scenario's site (rates, time zone, currency).
    title : str
        Report title (the scenario name).
    day : str, optional
        Site-local date of the dispatch plot; default ``default_day``.
    tradeoff_points : pandas.DataFrame, optional
        Carbon-price sweep (see ``sim.plots.tradeoff``); no trade-off plot without it.

    Returns
    -------
    dict of str to Path
        The files written, by name.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cur, tz = config.tariff.currency, config.site.timezone
    table = kpi_table(outcomes, config)
    files = {"kpis.csv": out / "kpis.csv", "timeseries.csv": out / "timeseries.csv"}
    table.to_csv(files["kpis.csv"], index=False)
    timeseries_long(outcomes, config).to_csv(files["timeseries.csv"], index=False)
    day = day or default_day(outcomes, config)
    shown = day_strategy(outcomes)
    figures = {
        "dispatch_day.png": plots.dispatch_day(
            shown.frame, shown.strategy, day, tz, cur, month_peak(table, shown, config, day)
        ),
        "monthly_bill.png": plots.monthly_bill(table, cur),
        "monthly_peak.png": plots.monthly_peak(table, OURS, BOUND),
    }
    if tradeoff_points is not None and len(tradeoff_points):
        figures["tradeoff.png"] = plots.tradeoff(tradeoff_points, cur)
        files["tradeoff.csv"] = out / "tradeoff.csv"
        tradeoff_points.to_csv(files["tradeoff.csv"], index=False)
    for name, fig in figures.items():
        files[name] = save(fig, out / name)
    files["report.html"] = out / "report.html"
    page = render_html(title, config, table, [files[n] for n in figures], outcomes, shown, day)
    files["report.html"].write_text(page, encoding="utf-8")
    return files


def data_uri(png: Path) -> str:
    """A PNG file as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _best_rule_html(judged: pd.DataFrame, config: SiteConfig, cover: dict[str, float]) -> str:
    """Our controller against the best rule per month (``against_best_rule``), human-named."""
    cur = config.tariff.currency
    cols = (f"Best rule's cost ({cur})", f"Our controller's cost ({cur})", f"Over the rule ({cur})")
    head = "<th>Billing month</th><th>Cheapest rule that month</th>" + "".join(
        f"<th>{html.escape(c)}</th>" for c in cols
    )
    body = []
    for _, r in judged.iterrows():
        month = str(r["month"])
        label = (
            "Whole run" if month == TOTAL else report_text.month_name(month, cover.get(month, 1))
        )
        rule = strategy_name(str(r["best_rule"])) if r["best_rule"] else "-"
        cells = "".join(
            f"<td>{number(float(r[k]))}</td>" for k in ("rule_cost", "cost", "over_rule")
        )
        body.append(f"<tr><th>{html.escape(label)}</th><td>{html.escape(rule)}</td>{cells}</tr>")
    return (
        f'<table class="kpi"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


CAPTIONS = {
    "dispatch_day.png": "A day's dispatch in site-local time: supply stacked above zero (PV "
    "used, battery discharge, grid import), sinks below (charge, export, curtailment); load in "
    "black, SoC in red; the dashed purple line is the peak target the controller held, the "
    "dotted line the month's realised peak, the triangle the day's highest import; prices below.",
    "monthly_bill.png": "Monthly bill by component, one panel per strategy; export revenue "
    "below zero, dots mark the net total. Partial months are marked under their name.",
    "monthly_peak.png": "Each month's realised peak import per strategy (it sets the demand "
    "charge); the best possible (perfect foresight) outlined in black; the dashed purple line is "
    "our controller's peak target where it has one.",
    "tradeoff.png": "Cost without the carbon price versus emissions, carbon price varied "
    "(best possible, perfect foresight).",
}
STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table.kpi{border-collapse:collapse;font-size:13px;margin:.5em 0}
table.kpi td,table.kpi th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}
table.kpi thead th{vertical-align:bottom;max-width:9em;font-weight:600}
table.kpi tbody th{text-align:left;font-weight:normal}img{max-width:100%;border:1px solid #eee}
p.lead{font-size:1.35em;font-weight:600;margin:.6em 0}ul.headlines li{margin:.3em 0}
p.note{background:#f6f6f2;border-left:4px solid #c9b458;padding:.5em .8em;max-width:70em}
figure{margin:1.5em 0}figcaption{color:#555;font-size:13px}small{color:#666}"""


def _intro(title: str, config: SiteConfig, outcomes: Sequence) -> str:
    tz = config.site.timezone
    index = outcomes[0].frame.index
    step = index[1] - index[0]
    first, end = index[0].tz_convert(tz), (index[-1] + step).tz_convert(tz)
    return (
        f"<h1>Backtest: {html.escape(title)}</h1><p>{len(index):,} slots of "
        f"{step.total_seconds() / 60:g} min from {first:%a %d %b %Y %H:%M} to "
        f"{end:%a %d %b %Y %H:%M}. <b>All times are site-local: {zone_label(tz, index[0])}.</b> "
        f"Money in {html.escape(config.tariff.currency)}; savings are against no battery; "
        "\u201cshare of the best possible\u201d is a saving divided by the perfect-foresight "
        "optimum's (the bound no real controller reaches).</p>"
    )


def _coverage(table: pd.DataFrame) -> dict[str, float]:
    monthly = table[table["month"] != TOTAL]
    return monthly.groupby("month")["month_coverage"].min().to_dict()


def render_html(
    title: str,
    config: SiteConfig,
    table: pd.DataFrame,
    pngs: Sequence[Path],
    outcomes: Sequence,
    shown=None,
    day: str | None = None,
) -> str:
    """The self-contained report page (headlines and notes, human tables, PNGs as data URIs).

    Parameters
    ----------
    title : str
        Scenario name.
    config : SiteConfig
        The scenario's site.
    table : pandas.DataFrame
        ``kpi_table`` rows.
    pngs : sequence of Path
        The plots, inlined in this order.
    outcomes : sequence of Outcome
        The strategies' outcomes (their frames).
    shown : Outcome, optional
        The outcome of the dispatch-day plot; ``day`` its site-local date.
    day : str, optional
        Site-local date of the dispatch-day plot.
    """
    frames = {o.strategy: o.frame for o in outcomes}
    totals = table[table["month"] == TOTAL].copy()
    if BASELINE in set(totals["strategy"]):
        base_kg = float(totals.loc[totals["strategy"] == BASELINE, "kg_co2"].iloc[0])
        totals["co2_change_kg"] = totals["kg_co2"] - base_kg
    cur = config.tariff.currency
    index = outcomes[0].frame.index
    parts = [
        _intro(title, config, outcomes),
        "<h2>Headline</h2>",
        report_text.headlines(table, config, index, OURS),
        report_text.partial_months_note(table),
        "<h2>Money</h2>",
        report_text.human_table(totals, report_text.MONEY_COLUMNS, config, "Strategy"),
        "<h2>Peaks, energy and CO2</h2>",
        report_text.human_table(totals, report_text.PLANT_COLUMNS, config, "Strategy"),
        report_text.carbon_notes(table, config, frames, OURS),
    ]
    judged = against_best_rule(table, OURS)
    if len(judged):
        worse = judged.loc[(judged["month"] != TOTAL) & (judged["over_rule"] > 0), "month"]
        named = ", ".join(report_text.month_name(str(m)) for m in worse) or "none"
        parts.append(
            "<h2>Against the best rule</h2><p>Each billing month, our controller against the "
            f"cheapest rule baseline of that month ({html.escape(cur)}; over the rule > 0: it paid "
            f"more). Months above the best rule: {html.escape(named)}.</p>"
            + _best_rule_html(judged, config, _coverage(table))
        )
    if shown is not None and day:
        parts.append(
            f"<h2>Dispatch on {pd.Timestamp(day):%a %d %b %Y}</h2><p>"
            f"{html.escape(strategy_name(shown.strategy))} on the day of the highest "
            "no-battery import, with the peak target it held and the month's realised peak.</p>"
        )
    parts.append(
        "".join(
            f'<figure><img alt="{p.name}" src="{data_uri(p)}"><figcaption>'
            f"{html.escape(CAPTIONS.get(p.name, p.name))}</figcaption></figure>"
            for p in pngs
        )
    )
    parts += [
        "<h2>Demand peaks by billing month</h2><p>Realised peak import (kW) and when it was "
        "set (site-local time); the last column is the peak target our controller was told to "
        "hold (the month's target with its reserve for load above the forecast).</p>",
        report_text.monthly_table(table, config, "peak_import_kw", True, OURS),
        f"<h2>Total cost by billing month ({html.escape(cur)})</h2>",
        report_text.monthly_table(table, config, "total_cost", False),
        "<p>Every figure per strategy and month, unrounded, is in <code>kpis.csv</code>; the "
        "slots in <code>timeseries.csv</code> (UTC).</p>",
    ]
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
