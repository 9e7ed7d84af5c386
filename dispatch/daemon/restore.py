"""The jobs' state at start, rebuilt from the store: a restart plans as if it had never stopped.

Role: build a ``SiteState`` for ``Services``: the measured history of the last
``forecast.history_days`` (plan-slot means), the error book from the forecasts the daemon
issued and the net load it measured, and the peak target of the last plan (the guard's
target in force, an input of the next plan's reserve). The plan itself is made fresh from a
new reading (``planning.plan_job``). Used by the ``Daemon`` and by replays, which start from
an empty store (a fresh install) or a seeded one. Imports ``control``, ``optimise``,
``forecast`` and this package.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from dispatch.control import ControlLimits
from dispatch.daemon.history import SlotHistory
from dispatch.daemon.planning import month_targets
from dispatch.daemon.runtime import Services, SiteState, pv_history_kw
from dispatch.forecast.uncertainty import ForecastErrors
from dispatch.optimise import DispatchModel

#: Days of history kept beyond ``forecast.history_days`` (the forecast's own look-back).
SPARE_DAYS = 2


def error_book(sv: Services, now: dt.datetime, history: SlotHistory) -> ForecastErrors | None:
    """The error book for ``plan.peak_risk_quantile`` above the median (None at the
    median), fed the stored forecasts of the last ``history_days`` and the measured net load;
    the warmup counts from the store's first measurement."""
    cfg = sv.config
    if cfg.plan.peak_risk_quantile <= 0.5:
        return None
    step = pd.Timedelta(minutes=cfg.plan.step_min)
    errors = ForecastErrors(sv.calendar, step, cfg.plan.peak_risk_quantile)
    first = sv.store.first_time("measurements")
    if first is None:
        return errors
    errors.first_slot = errors.slot(pd.Timestamp(first))
    both = pd.concat([history.series("p_load_kw"), pv_history_kw(sv, history)], axis=1).dropna()
    errors.observe(both.iloc[:, 0] - both.iloc[:, 1])
    since = now - dt.timedelta(days=errors.history // errors.day + SPARE_DAYS)
    for start, net in sv.store.issued_net_load(since, now):
        errors.issue(pd.Timestamp(start), np.asarray(net))
    return errors


def restore(sv: Services, model: DispatchModel) -> SiteState:
    """The state of the jobs at ``sv.clock.now()`` from ``sv.store`` (runs where the store
    runs; reads only)."""
    cfg, now = sv.config, sv.clock.now()
    step = pd.Timedelta(minutes=cfg.plan.step_min)
    keep = pd.Timedelta(days=cfg.forecast.history_days + SPARE_DAYS)
    rows = sv.store.rows("measurements", now - keep, now)
    limits = ControlLimits.from_config(cfg)
    history = SlotHistory.from_rows((r for r in rows if r["ok"]), step, keep, limits)
    st = SiteState(limits, model, error_book(sv, now, history), history)
    last = sv.store.latest_plan_id()
    if last is not None:
        plan, inputs = sv.store.load_plan(last), sv.store.plan_inputs(last) or {}
        if not plan.is_fallback and not inputs.get("warmup"):
            st.held_target_kw = month_targets(plan, cfg.billing_timezone)
    return st
