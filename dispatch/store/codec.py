"""Conversions between the package's value types and the store's rows.

Role: pure mapping of ``Snapshot``, ``Setpoints``, events, ``Forecast`` and ``Plan`` to column
dicts or tuples and back; time as integer epoch milliseconds UTC. NaN is stored as NULL and read
back as NaN. Imports ``dispatch.types`` and pandas; no sqlite3.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dispatch.store import rows
from dispatch.types import PLAN_COLUMNS, Forecast, InputError, Plan, PlanCosts, Setpoints, Snapshot

EVENT_LEVELS = ("debug", "info", "warning", "error", "critical")
SNAPSHOT_FLOATS = ("p_grid_kw", "p_pv_kw", "p_batt_kw", "p_load_kw", "soc_frac",
                   "p_charge_max_kw", "p_discharge_max_kw")  # fmt: skip
SNAPSHOT_TUPLES = ("faults", "stale", "missing", "derived")
FORECAST_FLOATS = ("p_pv_kw", "p_load_kw", "price_import_per_kwh", "price_export_per_kwh",
                   "ci_g_per_kwh")  # fmt: skip
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class DemandPeak:
    """The highest import of a billing month so far (kW), when it was measured and the plan
    slot it fell in."""

    billing_month: str
    peak_import_kw: float
    time: dt.datetime
    slot_start: dt.datetime | None


def to_ms(t: Any, what: str = "time") -> int:
    """Epoch milliseconds of a tz-aware datetime (or pandas Timestamp).

    Raises
    ------
    InputError
        For a naive datetime or anything else.
    """
    try:
        ok = isinstance(t, dt.datetime) and t.utcoffset() is not None
    except ValueError:  # pandas' NaT
        ok = False
    if not ok:
        raise InputError(f"{what}: {t!r} is not a tz-aware time; give UTC datetimes")
    return round(t.timestamp() * 1000)


def index_ms(index: pd.DatetimeIndex) -> list[int]:
    """Epoch milliseconds of a tz-aware index's stamps (as ``to_ms`` of each)."""
    return rows.stamps_ms(index)


def from_ms(ms: int) -> dt.datetime:
    """The UTC datetime of epoch milliseconds."""
    return _EPOCH + dt.timedelta(milliseconds=int(ms))


def real(x: Any) -> float | None:
    """A value for a REAL column: None (NULL) for NaN, infinities and None."""
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def nan(x: Any) -> float:
    """A float read from a REAL column: NaN for NULL."""
    return math.nan if x is None else float(x)


def snapshot_row(s: Snapshot) -> dict[str, Any]:
    """Columns of ``measurements`` for one reading."""
    return {
        "time_ms": to_ms(s.time, "snapshot time"),
        **{k: real(getattr(s, k)) for k in SNAPSHOT_FLOATS},
        "ok": int(s.ok),
        **{f"{k}_json": json.dumps(list(getattr(s, k))) for k in SNAPSHOT_TUPLES},
        "values_json": json.dumps(dict(s.values)),
    }


#: The ``values`` key that marks a measurement imported by ``dispatch import-history``.
IMPORTED = "import_history"
GRID_ESTIMATED = "grid_estimated"  # imported without p_grid_kw: the grid flow is load - PV


def imported_snapshots(frame: pd.DataFrame) -> Iterator[Snapshot]:
    """Metered history rows (``p_load_kw``, optional ``p_pv_kw`` and ``p_grid_kw``, kW) as
    snapshots: battery power and SoC unknown (NaN), grid power the balance without the
    battery when not given, marked ``IMPORTED`` in ``values`` (and ``GRID_ESTIMATED`` then:
    the carbon ledger books such intervals as estimated)."""
    load = frame["p_load_kw"].to_numpy(float)
    pv = frame["p_pv_kw"].to_numpy(float) if "p_pv_kw" in frame else np.zeros(len(frame))
    grid = frame["p_grid_kw"].to_numpy(float) if "p_grid_kw" in frame else load - pv
    marks = {IMPORTED: 1.0} if "p_grid_kw" in frame else {IMPORTED: 1.0, GRID_ESTIMATED: 1.0}
    for t, l_kw, pv_kw, g_kw in zip(frame.index, load, pv, grid, strict=True):
        yield Snapshot(
            time=t.to_pydatetime(),
            p_grid_kw=float(g_kw),
            p_pv_kw=float(pv_kw),
            p_batt_kw=math.nan,
            p_load_kw=float(l_kw),
            soc_frac=math.nan,
            values=marks,
        )


def snapshot_of(r: Mapping[str, Any]) -> Snapshot:
    """The ``Snapshot`` of a ``measurements`` row."""
    return Snapshot(
        time=from_ms(r["time_ms"]),
        **{k: nan(r[k]) for k in SNAPSHOT_FLOATS},
        **{k: tuple(json.loads(r[f"{k}_json"])) for k in SNAPSHOT_TUPLES},
        values=json.loads(r["values_json"]),
    )


def setpoint_row(
    s: Setpoints,
    time: dt.datetime,
    plan_id: int | None,
    readback_p_batt_kw: float | None,
    write_ok: bool | None,
    peak_target_kw: float | None = None,
) -> dict[str, Any]:
    """Columns of ``setpoints``: the setpoint (kW), its reason, the write's read-back and
    the peak target the guard held (kW)."""
    if not math.isfinite(s.p_batt_kw):
        raise InputError(f"setpoints: p_batt_kw = {s.p_batt_kw} is not finite")
    return {
        "time_ms": to_ms(time, "setpoint time"),
        "p_batt_kw": float(s.p_batt_kw),
        "reason": s.reason,
        "revert_timeout_s": real(s.revert_timeout_s),
        "default_mode": int(s.default_mode),
        "plan_id": plan_id,
        "readback_p_batt_kw": real(readback_p_batt_kw),
        "write_ok": None if write_ok is None else int(write_ok),
        "peak_target_kw": real(peak_target_kw),
    }


def event_row(
    time: dt.datetime, level: str, kind: str, message: str, device: str | None
) -> dict[str, Any]:
    """Columns of ``events``; ``level`` is one of ``EVENT_LEVELS``."""
    if level not in EVENT_LEVELS:
        raise InputError(f"events: level {level!r} must be one of {EVENT_LEVELS}")
    return {"time_ms": to_ms(time, "event time"), "level": level, "kind": kind,
            "device": device, "message": message}  # fmt: skip


def forecast_head(forecast: Forecast, issued_at: dt.datetime | None, source: str) -> dict:
    """Columns of ``forecasts``; ``issued_at`` defaults to ``forecast.issued_at``."""
    issued = issued_at if issued_at is not None else forecast.issued_at
    return {
        "issued_ms": to_ms(issued, "forecast issued_at"),
        "start_ms": to_ms(forecast.index[0]),
        "step_s": forecast.step.total_seconds(),
        "slots": len(forecast.frame),
        "source": source,
    }


def _slot_json(frame: pd.DataFrame | None, key: Callable[[Any], str] = str) -> list[str | None]:
    """Each row of ``frame`` as JSON ``{key(column): kW}`` (NaN as null); Nones without a
    frame."""
    if frame is None:
        return []
    return list(rows.json_rows([key(c) for c in frame.columns], frame.to_numpy(float)))


def forecast_slot_rows(forecast_id: int, f: Forecast) -> list[tuple[Any, ...]]:
    """Rows of ``forecast_slots`` in column order (quantiles as JSON ``{level: kW}``, load
    paths as JSON ``{name: kW}``)."""
    n = len(f.index)
    blank = np.full(n, np.nan)
    present = f.frame.columns
    columns = [rows.real_column(f.column(c) if c in present else blank) for c in FORECAST_FLOATS]
    load_q = _slot_json(f.load_quantiles_kw, _level) or [None] * n
    pv_q = _slot_json(f.pv_quantiles_kw, _level) or [None] * n
    paths = _slot_json(f.load_scenarios_kw) or [None] * n
    ids = [forecast_id] * n
    return list(zip(ids, index_ms(f.index), *columns, load_q, pv_q, paths, strict=True))


def _level(level: Any) -> str:
    return repr(float(level))


def plan_head(
    plan: Plan, made_at: dt.datetime, inputs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Columns of ``plans``: status, solver, costs (currency), peak (kW), summary JSON and
    the inputs it was solved from (JSON)."""
    idx = plan.frame.index
    return {
        "made_ms": to_ms(made_at, "plan made_at"),
        "start_ms": to_ms(idx[0], "plan start"),
        "step_s": (idx[1] - idx[0]).total_seconds() if len(idx) > 1 else 0.0,
        "slots": len(idx),
        "status": plan.status,
        "solver": plan.solver,
        "message": plan.message,
        "objective": real(plan.objective),
        "solve_ms": real(plan.solve_ms),
        "peak_import_kw": real(plan.peak_import_kw),
        "kg_co2": real(plan.kg_co2),
        "cost_total": real(plan.costs.total),
        "costs_json": json.dumps(plan.costs.as_dict()),
        "soft_violation_kwh_json": json.dumps(dict(plan.soft_violation_kwh)),
        "summary_json": json.dumps(plan.summary(), default=str),
        "inputs_json": None if inputs is None else json.dumps(dict(inputs)),
    }


def plan_slot_rows(plan_id: int, plan: Plan) -> list[tuple[Any, ...]]:
    """Rows of ``plan_slots``: ``(plan_id, slot_start_ms, *PLAN_COLUMNS)``."""
    f = plan.frame
    same = tuple(f.columns) == PLAN_COLUMNS
    values = (f if same else f.reindex(columns=list(PLAN_COLUMNS))).to_numpy(float)
    stamps = index_ms(pd.DatetimeIndex(f.index))
    return [(plan_id, t, *row) for t, row in zip(stamps, rows.real_rows(values), strict=True)]


def _index(ms: Iterable[int]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(list(ms), unit="ms", utc=True))


def plan_of(head: Mapping[str, Any], slots: list[Mapping[str, Any]]) -> Plan:
    """The ``Plan`` of a ``plans`` row and its ``plan_slots`` rows (in time order)."""
    frame = pd.DataFrame(
        [[nan(r[c]) for c in PLAN_COLUMNS] for r in slots],
        index=_index(r["slot_start_ms"] for r in slots),
        columns=list(PLAN_COLUMNS),
    )
    costs = json.loads(head["costs_json"])
    costs.pop("total", None)
    return Plan(
        status=head["status"],
        frame=frame,
        costs=PlanCosts(**costs),
        kg_co2=nan(head["kg_co2"]),
        peak_import_kw=nan(head["peak_import_kw"]),
        solve_ms=nan(head["solve_ms"]),
        solver=head["solver"],
        message=head["message"],
        objective=nan(head["objective"]),
        soft_violation_kwh=json.loads(head["soft_violation_kwh_json"]),
    )


def _json_columns(
    slots: list[Mapping[str, Any]], key: str, idx: pd.Index
) -> pd.DataFrame | None:
    """The per-slot JSON objects of column ``key`` as a frame (None when not stored)."""
    if not slots or slots[0][key] is None:
        return None
    return pd.DataFrame([json.loads(r[key]) for r in slots], index=idx, dtype=float)


def _quantiles_of(slots: list[Mapping[str, Any]], key: str, idx: pd.Index) -> pd.DataFrame | None:
    frame = _json_columns(slots, key, idx)
    if frame is not None:
        frame.columns = [float(c) for c in frame.columns]
    return frame


def forecast_of(head: Mapping[str, Any], slots: list[Mapping[str, Any]]) -> Forecast:
    """The ``Forecast`` of a ``forecasts`` row and its slots; optional columns that were
    absent (all NULL) stay absent."""
    idx = _index(r["slot_start_ms"] for r in slots)
    data = {c: [nan(r[c]) for r in slots] for c in FORECAST_FLOATS}
    kept = {c: v for c, v in data.items() if not all(math.isnan(x) for x in v)}
    return Forecast(
        pd.DataFrame(kept, index=idx),
        load_quantiles_kw=_quantiles_of(slots, "load_quantiles_kw_json", idx),
        pv_quantiles_kw=_quantiles_of(slots, "pv_quantiles_kw_json", idx),
        load_scenarios_kw=_json_columns(slots, "load_scenarios_kw_json", idx),
        issued_at=pd.Timestamp(from_ms(head["issued_ms"])),
    )
