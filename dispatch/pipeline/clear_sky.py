"""The PV chain of the site's arrays, and its clear-sky answer kept per UTC day.

Role: ``chain`` runs pvlib's chain (``dispatch.forecast.pv``) on a weather frame, or on clear
sky without one, and applies the PV calibration. Every step of the clear-sky chain is
computed stamp by stamp (sun position, Ineichen irradiance, transposition, cell temperature,
inverter), so its value at a slot does not depend on the other slots asked for: ``ClearSkyPV``
computes it once per UTC day of plan slots and answers any index on that grid from those
days. The forecast job asks for clear sky every plan while there is no PV history (a
persistence site's first day) and for the curtailment estimate; each call of the chain costs
tens of milliseconds. Pure: no I/O, no wall clock.
"""

from __future__ import annotations

import pandas as pd

from dispatch.config import SiteConfig
from dispatch.forecast import calibrate, pv, pv_weather

__all__ = ["ClearSkyPV", "chain"]


def _calibrated(
    config: SiteConfig,
    index: pd.DatetimeIndex,
    arrays: pd.DataFrame,
    fit: calibrate.CalibrationFit | None,
) -> pd.DataFrame:
    """``p_pv_kw`` (calibrated with ``fit``) and each array's share of it (kW)."""
    out = pd.DataFrame(index=index)
    raw = arrays["p_pv_kw"]
    out["p_pv_kw"] = raw if fit is None else calibrate.apply_calibration(raw, fit)
    ratio = (out["p_pv_kw"] / raw.where(raw > 0)).fillna(0.0)
    for a in config.pv:
        out[f"p_pv_{a.name}_kw"] = arrays[a.name] * ratio
    return out


def chain(
    config: SiteConfig,
    index: pd.DatetimeIndex,
    weather: pd.DataFrame | None,
    fit: calibrate.CalibrationFit | None,
    clear_sky: ClearSkyPV | None = None,
) -> pd.DataFrame:
    """PV of the arrays through the pvlib chain (clear sky without weather, from
    ``clear_sky``'s days when given), calibrated with ``fit``: ``p_pv_kw`` and
    ``p_pv_<array>_kw`` (kW) on ``index``."""
    if not config.pv:
        out = pd.DataFrame(index=index)
        out["p_pv_kw"] = 0.0
        return out
    if weather is None and clear_sky is not None:
        return _calibrated(config, index, clear_sky.arrays(index), fit)
    weather = pv_weather.clearsky_weather(config.site, index) if weather is None else weather
    arrays = pv.pv_ac_kw(config.site, config.pv, weather.loc[index])
    return _calibrated(config, index, arrays, fit)


class ClearSkyPV:
    """The site's clear-sky PV (kW), computed once per UTC day of plan slots.

    Parameters
    ----------
    config : SiteConfig
        Site and arrays.
    fit : CalibrationFit, optional
        ``dispatch calibrate-pv``'s fit, applied by ``on``.
    keep_days : int
        Days kept (the oldest are dropped beyond).
    """

    def __init__(
        self, config: SiteConfig, fit: calibrate.CalibrationFit | None = None, keep_days: int = 64
    ) -> None:
        self.config, self.fit, self.keep_days = config, fit, keep_days
        self.step = pd.Timedelta(minutes=config.plan.step_min)
        self._days: dict[pd.Timestamp, pd.DataFrame] = {}

    def _day(self, day: pd.Timestamp) -> pd.DataFrame:
        """``pv.pv_ac_kw`` on clear sky over the plan slots of the UTC ``day``."""
        found = self._days.get(day)
        if found is None:
            n = round(pd.Timedelta(days=1) / self.step)
            slots = pd.date_range(day, periods=n, freq=self.step)
            weather = pv_weather.clearsky_weather(self.config.site, slots)
            found = self._days[day] = pv.pv_ac_kw(self.config.site, self.config.pv, weather)
            for old in sorted(self._days)[: max(0, len(self._days) - self.keep_days)]:
                del self._days[old]
        return found

    def arrays(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        """Uncalibrated clear-sky AC power (kW) of each array and ``p_pv_kw`` on ``index``
        (``pv.pv_ac_kw``'s columns); computed directly when ``index`` is off the plan grid."""
        parts = [self._day(day) for day in index.normalize().unique()]
        out = pd.concat(parts).reindex(index) if parts else None
        if out is None or out.isna().to_numpy().any():  # off the grid (or empty)
            weather = pv_weather.clearsky_weather(self.config.site, index)
            return pv.pv_ac_kw(self.config.site, self.config.pv, weather)
        return out

    def on(self, index: pd.DatetimeIndex) -> pd.Series:
        """Clear-sky PV (kW, calibrated with ``fit``) on ``index`` (UTC slot starts on the
        plan step)."""
        if len(index) == 0:
            return pd.Series(dtype=float)
        return chain(self.config, index, None, self.fit, self)["p_pv_kw"]
