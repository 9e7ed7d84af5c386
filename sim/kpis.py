"""Key performance indicators of backtest outcomes, per strategy and billing month.

Role: recompute every figure straight from an outcome's per-slot frame (independently of
``dispatch.optimise.outcome.costs_of``) with the site config's rates and billing months.
Depends on ``dispatch`` (config, tariff), numpy and pandas; pure, no I/O.

Conventions (per slot of ``dt`` hours, powers in kW, energies in kWh):

- import = max(p_grid, 0), export = max(-p_grid, 0);
- demand charge of a billing month = rate x its highest import (from zero every month) x the
  share of the month the frame covers (``month_coverage``: 1 for a whole month; a partial
  month at either end of a replay window is billed pro rata and marked so);
- ``total_cost`` = energy cost - export revenue + demand charge + carbon cost + wear cost (the
  optimiser's objective, equal to ``PlanCosts.total``); ``grid_bill`` leaves out carbon and wear;
- PV available = used PV + curtailed PV; PV used on site = used PV - the part of the export
  it covers (export is attributed to PV first); self-consumption = PV used on site / PV
  available; self-sufficiency = 1 - import / load;
- equivalent full cycles = discharge energy / usable energy ((soc_max - soc_min) x capacity).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from dispatch import tariff
from dispatch.config import SiteConfig

BASELINE, BOUND = "no_battery", "perfect_foresight"
TOTAL = "total"
PEAK_TIE_KW = 1e-3  # imports this close to the month's peak (kW) reach it
MONEY = ("energy_cost", "export_revenue", "demand_charge", "carbon_cost", "wear_cost")
SUMMED = (*MONEY, "kg_co2", "import_kwh", "export_kwh", "load_kwh", "pv_available_kwh",
          "pv_on_site_kwh", "charge_kwh", "discharge_kwh")  # fmt: skip


def slot_energies(frame: pd.DataFrame, config: SiteConfig) -> pd.DataFrame:
    """Per-slot energies (kWh), money (currency) and emissions (kg CO2) of an outcome frame.

    Parameters
    ----------
    frame : pandas.DataFrame
        An ``Outcome.frame``: ``p_grid_kw``, ``p_batt_kw``, ``p_pv_kw``, ``p_curtail_kw``,
        ``p_load_kw``, prices (per kWh) and ``ci_g_per_kwh``, UTC period starts at a fixed step.
    config : SiteConfig
        Carbon price (per kg) and wear cost (per kWh throughput).

    Returns
    -------
    pandas.DataFrame
        The columns of ``SUMMED`` except ``demand_charge``, plus ``import_kw`` (kW) and
        ``billing_month``.
    """
    dt_h = (frame.index[1] - frame.index[0]).total_seconds() / 3600.0
    grid = frame["p_grid_kw"].to_numpy(float)
    batt = frame["p_batt_kw"].to_numpy(float)
    pv = frame["p_pv_kw"].to_numpy(float)
    imp, exp = np.maximum(grid, 0.0), np.maximum(-grid, 0.0)
    kg = dt_h * imp * frame["ci_g_per_kwh"].to_numpy(float) / 1000.0
    out = pd.DataFrame(
        {
            "energy_cost": dt_h * imp * frame["price_import_per_kwh"].to_numpy(float),
            "export_revenue": dt_h * exp * frame["price_export_per_kwh"].to_numpy(float),
            "carbon_cost": config.carbon.price_per_kg * kg,
            "wear_cost": config.battery.wear_cost_per_kwh * dt_h * np.abs(batt),
            "kg_co2": kg,
            "import_kwh": dt_h * imp,
            "export_kwh": dt_h * exp,
            "load_kwh": dt_h * frame["p_load_kw"].to_numpy(float),
            "pv_available_kwh": dt_h * (pv + frame["p_curtail_kw"].to_numpy(float)),
            "pv_on_site_kwh": dt_h * (pv - np.minimum(exp, pv)),
            "charge_kwh": dt_h * np.maximum(-batt, 0.0),
            "discharge_kwh": dt_h * np.maximum(batt, 0.0),
            "import_kw": imp,
        },
        index=frame.index,
    )
    out["billing_month"] = tariff.billing_month(config, frame.index).to_numpy(str)
    return out


def _derived(row: dict, config: SiteConfig) -> dict:
    """Shares, cycles and bill totals from the summed figures of one row."""
    b = config.battery
    usable = (b.soc_max_frac - b.soc_min_frac) * b.energy_kwh
    row["total_cost"] = (row["energy_cost"] - row["export_revenue"] + row["demand_charge"]
                         + row["carbon_cost"] + row["wear_cost"])  # fmt: skip
    row["grid_bill"] = row["energy_cost"] - row["export_revenue"] + row["demand_charge"]
    pv = row["pv_available_kwh"]
    row["self_consumption_frac"] = row["pv_on_site_kwh"] / pv if pv > 0 else float("nan")
    load = row["load_kwh"]
    row["self_sufficiency_frac"] = 1.0 - row["import_kwh"] / load if load > 0 else float("nan")
    row["throughput_kwh"] = row["charge_kwh"] + row["discharge_kwh"]
    row["full_cycles"] = row["discharge_kwh"] / usable if usable > 0 else float("nan")
    return row


def strategy_kpis(frame: pd.DataFrame, config: SiteConfig, strategy: str) -> pd.DataFrame:
    """KPI rows of one outcome: one per billing month and a ``total`` row.

    Returns
    -------
    pandas.DataFrame
        Columns ``strategy``, ``month`` (``"YYYY-MM"`` or ``"total"``), the money parts and
        ``total_cost``, ``grid_bill`` (currency), ``kg_co2``, energies (kWh),
        ``peak_import_kw`` and ``peak_time`` (UTC start of the first slot within
        ``PEAK_TIE_KW`` of it: the slot that set it),
        ``peak_target_kw`` (the highest import a live guard was told to hold in the month;
        NaN without a guard), ``month_coverage`` (the share of the billing month covered,
        which bills its demand charge pro rata; in the total row the lowest),
        ``self_consumption_frac``, ``self_sufficiency_frac``, ``throughput_kwh``,
        ``full_cycles``.
    """
    slots = slot_energies(frame, config)
    rate = config.tariff.demand_charge_per_kw_month
    targets: dict[str, float] = {}
    if "peak_target_kw" in frame.columns:
        targets = frame["peak_target_kw"].groupby(slots["billing_month"].to_numpy()).max().to_dict()
    coverage = tariff.month_coverage(config, frame.index)
    rows = []
    for month, part in slots.groupby("billing_month", sort=True):
        row = {"strategy": strategy, "month": str(month)}
        row |= {k: float(part[k].sum()) for k in SUMMED if k != "demand_charge"}
        peak = float(part["import_kw"].max())
        # The first slot that reached it: a guard holding the month's target meets it again and
        # again, a rounding error apart.
        peak_at = part.index[np.argmax(part["import_kw"].to_numpy() >= peak - PEAK_TIE_KW)]
        row["peak_import_kw"] = peak
        row["peak_time"] = peak_at.isoformat()
        row["peak_target_kw"] = targets.get(month, np.nan)
        row["month_coverage"] = coverage[str(month)]
        row["demand_charge"] = rate * row["peak_import_kw"] * row["month_coverage"]
        rows.append(_derived(row, config))
    months = pd.DataFrame(rows)
    total = {"strategy": strategy, "month": TOTAL}
    total |= {k: float(months[k].sum()) for k in SUMMED}
    top = int(months["peak_import_kw"].to_numpy().argmax())
    total["peak_import_kw"] = float(months["peak_import_kw"].iloc[top])
    total["peak_time"] = months["peak_time"].iloc[top]
    total["peak_target_kw"] = float(months["peak_target_kw"].max())
    total["month_coverage"] = float(months["month_coverage"].min())
    return pd.concat([months, pd.DataFrame([_derived(total, config)])], ignore_index=True)


def kpi_table(outcomes: Iterable, config: SiteConfig) -> pd.DataFrame:
    """KPI rows of several outcomes on the same scenario, with the share of the
    perfect-foresight saving each strategy captured.

    Parameters
    ----------
    outcomes : iterable of Outcome
        ``sim.backtest.Outcome`` (anything with ``strategy`` and ``frame``).
    config : SiteConfig
        The scenario's site.

    Returns
    -------
    pandas.DataFrame
        ``strategy_kpis`` rows of every outcome, plus ``saving`` (currency, against
        ``no_battery``) and ``share_of_bound`` (saving / the perfect-foresight saving, per
        month and in total; NaN when either reference is missing or the bound saves nothing).
    """
    table = pd.concat([strategy_kpis(o.frame, config, o.strategy) for o in outcomes],
                      ignore_index=True)  # fmt: skip
    return with_savings(table)


def with_savings(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``saving`` and ``share_of_bound`` to KPI rows (see ``kpi_table``), month by month."""
    out = table.copy()
    cost = out.set_index(["strategy", "month"])["total_cost"]
    nan = pd.Series(np.nan, index=pd.Index(out["month"].unique()))
    strategies = set(out["strategy"])
    base = cost.loc[BASELINE] if BASELINE in strategies else nan
    bound = cost.loc[BOUND] if BOUND in strategies else nan
    best = (base - bound).where(lambda v: v.abs() > 1e-9)  # NaN where the bound saves nothing
    out["saving"] = out["month"].map(base).to_numpy(float) - out["total_cost"].to_numpy(float)
    out["share_of_bound"] = out["saving"] / out["month"].map(best).to_numpy(float)
    return out


#: Outcome names of the rule baselines (``sim.backtest``, ``sim.rules``) start with these.
RULE_PREFIXES = ("self_consumption", "peak_shaving", "threshold_ratchet")


def against_best_rule(table: pd.DataFrame, strategy: str) -> pd.DataFrame:
    """Per billing month, ``strategy``'s bill against the cheapest rule baseline's.

    Parameters
    ----------
    table : pandas.DataFrame
        ``kpi_table`` rows; the rules are the strategies named with ``RULE_PREFIXES``.
    strategy : str
        The strategy judged (our controller).

    Returns
    -------
    pandas.DataFrame
        One row per billing month (``TOTAL`` last: the sums): ``month``, ``best_rule`` (the
        cheapest rule that month), ``rule_cost`` and ``cost`` (currency) and ``over_rule``
        (``cost - rule_cost``: positive where the strategy paid more than the best rule).
        Empty without a rule or without ``strategy``.
    """
    columns = ["month", "best_rule", "rule_cost", "cost", "over_rule"]
    monthly = table[table["month"] != TOTAL]
    bills = monthly.pivot(index="month", columns="strategy", values="total_cost")
    rules = [s for s in bills.columns if str(s).startswith(RULE_PREFIXES)]
    if not rules or strategy not in bills.columns:
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame({"month": bills.index, "best_rule": bills[rules].idxmin(axis=1).to_numpy(),
                        "rule_cost": bills[rules].min(axis=1).to_numpy(),
                        "cost": bills[strategy].to_numpy()})
    out["over_rule"] = out["cost"] - out["rule_cost"]
    total = {"month": TOTAL, "best_rule": "", **out[["rule_cost", "cost", "over_rule"]].sum()}
    return pd.concat([out, pd.DataFrame([total])], ignore_index=True)
