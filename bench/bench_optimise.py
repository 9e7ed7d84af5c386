"""Re-solve time of the dispatch optimiser against raw HiGHS on the same LP, same run.

For each horizon, a receding-horizon sequence of instances (the window moves one slot per
solve over a synthetic factory week with seeded noise) is solved by:

- ours: ``DispatchModel.solve`` (everything: inputs, parameters, solve, plan frame, costs);
- raw cold: the same LP built directly as sparse matrices (bench/reference_lp.py), a new HiGHS
  model per solve (``passModel`` + ``run``; matrix building not timed), with dual simplex up to
  700 slots and interior point beyond (dual simplex from scratch takes seconds there);
- raw hot: one persistent HiGHS model whose costs and bounds are updated per solve, re-solved
  with simplex from the previous basis (its first solve is not timed).

``ours_simplex`` / ``ours_ipm`` force the method, to show why ``auto`` picks what it picks
(their first solve, the compile, is not timed either).

Prints median milliseconds and the ratios ours/cold and ours/hot. Objectives are checked to agree.
Run: ``python -m bench.bench_optimise [--solves N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from bench import reference_lp as ref
from dispatch.config import SiteConfig, load_config
from dispatch.optimise import DispatchModel, solver_path
from dispatch.types import Forecast

HORIZONS = ((15, 96), (15, 192), (15, 288), (15, 672), (5, 288), (5, 2016))


def synthetic_series(step_min: int, n: int, seed: int) -> pd.DataFrame:
    """A factory-like load, PV, price and intensity series (kW, CNY/kWh, g/kWh)."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2026-06-01", periods=n, freq=f"{step_min}min", tz="UTC")
    hour = (idx.hour + idx.minute / 60 + 8) % 24  # Asia/Shanghai local hour
    workday = np.asarray((idx + pd.Timedelta(hours=8)).day_of_week < 5)
    shift = np.asarray((hour >= 8) & (hour < 20))
    load = 2500 + 3500 * shift * np.where(workday, 1.0, 0.3) + rng.normal(0, 300, n)
    pv = 7100 * 0.8 * np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None)
    pv = pv * rng.uniform(0.5, 1.0, n)
    price = np.select(
        [hour < 8, (hour >= 8) & (hour < 11) | (hour >= 17) & (hour < 22)], [0.28, 1.08], 0.64
    )
    ci = 570 + 80 * np.cos(hour / 24 * 2 * np.pi) + rng.normal(0, 10, n)
    return pd.DataFrame(
        {
            "p_pv_kw": pv,
            "p_load_kw": np.maximum(load, 0),
            "price_import_per_kwh": price,
            "price_export_per_kwh": 0.0,
            "ci_g_per_kwh": ci,
        },
        index=idx,
    )


def site_config(step_min: int, n_slots: int, solver: str) -> SiteConfig:
    cfg = load_config("configs/suzhou-factory.toml")
    plan = cfg.plan.model_copy(
        update={"step_min": step_min, "horizon_h": n_slots * step_min / 60, "solver": solver}
    )
    return cfg.model_copy(update={"plan": plan})


def reference_instance(cfg: SiteConfig, frame: pd.DataFrame, soc: float, peak: float) -> ref.Lp:
    inst = ref.Instance(
        dt_h=cfg.plan.step_min / 60,
        pv_kw=frame["p_pv_kw"].to_numpy(),
        load_kw=frame["p_load_kw"].to_numpy(),
        price_import=frame["price_import_per_kwh"].to_numpy(),
        price_export=frame["price_export_per_kwh"].to_numpy(),
        ci_g_per_kwh=frame["ci_g_per_kwh"].to_numpy(),
        month=np.full(len(frame), "m"),
        peak_kw={"m": peak},
        soc0_frac=soc,
        terminal_frac=soc,
    )
    return ref.build(ref.site_from_config(cfg), inst)


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1e3


def run_horizon(step_min: int, n_slots: int, solves: int) -> dict[str, float | str]:
    series = synthetic_series(step_min, n_slots + solves, seed=n_slots + step_min)
    windows = [series.iloc[i : i + n_slots] for i in range(solves)]
    soc, peak = 0.5, 4000.0
    _, method = solver_path("auto", n_slots)
    cold_method = "simplex" if method == "simplex" else "ipm"
    row: dict[str, float | str] = {"step_min": step_min, "slots": n_slots, "method": method}
    for label, solver in (
        ("ours", "auto"),
        ("ours_simplex", "highs-simplex"),
        ("ours_ipm", "highs-ipm"),
    ):
        model = DispatchModel(site_config(step_min, n_slots, solver))
        model.solve(Forecast(windows[0]), soc, peak_so_far_kw=peak)  # compile once
        times, objectives = [], []
        for w in windows:
            t0 = time.perf_counter()
            plan = model.solve(Forecast(w), soc, peak_so_far_kw=peak)
            times.append(time.perf_counter() - t0)
            objectives.append(plan.objective)
        row[label] = median_ms(times)
        if label == "ours":
            ours_obj = objectives
    cfg = site_config(step_min, n_slots, "auto")
    lps = [reference_instance(cfg, w, soc, peak) for w in windows]
    cold, cold_obj = [], []
    for lp in lps:
        t0 = time.perf_counter()
        obj, _ = ref.solve_cold(lp, cold_method)
        cold.append(time.perf_counter() - t0)
        cold_obj.append(obj)
    hot_model = ref.HotReference(lps[0], "simplex")
    hot_model.solve(lps[0])
    hot = []
    for lp in lps:
        t0 = time.perf_counter()
        hot_model.solve(lp)
        hot.append(time.perf_counter() - t0)
    row["raw_cold"] = median_ms(cold)
    row["raw_hot"] = median_ms(hot)
    row["ours/cold"] = row["ours"] / row["raw_cold"]  # type: ignore[operator]
    row["ours/hot"] = row["ours"] / row["raw_hot"]  # type: ignore[operator]
    row["max_rel_obj_diff"] = max(
        abs(a - b) / max(1.0, abs(b)) for a, b in zip(ours_obj, cold_obj, strict=True)
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solves", type=int, default=25, help="re-solves per horizon")
    args = parser.parse_args()
    rows = []
    for step_min, n_slots in HORIZONS:
        solves = args.solves if n_slots <= 700 else max(5, args.solves // 5)
        rows.append(run_horizon(step_min, n_slots, solves))
        print(f"done {n_slots} x {step_min} min", flush=True)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.float_format", "{:.3g}".format):
        print("median re-solve time (ms), ours = DispatchModel.solve, raw = highspy on the same LP")
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
