"""Tests of the PV forecast chain (dispatch.forecast.pv) and its calibration.

Oracles: pvlib's own functions called directly on the same inputs, hand values, physical
ranges, and pvlib's ModelChain on real NSRDB irradiance (../shared/data).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib
import pytest
from pydantic import ValidationError

from dispatch.config import PvArraySection, SiteSection
from dispatch.forecast import pv as pvmod
from dispatch.forecast.calibrate import (
    apply_calibration,
    apply_calibration_frame,
    fit_calibration,
    fit_calibration_frame,
)
from dispatch.forecast.pv import PvOptions, check_arrays, clearsky_weather, pv_ac_kw
from dispatch.forecast.pv import pv_array_detail as detail
from dispatch.types import ConfigError, InputError

STUTTGART = SiteSection(name="stuttgart", latitude_deg=48.78, longitude_deg=9.18,
                        altitude_m=250.0, timezone="Europe/Berlin")
SUZHOU = SiteSection(name="suzhou", latitude_deg=31.30, longitude_deg=120.62, altitude_m=5.0,
                     timezone="Asia/Shanghai")
ROOF = PvArraySection(name="roof", dc_kwp=1000.0, ac_kw=850.0, tilt_deg=30.0)
CEC = {"module": "Canadian Solar Inc. CS3W-400P", "modules_per_string": 20, "strings": 50,
       "inverter": "SMA America: STP 60-US-10 [400V]", "inverters": 5}


def day(date: str = "2024-06-21", step: str = "15min") -> pd.DatetimeIndex:
    return pd.date_range(date, periods=int(pd.Timedelta("1D") / pd.Timedelta(step)),
                         freq=step, tz="UTC")


def cloudy_weather(site: SiteSection = STUTTGART) -> pd.DataFrame:
    """Hand-built frame: clear sky dimmed by a fixed pattern, varying temperature and wind."""
    w = clearsky_weather(site, day())
    dim = 0.4 + 0.6 * np.abs(np.sin(np.arange(len(w)) / 5.0))
    w[["ghi", "dni", "dhi"]] = w[["ghi", "dni", "dhi"]].mul(dim, axis=0)
    w["temp_air"] = 15.0 + 10.0 * np.sin(np.arange(len(w)) / 15.0)
    w["wind_speed"] = 1.0 + np.arange(len(w)) % 5
    return w


def sun_at_mid(site: SiteSection, w: pd.DataFrame) -> pd.DataFrame:
    mid = w.index + (w.index[1] - w.index[0]) / 2
    sp = pvlib.solarposition.get_solarposition(
        mid, site.latitude_deg, site.longitude_deg, altitude=site.altitude_m,
        pressure=pvlib.atmosphere.alt2pres(site.altitude_m), temperature=w["temp_air"].to_numpy())
    return sp.set_axis(w.index)


# ---------------------------------------------------------------- against pvlib's functions
@pytest.mark.parametrize("model", ["perez", "haydavies", "isotropic"])
def test_poa_matches_pvlib_transposition(model: str) -> None:
    w = cloudy_weather()
    a = ROOF.model_copy(update={"transposition_model": model, "albedo_frac": 0.3})
    d = detail(STUTTGART, a, w)
    sp = sun_at_mid(STUTTGART, w)
    mid = w.index + pd.Timedelta("7.5min")
    am = pvlib.atmosphere.get_relative_airmass(sp["apparent_zenith"])
    ref = pvlib.irradiance.get_total_irradiance(
        30.0, 180.0, sp["apparent_zenith"], sp["azimuth"], w["dni"], w["ghi"], w["dhi"],
        dni_extra=pvlib.irradiance.get_extra_radiation(mid).to_numpy(), airmass=am,
        albedo=0.3, model=model)
    np.testing.assert_allclose(d["poa_global_w_m2"], ref["poa_global"].fillna(0).clip(lower=0),
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(("iam", "temp"), [("physical", "sapm"), ("ashrae", "pvsyst")])
def test_chain_stages_match_pvlib_functions(iam: str, temp: str) -> None:
    w = cloudy_weather()
    a = ROOF.model_copy(update={"iam_model": iam, "temperature_model": temp})
    d = detail(STUTTGART, a, w)
    iam_ref = pvlib.iam.physical(d["aoi_deg"]) if iam == "physical" else pvlib.iam.ashrae(
        d["aoi_deg"])
    np.testing.assert_allclose(d["iam_frac"], np.nan_to_num(iam_ref), atol=1e-12)
    eff = d["poa_direct_w_m2"] * d["iam_frac"] + d["poa_diffuse_w_m2"]
    np.testing.assert_allclose(d["effective_irradiance_w_m2"], eff, atol=1e-9)
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS
    tc = (pvlib.temperature.sapm_cell(d["poa_global_w_m2"], w["temp_air"], w["wind_speed"],
                                      **params["sapm"]["open_rack_glass_polymer"])
          if temp == "sapm" else
          pvlib.temperature.pvsyst_cell(d["poa_global_w_m2"], w["temp_air"], w["wind_speed"],
                                        **params["pvsyst"]["freestanding"]))
    np.testing.assert_allclose(d["temp_cell_c"], tc, atol=1e-9)
    pdc = pvlib.pvsystem.pvwatts_dc(eff, tc, 1e6, -0.0037)
    np.testing.assert_allclose(d["p_dc_kw"], pdc / 1000, rtol=1e-9, atol=1e-9)
    pac = pvlib.inverter.pvwatts(pdc, 850e3 / 0.96, eta_inv_nom=0.96) * 0.86 / 1000
    day_ = d["apparent_zenith"] < 90
    np.testing.assert_allclose(d["p_ac_kw"][day_], pac[day_], rtol=1e-9, atol=1e-9)


def test_cec_module_and_inverter_match_pvlib_functions() -> None:
    w = cloudy_weather()
    a = ROOF.model_copy(update={"dc_kwp": 400.0, "ac_kw": 300.0, **CEC})
    d = detail(STUTTGART, a, w)
    mods = pvlib.pvsystem.retrieve_sam("CECMod")
    invs = pvlib.pvsystem.retrieve_sam("cecinverter")
    mod, inv = mods["Canadian_Solar_Inc__CS3W_400P"], invs["SMA_America__STP_60_US_10__400V_"]
    keys = ("alpha_sc", "a_ref", "I_L_ref", "I_o_ref", "R_sh_ref", "R_s", "Adjust")
    with np.errstate(all="ignore"):
        p = pvlib.pvsystem.calcparams_cec(d["effective_irradiance_w_m2"], d["temp_cell_c"],
                                          **{k: mod[k] for k in keys})
        mpp = pvlib.pvsystem.singlediode(*p).fillna(0.0)
    np.testing.assert_allclose(d["p_dc_kw"], mpp["p_mp"] * 1000 / 1000, rtol=1e-6, atol=1e-6)
    ac = pvlib.inverter.sandia(mpp["v_mp"] * 20, mpp["p_mp"] * 1000 / 5, inv) * 5
    ref = ac.clip(lower=0) * 0.86 / 1000
    day_ = (d["apparent_zenith"] < 90) & (d["ghi"] > 0)
    np.testing.assert_allclose(d["p_ac_kw"][day_], ref[day_], rtol=1e-6, atol=1e-6)
    assert d["p_ac_kw"].max() <= 5 * inv["Paco"] * 0.86 / 1000 + 1e-9


def test_helpers_on_scalars_and_arrays_match_pvlib() -> None:
    aoi = np.array([0.0, 30.0, 60.0, 85.0, 95.0])
    a = ROOF.model_copy(update={"iam_model": "ashrae"})
    np.testing.assert_allclose(pvmod._iam(a, aoi), np.nan_to_num(pvlib.iam.ashrae(aoi)))
    assert pvmod._iam(ROOF, 45.0) == pytest.approx(pvlib.iam.physical(45.0))
    tc = pvmod._temp_cell(ROOF, 800.0, 25.0, 2.0)
    assert tc == pytest.approx(pvlib.temperature.sapm_cell(800.0, 25.0, 2.0, -3.56, -0.075, 3))


def test_pvwatts_hand_value() -> None:
    """800 W/m2 at 45 degC cell: 1000 kWp x 0.8 x (1 - 0.0037 x 20) = 740.8 kW DC."""
    p, v = pvmod._dc(ROOF, pd.Series([800.0, 0.0]), pd.Series([45.0, 45.0]), None)
    assert v is None
    assert p.iloc[0] / 1000 == pytest.approx(740.8)
    assert p.iloc[1] == 0.0


# ---------------------------------------------------------------- sanity, paths, limits
def test_clear_sky_noon_suzhou_june() -> None:
    w = clearsky_weather(SUZHOU, day())
    noon = w.loc["2024-06-21 03:45":"2024-06-21 04:15"]  # solar noon about 04:00 UTC
    assert 900.0 <= noon["ghi"].max() <= 1100.0
    a = ROOF.model_copy(update={"ac_kw": 1000.0, "tilt_deg": 20.0})
    p = pv_ac_kw(SUZHOU, [a], w)["p_pv_kw"]
    assert 0.60 * 1000 <= p.max() <= 0.86 * 1000
    assert p.idxmax().hour in (3, 4)


def test_clear_sky_noon_stuttgart_june() -> None:
    w = clearsky_weather(STUTTGART, day())
    warm = clearsky_weather(STUTTGART, day(), temp_air_c=31.0, wind_speed_m_s=3.5)
    assert (warm["temp_air"] == 31.0).all() and (warm["wind_speed"] == 3.5).all()
    assert list(w.columns) == ["ghi", "dni", "dhi", "temp_air", "wind_speed"]
    assert 800.0 <= w["ghi"].max() <= 1000.0
    p = pv_ac_kw(STUTTGART, [ROOF], w)["p_pv_kw"]
    assert 0.60 * 1000 <= p.max() <= 850 * 0.86 + 1e-9
    assert p.idxmax().hour in (10, 11)


@pytest.mark.parametrize("model", ["erbs", "dirint"])
def test_ghi_only_close_to_full_components_on_clear_sky(model: str) -> None:
    w = clearsky_weather(STUTTGART, day())
    a = ROOF.model_copy(update={"decomposition_model": model})
    full = pv_ac_kw(STUTTGART, [a], w)["p_pv_kw"]
    ghi = pv_ac_kw(STUTTGART, [a], w[["ghi", "temp_air", "wind_speed"]])["p_pv_kw"]
    assert ghi.sum() == pytest.approx(full.sum(), rel=0.05)
    assert not ghi.equals(full)
    assert np.corrcoef(ghi, full)[0, 1] > 0.99
    d = detail(STUTTGART, a, w[["ghi", "temp_air", "wind_speed"]])
    mid = w.index + pd.Timedelta("7.5min")
    z = pd.Series(sun_at_mid(STUTTGART, w)["zenith"].to_numpy(), index=mid)
    g = pd.Series(w["ghi"].to_numpy(), index=mid)
    dni = (pvlib.irradiance.erbs(g, z, mid)["dni"] if model == "erbs" else
           pvlib.irradiance.dirint(g, z, mid, pressure=pvlib.atmosphere.alt2pres(250.0)))
    np.testing.assert_allclose(d["dni"], dni.fillna(0.0).clip(lower=0.0), atol=1e-6)


def test_clipping_at_inverter_limit() -> None:
    a = ROOF.model_copy(update={"dc_kwp": 2000.0, "ac_kw": 1000.0, "losses_frac": 0.1})
    p = pv_ac_kw(STUTTGART, [a], clearsky_weather(STUTTGART, day()))["p_pv_kw"]
    assert p.max() <= 900.0 + 1e-9
    assert (np.isclose(p, 900.0)).sum() >= 8  # the flat top around noon


def test_night_is_zero_and_never_nan() -> None:
    w = clearsky_weather(STUTTGART, day("2024-12-21"))
    east = ROOF.model_copy(update={"name": "east", "azimuth_deg": 90})
    cec = ROOF.model_copy(update={"name": "cec", "dc_kwp": 400.0, "ac_kw": 300.0, **CEC})
    out = pv_ac_kw(STUTTGART, [ROOF, east, cec], w)
    assert not out.isna().any().any()
    assert (out >= 0).all().all()
    assert (out.loc["2024-12-21 00:00":"2024-12-21 05:00"] == 0).all().all()
    assert (out.loc["2024-12-21 17:00":] == 0).all().all()
    assert (out.loc["2024-12-21 10:00":"2024-12-21 12:00"] > 0).all().all()
    np.testing.assert_allclose(out["p_pv_kw"], out["roof"] + out["east"] + out["cec"])


def test_solar_position_at_interval_midpoint() -> None:
    w = clearsky_weather(STUTTGART, day(step="60min"))
    d = detail(STUTTGART, ROOF, w)
    sp_mid = sun_at_mid(STUTTGART, w)
    sp_start = pvlib.solarposition.get_solarposition(
        w.index, 48.78, 9.18, altitude=250.0, pressure=pvlib.atmosphere.alt2pres(250.0),
        temperature=20.0)
    np.testing.assert_allclose(d["zenith"], sp_mid["zenith"], atol=1e-9)
    np.testing.assert_allclose(d["azimuth"], sp_mid["azimuth"], atol=1e-9)
    assert np.abs(d["zenith"] - sp_start["zenith"].to_numpy()).max() > 3.0


def test_missing_temperature_and_wind_use_options() -> None:
    w = clearsky_weather(STUTTGART, day())
    p1 = pv_ac_kw(STUTTGART, [ROOF], w[["ghi", "dni", "dhi"]],
                  PvOptions(temp_air_c=35.0, wind_speed_m_s=0.5))["p_pv_kw"]
    p2 = pv_ac_kw(STUTTGART, [ROOF], w.assign(temp_air=35.0, wind_speed=0.5))["p_pv_kw"]
    np.testing.assert_allclose(p1, p2)
    assert p1.sum() < pv_ac_kw(STUTTGART, [ROOF], w)["p_pv_kw"].sum()


# ---------------------------------------------------------------- bad inputs and config
def _bad(mutate) -> pd.DataFrame:
    w = clearsky_weather(STUTTGART, day())
    return mutate(w)


@pytest.mark.parametrize(("mutate", "words"), [
    (lambda w: w.drop(columns=["ghi"]), ["'ghi'", "missing"]),
    (lambda w: w.assign(dni=w["dni"].where(w.index != w.index[40])), ["'dni'", "10:00"]),
    (lambda w: w.assign(ghi=w["ghi"] - 50.0), ["'ghi'", "below"]),
    (lambda w: w.assign(ghi=w["ghi"] / 1000.0, dni=w["dni"] / 1000.0, dhi=w["dhi"] / 1000.0),
     ["'ghi'", "kW/m2"]),
    (lambda w: w.assign(ghi=w["ghi"] * 1000.0), ["'ghi'", "above"]),
    (lambda w: w.assign(ghi=0.0, dni=0.0, dhi=0.0), ["'ghi'", "zero-filled"]),
    (lambda w: w.assign(temp_air=w["temp_air"] + 273.15), ["'temp_air'", "Kelvin"]),
    (lambda w: w.assign(wind_speed=-1.0), ["'wind_speed'"]),
    (lambda w: w.tz_convert("Europe/Berlin"), ["UTC"]),
    (lambda w: w.iloc[[0, 1, 3, 4]], ["step"]),
])
def test_bad_weather_raises_input_error_naming_the_column(mutate, words) -> None:
    with pytest.raises(InputError) as exc:
        pv_ac_kw(STUTTGART, [ROOF], _bad(mutate))
    for word in words:
        assert word in str(exc.value)


def test_small_negative_irradiance_is_clipped_not_rejected() -> None:
    w = clearsky_weather(STUTTGART, day())
    w.loc[w["ghi"] == 0, "ghi"] = -2.0
    assert (pv_ac_kw(STUTTGART, [ROOF], w)["p_pv_kw"] >= 0).all()


def test_unknown_cec_names_and_size_mismatch_raise_config_error() -> None:
    a = ROOF.model_copy(update={"dc_kwp": 400.0, "ac_kw": 300.0, **CEC,
                                "module": "Canadian Solar Inc. CS3W-400X"})
    with pytest.raises(ConfigError, match=r"pv\[roof\]\.module.*close"):
        check_arrays([a])
    b = ROOF.model_copy(update={"dc_kwp": 500.0, "ac_kw": 300.0, **CEC})
    with pytest.raises(ConfigError, match=r"pv\[roof\]\.dc_kwp = 500"):
        check_arrays([b])
    ok = check_arrays([ROOF.model_copy(update={"dc_kwp": 400.0, "ac_kw": 300.0, **CEC})])
    assert ok["roof"].module is not None and ok["roof"].inverter["Paco"] > 0


def test_config_requires_string_layout_with_a_module() -> None:
    with pytest.raises(ValidationError, match="modules_per_string"):
        PvArraySection(name="x", dc_kwp=10.0, ac_kw=8.0, module="Canadian Solar Inc. CS3W-400P")
    with pytest.raises(ValidationError, match="reserved"):
        PvArraySection(name="p_pv_kw", dc_kwp=10.0, ac_kw=8.0)


# ---------------------------------------------------------------- calibration
def _month_model() -> pd.Series:
    idx = pd.date_range("2024-05-01", periods=96 * 30, freq="15min", tz="UTC")
    w = clearsky_weather(STUTTGART, idx)
    dim = np.repeat(np.random.default_rng(7).uniform(0.3, 1.0, 30 * 8), 12)
    w[["ghi", "dni", "dhi"]] = w[["ghi", "dni", "dhi"]].mul(dim, axis=0)
    return pv_ac_kw(STUTTGART, [ROOF.model_copy(update={"ac_kw": 1000.0})], w)["p_pv_kw"]


@pytest.fixture(scope="module")
def model_month() -> pd.Series:
    return _month_model()


def test_calibration_recovers_scale_and_clip(model_month: pd.Series) -> None:
    rng = np.random.default_rng(3)
    y = (0.87 * model_month).clip(upper=500.0) + rng.normal(0.0, 5.0, len(model_month))
    y[model_month == 0] = 0.0
    y.iloc[rng.integers(0, len(y), 20)] *= 0.2  # shading / outages: outliers
    y.iloc[100:110] = np.nan
    fit = fit_calibration(y, model_month)
    assert fit.scale == pytest.approx(0.87, abs=0.005)
    assert fit.clip_kw == pytest.approx(500.0, abs=3.0)
    assert fit.n_clip_points > 20
    assert fit.r2_after > 0.99 > fit.r2_before
    assert fit.rmse_after_kw < 8.0 < fit.rmse_before_kw
    assert fit.excluded["missing"] == 10
    cal = apply_calibration(model_month, fit)
    assert cal.max() == pytest.approx(fit.clip_kw)


def test_calibration_without_clipping_fits_no_clip(model_month: pd.Series) -> None:
    rng = np.random.default_rng(4)
    y = 1.05 * model_month * (1 + rng.normal(0.0, 0.08, len(model_month)))
    fit = fit_calibration(y, model_month)
    assert fit.clip_kw is None
    assert fit.scale == pytest.approx(1.05, abs=0.01)


def test_calibration_excludes_curtailment_flat_runs(model_month: pd.Series) -> None:
    y = 0.9 * model_month.copy()
    noon = np.flatnonzero((model_month.index.hour >= 9) & (model_month.index.hour < 13))[:64]
    y.iloc[noon] = 200.0  # export limit held for hours on some days
    fit = fit_calibration(y, model_month)
    assert fit.excluded["flat_run"] >= 50
    assert fit.excluded["outlier"] < 10  # left out as curtailment, not as outliers
    assert fit.scale == pytest.approx(0.9, abs=0.005)


def test_calibration_errors(model_month: pd.Series) -> None:
    short = model_month.loc["2024-05-01 10:00":"2024-05-01 12:00"]
    with pytest.raises(InputError, match="usable points"):
        fit_calibration(0.9 * short, short)
    with pytest.raises(InputError, match="looks like W"):
        fit_calibration(model_month * 1000.0, model_month)
    with pytest.raises(InputError, match="UTC"):
        fit_calibration(model_month.tz_convert("Europe/Berlin"), model_month)


def test_per_array_calibration_and_frame_application(model_month: pd.Series) -> None:
    modelled = pd.DataFrame({"roof": model_month, "east": 0.5 * model_month})
    modelled["p_pv_kw"] = modelled.sum(axis=1)
    measured = pd.DataFrame({"roof": 0.8 * modelled["roof"], "east": 1.1 * modelled["east"]})
    fits = fit_calibration_frame(measured, modelled)
    assert fits["roof"].scale == pytest.approx(0.8) and fits["east"].scale == pytest.approx(1.1)
    out = apply_calibration_frame(modelled, fits)
    np.testing.assert_allclose(out["p_pv_kw"], 0.8 * model_month + 0.55 * model_month)
    site = fit_calibration(0.9 * modelled["p_pv_kw"], modelled["p_pv_kw"])
    out = apply_calibration_frame(modelled, site)
    np.testing.assert_allclose(out["roof"] + out["east"], out["p_pv_kw"])
    with pytest.raises(InputError, match="'west'"):
        fit_calibration_frame(measured.rename(columns={"east": "west"}), modelled)


# ---------------------------------------------------------------- real data
def test_nsrdb_annual_energy_within_2_percent_of_modelchain(shared_data) -> None:
    from bench.bench_forecast_pv import NSRDB_FILE, run

    path = shared_data / NSRDB_FILE
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    table, monthly = run(path)
    assert ((table["ratio"] - 1.0).abs() <= 0.02).all(), table
    assert (table["diurnal_r"] > 0.99).all()
    assert 1000.0 < table["ours_mwh"].iloc[0] < 2500.0  # 1000 kWp in NW Colorado
    assert len(monthly) == 12
