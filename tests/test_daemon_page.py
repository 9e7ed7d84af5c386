"""The status page in headless Chromium: the plan chart and the SoC are drawn.

Uses Debian's ``chromium`` (``--headless --screenshot``); skipped with a message where it is
not installed. The page is served by a daemon without devices that has published one plan.
The screenshot is decoded here (PNG: zlib and the five row filters) to look for the colours
of the two lines (their labels use darker shades, so only the lines have these colours).
"""

from __future__ import annotations

import datetime as dt
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from dispatch.config import parse_config
from dispatch.daemon import Clock, Daemon, Notifier
from dispatch.daemon.page import local_time, percent
from tests.test_daemon_jobs import T0, config, plan_once

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BLUE, GREEN = (0x1F, 0x77, 0xB4), (0x2C, 0xA0, 0x2C)


def png_pixels(path: Path) -> set[tuple[int, int, int]]:
    """Distinct RGB colours of an 8-bit RGB or RGBA, non-interlaced PNG."""
    data = path.read_bytes()
    pos, idat, width, height, channels = 8, b"", 0, 0, 3
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), "only 8-bit RGB/RGBA screenshots"
            channels = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride = zlib.decompress(idat), width * channels
    prev, colours = bytearray(stride), set()
    for y in range(height):
        row = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        f, line = row[0], bytearray(row[1:])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(tuple(line[i : i + 3]) for i in range(0, stride, channels))
        prev = line
    return colours  # type: ignore[return-value]


def served(tmp_path: Path) -> Daemon:
    data = config(tmp_path, load_kw=3000.0).model_dump()
    data["http"] = {"port": 0}
    data["carbon"].pop("certificates", None)
    d = Daemon(parse_config(data), Clock(T0, 1.0), notifier=Notifier(""))

    plan_once(d)
    d.http.start()
    return d


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed "
                    "(Debian package 'chromium'); the status page is not rendered")
def test_status_page_draws_the_plan_and_soc_in_chromium(tmp_path: Path) -> None:
    d = served(tmp_path)
    try:
        shot = tmp_path / "page.png"
        base = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                "--hide-scrollbars", "--window-size=800,700"]  # fmt: skip
        subprocess.run([*base, f"--screenshot={shot}", str(d.http.url)], check=True,
                       timeout=90, capture_output=True)  # fmt: skip
        dom = subprocess.run([*base, "--dump-dom", str(d.http.url)], check=True, timeout=90,
                             capture_output=True, text=True).stdout  # fmt: skip
    finally:
        d.http.stop()
        d.worker.shutdown()
        d.store_pool.shutdown()
        d.store.close()
    assert 'id="p-batt"' in dom and 'id="soc"' in dom and "<script" not in dom
    colours = png_pixels(shot)
    assert BLUE in colours, "the battery-power line is not drawn"
    assert GREEN in colours, "the SoC line is not drawn"


def test_times_are_site_local_and_soc_a_whole_percentage() -> None:
    t = dt.datetime(2026, 12, 7, 8, 15, 30, 123456, tzinfo=dt.UTC)
    assert local_time(t, "Asia/Shanghai") == "2026-12-07 16:15"
    assert local_time(t, "Europe/Berlin") == "2026-12-07 09:15"
    assert percent(0.497) == "50 %" and percent(1.0) == "100 %"
    assert percent(float("nan")) == "-" and percent(None) == "-"
