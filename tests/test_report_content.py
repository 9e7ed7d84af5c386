"""The backtest report read as an energy manager reads it: words, numbers, names, local times.

A two-day Suzhou backtest (1-2 Jan 2026, Asia/Shanghai, UTC+8 all year) of no battery, the
threshold rule, our controller (the daemon replay, with its peak target) and the perfect-
foresight bound. Every expected number is recomputed here from ``kpis.csv`` (the unrounded
KPI table the report writes beside the page) and compared with what the page says; the page's
text is also read from the DOM of headless Chromium (skipped where it is not installed).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pandas as pd
import pytest

from sim import labels, plots, report, report_text, sweep
from sim.scenario import PROJECT_ROOT, load_scenario
from sim.strategies import run_strategy

SUZHOU = PROJECT_ROOT / "configs" / "scenarios" / "suzhou-factory.toml"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
STRATEGIES = ("no_battery", "threshold_ratchet", "receding_robust", "perfect_foresight")
CODE_NAMES = (
    "total_cost",
    "share_of_bound",
    "kg_co2",
    "peak_import_kw",
    "demand_charge",
    "self_consumption_frac",
    "month_coverage",
    "receding_robust",
    "perfect_foresight",
    "threshold_ratchet",
    "no_battery",
)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The report of the two-day run, its page and its KPI table."""
    sc = sweep.first_days(load_scenario(SUZHOU), 2)
    outcomes = [run_strategy(name, sc) for name in STRATEGIES]
    out = tmp_path_factory.mktemp("report")
    files = report.write_report(out, outcomes, sc.config, sc.name)
    page = files["report.html"].read_text(encoding="utf-8")
    kpis = pd.read_csv(files["kpis.csv"])
    return sc, outcomes, files, page, kpis


def text_of(page: str) -> str:
    """The page's visible text, tags removed and spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).replace("&#x27;", "'")


def totals(kpis: pd.DataFrame) -> pd.DataFrame:
    return kpis[kpis["month"] == "total"].set_index("strategy")


def amount(text: str) -> float:
    """``56,762`` or ``1.23 M`` as a number."""
    value = text.replace(",", "")
    return float(value[:-2]) * 1e6 if value.endswith(" M") else float(value)


def test_the_headline_says_our_controller_s_saving_in_words_and_numbers(written):
    _, _, _, page, kpis = written
    t = totals(kpis)
    nb, ours, pf = (t.loc[s] for s in ("no_battery", "receding_robust", "perfect_foresight"))
    saving = nb["total_cost"] - ours["total_cost"]
    share = saving / (nb["total_cost"] - pf["total_cost"])
    demand = nb["demand_charge"] - ours["demand_charge"]
    lead = re.search(r'<p class="lead">(.*?)</p>', page).group(1)
    m = re.match(
        r"Our controller saved ([\d,.]+(?: M)?) CNY \((\d+) % of the best possible\) over 2 days "
        r"\(1 Jan 2026 to 2 Jan 2026\); (.*?)\. Peak import ([\d,]+) kW \(no battery: ([\d,]+) "
        r"kW\); emissions ([+-][\d,.]+) t CO2 against no battery\.$",
        lead,
    )
    assert m, lead
    assert saving > 0
    assert amount(m.group(1)) == pytest.approx(saving, abs=0.5 if saving < 1e6 else 5e3)
    assert int(m.group(2)) == round(100 * share)
    if 0 <= demand <= saving:
        assert m.group(3) == f"{round(100 * demand / saving)} % of it demand charge"
    else:
        assert m.group(3).startswith("demand charge ") and "other costs" in m.group(3)
    assert amount(m.group(4)) == round(ours["peak_import_kw"])
    assert amount(m.group(5)) == round(nb["peak_import_kw"])
    assert float(m.group(6).replace(",", "")) == pytest.approx(
        (ours["kg_co2"] - nb["kg_co2"]) / 1000, abs=0.05
    )


def test_every_strategy_has_a_headline_with_its_human_name(written):
    _, _, _, page, kpis = written
    t = totals(kpis)
    items = re.findall(r"<li>(.*?)</li>", re.search(r'<ul class="headlines">(.*?)</ul>', page)[1])
    assert items[0].startswith(
        f"No battery: the site pays {t.loc['no_battery', 'total_cost']:,.0f} CNY over 2 days"
    )
    rule = t.loc["threshold_ratchet"]
    assert items[1].startswith("Threshold rule (ratchet) ")
    saved = re.match(r"Threshold rule \(ratchet\) saved ([\d,]+) CNY \((\d+) %", items[1])
    if rule["saving"] > 0:
        assert amount(saved[1]) == round(rule["saving"])
        assert int(saved[2]) == round(100 * rule["share_of_bound"])
    assert items[2].startswith("Best possible (perfect foresight) saved ")
    assert len(items) == len(STRATEGIES) - 1  # our controller is the lead paragraph


def test_tables_have_human_column_names_units_and_no_code_names(written):
    _, _, _, page, _ = written
    text = text_of(page.split("<figure>")[0] + page.split("</figure>")[-1])
    for column in (
        "Total cost (CNY)",
        "Saving against no battery (CNY)",
        "Share of the best possible (%)",
        "Demand charge (CNY)",
        "Emissions (t CO2)",
        "Peak import (kW)",
        "Peak set at (site-local time)",
        "PV self-consumption (%)",
        "Battery throughput (MWh)",
        "Equivalent full cycles",
    ):
        assert f"<th>{column}</th>" in page, column
    for code in CODE_NAMES:
        assert code not in text, code
    assert not re.search(r"\d\.\d{3}\b", text), "money or power with three decimals"
    assert re.search(r"\d{3},\d{3}", text), "thousands separators"


def test_months_are_named_and_the_partial_month_is_marked(written):
    _, _, _, page, kpis = written
    cover = kpis.loc[kpis["month"] == "2026-01", "month_coverage"].iloc[0]
    assert cover == pytest.approx(2 / 31)
    text = text_of(page)
    assert f"January 2026 (partial, {100 * cover:.0f} %)" in text
    assert "Partial months." in text and "2.0 of 31 days" in text and "pro-rated" in text
    assert "2026-01" not in text


def test_times_are_site_local_and_the_zone_is_named(written):
    _, _, _, page, kpis = written
    text = text_of(page)
    assert "All times are site-local: Asia/Shanghai, UTC+08:00." in text
    assert "from Thu 01 Jan 2026 00:00 to Sat 03 Jan 2026 00:00" in text
    for iso in totals(kpis)["peak_time"]:
        local = pd.Timestamp(iso).tz_convert("Asia/Shanghai").strftime("%a %d %b %Y %H:%M")
        assert local in text
        assert iso not in text
    assert "+00:00" not in text


def test_the_peak_target_is_drawn_and_tabled(written):
    _, outcomes, _, page, kpis = written
    ours = next(o for o in outcomes if o.strategy == "receding_robust")
    target = ours.frame["peak_target_kw"]
    assert target.notna().any()
    fig = plots.dispatch_day(ours.frame, ours.strategy, "2026-01-02", "Asia/Shanghai", "CNY", 5e3)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    [label] = [k for k in lines if k.startswith("peak target")]
    day = target.tz_convert("Asia/Shanghai").loc["2026-01-02"]
    assert list(lines[label].get_ydata()) == pytest.approx(list(day), nan_ok=True)
    assert label in [t.get_text() for t in ax.get_legend().get_texts()]
    assert "month's realised peak 5,000 kW" in lines
    assert any(t.get_text().startswith("day's peak ") for t in ax.texts)
    assert ax.get_title().startswith("Our controller: dispatch on Fri 02 Jan 2026, site-local time")
    peak = plots.monthly_peak(kpis, "receding_robust", "perfect_foresight")
    legend = [t.get_text() for t in peak.axes[0].get_legend().get_texts()]
    assert (
        "peak target of our controller" in legend and "Best possible (perfect foresight)" in legend
    )
    highest = totals(kpis).loc["receding_robust", "peak_target_kw"]
    assert "<th>Peak target of our controller (kW)</th>" in page
    assert f"<td>{highest:,.0f}</td>" in page
    assert 'alt="monthly_peak.png"' in page and 'alt="dispatch_day.png"' in page


def test_the_grid_factor_choice_and_the_storage_losses_are_explained(written):
    sc, outcomes, _, page, kpis = written
    text = text_of(page)
    assert "Grid factor: average, not marginal." in text
    assert "a constant 570.3 g CO2/kWh in every slot" in text
    t = totals(kpis)
    above = t.index[(t.index != "no_battery") & (t["kg_co2"] > t.loc["no_battery", "kg_co2"])]
    assert ("Why battery strategies emit more CO2 than no battery." in text) == bool(len(above))
    frames = {o.strategy: o.frame for o in outcomes}
    fewer = kpis.copy()
    fewer["kg_co2"] = fewer["kg_co2"].where(fewer["strategy"] == "no_battery", 0.0)
    assert "Why battery" not in report_text.carbon_notes(fewer, sc.config, frames)
    more = kpis.copy()
    more.loc[more["strategy"] == "receding_robust", "kg_co2"] += 5000.0
    note = report_text.carbon_notes(more, sc.config, frames, "receding_robust")
    assert "Why battery strategies emit more CO2" in note and "90 % round trip" in note
    assert "Our controller charged " in note


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (Debian package 'chromium'); report not rendered",
)
def test_the_report_reads_right_in_headless_chromium(written, tmp_path):
    _, _, files, _, kpis = written
    base = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=1280,4000",
    ]
    url = files["report.html"].resolve().as_uri()
    shot = tmp_path / "report.png"
    subprocess.run(
        [*base, f"--screenshot={shot}", url], check=True, timeout=120, capture_output=True
    )
    dom = subprocess.run(
        [*base, "--dump-dom", url], check=True, timeout=120, capture_output=True, text=True
    ).stdout
    assert shot.stat().st_size > 50_000  # plots drawn, not a blank page
    text = text_of(dom)
    saving = (
        totals(kpis).loc["no_battery", "total_cost"]
        - totals(kpis).loc["receding_robust", "total_cost"]
    )
    assert f"Our controller saved {saving:,.0f} CNY (" in text
    assert "All times are site-local: Asia/Shanghai, UTC+08:00." in text
    assert "Peak target of our controller (kW)" in text
    assert "January 2026 (partial, 6 %)" in text
    assert "Grid factor: average, not marginal." in text
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', dom)
    assert sorted(images) == ["dispatch_day.png", "monthly_bill.png", "monthly_peak.png"]
    assert "http://" not in dom and "https://" not in dom


def test_words_for_periods_money_and_names():
    year = pd.date_range("2025-12-31T16:00Z", "2026-12-31T15:45Z", freq="15min")
    assert report_text.period_words(year, "Asia/Shanghai") == "in 2026"
    assert report_text.period_words(year[:96], "Asia/Shanghai") == (
        "over 1 day (1 Jan 2026 to 1 Jan 2026)"
    )
    assert labels.money(1_234_567.8, "CNY") == "1.23 M CNY"
    assert labels.money(56_761.5, "CNY") == "56,762 CNY"
    assert labels.signed_money(-7_844.2, "CNY") == "\u22127,844 CNY"
    assert labels.strategy_name("peak_shaving_0.9") == "Peak-shaving rule (0.9)"
    assert labels.strategy_name("receding_robust") == "Our controller"
    assert labels.strategy_name("mystery") == "mystery"
    assert labels.month_name("2026-02", 0.5) == "February 2026 (partial, 50 %)"
    assert labels.local_time("2026-01-01T22:30:00+00:00", "Asia/Shanghai") == (
        "Fri 02 Jan 2026 06:30"
    )
