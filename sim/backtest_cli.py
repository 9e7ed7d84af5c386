"""``python -m sim.backtest_cli``: backtest a scenario's strategies and write the report.

Runs the chosen strategies on the scenario (or its first ``--days`` days) with a tqdm progress bar
on stderr for the receding-horizon replays, sweeps the carbon price with the perfect-foresight
optimum for the cost-versus-CO2 curve (local processes), and writes ``kpis.csv``,
``timeseries.csv``, the PNG plots and ``report.html`` into ``--out`` (see ``sim.report``).
Exit codes: 0 ok, 1 bad input data or a failed run, 78 bad configuration.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from dispatch.types import ConfigError, DispatchError
from sim import labels, sweep
from sim.extra import MissingExtraError, require
from sim.kpis import TOTAL
from sim.scenario import load_scenario
from sim.strategies import DEFAULT_STRATEGIES, STRATEGIES, ProgressLine, run_strategy

CARBON_FACTORS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0)


def carbon_prices(base_per_kg: float, given: list[float] | None) -> list[float]:
    """Carbon prices of the trade-off sweep (currency/kg): given, or multiples of the site's
    price (of 0.1 when the site has none)."""
    if given:
        return sorted(given)
    base = base_per_kg if base_per_kg > 0 else 0.1
    return [round(f * base, 6) for f in CARBON_FACTORS]


def tradeoff_points(scenario: str, prices: list[float], days: int | None,
                    workers: int | None) -> pd.DataFrame:  # fmt: skip
    """Perfect-foresight cost without the carbon price and kg CO2 at each carbon price."""
    grid = sweep.GridSpec(strategies=["perfect_foresight"], days=days,
                          axes={"carbon.price_per_kg": prices})  # fmt: skip
    table = sweep.run_sweep(scenario, grid, "process", workers=workers,
                            progress=ProgressLine("carbon sweep", unit="points"))  # fmt: skip
    t = table[table["month"] == TOTAL]
    return pd.DataFrame({
        "carbon_price_per_kg": t["carbon.price_per_kg"].to_numpy(float),
        "strategy": t["strategy"].to_numpy(),
        "kg_co2": t["kg_co2"].to_numpy(float),
        "cost_without_carbon": (t["total_cost"] - t["carbon_cost"]).to_numpy(float),
    })  # fmt: skip


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m sim.backtest_cli",
                                 description=__doc__.splitlines()[0])  # fmt: skip
    ap.add_argument("--scenario", required=True, help="scenario TOML")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--days", type=int, default=None, help="only the first N days")
    ap.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=DEFAULT_STRATEGIES,
                    metavar="NAME", help=f"from {', '.join(STRATEGIES)}")  # fmt: skip
    ap.add_argument("--day", default=None, help="site-local YYYY-MM-DD of the dispatch plot")
    ap.add_argument("--carbon-prices", type=float, nargs="*", default=None,
                    help="carbon prices (currency/kg) of the trade-off curve")  # fmt: skip
    ap.add_argument("--no-tradeoff", action="store_true", help="skip the carbon-price sweep")
    ap.add_argument("--workers", type=int, default=None, help="processes of the sweep")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the backtest and write the report; returns the exit code."""
    args = parse(argv)
    try:  # before hours of replays: the report at the end needs matplotlib
        report = require("sim.report", "the backtest report")
    except MissingExtraError as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return 1
    try:
        sc = sweep.first_days(load_scenario(args.scenario), args.days)
        print(f"{sc.name}: {len(sc.data)} slots from {sc.data.index[0].isoformat()}",
              file=sys.stderr)  # fmt: skip
        outcomes = []
        for name in args.strategies:
            outcomes.append(run_strategy(name, sc, ProgressLine(name)))
            print(f"{name}: total {outcomes[-1].costs.total:,.0f} "
                  f"{sc.config.tariff.currency} in {outcomes[-1].wall_s:.1f} s",
                  file=sys.stderr)  # fmt: skip
        points = None
        if not args.no_tradeoff:
            prices = carbon_prices(sc.config.carbon.price_per_kg, args.carbon_prices)
            points = tradeoff_points(args.scenario, prices, args.days, args.workers)
        files = report.write_report(args.out, outcomes, sc.config, sc.name, args.day, points)
    except ConfigError as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return 78
    except (DispatchError, ValueError, RuntimeError, OSError) as exc:
        print(f"backtest: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    table = pd.read_csv(files["kpis.csv"])
    cur = sc.config.tariff.currency
    for r in table[table["month"] == TOTAL].itertuples():
        print(f"{labels.strategy_name(r.strategy)}: cost {labels.money(r.total_cost, cur)}, "
              f"saved {labels.money(r.saving, cur)} ({labels.percent(r.share_of_bound)} of the "
              f"best possible), {r.kg_co2 / 1000:,.1f} t CO2, peak {r.peak_import_kw:,.0f} kW")
    print(f"wrote {', '.join(str(Path(p)) for p in files.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
