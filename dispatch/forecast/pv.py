"""PV forecast: weather -> AC power (kW) per array and in total, with pvlib's functions.

Role: the PV chain of the forecast. For each array: solar position at the period midpoint ->
plane-of-array irradiance (Perez, Hay-Davies or isotropic sky diffuse, ground albedo) ->
incidence-angle modifier on the beam -> cell temperature (SAPM or PVsyst) -> DC power (PVWatts
with the array's temperature coefficient, or the CEC single-diode model with a module from
pvlib's shipped database) -> inverter (PVWatts, clipping at ``ac_kw``, or a Sandia/CEC inverter
from the database) -> loss factor ``1 - losses_frac`` (soiling, wiring, availability; applied
to the AC output, so the ceiling is ``ac_kw * (1 - losses_frac)``).

Pure: no I/O beyond pvlib's shipped databases, no wall clock. May import ``dispatch.types``,
``dispatch.config``, numpy, pandas and pvlib.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pvlib

from dispatch.config import PvArraySection, SiteSection
from dispatch.forecast.pv_weather import (
    check_irradiance_units,
    check_weather,
    clearsky_weather,
    irradiance_components,
    solar_geometry,
)
from dispatch.types import ConfigError

__all__ = ["ArrayHardware", "PvOptions", "check_arrays", "clearsky_weather", "pv_ac_kw",
           "pv_array_detail"]

PVWATTS_ETA_INV_NOM = 0.96
DC_AC_MATCH_FRAC = 0.05  # allowed mismatch of dc_kwp / ac_kw against the named hardware
_SAPM_RACKING = {
    ("open_rack", "glass_polymer"): "open_rack_glass_polymer",
    ("open_rack", "glass_glass"): "open_rack_glass_glass",
    ("close_mount", "glass_polymer"): "close_mount_glass_glass",
    ("close_mount", "glass_glass"): "close_mount_glass_glass",
    ("insulated_back", "glass_polymer"): "insulated_back_glass_polymer",
    ("insulated_back", "glass_glass"): "insulated_back_glass_polymer",
}
_PVSYST_RACKING = {"open_rack": "freestanding", "close_mount": "semi_integrated",
                   "insulated_back": "insulated"}


@dataclass(frozen=True)
class PvOptions:
    """Site-wide settings of the PV chain.

    Attributes
    ----------
    temp_air_c : float
        Air temperature used when the weather has no ``temp_air`` (degC).
    wind_speed_m_s : float
        Wind speed used when the weather has no ``wind_speed`` (m/s).
    solar_position_method : str
        ``pvlib.solarposition.get_solarposition`` method.
    airmass_model : str
        Relative air-mass model (Perez input).
    perez_model : str
        Perez coefficient set.
    negative_tol_w_m2 : float
        Negative irradiance down to this magnitude is clipped to 0 rather than rejected (W/m2).
    """

    temp_air_c: float = 20.0
    wind_speed_m_s: float = 1.0
    solar_position_method: str = "nrel_numpy"
    airmass_model: str = "kastenyoung1989"
    perez_model: str = "allsitescomposite1990"
    negative_tol_w_m2: float = 5.0


@dataclass(frozen=True)
class ArrayHardware:
    """Database parameters of one array's named module and inverter (or None)."""

    module: pd.Series | None
    inverter: pd.Series | None


def _key(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).lower()


def _lookup(table: pd.DataFrame, name: str, where: str, what: str) -> pd.Series:
    """A database column by its CEC name, spelt as in the CSV or as pvlib normalises it."""
    keys = {_key(c): c for c in table.columns}
    col = keys.get(_key(name))
    if col is None:
        near = difflib.get_close_matches(_key(name), list(keys), n=3, cutoff=0.6)
        hint = f"; close: {[keys[k] for k in near]}" if near else ""
        raise ConfigError(f"{where} = {name!r}: not a {what} in pvlib's CEC database{hint}")
    return table[col]


def check_arrays(arrays: Sequence[PvArraySection]) -> dict[str, ArrayHardware]:
    """Resolve the CEC module and inverter names of ``arrays`` and check their sizes.

    Loads pvlib's shipped CEC tables (about 0.2 s) only when some array names hardware.

    Parameters
    ----------
    arrays : sequence of PvArraySection
        The site's PV arrays.

    Returns
    -------
    dict of str to ArrayHardware
        Database parameters per array name.

    Raises
    ------
    ConfigError
        For an unknown module or inverter name (with close matches), or when ``dc_kwp`` or
        ``ac_kw`` differs by more than 5 % from what the named hardware adds up to.
    """
    mods = invs = None
    out: dict[str, ArrayHardware] = {}
    problems: list[str] = []
    for a in arrays:
        module = inverter = None
        try:
            if a.module is not None:
                mods = pvlib.pvsystem.retrieve_sam("CECMod") if mods is None else mods
                module = _lookup(mods, a.module, f"pv[{a.name}].module", "module")
                kwp = float(module["STC"]) * a.modules_per_string * a.strings / 1000.0
                _check_size(problems, f"pv[{a.name}].dc_kwp", a.dc_kwp, kwp, "modules x STC")
            if a.inverter is not None:
                invs = pvlib.pvsystem.retrieve_sam("cecinverter") if invs is None else invs
                inverter = _lookup(invs, a.inverter, f"pv[{a.name}].inverter", "inverter")
                kw = float(inverter["Paco"]) * a.inverters / 1000.0
                _check_size(problems, f"pv[{a.name}].ac_kw", a.ac_kw, kw, "inverters x Paco")
        except ConfigError as exc:
            problems += exc.problems
        out[a.name] = ArrayHardware(module, inverter)
    if problems:
        raise ConfigError(problems)
    return out


def _check_size(problems: list[str], where: str, given: float, derived: float, how: str) -> None:
    if abs(given - derived) > DC_AC_MATCH_FRAC * derived:
        problems.append(f"{where} = {given:g} but {how} = {derived:.4g} kW; make them agree "
                        f"within {DC_AC_MATCH_FRAC:.0%}")


def _poa(array: PvArraySection, irr: pd.DataFrame, sun: pd.DataFrame,
         options: PvOptions) -> pd.DataFrame:
    """Plane-of-array irradiance (W/m2) and angle of incidence (degrees)."""
    model = array.transposition_model
    extra = {"dni_extra": sun["dni_extra"], "airmass": sun["airmass_relative"]}
    if model == "isotropic":
        extra = {}
    elif model == "haydavies":
        extra = {"dni_extra": sun["dni_extra"]}
    poa = pvlib.irradiance.get_total_irradiance(
        array.tilt_deg, array.azimuth_deg, sun["apparent_zenith"], sun["azimuth"],
        irr["dni"], irr["ghi"], irr["dhi"], albedo=array.albedo_frac, model=model,
        model_perez=options.perez_model, **extra,
    )
    out = poa[["poa_global", "poa_direct", "poa_diffuse"]].fillna(0.0).clip(lower=0.0)
    out["aoi"] = pvlib.irradiance.aoi(array.tilt_deg, array.azimuth_deg,
                                      sun["apparent_zenith"], sun["azimuth"])
    return out


def _iam(array: PvArraySection, aoi_deg: pd.Series) -> np.ndarray:
    """Incidence-angle modifier of the beam (fraction, 0 behind the module)."""
    if array.iam_model == "physical":
        iam = pvlib.iam.physical(aoi_deg)
    elif array.iam_model == "ashrae":
        iam = pvlib.iam.ashrae(aoi_deg)
    else:
        iam = np.where(np.asarray(aoi_deg) < 90.0, 1.0, 0.0)
    return np.nan_to_num(np.asarray(iam, dtype=float))


def _temp_cell(array: PvArraySection, poa_global: pd.Series, temp_air: pd.Series,
               wind: pd.Series) -> pd.Series:
    """Cell temperature (degC) from POA irradiance (W/m2), air (degC) and wind (m/s)."""
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS
    if array.temperature_model == "sapm":
        p = params["sapm"][_SAPM_RACKING[(array.racking, array.module_type)]]
        return pvlib.temperature.sapm_cell(poa_global, temp_air, wind, **p)
    p = params["pvsyst"][_PVSYST_RACKING[array.racking]]
    return pvlib.temperature.pvsyst_cell(poa_global, temp_air, wind, **p)


def _dc(array: PvArraySection, eff: pd.Series, temp_cell: pd.Series,
        module: pd.Series | None) -> tuple[pd.Series, pd.Series | None]:
    """DC power (W) and, with a CEC module, the DC voltage at maximum power (V)."""
    if module is None:
        p = pvlib.pvsystem.pvwatts_dc(eff, temp_cell, array.dc_kwp * 1000.0,
                                      array.gamma_pdc_per_c)
        return p.clip(lower=0.0), None
    names = ("alpha_sc", "a_ref", "I_L_ref", "I_o_ref", "R_sh_ref", "R_s", "Adjust")
    with np.errstate(divide="ignore", invalid="ignore"):  # zero irradiance at night
        params = pvlib.pvsystem.calcparams_cec(eff, temp_cell,
                                              **{k: float(module[k]) for k in names})
        mpp = pvlib.pvsystem.singlediode(*params, method="lambertw")
    mps, strings = array.modules_per_string or 1, array.strings or 1
    p = (mpp["p_mp"].fillna(0.0) * mps * strings).clip(lower=0.0)
    return p, mpp["v_mp"].fillna(0.0) * mps


def _ac(array: PvArraySection, p_dc: pd.Series, v_dc: pd.Series | None,
        inverter: pd.Series | None) -> pd.Series:
    """Inverter AC output (W), clipped at the inverter limit, never negative."""
    if inverter is None:
        pdc0 = array.ac_kw * 1000.0 / PVWATTS_ETA_INV_NOM
        ac = pvlib.inverter.pvwatts(p_dc, pdc0, eta_inv_nom=PVWATTS_ETA_INV_NOM)
        return pd.Series(np.asarray(ac, dtype=float), index=p_dc.index).clip(lower=0.0)
    n = array.inverters
    volts = v_dc if v_dc is not None else pd.Series(float(inverter["Vdco"]), index=p_dc.index)
    ac = pvlib.inverter.sandia(volts, p_dc / n, inverter) * n
    return pd.Series(np.asarray(ac, dtype=float), index=p_dc.index).fillna(0.0).clip(lower=0.0)


def _prepare(site: SiteSection, weather: pd.DataFrame,
             options: PvOptions) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Checked weather with temperature and wind filled, and the midpoint sun geometry."""
    w = check_weather(weather, options.negative_tol_w_m2)
    if "temp_air" not in w.columns:
        w["temp_air"] = options.temp_air_c
    if "wind_speed" not in w.columns:
        w["wind_speed"] = options.wind_speed_m_s
    sun = solar_geometry(site, w.index, w["temp_air"],  # type: ignore[arg-type]
                         options.solar_position_method, options.airmass_model)
    check_irradiance_units(w, sun["zenith"])
    return w, sun


def _array_chain(array: PvArraySection, w: pd.DataFrame, irr: pd.DataFrame,
                 sun: pd.DataFrame, hw: ArrayHardware, options: PvOptions) -> pd.DataFrame:
    poa = _poa(array, irr, sun, options)
    iam = _iam(array, poa["aoi"])
    eff = poa["poa_direct"] * iam + poa["poa_diffuse"]
    temp_cell = _temp_cell(array, poa["poa_global"], w["temp_air"], w["wind_speed"])
    p_dc, v_dc = _dc(array, eff, temp_cell, hw.module)
    p_ac = _ac(array, p_dc, v_dc, hw.inverter) * (1.0 - array.losses_frac)
    day = (sun["apparent_zenith"] < 90.0) & (irr["ghi"] > 0.0)
    return pd.DataFrame({
        "poa_global_w_m2": poa["poa_global"], "poa_direct_w_m2": poa["poa_direct"],
        "poa_diffuse_w_m2": poa["poa_diffuse"], "aoi_deg": poa["aoi"], "iam_frac": iam,
        "effective_irradiance_w_m2": eff, "temp_cell_c": temp_cell,
        "p_dc_kw": p_dc / 1000.0, "p_ac_kw": (p_ac / 1000.0).where(day, 0.0),
    }, index=w.index)


def pv_array_detail(
    site: SiteSection, array: PvArraySection, weather: pd.DataFrame,
    options: PvOptions | None = None,
) -> pd.DataFrame:
    """Every stage of the chain for one array, for diagnostics and tests.

    Parameters
    ----------
    site : SiteSection
        Location (degrees, m).
    array : PvArraySection
        The array.
    weather : pandas.DataFrame
        As for `pv_ac_kw`.
    options : PvOptions, optional
        Site-wide chain settings; defaults to ``PvOptions()``.

    Returns
    -------
    pandas.DataFrame
        Indexed by period start: ``ghi``, ``dni``, ``dhi`` (W/m2, after decomposition),
        ``poa_global_w_m2``, ``poa_direct_w_m2``, ``poa_diffuse_w_m2``, ``aoi_deg``,
        ``iam_frac``, ``effective_irradiance_w_m2``, ``temp_cell_c``, ``p_dc_kw`` (before
        inverter and losses) and ``p_ac_kw`` (after inverter and losses), plus the sun's
        ``apparent_zenith``, ``zenith`` and ``azimuth`` (degrees) at the period midpoints.
    """
    options = options or PvOptions()
    hw = check_arrays([array])[array.name]
    w, sun = _prepare(site, weather, options)
    irr = irradiance_components(w, sun, array.decomposition_model,
                                pvlib.atmosphere.alt2pres(site.altitude_m))
    detail = _array_chain(array, w, irr, sun, hw, options)
    return pd.concat([irr, detail, sun[["apparent_zenith", "zenith", "azimuth"]]], axis=1)


def pv_ac_kw(
    site: SiteSection, arrays: Sequence[PvArraySection], weather: pd.DataFrame,
    options: PvOptions | None = None,
) -> pd.DataFrame:
    """AC power (kW) of each array and of the site from a weather frame.

    Parameters
    ----------
    site : SiteSection
        Location (degrees, m).
    arrays : sequence of PvArraySection
        The site's arrays, each with its own orientation, size, models and inverter.
    weather : pandas.DataFrame
        Indexed by the UTC start of each period at a fixed step. ``ghi`` (W/m2) required;
        ``dni``, ``dhi`` (W/m2) optional (decomposed from GHI with each array's
        ``decomposition_model`` when absent); ``temp_air`` (degC) and ``wind_speed`` (m/s)
        optional (``options`` fill them). Values are period means.
    options : PvOptions, optional
        Site-wide chain settings; defaults to ``PvOptions()``.

    Returns
    -------
    pandas.DataFrame
        Same index; one column per array name and ``p_pv_kw``, the site total (kW, >= 0, never
        NaN; 0 at night).

    Raises
    ------
    InputError
        For a bad weather frame (the message names the column and time).
    ConfigError
        For unknown CEC hardware names or sizes that contradict them.
    """
    options = options or PvOptions()
    hardware = check_arrays(arrays)
    w, sun = _prepare(site, weather, options)
    pressure = pvlib.atmosphere.alt2pres(site.altitude_m)
    components: dict[str, pd.DataFrame] = {}
    out = pd.DataFrame(index=w.index)
    for a in arrays:
        if a.decomposition_model not in components:
            components[a.decomposition_model] = irradiance_components(
                w, sun, a.decomposition_model, pressure)
        irr = components[a.decomposition_model]
        out[a.name] = _array_chain(a, w, irr, sun, hardware[a.name], options)["p_ac_kw"]
    out["p_pv_kw"] = out.sum(axis=1) if arrays else 0.0
    return out.fillna(0.0).clip(lower=0.0)
