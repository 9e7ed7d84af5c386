"""Scope 2 accounting on hand-computed toy intervals, and its invariants (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.carbon import accounting as carbon
from dispatch.carbon import chain as ledger
from dispatch.carbon import market as carbon_market
from dispatch.types import ConfigError, InputError
from tests.factories import config

# Four hourly intervals (UTC site), grid factor 500 g/kWh where the series has no value:
#   t0 night, 200 g/kWh: load 10, battery charges 5 from the grid -> import 15
#   t1 evening, 800 g/kWh: load 10, battery discharges 4          -> import 6
#   t2 midday, 400 g/kWh: load 10, PV 25                          -> export 15
#   t3 unknown intensity (config 500): load 10, PV 4              -> import 6
INDEX = pd.date_range("2026-07-01T00:00Z", periods=4, freq="1h")
FRAME = pd.DataFrame(
    {
        "p_load_kw": [10.0, 10.0, 10.0, 10.0],
        "p_pv_kw": [0.0, 0.0, 25.0, 4.0],
        "p_batt_kw": [-5.0, 4.0, 0.0, 0.0],
        "p_grid_kw": [15.0, 6.0, -15.0, 6.0],
        "ci_g_per_kwh": [200.0, 800.0, 400.0, np.nan],
    },
    index=INDEX,
)
CFG = config(carbon={"grid_ci_g_per_kwh": 500.0})


def _cert(mwh: float, **kw):
    base = {"id": "GEC-1", "valid_from": "2026-07-01", "valid_to": "2026-07-01", "mwh": mwh}
    return {**base, **kw}


def test_location_based_hand_computed():
    acc = carbon.interval_accounting(FRAME, CFG)
    assert acc["import_kwh"].tolist() == [15.0, 6.0, 0.0, 6.0]
    assert acc["ci_g_per_kwh"].tolist() == [200.0, 800.0, 400.0, 500.0]
    assert acc["ci_source"].tolist() == ["series"] * 3 + ["config_factor"]
    # 15 * 0.2 + 6 * 0.8 + 0 + 6 * 0.5 = 3 + 4.8 + 3 = 10.8 kg
    assert acc["location_kg_co2"].tolist() == pytest.approx([3.0, 4.8, 0.0, 3.0])


def test_export_is_kept_out_of_the_footprint():
    acc = carbon.interval_accounting(FRAME, CFG)
    assert acc["export_kwh"].tolist() == [0.0, 0.0, 15.0, 0.0]
    more_export = FRAME.assign(p_pv_kw=[0.0, 0.0, 100.0, 4.0], p_grid_kw=[15.0, 6.0, -90.0, 6.0])
    acc2 = carbon.interval_accounting(more_export, CFG)
    assert acc2["export_kwh"].iloc[2] == 90.0
    assert acc2["location_kg_co2"].sum() == pytest.approx(10.8)  # no credit for exports


def test_battery_shifting_grid_charge_at_low_discharge_at_high_carbon():
    acc = carbon.interval_accounting(FRAME, CFG)
    # no battery: imports 10, 10, 0, 6 -> 2 + 8 + 0 + 3 = 13 kg; actual 10.8 kg
    assert acc["nobatt_import_kwh"].tolist() == [10.0, 10.0, 0.0, 6.0]
    assert acc["nobatt_kg_co2"].sum() == pytest.approx(13.0)
    # charging 5 kWh at 200 g costs 1 kg more, discharging 4 kWh at 800 g saves 3.2 kg
    assert acc["avoided_battery_kg_co2"].tolist() == pytest.approx([-1.0, 3.2, 0.0, 0.0])
    assert acc["avoided_battery_kg_co2"].sum() == pytest.approx(2.2)


def test_avoided_by_pv_self_consumption():
    acc = carbon.interval_accounting(FRAME, CFG)
    # PV used directly by the load: 10 kWh at 400 g and 4 kWh at 500 g = 4 + 2 = 6 kg
    assert acc["pv_direct_kwh"].tolist() == [0.0, 0.0, 10.0, 4.0]
    assert acc["avoided_pv_kg_co2"].tolist() == pytest.approx([0.0, 0.0, 4.0, 2.0])
    # without PV and battery the load would cost 2 + 8 + 4 + 5 = 19 kg = 10.8 + 6 + 2.2
    assert acc["nopv_kg_co2"].sum() == pytest.approx(19.0)


def test_battery_losses_and_their_emissions():
    acc = carbon.interval_accounting(FRAME, CFG)
    losses = carbon.battery_losses(acc)
    assert losses["charge_kwh"] == 5.0 and losses["discharge_kwh"] == 4.0
    assert losses["loss_kwh"] == 1.0
    assert losses["charge_ci_g_per_kwh"] == pytest.approx(200.0)  # all charged from the grid
    assert losses["loss_kg_co2"] == pytest.approx(0.2)


def test_pv_charged_energy_carries_no_emissions():
    frame = pd.DataFrame(
        {
            "p_load_kw": [10.0, 10.0],
            "p_pv_kw": [16.0, 0.0],
            "p_batt_kw": [-8.0, 6.0],
            "p_grid_kw": [2.0, 4.0],
            "ci_g_per_kwh": [300.0, 600.0],
        },
        index=INDEX[:2],
    )
    acc = carbon.interval_accounting(frame, CFG)
    # 6 kWh of PV surplus and 2 kWh of grid charge: the charged energy averages 75 g/kWh
    assert acc["charge_grid_kwh"].tolist() == [2.0, 0.0]
    losses = carbon.battery_losses(acc)
    assert losses["charge_ci_g_per_kwh"] == pytest.approx(75.0)
    assert losses["loss_kg_co2"] == pytest.approx(2.0 * 0.075)


def test_no_battery_export_respects_the_export_limit():
    cfg = config(
        grid={"export_allowed": False, "export_max_kw": None}, carbon={"grid_ci_g_per_kwh": 1.0}
    )
    acc = carbon.interval_accounting(FRAME.assign(p_pv_kw=[0, 0, 25, 4], p_curtail_kw=0.0), cfg)
    assert acc["nobatt_export_kwh"].tolist() == [0.0, 0.0, 0.0, 0.0]
    acc = carbon.interval_accounting(FRAME, config(grid={"export_max_kw": 12.0}))
    assert acc["nobatt_export_kwh"].tolist() == [0.0, 0.0, 12.0, 0.0]


def test_curtailed_pv_counts_as_available_without_battery():
    frame = FRAME.assign(
        p_pv_kw=[0.0, 0.0, 8.0, 4.0],
        p_curtail_kw=[0.0, 0.0, 3.0, 0.0],
        p_grid_kw=[15.0, 6.0, 2.0, 6.0],
    )
    acc = carbon.interval_accounting(frame, CFG)
    assert acc["nobatt_import_kwh"].iloc[2] == pytest.approx(0.0)  # 10 - (8 + 3) < 0


def test_market_based_certificate_covers_part_of_the_imports():
    cfg = config(
        carbon={
            "grid_ci_g_per_kwh": 500.0,
            "residual_mix_g_per_kwh": 700.0,
            "certificates": [_cert(0.009)],
        }
    )
    acc = carbon.interval_accounting(FRAME, cfg)
    market, uses = carbon_market.market_based(acc, cfg)
    # 9 kWh over 27 kWh of imports: a third of each interval's import is covered
    assert market["covered_kwh"].tolist() == pytest.approx([5.0, 2.0, 0.0, 2.0])
    # residual 10 + 4 + 4 = 18 kWh at 700 g = 12.6 kg (location-based is 10.8 kg)
    assert market["market_kg_co2"].sum() == pytest.approx(12.6)
    assert uses[0].allocated_mwh == pytest.approx(0.009) and uses[0].unused_mwh == pytest.approx(0)


def test_market_based_without_residual_mix_uses_interval_intensity():
    cfg = config(carbon={"grid_ci_g_per_kwh": 500.0, "certificates": [_cert(0.009)]})
    market, _ = carbon_market.market_based(carbon.interval_accounting(FRAME, cfg), cfg)
    # residual 10 at 200 g + 4 at 800 g + 4 at 500 g = 2 + 3.2 + 2 = 7.2 kg
    assert market["market_kg_co2"].sum() == pytest.approx(7.2)


def test_ppa_factor_window_and_surplus_certificate():
    certs = [_cert(0.030, id="PPA", instrument="ppa", ci_g_per_kwh=50.0, valid_to="2026-07-02")]
    cfg = config(
        carbon={"grid_ci_g_per_kwh": 500.0, "residual_mix_g_per_kwh": 700.0, "certificates": certs}
    )
    frame = pd.concat([FRAME, FRAME.set_axis(INDEX + pd.Timedelta(days=2))])
    idx = pd.date_range(INDEX[0], periods=8, freq="1h")
    acc = carbon.interval_accounting(frame.set_axis(idx), cfg)
    acc.index = frame.index  # the second day lies outside the PPA window
    market, uses = carbon_market.market_based(acc, cfg)
    assert market["covered_kwh"].tolist() == [15.0, 6.0, 0.0, 6.0, 0.0, 0.0, 0.0, 0.0]
    assert market["market_kg_co2"].iloc[:4].sum() == pytest.approx(27 * 0.05)
    assert market["market_kg_co2"].iloc[4:].sum() == pytest.approx(27 * 0.7)
    assert uses[0].allocated_mwh == pytest.approx(0.027) and uses[0].unused_mwh == pytest.approx(
        0.003
    )


def test_soonest_expiring_certificate_is_used_first():
    certs = [_cert(0.027, id="B", valid_to="2026-07-31"), _cert(0.009, id="A")]
    cfg = config(carbon={"grid_ci_g_per_kwh": 500.0, "certificates": certs})
    _, uses = carbon_market.market_based(carbon.interval_accounting(FRAME, cfg), cfg)
    assert [u.id for u in uses] == ["B", "A"]
    assert uses[1].allocated_mwh == pytest.approx(0.009)  # A first, then B covers the rest
    assert uses[0].allocated_mwh == pytest.approx(0.018)


def test_certificate_config_errors():
    with pytest.raises(ConfigError, match="valid_to"):
        config(
            carbon={"grid_ci_g_per_kwh": 1.0, "certificates": [_cert(1.0, valid_to="2026-06-30")]}
        )
    with pytest.raises(ConfigError, match="unique"):
        config(carbon={"grid_ci_g_per_kwh": 1.0, "certificates": [_cert(1.0), _cert(2.0)]})
    with pytest.raises(ConfigError, match=r"carbon\.certificates\.0\.mwh"):
        config(carbon={"grid_ci_g_per_kwh": 1.0, "certificates": [_cert(0.0)]})


def test_bad_flows_are_named():
    with pytest.raises(InputError, match="p_batt_kw"):
        carbon.interval_accounting(FRAME.drop(columns="p_batt_kw"), CFG)
    with pytest.raises(InputError, match="p_load_kw is not finite at 2026-07-01T01:00"):
        carbon.interval_accounting(FRAME.assign(p_load_kw=[10.0, np.nan, 10.0, 10.0]), CFG)
    with pytest.raises(InputError, match="negative"):
        carbon.interval_accounting(FRAME.assign(ci_g_per_kwh=-1.0), CFG)


def test_account_columns_are_the_ledger_fields():
    names = set(ledger.VALUE_FIELDS) - {"start_utc", "end_utc", "method_version", "provenance",
                                         "factor_ref"}
    assert names == set(carbon.ACCOUNT_COLUMNS)


def test_project_year_linear_trend():
    months = {2026 * 12 + m: 10.0 - m for m in range(12)}  # 10, 9, ..., -1 -> falls 1 t/month
    out = carbon.project_year(months, 2026 * 12 + 11, 2027)
    assert out["trend_slope_t_co2_per_month"] == pytest.approx(-1.0)
    assert out["trend_months"] == 12 and out["year_t_co2"] == pytest.approx(0.0)
    rising = {2026 * 12 + m: float(m) for m in range(12)}
    # the line continues 12, 13, ..., 23 over 2027: 210 t
    assert carbon.project_year(rising, 2026 * 12 + 11, 2027)["year_t_co2"] == pytest.approx(210.0)
    assert carbon.project_year({5: 3.0}, 5, 0)["year_t_co2"] == pytest.approx(36.0)  # flat 3 t
    assert carbon.project_year({}, 5, 2027) == {}


flows = st.lists(
    st.tuples(st.floats(0, 500), st.floats(0, 500), st.floats(-200, 200), st.floats(0, 900)),
    min_size=2,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(flows, st.floats(0, 0.5))
def test_invariants(rows, cert_mwh):
    load, pv, batt, ci = (np.array(c) for c in zip(*rows, strict=True))
    idx = pd.date_range("2026-07-01T00:00Z", periods=len(rows), freq="15min")
    frame = pd.DataFrame(
        {
            "p_load_kw": load,
            "p_pv_kw": pv,
            "p_batt_kw": batt,
            "p_grid_kw": load - pv - batt,
            "ci_g_per_kwh": ci,
        },
        index=idx,
    )
    cfg = config(carbon={"grid_ci_g_per_kwh": 1.0, "certificates": [_cert(cert_mwh + 1e-6)]})
    acc = carbon.interval_accounting(frame, cfg)
    total = acc["location_kg_co2"] + acc["avoided_pv_kg_co2"] + acc["avoided_battery_kg_co2"]
    np.testing.assert_allclose(total, acc["nopv_kg_co2"], rtol=1e-9, atol=1e-9)
    assert (acc["charge_grid_kwh"] <= acc["import_kwh"] + 1e-9).all()
    market, _ = carbon_market.market_based(acc, cfg)
    assert (market["covered_kwh"] <= acc["import_kwh"] + 1e-9).all()
    assert market["covered_kwh"].sum() <= 1000 * (cert_mwh + 1e-6) + 1e-6
    assert market["market_kg_co2"].sum() <= acc["location_kg_co2"].sum() + 1e-9
    bare = config(carbon={"grid_ci_g_per_kwh": 1.0})
    market, _ = carbon_market.market_based(acc, bare)
    np.testing.assert_allclose(market["market_kg_co2"], acc["location_kg_co2"], rtol=1e-12)


def test_one_interval_at_a_time_matches_the_whole_frame():
    whole = carbon.interval_accounting(FRAME, CFG)
    parts = [
        carbon.interval_accounting(FRAME.iloc[[i]], CFG, step=pd.Timedelta("1h")) for i in range(4)
    ]
    pd.testing.assert_frame_equal(pd.concat(parts), whole)
    with pytest.raises(InputError, match="at least two"):
        carbon.interval_accounting(FRAME.iloc[[0]], CFG)
    with pytest.raises(InputError, match="sorted, unique"):
        carbon.interval_accounting(FRAME.iloc[::-1], CFG, step=pd.Timedelta("1h"))
