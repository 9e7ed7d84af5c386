"""The ``dispatch`` command line.

Role: parse arguments, read files, call the composition (``pipeline``), print results and map
errors to exit codes: 0 ok, 1 bad input data, 78 bad configuration (EX_CONFIG, so systemd does
not restart a service that cannot work).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from dispatch import __version__, pipeline
from dispatch.config import load_config
from dispatch.optimise import DispatchModel
from dispatch.plan_io import read_plan_inputs, write_plan
from dispatch.types import ConfigError, DispatchError

EXIT_INPUT = 1
EXIT_CONFIG = 78


def cmd_check_config(args: argparse.Namespace) -> int:
    """Print the normalised configuration as JSON."""
    config = load_config(args.config)
    print(config.model_dump_json(indent=2))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """Solve one plan from an input CSV, write the plan CSV and print a JSON summary."""
    config = load_config(args.config)
    frame = read_plan_inputs(args.inputs, config)
    forecast = pipeline.complete_forecast(config, frame)
    model = DispatchModel(config, n_slots=len(frame))
    plan = pipeline.plan(model, forecast, args.soc_frac, args.peak_kw)
    write_plan(plan, args.out)
    summary = plan.summary() | {"currency": config.tariff.currency, "out": str(args.out)}
    print(json.dumps(summary, indent=2))
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    p = argparse.ArgumentParser(
        prog="dispatch",
        description="Factory PV-plus-storage dispatch and carbon optimiser.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check-config", help="validate a site config and print it normalised")
    check.add_argument("config", help="site configuration (TOML)")
    check.set_defaults(func=cmd_check_config)

    plan = sub.add_parser(
        "plan",
        help="solve one battery plan from a CSV of per-slot inputs",
        description="Columns: time (ISO 8601 with offset, period start), p_pv_kw, p_load_kw; "
        "optional price_import_per_kwh, price_export_per_kwh, ci_g_per_kwh (override the "
        "config's tariff and carbon), day_ahead_per_kwh (feeds a day-ahead tariff). One row per "
        "plan step; the rows make the horizon.",
    )
    plan.add_argument("--config", required=True, help="site configuration (TOML)")
    plan.add_argument("--inputs", required=True, help="per-slot input CSV")
    plan.add_argument("--out", required=True, help="where to write the plan CSV")
    plan.add_argument(
        "--soc-frac",
        type=float,
        default=None,
        help="state of charge now, 0..1 (default: battery.soc_initial_frac)",
    )
    plan.add_argument(
        "--peak-kw",
        type=float,
        default=0.0,
        help="peak import already reached this billing month (kW)",
    )
    plan.set_defaults(func=cmd_plan)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"dispatch: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except DispatchError as exc:
        print(f"dispatch: {exc}", file=sys.stderr)
        return EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())
