"""The peak reserve: how far the net load may exceed its forecast, and how much energy to hold
back so that the month's peak target survives it.

Role: pure arithmetic on forecasts and arrays; imports numpy, pandas and ``dispatch.types``.
``DispatchModel`` turns the floor into the per-slot soft reserve of ``formulation``
(parameter ``reserve_kwh``) and shows the reserve proper in the plan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dispatch.types import Forecast, InputError

__all__ = [
    "Recharge",
    "exceedance_ahead_kwh",
    "paths_reserve_floor_kwh",
    "peak_margin_kw",
    "peak_reserve_floor_kwh",
    "quantile_at",
]


def quantile_at(quantiles: pd.DataFrame, level: float, what: str) -> np.ndarray:
    """Values at quantile ``level``, linear between the forecast's levels (kW).

    Raises
    ------
    InputError
        When ``level`` lies outside the levels the forecast carries.
    """
    levels = np.asarray(quantiles.columns, dtype=float)
    order = np.argsort(levels)
    levels = levels[order]
    if not levels[0] - 1e-9 <= level <= levels[-1] + 1e-9:
        raise InputError(
            f"plan.peak_risk_quantile needs the {what} quantile {level:g}, but the forecast "
            f"carries levels {levels.tolist()}; forecast that level too"
        )
    values = quantiles.to_numpy(float)[:, order]
    hi = int(np.clip(np.searchsorted(levels, level), 1, max(len(levels) - 1, 1)))
    if len(levels) == 1:
        return values[:, 0]
    lo = hi - 1
    w = (level - levels[lo]) / (levels[hi] - levels[lo])
    return values[:, lo] + w * (values[:, hi] - values[:, lo])


def peak_margin_kw(forecast: Forecast, level: float) -> np.ndarray | None:
    """How far the net load may exceed its expectation at risk ``level`` (kW, >= 0).

    The load's ``level`` quantile above the expected load, plus the expected PV above its
    ``1 - level`` quantile; zero for a part without quantiles. None (no peak reserve) at the
    median (``0.5``) or when the forecast carries no quantiles at all.

    Parameters
    ----------
    forecast : Forecast
        Expected ``p_load_kw`` and ``p_pv_kw`` with optional quantile frames.
    level : float
        Risk level in [0.5, 1).
    """
    if level <= 0.5 or (forecast.load_quantiles_kw is None and forecast.pv_quantiles_kw is None):
        return None
    margin = np.zeros(len(forecast.index))
    if forecast.load_quantiles_kw is not None:
        high = quantile_at(forecast.load_quantiles_kw, level, "load")
        margin += np.maximum(high - forecast.column("p_load_kw"), 0.0)
    if forecast.pv_quantiles_kw is not None:
        low = quantile_at(forecast.pv_quantiles_kw, 1.0 - level, "PV")
        margin += np.maximum(forecast.column("p_pv_kw") - low, 0.0)
    return margin


@dataclass(frozen=True)
class Recharge:
    """What the battery can take back between peaks without importing above the target.

    Attributes
    ----------
    charge_max_kw : float
        Charge power limit (kW).
    eta_charge : float
        Charge efficiency.
    usable_kwh : float
        Energy between the SoC minimum and maximum (kWh).
    """

    charge_max_kw: float
    eta_charge: float
    usable_kwh: float


def exceedance_ahead_kwh(
    net_kw: np.ndarray,
    target_kw: np.ndarray,
    dt_h: float,
    eta_discharge: float,
    window: int,
    recharge: Recharge | None = None,
) -> np.ndarray:
    """Energy the battery must hold after each slot to keep the import at the target over the
    next ``window`` slots, for net load ``net_kw`` (kWh from storage).

    Parameters
    ----------
    net_kw : numpy.ndarray
        Net load (load - PV) per slot (kW); shape (slots,) or (paths, slots).
    target_kw : numpy.ndarray
        Each slot's billing-month peak target (kW).
    dt_h : float
        Slot length (hours).
    eta_discharge : float
        Discharge efficiency.
    window : int
        Slots ahead that count.
    recharge : Recharge, optional
        When given, the battery also charges, below the target, in the slots where the net
        load leaves room under it, so a gap between two peaks refills what the first one
        took; the energy held is then at most ``recharge.usable_kwh``. Without it, every
        slot's excess over the window adds up.

    Returns
    -------
    numpy.ndarray
        Per slot ``t`` (same shape as ``net_kw``): without ``recharge``, the sum over slots
        ``t+1 .. t+window`` of ``dt * max(0, net - target) / eta_discharge``; with it, the
        least energy from which charging in the gaps and discharging above the target never
        runs dry over those slots (kWh).
    """
    net = np.asarray(net_kw, dtype=float)
    over = dt_h * np.maximum(net - target_kw, 0.0) / eta_discharge
    T = net.shape[-1]
    pad = np.zeros((*net.shape[:-1], window + 1))
    if recharge is None:
        ahead = np.cumsum(over[..., ::-1], axis=-1)[..., ::-1]  # sum over s >= t
        ahead = np.concatenate([ahead, pad], axis=-1)
        return ahead[..., 1 : T + 1] - ahead[..., window + 1 : window + 1 + T]
    room = np.maximum(target_kw - net, 0.0)
    refill = dt_h * recharge.eta_charge * np.minimum(recharge.charge_max_kw, room)
    change = np.concatenate([over - refill, pad], axis=-1)
    need = np.zeros_like(net)
    for lag in range(window, 0, -1):  # from the window's last slot back to the next one
        np.add(need, change[..., lag : lag + T], out=need)  # clipped to [0, usable] in place
        np.maximum(need, 0.0, out=need)
        np.minimum(need, recharge.usable_kwh, out=need)
    return need


def peak_reserve_floor_kwh(
    net_kw: np.ndarray,
    margin_kw: np.ndarray,
    target_kw: np.ndarray,
    dt_h: float,
    eta_discharge: float,
    window: int,
    recharge: Recharge | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The energy to keep stored at each slot's end for peaks, and the part of it that is
    held only because the load may exceed its forecast (kWh above the SoC minimum).

    The floor lets the live guard hold the month's peak target through the next ``window``
    slots if the net load came at its high quantile (expected net load + ``margin_kw``). The
    reserve proper is the floor minus what the expected load alone needs: zero when the margin
    is zero, i.e. at the median.

    Returns
    -------
    floor_kwh, reserve_kwh : numpy.ndarray
    """
    args = (target_kw, dt_h, eta_discharge, window, recharge)
    net = np.asarray(net_kw, dtype=float)
    floor, expected = exceedance_ahead_kwh(np.stack([net + margin_kw, net]), *args)  # one pass
    return floor, floor - expected


def paths_reserve_floor_kwh(
    net_kw: np.ndarray,
    net_paths_kw: np.ndarray,
    level: float,
    target_kw: np.ndarray,
    dt_h: float,
    eta_discharge: float,
    window: int,
    recharge: Recharge | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``peak_reserve_floor_kwh`` sized on net load paths instead of per-slot quantiles: per
    slot, the ``level`` quantile over the paths of the energy the next ``window`` slots need
    above the target (the next higher path's). A path keeps its slots' errors together, so
    the floor is what one bad stretch of load needs, not every slot at its quantile at once.

    Parameters
    ----------
    net_kw : numpy.ndarray
        Expected net load per slot (kW).
    net_paths_kw : numpy.ndarray
        Net load paths, shape (paths, slots) (kW).
    level : float
        Quantile level over the paths, in (0.5, 1).
    target_kw, dt_h, eta_discharge, window, recharge
        As for ``exceedance_ahead_kwh``.

    Returns
    -------
    floor_kwh, reserve_kwh : numpy.ndarray
        The floor, and its part above what the expected load needs (>= 0).
    """
    args = (target_kw, dt_h, eta_discharge, window, recharge)
    paths = np.asarray(net_paths_kw, dtype=float)
    both = exceedance_ahead_kwh(np.vstack([paths, np.asarray(net_kw, dtype=float)[None, :]]), *args)
    floor = np.quantile(both[:-1], level, axis=0, method="higher")  # the paths, then the
    return floor, np.maximum(floor - both[-1], 0.0)  # expected net load, in one pass
