"""Parameter sweeps of backtests, in local processes or on a Dask cluster.

Role: expand a grid (site-config overrides crossed with named variants) into points, run each
point's strategies on the scenario and gather the KPI rows into one frame. Every point loads
the scenario itself from its path, so a cluster only needs the project installed and the same
data path on each machine (``$SHARED_DATA``); no change to the scenario files. Depends on
``sim.scenario``, ``sim.strategies``, ``sim.kpis``, ``dispatch.config``; Dask lazily, through
``sim.extra`` (the ``[sim]`` extra).

A grid TOML::

    strategies = ["no_battery", "receding_perfect", "perfect_foresight"]
    days = 7                              # optional: only the scenario's first N days

    [axes]                                # dotted site-config keys -> values (crossed)
    "battery.energy_kwh" = [7775.0, 15550.0]
    "battery.power_kw" = [1500.0, 3000.0]  # sets charge_max_kw and discharge_max_kw
    "carbon.price_per_kg" = [0.0, 0.08]

    [[variants]]                          # tariff variants (any overrides), crossed with the axes
    name = "base"
    [[variants]]
    name = "double-demand"
    overrides = { tariff = { demand_charge_per_kw_month = 20.0 } }

Run: ``python -m sim.sweep --scenario S --grid grid.toml --out DIR [--scheduler ADDR |
--executor dask|process|serial] [--workers N]``; writes ``DIR/sweep.csv``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from dispatch.config import SiteConfig, parse_config
from sim.extra import MissingExtraError, require
from sim.kpis import kpi_table
from sim.scenario import Scenario, load_scenario
from sim.strategies import DEFAULT_STRATEGIES, ProgressLine, run_strategy

ALIASES = {"battery.power_kw": ("battery.charge_max_kw", "battery.discharge_max_kw")}


class Variant(BaseModel):
    """A named set of site-config overrides (nested tables, like the site TOML)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    overrides: dict[str, Any] = {}


class GridSpec(BaseModel):
    """A sweep grid file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    strategies: list[str] = list(DEFAULT_STRATEGIES)
    days: int | None = Field(None, ge=1)
    axes: dict[str, list[Any]] = {}
    variants: list[Variant] = [Variant(name="base")]


@dataclasses.dataclass(frozen=True)
class Point:
    """One grid point: ``params`` (axis key -> value, plus ``variant``) and nested overrides."""

    label: str
    params: dict[str, Any]
    overrides: dict[str, Any]


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        tree = tree.setdefault(p, {})
    tree[leaf] = value


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge of nested dicts; ``update`` wins; lists and values are replaced."""
    out = dict(base)
    for k, v in update.items():
        out[k] = merge(out[k], v) if isinstance(v, Mapping) and isinstance(
            out.get(k), Mapping) else v  # fmt: skip
    return out


def grid_points(grid: GridSpec) -> list[Point]:
    """Every point of the grid: the product of the axes, crossed with the variants."""
    keys = list(grid.axes)
    points = []
    for values in itertools.product(*(grid.axes[k] for k in keys)):
        for variant in grid.variants:
            overrides: dict[str, Any] = {}
            for key, value in zip(keys, values, strict=True):
                for target in ALIASES.get(key, (key,)):
                    _set(overrides, target, value)
            overrides = merge(overrides, variant.overrides)
            params = dict(zip(keys, values, strict=True)) | {"variant": variant.name}
            label = " ".join(f"{k}={v}" for k, v in params.items())
            points.append(Point(label, params, overrides))
    return points


def apply_overrides(config: SiteConfig, overrides: Mapping[str, Any]) -> SiteConfig:
    """The site config with nested ``overrides`` applied and validated again.

    Raises
    ------
    ConfigError
        When an override names an unknown key or breaks a check.
    """
    if not overrides:
        return config
    return parse_config(merge(config.model_dump(exclude_unset=True), overrides), "sweep override")


def first_days(scenario: Scenario, days: int | None) -> Scenario:
    """The scenario cut to its first ``days`` days (all of it for None)."""
    if not days:
        return scenario
    per_day = round(24 * 60 / scenario.config.plan.step_min)
    return dataclasses.replace(scenario, data=scenario.data.iloc[: days * per_day])


def run_point(scenario_path: str, point: Point, strategies: Sequence[str],
              days: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Run one grid point; its KPI rows (``sim.kpis.kpi_table``) with the point's params.

    Runs wherever it is called (a worker process or a Dask worker): it loads the scenario.
    """
    sc = first_days(load_scenario(scenario_path), days)
    sc = dataclasses.replace(sc, config=apply_overrides(sc.config, point.overrides))
    outcomes = [run_strategy(name, sc) for name in strategies]
    table = kpi_table(outcomes, sc.config)
    for key, value in reversed(point.params.items()):
        table.insert(0, key, value)
    table.insert(0, "point", point.label)
    return table.to_dict("records")


Tick = Callable[[int, int], None]
Results = list[list[dict[str, Any]]]


def _serial(path: str, points: Sequence[Point], strategies: Sequence[str], days: int | None,
            progress: Tick) -> Results:  # fmt: skip
    """Every point in this process, in order."""
    out = []
    for k, p in enumerate(points):
        out.append(run_point(path, p, strategies, days))
        progress(k + 1, len(points))
    return out


def _processes(path: str, points: Sequence[Point], strategies: Sequence[str],
               days: int | None, progress: Tick, workers: int | None) -> Results:  # fmt: skip
    """Every point in a local process pool; results in point order."""
    results: list[Any] = [None] * len(points)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_point, path, p, strategies, days): k
                   for k, p in enumerate(points)}  # fmt: skip
        for done, fut in enumerate(as_completed(futures), start=1):
            results[futures[fut]] = fut.result()
            progress(done, len(points))
    return results


def _dask(path: str, points: Sequence[Point], strategies: Sequence[str], days: int | None,
          progress: Tick, scheduler: Any, workers: int | None) -> Results:  # fmt: skip
    """Every point on a Dask cluster (``scheduler``: address or cluster; None: a new
    ``LocalCluster``); results in point order."""
    distributed = require("distributed", "a sweep on Dask")
    cluster = None
    if scheduler is None:  # the embedded default: a local cluster of worker processes
        cluster = distributed.LocalCluster(n_workers=workers or 2, threads_per_worker=1,
                               processes=True, dashboard_address=None)  # fmt: skip
    try:
        with distributed.Client(scheduler or cluster) as client:
            futures = [client.submit(run_point, path, p, strategies, days, pure=False)
                       for p in points]  # fmt: skip
            index = {f.key: k for k, f in enumerate(futures)}
            results: list[Any] = [None] * len(points)
            for done, fut in enumerate(distributed.as_completed(futures), start=1):
                results[index[fut.key]] = fut.result()
                progress(done, len(points))
            return results
    finally:
        if cluster is not None:
            cluster.close()


def run_sweep(scenario_path: str | Path, grid: GridSpec, executor: str = "process",
              scheduler: str | Any | None = None, workers: int | None = None,
              progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:  # fmt: skip
    """Run every point of ``grid`` and gather the KPI rows into one frame.

    Parameters
    ----------
    scenario_path : str or Path
        Scenario TOML (each worker loads it).
    grid : GridSpec
        Axes, variants, strategies and days.
    executor : {"process", "dask", "serial"}
        Local process pool, Dask (a ``LocalCluster`` unless ``scheduler`` is given) or in
        this process.
    scheduler : str or distributed.LocalCluster, optional
        A Dask scheduler address (``tcp://host:8786``) or cluster; implies ``"dask"``.
    workers : int, optional
        Local worker processes (default: the machine's cores, two for a ``LocalCluster``).
    progress : callable, optional
        ``progress(points_done, points_total)``.

    Returns
    -------
    pandas.DataFrame
        ``point``, one column per axis and ``variant``, then the KPI columns; a row per point,
        strategy and billing month (and ``total``).
    """
    path, points = str(Path(scenario_path).resolve()), grid_points(grid)
    tick = progress or (lambda done, total: None)
    args = (path, points, grid.strategies, grid.days, tick)
    if scheduler is not None or executor == "dask":
        results = _dask(*args, scheduler, workers)
    elif executor == "process":
        results = _processes(*args, workers)
    elif executor == "serial":
        results = _serial(*args)
    else:
        raise ValueError(f"executor {executor!r}: use 'process', 'dask' or 'serial'")
    return pd.DataFrame([row for rows in results for row in rows])


def load_grid(path: str | Path) -> GridSpec:
    """Read a grid TOML (see the module docstring)."""
    return GridSpec.model_validate(tomllib.loads(Path(path).read_text(encoding="utf-8")))


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.sweep``: run a grid and write ``sweep.csv``; returns the exit code."""
    ap = argparse.ArgumentParser(prog="python -m sim.sweep", description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", required=True, help="scenario TOML")
    ap.add_argument("--grid", required=True, help="grid TOML (axes, variants, strategies)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--scheduler", default=None, help="Dask scheduler address (tcp://...)")
    ap.add_argument("--executor", choices=("process", "dask", "serial"), default="process")
    ap.add_argument("--workers", type=int, default=None, help="local worker processes")
    ap.add_argument("--days", type=int, default=None, help="override the grid's days")
    args = ap.parse_args(argv)
    try:
        grid = load_grid(args.grid)
        if args.days:
            grid = grid.model_copy(update={"days": args.days})
        n = len(grid_points(grid))
        print(f"sweep: {n} points x {len(grid.strategies)} strategies", file=sys.stderr)
        table = run_sweep(args.scenario, grid, args.executor, args.scheduler, args.workers,
                          ProgressLine("sweep", unit="points"))  # fmt: skip
    except MissingExtraError as exc:
        print(f"sweep: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the CLI boundary: one line, non-zero exit
        print(f"sweep: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "sweep.csv", index=False)
    totals = table[table["month"] == "total"]
    cols = [c for c in ("point", "strategy", "total_cost", "kg_co2", "share_of_bound")
            if c in totals]  # fmt: skip
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(totals[cols].to_string(index=False))
    print(f"wrote {out / 'sweep.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
