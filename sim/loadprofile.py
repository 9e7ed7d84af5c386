"""Input profiles for the plant simulator: a factory load profile, available PV, series lookup.

Role: build plausible, deterministic inputs for ``sim.plant`` and the embedded-default demo:
a shift-pattern factory load (weekends and holidays lower) with seeded noise, the available PV
of a site's arrays through ``dispatch.forecast.pv`` (clear sky unless weather is given), and
the held value of such a series at any instant. Pure: no I/O, no wall clock; the same
arguments (and seed) always give the same series. Depends on ``dispatch`` (config; the PV
chain lazily), numpy and pandas.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dispatch.config import SiteConfig


@dataclass(frozen=True)
class Shift:
    """One production shift in site-local hours; ``end_h <= start_h`` wraps past midnight.

    ``level_frac`` is its production load as a fraction of full production.
    """

    start_h: float
    end_h: float
    level_frac: float = 1.0


@dataclass(frozen=True)
class FactoryProfile:
    """Shape of a factory's load.

    Attributes
    ----------
    peak_kw : float
        Load at full production (kW).
    base_frac : float
        Always-on load (compressed air, HVAC, lighting, IT) as a fraction of ``peak_kw``.
    shifts : tuple of Shift
        Production shifts on a workday.
    saturday_frac, sunday_frac : float
        Production on Saturdays and on Sundays and holidays, as a fraction of a workday's.
    ramp_h : float
        Hours for production to ramp up at a shift start and down at its end.
    break_frac, break_h : float
        Production dip (fraction) for ``break_h`` hours in the middle of each shift.
    noise_frac : float
        Standard deviation of the multiplicative load noise (fraction).
    noise_corr_h : float
        Correlation time of the noise (h; AR(1) process).
    timezone : str
        IANA zone of the shift hours and day types.
    """

    peak_kw: float
    base_frac: float = 0.3
    shifts: tuple[Shift, ...] = (Shift(6.0, 14.0, 1.0), Shift(14.0, 22.0, 0.85))
    saturday_frac: float = 0.5
    sunday_frac: float = 0.0
    ramp_h: float = 0.5
    break_frac: float = 0.15
    break_h: float = 0.5
    noise_frac: float = 0.03
    noise_corr_h: float = 1.0
    timezone: str = "UTC"


def _trapezoid(hour: np.ndarray, start: float, end: float, ramp: float) -> np.ndarray:
    """1 inside ``[start + ramp, end - ramp]``, linear to 0 at ``start`` and ``end``."""
    r = max(ramp, 1e-9)
    up = np.clip((hour - start) / r, 0.0, 1.0)
    down = np.clip((end - hour) / r, 0.0, 1.0)
    return np.minimum(up, down)


def production_level(hour: np.ndarray, p: FactoryProfile) -> np.ndarray:
    """Workday production level (fraction 0..1) at site-local decimal hours ``hour``."""
    level = np.zeros_like(hour, dtype=float)
    for s in p.shifts:
        end = s.end_h if s.end_h > s.start_h else s.end_h + 24.0
        for h in (hour, hour + 24.0):  # a shift that wraps midnight covers the early hours
            shape = _trapezoid(h, s.start_h, end, p.ramp_h)
            mid = 0.5 * (s.start_h + end)
            dip = np.abs(h - mid) < 0.5 * p.break_h
            level = np.maximum(level, s.level_frac * shape * np.where(dip, 1 - p.break_frac, 1))
    return level


def _ar1_noise(n: int, step_h: float, p: FactoryProfile, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    phi = float(np.exp(-step_h / p.noise_corr_h)) if p.noise_corr_h > 0 else 0.0
    e = np.zeros(n)
    if n:
        e[0] = z[0]
    scale = np.sqrt(1.0 - phi * phi)
    for i in range(1, n):
        e[i] = phi * e[i - 1] + scale * z[i]
    return p.noise_frac * e


def factory_load_kw(index: pd.DatetimeIndex, profile: FactoryProfile, seed: int = 0,
                    holidays: Iterable[dt.date] = ()) -> pd.Series:  # fmt: skip
    """A factory load series (kW) on ``index`` with shifts, weekends, holidays and noise.

    Parameters
    ----------
    index : pandas.DatetimeIndex
        UTC period starts at a fixed step; each period is valued at its midpoint.
    profile : FactoryProfile
        Load levels, shifts and noise.
    seed : int
        Seed of the noise generator.
    holidays : iterable of date
        Site-local dates run like Sundays.

    Returns
    -------
    pandas.Series
        ``p_load_kw`` (kW, >= 0) on ``index``.
    """
    if len(index) < 2:
        raise ValueError("factory_load_kw: the index needs at least two stamps to know the step")
    step = index[1] - index[0]
    local = (index + step / 2).tz_convert(profile.timezone)
    hour = np.asarray(local.hour + local.minute / 60.0 + local.second / 3600.0, dtype=float)
    day_scale = np.ones(len(index))
    weekday = np.asarray(local.day_of_week)
    day_scale[weekday == 5] = profile.saturday_frac
    day_scale[weekday == 6] = profile.sunday_frac
    off = {pd.Timestamp(d).date() for d in holidays}
    if off:
        day_scale[np.array([d in off for d in local.date])] = profile.sunday_frac
    level = production_level(hour, profile) * day_scale
    shape = profile.base_frac + (1.0 - profile.base_frac) * level
    noise = _ar1_noise(len(index), step.total_seconds() / 3600.0, profile, seed)
    values = np.clip(profile.peak_kw * shape * (1.0 + noise), 0.0, None)
    return pd.Series(values, index=index, name="p_load_kw")


def demo_load_kw(site: SiteConfig, start: dt.datetime, days: int = 7, step_min: int = 15,
                 seed: int = 0) -> pd.Series:  # fmt: skip
    """The embedded-default demo load of a site: two shifts, peak at 75 % of the import limit.

    Parameters
    ----------
    site : SiteConfig
        Sizes the peak (``grid.import_max_kw``) and gives the time zone.
    start : datetime
        First period start (tz-aware).
    days : int
        Length of the series (days).
    step_min : int
        Step (minutes).
    seed : int
        Noise seed.
    """
    index = pd.date_range(pd.Timestamp(start).tz_convert("UTC"), periods=days * 1440 // step_min,
                          freq=f"{step_min}min")  # fmt: skip
    profile = FactoryProfile(peak_kw=0.75 * site.grid.import_max_kw, timezone=site.site.timezone)
    return factory_load_kw(index, profile, seed)


def value_at(series: pd.Series, t: dt.datetime, what: str) -> float:
    """Value (held over its period) of a fixed-step series indexed by UTC period start.

    Raises ``ValueError`` when ``t`` lies outside ``[first start, last start + step)``.
    """
    index = series.index
    i = int(index.searchsorted(pd.Timestamp(t), side="right")) - 1
    end = index[-1] + (index[-1] - index[-2]) if len(index) > 1 else index[-1]
    if i < 0 or pd.Timestamp(t) >= end:
        raise ValueError(f"{what}: {t.isoformat()} is outside the series "
                         f"[{index[0].isoformat()}, {end.isoformat()})")  # fmt: skip
    return float(series.iloc[i])


def pv_available_kw(site: SiteConfig, index: pd.DatetimeIndex,
                    weather: pd.DataFrame | None = None) -> pd.Series:  # fmt: skip
    """Available PV (kW) of the site's arrays through ``dispatch.forecast.pv``.

    Parameters
    ----------
    site : SiteConfig
        Location and ``pv`` arrays.
    index : pandas.DatetimeIndex
        UTC period starts at a fixed step (used for clear-sky weather when none is given).
    weather : pandas.DataFrame, optional
        Weather in pvlib columns and units (``ghi`` W/m2 ...) on ``index``; clear sky when
        omitted.

    Returns
    -------
    pandas.Series
        ``p_pv_kw`` by period start (kW, >= 0).
    """
    from dispatch.forecast.pv import pv_ac_kw  # lazy: pvlib is heavy and lives in forecast
    from dispatch.forecast.pv_weather import clearsky_weather

    w = clearsky_weather(site.site, index) if weather is None else weather
    return pv_ac_kw(site.site, site.pv, w)["p_pv_kw"].rename("p_pv_kw")
