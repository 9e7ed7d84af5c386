"""Re-run the daemon's decisions from what it stored: every plan from its stored inputs, every
setpoint from its stored reading, plan and peak target.

Role: the proof that the store holds everything a decision was made from, so a plan engineer
(``dispatch plan --stored``) or a test can reproduce the daemon exactly. ``replan`` solves one
stored plan again from its inputs (``PlanInputs``) and the stored forecast it sliced;
``replan_all`` solves every stored plan in issue order with one model, as the daemon did (the
hot-started solver then walks the same bases, so even ties come out the same);
``redecide`` runs ``control.decide`` on every stored cycle. Imports ``pipeline``, ``control``,
``store`` and this package's state types.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pandas as pd

from dispatch import pipeline
from dispatch.config import SiteConfig
from dispatch.control import ControlLimits, ControlState, decide
from dispatch.daemon.planning import window
from dispatch.daemon.state import PlanInputs
from dispatch.optimise import DispatchModel
from dispatch.store import Store
from dispatch.store.codec import from_ms, snapshot_of
from dispatch.types import InputError, Plan, Setpoints


@dataclass(frozen=True)
class Replanned:
    """A stored plan and the plan solved again from its stored inputs."""

    plan_id: int
    stored: Plan
    again: Plan

    @property
    def max_diff_kw(self) -> float:
        """Largest difference of battery power over the slots (kW)."""
        a, b = self.stored.frame["p_batt_kw"], self.again.frame["p_batt_kw"]
        return float((a - b.to_numpy()).abs().max())


def replan(config: SiteConfig, store: Store, plan_id: int,
           model: DispatchModel | None = None) -> Replanned:  # fmt: skip
    """Solve stored plan ``plan_id`` again from its stored inputs (with ``model``, else a new
    one for the plan's length).

    Raises
    ------
    InputError
        When the plan was stored without its inputs or its forecast is gone (retention).
    StoreError
        When there is no such plan.
    """
    stored = store.load_plan(plan_id)
    doc = store.plan_inputs(plan_id)
    if doc is None or doc.get("forecast_id") is None:
        raise InputError(f"plan {plan_id} was stored without the inputs it was solved from")
    inputs = PlanInputs.from_dict(doc)
    forecast = store.load_forecast(int(inputs.forecast_id))  # type: ignore[arg-type]
    index = pd.DatetimeIndex(stored.frame.index)
    forecast = window(forecast, index)
    if forecast is None:
        raise InputError(f"plan {plan_id}: its forecast {inputs.forecast_id} does not cover it")
    model = model or DispatchModel(config, n_slots=len(index))
    again = pipeline.plan(model, forecast, inputs.soc_frac, inputs.peak_so_far_kw,
                          inputs.held_target_kw, inputs.import_cap_kw)  # fmt: skip
    return Replanned(plan_id, stored, again)


def replan_all(config: SiteConfig, store: Store) -> Iterator[Replanned]:
    """Every stored plan solved again, in issue order, with one model (as the daemon)."""
    model = DispatchModel(config)
    for head in store.rows("plans"):
        yield replan(config, store, int(head["id"]), model)


def redecide(config: SiteConfig, store: Store,
             plans: Mapping[int, Plan]) -> Iterator[tuple[dict, Setpoints]]:  # fmt: skip
    """Every stored cycle decided again: its reading, the plan in force (``plans`` by id, e.g.
    the replanned ones) and the peak target it held; yields ``(setpoint row, Setpoints)``."""
    limits = ControlLimits.from_config(config)
    measurements = {int(r["id"]): r for r in store.rows("measurements")}
    issued = {int(r["id"]): from_ms(r["made_ms"]) for r in store.rows("plans")}
    for row in store.rows("setpoints"):
        reading = measurements.get(row["measurement_id"])
        if reading is None:
            continue  # a setpoint written without a cycle (shutdown)
        plan_id = row["plan_id"]
        plan = plans.get(plan_id) if plan_id is not None else None
        state = ControlState(issued[plan_id]) if plan is not None else None
        target = limits.with_peak_target(row["peak_target_kw"])
        yield row, decide(snapshot_of(reading), plan, target, from_ms(row["time_ms"]), state)
