"""Backtest report: KPI and time-series CSVs, PNG plots and one self-contained HTML page.

Role: write the files of a backtest (``sim.backtest_cli``) into an output folder. Depends on
``sim.kpis``, ``sim.plots`` (matplotlib), pandas. Files:

- ``kpis.csv``: one row per strategy and billing month plus a ``total`` row per strategy
  (columns: see ``sim.kpis.strategy_kpis`` and ``kpi_table``);
- ``timeseries.csv``: LONG format, one row per strategy and slot: ``time`` (UTC period start,
  ISO 8601), ``strategy``, ``billing_month``, then the outcome frame's columns (kW, fraction,
  price per kWh, g/kWh);
- ``dispatch_day.png``, ``monthly_bill.png`` and, given a carbon-price sweep,
  ``tradeoff.png`` and ``tradeoff.csv``;
- ``report.html``: the tables and every PNG inlined as base64 data URIs (no other files needed).
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
from sim import plots
from sim.kpis import TOTAL, against_best_rule, kpi_table
from sim.replay import NAME as OURS

SUMMARY_COLUMNS = ("strategy", "total_cost", "saving", "share_of_bound", "grid_bill",
                   "energy_cost", "export_revenue", "demand_charge", "carbon_cost", "wear_cost",
                   "kg_co2", "peak_import_kw", "peak_time", "self_consumption_frac",
                   "self_sufficiency_frac", "throughput_kwh", "full_cycles")  # fmt: skip
DAY_PREFERENCE = ("receding_robust", "receding_perfect", "receding_naive", "receding_noisy",
                  "perfect_foresight")  # fmt: skip
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


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as PNG (100 dpi) and return the path."""
    fig.savefig(path, dpi=100)
    return path


def write_report(out_dir: str | Path, outcomes: Sequence, config: SiteConfig, title: str,
                 day: str | None = None, tradeoff_points: pd.DataFrame | None = None,
                 ) -> dict[str, Path]:  # fmt: skip
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
        "dispatch_day.png": plots.dispatch_day(shown.frame, shown.strategy, day, tz, cur),
        "monthly_bill.png": plots.monthly_bill(table, cur),
    }
    if tradeoff_points is not None and len(tradeoff_points):
        figures["tradeoff.png"] = plots.tradeoff(tradeoff_points, cur)
        files["tradeoff.csv"] = out / "tradeoff.csv"
        tradeoff_points.to_csv(files["tradeoff.csv"], index=False)
    for name, fig in figures.items():
        files[name] = save(fig, out / name)
    files["report.html"] = out / "report.html"
    page = render_html(title, config, table, [files[n] for n in figures], outcomes)
    files["report.html"].write_text(page, encoding="utf-8")
    return files


def data_uri(png: Path) -> str:
    """A PNG file as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _table_html(frame: pd.DataFrame) -> str:
    body = frame.to_html(index=False, float_format=lambda v: f"{v:,.3f}", na_rep="-",
                         classes="kpi", border=0)  # fmt: skip
    return f'<div style="overflow-x:auto">{body}</div>'


CAPTIONS = {
    "dispatch_day.png": "A day's dispatch: supply stacked above zero (PV used, battery "
    "discharge, grid import), sinks below (charge, export, curtailment); load in black, SoC in "
    "red; prices below.",
    "monthly_bill.png": "Monthly bill by component per strategy; export revenue below zero, "
    "dots mark the net total.",
    "tradeoff.png": "Cost without the carbon price versus emissions, carbon price varied.",
}
STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
table.kpi{border-collapse:collapse;font-size:12px}table.kpi td,table.kpi th{padding:2px 6px;
border-bottom:1px solid #ddd;text-align:right}img{max-width:100%;border:1px solid #eee}
figure{margin:1.5em 0}figcaption{color:#555;font-size:13px}"""


def render_html(title: str, config: SiteConfig, table: pd.DataFrame, pngs: Sequence[Path],
                outcomes: Sequence) -> str:  # fmt: skip
    """The self-contained report page (tables as HTML, PNGs as data URIs)."""
    totals = table[table["month"] == TOTAL][list(SUMMARY_COLUMNS)]
    slots = len(outcomes[0].frame)
    first, last = outcomes[0].frame.index[[0, -1]]
    head = (f"<h1>Backtest: {html.escape(title)}</h1><p>{slots} slots from {first.isoformat()}"
            f" to {last.isoformat()} (UTC period starts); money in "
            f"{html.escape(config.tariff.currency)}, energy in kWh, emissions in kg CO2 "
            f"(location-based). Saving against no_battery; share_of_bound = saving / the "
            f"perfect-foresight saving.</p>")  # fmt: skip
    figs = "".join(
        f'<figure><img alt="{p.name}" src="{data_uri(p)}"><figcaption>{p.name}: '
        f"{html.escape(CAPTIONS.get(p.name, ''))}</figcaption></figure>"
        for p in pngs
    )
    monthly = table[table["month"] != TOTAL]
    partial = sorted(set(monthly.loc[monthly["month_coverage"] < 1.0, "month"]))
    if partial:
        head += (f"<p>Partial billing months {html.escape(', '.join(partial))}: the period "
                 f"covers only part of them, so their demand charge is billed pro rata "
                 f"(month_coverage).</p>")
    judged = against_best_rule(table, OURS)
    if len(judged):
        worse = judged.loc[(judged["month"] != TOTAL) & (judged["over_rule"] > 0), "month"]
        head += (f"<h2>Against the best rule</h2><p>Each billing month, our controller "
                 f"({OURS}) against the cheapest rule baseline of that month (over_rule > 0: "
                 f"it paid more). Months above the best rule: "
                 f"{html.escape(', '.join(worse)) or 'none'}.</p>{_table_html(judged)}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body>{head}<h2>Totals</h2>"
            f"{_table_html(totals)}<h2>Plots</h2>{figs}<h2>Demand peaks by billing month</h2>"
            f"<p>peak_target_kw: the import the live guard was told to hold (the month's peak "
            f"target, with its reserve for load above the forecast); peak_import_kw: the "
            f"realised peak; peak_time: the slot that set it.</p>{_table_html(peak_table(table))}"
            f"<h2>By billing month</h2>{_table_html(monthly)}</body></html>")  # fmt: skip
