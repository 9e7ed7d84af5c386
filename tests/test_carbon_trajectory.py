"""The path to a zero Scope 2 balance: a projection only from a year of data (refused with a
warning otherwise), its coverage, the path by year, and the inline SVG chart of the carbon HTML
report, rendered in headless Chromium where it is installed."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from dispatch.carbon import offsets
from dispatch.carbon import report as cr
from dispatch.carbon.trajectory import target_section
from tests.factories import config
from tests.test_carbon_report import _ledger

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
JAN_2025 = 2025 * 12  # month numbers: year * 12 + month - 1


def test_two_months_of_data_are_not_extrapolated_to_the_target_year():
    t = target_section({JAN_2025 + 4: 1.0, JAN_2025 + 5: 2.0}, {}, 0.0, JAN_2025 + 5, 2030, 1.0)
    assert (t["projection"], t["trend_months"]) == ("refused", 2)
    assert t["warning"] == (
        "projection to 2030 refused: 2 month(s) with data in the 12 up to the period's end; "
        "a trend needs 12"
    )
    none = (t["target_year_projected_t_co2"], t["offsets_needed_t_co2"])
    assert none == (None, None) and t["trend_slope_t_co2_per_month"] is None
    assert [(r["year"], r["recorded_t_co2"], r["projected_t_co2"]) for r in t["path"]] == [
        (2025, 3.0, None),
        *((y, None, None) for y in range(2026, 2031)),
    ]


def test_a_full_year_is_projected_along_the_path_with_offsets_retired():
    known = {JAN_2025 + k: 1.0 for k in range(12)}  # 1 t a month, flat
    t = target_section(known, {JAN_2025 + 5: 0.5}, 2.0, JAN_2025 + 11, 2027, 1.0)
    assert (t["projection"], t["warning"], t["trend_months"]) == ("trend", None, 12)
    assert t["target_year_projected_t_co2"] == pytest.approx(12.0, abs=1e-9)
    assert t["offsets_needed_t_co2"] == pytest.approx(10.0, abs=1e-9)  # 12 - 2 held
    rows = [
        (r["year"], r["recorded_t_co2"], r["projected_t_co2"], r["offsets_retired_t_co2"])
        for r in t["path"]
    ]
    assert rows == [(2025, 12.0, 12.0, 0.5), (2026, None, 12.0, 0.0), (2027, None, 12.0, 0.0)]
    low = target_section(known, {}, 0.0, JAN_2025 + 11, 2027, 0.5)
    assert low["projection"] == "trend" and "from a year with 50.0 % coverage" in low["warning"]


def year_report(months: int, target: int = 2027) -> dict:
    """A report of 2025 from ``months`` months of 10 kW at 100 g/kWh (hourly records)."""
    idx = pd.date_range("2025-01-01T00:00Z", periods=24 * 31 * months, freq="1h")
    idx = idx[idx < pd.Timestamp(f"2025-{months + 1:02d}-01T00:00Z")] if months < 12 else idx
    idx = idx[idx.year == 2025]
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
    cfg = config(carbon={"grid_ci_g_per_kwh": 100.0, "neutrality_target_year": target})
    retired = offsets.OffsetRecord(
        "CCER", "R", 2024, 3.0, dt.date(2025, 1, 10), dt.date(2025, 2, 1)
    )
    return cr.build_report(_ledger(frame, cfg), [retired], cfg, "2025")


def test_the_report_warns_and_draws_the_path_without_a_projection():
    report = year_report(2)
    assert "2025: projection to 2027 refused: 2 month(s) with data" in " ".join(report["warnings"])
    target = report["scope2_target"]
    # Jan + Feb recorded every hour: complete up to the ledger's end (after it: not yet)
    assert (target["trend_coverage_frac"], target["trend_months"]) == (1.0, 2)
    page = cr.to_html(report)
    svg = re.search(r'<svg[^>]*id="scope2-path".*?</svg>', page, re.S).group(0)
    assert svg.count('class="recorded"') == 1 and 'class="projected"' not in svg
    assert svg.count('class="retired"') == 1 and "target 2027: net 0" in svg
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")


def chromium_dom(page: str, tmp_path: Path) -> str:
    path = tmp_path / "carbon.html"
    path.write_text(page, encoding="utf-8")
    base = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=960,2400",
    ]
    subprocess.run(
        [*base, f"--screenshot={tmp_path / 'carbon.png'}", path.as_uri()],
        check=True,
        timeout=90,
        capture_output=True,
    )
    assert (tmp_path / "carbon.png").stat().st_size > 10_000
    done = subprocess.run(
        [*base, "--dump-dom", path.as_uri()], check=True, timeout=90, capture_output=True, text=True
    )
    return done.stdout


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (Debian package "
    "'chromium'); the carbon report is not rendered",
)
def test_chromium_renders_the_path_with_a_projection_and_the_target(tmp_path: Path):
    dom = chromium_dom(cr.to_html(year_report(12)), tmp_path)
    svg = re.search(r'<svg[^>]*id="scope2-path".*?</svg>', dom, re.S).group(0)
    years = re.findall(r'text-anchor="middle">(\d{4})</text>', svg)
    assert years == ["2025", "2026", "2027"]
    assert svg.count('class="recorded"') == 1 and svg.count('class="projected"') == 3
    assert "target 2027: net 0" in svg and svg.count('class="retired"') == 1
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))
    assert "Scope 2 electricity CO2 report 2025" in text
    assert "Path to a zero Scope 2 balance (t CO2 by year)" in text
    assert "projection trend" in text and "refused" not in text
