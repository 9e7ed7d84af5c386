"""The ratcheting threshold rule (sim/rules.py): exact thresholds on toy loads, the search
against a brute-force scan, and the replay holding, raising and resetting its threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.config import BatterySection
from sim import backtest, rules
from tests.test_backtest import scenario

#: 10 kWh usable (0 .. 10 of 10 kWh, lossless), 1 h slots.
LOSSLESS = BatterySection(energy_kwh=10.0, charge_max_kw=100.0, discharge_max_kw=100.0,
                          soc_min_frac=0.0, soc_max_frac=1.0, eta_charge=1.0, eta_discharge=1.0)


def test_two_peaks_without_a_gap_share_the_battery():
    # 2 h at 20 kW from 10 kWh: 2 * (20 - T) <= 10, so T = 15
    t = rules.holdable_threshold_kw(np.array([0.0, 20.0, 20.0, 0.0]), 1.0, LOSSLESS)
    assert t == pytest.approx(15.0, abs=rules.TOLERANCE_KW)


def test_a_gap_below_the_threshold_refills_the_battery():
    # the hour at 0 kW refills up to T kWh at most, so both 20 kW hours hold from T = 10
    t = rules.holdable_threshold_kw(np.array([20.0, 0.0, 20.0]), 1.0, LOSSLESS)
    assert t == pytest.approx(10.0, abs=rules.TOLERANCE_KW)


def test_the_discharge_limit_bounds_the_threshold():
    weak = LOSSLESS.model_copy(update={"discharge_max_kw": 4.0})
    t = rules.holdable_threshold_kw(np.array([0.0, 20.0, 0.0]), 1.0, weak)
    assert t == pytest.approx(16.0, abs=rules.TOLERANCE_KW)


@settings(max_examples=40, deadline=None)
@given(net=st.lists(st.floats(0.0, 30.0), min_size=1, max_size=24),
       eta=st.floats(0.8, 1.0), charge=st.floats(1.0, 20.0))
def test_the_search_finds_the_lowest_threshold_a_fine_scan_finds(net, eta, charge):
    b = LOSSLESS.model_copy(update={"eta_charge": eta, "eta_discharge": eta,
                                    "charge_max_kw": charge, "discharge_max_kw": 8.0})
    net_kw = np.array(net)
    found = rules.holdable_threshold_kw(net_kw, 1.0, b)
    scan = np.arange(0.0, 30.0 + 0.05, 0.05)
    held = rules._holds(net_kw, scan, 1.0, b)
    lowest = scan[np.argmax(held)]
    assert rules._holds(net_kw, np.array([found]), 1.0, b)[0]
    assert lowest - 0.05 <= found <= lowest + rules.TOLERANCE_KW


def test_the_replay_ratchets_within_a_month_and_restarts_from_the_last_one():
    # two billing months of a flat day; the second month's days bring a higher peak
    days = pd.date_range("2026-03-30", "2026-04-03", freq="1h", tz="UTC", inclusive="left")
    hour = days.hour.to_numpy()
    load = 20.0 + 15.0 * ((hour >= 9) & (hour < 12)) + 10.0 * (days.month.to_numpy() == 4) * (
        hour == 10
    )
    n = len(days)
    sc = scenario(load, np.zeros(n), np.full(n, 0.2), np.full(n, 300.0), soc=0.9)
    out = rules.threshold_ratchet(sc)
    f = out.frame
    months = f.index.strftime("%Y-%m")
    target = f["peak_target_kw"].to_numpy()
    for m in ("2026-03", "2026-04"):
        t = target[months == m]
        assert np.all(np.diff(t) >= -1e-9)  # only ever raised within the month
        assert f["p_grid_kw"][months == m].max() <= t[-1] + 1e-6  # never above where it ended
    march_net = load[months == "2026-03"]
    b = sc.config.battery
    assert target[months == "2026-04"][0] == pytest.approx(
        rules.holdable_threshold_kw(march_net, 1.0, b), abs=1e-9
    )
    # April's hour at 45 kW is above what March's threshold can hold: raised, not held
    assert target[months == "2026-04"][-1] > target[months == "2026-04"][0]
    assert out.costs.demand_charge < backtest.no_battery(sc).costs.demand_charge
