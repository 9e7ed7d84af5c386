"""Report files of a backtest, the Suzhou generated scenario, and the backtest CLI."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from sim import backtest, backtest_cli, forecasters, report, sweep
from sim.scenario import PROJECT_ROOT, load_scenario
from sim.strategies import ProgressLine
from tests.test_kpis import two_month_toy

SUZHOU = PROJECT_ROOT / "configs" / "scenarios" / "suzhou-factory.toml"


@pytest.fixture(scope="module")
def toy_outcomes():
    sc = two_month_toy()
    return sc, [backtest.no_battery(sc), backtest.receding(sc, forecasters.perfect),
                backtest.perfect_foresight(sc)]  # fmt: skip


def test_report_files_are_written_and_the_html_inlines_every_png(tmp_path, toy_outcomes):
    sc, outs = toy_outcomes
    points = pd.DataFrame({"carbon_price_per_kg": [0.0, 0.1], "strategy": ["pf", "pf"],
                           "kg_co2": [10.0, 8.0], "cost_without_carbon": [5.0, 6.0]})  # fmt: skip
    files = report.write_report(tmp_path, outs, sc.config, "toy", tradeoff_points=points)
    for name in ("kpis.csv", "timeseries.csv", "dispatch_day.png", "monthly_bill.png",
                 "tradeoff.png", "report.html"):  # fmt: skip
        assert (tmp_path / name).stat().st_size > 0, name
        assert files[name] == tmp_path / name
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "report.html").read_text()
    uris = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)
    assert sorted(uris) == sorted(p.name for p in tmp_path.glob("*.png"))
    assert 'src="http' not in page and "file:" not in page
    kpis = pd.read_csv(tmp_path / "kpis.csv")
    assert len(kpis) == 3 * 3  # strategies x (two months + total)
    ts = pd.read_csv(tmp_path / "timeseries.csv")
    assert len(ts) == 3 * len(sc.data)
    assert list(ts.columns[:3]) == ["time", "strategy", "billing_month"]


def test_progress_line_reaches_the_total(toy_outcomes):
    import io

    sc, _ = toy_outcomes
    stream = io.StringIO()
    line = ProgressLine("x", stream, every_s=0.0, quiet=False)
    backtest.receding(sc, forecasters.perfect, progress=line)
    text = stream.getvalue()
    n = len(sc.data)
    assert "x: 100%" in text and f"{n}/{n}" in text and "slots/s" in text
    assert text.endswith("\n")


def test_progress_is_quiet_when_its_stream_is_not_a_terminal(toy_outcomes):
    import io

    sc, _ = toy_outcomes
    stream = io.StringIO()
    backtest.receding(sc, forecasters.perfect, progress=ProgressLine("x", stream))
    assert stream.getvalue() == ""


def test_suzhou_scenario_loads_on_generated_data():
    sc = load_scenario(SUZHOU)
    assert len(sc.data) == 365 * 96
    assert sc.data.index[0] == pd.Timestamp("2025-12-31T16:00Z")
    assert sc.data["p_pv_kw"].max() <= 0.75 * (4000 + 2200) + 1e-6
    assert sc.data["p_pv_kw"].min() >= 0 and sc.data["p_load_kw"].min() > 0
    assert sc.data["p_load_kw"].max() <= sc.config.grid.import_max_kw


def test_two_day_suzhou_backtest_cli_writes_the_report(tmp_path, capsys):
    code = backtest_cli.main(["--scenario", str(SUZHOU), "--out", str(tmp_path), "--days", "2",
                              "--strategies", "no_battery", "peak_shaving", "receding_perfect",
                              "perfect_foresight", "--carbon-prices", "0", "0.5",
                              "--workers", "1"])  # fmt: skip
    assert code == 0
    kpis = pd.read_csv(tmp_path / "kpis.csv").set_index(["strategy", "month"])
    total = kpis.xs("total", level="month")
    assert total.loc["perfect_foresight", "total_cost"] <= total["total_cost"].min() + 1e-6
    assert total.loc["receding_perfect", "saving"] > 0
    assert len(pd.read_csv(tmp_path / "tradeoff.csv")) == 2
    assert "tradeoff.png" in (tmp_path / "report.html").read_text()
    out = capsys.readouterr().out  # the summary in words, money rounded, no code names
    best = total.loc["perfect_foresight"]
    assert f"cost {best['total_cost']:,.0f} CNY, saved {best['saving']:,.0f} CNY (100 % of " \
        "the best possible)" in out
    assert "share_of_bound" not in out and "perfect_foresight:" not in out


def test_generated_and_file_series_for_the_same_name_is_an_error(tmp_path):
    from dispatch.types import ConfigError

    (tmp_path / "s.csv").write_text("t,v\n2026-01-01T00:00Z,1\n")
    bad = tmp_path / "bad.toml"
    site = (PROJECT_ROOT / "configs" / "suzhou-factory.toml").as_posix()
    bad.write_text(f'name = "x"\nsite_config = "{site}"\nstart = 2026-01-01T00:00:00Z\n'
                   'end = 2026-01-02T00:00:00Z\n[series.p_load_kw]\nfile = "s.csv"\n'
                   'time_column = "t"\nvalue_column = "v"\n[generated]\nload = "demo_profile"\n'
                   'pv = "clear_sky"\n')  # fmt: skip
    with pytest.raises(ConfigError, match="both generated"):
        load_scenario(bad)


def test_carbon_prices_default_to_multiples_of_the_site_price():
    assert backtest_cli.carbon_prices(0.09, None)[:3] == [0.0, 0.045, 0.09]
    assert backtest_cli.carbon_prices(0.0, [0.2, 0.1]) == [0.1, 0.2]
    assert sweep.first_days(two_month_toy(), None).data.shape[0] == 72


def test_dispatch_backtest_runs_the_sim_module_as_a_child(tmp_path):
    from dispatch.__main__ import main

    code = main(["backtest", "--scenario", str(SUZHOU), "--out", str(tmp_path), "--days", "1",
                 "--strategies", "no_battery", "perfect_foresight"])  # fmt: skip
    assert code == 0
    assert (tmp_path / "report.html").stat().st_size > 0


def test_dispatch_sweep_says_clearly_when_sim_is_absent(monkeypatch, capsys, tmp_path):
    import importlib.util

    from dispatch.__main__ import main

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    code = main(["sweep", "--scenario", "s.toml", "--grid", "g.toml", "--out", str(tmp_path)])
    assert code == 1
    assert "sim.sweep" in capsys.readouterr().err


def test_report_renders_in_headless_chromium(tmp_path, toy_outcomes):
    from bench import screenshot_report as shot

    browser = shot.find_browser(install=False)
    if browser is None:
        pytest.skip("no Chromium on this machine (bench/screenshot_report.py installs it)")
    sc, outs = toy_outcomes
    files = report.write_report(tmp_path, outs, sc.config, "toy")
    png = shot.screenshot(browser, files["report.html"], tmp_path / "shot.png", "800,1200")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (800, 1200)
    assert len(data) > 20_000  # a blank page compresses to a few kB; plots do not
