"""Completeness in reports: coverage and gaps by hand, and a warning (not a silent zero) for a
period without data, through ``dispatch carbon report`` on a real store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from dispatch.__main__ import main
from dispatch.carbon import coverage
from tests import test_cli_carbon as cli_site

site = cli_site.site  # 8 intervals of 15 min from 2026-06-01T00:00Z (08:00 in Suzhou)
STEP = pd.Timedelta(minutes=15)
T = pd.Timestamp("2026-06-01T00:00Z")


def test_coverage_of_a_day_with_one_hole_by_hand():
    starts = [T + k * STEP for k in (0, 1, 2, 5, 6, 7)]  # 00:45 and 01:00 missing: 0.5 h
    cov = coverage.coverage(starts, T, T + pd.Timedelta(days=1), STEP, T + 8 * STEP)
    assert (cov["expected_intervals"], cov["recorded_intervals"]) == (8, 6)
    assert (cov["coverage_frac"], cov["gap_count"], cov["gap_hours"]) == (0.75, 1, 0.5)
    assert cov["gaps"] == [["2026-06-01T00:45:00Z", "2026-06-01T01:15:00Z"]]
    assert cov["not_yet_recorded_hours"] == 22.0  # after the last record, 02:00 .. 24:00
    assert coverage.warnings("d", cov)[0] == (
        "d: coverage 75.0 %: 1 gap(s), 0.5 h without records; emissions in them are not counted"
    )


def test_an_empty_period_warns_that_its_zeros_are_not_measured():
    cov = coverage.coverage([], T, T + pd.Timedelta(days=1), STEP, T + pd.Timedelta(days=2))
    assert (cov["expected_intervals"], cov["coverage_frac"], cov["gap_hours"]) == (96, 0.0, 24)
    assert "no data" in coverage.warnings("d", cov)[0]


def test_report_shows_coverage_gaps_and_warns_for_a_month_without_data(site: Path, capsys):
    assert (
        main(["carbon", "report", "--config", str(site), "--period", "2026-06", "--format", "json"])
        == 0
    )
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    cov = report["coverage"]
    # June in Suzhou starts 2026-05-31T16:00Z; the ledger ends 2026-06-01T02:00Z: 10 h = 40
    # intervals expected, 8 recorded; the 8 h before the first record are the gap
    assert (cov["expected_intervals"], cov["recorded_intervals"], cov["coverage_frac"]) == (
        40,
        8,
        0.2,
    )
    assert cov["gaps"] == [["2026-05-31T16:00:00Z", "2026-06-01T00:00:00Z"]]
    assert report["months"][0]["coverage_frac"] == report["totals"]["coverage_frac"] == 0.2
    assert "2026-06: coverage 20.0 %: 1 gap(s), 8 h without records" in captured.err
    assert main(["carbon", "report", "--config", str(site), "--period", "2026-05"]) == 0
    captured = capsys.readouterr()
    assert "dispatch: warning: 2026-05: no data" in captured.err
    assert "# warning 2026-05: no data" in captured.out
