"""``make demo``: plan the next day of the example factory on the embedded default data.

PV from a clear-sky forecast through the real PV chain, the factory's two-shift load profile,
the site's tariff and carbon factor, one solve of the optimiser; prints the plan hour by hour
and its JSON summary. Nothing reaches the network. (The daemon-against-simulator demo replaces
this once the daemon exists.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from dispatch import pipeline
from dispatch.config import load_config
from dispatch.optimise import DispatchModel
from dispatch.plan_io import write_plan
from dispatch.types import DispatchError, Plan
from sim.loadprofile import demo_load_kw, pv_available_kw

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "suzhou-factory.toml"


def hourly_table(plan: Plan, timezone: str) -> pd.DataFrame:
    """The plan as hourly means in site time, for printing (kW, fraction, price per kWh)."""
    f = plan.frame
    table = f[["p_load_kw", "p_pv_kw", "p_batt_kw", "p_grid_kw", "price_import_per_kwh"]]
    hourly = table.resample("1h").mean()
    hourly["soc_frac"] = f["soc_frac"].resample("1h").last()
    hourly.index = hourly.index.tz_convert(timezone).strftime("%a %H:%M")
    powers = [c for c in hourly.columns if c.endswith("_kw")]
    hourly[powers] = hourly[powers].round(0)
    return hourly.round({"soc_frac": 3, "price_import_per_kwh": 3})


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="site configuration")
    parser.add_argument("--soc-frac", type=float, default=None, help="SoC now (fraction)")
    parser.add_argument(
        "--peak-kw",
        type=float,
        default=3000.0,
        help="peak import already reached this billing month (kW)",
    )
    parser.add_argument("--out", default="out/demo-plan.csv", help="plan CSV to write")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        tz = config.site.timezone
        start = (pd.Timestamp.now(tz=tz).normalize() + pd.Timedelta(days=1)).tz_convert("UTC")
        load = demo_load_kw(config, start, days=1, step_min=config.plan.step_min)
        frame = pd.DataFrame({"p_pv_kw": pv_available_kw(config, load.index), "p_load_kw": load})
        forecast = pipeline.complete_forecast(config, frame.iloc[: config.plan.n_slots])
        plan = pipeline.plan(DispatchModel(config), forecast, args.soc_frac, args.peak_kw)
    except DispatchError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 78 if "configuration" in str(exc) else 1
    print(f"Plan for {config.site.name}, {start.tz_convert(tz):%Y-%m-%d} ({tz}), hourly means:")
    with pd.option_context("display.width", 120, "display.max_rows", 100):
        print(hourly_table(plan, tz).to_string())
    write_plan(plan, args.out)
    print(json.dumps(plan.summary() | {"currency": config.tariff.currency, "out": args.out},
                     indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
