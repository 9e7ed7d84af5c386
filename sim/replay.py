"""Our controller in a replay: the daemon's own jobs on a simulated clock, the plant behind
the device interface.

Role: the one strategy that stands for our controller in every backtest. It builds the
daemon's ``Services`` and ``SiteState`` (``dispatch.daemon.runtime``, ``restore``) with

- a simulated clock set to each slot's start,
- the in-process plant (``sim.plant_device.PlantDevice``) as the only device,
- a real store (SQLite file, not synced to disk: a replay need not survive a power cut),
- the feeds built on the scenario's recorded series: day-ahead prices cut at publication
  and forecast beyond by the daemon's own ``DayAheadPrices``; a measured intensity series
  known up to each slot; PV from the plant's own measurements (``forecast.pv_source =
  "persistence"``: a replay has no weather forecasts of its past),

and calls, each slot, exactly what the scheduler calls: ``planning.plan_job`` (it reads the
plant, forecasts, solves and publishes) and ``cycle.control_cycle`` (reads, decides, writes,
stores); then the plant runs the slot. No forecast, margin or control logic of its own.
Depends on ``dispatch`` (daemon, store, optimise) and ``sim`` (plant, scenario, backtest).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from dispatch.config import SiteConfig
from dispatch.daemon import cycle, planning
from dispatch.daemon.feeds import Feeds, IntensityFeed, WeatherFeed
from dispatch.daemon.logs import FailureLog
from dispatch.daemon.metrics import Metrics
from dispatch.daemon.prices import DayAheadPrices
from dispatch.daemon.restore import restore
from dispatch.daemon.runtime import Services, SiteState
from dispatch.optimise import DispatchModel
from dispatch.optimise.outcome import SlotInputs
from dispatch.store import Store
from dispatch.types import Plan
from sim.backtest import Meter, Outcome, outcome_of, period_inputs
from sim.plant import Plant, PlantOptions
from sim.plant_device import PlantDevice
from sim.scenario import Scenario

#: The replay's name for our controller.
NAME = "receding_robust"


class SimClock:
    """A clock the replay sets: ``now`` (tz-aware UTC) and monotonic seconds since start."""

    def __init__(self, start: dt.datetime) -> None:
        self.start = self.t = start
        self.speed = 1.0

    def now(self) -> dt.datetime:
        return self.t

    def monotonic(self) -> float:
        return (self.t - self.start).total_seconds()


class RecordingModel(DispatchModel):
    """``DispatchModel`` that keeps every solve's inputs and per-slot reserve (kWh), for the
    bench's reference LPs."""

    def __init__(self, config: SiteConfig) -> None:
        super().__init__(config)
        self.solved: list[tuple[SlotInputs, np.ndarray]] = []

    def solve_inputs(self, x: SlotInputs, caps: dict[str, np.ndarray] | None = None) -> Plan:
        self.reserve_used_kwh = None
        plan = super().solve_inputs(x, caps)
        reserve = self.reserve_used_kwh
        self.solved.append((x, self.reserve_kwh(x)[0] if reserve is None else reserve))
        return plan


def replay_config(config: SiteConfig) -> SiteConfig:
    """The site as a replay runs it: PV forecast by persistence from the plant's own
    measurements (no archive of past weather forecasts); everything else as configured."""
    forecast = config.forecast.model_copy(update={"pv_source": "persistence"})
    return config.model_copy(update={"forecast": forecast})


def _reader(series: pd.Series, column: str) -> Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame]:
    """A feed's ``read`` over a recorded series: what the source holds for ``[start, end)``
    (the feed cuts it to what was known)."""
    frame = series.rename(column).to_frame()
    index = frame.index
    if not (isinstance(index, pd.DatetimeIndex) and index.is_monotonic_increasing):
        return lambda start, end: frame[(frame.index >= start) & (frame.index < end)]
    ns = index.as_unit("ns").asi8  # sorted: the rows of [start, end) by two binary searches

    def read(start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        lo, hi = np.searchsorted(ns, [pd.Timestamp(start).value, pd.Timestamp(end).value])
        return frame.iloc[lo:hi].copy()

    return read


def recorded_feeds(config: SiteConfig, data: pd.DataFrame) -> Feeds:
    """The daemon's feeds on a scenario's series (see the module docstring)."""
    day_ahead = None
    if config.uses_day_ahead:
        day_ahead = DayAheadPrices(config, _reader(data["day_ahead_per_kwh"], "price_per_kwh"))
    ci = _reader(data["ci_g_per_kwh"], "ci_g_per_kwh") if "ci_g_per_kwh" in data else None
    return Feeds(WeatherFeed(config), IntensityFeed(config, ci), day_ahead)


@dataclass
class DaemonRun:
    """A replay's daemon, its plant and what each slot did."""

    services: Services
    state: SiteState
    plant: Plant
    model: RecordingModel
    targets_kw: np.ndarray


def build(scenario: Scenario, store_path: Path, soc_initial_frac: float) -> DaemonRun:
    """The daemon's services and state for ``scenario`` over a fresh plant and store."""
    config = replay_config(scenario.config)
    start = scenario.data.index[0].to_pydatetime()
    options = PlantOptions(derate_band_frac=0.0, standby_loss_frac_per_h=0.0,
                           soc_initial_frac=soc_initial_frac)  # fmt: skip
    plant = Plant(config, options, start=start)
    clock = SimClock(start)
    sv = Services(config, clock, [PlantDevice(plant, config, clock.now)],  # type: ignore[list-item]
                  Store(store_path, durable=False), recorded_feeds(config, scenario.data),
                  Metrics(), FailureLog())  # fmt: skip
    model = RecordingModel(config)
    return DaemonRun(sv, restore(sv, model), plant, model, np.full(len(scenario.data), np.nan))


async def _run(run: DaemonRun, pv_kw: np.ndarray, load_kw: np.ndarray, index: pd.DatetimeIndex,
               meter: Callable[[int], None], progress: Callable[[int, int], None] | None) -> None:
    sv, st, clock = run.services, run.state, run.services.clock
    dt_s = (index[1] - index[0]).total_seconds()
    for i, t in enumerate(index):
        now = t.to_pydatetime()
        clock.t = now  # type: ignore[attr-defined]
        run.plant.step(now, 0.0, pv_kw[i], load_kw[i])  # the slot's load and PV as it starts
        ps = await planning.plan_job(sv, st)
        await cycle.control_cycle(sv, st)
        run.plant.step(now, dt_s, pv_kw[i], load_kw[i])
        meter(i)
        if ps.peak_target_kw is not None:
            run.targets_kw[i] = ps.peak_target_kw
        if progress is not None:
            progress(i + 1, len(index))


def daemon_replay(
    scenario: Scenario,
    progress: Callable[[int, int], None] | None = None,
    store_path: str | Path | None = None,
) -> tuple[Outcome, DaemonRun]:
    """Replay ``scenario`` with our controller: the daemon's jobs (module docstring).

    Parameters
    ----------
    scenario : Scenario
        Site and data; the plant gets the data's load and PV, the feeds its prices and
        intensity.
    progress : callable, optional
        ``progress(slots_done, slots_total)`` after every slot.
    store_path : str or Path, optional
        Where the daemon's store goes (kept for inspection); a temporary file by default.

    Returns
    -------
    tuple of (Outcome, DaemonRun)
        The outcome as every strategy's (``sim.backtest.Outcome``), and the run (its store,
        state and the recorded solves).
    """
    t0 = time.perf_counter()
    x = period_inputs(scenario)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(store_path) if store_path is not None else Path(tmp) / "replay.sqlite3"
        run = build(scenario, path, scenario.soc_initial_frac)
        meter = Meter.zeros(len(x.index))
        asyncio.run(_run(run, x.pv_kw, x.load_kw, x.index,
                         lambda i: meter.record(i, run.plant.state, x.dt_h), progress))
        run.services.store.close()
    out = outcome_of(NAME, scenario, x, meter, t0)
    if np.isfinite(run.targets_kw).any():
        out.frame["peak_target_kw"] = run.targets_kw
    return replace(out, wall_s=time.perf_counter() - t0), run
