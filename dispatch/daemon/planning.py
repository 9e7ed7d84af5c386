"""The forecast and plan jobs: slow work in a worker thread, published by reference swap.

Role: the forecast job makes clear-sky PV plus a load forecast from the store's measured
history (or the configured constant) over a window longer than the horizon, with the day-ahead
prices where the tariff needs them (``prices``: published, else forecast), publishes it and
stores it with its prices, quantiles and load paths; on failure it keeps the last good
forecast, or falls back to a constant load, and says so. The plan job
slices the forecast from the current slot, completes it with the tariff and carbon intensity
and solves with the measured SoC and the month's peak, all in the solver thread, then stores
the plan and swaps ``Daemon.plan_state``. Imports ``pipeline``, ``types`` and this package.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import TYPE_CHECKING

import pandas as pd

from dispatch import pipeline
from dispatch.daemon.state import ForecastState, PlanState, billing_month_of
from dispatch.types import DispatchError, Plan

if TYPE_CHECKING:
    from dispatch.daemon.core import Daemon

log = logging.getLogger("dispatch.daemon")


def slot_index(d: Daemon, start: dt.datetime, n: int) -> pd.DatetimeIndex:
    """``n`` UTC slot starts from the plan slot containing ``start``."""
    step = pd.Timedelta(minutes=d.config.plan.step_min)
    first = pd.Timestamp(start).tz_convert("UTC").floor(step)
    return pd.date_range(first, periods=n, freq=step)


def forecast_slots(d: Daemon) -> int:
    """Slots a forecast covers: the horizon plus the refresh period and an hour of margin."""
    f = d.config.forecast
    extra = math.ceil((f.refresh_min + 60.0) / d.config.plan.step_min)
    return d.config.plan.n_slots + extra


def load_history_kw(d: Daemon, now: dt.datetime) -> pd.Series:
    """Measured site load (kW) from the store, as plan-step means before ``now``."""
    start = now - dt.timedelta(days=d.config.forecast.history_days)
    rows = d.store.rows("measurements", start, now)
    times = pd.to_datetime([r["time_ms"] for r in rows], unit="ms", utc=True)
    s = pd.Series([r["p_load_kw"] for r in rows], index=times, dtype=float).dropna()
    if s.empty:
        return s
    return s.resample(pd.Timedelta(minutes=d.config.plan.step_min)).mean().dropna()


def build_forecast(d: Daemon, now: dt.datetime) -> ForecastState:
    """A forecast from ``now`` (runs in the worker thread); never raises for missing history:
    a load fallback is named in ``source``. Unusable day-ahead prices raise (InputError,
    SourceError): the last good forecast stands until it no longer covers the horizon."""
    index = slot_index(d, now, forecast_slots(d))
    fs = _pv_and_load(d, now, index)
    if d.prices is not None:  # no fallback: a plan without prices would be priced wrong
        fs.frame[pipeline.DAY_AHEAD_COLUMN] = d.prices.on(index, pd.Timestamp(now)).to_numpy()
    return fs


def _pv_and_load(d: Daemon, now: dt.datetime, index: pd.DatetimeIndex) -> ForecastState:
    const = d.config.forecast.load_kw
    if const is not None:
        frame = pipeline.forecast_frame(d.config, index, load_kw=const)
        return ForecastState(frame, now, f"clear-sky pv; constant load {const:g} kW")
    history = load_history_kw(d, now)
    try:
        frame = pipeline.forecast_frame(d.config, index, load_history_kw=history)
        return ForecastState(frame, now, f"clear-sky pv; load history {len(history)} slots")
    except (DispatchError, ValueError, KeyError, IndexError) as exc:
        level = float(history.tail(4).mean()) if len(history) else d.last_load_kw()
        frame = pipeline.forecast_frame(d.config, index, load_kw=level)
        return ForecastState(frame, now, f"fallback: constant load {level:.1f} kW ({exc})")


async def forecast_job(d: Daemon) -> ForecastState:
    """Make a new forecast in the worker thread, publish it and store it."""
    now = d.clock.now()
    fs = await d.in_worker(build_forecast, d, now)
    d.forecast_state = fs
    d.metrics.data_age.labels("forecast").set(0.0)
    if fs.is_fallback:
        log.warning("forecast: %s", fs.source)
    try:
        forecast = await d.in_worker(pipeline.complete_forecast, d.config, fs.frame)
        await d.in_store(d.store.write_forecast, forecast, fs.issued_at, fs.source)
        d.failures.ok("store:forecast")
    except DispatchError as exc:  # the published forecast stands; the record is lost
        d.failures.failed("store:forecast", str(exc), exc)
    return fs


def horizon_frame(d: Daemon, now: dt.datetime) -> pd.DataFrame | None:
    """The published forecast on the plan horizon from the current slot, or None when it
    does not cover it."""
    fs = d.forecast_state
    if fs is None:
        return None
    index = slot_index(d, now, d.config.plan.n_slots)
    prefixes = (pipeline.LOAD_QUANTILE_PREFIX, pipeline.LOAD_SCENARIO_PREFIX)
    extra = [c for c in fs.frame.columns
             if c.startswith(prefixes) or c == pipeline.DAY_AHEAD_COLUMN]  # fmt: skip
    frame = fs.frame[["p_pv_kw", "p_load_kw", *extra]]
    if not index.isin(frame.index).all():
        return None
    return frame.loc[index]


def solve(d: Daemon, frame: pd.DataFrame, soc: float | None, peaks: dict[str, float]) -> Plan:
    """Complete the forecast and solve (worker thread; the model is not shared)."""
    forecast = pipeline.complete_forecast(d.config, frame)
    return pipeline.plan(d.model, forecast, soc, peaks)


def peak_target(d: Daemon, plan: Plan, now: dt.datetime) -> float | None:
    """The import the guard holds this month (kW): the plan's peak target for the month (with
    its reserve for load above the forecast), never below the month's peak so far; None
    without a demand charge."""
    if d.config.tariff.demand_charge_per_kw_month <= 0:
        return None
    month = billing_month_of(now, d.config.billing_timezone)
    months = plan.frame.index.tz_convert(d.config.billing_timezone).strftime("%Y-%m")
    planned = plan.frame[["p_import_kw", "peak_target_kw"]][months == month].to_numpy()
    return max(d.month_peak_kw(month), float(planned.max()) if len(planned) else 0.0)


async def plan_job(d: Daemon) -> PlanState:
    """Solve from the current slot and publish the plan."""
    now = d.clock.now()
    frame = horizon_frame(d, now)
    if frame is None:
        log.warning("plan: the forecast does not cover the horizon; forecasting now")
        await forecast_job(d)
        frame = horizon_frame(d, now)
        if frame is None:
            raise DispatchError("plan: no forecast covers the horizon")
    snap = d.last_cycle.snapshot if d.last_cycle is not None else None
    soc = snap.soc_frac if snap is not None and snap.ok else None
    month = billing_month_of(now, d.config.billing_timezone)
    plan = await d.in_worker(solve, d, frame, soc, {month: d.month_peak_kw(month)})
    issued = d.clock.now()
    try:
        plan_id: int | None = await d.in_store(d.store.write_plan, plan, issued)
    except DispatchError as exc:
        d.failures.failed("store:plan", str(exc), exc)
        plan_id = None
    assert d.forecast_state is not None
    ps = PlanState(plan, plan_id, issued, peak_target(d, plan, now), d.forecast_state.source)
    d.plan_state = ps
    d.metrics.plan(plan.status, plan.solve_ms)
    level = logging.WARNING if plan.is_fallback else logging.INFO
    log.log(level, "plan %s: %s, %d slots from %s, %.1f ms%s", plan_id, plan.status,
            len(plan.frame), plan.frame.index[0].isoformat(), plan.solve_ms,
            f" ({plan.message})" if plan.message else "")  # fmt: skip
    return ps
