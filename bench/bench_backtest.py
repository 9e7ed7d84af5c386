"""Year-long backtest of a factory scenario: strategies, savings and replay speed.

Prints, for the scenario (default ``configs/scenarios/germany-factory-2018.toml``):

- each strategy's bill, its saving against no battery, and the share of the
  perfect-foresight saving it captures: the self-consumption, peak-shaving and ratcheting
  threshold rules (``sim.rules``), the bare receding-horizon optimiser with naive point
  forecasts (no guard, no reserve), **our controller** (``receding_robust``: the daemon's own
  jobs replayed on a simulated clock with the plant behind the device interface,
  ``sim.replay``; its settings are the site config's) and the bare optimiser with perfect
  forecasts; every replay but the last sees prices and intensity only as published;
- the bill of every billing month per strategy, our controller's bill against the cheapest
  rule of each month (and the months where it pays more), and our controller's peak target,
  realised peak and the slot that set it per month;
- the wall time of our controller's replay (a plan every step through the daemon's plan job,
  forecast included, and a control cycle every step), the time of the same LPs (recorded
  during the replay) solved by one persistent, hot-started highspy model per billing-month
  layout (bench/reference_lp.py), and the ratio.

With ``--all``: every real-data plant scenario of ``configs/scenarios`` (metered load), all
with one ``[plan]`` section (``--plan FILE``'s, else the defaults; each plant keeps its step,
solver and penalties, which are money in its currency), then per plant and billing month our
controller's share of the bound's saving, its bill over the best rule's and its demand charge
against the bound's.

Run: ``python -m bench.bench_backtest [--days N] [--scenario S | --all [--plan FILE]]`` (needs
../shared/data).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import tomllib
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from bench import reference_lp as ref
from dispatch.config import PlanSection
from dispatch.optimise.outcome import SlotInputs
from sim import backtest, forecasters, replay, rules
from sim.foresight import Foresight
from sim.kpis import BOUND, TOTAL, against_best_rule, kpi_table
from sim.scenario import Scenario, load_scenario, shared_data_dir

STACK = ("highspy", "cvxpy", "numpy", "pandas", "scipy")
DEFAULT = Path(__file__).resolve().parents[1] / "configs/scenarios/germany-factory-2018.toml"


def reference_seconds(scenario: Scenario, solved: list[tuple[SlotInputs, np.ndarray]]) -> float:
    """Time to solve every recorded LP (inputs and per-slot reserve) with hot-started
    persistent highspy models, one per billing-month layout."""
    config = replay.replay_config(scenario.config)
    site = ref.site_from_config(config)
    terminal = config.plan.terminal_soc
    models: dict[tuple[str, ...], ref.HotReference] = {}
    total = 0.0
    for w, reserve in solved:
        soc0 = w.energy_start_kwh / config.battery.energy_kwh
        inst = ref.Instance(
            dt_h=w.dt_h, pv_kw=w.pv_kw, load_kw=w.load_kw, price_import=w.price_import_per_kwh,
            price_export=w.price_export_per_kwh, ci_g_per_kwh=w.ci_g_per_kwh,
            month=w.billing_month, peak_kw=dict(w.peak_so_far_kw), soc0_frac=soc0,
            terminal_frac=min(soc0, config.battery.soc_max_frac)
            if terminal == "at_least_start" else 0.0, reserve_kwh=reserve,
            charge_frac=dict(w.demand_charge_frac),
        )  # fmt: skip
        key = tuple(w.billing_month)
        if key not in models:  # a new month layout: new matrix; its first solve is not timed
            models[key] = ref.HotReference(ref.build(site, inst))
        costs_and_bounds = ref.bounds_and_costs(site, inst, list(dict.fromkeys(key)))
        t0 = time.perf_counter()
        models[key].solve(costs_and_bounds)
        total += time.perf_counter() - t0
    return total


def independent_bound(scenario: Scenario) -> float:
    """The perfect-foresight bill from bench/reference_lp.py (no cvxpy), end SoC free."""
    x = backtest.period_inputs(scenario)
    inst = ref.Instance(
        dt_h=x.dt_h, pv_kw=x.pv_kw, load_kw=x.load_kw, price_import=x.price_import_per_kwh,
        price_export=x.price_export_per_kwh, ci_g_per_kwh=x.ci_g_per_kwh, month=x.billing_month,
        peak_kw={}, soc0_frac=scenario.soc_initial_frac, terminal_frac=0.0,
        charge_frac=dict(x.demand_charge_frac),
    )  # fmt: skip
    objective, _ = ref.solve_cold(ref.build(ref.site_from_config(scenario.config), inst), "ipm")
    return objective


def with_plan(scenario: Scenario, **settings: object) -> Scenario:
    """The scenario with some ``plan`` settings replaced."""
    plan = scenario.config.plan.model_copy(update=settings)
    return dataclasses.replace(scenario, config=scenario.config.model_copy(update={"plan": plan}))


def strategies(sc: Scenario) -> tuple[list[backtest.Outcome], replay.DaemonRun]:
    """The compared strategies, and our controller's run (its recorded solves)."""
    # the bare optimiser: no peak reserve and no reserve on days off
    plain = with_plan(sc, peak_risk_quantile=0.5, day_off_reserve_frac=None)

    def timed(name: str, run):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        out = run()
        print(f"  {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        return out

    known = Foresight.of(sc, sc.config.plan.n_slots)  # prices and intensity as published
    naive = backtest.optimiser(plain.config, forecasters.persistence, foresight=known)
    ours, run = timed(replay.NAME, lambda: replay.daemon_replay(sc))
    perfect = backtest.optimiser(plain.config, forecasters.perfect)
    return [
        backtest.self_consumption(sc),
        backtest.peak_shaving(sc),
        timed(rules.NAME, lambda: rules.threshold_ratchet(sc)),
        timed("naive_no_guard", lambda: backtest.replay(plain, naive, "naive_no_guard")),
        ours,
        timed("receding_perfect", lambda: backtest.replay(plain, perfect, "receding_perfect")),
    ], run


def monthly_bills(outcomes: list[backtest.Outcome], sc: Scenario) -> pd.DataFrame:
    """Bill per billing month (currency) and strategy."""
    table = kpi_table(outcomes, sc.config)
    monthly = table[table["month"] != TOTAL]
    return monthly.pivot(index="month", columns="strategy", values="total_cost")


#: ``[plan]`` keys ``--all`` keeps from each plant's config: the step, the solver and the
#: penalties (money, in the tariff's currency); every other key takes the common section.
KEPT_PLAN_KEYS = ("step_min", "solver", "solver_options", "soft_penalty_per_kwh",
                  "reserve_penalty_per_kwh")


def real_data_scenarios(folder: Path = DEFAULT.parent) -> list[Path]:
    """The scenarios of ``folder`` whose load is a metered series (not generated)."""
    found = []
    for path in sorted(folder.glob("*.toml")):
        with path.open("rb") as f:
            if "p_load_kw" in tomllib.load(f).get("series", {}):
                found.append(path)
    return found


def common_plan(sc: Scenario, plan: PlanSection) -> Scenario:
    """The scenario with ``plan`` as its ``[plan]`` but for ``KEPT_PLAN_KEYS``."""
    own = sc.config.plan
    merged = plan.model_copy(update={k: getattr(own, k) for k in KEPT_PLAN_KEYS})
    config = sc.config.model_copy(update={"plan": merged})
    return dataclasses.replace(sc, config=type(config).model_validate(config.model_dump()))


def bench_scenario(sc: Scenario) -> pd.DataFrame:
    """Run and print every strategy on ``sc``; returns our controller's summary per billing
    month (``TOTAL`` last): share of the bound's saving, bill over the best rule's, and the
    demand charge against the bound's."""
    base = backtest.no_battery(sc)
    bound = backtest.perfect_foresight(sc)
    print(f"perfect foresight solved in {bound.wall_s:.1f} s", flush=True)
    check = independent_bound(sc)
    print(f"independent sparse LP of the same year (highspy IPM): {check:,.3f}; ours "
          f"{bound.costs.total:,.3f}; relative difference "
          f"{abs(check - bound.costs.total) / abs(check):.2e}", flush=True)  # fmt: skip
    runs, ours = strategies(sc)
    ours_out = next(o for o in runs if o.strategy == replay.NAME)
    rows = []
    for out in (base, *runs, bound):
        saving = base.costs.total - out.costs.total
        rows.append({"strategy": out.strategy, "bill": out.costs.total,
                     "demand_charge": out.costs.demand_charge, "kg_co2": out.kg_co2,
                     "saving": saving,
                     "share_of_bound": saving / (base.costs.total - bound.costs.total),
                     "wall_s": out.wall_s})  # fmt: skip
    table = pd.DataFrame(rows)
    kpis = kpi_table([base, *runs, bound], sc.config)
    judged = against_best_rule(kpis, replay.NAME)
    risk = sc.config.plan.peak_risk_quantile
    with pd.option_context("display.width", 160, "display.float_format", "{:,.3f}".format):
        print(f"{sc.name}: {len(sc.data)} slots, currency {sc.config.tariff.currency}; "
              f"receding_robust = our controller (the daemon's jobs: its forecasts, peak "
              f"reserve at quantile {risk:g}, live guard)")
        print(table.to_string(index=False))
        print("\nbill per billing month")
        print(monthly_bills([base, *runs, bound], sc).to_string())
        print("\nour controller against the cheapest rule of each billing month")
        print(judged.to_string(index=False))
        worse = judged.loc[(judged["month"] != TOTAL) & (judged["over_rule"] > 0), "month"]
        print(f"months where our controller's bill exceeds the best rule's: "
              f"{worse.tolist() or 'none'}")
        peaks = kpi_table([ours_out], sc.config)
        print("\nour controller's demand peaks by billing month")
        print(peaks[["month", "peak_target_kw", "peak_import_kw", "peak_time"]].to_string(
            index=False))
    replay_s = ours_out.wall_s
    solved = ours.model.solved
    ref_s = reference_seconds(sc, solved)
    print(f"our controller's replay (the daemon's plan job and control cycle every step): "
          f"{replay_s:.1f} s for {len(solved)} plans")
    print(f"reference (the same LPs, persistent highspy, hot-started, solves only): {ref_s:.1f} s")
    print(f"ratio ours / reference: {replay_s / ref_s:.2f}")
    per_plan_ms = 1e3 * replay_s / len(solved), 1e3 * ref_s / len(solved)
    print("per plan: ours {:.2f} ms, reference {:.2f} ms".format(*per_plan_ms), flush=True)
    return summary(kpis, judged)


def summary(kpis: pd.DataFrame, judged: pd.DataFrame) -> pd.DataFrame:
    """Our controller's share, bill over the best rule's and demand charge against the
    bound's, per billing month (from ``kpi_table`` and ``against_best_rule``)."""
    by = kpis.set_index(["strategy", "month"])
    ours, bound = by.loc[replay.NAME], by.loc[BOUND]
    out = pd.DataFrame({"share_of_bound": ours["share_of_bound"],
                        "demand_charge": ours["demand_charge"],
                        "bound_demand_charge": bound["demand_charge"]})
    over = judged.set_index("month")["over_rule"]
    return out.join(over).reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(DEFAULT))
    every_plant = (
        "every real-data plant scenario in configs/scenarios, all with one [plan] section "
        "(--plan, else the defaults) but for the step, solver and penalties"
    )
    parser.add_argument("--all", action="store_true", help=every_plant)
    parser.add_argument("--plan", type=Path, default=None,
                        help="a TOML file whose [plan] table --all applies to every plant")
    parser.add_argument("--days", type=int, default=None, help="replay only the first N days")
    args = parser.parse_args()
    if not shared_data_dir().is_dir():
        sys.exit(f"needs the real data in {shared_data_dir()}")
    # one slot can set a month's peak, so a solver that breaks a tie differently moves the
    # shares by about a point: say which versions measured them
    print("versions: " + ", ".join(f"{p} {metadata.version(p)}" for p in STACK), flush=True)
    paths = real_data_scenarios() if args.all else [Path(args.scenario)]
    plan = PlanSection()
    if args.plan is not None:
        with args.plan.open("rb") as f:
            plan = PlanSection.model_validate(tomllib.load(f).get("plan", {}))
    results = {}
    for path in paths:
        sc = load_scenario(path)
        if args.all:
            sc = common_plan(sc, plan)
        if args.days:
            steps_per_day = round(24 * 60 / sc.config.plan.step_min)
            sc = dataclasses.replace(sc, data=sc.data.iloc[: args.days * steps_per_day])
        print(f"\n=== {sc.name} ({path.name}) ===", flush=True)
        results[sc.name] = bench_scenario(sc)
    if len(results) > 1:
        print("\n=== every plant, one [plan] section ===")
        with pd.option_context("display.width", 160, "display.float_format", "{:,.3f}".format):
            print(pd.concat(results, names=["plant", None]).droplevel(1).to_string())


if __name__ == "__main__":
    main()
