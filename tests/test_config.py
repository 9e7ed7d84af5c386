"""Site configuration: the shipped examples load; bad files and values give a ConfigError that
names the key path and the value."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from dispatch.config import anchor_map_paths, load_config, parse_config
from dispatch.types import ConfigError
from tests.conftest import CONFIGS
from tests.factories import BASE

SHIPPED = sorted(CONFIGS.glob("*.toml"))


def data(**sections: dict[str, Any]) -> dict[str, Any]:
    """The toy site of ``tests.factories`` with whole sections replaced or added."""
    out = copy.deepcopy(BASE)
    out.update(copy.deepcopy(sections))
    return out


def problems(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    return str(info.value)


def test_both_example_sites_are_shipped():
    names = {p.name for p in SHIPPED}
    assert {"suzhou-factory.toml", "germany-factory-dayahead.toml"} <= names


SIZES = {"korea-steel-plant.toml": (1200.0, 400.0)}  # kWh, kWp; the others: the seed case


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_load(path: Path):
    cfg = load_config(path)
    energy_kwh, kwp = SIZES.get(path.name, (15550.0, 7100.0))
    assert cfg.battery.energy_kwh == energy_kwh
    assert cfg.pv_dc_kwp == pytest.approx(kwp)


def test_germany_config_values():
    cfg = load_config(CONFIGS / "germany-factory-dayahead.toml")
    assert cfg.site.timezone == "Europe/Berlin" and cfg.holiday_country == "DE"
    assert cfg.grid.export_limit_kw == 7100.0 and cfg.grid.import_max_kw == 12000.0
    assert cfg.tariff.day_ahead is not None and cfg.tariff.day_ahead.mode == "replace"
    assert cfg.tariff.day_ahead.adder_per_kwh == 0.12
    assert cfg.tariff.export.mode == "day_ahead"
    assert cfg.billing_timezone == "Europe/Berlin"
    assert (cfg.plan.step_min, cfg.plan.n_slots) == (15, 144)  # the default 36 h
    market = cfg.tariff.day_ahead_market
    assert market is not None and (market.timezone, market.published) == ("Europe/Berlin", "13:00")


def test_unknown_key_names_its_path():
    raw = data()
    raw["battery"]["capacity_kwh"] = 10.0
    text = problems(raw)
    assert "battery.capacity_kwh: unknown key" in text


def test_soc_window_must_be_open():
    raw = data()
    raw["battery"].update(soc_min_frac=0.9, soc_max_frac=0.9)
    text = problems(raw)
    assert "battery" in text and "soc_min_frac = 0.9 must be below soc_max_frac = 0.9" in text


def test_rule_naming_an_unknown_band():
    raw = data(
        tariff={
            "bands": {"flat": 0.1},
            "rules": [{"band": "nope", "start": "00:00", "end": "24:00"}],
        }
    )
    text = problems(raw)
    assert "tariff" in text and "rules[0].band = 'nope' is not a band; have ['flat']" in text


def test_seasons_with_a_gap():
    seasons = [
        {"name": "first", "start": "01-01", "end": "06-30"},
        {"name": "second", "start": "07-02", "end": "12-31"},
    ]
    raw = data(tariff={**BASE["tariff"], "seasons": seasons})
    assert "seasons: 07-01 falls in no season" in problems(raw)


def test_overlapping_seasons():
    seasons = [
        {"name": "first", "start": "01-01", "end": "07-01"},
        {"name": "second", "start": "07-01", "end": "12-31"},
    ]
    raw = data(tariff={**BASE["tariff"], "seasons": seasons})
    assert "07-01 falls in several seasons ['first', 'second']" in problems(raw)


def test_rules_leaving_a_minute_uncovered():
    rules = [
        {"band": "flat", "start": "00:00", "end": "23:59"},
        {"band": "flat", "start": "23:59", "end": "24:00", "day_types": ["workday"]},
    ]
    raw = data(tariff={"bands": {"flat": 0.1}, "rules": rules})
    assert "rules: no band for weekend at 23:59" in problems(raw)


def test_zero_export_site_with_an_export_limit():
    raw = data(grid={"import_max_kw": 100.0, "export_allowed": False, "export_max_kw": 50.0})
    text = problems(raw)
    assert "grid" in text and "export_max_kw = 50.0 contradicts export_allowed = false" in text


def test_zero_export_site_with_an_export_price():
    raw = data(grid={"import_max_kw": 100.0, "export_allowed": False})
    raw["tariff"]["export"] = {"mode": "fixed", "price_per_kwh": 0.05}
    assert "tariff.export.mode = 'fixed' but grid.export_allowed = false" in problems(raw)


def test_export_by_band_needs_rules():
    raw = data(tariff={"day_ahead": {"mode": "replace"}, "export": {"mode": "band"}})
    assert "export.mode = 'band' needs bands and rules" in problems(raw)


def test_bad_timezone():
    raw = data()
    raw["site"]["timezone"] = "Mars/Olympus"
    assert "site.timezone = 'Mars/Olympus': unknown time zone" in problems(raw)


def test_bad_time_of_day():
    raw = data(
        tariff={
            "bands": {"flat": 0.1},
            "rules": [{"band": "flat", "start": "00:00", "end": "25:00"}],
        }
    )
    assert "tariff.rules.0.end = '25:00'" in problems(raw)


def test_several_problems_are_all_reported():
    raw = data()
    raw["site"]["timezone"] = "Nowhere"
    raw["battery"]["charge_max_kw"] = -1.0
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    err = info.value
    assert len(err.problems) == 2
    assert any(p.startswith("battery.charge_max_kw = -1.0") for p in err.problems)


def test_bad_toml_names_the_file(tmp_path: Path):
    path = tmp_path / "broken.toml"
    path.write_text("[site\nname = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "not valid TOML" in str(info.value)
    assert info.value.source == str(path)


def test_missing_file(tmp_path: Path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "cannot read the file" in str(info.value)


def test_validation_errors_from_a_file_name_it(tmp_path: Path):
    text = (CONFIGS / "germany-factory-dayahead.toml").read_text(encoding="utf-8")
    path = tmp_path / "typo.toml"
    path.write_text(text.replace("energy_kwh = 15550.0", "energy_kWh = 15550.0"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"invalid configuration {path}" in message
    assert "battery.energy_kWh: unknown key" in message
    assert "battery.energy_kwh: required key is missing" in message


def test_soft_limits_priced_below_an_energy_price_are_refused():
    # in a currency with large numbers (KRW) the default penalty of 100 is less than an
    # hour of max-load energy: the plan would break the SoC window for profit
    raw = data(tariff={
        "currency": "KRW",
        "bands": {"light": 56.1, "max": {"of": "light", "multiplier": 3.4}},
        "rules": [{"band": "light", "start": "00:00", "end": "24:00"},
                  {"band": "max", "start": "10:00", "end": "12:00"}],
    })  # fmt: skip
    text = problems(raw)
    assert "plan.soft_penalty_per_kwh = 100" in text and "190.74 KRW/kWh" in text
    raw["plan"]["soft_penalty_per_kwh"] = 130000.0
    assert parse_config(raw).plan.soft_penalty_per_kwh == 130000.0


def test_relative_register_map_paths_are_taken_from_the_config_folder(tmp_path: Path):
    data = {"devices": [{"register_map": "sunspec"}, {"register_map": "maps/own.toml"},
                        {"register_map": "/abs/own.toml"}, "not a table"]}
    out = anchor_map_paths(data, tmp_path)
    assert [d["register_map"] if isinstance(d, dict) else d for d in out["devices"]] == [
        "sunspec", str(tmp_path / "maps" / "own.toml"), "/abs/own.toml", "not a table"]
    assert data["devices"][1]["register_map"] == "maps/own.toml"  # the input is not changed
