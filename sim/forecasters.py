"""Forecasters for the reference replays: what the bare optimiser is told about the horizon.

Role: the forecast side of ``sim.backtest``'s references (our controller forecasts for
itself, ``sim.replay``). A forecaster reads the padded truth only before the step's first
slot, except ``perfect``. Depends on ``dispatch`` (types) and numpy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dispatch.optimise.outcome import SlotInputs

#: A forecaster maps (truth with padding, first slot, horizon) to (pv_kw, load_kw) forecasts;
#: it may read the truth only before the first slot, except the ``perfect`` one.
Forecaster = Callable[[SlotInputs, int, int], tuple[np.ndarray, np.ndarray]]


def perfect(truth: SlotInputs, i: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """The future as it will be (the upper bound of any forecaster)."""
    return truth.pv_kw[i : i + horizon], truth.load_kw[i : i + horizon]


def _lagged(values: np.ndarray, i: int, horizon: int, lag: int) -> np.ndarray:
    """``values[t - k * lag]`` for t in ``[i, i + horizon)``, with the smallest k >= 1 that
    reaches before ``i``; before any history, the first value."""
    t = np.arange(i, i + horizon)
    k = (t - i) // lag + 1
    src = t - k * lag
    return values[np.where(src >= 0, src, 0)]


def persistence(truth: SlotInputs, i: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Load of the same time last week, PV of the same time yesterday (naive forecasts)."""
    day = round(24 / truth.dt_h)
    return _lagged(truth.pv_kw, i, horizon, day), _lagged(truth.load_kw, i, horizon, 7 * day)


def noisy(sigma_frac: float = 0.1, seed: int = 0) -> Forecaster:
    """Truth times a seeded multiplicative error growing with lead time (an error model)."""
    rng = np.random.default_rng(seed)

    def forecast(truth: SlotInputs, i: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        lead = np.sqrt(np.arange(1, horizon + 1) / horizon)
        pv, load = perfect(truth, i, horizon)
        e_pv, e_load = rng.standard_normal((2, horizon)) * sigma_frac * lead
        return np.maximum(pv * (1 + e_pv), 0.0), np.maximum(load * (1 + e_load), 0.0)

    return forecast
