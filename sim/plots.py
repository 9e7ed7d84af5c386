"""Report figures of backtests with matplotlib (object API, Agg; no pyplot global state).

Role: build ``matplotlib.figure.Figure`` objects from outcome frames and KPI tables; the caller
saves them. Depends on matplotlib, numpy, pandas, ``sim.kpis`` (column names).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.kpis import TOTAL

COMPONENTS = (("energy_cost", "energy", "#4c72b0"), ("demand_charge", "demand", "#dd8452"),
              ("carbon_cost", "carbon", "#55a868"), ("wear_cost", "wear", "#8172b3"))  # fmt: skip


def dispatch_day(frame: pd.DataFrame, strategy: str, day: str, timezone: str,
                 currency: str) -> Figure:  # fmt: skip
    """A day's dispatch stack (kW), SoC (fraction) and prices (currency/kWh) of one strategy.

    Parameters
    ----------
    frame : pandas.DataFrame
        An ``Outcome.frame`` (UTC period starts).
    strategy : str
        Its name (title).
    day : str
        Site-local date ``YYYY-MM-DD``.
    timezone : str
        Site time zone for the axis.
    currency : str
        Price unit label.
    """
    local = frame.tz_convert(timezone)
    f = local.loc[day]
    if f.empty:
        raise ValueError(f"no slots on {day} ({timezone})")
    t = f.index
    fig = Figure(figsize=(11, 6.5), layout="constrained")
    ax, ax_p = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1.3))
    supply = [("PV used", f["p_pv_kw"], "#f2b701"),
              ("battery discharge", f["p_batt_kw"].clip(lower=0), "#2ca02c"),
              ("grid import", f["p_grid_kw"].clip(lower=0), "#7f7f7f")]  # fmt: skip
    sinks = [("battery charge", -(-f["p_batt_kw"]).clip(lower=0), "#98df8a"),
             ("export", -(-f["p_grid_kw"]).clip(lower=0), "#c7c7c7"),
             ("curtailed", -f["p_curtail_kw"], "#ffbb78")]  # fmt: skip
    for group in (supply, sinks):
        ax.stackplot(t, *[s.to_numpy() for _, s, _ in group], labels=[n for n, _, _ in group],
                     colors=[c for _, _, c in group], step="post", alpha=0.85)  # fmt: skip
    ax.step(t, f["p_load_kw"], where="post", color="black", lw=1.5, label="load")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_ylabel("power (kW)")
    ax.set_title(f"{strategy}: dispatch on {day} ({timezone})")
    soc = ax.twinx()
    soc.plot(t, f["soc_frac"] * 100, color="#d62728", lw=2, label="SoC (end of slot)")
    soc.set_ylim(0, 100)
    soc.set_ylabel("state of charge (%)")
    handles = ax.get_legend_handles_labels()
    extra = soc.get_legend_handles_labels()
    ax.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper left", fontsize=8, ncol=4)
    ax_p.step(t, f["price_import_per_kwh"], where="post", label="import")
    ax_p.step(t, f["price_export_per_kwh"], where="post", label="export")
    ax_p.set_ylabel(f"price ({currency}/kWh)")
    ax_p.legend(loc="upper left", fontsize=8)
    ax_p.xaxis.set_major_formatter(_hour_formatter(timezone))
    return fig


def _hour_formatter(timezone: str):
    from matplotlib.dates import DateFormatter

    return DateFormatter("%H:%M", tz=timezone)


def _thousands():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{v:,.0f}")


def monthly_bill(table: pd.DataFrame, currency: str) -> Figure:
    """Monthly bill by component (stacked bars), one bar per strategy in each billing month;
    export revenue is drawn below zero and a dot marks the net total.

    Parameters
    ----------
    table : pandas.DataFrame
        KPI rows (``sim.kpis.kpi_table``).
    currency : str
        Unit label.
    """
    rows = table[table["month"] != TOTAL]
    months = list(dict.fromkeys(rows["month"]))
    strategies = list(dict.fromkeys(rows["strategy"]))
    width = 0.8 / len(strategies)
    size = min(16.0, max(8.0, 4.0 + 0.25 * len(months) * len(strategies)))
    fig = Figure(figsize=(size, 5.5), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(months))
    for k, s in enumerate(strategies):
        part = rows[rows["strategy"] == s].set_index("month").reindex(months).fillna(0.0)
        pos = x - 0.4 + (k + 0.5) * width
        bottom = np.zeros(len(months))
        for col, label, color in COMPONENTS:
            v = part[col].to_numpy()
            ax.bar(pos, v, width, bottom=bottom, color=color, edgecolor="white", lw=0.3,
                   label=label if k == 0 else None)  # fmt: skip
            bottom += v
        ax.bar(pos, -part["export_revenue"].to_numpy(), width, color="#937860",
               label="export revenue" if k == 0 else None)  # fmt: skip
        ax.plot(pos, part["total_cost"].to_numpy(), "k.", ms=5,
                label="net total" if k == 0 else None)  # fmt: skip
        for p in pos:
            ax.text(p, 0, f" {k + 1}", rotation=90, va="bottom", ha="center", fontsize=7,
                    color="white")  # fmt: skip
    ax.set_xticks(x, months, rotation=45 if len(months) > 6 else 0)
    ax.set_ylabel(f"bill ({currency})")
    ax.yaxis.set_major_formatter(_thousands())
    names = [f"{k + 1} = {s}" for k, s in enumerate(strategies)]
    key = "\n".join(", ".join(names[i : i + 3]) for i in range(0, len(names), 3))
    ax.set_title(f"Monthly bill by component; bars:\n{key}", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.axhline(0, color="black", lw=0.5)
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + 0.04 * (high - low))  # room above the tallest bar's dot
    return fig


def tradeoff(points: pd.DataFrame, currency: str) -> Figure:
    """Cost versus CO2 over a sweep of the carbon price.

    Parameters
    ----------
    points : pandas.DataFrame
        One row per carbon price and strategy: ``carbon_price_per_kg``, ``strategy``,
        ``kg_co2`` and ``cost_without_carbon`` (currency; the bill paid without the carbon
        price's shadow cost).
    currency : str
        Unit label.
    """
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.subplots()
    for s, part in points.groupby("strategy", sort=False):
        part = part.sort_values("carbon_price_per_kg")
        ax.plot(part["kg_co2"] / 1000, part["cost_without_carbon"], "o-", label=str(s))
        for _, r in part.iterrows():
            ax.annotate(f"{r['carbon_price_per_kg']:g}", (r["kg_co2"] / 1000,
                        r["cost_without_carbon"]), textcoords="offset points", xytext=(4, 4),
                        fontsize=8)  # fmt: skip
    ax.set_xlabel("emissions (t CO2, location-based)")
    ax.set_ylabel(f"cost without the carbon price ({currency})")
    ax.yaxis.set_major_formatter(_thousands())
    ax.set_title(f"Cost versus CO2; labels: carbon price ({currency}/kg)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
