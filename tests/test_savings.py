"""Savings against no battery: a hand-computed day, and the store path (ledger + readings).

The Suzhou site (zero export, valley 0.28 CNY/kWh 00-08, peak 1.08 CNY/kWh 08-11 local,
570.3 g CO2/kWh, 40 CNY/kW-month), two 15-min intervals on Monday 2026-06-01:

- 02:00 local (valley): load 500 kW, no PV, battery charging 400 kW -> grid 900 kW.
  With battery 900 x 0.25 h = 225 kWh; without 500 x 0.25 = 125 kWh.
- 09:00 local (peak): load 1000 kW, no PV, battery discharging 380 kW -> grid 620 kW.
  With battery 155 kWh; without 250 kWh.
- 12:00 local (flat 0.64): load 1000 kW, PV 1500 kW, battery charging 500 kW -> grid 0.
  Without the battery the 500 kW surplus cannot be exported (zero export): 0 kWh either way.

Cost with battery 225 x 0.28 + 155 x 1.08 = 63 + 167.4 = 230.4 CNY; without 125 x 0.28 +
250 x 1.08 = 35 + 270 = 305 CNY: saved 74.6 CNY. CO2 with 380 kWh x 0.5703 = 216.714 kg,
without 375 x 0.5703 = 213.8625 kg: the battery added 2.8515 kg (its losses, flat factor).
Peak 900 kW with battery versus 1000 kW without: 100 kW x 40 = 4000 CNY a month if it holds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from dispatch.carbon import accounting
from dispatch.daemon.ledger_job import LedgerBook, append_completed
from dispatch.daemon.savings import day_start, measured_accounts, month_start, savings
from dispatch.store import Store
from dispatch.types import Setpoints, Snapshot
from tests.test_daemon_jobs import config

STEP = pd.Timedelta(minutes=15)
SLOTS = pd.DatetimeIndex(["2026-05-31T18:00Z", "2026-06-01T01:00Z", "2026-06-01T04:00Z"])
#                 grid    pv      batt    load
FLOWS = [(900.0, 0.0, -400.0, 500.0), (620.0, 0.0, 380.0, 1000.0), (0.0, 1500.0, -500.0, 1000.0)]


def toy_flows() -> pd.DataFrame:
    return pd.DataFrame(
        FLOWS, index=SLOTS, columns=["p_grid_kw", "p_pv_kw", "p_batt_kw", "p_load_kw"]
    )


def check_toy(s: object) -> None:
    assert s.intervals == 3 and s.unpriced == 0 and s.currency == "CNY"
    assert s.cost == pytest.approx(230.4) and s.cost_nobatt == pytest.approx(305.0)
    assert s.saved == pytest.approx(74.6)
    assert s.kg_co2 == pytest.approx(216.714) and s.kg_co2_nobatt == pytest.approx(213.8625)
    assert s.kg_co2_avoided == pytest.approx(-2.8515)
    assert s.import_kwh == pytest.approx(380.0) and s.import_nobatt_kwh == pytest.approx(375.0)
    assert s.peak_kw == pytest.approx(900.0) and s.peak_nobatt_kw == pytest.approx(1000.0)
    assert s.demand_saved == pytest.approx(4000.0)
    assert s.until == SLOTS[-1] + STEP


def test_a_hand_computed_day(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    accounts = accounting.interval_accounting(toy_flows(), cfg, STEP)
    check_toy(savings(accounts, cfg))


def test_one_interval_is_priced_too(tmp_path: Path) -> None:
    """The tariff needs two slots to know the step: a lone interval still gets its price."""
    cfg = config(tmp_path)
    s = savings(accounting.interval_accounting(toy_flows().iloc[1:2], cfg, STEP), cfg)
    assert s.intervals == 1 and s.saved == pytest.approx((250.0 - 155.0) * 1.08)


def test_nothing_measured_saves_nothing(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    s = savings(accounting.interval_accounting(toy_flows().iloc[:0], cfg, STEP), cfg)
    assert s.intervals == 0 and s.until is None and s.saved == 0.0


@pytest.mark.parametrize("booked", [False, True], ids=["readings", "ledger"])
def test_from_stored_readings_the_same_answer(tmp_path: Path, booked: bool) -> None:
    """Two readings per interval (their mean is the toy's flow), one reading in an interval
    not yet ended (not counted), one faulty reading (dropped); with the intervals booked in
    the carbon ledger first (by the daemon's ledger job) or not yet."""
    cfg = config(tmp_path)
    with Store(tmp_path / "s.sqlite3") as store:
        for t, (grid, pv, batt, load) in zip(SLOTS, FLOWS, strict=True):
            for k, d in ((1, -10.0), (8, 10.0)):
                t_k = (t + pd.Timedelta(minutes=k)).to_pydatetime()
                snap = Snapshot(t_k, grid + d, pv, batt - d, load, 0.5)
                store.record_cycle(snap, Setpoints(batt, "plan"), t_k)
            bad = Snapshot(
                (t + pd.Timedelta(minutes=3)).to_pydatetime(),
                9e9,
                pv,
                batt,
                load,
                0.5,
                faults=("pcs-1: timeout",),
            )
            store.write_snapshot(bad)
        late = SLOTS[-1] + STEP + pd.Timedelta(minutes=2)
        store.write_snapshot(Snapshot(late.to_pydatetime(), 5000.0, 0.0, 0.0, 5000.0, 0.5))
        now = (late + pd.Timedelta(minutes=1)).to_pydatetime()
        start = day_start(now, cfg.site.timezone)
        assert start == dt.datetime(2026, 5, 31, 16, tzinfo=dt.UTC)
        assert month_start(now, "Asia/Shanghai") == dt.datetime(2026, 5, 31, 16, tzinfo=dt.UTC)
        if booked:
            done = append_completed(store, cfg, now, LedgerBook(STEP))
            assert done.records == 3 and store.ledger_head().records == 3
        accounts = measured_accounts(store, cfg, start, now)
    assert list(accounts.index) == list(SLOTS)
    check_toy(savings(accounts, cfg))
