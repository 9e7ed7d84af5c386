"""What a replay's controller knows of the prices and grid intensity ahead.

Role: the price side of a fair replay (``sim.backtest``). Day-ahead prices are known once the
auction has published them (``tariff.day_ahead_market``; without that section, over the whole
horizon); the grid intensity is measured, so never known ahead. What is not yet known is
forecast from what is:

- a day-ahead price: as the daemon forecasts it (``dispatch.forecast.prices``: the last
  published day's, or for a Saturday, Sunday or Monday last week's moved by the change of
  level);
- the intensity: yesterday's at the same time (before any measurement, the configured grid
  factor).

The tariff turns a forecast day-ahead price into import and export prices as it does the real
one (every tariff here is affine in the day-ahead price, so the replay computes each slot's
prices as a base plus a factor times the price). A scenario without day-ahead prices or an
intensity series (a tariff known in advance, a constant grid factor) sees the truth.
Depends on ``dispatch`` (pipeline, tariff, forecast.prices) and ``sim.scenario``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dispatch import pipeline, tariff
from dispatch.forecast.prices import WEEKLY_DAYS, day_ahead_ahead
from sim.scenario import Scenario

CI = "ci_g_per_kwh"


@dataclass(frozen=True)
class Foresight:
    """The replay's prices and intensity as seen from each step (arrays over the period's
    slots padded by one horizon, like the replay's truth).

    Attributes
    ----------
    import_base, import_per_day_ahead, export_base, export_per_day_ahead : numpy.ndarray
        Per slot, a price (currency per kWh) is ``base + per_day_ahead x day-ahead price``.
    day_ahead_per_kwh : numpy.ndarray or None
        The real day-ahead price; None without one (the prices are then known).
    published_end : numpy.ndarray or None
        Per slot of the period, the first slot whose day-ahead price is not yet published at
        its start; None when every price is known.
    weekly : numpy.ndarray
        Per slot, whether its market day is one of ``WEEKLY_DAYS``.
    ci_g_per_kwh : numpy.ndarray
        The real intensity (g/kWh).
    ci_measured : bool
        Whether the intensity is a measured series (else a configured, known one).
    ci_default_g_per_kwh : float
        The configured grid factor, the intensity before any measurement.
    slots_per_day : int
        Slots in a day.
    """

    import_base: np.ndarray
    import_per_day_ahead: np.ndarray
    export_base: np.ndarray
    export_per_day_ahead: np.ndarray
    day_ahead_per_kwh: np.ndarray | None
    published_end: np.ndarray | None
    weekly: np.ndarray
    ci_g_per_kwh: np.ndarray
    ci_measured: bool
    ci_default_g_per_kwh: float
    slots_per_day: int

    @classmethod
    def of(cls, scenario: Scenario, horizon: int) -> Foresight:
        """Precompute the views of ``scenario`` for plans of ``horizon`` slots."""
        config, data = scenario.config, scenario.data
        columns = ["price_import_per_kwh", "price_export_per_kwh", CI]

        def padded(frame: pd.DataFrame) -> np.ndarray:
            values = frame[columns].to_numpy(float)
            return np.concatenate([values, values[-horizon:]])

        real = padded(pipeline.complete_forecast(config, data).frame)
        da_column = pipeline.DAY_AHEAD_COLUMN
        per_da, da, ends = np.zeros_like(real), None, None
        weekly = np.zeros(len(real), dtype=bool)
        if da_column in data.columns:
            def moved(by: float) -> np.ndarray:
                raised = data.assign(**{da_column: data[da_column] + by})
                return padded(pipeline.complete_forecast(config, raised).frame) - real

            per_da = moved(1.0)
            if not np.allclose(moved(2.0), 2.0 * per_da, rtol=1e-9, atol=1e-9):
                raise ValueError("foresight: the tariff's prices are not affine in the day-ahead")
            values = data[da_column].to_numpy(float)
            da = np.concatenate([values, values[-horizon:]])
            until = tariff.day_ahead_published_until(config, data.index)
            if until is not None:
                step = data.index[1] - data.index[0]
                ends = np.asarray((until - data.index[0]) // step, dtype=np.int64)
                index = pd.date_range(data.index[0], periods=len(real), freq=step)
                market = config.tariff.day_ahead_market
                assert market is not None  # published_until is None without it
                weekly = np.isin(index.tz_convert(market.timezone).day_of_week, WEEKLY_DAYS)
        base = real - per_da * (da[:, None] if da is not None else 0.0)
        return cls(
            import_base=base[:, 0], import_per_day_ahead=per_da[:, 0],
            export_base=base[:, 1], export_per_day_ahead=per_da[:, 1],
            day_ahead_per_kwh=da, published_end=ends, weekly=weekly, ci_g_per_kwh=real[:, 2],
            ci_measured=CI in data.columns, ci_default_g_per_kwh=config.carbon.grid_ci_g_per_kwh,
            slots_per_day=round(24 * 60 / config.plan.step_min),
        )  # fmt: skip

    def window(self, i: int, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Import and export prices (currency per kWh) and intensity (g/kWh) of slots
        ``[i, i + horizon)`` as known at the start of slot ``i``."""
        t = np.arange(i, i + horizon)
        da = self._day_ahead(i, t)
        ci = self.ci_g_per_kwh[t]
        if self.ci_measured:
            back = t - ((t - i) // self.slots_per_day + 1) * self.slots_per_day
            ci = np.where(back >= 0, self.ci_g_per_kwh[np.maximum(back, 0)],
                          self.ci_default_g_per_kwh)  # fmt: skip
        return (
            self.import_base[t] + self.import_per_day_ahead[t] * da,
            self.export_base[t] + self.export_per_day_ahead[t] * da,
            ci,
        )

    def _day_ahead(self, i: int, t: np.ndarray) -> np.ndarray:
        """Day-ahead prices of slots ``t`` as known at the start of slot ``i`` (see the
        module docstring); zeros without a day-ahead series."""
        if self.day_ahead_per_kwh is None:
            return np.zeros(len(t))
        da = self.day_ahead_per_kwh
        if self.published_end is None:
            return da[t]
        return day_ahead_ahead(da, t, int(self.published_end[i]), self.slots_per_day, self.weekly)
