"""Plant simulator: exact toys, conservation over a day, SoC window, derating, revert timer,
zero export, measurement noise, and the factory load profile."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.config import SiteConfig, load_config
from sim.loadprofile import (
    FactoryProfile,
    Shift,
    demo_load_kw,
    factory_load_kw,
    pv_available_kw,
    value_at,
)
from sim.plant import COUNTERS, Plant, PlantOptions, simulate
from tests.conftest import CONFIGS
from tests.factories import config

T0 = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
EXACT = PlantOptions(derate_band_frac=0.0, standby_loss_kw=0.0, standby_loss_frac_per_h=0.0,
                     default_mode="idle")  # fmt: skip


def site(battery: dict[str, Any] | None = None, grid: dict[str, Any] | None = None) -> SiteConfig:
    """A toy site: 1000 kWh / 100 kW battery, window 5-95 %, eta 0.95/0.95, 2 MW grid."""
    b = {"energy_kwh": 1000.0, "charge_max_kw": 100.0, "discharge_max_kw": 100.0,
         "soc_min_frac": 0.05, "soc_max_frac": 0.95, "eta_charge": 0.95, "eta_discharge": 0.95}
    g = {"import_max_kw": 2000.0, "export_allowed": True, "export_max_kw": 2000.0}
    return config(battery=b | (battery or {}), grid=g | (grid or {}))  # fmt: skip


def after(t: dt.datetime, s: float) -> dt.datetime:
    return t + dt.timedelta(seconds=s)


# --- exact toy answers ---
def test_1000_kw_for_15_min_at_eta_095_lowers_store_by_250_over_095():
    s = site({"energy_kwh": 4000.0, "charge_max_kw": 1000.0, "discharge_max_kw": 1000.0})
    p = Plant(s, EXACT, soc_initial_frac=0.5)
    p.set_battery_setpoint(1000.0, T0, revert_timeout_s=3600)
    st_ = p.step(T0, 900.0, p_pv_available_kw=0.0, p_load_kw=2000.0)
    assert st_.energy_kwh == pytest.approx(2000.0 - 250.0 / 0.95, abs=1e-9)
    assert st_.e_discharge_kwh == pytest.approx(250.0, abs=1e-9)
    assert st_.e_loss_kwh == pytest.approx(250.0 / 0.95 - 250.0, abs=1e-9)
    assert st_.e_import_kwh == pytest.approx(250.0, abs=1e-9)  # 2000 load - 1000 battery
    assert st_.p_batt_kw == 1000.0 and st_.p_grid_kw == 1000.0


def test_500_kw_charge_for_an_hour_at_eta_09_stores_450():
    p = Plant(site({"charge_max_kw": 500.0, "eta_charge": 0.9}), EXACT, soc_initial_frac=0.2)
    p.set_battery_setpoint(-500.0, T0)
    st_ = p.step(T0, 3600.0, p_pv_available_kw=0.0, p_load_kw=100.0)
    assert st_.energy_kwh == pytest.approx(200.0 + 450.0, abs=1e-9)
    assert st_.e_charge_kwh == pytest.approx(500.0) and st_.e_loss_kwh == pytest.approx(50.0)
    assert st_.e_import_kwh == pytest.approx(600.0)


def test_standby_loss_constant_and_proportional():
    p = Plant(site(), EXACT, soc_initial_frac=0.5, standby_loss_kw=2.0)
    assert p.step(T0, 3600.0, 0.0, 0.0).energy_kwh == pytest.approx(498.0, abs=1e-12)
    q = Plant(site(), EXACT, soc_initial_frac=0.5, standby_loss_frac_per_h=0.01)
    st_ = q.step(T0, 3600.0, 0.0, 0.0)
    assert st_.energy_kwh == pytest.approx(495.0) and st_.e_standby_kwh == pytest.approx(5.0)


def test_standby_stops_at_the_soc_floor():
    p = Plant(site(), EXACT, soc_initial_frac=0.06, standby_loss_kw=4.0)
    st_ = p.step(T0, 5 * 3600.0, 0.0, 0.0)  # 20 kWh asked, 10 kWh above the floor
    assert st_.energy_kwh == pytest.approx(50.0) and st_.e_standby_kwh == pytest.approx(10.0)


def test_discharge_stops_exactly_at_the_floor():
    p = Plant(site(), EXACT, soc_initial_frac=0.1)  # 50 kWh above the floor
    p.set_battery_setpoint(100.0, T0)
    st_ = p.step(T0, 3600.0, 0.0, 500.0)
    assert st_.energy_kwh == 50.0 and st_.soc_frac == pytest.approx(0.05, abs=1e-15)
    assert st_.e_discharge_kwh == pytest.approx(50.0 * 0.95) and st_.p_batt_kw == 0.0


# --- conservation over a day ---
def _day_inputs(n: int, step_s: float) -> tuple[np.ndarray, np.ndarray]:
    hours = np.arange(n) * step_s / 3600.0
    pv = np.clip(900.0 * np.sin(np.pi * (hours - 6.0) / 12.0), 0.0, None)
    idx = pd.date_range(T0, periods=n, freq=f"{int(step_s)}s")
    load = factory_load_kw(idx, FactoryProfile(peak_kw=600.0, noise_frac=0.05), seed=7)
    return pv, load.to_numpy()


@pytest.mark.parametrize("export_allowed", [True, False])
def test_energy_conserved_over_a_simulated_day(export_allowed: bool):
    s = site({"energy_kwh": 800.0, "charge_max_kw": 300.0, "discharge_max_kw": 300.0,
              "eta_charge": 0.96, "eta_discharge": 0.93},
             {"export_allowed": export_allowed, "export_max_kw": 150.0 if export_allowed else None,
              "import_max_kw": 700.0})  # fmt: skip
    p = Plant(s, soc_initial_frac=0.4, standby_loss_kw=0.3, standby_loss_frac_per_h=1e-4,
              noise_sigma_frac=0.05, noise_sigma_kw=2.0, seed=11)  # fmt: skip
    rng = np.random.default_rng(5)
    pv, load = _day_inputs(1440, 60.0)
    e0, t, i = p.energy_kwh, T0, 0
    while t < after(T0, 86400):
        if i % 15 == 0:  # a write every 15 min, valid 10 min: default mode in between
            p.set_battery_setpoint(float(rng.uniform(-400, 400)), t, revert_timeout_s=600)
        before = dict(p.counters)
        step_s = float(rng.choice([7.5, 30.0, 60.0, 90.0]))
        k = min(int((t - T0).total_seconds() // 60), 1439)
        st_ = p.step(t, step_s, pv[k], load[k])
        d = {c: p.counters[c] - before[c] for c in COUNTERS}
        supply = d["e_pv_kwh"] + d["e_import_kwh"] + d["e_discharge_kwh"]
        demand = d["e_load_kwh"] + d["e_export_kwh"] + d["e_charge_kwh"]
        assert supply == pytest.approx(demand, abs=1e-9)
        assert st_.p_load_kw == pytest.approx(st_.p_grid_kw + st_.p_pv_kw + st_.p_batt_kw)
        assert d["e_pv_kwh"] + d["e_curtail_kwh"] == pytest.approx(pv[k] * step_s / 3600)
        t, i = after(t, step_s), i + 1
    c, b = p.counters, s.battery
    stored = b.eta_charge * c["e_charge_kwh"] - c["e_discharge_kwh"] / b.eta_discharge
    assert p.energy_kwh - e0 == pytest.approx(stored - c["e_standby_kwh"], abs=1e-6)
    conv = (1 - b.eta_charge) * c["e_charge_kwh"] + c["e_discharge_kwh"] * (1 / b.eta_discharge - 1)
    assert c["e_loss_kwh"] == pytest.approx(conv, abs=1e-6)
    assert (c["e_pv_kwh"] + c["e_import_kwh"] + c["e_discharge_kwh"]) == pytest.approx(
        c["e_load_kwh"] + c["e_export_kwh"] + c["e_charge_kwh"], abs=1e-6)
    # the day exercised every flow, so a wrong term anywhere shows
    assert min(c["e_charge_kwh"], c["e_discharge_kwh"], c["e_standby_kwh"]) > 1.0
    assert c["e_curtail_kwh" if not export_allowed else "e_export_kwh"] > 1.0
    assert (c["e_export_kwh"] == 0.0) is (not export_allowed)


# --- SoC window whatever the setpoints ---
OPS = st.lists(st.tuples(
    st.one_of(st.none(), st.floats(-3000, 3000)),   # setpoint written (None: no write)
    st.floats(0.0, 7200.0),                          # dt_s
    st.one_of(st.none(), st.floats(1.0, 3600.0)),   # revert timeout
    st.floats(0.0, 1500.0), st.floats(0.0, 1500.0),  # pv, load
), min_size=1, max_size=30)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(soc0=st.floats(0.1, 0.9), band=st.floats(0.0, 0.2), standby=st.floats(0.0, 50.0),
       mode=st.sampled_from(["self_consumption", "idle"]), ops=OPS,
       zero_export=st.booleans())  # fmt: skip
def test_soc_never_leaves_its_window(soc0, band, standby, mode, ops, zero_export):
    s = site({"energy_kwh": 500.0, "charge_max_kw": 400.0, "discharge_max_kw": 400.0,
              "soc_min_frac": 0.1, "soc_max_frac": 0.9, "eta_charge": 0.9},
             {"export_allowed": not zero_export, "export_max_kw": None if zero_export else 300.0,
              "import_max_kw": 1000.0})  # fmt: skip
    p = Plant(s, soc_initial_frac=soc0, derate_band_frac=band, standby_loss_kw=standby,
              default_mode=mode)  # fmt: skip
    t = T0
    for sp, step_s, timeout, pv, load in ops:
        if sp is not None:
            p.set_battery_setpoint(sp, t, timeout)
        e0, c0 = p.energy_kwh, dict(p.counters)
        st_ = p.step(t, step_s, pv, load)
        d = {k: p.counters[k] - c0[k] for k in COUNTERS}
        stored = 0.9 * d["e_charge_kwh"] - d["e_discharge_kwh"] / 0.95 - d["e_standby_kwh"]
        assert st_.energy_kwh - e0 == pytest.approx(stored, abs=1e-9)  # limits cut power
        assert p.e_min_kwh <= st_.energy_kwh <= p.e_max_kwh
        assert 0.1 - 1e-12 <= st_.soc_frac <= 0.9 + 1e-12
        assert -st_.p_charge_max_kw - 1e-9 <= st_.p_batt_kw <= st_.p_discharge_max_kw + 1e-9
        assert -400.0 <= st_.p_batt_kw <= 400.0
        assert st_.p_grid_kw >= -s.grid.export_limit_kw - 1e-9
        assert 0.0 <= st_.p_pv_kw <= pv + 1e-9
        t = after(t, step_s)


# --- derating near the limits ---
@pytest.mark.parametrize(("soc", "p_set", "expected"), [
    (0.93, -100.0, -40.0),   # (0.95 - 0.93) / 0.05 = 0.4 of 100 kW charge
    (0.92, -100.0, -60.0),
    (0.95, -100.0, 0.0),     # full: the BMS stops charging
    (0.06, 100.0, 20.0),     # (0.06 - 0.05) / 0.05 = 0.2 of 100 kW discharge
    (0.05, 100.0, 0.0),
    (0.93, 100.0, 100.0),    # discharge is not derated near the top
    (0.5, -100.0, -100.0),
])  # fmt: skip
def test_derating_hand_values(soc: float, p_set: float, expected: float):
    p = Plant(site(), EXACT, soc_initial_frac=soc, derate_band_frac=0.05)
    p.set_battery_setpoint(p_set, T0)
    st_ = p.step(T0, 0.0, 0.0, 500.0)  # dt 0: the operating point at this SoC
    assert st_.p_batt_kw == pytest.approx(expected, abs=1e-9)
    st_ = p.step(T0, 1.0, 0.0, 500.0)  # one second at the limit of the start SoC
    energy = st_.e_discharge_kwh - st_.e_charge_kwh
    assert energy * 3600.0 == pytest.approx(expected, abs=1e-9)


def test_no_derating_when_band_is_zero():
    p = Plant(site(), EXACT, soc_initial_frac=0.94)
    assert p.limits_kw() == (100.0, 100.0)


# --- revert timer ---
def test_revert_timer_fires_exactly_at_the_timeout():
    p = Plant(site(), EXACT)
    p.set_battery_setpoint(90.0, T0, revert_timeout_s=60.0)
    modes = []
    for k in range(10):
        st_ = p.step(after(T0, 10 * k), 10.0, 0.0, 500.0)
        modes.append((st_.mode, st_.p_batt_kw))
    assert modes[:5] == [("setpoint", 90.0)] * 5
    assert modes[5:] == [("idle", 0.0)] * 5  # from T0 + 60 s on
    assert p.counters["e_discharge_kwh"] == pytest.approx(90.0 * 60 / 3600, abs=1e-12)


def test_revert_inside_a_long_step_splits_it():
    p = Plant(site(), EXACT, default_mode="self_consumption")
    p.set_battery_setpoint(-80.0, T0, revert_timeout_s=45.0)
    st_ = p.step(T0, 100.0, 0.0, 30.0)  # charge 45 s, then self-consumption covers 30 kW
    assert st_.mode == "self_consumption" and st_.p_batt_kw == 30.0
    assert st_.e_charge_kwh == pytest.approx(80.0 * 45 / 3600, abs=1e-12)
    assert st_.e_discharge_kwh == pytest.approx(30.0 * 55 / 3600, abs=1e-12)


def test_rewrite_rearms_and_release_returns_to_default():
    p = Plant(site(), EXACT)
    p.set_battery_setpoint(50.0, T0, revert_timeout_s=60.0)
    p.step(T0, 30.0, 0.0, 500.0)
    p.set_battery_setpoint(50.0, after(T0, 30), revert_timeout_s=60.0)
    st_ = p.step(after(T0, 30), 50.0, 0.0, 500.0)  # to T0 + 80 s, past the first expiry
    assert st_.mode == "setpoint" and st_.setpoint_expires == after(T0, 90)
    p.release(after(T0, 85))
    st_ = p.step(after(T0, 80), 20.0, 0.0, 500.0)
    assert st_.mode == "idle"
    assert p.counters["e_discharge_kwh"] == pytest.approx(50.0 * 85 / 3600, abs=1e-12)


def test_window_lets_the_default_mode_choose_inside():
    p = Plant(site(), EXACT, default_mode="self_consumption")
    p.set_battery_window(-50.0, 40.0, T0, revert_timeout_s=300)
    st_ = p.step(T0, 60.0, 0.0, 200.0)
    assert st_.mode == "window" and st_.p_batt_kw == 40.0
    st_ = p.step(after(T0, 60), 60.0, 20.0, 10.0)  # 10 kW surplus: inside the window
    assert st_.p_batt_kw == -10.0 and st_.p_grid_kw == 0.0


# --- grid limits and curtailment ---
def test_zero_export_site_curtails_pv_instead_of_exporting():
    s = site(grid={"export_allowed": False, "export_max_kw": None})
    p = Plant(s, EXACT, soc_initial_frac=0.95, default_mode="self_consumption")  # full
    st_ = p.step(T0, 3600.0, 500.0, 200.0)
    assert (st_.p_pv_kw, st_.p_grid_kw, st_.p_batt_kw) == (200.0, 0.0, 0.0)
    assert st_.e_curtail_kwh == pytest.approx(300.0) and st_.e_export_kwh == 0.0
    p.set_battery_setpoint(80.0, after(T0, 3600))  # discharging too curtails more PV
    st_ = p.step(after(T0, 3600), 60.0, 500.0, 200.0)
    assert (st_.p_batt_kw, st_.p_pv_kw, st_.p_grid_kw) == (80.0, 120.0, 0.0)
    p.set_battery_setpoint(100.0, after(T0, 3660))  # no PV: discharge capped at the load
    st_ = p.step(after(T0, 3660), 60.0, 0.0, 70.0)
    assert (st_.p_batt_kw, st_.p_grid_kw) == (70.0, 0.0)


def test_export_limit_caps_export():
    p = Plant(site(grid={"export_max_kw": 100.0}), EXACT, soc_initial_frac=0.95)
    st_ = p.step(T0, 3600.0, 500.0, 200.0)
    assert (st_.p_pv_kw, st_.p_grid_kw) == (300.0, -100.0)
    assert st_.e_export_kwh == pytest.approx(100.0) and st_.e_curtail_kwh == pytest.approx(200.0)


def test_self_consumption_charges_surplus_and_covers_deficit():
    p = Plant(site(), EXACT, default_mode="self_consumption")
    st_ = p.step(T0, 60.0, 300.0, 240.0)
    assert (st_.p_batt_kw, st_.p_grid_kw) == (-60.0, 0.0)
    st_ = p.step(after(T0, 60), 60.0, 0.0, 250.0)  # deficit 250, limit 100
    assert (st_.p_batt_kw, st_.p_grid_kw) == (100.0, 150.0)


def test_charging_does_not_push_import_above_the_limit():
    p = Plant(site({"charge_max_kw": 500.0}, {"import_max_kw": 2000.0}), EXACT)
    p.set_battery_setpoint(-500.0, T0)
    assert p.step(T0, 60.0, 0.0, 1800.0).p_batt_kw == -200.0
    q = Plant(site({"charge_max_kw": 500.0}, {"import_max_kw": 2000.0}), EXACT,
              limit_import=False)  # fmt: skip
    q.set_battery_setpoint(-500.0, T0)
    assert q.step(T0, 60.0, 0.0, 1800.0).p_grid_kw == 2300.0


# --- measurement noise ---
def _noisy(seed: int, sigma: float) -> Plant:
    p = Plant(site(), soc_initial_frac=0.5, noise_sigma_frac=sigma, noise_sigma_kw=sigma * 10,
              seed=seed)  # fmt: skip
    for k in range(20):
        p.step(after(T0, 60 * k), 60.0, 100.0 + k, 300.0)
    return p


def test_noise_is_seeded_and_leaves_the_true_flows_alone():
    a, b, c, clean = _noisy(1, 0.05), _noisy(1, 0.05), _noisy(2, 0.05), _noisy(1, 0.0)
    assert a.measure() == b.measure() and a.measure() != c.measure()
    assert a.counters == clean.counters and a.state == clean.state
    m = a.measure()
    assert m["p_load_kw"] != 300.0 and m["p_pv_kw"] != a.state.p_pv_kw
    assert m["p_grid_kw"] == pytest.approx(m["p_load_kw"] - m["p_pv_kw"] - m["p_batt_kw"])
    assert clean.measure()["p_load_kw"] == 300.0
    snap = a.snapshot()
    assert snap.time == after(T0, 1200) and snap.p_load_kw == m["p_load_kw"]


# --- inputs, time, series ---
def test_series_inputs_and_simulate_balance():
    idx = pd.date_range(T0, periods=96, freq="15min")
    load = factory_load_kw(idx, FactoryProfile(peak_kw=300.0), seed=3)
    pv = pd.Series(np.clip(250 * np.sin(np.pi * (np.arange(96) / 4 - 6) / 12), 0, None), idx)
    p = Plant(site(), pv_kw=pv, load_kw=load)
    sp = pd.Series(np.where(np.arange(96) % 8 == 0, -80.0, np.nan), idx)
    df = simulate(p, idx, sp, revert_timeout_s=1800)
    assert df["p_load_kw"].to_numpy() == pytest.approx(load.to_numpy())
    bal = df["p_grid_kw"] + df["p_pv_kw"] + df["p_batt_kw"] - df["p_load_kw"]
    assert np.abs(bal.to_numpy()).max() < 1e-9
    assert set(df["mode"]) == {"setpoint", "self_consumption"}
    with pytest.raises(ValueError, match="outside the series"):
        p.step(after(T0, 86400), 60.0)


def test_time_rules():
    p = Plant(site(), EXACT)
    with pytest.raises(ValueError, match="tz-aware"):
        p.step(dt.datetime(2026, 7, 1), 60.0, 0.0, 0.0)
    p.step(T0, 60.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="backwards"):
        p.step(T0, 60.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="p_load_kw"):
        p.step(after(T0, 60), 60.0, 0.0, -1.0)
    with pytest.raises(ValueError, match="soc_initial_frac"):
        Plant(site(), soc_initial_frac=0.99)


def test_value_at_holds_each_period():
    s = pd.Series([1.0, 2.0], pd.date_range(T0, periods=2, freq="h"))
    assert value_at(s, after(T0, 3599), "x") == 1.0 and value_at(s, after(T0, 7199), "x") == 2.0
    with pytest.raises(ValueError):
        value_at(s, after(T0, 7200), "x")


# --- factory load profile ---
def test_factory_profile_hand_values_and_day_types():
    prof = FactoryProfile(peak_kw=1000.0, base_frac=0.3, noise_frac=0.0, timezone="Asia/Shanghai",
                          shifts=(Shift(6, 14, 1.0), Shift(22, 6, 0.5)))  # fmt: skip
    # Wed 2026-07-01 local; stamps are UTC period starts of 1-minute periods (midpoint +30 s)
    idx = pd.date_range("2026-06-30T16:00Z", periods=7 * 1440, freq="min")
    s = factory_load_kw(idx, prof).tz_convert("Asia/Shanghai")
    at = lambda d, hm: s[pd.Timestamp(f"{d} {hm}", tz="Asia/Shanghai")]  # noqa: E731
    assert at("2026-07-01", "08:00") == pytest.approx(1000.0)        # full day shift
    assert at("2026-07-01", "15:00") == pytest.approx(300.0)         # base only
    assert at("2026-07-01", "03:00") == pytest.approx(300 + 700 * 0.5)  # night shift wraps
    assert at("2026-07-01", "02:00") == pytest.approx(300 + 700 * 0.5 * 0.85)  # its break
    assert at("2026-07-01", "10:00") == pytest.approx(300 + 700 * 0.85)  # mid-shift break
    assert at("2026-07-04", "08:00") == pytest.approx(300 + 700 * 0.5)   # Saturday
    assert at("2026-07-05", "08:00") == pytest.approx(300.0)             # Sunday
    hol = factory_load_kw(idx, prof, holidays=[dt.date(2026, 7, 1)]).tz_convert("Asia/Shanghai")
    assert hol[pd.Timestamp("2026-07-01 08:00", tz="Asia/Shanghai")] == pytest.approx(300.0)


def test_factory_profile_is_deterministic_and_weekends_lower():
    idx = pd.date_range("2026-06-29", periods=14 * 96, freq="15min", tz="UTC")  # from a Monday
    prof = FactoryProfile(peak_kw=800.0)
    a, b = factory_load_kw(idx, prof, 1), factory_load_kw(idx, prof, 1)
    c = factory_load_kw(idx, prof, 2)
    assert a.equals(b) and not a.equals(c) and (a >= 0).all()
    by_day = a.groupby(a.index.day_of_week).mean()
    assert by_day[0:5].min() > by_day[5] > by_day[6]
    smooth = factory_load_kw(idx, replace(prof, noise_frac=0.0))
    assert 0.01 < (a / smooth - 1).std() < 0.06  # the 3 % noise is there, and only that


def test_demo_load_and_clear_sky_pv_of_the_example_site():
    s = load_config(CONFIGS / "suzhou-factory.toml")
    load = demo_load_kw(s, T0, days=2, step_min=15)
    assert len(load) == 192 and load.max() <= s.grid.import_max_kw
    pv = pv_available_kw(s, load.index)
    local = pv.tz_convert(s.site.timezone)
    assert local.between_time("00:00", "03:00").max() == 0.0
    assert local.between_time("11:00", "13:00").min() > 0.3 * sum(a.ac_kw for a in s.pv)
    assert pv.max() <= sum(a.ac_kw for a in s.pv) + 1e-6
    assert math.isfinite(pv.sum())


def test_expired_commands_are_dropped_so_a_long_run_stays_small():
    p = Plant(site(), EXACT)
    for k in range(500):
        p.set_battery_setpoint(10.0, after(T0, 5 * k), revert_timeout_s=12.0)
        p.step(after(T0, 5 * k), 5.0, 0.0, 50.0)
    assert len(p.commands) <= 3


def test_a_write_is_answered_at_once_without_time_passing():
    p = Plant(site(), EXACT)
    p.step(T0, 60.0, 0.0, 300.0)
    e = p.energy_kwh
    p.set_battery_setpoint(-70.0, after(T0, 60), revert_timeout_s=30)
    assert (p.state.mode, p.state.p_batt_kw, p.state.p_grid_kw) == ("setpoint", -70.0, 370.0)
    p.release(after(T0, 60))
    assert (p.state.mode, p.state.p_batt_kw) == ("idle", 0.0) and p.energy_kwh == e


def test_example_site_day_on_clear_sky_pv_conserves_energy_and_never_exports():
    s = load_config(CONFIGS / "suzhou-factory.toml")
    start = dt.datetime(2026, 6, 30, 16, tzinfo=dt.UTC)  # local midnight, a Wednesday
    load = demo_load_kw(s, start, days=1, step_min=15, seed=4)
    pv = pv_available_kw(s, load.index)
    hour = load.index.tz_convert(s.site.timezone).hour
    sp = pd.Series(np.select([hour < 6, (hour >= 18) & (hour < 22)], [-3000.0, 3000.0], np.nan),
                   load.index)  # fmt: skip
    p = Plant(s, pv_kw=pv, load_kw=load, standby_loss_kw=1.0)
    e0 = p.energy_kwh
    df = simulate(p, load.index, sp, revert_timeout_s=900)
    c, b = p.counters, s.battery
    stored = b.eta_charge * c["e_charge_kwh"] - c["e_discharge_kwh"] / b.eta_discharge
    assert p.energy_kwh - e0 == pytest.approx(stored - c["e_standby_kwh"], abs=1e-6)
    assert c["e_export_kwh"] == 0.0 and (df["p_grid_kw"] >= 0).all()
    assert c["e_pv_kwh"] + c["e_curtail_kwh"] == pytest.approx(pv.sum() / 4, rel=1e-12)
    assert df["soc_frac"].between(b.soc_min_frac, b.soc_max_frac).all()
    assert df["soc_frac"].max() > 0.9 and c["e_discharge_kwh"] > 1000.0
