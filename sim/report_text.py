"""The words and tables of the backtest report: headlines, notes and human-named KPI tables.

Role: from a KPI table (``sim.kpis.kpi_table``), the outcomes' frames and the site config,
write the HTML fragments an energy manager reads first: one headline per strategy in words
and numbers, the note on partial months, the CO2 effect of storage losses and the choice of
grid factor, and the KPI tables with human column names, units and site-local times.
Depends on ``sim.kpis``, ``sim.labels``, pandas and ``dispatch.config``; pure, no I/O.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dispatch.config import SiteConfig
from sim.kpis import BASELINE, BOUND, TOTAL
from sim.labels import local_time, money, month_name, number, percent, signed_money, strategy_name

#: KPI columns of the two totals tables: code name -> (human name with {cur} unit, scale,
#: decimals); percentages have scale 100.
MONEY_COLUMNS = {
    "total_cost": ("Total cost ({cur})", 1, 0),
    "saving": ("Saving against no battery ({cur})", 1, 0),
    "share_of_bound": ("Share of the best possible (%)", 100, 0),
    "grid_bill": ("Grid bill ({cur})", 1, 0),
    "energy_cost": ("Energy ({cur})", 1, 0),
    "demand_charge": ("Demand charge ({cur})", 1, 0),
    "export_revenue": ("Export revenue ({cur})", 1, 0),
    "carbon_cost": ("Carbon price ({cur})", 1, 0),
    "wear_cost": ("Battery wear ({cur})", 1, 0),
}
PLANT_COLUMNS = {
    "kg_co2": ("Emissions (t CO2)", 1e-3, 1),
    "co2_change_kg": ("Emissions against no battery (t CO2)", 1e-3, 1),
    "peak_import_kw": ("Peak import (kW)", 1, 0),
    "peak_time": ("Peak set at (site-local time)", None, 0),
    "peak_target_kw": ("Highest peak target (kW)", 1, 0),
    "self_consumption_frac": ("PV self-consumption (%)", 100, 0),
    "self_sufficiency_frac": ("Self-sufficiency (%)", 100, 0),
    "throughput_kwh": ("Battery throughput (MWh)", 1e-3, 1),
    "full_cycles": ("Equivalent full cycles", 1, 1),
}


def period_words(index: pd.DatetimeIndex, timezone: str) -> str:
    """The run's period for a sentence: ``in 2026`` for a whole calendar year, else
    ``over 7 days (1 Jan 2026 to 7 Jan 2026)`` in site-local dates."""
    step = index[1] - index[0]
    first = index[0].tz_convert(timezone)
    end = (index[-1] + step).tz_convert(timezone)
    midnight = first == first.normalize() and end == end.normalize()
    if midnight and first.month == first.day == 1 and end == first + pd.DateOffset(years=1):
        return f"in {first.year}"
    days = (index[-1] + step - index[0]) / pd.Timedelta(days=1)
    last = (end - step).strftime("%-d %b %Y")
    plural = "" if days == 1 else "s"
    return f"over {days:g} day{plural} ({first.strftime('%-d %b %Y')} to {last})"


def headlines(table: pd.DataFrame, config: SiteConfig, index: pd.DatetimeIndex, ours: str) -> str:
    """One headline per strategy in words and numbers, our controller's first and largest.

    Parameters
    ----------
    table : pandas.DataFrame
        ``kpi_table`` rows (with ``saving`` and ``share_of_bound``).
    config : SiteConfig
        Currency and time zone.
    index : pandas.DatetimeIndex
        The outcomes' UTC period starts (the period in words).
    ours : str
        Code name of our controller.

    Returns
    -------
    str
        HTML: ``<p class="lead">`` for our controller, a ``<ul class="headlines">`` for the rest.
    """
    cur, tz = config.tariff.currency, config.site.timezone
    totals = table[table["month"] == TOTAL].set_index("strategy")
    when = period_words(index, tz)
    if BASELINE not in totals.index:
        return "<p>No headline: the run has no no-battery baseline to save against.</p>"
    base = totals.loc[BASELINE]
    items = []
    for s, row in totals.iterrows():
        if s == BASELINE:
            text = (
                f"{strategy_name(s)}: the site pays {money(base['total_cost'], cur)} {when}, "
                f"{percent(base['demand_charge'] / base['total_cost'])} of it demand charge "
                f"(peak import {number(base['peak_import_kw'])} kW)."
            )
        else:
            text = _saved(str(s), row, base, cur, when)
        items.append((s, text))
    lead = "".join(f'<p class="lead">{html.escape(t)}</p>' for s, t in items if s == ours)
    rest = "".join(f"<li>{html.escape(t)}</li>" for s, t in items if s != ours)
    return f'{lead}<ul class="headlines">{rest}</ul>'


def _saved(s: str, row: pd.Series, base: pd.Series, cur: str, when: str) -> str:
    """The headline of one battery strategy against the no-battery row ``base``."""
    saving = float(row["saving"])
    name = strategy_name(s)
    if saving <= 0:
        text = f"{name} cost {money(-saving, cur)} more than no battery {when}."
    else:
        bound = "" if np.isnan(row["share_of_bound"]) else "the best possible"
        share = f" ({percent(row['share_of_bound'])} of {bound})" if bound and s != BOUND else ""
        demand = float(base["demand_charge"] - row["demand_charge"])
        if 0 <= demand <= saving:
            split = f"{percent(demand / saving)} of it demand charge"
        else:  # the demand charge moved more than the total, or the other way
            split = (
                f"demand charge {signed_money(-demand, cur)}, "
                f"other costs {signed_money(demand - saving, cur)}"
            )
        text = f"{name} saved {money(saving, cur)}{share} {when}; {split}."
    dco2 = (row["kg_co2"] - base["kg_co2"]) / 1000
    return (
        f"{text} Peak import {number(row['peak_import_kw'])} kW (no battery: "
        f"{number(base['peak_import_kw'])} kW); emissions {dco2:+,.1f} t CO2 against no battery."
    )


def partial_months_note(table: pd.DataFrame) -> str:
    """Which billing months the run covers only in part, and how their demand charge is
    billed (pro rata, as ``sim.kpis`` does); empty when every month is whole."""
    monthly = table[table["month"] != TOTAL]
    cover = monthly.groupby("month")["month_coverage"].min()
    partial = cover[cover < 1.0 - 1e-9]
    if partial.empty:
        return ""
    parts = []
    for month, share in partial.items():
        days = pd.Period(str(month), "M").days_in_month
        parts.append(
            f"{month_name(str(month))} ({share * days:.1f} of {days} days, {percent(share)})"
        )
    return (
        '<p class="note"><b>Partial months.</b> The run covers only part of '
        f"{html.escape(', '.join(parts))}. A partial month's demand charge is pro-rated: the "
        "rate x the month's peak import x the share of the month covered, so it is not a full "
        "month's charge, and a whole month could set a higher peak. Figures of these months "
        'are for the covered days only; they are marked "partial" in every table and chart.</p>'
    )


def carbon_notes(
    table: pd.DataFrame, config: SiteConfig, frames: dict[str, pd.DataFrame], ours: str = ""
) -> str:
    """The grid-factor choice stated, and the CO2 effect of storage losses explained when a
    battery strategy emits more than no battery under a flat factor.

    Parameters
    ----------
    table : pandas.DataFrame
        ``kpi_table`` rows.
    config : SiteConfig
        The ``[carbon]`` section and the battery's efficiencies.
    frames : dict of str to pandas.DataFrame
        Outcome frames by strategy (their ``ci_g_per_kwh``).
    ours : str, optional
        Code name of our controller: its losses are the ones worked out, where it emits more.
    """
    ci = next(iter(frames.values()))["ci_g_per_kwh"].to_numpy(float)
    flat = bool(np.ptp(ci) < 1e-9)
    c = config.carbon
    if flat:
        what = f"a constant {ci[0]:,.1f} g CO2/kWh in every slot ([carbon] grid_ci_g_per_kwh)"
    elif c.hourly_profile_g_per_kwh:
        what = f"an hourly profile by site-local hour, {ci.min():,.0f} to {ci.max():,.0f} g/kWh"
    else:
        what = f"a time series of the scenario, {ci.min():,.0f} to {ci.max():,.0f} g CO2/kWh"
    text = (
        '<p class="note"><b>Grid factor: average, not marginal.</b> Emissions are location-based:'
        f" grid import x the grid factor of its slot. This scenario uses {html.escape(what)}, an"
        " average factor (the mean intensity of the grid's supply). A marginal factor (the "
        "emissions of the plant that answers a change in demand, often coal at every hour) "
        "would value the battery's losses and any shift of imports at that plant's rate; the "
        "report does not use one. Exports earn no CO2 credit.</p>"
    )
    if flat:
        text += _losses_note(table, config, ci[0], ours)
    return text


def _losses_note(table: pd.DataFrame, config: SiteConfig, ci: float, ours: str) -> str:
    """Why battery strategies emit more than no battery under a flat factor (or '')."""
    totals = table[table["month"] == TOTAL].set_index("strategy")
    if BASELINE not in totals.index:
        return ""
    base = totals.loc[BASELINE]
    above = totals[(totals.index != BASELINE) & (totals["kg_co2"] > base["kg_co2"] + 1e-6)]
    if above.empty:
        return ""
    b = config.battery
    listed = ", ".join(
        f"{strategy_name(str(s))} {(r['kg_co2'] - base['kg_co2']) / 1000:+,.1f} t"
        for s, r in above.iterrows()
    )
    r = above.loc[ours] if ours in above.index else above.iloc[0]
    lost_mwh = (r["charge_kwh"] - r["discharge_kwh"]) / 1000
    return (
        '<p class="note"><b>Why battery strategies emit more CO2 than no battery.</b> With a '
        "flat factor every imported kWh counts the same whatever the hour, so moving imports "
        "from peak to valley changes no emissions; only the energy imported does. A battery "
        f"returns less than it takes (here {percent(b.eta_charge)} charging x "
        f"{percent(b.eta_discharge)} discharging = {percent(b.eta_charge * b.eta_discharge)} "
        "round trip), and the loss is bought from the grid. "
        f"{html.escape(strategy_name(str(r.name)))} charged "
        f"{number(r['charge_kwh'] / 1000, 1)} MWh and discharged "
        f"{number(r['discharge_kwh'] / 1000, 1)} MWh: {number(lost_mwh, 1)} MWh lost or left "
        f"stored, {number(lost_mwh * ci / 1000, 1)} t CO2 at {ci:,.1f} g/kWh. PV stored instead "
        "of curtailed works the other way. Above no battery: "
        f"{html.escape(listed)}. The money saved is not bought with cleaner energy.</p>"
    )


def _cell(value, scale, decimals: int, timezone: str) -> str:
    if scale is None:
        return local_time(value, timezone)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return number(float(value) * scale, decimals)


def human_table(rows: pd.DataFrame, columns: dict, config: SiteConfig, first: str) -> str:
    """An HTML table of KPI rows with human column names, units and rounding.

    Parameters
    ----------
    rows : pandas.DataFrame
        KPI rows; ``strategy`` is shown by its human name as the first column, headed
        ``first``.
    columns : dict
        ``MONEY_COLUMNS`` or ``PLANT_COLUMNS`` (code name -> (name, scale, decimals)).
    config : SiteConfig
        Currency and time zone.
    first : str
        Heading of the first column.
    """
    cur, tz = config.tariff.currency, config.site.timezone
    present = [k for k in columns if k in rows.columns]
    head = "".join(f"<th>{html.escape(columns[k][0].format(cur=cur))}</th>" for k in present)
    body = []
    for _, r in rows.iterrows():
        cells = "".join(
            f"<td>{_cell(r[k], columns[k][1], columns[k][2], tz)}</td>" for k in present
        )
        body.append(f"<tr><th>{html.escape(strategy_name(str(r['strategy'])))}</th>{cells}</tr>")
    return (
        f'<table class="kpi"><thead><tr><th>{html.escape(first)}</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def monthly_table(
    table: pd.DataFrame, config: SiteConfig, value: str, peak: bool, ours: str = ""
) -> str:
    """Months down, strategies across: ``value`` per cell (money, or with ``peak`` the peak
    import in kW with its site-local time and a column of our controller's peak target).

    Parameters
    ----------
    table : pandas.DataFrame
        ``kpi_table`` rows.
    config : SiteConfig
        Currency and time zone.
    value : str
        KPI column shown (``total_cost``, ``peak_import_kw``).
    peak : bool
        Add the peak time under each value and a column of the peak target of ``ours``.
    ours : str
        Code name of our controller (whose ``peak_target_kw`` is shown).
    """
    tz = config.site.timezone
    monthly = table[table["month"] != TOTAL]
    strategies: Sequence[str] = list(dict.fromkeys(monthly["strategy"]))
    by = monthly.set_index(["month", "strategy"])
    targets = monthly[monthly["strategy"] == ours].set_index("month")["peak_target_kw"]
    head = "".join(f"<th>{html.escape(strategy_name(s))}</th>" for s in strategies)
    if peak:
        head += f"<th>Peak target of {html.escape(strategy_name(ours).lower())} (kW)</th>"
    body = []
    for month in dict.fromkeys(monthly["month"]):
        cover = float(monthly.loc[monthly["month"] == month, "month_coverage"].min())
        cells = []
        for s in strategies:
            r = by.loc[(month, s)]
            text = number(float(r[value]))
            if peak:
                text += f"<br><small>{local_time(r['peak_time'], tz)}</small>"
            cells.append(f"<td>{text}</td>")
        if peak:
            cells.append(f"<td>{_cell(targets.get(month, np.nan), 1, 0, tz)}</td>")
        label = html.escape(month_name(str(month), cover))
        body.append(f"<tr><th>{label}</th>{''.join(cells)}</tr>")
    return (
        f'<table class="kpi"><thead><tr><th>Billing month</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )
