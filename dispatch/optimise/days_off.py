"""The energy the plan keeps on the factory's days off (``plan.day_off_reserve_frac``).

Role: per slot, the configured reserve (kWh), raised on the slots of days off (weekends,
public and extra holidays, planned shutdowns of the load calendar), where the load forecast
expects the plant idle but work that comes unannounced would meet an empty battery. Imports
numpy, pandas, ``dispatch.config`` and ``dispatch.calendar``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from dispatch.calendar import WORK, FactoryCalendar
from dispatch.config import SiteConfig

__all__ = ["BaseReserve"]


class BaseReserve:
    """Per-slot reserve energy (kWh) before the peak reserve is added.

    Parameters
    ----------
    config : SiteConfig
        ``battery.reserve_frac`` everywhere; ``plan.day_off_reserve_frac`` (when set) on the
        slots whose site-local date is not a working day of ``FactoryCalendar.for_load``.
    """

    def __init__(self, config: SiteConfig):
        b = config.battery
        self.everywhere_kwh = b.reserve_frac * b.energy_kwh
        frac = config.plan.day_off_reserve_frac
        self.day_off_kwh = max(frac or 0.0, b.reserve_frac) * b.energy_kwh
        self.calendar = None if frac is None else FactoryCalendar.for_load(config)
        self._off: dict[dt.date, bool] = {}

    def kwh(self, index: pd.DatetimeIndex) -> np.ndarray:
        """The reserve of each slot of the tz-aware ``index`` (kWh)."""
        base = np.full(len(index), self.everywhere_kwh)
        if self.calendar is None:
            return base
        dates = list(index.tz_convert(self.calendar.timezone).date)
        new = sorted(set(dates) - self._off.keys())
        if new:
            self._off.update(zip(new, (self.calendar.day_types(new) != WORK).tolist(),
                                 strict=True))  # fmt: skip
        off = np.array([self._off[d] for d in dates], dtype=bool)
        return np.where(off, self.day_off_kwh, base)
