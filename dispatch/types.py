"""Shared value types, error types and the sign conventions of the whole package.

Role: the vocabulary every other module speaks. Imports nothing of ours.

Conventions (site-bus view, power into the bus is positive):

- ``p_grid_kw > 0`` import, ``< 0`` export;
- ``p_batt_kw > 0`` discharge, ``< 0`` charge;
- ``p_pv_kw >= 0`` and ``p_load_kw >= 0``;
- ``p_load_kw = p_grid_kw + p_pv_kw + p_batt_kw`` in every slot.

Units inside the package: kW, kWh, fractions, money per kWh, g/kWh. Time: tz-aware UTC, frames
indexed by the start of each period at a fixed step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

FORECAST_REQUIRED = ("p_pv_kw", "p_load_kw")
FORECAST_OPTIONAL = ("price_import_per_kwh", "price_export_per_kwh", "ci_g_per_kwh")
FORECAST_COLUMNS = (*FORECAST_REQUIRED, *FORECAST_OPTIONAL)


class DispatchError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(DispatchError):
    """A site configuration is invalid.

    Parameters
    ----------
    problems : list of str
        One line per problem, each naming the key path, the bad value and what is allowed.
    source : str, optional
        The file the configuration came from.
    """

    def __init__(self, problems: list[str] | str, source: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        head = f"invalid configuration {source}" if source else "invalid configuration"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in self.problems))


class InputError(DispatchError):
    """A time series handed to the package (CSV, frame) is unusable; the message says where."""


class SourceError(DispatchError):
    """A data provider (weather, prices, carbon intensity) failed; the message names it."""


class DeviceError(DispatchError):
    """A device read or write failed; the message names device, address and cause."""


def check_time_index(index: pd.Index, what: str) -> pd.Timedelta:
    """Check that ``index`` is a tz-aware UTC, strictly increasing index at a fixed step.

    Parameters
    ----------
    index : pandas.Index
        Period-start time stamps.
    what : str
        Name of the series, used in error messages.

    Returns
    -------
    pandas.Timedelta
        The fixed step between stamps.

    Raises
    ------
    InputError
        If the index is not datetime, not UTC, has fewer than one stamp, duplicates, is unsorted
        or has gaps.
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise InputError(f"{what}: the index must be time stamps, got {type(index).__name__}")
    if len(index) == 0:
        raise InputError(f"{what}: no rows")
    if index.tz is None or str(index.tz) != "UTC":
        raise InputError(f"{what}: time stamps must be tz-aware UTC, got tz={index.tz}")
    if len(index) == 1:
        raise InputError(f"{what}: at least two time stamps are needed to know the step")
    steps = np.diff(index.asi8)  # in the index's unit (pandas 3 may hold us or s)
    if (steps == steps[0]).all() and steps[0] > 0:  # the usual case: one positive step
        return pd.Timedelta(int(steps[0]), unit=index.unit)
    dup = np.flatnonzero(steps == 0)
    if dup.size:
        raise InputError(f"{what}: duplicate time stamp {index[dup[0]].isoformat()}")
    back = np.flatnonzero(steps < 0)
    if back.size:
        raise InputError(
            f"{what}: time stamps are not sorted: {index[back[0] + 1].isoformat()} "
            f"follows {index[back[0]].isoformat()}"
        )
    step = pd.Timedelta(int(steps[0]), unit=index.unit)
    gap = np.flatnonzero(steps != steps[0])
    if gap.size:
        i = gap[0]
        raise InputError(
            f"{what}: the step is not fixed: {index[i].isoformat()} -> "
            f"{index[i + 1].isoformat()} differs from the first step {step}"
        )
    return step


def float_frame(columns: Mapping[Any, np.ndarray], index: pd.Index) -> pd.DataFrame:
    """``pd.DataFrame(columns, index=index)`` for float64 columns (one value per stamp), built
    from one stacked array: the same frame (one float block) for about half the cost. Other
    columns go through the dict constructor."""
    arrays = list(columns.values())
    if not arrays or any(np.ndim(a) != 1 or np.asarray(a).dtype != np.float64 for a in arrays):
        return pd.DataFrame(columns, index=index)
    return pd.DataFrame(np.column_stack(arrays), index=index, columns=list(columns))


def _float_columns(frame: pd.DataFrame, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The columns ``names`` that ``frame`` has, as float arrays (one conversion of the whole
    frame when it is all numbers, the usual case; column by column otherwise)."""
    position = {c: i for i, c in enumerate(frame.columns)}
    present = [n for n in names if n in position]
    if len(position) == len(frame.columns):  # unique labels
        try:
            values = frame.to_numpy(dtype=float)
            return {n: values[:, position[n]] for n in present}
        except (TypeError, ValueError):  # a column of text: convert only the ones needed
            pass
    return {n: frame[n].to_numpy(dtype=float) for n in present}


@dataclass(frozen=True)
class Forecast:
    """What the optimiser plans against, for one horizon.

    Parameters
    ----------
    frame : pandas.DataFrame
        Indexed by UTC period start at a fixed step. Required columns ``p_pv_kw`` and
        ``p_load_kw`` (expected values, kW); optional ``price_import_per_kwh``,
        ``price_export_per_kwh`` (money per kWh) and ``ci_g_per_kwh`` (grid carbon intensity,
        g CO2 per kWh). Optional columns that are absent come from the site's tariff and
        carbon configuration.
    load_quantiles_kw : pandas.DataFrame, optional
        Load quantiles (kW), same index, one column per quantile level in (0, 1).
    pv_quantiles_kw : pandas.DataFrame, optional
        PV quantiles (kW), same index, one column per quantile level in (0, 1).
    load_scenarios_kw : pandas.DataFrame, optional
        Paths the load may take (kW), same index, one column per path; e.g. the expected
        load plus the errors of past forecasts issued at the same time of day.
    issued_at : pandas.Timestamp, optional
        When the forecast was made (UTC).

    The frame is checked and its columns read once, when the forecast is made: to change
    it, make a new ``Forecast`` of a changed copy.
    """

    frame: pd.DataFrame
    load_quantiles_kw: pd.DataFrame | None = None
    pv_quantiles_kw: pd.DataFrame | None = None
    load_scenarios_kw: pd.DataFrame | None = None
    issued_at: pd.Timestamp | None = None

    _columns: dict[str, np.ndarray] = field(init=False, repr=False, compare=False)
    _step: pd.Timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_step", check_time_index(self.frame.index, "forecast"))
        missing = [c for c in FORECAST_REQUIRED if c not in self.frame.columns]
        if missing:
            raise InputError(f"forecast: missing column(s) {missing}")
        object.__setattr__(self, "_columns", _float_columns(self.frame, FORECAST_COLUMNS))
        for col, values in self._columns.items():
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                raise InputError(
                    f"forecast: column {col} is not a finite number at "
                    f"{self.frame.index[bad[0]].isoformat()}"
                )
            if col in FORECAST_REQUIRED and (values < 0).any():
                i = int(np.flatnonzero(values < 0)[0])
                raise InputError(
                    f"forecast: {col} must be >= 0, got {values[i]} at "
                    f"{self.frame.index[i].isoformat()}"
                )
        for name in ("load_quantiles_kw", "pv_quantiles_kw"):
            q = getattr(self, name)
            if q is None:
                continue
            if not q.index.equals(self.frame.index):
                raise InputError(f"forecast: {name} must share the forecast's index")
            levels = np.asarray(q.columns, dtype=float)
            if ((levels <= 0) | (levels >= 1)).any():
                raise InputError(f"forecast: {name} levels must lie in (0, 1), got {list(levels)}")
        paths = self.load_scenarios_kw
        if paths is not None:
            if not paths.index.equals(self.frame.index):
                raise InputError("forecast: load_scenarios_kw must share the forecast's index")
            values = paths.to_numpy(dtype=float)
            if values.size and not (np.isfinite(values) & (values >= 0)).all():
                raise InputError("forecast: load_scenarios_kw must be finite and >= 0 (kW)")

    @property
    def index(self) -> pd.DatetimeIndex:
        """Period-start time stamps (UTC)."""
        return self.frame.index  # type: ignore[return-value]

    @property
    def step(self) -> pd.Timedelta:
        """The fixed step between slots."""
        return self._step

    def column(self, name: str) -> np.ndarray:
        """A checked column of ``frame`` (``p_pv_kw``, ``p_load_kw``, and the optional ones
        present) as floats; KeyError for any other."""
        return self._columns[name]

    def slots(self, start: int, stop: int) -> Forecast:
        """The slots at positions ``start .. stop - 1`` (at least two, inside the forecast)
        with their quantiles and paths: a part of a checked forecast is checked already, so
        it is cut, not checked again (the plan job cuts one every plan)."""
        if not 0 <= start <= stop - 2 or stop > len(self.frame):
            raise InputError(f"forecast: slots {start}..{stop} outside 0..{len(self.frame)}")
        rows = slice(start, stop)

        def cut(frame: pd.DataFrame | None) -> pd.DataFrame | None:
            return None if frame is None else frame.iloc[rows]

        part = object.__new__(Forecast)
        fields = {
            "frame": self.frame.iloc[rows],
            "load_quantiles_kw": cut(self.load_quantiles_kw),
            "pv_quantiles_kw": cut(self.pv_quantiles_kw),
            "load_scenarios_kw": cut(self.load_scenarios_kw),
            "issued_at": self.issued_at,
            "_columns": {k: v[rows] for k, v in self._columns.items()},
            "_step": self._step,
        }
        for name, value in fields.items():
            object.__setattr__(part, name, value)
        return part


@dataclass(frozen=True)
class PlanCosts:
    """The parts of a plan's cost over its horizon, in the tariff's currency.

    ``total = energy_cost - export_revenue + demand_charge + carbon_cost + wear_cost``.
    ``demand_charge`` is only the increase of the billing month's max-demand charge over the
    peak already reached.
    """

    energy_cost: float
    export_revenue: float
    demand_charge: float
    carbon_cost: float
    wear_cost: float

    @property
    def total(self) -> float:
        """Net cost of the plan (currency)."""
        return (
            self.energy_cost
            - self.export_revenue
            + self.demand_charge
            + self.carbon_cost
            + self.wear_cost
        )

    def as_dict(self) -> dict[str, float]:
        """The parts and the total as a plain dict."""
        return {
            "energy_cost": self.energy_cost,
            "export_revenue": self.export_revenue,
            "demand_charge": self.demand_charge,
            "carbon_cost": self.carbon_cost,
            "wear_cost": self.wear_cost,
            "total": self.total,
        }


PLAN_COLUMNS = (
    "p_batt_kw",
    "p_charge_kw",
    "p_discharge_kw",
    "p_grid_kw",
    "p_import_kw",
    "p_export_kw",
    "p_pv_kw",
    "p_curtail_kw",
    "p_load_kw",
    "soc_frac",
    "price_import_per_kwh",
    "price_export_per_kwh",
    "ci_g_per_kwh",
    "peak_target_kw",
    "peak_reserve_kwh",
)


#: Row groups that are equalities (always active; their duals are prices, not limits).
EQUALITY_ROWS = ("power_balance", "energy_first", "energy_dynamics")


@dataclass(frozen=True)
class Plan:
    """A battery schedule over one horizon and what it costs.

    Attributes
    ----------
    status : str
        ``"optimal"``, ``"optimal_inaccurate"`` or ``"fallback"``.
    frame : pandas.DataFrame
        Per slot, indexed by UTC period start: the columns of ``PLAN_COLUMNS``; ``p_pv_kw`` is
        PV after curtailment and ``soc_frac`` the state of charge at the end of the slot.
        ``peak_target_kw`` is the slot's billing-month peak target the live guard holds (kW);
        ``peak_reserve_kwh`` the energy held back at the slot's end for load above the
        forecast (kWh, 0 without a peak reserve).
    costs : PlanCosts
        Costs recomputed from the plan's net powers.
    kg_co2 : float
        Location-based emissions of the planned imports (kg CO2).
    peak_import_kw : float
        Highest planned import (kW).
    solve_ms : float
        Wall time of the solve (ms).
    solver : str
        Which solver (and method) produced the plan.
    message : str
        Why a fallback was used, or notes such as slots where a direction was forced.
    objective : float
        The solver's objective value, including penalties for soft limits (currency).
    soft_violation_kwh : dict of str to float
        Energy by which each soft limit was exceeded (all zero in a clean plan).
    duals : dict of str to numpy.ndarray
        Per named row group of the program (``dispatch.optimise.formulation.CONSTRAINTS``
        and ``demand_peak[k]``), its dual values in the row's units (money per kW-slot for
        powers, per kWh for energies; >= 0 for an inequality): what relaxing it by one unit
        is worth. Empty for a fallback or a plan read back from the store.
    """

    status: str
    frame: pd.DataFrame
    costs: PlanCosts
    kg_co2: float
    peak_import_kw: float
    solve_ms: float
    solver: str
    message: str = ""
    objective: float = float("nan")
    soft_violation_kwh: Mapping[str, float] = field(default_factory=dict)
    duals: Mapping[str, np.ndarray] = field(default_factory=dict)
    _rows: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def _values(self) -> tuple[np.ndarray | None, list[Any]]:
        """The frame as one float array (None unless every column is float) and its columns,
        converted on the first call."""
        rows = self._rows
        if "values" not in rows:
            f = self.frame
            values = f.to_numpy()  # float64 when every column is: else rows come from pandas
            numeric = values.dtype == np.float64 and f.columns.is_unique
            if numeric:
                values.flags.writeable = False
            rows["values"] = values if numeric else None
            rows["columns"] = list(f.columns)
        return rows["values"], rows["columns"]

    def slot(self, pos: int) -> dict[str, Any]:
        """Row ``pos`` of ``frame`` as ``{column: value}`` (``frame.iloc[pos].to_dict()``).

        A frame of numbers is converted once, on the first call, and rows are read from that
        array (the control cycle reads a row every cycle): change a plan by making a new one.
        """
        values, columns = self._values()
        if values is None:
            return self.frame.iloc[pos].to_dict()
        return dict(zip(columns, values[pos].tolist(), strict=True))

    def column(self, name: str) -> np.ndarray:
        """Column ``name`` of ``frame`` as floats (read-only; from the same conversion as
        ``slot``); KeyError when the plan has no such column."""
        values, columns = self._values()
        if values is None or name not in columns:
            return self.frame[name].to_numpy(dtype=float)
        return values[:, columns.index(name)]

    def binding(self, tol: float = 1e-7) -> list[dict[str, Any]]:
        """The inequality limits that bind somewhere in the horizon: per row group, how many
        slots, the first slot and the largest dual (money per unit of the row)."""
        out = []
        for name, dual in self.duals.items():
            values = np.abs(np.asarray(dual, dtype=float))
            if name in EQUALITY_ROWS or values.size == 0:
                continue
            hit = np.flatnonzero(values > tol)
            if hit.size:
                first = self.frame.index[min(int(hit[0]), len(self.frame) - 1)]
                out.append({"limit": name, "slots": int(hit.size), "first": first.isoformat(),
                            "max_dual": float(values.max())})  # fmt: skip
        return out

    @property
    def is_fallback(self) -> bool:
        """True when the plan is the rule-based fallback, not an optimum."""
        return self.status == "fallback"

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary of the plan."""
        return {
            "status": self.status,
            "solver": self.solver,
            "message": self.message,
            "start": self.frame.index[0].isoformat(),
            "slots": len(self.frame),
            "objective": self.objective,
            "costs": self.costs.as_dict(),
            "kg_co2": self.kg_co2,
            "peak_import_kw": self.peak_import_kw,
            "solve_ms": self.solve_ms,
            "soft_violation_kwh": dict(self.soft_violation_kwh),
            "binding": self.binding(),
        }


@dataclass(frozen=True)
class Snapshot:
    """One reading of every device at the start of a control cycle (the process image).

    Powers follow the site-bus convention (power into the bus positive). A quantity that no
    device measured is NaN and named in ``missing``; one derived from the balance
    ``p_load_kw = p_grid_kw + p_pv_kw + p_batt_kw`` is named in ``derived``.

    Attributes
    ----------
    time : datetime.datetime
        When the reading was taken (tz-aware UTC).
    p_grid_kw : float
        Grid import (kW, > 0 import, < 0 export).
    p_pv_kw : float
        PV output (kW, >= 0).
    p_batt_kw : float
        Battery power at the AC bus (kW, > 0 discharge, < 0 charge).
    p_load_kw : float
        Site load (kW, >= 0).
    soc_frac : float
        Battery state of charge (fraction 0..1).
    p_charge_max_kw, p_discharge_max_kw : float
        Limits reported by the devices (kW, NaN when not reported).
    faults : tuple of str
        One line per device fault or failed read ("device: cause").
    stale : tuple of str
        Names of devices whose values are old (failed read or frozen).
    missing : tuple of str
        Field names no device provided (their value is NaN).
    derived : tuple of str
        Field names computed from the power balance.
    values : mapping of str to float
        Every decoded field by ``"device.field"`` (units in the field name).
    """

    time: Any
    p_grid_kw: float
    p_pv_kw: float
    p_batt_kw: float
    p_load_kw: float
    soc_frac: float
    p_charge_max_kw: float = float("nan")
    p_discharge_max_kw: float = float("nan")
    faults: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    derived: tuple[str, ...] = ()
    values: Mapping[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no device reported a fault or stale data and nothing is missing."""
        return not (self.faults or self.stale or self.missing)


@dataclass(frozen=True)
class Setpoints:
    """What the controller asks the battery to do until the next cycle.

    Attributes
    ----------
    p_batt_kw : float
        Battery power at the AC bus (kW, > 0 discharge, < 0 charge).
    reason : str
        Why (plan step, fallback rule, limit hit...), stored with the setpoint.
    revert_timeout_s : float, optional
        Seconds after which the device falls back to its default mode if not re-armed;
        ``None`` uses the device's configured value.
    default_mode : bool
        True to hand the battery back to its own default (self-consumption) mode instead.
    """

    p_batt_kw: float
    reason: str
    revert_timeout_s: float | None = None
    default_mode: bool = False
