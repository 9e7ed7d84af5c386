"""The status page in headless Chromium, read as a control-room newcomer would.

Uses Debian's ``chromium`` (``--headless --dump-dom`` and ``--screenshot``); skipped with a
message where it is not installed. The page is served by a daemon without devices that has
published one plan (Suzhou, 2026-06-01 12:00 local) and has stored a morning of readings:
the battery charging 1,000 kW in the valley (05-08 local) and discharging 1,000 kW in the
peak (08-11) under a 3,000 kW load. The assertions are on content (text and elements), not on
pixel colours: the site-local time, the SoC in %, the peak-target line with its value, the
band legend, the "now" marker, the plan in words and the savings figures.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from dispatch.config import parse_config
from dispatch.daemon import Clock, Daemon, Notifier
from dispatch.daemon.operator import ReserveCommand
from dispatch.daemon.page import html_page, local_time, percent
from dispatch.daemon.state import CycleState
from dispatch.types import Setpoints, Snapshot
from tests.test_daemon_jobs import T0, config, plan_once

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LOAD_KW, BATT_KW, PEAK_KW = 3000.0, 1000.0, 4000.0


def served(tmp_path: Path) -> Daemon:
    data = config(tmp_path, load_kw=LOAD_KW).model_dump()
    data["http"] = {"port": 0}
    data["carbon"].pop("certificates", None)
    d = Daemon(parse_config(data), Clock(T0, 1.0), notifier=Notifier(""))
    stored_morning(d)
    plan_once(d)
    d.http.start()
    return d


def stored_morning(d: Daemon) -> None:
    """Two readings per 15 min from local midnight to T0 (12:00 local) and the month's peak
    (before the plan, which holds it)."""
    start = pd.Timestamp("2026-05-31T16:00Z")  # 2026-06-01 00:00 Asia/Shanghai
    for t in pd.date_range(start, T0 - dt.timedelta(minutes=15), freq="15min"):
        hour = t.tz_convert("Asia/Shanghai").hour
        batt = -BATT_KW if 5 <= hour < 8 else (BATT_KW if 8 <= hour < 11 else 0.0)
        for minute in (2, 9):
            tk = (t + pd.Timedelta(minutes=minute)).to_pydatetime()
            snap = Snapshot(tk, LOAD_KW - batt, 0.0, batt, LOAD_KW, 0.5)
            d.store.record_cycle(snap, Setpoints(batt, "plan"), tk)
    d.store.update_demand_peak("2026-06", PEAK_KW, T0, start.to_pydatetime())


def last_cycle(d: Daemon) -> None:
    """A last cycle at the clock's time: SoC 0.62, charging 500 kW from PV."""
    now = d.clock.now()
    snap = Snapshot(now, 0.0, 3500.0, -500.0, LOAD_KW, 0.62)
    assert d.state is not None
    d.state.last_cycle = CycleState(now, snap, Setpoints(-500.0, "plan: slot charge"), -500.0)


def chromium_run(d: Daemon, tmp_path: Path, shot: Path | None = None) -> str:
    """The page's DOM after Chromium ran it (and a screenshot to ``shot``)."""
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
        "--window-size=960,2600",
    ]
    url = str(d.http.url)
    if shot is not None:
        subprocess.run(
            [*base, f"--screenshot={shot}", url], check=True, timeout=90, capture_output=True
        )
    return subprocess.run(
        [*base, "--dump-dom", url], check=True, timeout=90, capture_output=True, text=True
    ).stdout


def text_of(dom: str) -> str:
    """The page's visible text, tags removed and spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed "
    "(Debian package 'chromium'); the status page is not rendered",
)
def test_a_newcomer_reads_the_status_page_in_chromium(tmp_path: Path) -> None:
    d = served(tmp_path)
    try:
        last_cycle(d)
        d.operator.submit(
            ReserveCommand(
                who="shift lead", why="storm warning", soc_reserve_frac=0.3, minutes=120
            ),
            "api",
        )
        dom = chromium_run(d, tmp_path, tmp_path / "page.png")
        now = d.clock.now()
    finally:
        d.http.stop()
        d.worker.shutdown()
        d.store_pool.shutdown()
        d.store.close()
    assert (tmp_path / "page.png").stat().st_size > 10_000
    text = text_of(dom)
    assert "<script" not in dom and "http://" not in dom.replace("http://www.w3.org", "")
    # site-local time in the site's zone (12:00 in Suzhou is 04:00 UTC)
    assert f"{local_time(now, 'Asia/Shanghai')} (Asia/Shanghai)" in text
    assert "2026-06-01 12:0" in text and "UTC+08:00" in text
    # SoC in %, the live powers with their signs
    assert re.search(r"SoC 62 %", text) and "+ import, - export" in text
    assert "charging 500 kW" in text and "+ discharge, - charge" in text
    # the plan: battery and SoC lines, SoC window and reserve, bands with a legend, now
    for elem in (
        "p-batt",
        "soc",
        "soc-min-line",
        "soc-max-line",
        "soc-reserve-line",
        "price-import",
        "grid-measured",
        "grid-planned",
        "band-legend",
    ):
        assert f'id="{elem}"' in dom, elem
    legend = re.search(r'<ul id="band-legend".*?</ul>', dom)
    assert legend and "valley 0.28 CNY/kWh" in legend[0] and "peak 1.08 CNY/kWh" in legend[0]
    assert dom.count('class="band band-') >= 4 and dom.count('class="now-marker"') == 3
    assert "now 12:0" in text and "hour-label" in dom and "Tue 02 Jun" in text
    # devices, plan age and source, the operator's override in local time
    assert "devices none configured" in text and "safe state no" in text
    assert re.search(r"optimal \(highs[^)]*\), made 2026-06-01 12:00, \d+ s ago", text)
    assert "forecast no weather source (clear sky)" in text
    assert "reserve SoC 30 % until 2026-06-01 14:00 by shift lead: storm warning" in text
    assert "reserve 30% (operator)" in text
    # what the battery does next, in words
    assert re.search(r'<ol id="next-hours"><li>12:0\d-\d\d:\d\d (charge|discharge|idle)', dom)
    # the month's peak target: the line and its value
    line = re.search(r'<g id="peak-target-line" data-value="([0-9.]+)"', dom)
    assert line is not None and float(line[1]) >= PEAK_KW  # it holds at least the peak so far
    assert re.search(r"Peak target for 2026-06: [0-9,]+ kW", text)
    assert 'id="peak-so-far-line" data-value="4000"' in dom and "Peak so far: 4,000 kW" in text
    # savings today and this month: 12 valley charging and 12 peak discharging intervals of
    # 250 kWh: 12 x 250 x 0.28 = 840 CNY more, 12 x 250 x 1.08 = 3,240 CNY less: 2,400 CNY
    today = re.search(r"<tr class=\"savings-today\">.*?</tr>", dom)
    assert today is not None and "2,400 CNY" in today[0] and "48 x 15 min, to 12:00" in today[0]
    assert 'class="savings-this"' in dom and "Demand charge:" in text
    assert "saved today 2,400 CNY" in text


def test_the_page_renders_on_a_cold_start_and_says_what_is_missing(tmp_path: Path) -> None:
    d = Daemon(config(tmp_path), Clock(T0, 1.0), notifier=Notifier(""))
    try:
        page = html_page(d)
    finally:
        d.store.close()
    text = text_of(page)
    assert "No control cycle yet" in text and "no plan yet" in text and "No plan yet" in text
    assert "nothing measured yet" in text and "2026-06-01 12:00 (Asia/Shanghai)" in text
    assert "<script" not in page


def test_times_are_site_local_and_soc_a_whole_percentage() -> None:
    t = dt.datetime(2026, 12, 7, 8, 15, 30, 123456, tzinfo=dt.UTC)
    assert local_time(t, "Asia/Shanghai") == "2026-12-07 16:15"
    assert local_time(t, "Europe/Berlin") == "2026-12-07 09:15"
    assert percent(0.497) == "50 %" and percent(1.0) == "100 %"
    assert percent(float("nan")) == "-" and percent(None) == "-"


def test_a_fallback_plan_is_said_to_be_one(tmp_path: Path) -> None:
    """A failed solve publishes a fallback plan; the page says control does not follow it."""
    data = config(tmp_path, load_kw=3000.0).model_dump()
    data["plan"].update(solver="CLARABEL", solver_options={"max_iter": 1})
    d = Daemon(parse_config(data), Clock(T0, 1.0), notifier=Notifier(""))
    plan_once(d)
    try:
        text = text_of(html_page(d))
    finally:
        d.worker.shutdown()
        d.store_pool.shutdown()
        d.store.close()
    assert "The plan is a fallback (" in text and "rule-based self-consumption" in text
    assert "fallback" in text.split("Devices, faults and plan")[1]
