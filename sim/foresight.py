"""What a replay's controller knows of the prices and grid intensity ahead.

Role: the price side of a fair replay (``sim.backtest``). Day-ahead prices are known once the
auction has published them (``tariff.day_ahead_market``; without that section, over the whole
horizon); the grid intensity is measured, so never known ahead. Where a value is not yet known,
the plan sees the value of the same slot on the nearest day before that is known (the last
published day's prices, yesterday's intensity), and the tariff turns such a day-ahead price
into import and export prices as it does the real one. A scenario without day-ahead prices or
an intensity series (a tariff known in advance, a constant grid factor) sees the truth.
Depends on ``dispatch`` (pipeline, tariff) and ``sim.scenario``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dispatch import pipeline, tariff
from sim.scenario import Scenario


@dataclass(frozen=True)
class Foresight:
    """Import and export prices and intensity of the replay's slots as seen from each step.

    Attributes
    ----------
    price_import_per_kwh, price_export_per_kwh, ci_g_per_kwh : numpy.ndarray
        Shape (days back + 1, slots of the period padded by one horizon): row ``k`` holds the
        period's values computed from the day-ahead prices and intensity ``k`` days earlier
        (row 0: the truth). Before the period, the day-ahead price is its first (published
        before the period starts) and the intensity the configured grid factor.
    published_end : numpy.ndarray or None
        Per slot of the period, the first slot whose day-ahead price is not yet published at
        its start; None when every price is known.
    slots_per_day : int
        Slots in a day.
    """

    price_import_per_kwh: np.ndarray
    price_export_per_kwh: np.ndarray
    ci_g_per_kwh: np.ndarray
    published_end: np.ndarray | None
    slots_per_day: int

    @classmethod
    def of(cls, scenario: Scenario, horizon: int) -> Foresight:
        """Precompute the views of ``scenario`` for plans of ``horizon`` slots."""
        config, data = scenario.config, scenario.data
        day = round(24 * 60 / config.plan.step_min)
        rows: list[tuple[np.ndarray, ...]] = []
        for k in range(horizon // day + 2):
            lagged = data.copy()
            da = pipeline.DAY_AHEAD_COLUMN
            if da in data.columns:  # the first day's prices are out before the period starts
                lagged[da] = data[da].shift(k * day).bfill()
            if "ci_g_per_kwh" in data.columns:  # none measured yet: the configured factor
                ci = config.carbon.grid_ci_g_per_kwh
                lagged["ci_g_per_kwh"] = data["ci_g_per_kwh"].shift(k * day).fillna(ci)
            frame = pipeline.complete_forecast(config, lagged).frame
            rows.append(tuple(
                np.concatenate([a, a[-horizon:]])
                for a in frame[["price_import_per_kwh", "price_export_per_kwh", "ci_g_per_kwh"]]
                .to_numpy(float).T
            ))  # fmt: skip
        imp, exp, ci = (np.stack(r) for r in zip(*rows, strict=True))
        until = tariff.day_ahead_published_until(config, data.index)
        ends = None
        if until is not None and pipeline.DAY_AHEAD_COLUMN in data.columns:
            step = data.index[1] - data.index[0]
            ends = np.asarray((until - data.index[0]) // step, dtype=np.int64)
        return cls(imp, exp, ci, ends, day)

    def window(self, i: int, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Import and export prices (currency per kWh) and intensity (g/kWh) of slots
        ``[i, i + horizon)`` as known at the start of slot ``i``."""
        t = np.arange(i, i + horizon)
        last = self.ci_g_per_kwh.shape[0] - 1
        back_ci = np.minimum((t - i) // self.slots_per_day + 1, last)
        back_da = np.zeros(horizon, dtype=np.int64)
        if self.published_end is not None:
            end = self.published_end[i]
            back_da = np.where(t < end, 0, np.minimum((t - end) // self.slots_per_day + 1, last))
        return (
            self.price_import_per_kwh[back_da, t],
            self.price_export_per_kwh[back_da, t],
            self.ci_g_per_kwh[back_ci, t],
        )
