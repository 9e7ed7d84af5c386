"""Sweeps: grid expansion, validated overrides, and a two-point sweep on a Dask LocalCluster
and in a local process pool, on a two-day generated Suzhou scenario."""

from __future__ import annotations

import pytest

from dispatch.types import ConfigError
from sim import sweep
from sim.scenario import PROJECT_ROOT

SITE = PROJECT_ROOT / "configs" / "suzhou-factory.toml"


@pytest.fixture()
def two_days(tmp_path):
    path = tmp_path / "scenario.toml"
    path.write_text(f'''name = "suzhou-2d"
site_config = "{SITE.as_posix()}"
start = 2026-07-06T00:00:00+08:00
end = 2026-07-08T00:00:00+08:00
[generated]
load = "demo_profile"
pv = "clear_sky"
''')
    return path


def test_grid_points_cross_axes_with_variants_and_expand_power():
    grid = sweep.GridSpec(
        axes={"battery.energy_kwh": [1.0, 2.0], "battery.power_kw": [5.0]},
        variants=[sweep.Variant(name="a"),
                  sweep.Variant(name="b", overrides={"tariff": {"currency": "X"}})],
    )  # fmt: skip
    points = sweep.grid_points(grid)
    assert len(points) == 4
    p = points[1]
    assert p.params == {"battery.energy_kwh": 1.0, "battery.power_kw": 5.0, "variant": "b"}
    assert p.overrides == {
        "battery": {"energy_kwh": 1.0, "charge_max_kw": 5.0, "discharge_max_kw": 5.0},
        "tariff": {"currency": "X"},
    }


def test_overrides_are_validated():
    from dispatch.config import load_config

    cfg = load_config(SITE)
    changed = sweep.apply_overrides(cfg, {"carbon": {"price_per_kg": 0.5}})
    assert changed.carbon.price_per_kg == 0.5
    assert changed.battery == cfg.battery
    with pytest.raises(ConfigError):
        sweep.apply_overrides(cfg, {"battery": {"soc_min_frac": 2.0}})
    with pytest.raises(ConfigError):
        sweep.apply_overrides(cfg, {"battery": {"no_such_key": 1.0}})


def _check(table, expected_energy):
    totals = table[table["month"] == "total"]
    assert sorted(set(totals["battery.energy_kwh"])) == expected_energy
    assert set(totals["strategy"]) == {"no_battery", "perfect_foresight"}
    bound = totals[totals["strategy"] == "perfect_foresight"].set_index("battery.energy_kwh")
    # a bigger battery never does worse in the perfect-foresight bound
    assert (
        bound.loc[expected_energy[1], "total_cost"]
        <= bound.loc[expected_energy[0], "total_cost"] + 1e-6
    )


GRID = sweep.GridSpec(strategies=["no_battery", "perfect_foresight"],
                      axes={"battery.energy_kwh": [5000.0, 15550.0]})  # fmt: skip


def test_two_point_sweep_on_a_dask_local_cluster(two_days):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster:  # fmt: skip
        table = sweep.run_sweep(two_days, GRID, scheduler=cluster.scheduler_address)
    _check(table, [5000.0, 15550.0])


def test_two_point_sweep_in_local_processes_equals_serial(two_days):
    local = sweep.run_sweep(two_days, GRID, executor="process", workers=2)
    serial = sweep.run_sweep(two_days, GRID, executor="serial")
    _check(local, [5000.0, 15550.0])
    assert local["total_cost"].tolist() == pytest.approx(serial["total_cost"].tolist())


def test_the_shipped_grid_parses_into_sixteen_points():
    grid = sweep.load_grid(PROJECT_ROOT / "configs" / "sweeps" / "suzhou-size-carbon.toml")
    points = sweep.grid_points(grid)
    assert len(points) == 16
    assert {p.params["variant"] for p in points} == {"base", "demand-charge-x2"}
    from dispatch.config import load_config

    cfg = sweep.apply_overrides(load_config(SITE), points[-1].overrides)
    assert cfg.tariff.demand_charge_per_kw_month == 80.0
    assert cfg.battery.charge_max_kw == cfg.battery.discharge_max_kw == 3000.0
