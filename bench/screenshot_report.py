"""Render a backtest's ``report.html`` in headless Chromium and save a PNG screenshot.

Checks that the self-contained report opens in a browser and shows its plots. Finds
``chromium`` (or ``chromium-browser``, ``google-chrome``) on the PATH; when none is there it
tries ``apt-get install -y chromium`` if run as root, else it says so and exits 0 (skipped).

Run: ``python -m bench.screenshot_report REPORT_HTML [--out PNG] [--window 1200,2000]``.
Exit codes: 0 ok or skipped, 1 Chromium failed or wrote no image.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser(install: bool = True) -> str | None:
    """Path of a Chromium-like browser, installing Debian's ``chromium`` as root if allowed."""
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    if install and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        return shutil.which("chromium")
    return None


def screenshot(browser: str, html: Path, out: Path, window: str = "1200,2000",
               timeout_s: float = 120.0) -> Path:  # fmt: skip
    """Render ``html`` and write the screenshot to ``out``.

    Raises
    ------
    RuntimeError
        When Chromium fails or writes no image.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--screenshot={out.resolve()}",
               f"--window-size={window}", html.resolve().as_uri()]  # fmt: skip
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if run.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        raise RuntimeError(f"chromium exit {run.returncode}: {run.stderr.strip()[-400:]}")
    return out


def main(argv: list[str] | None = None) -> int:
    """Take the screenshot; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", help="report.html to render")
    ap.add_argument("--out", default=None, help="PNG to write (default: beside the report)")
    ap.add_argument("--window", default="1200,2000", help="window size W,H in pixels")
    args = ap.parse_args(argv)
    html = Path(args.html)
    if not html.is_file():
        print(f"no report at {html}", file=sys.stderr)
        return 1
    browser = find_browser()
    if browser is None:
        print("SKIPPED: no Chromium found (apt-get install chromium as root)", file=sys.stderr)
        return 0
    out = Path(args.out) if args.out else html.with_name("report_screenshot.png")
    try:
        screenshot(browser, html, out, args.window)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"screenshot failed: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({out.stat().st_size} bytes) with {browser}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
