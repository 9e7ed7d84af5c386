"""Carbon reports: period parsing, hand-computed totals, determinism, rendering, targets."""

from __future__ import annotations

import datetime as dt
import io
import json
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from dispatch.carbon import accounting as carbon
from dispatch.carbon import chain as ledger
from dispatch.carbon import offsets
from dispatch.carbon import report as cr
from dispatch.types import InputError
from tests.factories import config
from tests.test_carbon_accounting import FRAME


def _ledger(frame: pd.DataFrame, cfg) -> list[ledger.IntervalRecord]:
    acc = carbon.interval_accounting(frame, cfg)
    step = frame.index[1] - frame.index[0]
    return ledger.chain(ledger.records_from_accounts(acc, step, carbon.METHOD_VERSION))


CFG = config(
    carbon={
        "grid_ci_g_per_kwh": 500.0,
        "residual_mix_g_per_kwh": 700.0,
        "certificates": [
            {"id": "GEC-1", "valid_from": "2026-07-01", "valid_to": "2026-07-01", "mwh": 0.009}
        ],
    }
)
RECORDS = _ledger(FRAME, CFG)
OFFSETS = [
    offsets.OffsetRecord("CCER", "CCER-1", 2025, 0.005, dt.date(2026, 6, 1), dt.date(2026, 7, 15)),
    offsets.OffsetRecord("carbon_inclusive", "PH-9", 2026, 0.25, dt.date(2026, 7, 2)),
]


@pytest.mark.parametrize(
    ("text", "kind", "start", "end"),
    [
        ("2026-10", "month", "2026-10-01", "2026-11-01"),
        ("2026-Q3", "quarter", "2026-07-01", "2026-10-01"),
        ("2026-q4", "quarter", "2026-10-01", "2027-01-01"),
        ("2026", "year", "2026-01-01", "2027-01-01"),
        (" 2026-12 ", "month", "2026-12-01", "2027-01-01"),
    ],
)
def test_parse_period(text, kind, start, end):
    p = cr.parse_period(text, "Asia/Shanghai")
    assert p.kind == kind
    assert p.start == pd.Timestamp(start, tz="Asia/Shanghai")
    assert p.end == pd.Timestamp(end, tz="Asia/Shanghai")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-13", "month 13 must be 01..12"),
        ("2026-00", "month 00 must be 01..12"),
        ("2026-Q5", "quarter Q5 must be Q1..Q4"),
        ("2026-Q0", "quarter Q0 must be Q1..Q4"),
        ("2026-1", "is not understood: use YYYY"),
        ("26-10", "is not understood"),
        ("2026/10", "is not understood"),
        ("", "is not understood"),
        ("2026-H1", "is not understood"),
        ("0999", "out of range"),
    ],
)
def test_parse_period_errors(text, message):
    with pytest.raises(InputError, match=message):
        cr.parse_period(text)


def test_month_report_hand_computed():
    report = cr.build_report(RECORDS, OFFSETS, CFG, "2026-07")
    t = report["totals"]
    assert t["intervals"] == 4 and t["import_kwh"] == 27.0 and t["export_kwh"] == 15.0
    assert t["location_kg_co2"] == pytest.approx(10.8)
    assert t["covered_kwh"] == pytest.approx(9.0)
    assert t["market_kg_co2"] == pytest.approx(12.6)  # 18 kWh residual at 700 g
    assert t["avoided_pv_kg_co2"] == pytest.approx(6.0)
    assert t["avoided_battery_kg_co2"] == pytest.approx(2.2)
    assert t["battery_loss_kwh"] == pytest.approx(1.0) and t[
        "battery_loss_kg_co2"
    ] == pytest.approx(0.2)
    assert t["offsets_retired_t_co2"] == 0.005
    assert t["scope2_net_t_co2"] == pytest.approx(0.0126 - 0.005)  # market basis minus retired
    assert [o["serial"] for o in report["offsets_retired"]] == ["CCER-1"]
    assert report["certificates"][0]["allocated_mwh"] == pytest.approx(0.009)
    assert report["factors"]["intensity_sources"] == {"config_factor": 1, "series": 3}
    assert report["ledger"] == {"records": 4, "head": RECORDS[-1].record_hash,
                                "checkpoint_public_key": None}


def test_location_basis_and_other_periods():
    cfg = CFG.model_copy(
        update={"carbon": CFG.carbon.model_copy(update={"neutrality_basis": "location"})}
    )
    report = cr.build_report(RECORDS, OFFSETS, cfg, "2026-Q3")
    assert [m["month"] for m in report["months"]] == ["2026-07", "2026-08", "2026-09"]
    assert report["totals"]["scope2_net_t_co2"] == pytest.approx(0.0108 - 0.005)
    empty = cr.build_report(RECORDS, OFFSETS, CFG, "2026-08")["totals"]
    assert empty["intervals"] == 0 and empty["location_kg_co2"] == 0.0


def test_months_are_local_and_certificates_allocated_over_the_whole_ledger():
    cfg = config(
        site={"timezone": "Asia/Shanghai"},
        carbon={
            "grid_ci_g_per_kwh": 500.0,
            "residual_mix_g_per_kwh": 600.0,
            "certificates": [
                {"id": "Q", "valid_from": "2026-09-01", "valid_to": "2026-10-31", "mwh": 0.02}
            ],
        },
    )
    idx = pd.date_range("2026-09-30T14:00Z", periods=4, freq="1h")  # 22:00 .. 01:00 local
    frame = pd.DataFrame(
        {
            "p_load_kw": 10.0,
            "p_pv_kw": 0.0,
            "p_batt_kw": 0.0,
            "p_grid_kw": 10.0,
            "ci_g_per_kwh": 400.0,
        },
        index=idx,
    )
    records = _ledger(frame, cfg)
    sep = cr.build_report(records, [], cfg, "2026-09")["totals"]
    octo = cr.build_report(records, [], cfg, "2026-10")["totals"]
    assert (sep["intervals"], octo["intervals"]) == (2, 2)
    # 20 kWh of certificate over 40 kWh of imports: half of each month is covered
    assert sep["covered_kwh"] == octo["covered_kwh"] == pytest.approx(10.0)
    year = cr.build_report(records, [], cfg, "2026")
    assert year["months"][8]["market_kg_co2"] == sep["market_kg_co2"] == pytest.approx(6.0)
    assert year["totals"]["market_kg_co2"] == pytest.approx(12.0)


def test_report_is_deterministic():
    texts = []
    for _ in range(2):
        records = _ledger(FRAME, CFG)
        report = cr.build_report(records, list(OFFSETS), CFG, "2026")
        texts.append((cr.to_json(report), cr.to_csv(report), cr.to_html(report)))
    assert texts[0] == texts[1]
    assert json.loads(texts[0][0])["totals"]["location_kg_co2"] == pytest.approx(10.8)


def test_csv_has_months_and_total():
    text = cr.to_csv(cr.build_report(RECORDS, OFFSETS, CFG, "2026-Q3"))
    assert "# method market:" in text and "# factor residual_mix_g_per_kwh: 700.0" in text
    table = pd.read_csv(io.StringIO(text), comment="#")
    assert table["month"].tolist() == ["2026-07", "2026-08", "2026-09", "total"]
    assert table.loc[3, "location_kg_co2"] == pytest.approx(10.8)
    assert table.loc[0, "scope2_net_t_co2"] == pytest.approx(0.0076)


def test_html_is_self_contained_with_a_monthly_svg_chart():
    page = cr.to_html(cr.build_report(RECORDS, OFFSETS, CFG, "2026"))
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page.lower()
    assert "src=" not in page and "href=" not in page and "@import" not in page
    svg = ET.fromstring(page[page.index("<svg") : page.index("</svg>") + 6])
    bars = [
        r for r in svg.iter("{http://www.w3.org/2000/svg}rect") if r.find("{*}title") is not None
    ]
    assert len(bars) == 12 * 3  # location, market, avoided by battery for each month
    assert "2026-07 location-based: 0.011 t" in page


def test_neutrality_target_at_the_current_trend():
    idx = pd.date_range("2025-01-01T00:00Z", "2025-12-31T23:00Z", freq="1h")
    frame = pd.DataFrame(
        {
            "p_load_kw": 10.0,
            "p_pv_kw": 0.0,
            "p_batt_kw": 0.0,
            "p_grid_kw": 10.0,
            "ci_g_per_kwh": 100.0,
        },
        index=idx,
    )
    month = pd.Series(idx.month, index=idx)
    frame["p_load_kw"] = frame["p_grid_kw"] = (
        10.0 * 31 / idx.days_in_month.to_numpy()
    )  # 7.44 MWh each month
    frame.loc[month.index, "ci_g_per_kwh"] = 100.0 + 10.0 * (month.to_numpy() - 1)
    cfg = config(carbon={"grid_ci_g_per_kwh": 1.0, "neutrality_target_year": 2027})
    records = _ledger(frame, cfg)
    held = offsets.OffsetRecord("CCER", "H", 2025, 20.0, dt.date(2025, 6, 1))
    target = cr.build_report(records, [held], cfg, "2025")["scope2_target"]
    # monthly t: 0.744 * (1 + 0.1 k), k = 0..11; the line continues through 2027 (k = 24..35)
    expected = sum(0.744 * (1 + 0.1 * k) for k in range(24, 36))
    assert target["trend_months"] == 12
    assert target["trend_slope_t_co2_per_month"] == pytest.approx(0.0744, rel=1e-6)
    assert target["target_year_projected_t_co2"] == pytest.approx(expected, rel=1e-6)
    assert target["offsets_held_t_co2"] == 20.0
    assert target["offsets_needed_t_co2"] == pytest.approx(expected - 20.0, rel=1e-6)
    assert cr.build_report(records, [], CFG, "2025")["scope2_target"] == {"target_year": None}


def test_bad_offsets_stop_the_report():
    twice = [OFFSETS[0], OFFSETS[0]]
    with pytest.raises(InputError, match="double retirement"):
        cr.build_report(RECORDS, twice, CFG, "2026-07")


def test_empty_ledger_reports_zeros():
    report = cr.build_report([], [], CFG, "2026-07")
    assert report["totals"]["intervals"] == 0 and report["totals"]["scope2_net_t_co2"] == 0.0
    assert cr.to_html(report).count("<svg") == 1


def test_year_total_equals_the_backtest_formula_to_the_gram():
    from dispatch.optimise.outcome import SlotInputs, costs_of

    n = 8760
    rng = np.random.default_rng(7)
    idx = pd.date_range("2026-01-01T00:00Z", periods=n, freq="1h")
    load, pv = rng.uniform(500, 3000, n), np.maximum(rng.normal(800, 900, n), 0)
    batt, ci = rng.uniform(-1500, 1500, n), rng.uniform(50, 700, n)
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
    cfg = config(carbon={"grid_ci_g_per_kwh": 1.0})
    inputs = SlotInputs(
        index=idx,
        dt_h=1.0,
        pv_kw=pv,
        load_kw=load,
        price_import_per_kwh=np.zeros(n),
        price_export_per_kwh=np.zeros(n),
        ci_g_per_kwh=ci,
        billing_month=np.full(n, "2026-01"),
        peak_so_far_kw={},
        energy_start_kwh=0.0,
    )
    _, kg = costs_of(frame["p_grid_kw"].to_numpy(), batt, inputs, cfg)
    report = cr.build_report(_ledger(frame, cfg), [], cfg, "2026")
    assert abs(report["totals"]["location_kg_co2"] - kg) < 0.0005


def test_german_factory_year_equals_the_backtest_kpi(shared_data):
    from sim.backtest import no_battery
    from sim.scenario import load_scenario

    scenario = load_scenario(
        cr.__file__.replace(
            "dispatch/carbon/report.py", "configs/scenarios/germany-factory-2018.toml"
        )
    )
    outcome = no_battery(scenario)
    records = _ledger(outcome.frame, scenario.config)
    assert ledger.verify(records).ok
    report = cr.build_report(records, [], scenario.config, "2018")
    assert report["totals"]["intervals"] == 35_040
    assert abs(report["totals"]["location_kg_co2"] - outcome.kg_co2) < 0.0005
    assert report["totals"]["avoided_battery_kg_co2"] == pytest.approx(0.0, abs=1e-3)


def _keys(x) -> set[str]:
    if isinstance(x, dict):
        return set(x) | {k for v in x.values() for k in _keys(v)}
    if isinstance(x, list):
        return {k for v in x for k in _keys(v)}
    return set()


def test_every_format_says_scope_2_electricity_co2_only():
    report = cr.build_report(RECORDS, [], CFG, "2025")
    assert report["scope"]["boundary"] == "Scope 2 (purchased grid electricity) only"
    assert report["scope"]["gas"].startswith("CO2 (")
    assert "ISO 14068-1" in report["scope"]["net_balance"]
    keys = _keys(report)
    assert {"scope2_net_t_co2", "scope2_basis_t_co2", "scope2_target"} <= keys
    old = {k for k in keys if "neutral" in k or k in ("net_t_co2", "basis_t_co2", "target")}
    assert old == {"neutrality_basis"}  # the config key the factors section echoes
    assert not {k for k in keys if "co2e" in k.lower()}
    csv = cr.to_csv(report).splitlines()
    assert csv[0].startswith("# Scope 2 electricity CO2 report 2025 (")
    assert csv[1] == (
        "# boundary: Scope 2 (purchased grid electricity) only; "
        "gas: CO2 (the grid factors are CO2 factors; not CO2e)"
    )
    page = cr.to_html(report)
    assert "<h1>Scope 2 electricity CO2 report 2025</h1>" in page
    assert "<h2>Scope 2 electricity net balance target</h2>" in page
    assert "not carbon neutrality in the sense of ISO 14068-1" in page
    assert "Neutrality" not in page


def test_offsets_and_certificates_are_tables_in_the_html_not_raw_json():
    from dispatch.carbon.report_html import to_html

    page = to_html(cr.build_report(RECORDS, OFFSETS, CFG, "2026-07"))
    offsets_part = page.split("<h2>Offsets retired</h2>", 1)[1].split("<h2>", 1)[0]
    certs_part = page.split("<h2>Certificates</h2>", 1)[1].split("<h2>", 1)[0]
    assert "<th>serial</th>" in offsets_part and "<td>CCER-1</td>" in offsets_part
    assert "<th>allocated mwh</th>" in certs_part
    for part in (offsets_part, certs_part):
        assert "{&quot;" not in part and '{"' not in part  # no dict dumped as JSON
