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
from pathlib import Path

import pandas as pd

from dispatch import __version__, pipeline, sources
from dispatch.config import load_config
from dispatch.forecast.calibrate import CalibrationFit
from dispatch.optimise import DispatchModel
from dispatch.plan_io import read_plan_inputs, write_frame, write_plan
from dispatch.types import ConfigError, DispatchError, InputError

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


def _weather(args: argparse.Namespace, index: pd.DatetimeIndex) -> pd.DataFrame | None:
    """Weather on the forecast slots from a file, or None for the clear-sky default."""
    if args.weather is None:
        return None
    fmt = args.weather_format or ("epw" if args.weather.lower().endswith(".epw") else "csv")
    year = index[0].year
    readers = {
        "csv": lambda p: sources.read_weather_csv(p),
        "tmy3": lambda p: sources.read_tmy3(p, year),
        "epw": lambda p: sources.read_epw(p, year),
        "nsrdb": lambda p: sources.read_nsrdb_psm4(p),
    }
    frame = readers[fmt](args.weather)
    step = index[1] - index[0]
    frame = (
        sources.resample_means(frame, step) if frame.index[1] - frame.index[0] != step else frame
    )
    missing = index.difference(frame.index)
    if len(missing):
        raise InputError(
            f"{args.weather}: no weather for {missing[0].isoformat()}; it covers "
            f"{frame.index[0].isoformat()} .. {frame.index[-1].isoformat()}"
        )
    return frame.loc[index]


def cmd_forecast(args: argparse.Namespace) -> int:
    """Forecast PV, load, prices and intensity for a horizon and write the CSV."""
    config = load_config(args.config)
    start = pd.Timestamp(args.start)
    if start.tzinfo is None:
        raise InputError(f"--start {args.start!r} needs a UTC offset, e.g. 2026-07-01T00:00+08:00")
    step = pd.Timedelta(minutes=config.plan.step_min)
    n = round(args.hours * 60 / config.plan.step_min)
    index = pd.date_range(start.tz_convert("UTC").ceil(step), periods=n, freq=step)
    history = None
    if args.load_history is not None:
        history = sources.read_series_csv(args.load_history, ["p_load_kw"])["p_load_kw"]
    fit = None
    if args.pv_calibration is not None:
        fit = _read_calibration(args.pv_calibration)
    frame = pipeline.forecast_frame(
        config, index, _weather(args, index), history, args.load_kw, fit
    )
    if args.day_ahead is not None:
        prices = sources.read_price_csv(args.day_ahead)["price_per_kwh"]
        frame["day_ahead_per_kwh"] = prices.reindex(index).to_numpy()
    if args.ci is not None:
        frame["ci_g_per_kwh"] = (
            sources.read_ci_csv(args.ci)["ci_g_per_kwh"].reindex(index).to_numpy()
        )
    detail = [c for c in frame.columns if c.startswith("p_pv_") and c != "p_pv_kw"]
    full = pipeline.complete_forecast(config, frame.drop(columns=detail)).frame
    write_frame(pd.concat([full, frame[detail]], axis=1), args.out)
    print(json.dumps({"slots": n, "start": index[0].isoformat(), "out": str(args.out),
                      "pv_kwh": float(full["p_pv_kw"].sum() * step.total_seconds() / 3600),
                      "load_kwh": float(full["p_load_kw"].sum() * step.total_seconds() / 3600),
                      "weather": args.weather or "clear sky"}, indent=2))  # fmt: skip
    return 0


def _read_calibration(path: str) -> CalibrationFit:
    """A PV calibration written by ``dispatch calibrate-pv``."""
    try:
        return CalibrationFit(**json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(
            f"{path}: not a PV calibration from `dispatch calibrate-pv`: {exc}"
        ) from None


def cmd_calibrate_pv(args: argparse.Namespace) -> int:
    """Fit the PV model to measured PV power; print and write the fit."""
    config = load_config(args.config)
    measured = sources.read_series_csv(args.measured, ["p_pv_kw"])["p_pv_kw"]
    fit = pipeline.calibrate_pv(config, measured, _weather(args, measured.index))
    text = json.dumps(fit.summary(), indent=2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
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

    fc = sub.add_parser(
        "forecast",
        help="forecast PV, load, prices and carbon intensity into a CSV that `plan` accepts",
        description="PV from the weather file through the pvlib chain (clear sky without one), "
        "load from measured history and the factory calendar (or a constant), prices from the "
        "tariff (with an optional day-ahead CSV), intensity from the config or a CSV.",
    )
    fc.add_argument("--config", required=True, help="site configuration (TOML)")
    fc.add_argument("--start", required=True, help="first slot, ISO 8601 with offset")
    fc.add_argument("--hours", type=float, default=48.0, help="horizon length (h)")
    fc.add_argument("--weather", help="weather file (CSV with pvlib columns, TMY3, EPW, NSRDB)")
    fc.add_argument("--weather-format", choices=["csv", "tmy3", "epw", "nsrdb"])
    fc.add_argument("--load-history", help="CSV of measured load: time, p_load_kw")
    fc.add_argument("--load-kw", type=float, help="constant load instead of a forecast (kW)")
    fc.add_argument("--day-ahead", help="CSV of day-ahead prices: time, price_per_kwh")
    fc.add_argument("--ci", help="CSV of grid carbon intensity: time, ci_g_per_kwh")
    fc.add_argument("--pv-calibration", help="JSON fit from `dispatch calibrate-pv`")
    fc.add_argument("--out", required=True, help="where to write the forecast CSV")
    fc.set_defaults(func=cmd_forecast)

    cal = sub.add_parser(
        "calibrate-pv",
        help="fit the PV model's scale and clipping limit to measured PV power",
        description="Models the measured period with the site's PV chain (weather file, or "
        "clear sky), fits measured ~ min(scale x model, clip) on usable points and writes the "
        "fit as JSON for `dispatch forecast --pv-calibration`. Measured PV comes as a CSV "
        "(time, p_pv_kw), e.g. from `dispatch export --table measurements`.",
    )
    cal.add_argument("--config", required=True, help="site configuration (TOML)")
    cal.add_argument("--measured", required=True, help="CSV of measured PV: time, p_pv_kw")
    cal.add_argument("--weather", help="weather file on the same period (default clear sky)")
    cal.add_argument("--weather-format", choices=["csv", "tmy3", "epw", "nsrdb"])
    cal.add_argument("--out", required=True, help="where to write the fit (JSON)")
    cal.set_defaults(func=cmd_calibrate_pv)
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
