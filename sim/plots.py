"""Report figures of backtests with matplotlib (object API, Agg; no pyplot global state).

Role: build ``matplotlib.figure.Figure`` objects from outcome frames and KPI tables; the caller
saves them. Depends on matplotlib, numpy, pandas, ``sim.kpis`` (column names).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.kpis import TOTAL
from sim.labels import month_name, strategy_color, strategy_name

COMPONENTS = (
    ("energy_cost", "energy", "#4c72b0"),
    ("demand_charge", "demand", "#dd8452"),
    ("carbon_cost", "carbon", "#55a868"),
    ("wear_cost", "wear", "#8172b3"),
)


def dispatch_day(
    frame: pd.DataFrame,
    strategy: str,
    day: str,
    timezone: str,
    currency: str,
    month_peak_kw: float | None = None,
) -> Figure:
    """A day's dispatch stack (kW), SoC (%), peak target and peaks, and prices of one strategy.

    Parameters
    ----------
    frame : pandas.DataFrame
        An ``Outcome.frame`` (UTC period starts); a ``peak_target_kw`` column (the daemon
        replay's, the threshold rule's) is drawn as the peak-target line.
    strategy : str
        Its code name (the title shows its human name).
    day : str
        Site-local date ``YYYY-MM-DD``.
    timezone : str
        Site time zone: the axis shows site-local clock times.
    currency : str
        Price unit label.
    month_peak_kw : float, optional
        The strategy's realised peak import of the day's billing month (kW): a dotted line.
    """
    local = frame.tz_convert(timezone)
    f = local.loc[day]
    if f.empty:
        raise ValueError(f"no slots on {day} ({timezone})")
    t = f.index
    fig = Figure(figsize=(11, 6.5), layout="constrained")
    ax, ax_p = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1.3))
    supply = [
        ("PV used", f["p_pv_kw"], "#f2b701"),
        ("battery discharge", f["p_batt_kw"].clip(lower=0), "#2ca02c"),
        ("grid import", f["p_grid_kw"].clip(lower=0), "#7f7f7f"),
    ]
    sinks = [
        ("battery charge", -(-f["p_batt_kw"]).clip(lower=0), "#98df8a"),
        ("export", -(-f["p_grid_kw"]).clip(lower=0), "#c7c7c7"),
        ("curtailed", -f["p_curtail_kw"], "#ffbb78"),
    ]
    for group in (supply, sinks):
        ax.stackplot(
            t,
            *[s.to_numpy() for _, s, _ in group],
            labels=[n for n, _, _ in group],
            colors=[c for _, _, c in group],
            step="post",
            alpha=0.85,
        )
    ax.step(t, f["p_load_kw"], where="post", color="black", lw=1.5, label="load")
    _peak_lines(ax, f, month_peak_kw)
    ax.axhline(0, color="black", lw=0.5)
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + 0.25 * (high - low))  # room for the legend above the day
    ax.set_ylabel("power (kW)")
    ax.yaxis.set_major_formatter(_thousands())
    when = f"{pd.Timestamp(day):%a %d %b %Y}"
    ax.set_title(f"{strategy_name(strategy)}: dispatch on {when}, site-local time ({timezone})")
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
    ax_p.set_xlabel(f"site-local time ({timezone})")
    ax_p.legend(loc="upper left", fontsize=8)
    ax_p.xaxis.set_major_formatter(_hour_formatter(timezone))
    return fig


def _peak_lines(ax, f: pd.DataFrame, month_peak_kw: float | None) -> None:
    """The peak target (step line), the month's realised peak and the day's peak import."""
    t = f.index
    if "peak_target_kw" in f.columns and f["peak_target_kw"].notna().any():
        ax.step(
            t,
            f["peak_target_kw"],
            where="post",
            color="#6a3d9a",
            ls="--",
            lw=2.0,
            label=f"peak target (up to {f['peak_target_kw'].max():,.0f} kW)",
        )
    if month_peak_kw is not None and np.isfinite(month_peak_kw):
        ax.axhline(
            month_peak_kw,
            color="black",
            ls=":",
            lw=1.2,
            label=f"month's realised peak {month_peak_kw:,.0f} kW",
        )
    imp = f["p_grid_kw"].clip(lower=0)
    at = imp.idxmax()
    ax.plot([at], [imp.max()], "v", color="black", ms=7)
    ax.annotate(
        f"day's peak {imp.max():,.0f} kW at {at:%H:%M}",
        (at, imp.max()),
        textcoords="offset points",
        xytext=(6, 8),
        fontsize=8,
    )


def _hour_formatter(timezone: str):
    from matplotlib.dates import DateFormatter

    return DateFormatter("%H:%M", tz=timezone)


def _thousands():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{v:,.0f}")


def _month_labels(rows: pd.DataFrame, months: list[str]) -> list[str]:
    """Short month names, partial months marked with their covered share."""
    cover = rows.groupby("month")["month_coverage"].min()
    out = []
    for m in months:
        name = month_name(m, short=True)
        out.append(name + (f"\npartial {100 * cover[m]:.0f} %" if cover[m] < 1 - 1e-9 else ""))
    return out


def monthly_bill(table: pd.DataFrame, currency: str) -> Figure:
    """Monthly bill by component, one panel per strategy (named), months along each panel;
    export revenue is drawn below zero and a dot marks the net total. Shared y axis.

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
    ncols = 2 if len(strategies) > 1 else 1
    nrows = -(-len(strategies) // ncols)
    width = min(16.0, max(9.0, 5.0 + 0.6 * len(months) * ncols))
    fig = Figure(figsize=(width, 1.0 + 2.6 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False))
    x = np.arange(len(months))
    labels = _month_labels(rows, months)
    for k, ax in enumerate(axes.ravel()):
        if k >= len(strategies):
            ax.set_visible(False)
            continue
        s = strategies[k]
        part = rows[rows["strategy"] == s].set_index("month").reindex(months).fillna(0.0)
        bottom = np.zeros(len(months))
        for col, label, color in COMPONENTS:
            v = part[col].to_numpy()
            ax.bar(x, v, 0.7, bottom=bottom, color=color, edgecolor="white", lw=0.3, label=label)
            bottom += v
        ax.bar(x, -part["export_revenue"].to_numpy(), 0.7, color="#937860", label="export revenue")
        ax.plot(x, part["total_cost"].to_numpy(), "k.", ms=6, label="net total")
        ax.set_title(strategy_name(s), fontsize=10, color=strategy_color(s, k), loc="left")
        ax.axhline(0, color="black", lw=0.5)
        ax.yaxis.set_major_formatter(_thousands())
        ax.set_xticks(x, labels, rotation=45 if len(months) > 6 else 0, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"bill ({currency})")
    handles, names = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper center", ncol=6, fontsize=8)
    return fig


def monthly_peak(table: pd.DataFrame, ours: str, bound: str) -> Figure:
    """Realised peak import per billing month and strategy (grouped bars, named in the
    legend), the bound's peak outlined, and our controller's peak target as a dashed line.

    Parameters
    ----------
    table : pandas.DataFrame
        KPI rows (``sim.kpis.kpi_table``): ``peak_import_kw``, ``peak_target_kw``.
    ours : str
        Code name of our controller (its ``peak_target_kw`` is drawn where it has one).
    bound : str
        Code name of the bound (perfect foresight), drawn with a black outline.
    """
    rows = table[table["month"] != TOTAL]
    months = list(dict.fromkeys(rows["month"]))
    strategies = list(dict.fromkeys(rows["strategy"]))
    width = 0.8 / len(strategies)
    size = min(16.0, max(9.0, 4.0 + 0.22 * len(months) * len(strategies)))
    fig = Figure(figsize=(size, 5.0), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(months))
    for k, s in enumerate(strategies):
        part = rows[rows["strategy"] == s].set_index("month").reindex(months)
        pos = x - 0.4 + (k + 0.5) * width
        edge = dict(edgecolor="black", lw=1.5) if s == bound else {}
        ax.bar(
            pos,
            part["peak_import_kw"].to_numpy(float),
            width,
            color=strategy_color(s, k),
            label=strategy_name(s),
            **edge,
        )
        if s == ours and part["peak_target_kw"].notna().any():
            target = part["peak_target_kw"].to_numpy(float)
            ax.hlines(
                target,
                x - 0.42,
                x + 0.42,
                colors="#6a3d9a",
                linestyles="--",
                lw=2,
                label=f"peak target of {strategy_name(s).lower()}",
            )
    ax.set_xticks(x, _month_labels(rows, months), rotation=45 if len(months) > 6 else 0)
    ax.set_ylabel("peak import of the month (kW)")
    ax.yaxis.set_major_formatter(_thousands())
    ax.set_title("Realised monthly peak import per strategy (sets the demand charge)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
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
        ax.plot(
            part["kg_co2"] / 1000, part["cost_without_carbon"], "o-", label=strategy_name(str(s))
        )
        for _, r in part.iterrows():
            ax.annotate(
                f"{r['carbon_price_per_kg']:g}",
                (r["kg_co2"] / 1000, r["cost_without_carbon"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )
    ax.set_xlabel("emissions (t CO2, location-based)")
    ax.set_ylabel(f"cost without the carbon price ({currency})")
    ax.yaxis.set_major_formatter(_thousands())
    ax.set_title(f"Cost versus CO2; labels: carbon price ({currency}/kg)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
