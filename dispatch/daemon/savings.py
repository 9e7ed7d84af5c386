"""What the battery saved: measured grid flows against the same site without a battery.

Role: the money and CO2 figures of the status page for today and this billing month. Imports
``tariff``, ``carbon`` (accounting, chain, compose), ``store`` and ``config``; no wall clock
(``now`` is an argument).

What is counted, per completed plan interval (``plan.step_min``):

- **the flows** are the interval's mean measured powers (the carbon ledger's intervals where
  recorded, else the same ``compose.interval_flows`` of the stored cycle readings), so
  an interval with at least one valid reading counts at its mean power; intervals without a
  valid reading (the daemon was down) are not counted, and the current interval only once it
  has ended;
- **with battery**: ``import_kwh x import price - export_kwh x export price``, the measured
  grid flows, priced per interval with the tariff (``tariff.import_price_per_kwh`` and
  ``export_price_per_kwh``; a day-ahead tariff with the prices the forecast in force knows,
  intervals without a known price are left out and counted as such);
- **without battery**: the same load and PV with the grid taking ``load - PV``, a surplus
  exported up to the export limit (``accounting.interval_accounting``'s counterfactual), at the
  same prices;
- **CO2**: the location-based emissions of both (imports x the interval's intensity), so
  storage losses show as added emissions under a flat factor;
- **demand charge**: the highest interval-mean import of the period with and without the
  battery; their difference times ``demand_charge_per_kw_month`` is what the month's peak so
  far saves if it holds to the month's end (not added to the energy saving).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dispatch import tariff
from dispatch.carbon import accounting, chain, compose
from dispatch.config import SiteConfig
from dispatch.store import Store

#: Energy and emission columns a period's accounts carry (those of ``interval_accounting``).
COLUMNS = (
    "import_kwh",
    "export_kwh",
    "nobatt_import_kwh",
    "nobatt_export_kwh",
    "location_kg_co2",
    "nobatt_kg_co2",
)


@dataclass(frozen=True)
class Savings:
    """A period's cost and CO2 with and without the battery.

    Attributes
    ----------
    intervals : int
        Completed intervals counted (with a valid reading and a known price).
    unpriced : int
        Intervals with flows but no known price (left out).
    until : pandas.Timestamp or None
        End of the last interval counted (UTC), None when none was.
    currency : str
        The tariff's currency.
    cost, cost_nobatt : float
        Energy cost (imports less export revenue) with and without the battery (currency).
    kg_co2, kg_co2_nobatt : float
        Location-based emissions with and without the battery (kg CO2).
    import_kwh, import_nobatt_kwh : float
        Grid imports with and without the battery (kWh).
    peak_kw, peak_nobatt_kw : float
        Highest interval-mean import with and without the battery (kW; 0 without intervals).
    demand_charge_per_kw : float
        The tariff's demand charge (currency per kW and month).
    step_min : float
        Interval length (min).
    """

    intervals: int
    unpriced: int
    until: pd.Timestamp | None
    currency: str
    cost: float = 0.0
    cost_nobatt: float = 0.0
    kg_co2: float = 0.0
    kg_co2_nobatt: float = 0.0
    import_kwh: float = 0.0
    import_nobatt_kwh: float = 0.0
    peak_kw: float = 0.0
    peak_nobatt_kw: float = 0.0
    demand_charge_per_kw: float = 0.0
    step_min: float = 15.0

    @property
    def saved(self) -> float:
        """Energy cost saved (currency; negative: the battery cost money)."""
        return self.cost_nobatt - self.cost

    @property
    def kg_co2_avoided(self) -> float:
        """Emissions avoided (kg CO2; negative: the battery added emissions)."""
        return self.kg_co2_nobatt - self.kg_co2

    @property
    def demand_saved(self) -> float:
        """Demand charge the lower peak saves if it holds (currency per month)."""
        return (self.peak_nobatt_kw - self.peak_kw) * self.demand_charge_per_kw


def interval_prices(
    config: SiteConfig, index: pd.DatetimeIndex, known: pd.DataFrame | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Import and export price of each interval (currency per kWh; NaN where unknown).

    Parameters
    ----------
    config : SiteConfig
        The tariff.
    index : pandas.DatetimeIndex
        UTC interval starts (sorted; gaps allowed).
    known : pandas.DataFrame, optional
        ``price_import_per_kwh`` and ``price_export_per_kwh`` by UTC slot start (a forecast's
        frame): used for a day-ahead tariff, whose past prices the tariff alone cannot give.
    """
    if len(index) == 0:
        return np.zeros(0), np.zeros(0)
    if config.uses_day_ahead:
        if known is None:
            return np.full(len(index), math.nan), np.full(len(index), math.nan)
        frame = known.reindex(index)
        imp = frame["price_import_per_kwh"].to_numpy(float)
        return imp, frame["price_export_per_kwh"].to_numpy(float)
    step = pd.Timedelta(minutes=config.plan.step_min)
    full = pd.date_range(index[0], index[-1] + step, freq=step)  # a fixed step, 2+ slots
    imp = tariff.import_price_per_kwh(config, full).reindex(index).to_numpy(float)
    exp = tariff.export_price_per_kwh(config, full).reindex(index).to_numpy(float)
    return imp, exp


def savings(
    accounts: pd.DataFrame, config: SiteConfig, known_prices: pd.DataFrame | None = None
) -> Savings:
    """The cost and CO2 of a period's intervals with and without the battery.

    Parameters
    ----------
    accounts : pandas.DataFrame
        By UTC interval start, the ``COLUMNS`` (kWh, kg CO2) of ``accounting.interval_accounting``
        (or of ledger records).
    config : SiteConfig
        The tariff (prices, currency, demand charge) and the plan step (interval length).
    known_prices : pandas.DataFrame, optional
        Prices for a day-ahead tariff (see ``interval_prices``).
    """
    currency, dc = config.tariff.currency, config.tariff.demand_charge_per_kw_month
    if accounts.empty:
        return Savings(0, 0, None, currency, demand_charge_per_kw=dc, step_min=config.plan.step_min)
    index = pd.DatetimeIndex(accounts.index)
    imp, exp = interval_prices(config, index, known_prices)
    priced = np.isfinite(imp) & np.isfinite(exp)
    a = {c: accounts[c].to_numpy(float) for c in COLUMNS}
    step = pd.Timedelta(minutes=config.plan.step_min)
    dt_h = step / pd.Timedelta(hours=1)

    def cost(import_kwh: np.ndarray, export_kwh: np.ndarray) -> float:
        return float(np.sum((import_kwh * imp - export_kwh * exp)[priced]))

    return Savings(
        intervals=int(priced.sum()),
        unpriced=int((~priced).sum()),
        until=index[priced][-1] + step if priced.any() else None,
        currency=currency,
        cost=cost(a["import_kwh"], a["export_kwh"]),
        cost_nobatt=cost(a["nobatt_import_kwh"], a["nobatt_export_kwh"]),
        kg_co2=float(a["location_kg_co2"][priced].sum()),
        kg_co2_nobatt=float(a["nobatt_kg_co2"][priced].sum()),
        import_kwh=float(a["import_kwh"][priced].sum()),
        import_nobatt_kwh=float(a["nobatt_import_kwh"][priced].sum()),
        peak_kw=float(a["import_kwh"].max()) / dt_h,
        peak_nobatt_kw=float(a["nobatt_import_kwh"].max()) / dt_h,
        demand_charge_per_kw=dc,
        step_min=config.plan.step_min,
    )


def measured_accounts(
    store: Store, config: SiteConfig, start: dt.datetime, until: dt.datetime
) -> pd.DataFrame:
    """Accounts of the completed intervals in ``[start, until)`` (UTC; ``until`` floored to
    the plan step): the ledger's records where it has them, the stored readings after its
    head through the ledger's own path (``carbon.compose``), one row per interval with a
    valid reading."""
    step = pd.Timedelta(minutes=config.plan.step_min)
    lo, hi = pd.Timestamp(start).floor(step), pd.Timestamp(until).floor(step)
    if hi <= lo:
        return pd.DataFrame(columns=list(COLUMNS), index=pd.DatetimeIndex([], tz="UTC"))
    rows = store.ledger(since_utc=lo.strftime(chain.TIME_FORMAT))
    records = compose.records_from_rows(rows)
    frames = []
    if records:
        booked = chain.records_frame(records)
        frames.append(booked.loc[booked.index < hi, list(COLUMNS)])
    head = store.ledger_head().end_utc
    after = max(lo, pd.Timestamp(head)) if head else lo
    if after < hi:
        samples = compose.samples_from_rows(
            store.rows("measurements", after.to_pydatetime(), hi.to_pydatetime())
        )
        flows = compose.interval_flows(samples, step, hi)
        if not flows.empty:
            frames.append(accounting.interval_accounting(flows, config, step)[list(COLUMNS)])
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS), index=pd.DatetimeIndex([], tz="UTC"))
    out = pd.concat(frames).astype(float)
    return out[~out.index.duplicated(keep="first")].sort_index()


def day_start(now: dt.datetime, timezone: str) -> dt.datetime:
    """Local midnight of ``now``'s day in ``timezone``, as UTC."""
    local = pd.Timestamp(now).tz_convert(timezone)
    return local.normalize().tz_convert("UTC").to_pydatetime()


def month_start(now: dt.datetime, timezone: str) -> dt.datetime:
    """The first local midnight of ``now``'s month in ``timezone``, as UTC."""
    local = pd.Timestamp(now).tz_convert(timezone)
    first = pd.Timestamp(year=local.year, month=local.month, day=1, tz=timezone)
    return first.tz_convert("UTC").to_pydatetime()
