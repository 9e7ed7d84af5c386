"""The peak reserve's inputs and outputs: how far the net load may exceed its forecast, and how
much energy a plan holds back for it.

Role: pure arithmetic on forecasts and arrays; imports numpy, pandas and ``dispatch.types``.
The margin feeds the robust rows of ``formulation`` (parameter ``peak_margin_kw``); the reserve
is recomputed from a solved plan so that it shows the least energy the plan must hold, whatever
slack the solver left in its own variables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dispatch.types import Forecast, InputError

__all__ = ["peak_margin_kw", "peak_reserve_kwh", "quantile_at"]


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


def peak_margin_kw(forecast: Forecast, level: float) -> np.ndarray:
    """How far the net load may exceed its expectation at risk ``level`` (kW, >= 0).

    The load's ``level`` quantile above the expected load, plus the expected PV above its
    ``1 - level`` quantile; zero for parts without quantiles and at the median (``0.5``).

    Parameters
    ----------
    forecast : Forecast
        Expected ``p_load_kw`` and ``p_pv_kw`` with optional quantile frames.
    level : float
        Risk level in [0.5, 1).
    """
    frame = forecast.frame
    margin = np.zeros(len(frame))
    if level <= 0.5:
        return margin
    if forecast.load_quantiles_kw is not None:
        high = quantile_at(forecast.load_quantiles_kw, level, "load")
        margin += np.maximum(high - frame["p_load_kw"].to_numpy(float), 0.0)
    if forecast.pv_quantiles_kw is not None:
        low = quantile_at(forecast.pv_quantiles_kw, 1.0 - level, "PV")
        margin += np.maximum(frame["p_pv_kw"].to_numpy(float) - low, 0.0)
    return margin


def peak_reserve_kwh(
    import_kw: np.ndarray,
    margin_kw: np.ndarray,
    target_kw: np.ndarray,
    dt_h: float,
    eta_discharge: float,
    window: int,
) -> np.ndarray:
    """Energy a plan holds back at each slot end for peaks (kWh).

    The extra discharge that would keep the import at the target if the net load came at its
    high quantile, ``max(0, import + margin - target)``, added up over the last ``window``
    slots and taken from storage at efficiency ``eta_discharge``.

    Parameters
    ----------
    import_kw, margin_kw, target_kw : numpy.ndarray
        Planned import, margin (see ``peak_margin_kw``) and peak target per slot (kW).
    dt_h : float
        Slot length (hours).
    eta_discharge : float
        Discharge efficiency.
    window : int
        Slots over which the extra discharges add up.
    """
    extra = np.maximum(import_kw + margin_kw - target_kw, 0.0)
    drawn = np.cumsum(dt_h * extra / eta_discharge)
    if window < len(drawn):
        drawn[window:] = drawn[window:] - drawn[:-window]
    return drawn
