"""KPIs recomputed from outcome frames: per-month sums equal each outcome's totals, and the
shares, cycles and peaks follow their definitions on hand-made frames."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from sim import backtest, forecasters, kpis
from tests.factories import config
from tests.test_backtest import toy_day


def two_month_toy():
    sc = toy_day(n=72, seed=3)
    index = pd.date_range("2026-03-30", periods=72, freq="1h", tz="UTC")  # 30 Mar .. 1 Apr
    return dataclasses.replace(sc, data=sc.data.set_axis(index))


@pytest.fixture(scope="module")
def outcomes():
    sc = two_month_toy()
    runs = [backtest.no_battery(sc), backtest.self_consumption(sc), backtest.peak_shaving(sc),
            backtest.receding(sc, forecasters.persistence, "receding_naive"),
            backtest.perfect_foresight(sc)]  # fmt: skip
    return sc, runs


def test_monthly_kpis_sum_to_the_outcome_totals(outcomes):
    sc, runs = outcomes
    table = kpis.kpi_table(runs, sc.config)
    for out in runs:
        rows = table[table["strategy"] == out.strategy]
        months = rows[rows["month"] != kpis.TOTAL]
        assert list(months["month"]) == ["2026-03", "2026-04"]
        total = rows[rows["month"] == kpis.TOTAL].iloc[0]
        for part, value in out.costs.as_dict().items():
            key = "total_cost" if part == "total" else part
            assert months[key].sum() == pytest.approx(value, rel=1e-9, abs=1e-9), (
                out.strategy,
                part,
            )
            assert total[key] == pytest.approx(value, rel=1e-9, abs=1e-9)
        assert months["kg_co2"].sum() == pytest.approx(out.kg_co2, rel=1e-9)
        assert total["peak_import_kw"] == pytest.approx(out.frame["p_grid_kw"].clip(lower=0).max())


def test_share_of_the_bound_is_one_for_the_bound_and_zero_for_the_baseline(outcomes):
    sc, runs = outcomes
    t = kpis.kpi_table(runs, sc.config).set_index(["strategy", "month"])
    assert t.loc[("no_battery", "total"), "share_of_bound"] == pytest.approx(0.0)
    assert t.loc[("perfect_foresight", "total"), "share_of_bound"] == pytest.approx(1.0)
    assert (t.xs("total", level="month")["share_of_bound"] <= 1.0 + 1e-9).all()


def frame(grid, batt, pv, curtail, load, index):
    n = len(grid)
    return pd.DataFrame({"p_grid_kw": grid, "p_batt_kw": batt, "p_pv_kw": pv,
                         "p_curtail_kw": curtail, "p_load_kw": load, "soc_frac": np.full(n, 0.5),
                         "price_import_per_kwh": np.full(n, 0.2),
                         "price_export_per_kwh": np.full(n, 0.05),
                         "ci_g_per_kwh": [400.0, 500.0, 600.0, 700.0]}, index=index)  # fmt: skip


def test_hand_computed_kpis():
    cfg = config(
        battery={
            "energy_kwh": 20.0,
            "charge_max_kw": 10.0,
            "discharge_max_kw": 10.0,
            "soc_min_frac": 0.1,
            "soc_max_frac": 0.9,
            "wear_cost_per_kwh": 0.01,
        },
        tariff={"demand_charge_per_kw_month": 3.0},
        carbon={"price_per_kg": 0.1},
    )
    index = pd.date_range("2026-05-01", periods=4, freq="30min", tz="UTC")
    # load = grid + pv + batt in every slot
    f = frame(grid=[10.0, -4.0, 2.0, 6.0], batt=[0.0, -2.0, 8.0, 4.0],
              pv=[0.0, 10.0, 0.0, 0.0], curtail=[0.0, 2.0, 0.0, 0.0],
              load=[10.0, 4.0, 10.0, 10.0], index=index)  # fmt: skip
    row = kpis.strategy_kpis(f, cfg, "hand").set_index("month").loc["total"]
    assert row["import_kwh"] == pytest.approx(0.5 * 18)
    assert row["export_kwh"] == pytest.approx(0.5 * 4)
    assert row["energy_cost"] == pytest.approx(0.2 * 9)
    assert row["export_revenue"] == pytest.approx(0.05 * 2)
    assert row["kg_co2"] == pytest.approx(0.5 * (10 * 400 + 2 * 600 + 6 * 700) / 1000)
    # two hours of May's 744: its demand charge (3 x 10 kW) billed pro rata, and marked
    assert row["demand_charge"] == pytest.approx(30.0 * 2 / 744)
    assert row["month_coverage"] == pytest.approx(2 / 744)
    assert row["peak_time"] == index[0].isoformat()
    assert row["wear_cost"] == pytest.approx(0.01 * 0.5 * 14)
    assert row["self_consumption_frac"] == pytest.approx((10 - 4) / 12)
    assert row["self_sufficiency_frac"] == pytest.approx(1 - 9 / 17)
    assert row["discharge_kwh"] == pytest.approx(6.0)
    assert row["full_cycles"] == pytest.approx(6.0 / 16.0)
    assert row["total_cost"] == pytest.approx(
        row["energy_cost"] - row["export_revenue"] + 30 * 2 / 744 + 0.1 * row["kg_co2"]
        + row["wear_cost"]
    )


def test_the_peak_is_set_by_the_first_slot_that_reached_it():
    # a guard held 10 kW from the second slot on; the last slot is a rounding error higher
    index = pd.date_range("2026-05-01", periods=4, freq="30min", tz="UTC")
    grid = [6.0, 10.0, 10.0, 10.0 + 1e-9]
    f = frame(grid=grid, batt=[0.0] * 4, pv=[0.0] * 4, curtail=[0.0] * 4, load=grid,
              index=index)  # fmt: skip
    row = kpis.strategy_kpis(f, config(), "held").set_index("month").loc["2026-05"]
    assert row["peak_time"] == index[1].isoformat()
    assert row["peak_import_kw"] == pytest.approx(10.0)


def test_savings_are_nan_without_the_references(outcomes):
    sc, runs = outcomes
    alone = kpis.kpi_table([runs[1]], sc.config)
    assert alone["saving"].isna().all() and alone["share_of_bound"].isna().all()
    no_bound = kpis.kpi_table(runs[:2], sc.config)
    assert no_bound["saving"].notna().all() and no_bound["share_of_bound"].isna().all()


def test_the_best_rule_is_chosen_month_by_month():
    rows = [("self_consumption", "2026-01", 10.0), ("self_consumption", "2026-02", 7.0),
            ("threshold_ratchet", "2026-01", 8.0), ("threshold_ratchet", "2026-02", 9.0),
            ("receding_robust", "2026-01", 9.0), ("receding_robust", "2026-02", 6.0),
            ("perfect_foresight", "2026-01", 1.0), ("perfect_foresight", "2026-02", 1.0)]
    table = pd.DataFrame(rows, columns=["strategy", "month", "total_cost"])
    judged = kpis.against_best_rule(table, "receding_robust").set_index("month")
    assert judged.loc["2026-01", "best_rule"] == "threshold_ratchet"  # not the bound
    assert judged.loc["2026-02", "best_rule"] == "self_consumption"
    assert judged["over_rule"].tolist() == [1.0, -1.0, 0.0]  # the total sums the months
    assert kpis.against_best_rule(table, "receding_naive").empty
