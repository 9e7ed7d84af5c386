"""The plan job: a forecast when one is due, then a plan from the measured state, published.

Role: the planning half of the one path. Every plan step (aligned to the clock) the scheduler
calls ``plan_job``; a replay calls it on its simulated clock. It

1. closes the history's finished slots (the month's peak follows them, ``runtime.settle``);
2. takes a fresh reading of every device, unless the last control cycle's is young enough,
   so the plan starts from the measured SoC (also the first plan after a (re)start);
3. makes a new forecast when ``forecast.refresh_min`` has passed (every plan by default):
   the load and PV history from memory, the feeds (weather, prices, intensity), the error
   book's margin (``pipeline.site_forecast``); stores it; a forecast that fails leaves the
   last good one in force while it still covers the horizon;
4. solves the horizon from the current slot with the SoC, the month's peak so far and the
   guard's target in force (``PlanInputs``, stored with the plan), and publishes the plan
   with the month's peak target for the guard. In warm-up (too little measured load for a
   forecast) no target comes from the plan: the guard holds the month's measured peak, or
   only the import cap while there is none, and the plan may not import above the larger of
   that peak and the net load measured now (``warmup_cap_kw``).

Imports ``pipeline``, ``types`` and this package (never ``core``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math

import numpy as np
import pandas as pd

from dispatch import pipeline, tariff
from dispatch.daemon import cycle
from dispatch.daemon.runtime import (
    Services,
    SiteState,
    month_peak_kw,
    pv_history_kw,
    settle,
    store_event,
)
from dispatch.daemon.state import ForecastState, PlanInputs, PlanState, billing_month_of
from dispatch.forecast.intraday import recent_slots
from dispatch.pipeline.forecast import (
    DAY_AHEAD_COLUMN,
    LOAD_QUANTILE_PREFIX,
    LOAD_SCENARIO_PREFIX,
    net_load_kw,
)
from dispatch.types import DispatchError, Forecast, Plan, Snapshot

log = logging.getLogger("dispatch.daemon")


def step_of(sv: Services) -> pd.Timedelta:
    """The plan step."""
    return pd.Timedelta(minutes=sv.config.plan.step_min)


def slot_index(sv: Services, start: dt.datetime, n: int) -> pd.DatetimeIndex:
    """``n`` UTC slot starts from the plan slot containing ``start``."""
    first = pd.Timestamp(start).tz_convert("UTC").floor(step_of(sv))
    return pd.date_range(first, periods=n, freq=step_of(sv))


def refresh(sv: Services) -> pd.Timedelta:
    """How often a new forecast is made (the plan step by default)."""
    minutes = sv.config.forecast.refresh_min
    return step_of(sv) if minutes is None else pd.Timedelta(minutes=minutes)


def forecast_slots(sv: Services) -> int:
    """Slots a forecast covers: the horizon plus the refresh period."""
    return sv.config.plan.n_slots + math.ceil(refresh(sv) / step_of(sv))


def forecast_due(sv: Services, fs: ForecastState | None, now: dt.datetime) -> bool:
    """Whether a new forecast is due: none yet, or ``refresh`` passed, counted in whole
    slots (a plan job that fires a moment early still forecasts)."""
    if fs is None:
        return True
    step = step_of(sv)
    slots = (pd.Timestamp(now).floor(step) - pd.Timestamp(fs.issued_at).floor(step)) / step
    return slots * step >= refresh(sv)


def make_forecast(sv: Services, st: SiteState, now: dt.datetime, load_kw: pd.Series,
                  pv_kw: pd.Series, load_now_kw: float | None = None) -> ForecastState:  # fmt: skip
    """A complete forecast from ``now`` (runs where ``sv.solver`` runs) from the measured
    load and PV per slot and the load measured now (kW). Never raises for missing history
    (the warm-up says so); unusable day-ahead prices raise (``InputError``,
    ``SourceError``)."""
    cfg, ts = sv.config, pd.Timestamp(now)
    index = slot_index(sv, now, forecast_slots(sv))
    weather = sv.feeds.weather(recent_slots(index[0], step_of(sv)).append(index), ts)
    if st.errors is not None:
        st.errors.observe(pipeline.measured_net_kw(load_kw, pv_kw))
    sf = pipeline.site_forecast(
        cfg, index, weather=weather.frame, weather_note=weather.note, load_history_kw=load_kw,
        pv_history_kw=pv_kw, load_kw=cfg.forecast.load_kw, pv_calibration=sv.pv_fit,
        errors=st.errors, load_now_kw=load_now_kw, calendar=sv.calendar,
        clear_sky=sv.clear_sky,
    )  # fmt: skip
    keep = [c for c in sf.frame.columns if c in ("p_pv_kw", "p_load_kw")
            or c.startswith((LOAD_QUANTILE_PREFIX, LOAD_SCENARIO_PREFIX))]  # fmt: skip
    columns = {c: sf.frame[c].to_numpy() for c in keep}
    if sv.feeds.day_ahead is not None:  # no fallback: a plan without prices is priced wrong
        columns[DAY_AHEAD_COLUMN] = sv.feeds.day_ahead.on(index, ts).to_numpy()
    ci = sv.feeds.intensity(index, ts)
    if ci.frame is not None:
        columns["ci_g_per_kwh"] = ci.frame["ci_g_per_kwh"].to_numpy()
    forecast = pipeline.complete_columns(cfg, sf.frame.index, columns, issued_at=ts)
    if st.errors is not None and sf.warmup is None and cfg.forecast.load_kw is None:
        st.errors.issue(index[0], net_load_kw(forecast.frame))
    fallbacks = tuple(n for n, a in (("weather", weather), ("intensity", ci)) if a.fallback)
    source = f"{sf.source}; intensity: {ci.note}"
    return ForecastState(forecast, None, now, source, sf.warmup, fallbacks, ci.frame is not None)


async def forecast_step(sv: Services, st: SiteState, now: dt.datetime,
                        snap: Snapshot | None = None) -> ForecastState:  # fmt: skip
    """Make a forecast (from the history, and the reading ``snap`` while there is none),
    store it and publish it."""
    since = pd.Timestamp(now) - pd.Timedelta(days=sv.config.forecast.history_days)
    load_kw = st.history.series("p_load_kw", since)
    pv_kw = pv_history_kw(sv, st.history, since)
    load_now = snap.p_load_kw if snap is not None and snap.ok else None
    fs = await sv.solver(make_forecast, sv, st, now, load_kw, pv_kw, load_now)
    try:
        f_id = await sv.storer(sv.store.write_forecast, fs.forecast, fs.issued_at, fs.source)
        fs = dataclasses.replace(fs, forecast_id=f_id)
        sv.failures.ok("store:forecast")
        sv.metrics.store_written(sv.clock.now())
    except DispatchError as exc:  # the published forecast stands; the record is lost
        sv.failures.failed("store:forecast", str(exc), exc)
    st.forecast_state = fs
    sv.metrics.forecast(fs.warmup is not None, fs.fallbacks)
    if fs.warmup is not None:
        sv.failures.failed("forecast:warm-up", f"{fs.source} (no peak target from the plan)")
    elif sv.failures.ok("forecast:warm-up"):
        log.info("forecast: warm-up over: %s", fs.source)
    return fs


def window(forecast: Forecast, index: pd.DatetimeIndex) -> Forecast | None:
    """The forecast on ``index`` (quantiles and paths too), or None when it does not cover."""
    pos = int(forecast.index.searchsorted(index[0]))
    rows = slice(pos, pos + len(index))
    if pos + len(index) > len(forecast.index) or not forecast.index[rows].equals(index):
        return None
    if len(index) >= 2:  # a part of a checked forecast, not checked again
        return forecast.slots(pos, pos + len(index))

    def cut(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        return None if frame is None else frame.iloc[rows]

    return Forecast(forecast.frame.iloc[rows], cut(forecast.load_quantiles_kw),
                    cut(forecast.pv_quantiles_kw), cut(forecast.load_scenarios_kw),
                    forecast.issued_at)  # fmt: skip


async def fresh_snapshot(sv: Services, st: SiteState, now: dt.datetime) -> Snapshot | None:
    """The last cycle's reading if it is younger than ``control.snapshot_max_age_s``, else a
    new reading of every device (None without devices)."""
    c = st.last_cycle
    age_s = (now - c.snapshot.time).total_seconds() if c is not None else math.inf
    if c is not None and c.snapshot.ok and age_s <= sv.config.control.snapshot_max_age_s:
        return c.snapshot
    if not sv.devices:
        return None
    async with sv.device_lock:
        return await cycle.read_all(sv, sv.clock.now(), sv.clock.monotonic())


def month_targets(plan: Plan, timezone: str) -> dict[str, float]:
    """Each billing month's peak target in a plan (kW): its highest import or planned peak."""
    months = tariff.month_labels(pd.DatetimeIndex(plan.frame.index), timezone)
    values = np.maximum(plan.column("p_import_kw"), plan.column("peak_target_kw"))
    return {m: float(values[months == m].max()) for m in dict.fromkeys(months.tolist())}


def guard_target(sv: Services, st: SiteState, targets_kw: dict[str, float], now: dt.datetime,
                 warmup: str | None) -> float | None:  # fmt: skip
    """The import the guard holds this month (kW): the plan's peak target for the month
    (``targets_kw``, from ``month_targets``), never below the month's peak so far. In warm-up
    the peak so far alone, None while it is 0 (a plan on a fallback forecast sets no target).
    None without a demand charge."""
    if sv.config.tariff.demand_charge_per_kw_month <= 0:
        return None
    month = billing_month_of(now, sv.config.billing_timezone)
    so_far = month_peak_kw(sv, st, month)
    if warmup is not None:
        return so_far if so_far > 0 else None
    planned = targets_kw.get(month, 0.0)
    return max(so_far, planned)


def warmup_cap_kw(peak_so_far_kw: float, snap: Snapshot | None) -> float | None:
    """In warm-up the plan may not import above the larger of the month's peak so far and
    the net load measured now (kW): a plan on a fallback forecast must not raise the month's
    peak by charging. None when neither is known."""
    net = snap.p_grid_kw + snap.p_batt_kw if snap is not None and snap.ok else math.nan
    known = [v for v in (peak_so_far_kw, net) if math.isfinite(v) and v > 0]
    return max(known) if known else None


async def current_forecast(sv: Services, st: SiteState, now: dt.datetime,
                           snap: Snapshot | None) -> ForecastState:  # fmt: skip
    """The forecast to plan on: a new one when due; the last good one when that fails and
    it still covers the horizon."""
    fs = st.forecast_state
    if not forecast_due(sv, fs, now):
        return fs  # type: ignore[return-value]
    try:
        return await forecast_step(sv, st, now, snap)
    except DispatchError as exc:
        index = slot_index(sv, now, sv.config.plan.n_slots)
        if fs is None or window(fs.forecast, index) is None:
            raise
        if sv.failures.failed("forecast", str(exc), exc):
            log.warning("forecast failed; planning on the one from %s", fs.issued_at)
        return fs


async def solver_health(sv: Services, plan: Plan) -> None:
    """A fallback plan is a solver failure (``failing: solver`` on the status page, the site
    at ``warning``): an event when an episode starts (``plan_fallback``, with the solver's
    reason) and when an optimum is found again (``solver_recovered``)."""
    if plan.is_fallback:
        if sv.failures.failed("solver", plan.message or "no optimum"):
            await store_event(sv, "warning", "plan_fallback",
                              f"solver failed ({plan.message}): the rule-based fallback plan "
                              "is in force")  # fmt: skip
    elif n := sv.failures.ok("solver"):
        await store_event(sv, "info", "solver_recovered",
                          f"the solver finds an optimum again after {n} fallback plan(s)")


async def plan_job(sv: Services, st: SiteState) -> PlanState:
    """Forecast when due, solve from the current slot and publish the plan."""
    now = sv.clock.now()
    await settle(sv, st, now)
    snap = await fresh_snapshot(sv, st, now)
    fs = await current_forecast(sv, st, now, snap)
    forecast = window(fs.forecast, slot_index(sv, now, sv.config.plan.n_slots))
    if forecast is None:
        raise DispatchError("plan: no forecast covers the horizon")
    soc = snap.soc_frac if snap is not None and snap.ok else None
    if soc is None:
        log.warning("plan: no valid SoC reading; planning from battery.soc_initial_frac")
    month = billing_month_of(now, sv.config.billing_timezone)
    peaks = {month: month_peak_kw(sv, st, month)}
    months = set(tariff.month_labels(forecast.index, sv.config.billing_timezone).tolist())
    held = {m: v for m, v in st.held_target_kw.items() if m in months}
    cap = warmup_cap_kw(peaks[month], snap) if fs.warmup is not None else None
    override = sv.operator.peek(now).get("peak_target") if sv.operator else None
    if override is not None:  # the operator's target caps the plan's import too
        cap = min(float(override.value), math.inf if cap is None else cap)
    plan = await sv.solver(pipeline.plan, st.model, forecast, soc, peaks, held, cap)
    inputs = PlanInputs(fs.forecast_id, soc, peaks, held, cap)
    issued = sv.clock.now()
    try:
        record = inputs.as_dict() | {"warmup": fs.warmup}
        plan_id: int | None = await sv.storer(sv.store.write_plan, plan, issued, record)
        sv.failures.ok("store:plan")
        sv.metrics.store_written(sv.clock.now())
    except DispatchError as exc:
        sv.failures.failed("store:plan", str(exc), exc)
        plan_id = None
    await solver_health(sv, plan)
    targets = month_targets(plan, sv.config.billing_timezone)
    if not plan.is_fallback and fs.warmup is None:
        st.held_target_kw = targets
    target = guard_target(sv, st, targets, now, fs.warmup)
    ps = PlanState(plan, plan_id, issued, target, fs.source, inputs, fs.warmup)
    st.plan_state = ps
    sv.metrics.plan(plan.status, plan.solve_ms)
    level = logging.WARNING if plan.is_fallback else logging.INFO
    log.log(level, "plan %s: %s, %d slots from %s, %.1f ms%s", plan_id, plan.status,
            len(plan.frame), plan.frame.index[0].isoformat(), plan.solve_ms,
            f" ({plan.message})" if plan.message else "")  # fmt: skip
    return ps
