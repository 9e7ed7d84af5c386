"""The ``dispatch`` command line.

Role: parse arguments, read files, call the composition (``pipeline``), print results and map
errors to exit codes: 0 ok, 1 bad input data, 78 what a person must fix (EX_CONFIG: a bad
configuration or register map, a solver that is not installed, an unreadable store), so
systemd does not restart a service that cannot work.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.util
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from dispatch import __version__, daemon, pipeline, sources
from dispatch.carbon import cli as carbon_cli
from dispatch.config import SiteConfig, load_config
from dispatch.daemon.api import read_token
from dispatch.daemon.files import read_calibration
from dispatch.daemon.mqtt import read_password
from dispatch.daemon.notify import watchdog_interval_s
from dispatch.daemon.reproduce import replan
from dispatch.devices import commission
from dispatch.devices.probe import format_probe, probe
from dispatch.devices.registers import check_device_maps
from dispatch.optimise import DispatchModel
from dispatch.pipeline import checks
from dispatch.plan_io import read_history_csv, read_plan_inputs, write_frame, write_plan
from dispatch.store import Store, StoreOpenError
from dispatch.types import ConfigError, DispatchError, InputError

EXIT_INPUT = 1
EXIT_CONFIG = 78
REINSTALL = "reinstall factory-dispatch with its [sim] extra (pip install 'factory-dispatch[sim]')"


def load_site(path: str) -> SiteConfig:
    """The site config at ``path`` with every device's register map loaded and checked:
    ``ConfigError`` (exit 78) for a bad config, an unknown map name or a bad map file."""
    config = load_config(path)
    check_device_maps([d.register_map for d in config.devices], str(path),
                      [d.handback_values for d in config.devices])
    return config


def cmd_check_config(args: argparse.Namespace) -> int:
    """Print the normalised configuration as JSON after checking every register map, a test
    solve with the configured solver, the control period against the shipped unit's
    watchdog and the API token and MQTT password files; implausible values are warned about
    on stderr."""
    config = load_site(args.config)
    checks.check_solver(config)
    checks.check_watchdog(config, checks.SHIPPED_WATCHDOG_S)
    read_token(config.http.token_file)  # the files of secrets the daemon reads at start
    read_password(config.mqtt.password_file)
    for line in checks.plausibility_warnings(config):
        print(f"dispatch: warning: {line}", file=sys.stderr)
    print(config.model_dump_json(indent=2))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """Solve one plan from an input CSV (or a stored plan's inputs), write the plan CSV and
    print a JSON summary."""
    config = load_config(args.config)
    if args.stored is not None:
        return _replan(config, args.stored, args.out)
    if args.inputs is None:
        raise InputError("plan: give --inputs CSV, or --stored PLAN_ID to re-solve a stored plan")
    frame = read_plan_inputs(args.inputs, config)
    forecast = pipeline.complete_forecast(config, frame)
    model = DispatchModel(config, n_slots=len(frame))
    plan = pipeline.plan(model, forecast, args.soc_frac, args.peak_kw)
    write_plan(plan, args.out)
    summary = plan.summary() | {"currency": config.tariff.currency, "out": str(args.out)}
    print(json.dumps(summary, indent=2))
    return 0


def _replan(config: SiteConfig, plan_id: int, out: str) -> int:
    """Solve stored plan ``plan_id`` again from its stored inputs; print how it compares."""
    with Store.from_config(config, daemon.state_dir()) as store:
        done = replan(config, store, plan_id)
    write_plan(done.again, out)
    summary = done.again.summary() | {
        "plan_id": plan_id, "stored_objective": done.stored.objective,
        "max_battery_diff_kw": done.max_diff_kw, "currency": config.tariff.currency,
        "out": str(out),
    }  # fmt: skip
    print(json.dumps(summary, indent=2))
    return 0


def cmd_import_history(args: argparse.Namespace) -> int:
    """Store metered load (and PV, grid) history for the daemon's first forecasts."""
    config = load_config(args.config)
    frame = read_history_csv(args.csv, config)
    with Store.from_config(config, daemon.state_dir()) as store:
        n = store.import_history(frame)
    days = (frame.index[-1] - frame.index[0]) / pd.Timedelta(days=1) if n else 0.0
    print(json.dumps({"rows": n, "from": frame.index[0].isoformat(),
                      "to": frame.index[-1].isoformat(), "days": round(days, 2),
                      "columns": list(frame.columns), "store": str(store.path)}))  # fmt: skip
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
        fit = read_calibration(args.pv_calibration)
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


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon in the foreground until SIGTERM/SIGINT."""
    config = load_site(args.config)
    checks.check_watchdog(config, watchdog_interval_s())
    daemon.setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    clock = None
    if args.clock_speed != 1.0 or args.clock_start:
        start = _aware_time(args.clock_start, "--clock-start") if args.clock_start else None
        clock = daemon.Clock(start, args.clock_speed)
    return daemon.run(config, clock)


def _aware_time(text: str, what: str) -> dt.datetime:
    """An ISO 8601 time with offset, else ``InputError``."""
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"{what} {text!r} is not ISO 8601: {exc}") from None
    if t.utcoffset() is None:
        raise InputError(f"{what} {text!r} needs a UTC offset, e.g. 2026-07-01T00:00+08:00")
    return t


def cmd_probe(args: argparse.Namespace) -> int:
    """Read every configured device once and print what it answers (never writes)."""
    config = load_site(args.config)
    if not config.devices:
        print("dispatch: no [[devices]] configured", file=sys.stderr)
        return EXIT_INPUT
    results = asyncio.run(probe(list(config.devices)))
    print(format_probe(results))
    return EXIT_INPUT if any(r.error for r in results) else 0


def cmd_commission(args: argparse.Namespace) -> int:
    """Walk each battery device through hold, charge, discharge, its revert timer and the
    handback at a small power; print the pass/fail table (exit 1 when a check fails)."""
    config = load_site(args.config)
    if not config.devices:
        print("dispatch: no [[devices]] configured", file=sys.stderr)
        return EXIT_INPUT
    s = commission.Settings(args.power_kw, args.timeout_s, args.revert_s, args.hold_s)
    checks = asyncio.run(commission.commission(list(config.devices), s))
    print(commission.format_checks(checks))
    return EXIT_INPUT if any(c.ok is False for c in checks) else 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write a time range of one store table to CSV."""
    config = load_config(args.config)
    start = _aware_time(args.start, "--from")
    end = _aware_time(args.end, "--to")
    with Store.from_config(config, daemon.state_dir()) as store:
        n = store.export_csv(args.table, start, end, args.out)
    print(json.dumps({"table": args.table, "rows": n, "out": str(args.out)}))
    return 0


def cmd_sim_device(args: argparse.Namespace) -> int:
    """Serve a simulated plant over Modbus TCP: replaces this process with
    ``python -m sim.server`` (``dispatch`` never imports ``sim``), so no child is left behind
    and SIGTERM / SIGKILL reach the simulator itself. It prints its address once bound."""
    load_site(args.config)  # a bad config or map is exit 78 here, before the exec
    try:
        found = importlib.util.find_spec("sim.server") is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        print("dispatch: sim-device needs the simulator (package 'sim'), which is not "
              "importable: reinstall factory-dispatch (it ships the sim package)", file=sys.stderr)
        return EXIT_INPUT
    cmd = [sys.executable, "-m", "sim.server", "--config", args.config, "--host", args.host,
           "--port", str(args.port), "--speed", str(args.speed)]  # fmt: skip
    if args.start:
        cmd += ["--start", _aware_time(args.start, "--start").isoformat()]
    for flag, value in SIM_FAULT_FLAGS:
        given = getattr(args, flag.removeprefix("--").replace("-", "_"))
        if value and given:
            cmd.append(flag)
        elif not value and given is not None:
            cmd += [flag, str(given)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, cmd)  # returns only by raising OSError
    return EXIT_INPUT  # pragma: no cover


# ``sim-device`` options handed to ``python -m sim.server``: (flag, is a switch)
SIM_FAULT_FLAGS = (
    ("--register-map", False),
    ("--pv-kw", False),
    ("--load-kw", False),
    ("--fault-not-following", True),
    ("--fault-frozen", True),
    ("--fault-state", True),
    ("--fault-mode-drop-s", False),
    ("--fault-delay-ms", False),
    ("--fault-writes-ignored", True),
    ("--fault-exception", False),
)


def cmd_sim_tool(args: argparse.Namespace) -> int:
    """``backtest`` / ``sweep``: run ``python -m sim.backtest_cli`` / ``sim.sweep`` in a child
    process with the same arguments (``dispatch`` never imports ``sim``); its exit code. The
    child says when the ``[sim]`` extra (matplotlib, dask) is missing (``sim.extra``)."""
    module = {"backtest": "sim.backtest_cli", "sweep": "sim.sweep"}[args.command]
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        print(f"dispatch: {args.command} needs the simulator ({module}), which is not "
              f"importable: {REINSTALL}", file=sys.stderr)
        return EXIT_INPUT
    cmd = [sys.executable, "-m", module]
    for name in ("scenario", "grid", "out", "days", "scheduler", "executor", "workers"):
        value = getattr(args, name, None)
        if value is not None:
            cmd += [f"--{name}", str(value)]
    if getattr(args, "strategies", None):
        cmd += ["--strategies", *args.strategies]
    return subprocess.run(cmd, check=False).returncode


def _add_sim_commands(sub: Any) -> None:
    """The ``backtest`` and ``sweep`` sub-commands (run the ``sim`` package as a child)."""
    bt = sub.add_parser("backtest", help="backtest a scenario's strategies and write a report")
    bt.add_argument("--scenario", required=True, help="scenario TOML (configs/scenarios/)")
    bt.add_argument("--out", required=True, help="output folder (kpis.csv, plots, report.html)")
    bt.add_argument("--days", type=int, help="only the first N days")
    bt.add_argument("--strategies", nargs="+", help="strategy names (see sim.strategies)")
    bt.set_defaults(func=cmd_sim_tool)
    sw = sub.add_parser("sweep", help="run a backtest grid in local processes or on Dask")
    sw.add_argument("--scenario", required=True, help="scenario TOML")
    sw.add_argument("--grid", required=True, help="grid TOML (axes, variants, strategies)")
    sw.add_argument("--out", required=True, help="output folder (sweep.csv)")
    sw.add_argument("--days", type=int, help="only the first N days")
    sw.add_argument("--scheduler", help="Dask scheduler address; default local processes")
    sw.add_argument("--executor", choices=["process", "dask", "serial"])
    sw.add_argument("--workers", type=int, help="local worker processes")
    sw.set_defaults(func=cmd_sim_tool)


def _add_daemon_commands(sub: Any) -> None:
    """The ``run``, ``import-history``, ``probe``, ``export`` and ``sim-device`` sub-commands."""
    run = sub.add_parser("run", help="run the dispatch daemon in the foreground")
    run.add_argument("--config", required=True, help="site configuration (TOML)")
    run.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    run.add_argument("--clock-speed", type=float, default=1.0,
                     help="clock seconds per real second (> 1 only against a simulator)")
    run.add_argument("--clock-start", help="clock time at start, ISO 8601 with offset")
    run.set_defaults(func=cmd_run)

    ih = sub.add_parser(
        "import-history", help="store metered load history for the daemon's first forecasts",
        description="CSV: time (ISO 8601 with offset, period start), p_load_kw, and "
        "optionally p_pv_kw and p_grid_kw (kW means per period, at a step that divides the "
        "plan step). Checked like `plan` inputs (gaps, duplicates, order, NaN, W for kW); "
        "refused when the store already holds readings inside its period.",
    )  # fmt: skip
    ih.add_argument("--config", required=True, help="site configuration (TOML); its [store]")
    ih.add_argument("--csv", required=True, help="the metered history")
    ih.set_defaults(func=cmd_import_history)

    pr = sub.add_parser("probe", help="read every configured device once and list its values")
    pr.add_argument("--config", required=True, help="site configuration (TOML)")
    pr.set_defaults(func=cmd_probe)

    cm = sub.add_parser("commission", help="walk each battery through hold, charge, discharge, "
                        "revert timer and handback at a small power; a pass/fail table")
    cm.add_argument("--config", required=True, help="site configuration (TOML)")
    cm.add_argument("--power-kw", type=float, default=None,
                    help="test power (default 5 %% of the smaller limit, at least 1 kW)")
    cm.add_argument("--timeout-s", type=float, default=10.0,
                    help="how long the measured power may take to follow (s, default 10)")
    cm.add_argument("--revert-s", type=float, default=10.0,
                    help="the revert timer to test (s, default 10)")
    cm.add_argument("--hold-s", type=float, default=5.0,
                    help="how long each followed power must hold (s, default 5)")
    cm.set_defaults(func=cmd_commission)

    ex = sub.add_parser("export", help="write a time range of a store table to CSV")
    ex.add_argument("--config", required=True, help="site configuration (TOML)")
    ex.add_argument("--table", required=True, help="measurements, setpoints, plans, events, ...")
    ex.add_argument("--from", dest="start", required=True, help="ISO 8601 with offset")
    ex.add_argument("--to", dest="end", required=True, help="ISO 8601 with offset (exclusive)")
    ex.add_argument("--out", required=True, help="CSV file to write")
    ex.set_defaults(func=cmd_export)

    sd = sub.add_parser("sim-device", help="serve a simulated plant over Modbus TCP (testing)")
    sd.add_argument("--config", required=True, help="site configuration (TOML)")
    sd.add_argument("--host", default="127.0.0.1")
    sd.add_argument("--port", type=int, default=5020, help="TCP port (0: any; it is printed)")
    sd.add_argument("--speed", type=float, default=1.0, help="plant seconds per real second")
    sd.add_argument("--start", help="plant time at start, ISO 8601 with offset (default now)")
    sd.add_argument("--register-map", help="serve this map instead of devices[0]'s (or sunspec)")
    sd.add_argument("--pv-kw", type=float, help="constant PV (kW) instead of clear sky")
    sd.add_argument("--load-kw", type=float, help="constant load (kW) instead of the profile")
    f = sd.add_argument_group("fault injection")
    f.add_argument("--fault-not-following", action="store_true",
                   help="writes stick in the registers but the battery does not follow")
    f.add_argument("--fault-frozen", action="store_true", help="measurements stop updating")
    f.add_argument("--fault-state", action="store_true",
                   help="the running-state fields report a fault (a tripped converter)")
    f.add_argument("--fault-mode-drop-s", type=float, metavar="S",
                   help="a local operator resets the control mode S s after each command")
    f.add_argument("--fault-delay-ms", type=float, metavar="MS", help="delay every answer")
    f.add_argument("--fault-writes-ignored", action="store_true",
                   help="answer writes but store zeros")
    f.add_argument("--fault-exception", type=int, metavar="CODE",
                   help="answer every request with this Modbus exception code")
    sd.set_defaults(func=cmd_sim_device)


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
    plan.add_argument("--inputs", help="per-slot input CSV")
    plan.add_argument("--stored", type=int, metavar="PLAN_ID",
                      help="instead of --inputs: solve the daemon's stored plan PLAN_ID again "
                      "from its stored inputs and forecast, and say how it compares")
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
    _add_daemon_commands(sub)
    _add_sim_commands(sub)
    carbon_cli.add_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (ConfigError, StoreOpenError) as exc:  # a person must fix these: systemd must not retry
        print(f"dispatch: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except DispatchError as exc:
        print(f"dispatch: {exc}", file=sys.stderr)
        return EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())
