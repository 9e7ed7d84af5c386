"""Weather inputs of the PV chain: checks, solar geometry, clear-sky weather, decomposition.

Role: turn a weather frame (pvlib column names and units) into validated irradiance components
and the sun's position at the middle of each period. Pure: no I/O beyond pvlib's shipped data
(Linke turbidity climatology), no wall clock. May import ``dispatch.types``,
``dispatch.config``, numpy, pandas and pvlib.

Frames are indexed by the UTC start of each period at a fixed step; every solar quantity is
computed at the period midpoint (start + step / 2) and re-indexed to the period start.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib

from dispatch.config import SiteSection
from dispatch.types import InputError, check_time_index

IRRADIANCE = ("ghi", "dni", "dhi")
WEATHER_COLUMNS = (*IRRADIANCE, "temp_air", "wind_speed")
IRRADIANCE_MAX_W_M2 = 1500.0
# (low, high, hint) per non-irradiance column, in pvlib units.
_RANGES = {
    "temp_air": (-70.0, 65.0, "degC (Kelvin or Fahrenheit?)"),
    "wind_speed": (0.0, 75.0, "m/s (km/h?)"),
}


def period_step(index: pd.DatetimeIndex, what: str = "weather") -> pd.Timedelta:
    """Check ``index`` (UTC, sorted, fixed step) and return its step.

    Parameters
    ----------
    index : pandas.DatetimeIndex
        Period-start time stamps, tz-aware UTC.
    what : str
        Name used in error messages.

    Returns
    -------
    pandas.Timedelta
        The fixed step (taken from the stamps, whatever their resolution).
    """
    check_time_index(index, what)
    return pd.Timedelta(index[1] - index[0])


def midpoints(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Midpoints (UTC) of the periods that start at ``index``."""
    return index + period_step(index) / 2


def _first_bad(frame: pd.DataFrame, col: str, mask: np.ndarray) -> str:
    i = int(np.flatnonzero(mask)[0])
    return f"{frame[col].iloc[i]!r} at {frame.index[i].isoformat()}"


def check_weather(weather: pd.DataFrame, negative_tol_w_m2: float = 5.0) -> pd.DataFrame:
    """Validate a weather frame and return a float copy of its known columns.

    Parameters
    ----------
    weather : pandas.DataFrame
        UTC period-start index at a fixed step; ``ghi`` (W/m2) required; ``dni``, ``dhi``
        (W/m2), ``temp_air`` (degC) and ``wind_speed`` (m/s) optional. Other columns are
        ignored.
    negative_tol_w_m2 : float
        Irradiance down to ``-negative_tol_w_m2`` (sensor or model noise) is set to 0 (W/m2).

    Returns
    -------
    pandas.DataFrame
        The known columns as floats, small negative irradiance clipped to 0.

    Raises
    ------
    InputError
        Naming the column and the first bad time: missing ``ghi``, non-numeric or NaN values,
        irradiance below ``-negative_tol_w_m2`` or above 1500 W/m2, implausible temperature or
        wind speed, or an index that is not UTC at a fixed step.
    """
    if not isinstance(weather, pd.DataFrame):
        raise InputError(f"weather: expected a DataFrame, got {type(weather).__name__}")
    period_step(weather.index)  # type: ignore[arg-type]
    if "ghi" not in weather.columns:
        raise InputError(f"weather: missing column 'ghi' (W/m2); have {list(weather.columns)}")
    out = pd.DataFrame(index=weather.index)
    for col in (c for c in WEATHER_COLUMNS if c in weather.columns):
        values = pd.to_numeric(weather[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            raise InputError(f"weather: column {col!r} is not a finite number: "
                             f"{_first_bad(weather, col, bad)}")
        if col in IRRADIANCE:
            low, high, unit = -negative_tol_w_m2, IRRADIANCE_MAX_W_M2, "W/m2"
        else:
            low, high, unit = _RANGES[col]
        for mask, word in ((values < low, "below"), (values > high, "above")):
            if mask.any():
                limit = low if word == "below" else high
                raise InputError(f"weather: column {col!r} is {word} {limit:g} {unit}: "
                                 f"{_first_bad(weather, col, mask)}")
        out[col] = np.clip(values, 0.0, None) if col in IRRADIANCE else values
    return out


def check_irradiance_units(weather: pd.DataFrame, zenith_deg: pd.Series) -> None:
    """Reject irradiance that looks like kW/m2 (or fractions) instead of W/m2.

    With the sun more than 15 degrees high, even a dark overcast sky gives tens of W/m2; a
    column whose daytime maximum stays at or below 1.5 was almost surely given in kW/m2.

    Parameters
    ----------
    weather : pandas.DataFrame
        Checked weather (see `check_weather`).
    zenith_deg : pandas.Series
        Solar zenith at the period midpoints (degrees), same index.

    Raises
    ------
    InputError
        Naming the column and its daytime maximum; also when GHI is 0 all the time the sun is
        more than 15 degrees high (a zero-filled source).
    """
    day = zenith_deg.to_numpy() < 75.0
    if not day.any():
        return
    for col in (c for c in IRRADIANCE if c in weather.columns):
        peak = float(weather[col].to_numpy()[day].max())
        if col == "ghi" and peak == 0.0 and day.sum() >= 2:
            raise InputError(f"weather: column {col!r} is 0 all day although the sun is up from "
                             f"{weather.index[day][0].isoformat()}: a zero-filled source?")
        if col == "ghi" and 0.0 < peak <= 1.5:
            t = weather.index[day][int(np.argmax(weather[col].to_numpy()[day]))]
            raise InputError(f"weather: column {col!r} peaks at {peak:g} at {t.isoformat()} "
                             "with the sun up: looks like kW/m2, give W/m2")


def solar_geometry(
    site: SiteSection,
    index: pd.DatetimeIndex,
    temp_air_c: pd.Series | float = 12.0,
    method: str = "nrel_numpy",
    airmass_model: str = "kastenyoung1989",
) -> pd.DataFrame:
    """Sun position, extraterrestrial DNI and air mass at the middle of each period.

    Parameters
    ----------
    site : SiteSection
        Latitude, longitude (degrees) and altitude (m) of the site.
    index : pandas.DatetimeIndex
        Period starts, UTC, fixed step.
    temp_air_c : pandas.Series or float
        Air temperature for refraction (degC).
    method : str
        ``pvlib.solarposition.get_solarposition`` method.
    airmass_model : str
        ``pvlib.atmosphere.get_relative_airmass`` model.

    Returns
    -------
    pandas.DataFrame
        Indexed by period start: ``apparent_zenith``, ``zenith``, ``azimuth`` (degrees),
        ``dni_extra`` (W/m2), ``airmass_relative`` (-, NaN with the sun down).
    """
    mid = midpoints(index)
    temp = np.asarray(temp_air_c, dtype=float) if np.ndim(temp_air_c) else float(temp_air_c)
    pos = pvlib.solarposition.get_solarposition(
        mid, site.latitude_deg, site.longitude_deg, altitude=site.altitude_m,
        pressure=pvlib.atmosphere.alt2pres(site.altitude_m), method=method, temperature=temp,
    )
    out = pd.DataFrame({
        "apparent_zenith": pos["apparent_zenith"].to_numpy(),
        "zenith": pos["zenith"].to_numpy(),
        "azimuth": pos["azimuth"].to_numpy(),
        "dni_extra": np.asarray(pvlib.irradiance.get_extra_radiation(mid), dtype=float),
        "airmass_relative": np.asarray(pvlib.atmosphere.get_relative_airmass(
            pos["apparent_zenith"], model=airmass_model), dtype=float),
    }, index=index)
    return out


def clearsky_weather(
    site: SiteSection,
    index: pd.DatetimeIndex,
    temp_air_c: float = 20.0,
    wind_speed_m_s: float = 1.0,
) -> pd.DataFrame:
    """Clear-sky weather (Ineichen, pvlib's Linke turbidity climatology) for a site.

    The fallback when no weather source is reachable and the embedded default. Irradiance is
    evaluated at the middle of each period.

    Parameters
    ----------
    site : SiteSection
        Where the site is (degrees, m).
    index : pandas.DatetimeIndex
        Period starts, tz-aware UTC, fixed step.
    temp_air_c : float
        Constant air temperature to report (degC).
    wind_speed_m_s : float
        Constant wind speed to report (m/s).

    Returns
    -------
    pandas.DataFrame
        Indexed by period start: ``ghi``, ``dni``, ``dhi`` (W/m2), ``temp_air`` (degC),
        ``wind_speed`` (m/s).
    """
    mid = midpoints(index)
    loc = pvlib.location.Location(site.latitude_deg, site.longitude_deg, tz="UTC",
                                  altitude=site.altitude_m)
    cs = loc.get_clearsky(mid, model="ineichen")
    out = pd.DataFrame({c: np.clip(cs[c].to_numpy(dtype=float), 0.0, None) for c in IRRADIANCE},
                       index=index).fillna(0.0)
    out["temp_air"] = float(temp_air_c)
    out["wind_speed"] = float(wind_speed_m_s)
    return out


def irradiance_components(
    weather: pd.DataFrame, sun: pd.DataFrame, model: str = "erbs", pressure_pa: float = 101325.0
) -> pd.DataFrame:
    """GHI, DNI and DHI, completing or decomposing what the weather lacks.

    Parameters
    ----------
    weather : pandas.DataFrame
        Checked weather with ``ghi`` and optionally ``dni`` and ``dhi`` (W/m2).
    sun : pandas.DataFrame
        Output of `solar_geometry` on the same index.
    model : {"erbs", "dirint"}
        Decomposition used when only GHI is given.
    pressure_pa : float
        Site air pressure for DIRINT (Pa).

    Returns
    -------
    pandas.DataFrame
        ``ghi``, ``dni``, ``dhi`` (W/m2), non-negative, no NaN. With two components given, the
        third follows from ``ghi = dni cos(zenith) + dhi``.
    """
    have = [c for c in ("dni", "dhi") if c in weather.columns]
    ghi = weather["ghi"]
    zen = sun["zenith"]
    cosz = np.cos(np.radians(zen.to_numpy()))
    if len(have) == 2:
        dni, dhi = weather["dni"], weather["dhi"]
    elif have == ["dhi"]:
        dhi = weather["dhi"]
        dni = pd.Series(np.where(zen < 87.0, (ghi - dhi) / np.maximum(cosz, 0.065), 0.0),
                        index=weather.index)
    elif have == ["dni"]:
        dni = weather["dni"]
        dhi = ghi - dni * np.clip(cosz, 0.0, None)
    else:
        dni, dhi = _decompose(ghi, zen, model, pressure_pa)
    out = pd.DataFrame({"ghi": ghi, "dni": dni, "dhi": dhi}, index=weather.index)
    return out.fillna(0.0).clip(lower=0.0)


def _decompose(
    ghi: pd.Series, zenith: pd.Series, model: str, pressure_pa: float
) -> tuple[pd.Series, pd.Series]:
    """Split GHI (W/m2) into DNI and DHI (W/m2) at the period midpoints."""
    mid = midpoints(ghi.index)  # type: ignore[arg-type]
    g = pd.Series(ghi.to_numpy(), index=mid)
    z = pd.Series(zenith.to_numpy(), index=mid)
    if model == "erbs":
        parts = pvlib.irradiance.erbs(g, z, mid)
        dni, dhi = parts["dni"].to_numpy(), parts["dhi"].to_numpy()
    elif model == "dirint":
        dni = np.nan_to_num(np.asarray(
            pvlib.irradiance.dirint(g, z, mid, pressure=pressure_pa), dtype=float))
        dhi = g.to_numpy() - dni * np.clip(np.cos(np.radians(z.to_numpy())), 0.0, None)
    else:
        raise InputError(f"unknown decomposition model {model!r}; use 'erbs' or 'dirint'")
    return (pd.Series(dni, index=ghi.index), pd.Series(dhi, index=ghi.index))
