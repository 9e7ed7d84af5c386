"""Scenario series: hourly means placed at the centres of their hours, and the German
scenario's window on whole billing months."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dispatch import tariff
from dispatch.config import load_config
from sim.scenario import SeriesSpec, load_series

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def hourly_csv(tmp_path: Path, values: list[float]) -> Path:
    stamps = pd.date_range("2018-06-01T00:00Z", periods=len(values), freq="h")
    path = tmp_path / "pv.csv"
    pd.DataFrame({"t": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"), "v": values}).to_csv(
        path, index=False
    )
    return path


@pytest.mark.parametrize("values", ["mean", "instant"])
def test_hourly_means_are_interpolated_through_the_centres_of_their_hours(tmp_path, values):
    # a symmetric day: means rise to 4 in the 03:00-04:00 hour and fall again
    means = [0.0, 1.0, 2.0, 4.0, 2.0, 1.0, 0.0]
    path = hourly_csv(tmp_path, means)
    grid = pd.date_range("2018-06-01T00:00Z", periods=7 * 4, freq="15min")
    spec = SeriesSpec(
        file=str(path), time_column="t", value_column="v", resample="interpolate", values=values
    )  # type: ignore[arg-type]
    s = load_series(spec, tmp_path, grid, "p_pv_kw")
    # the 15-min slot whose start is nearest the peak hour's centre (03:30) carries the peak
    peak_at = s.idxmax()
    expected = "2018-06-01T03:30Z" if values == "mean" else "2018-06-01T03:00Z"
    assert peak_at == pd.Timestamp(expected)
    assert s[peak_at] == pytest.approx(4.0)
    if values == "mean":
        # midway between two centres: 03:30 (4.0) and 04:30 (2.0) -> 04:00 gives 3.0
        assert s[pd.Timestamp("2018-06-01T04:00Z")] == pytest.approx(3.0)
        # the first half hour holds the first mean; the series stays balanced in time
        assert s.iloc[:2].tolist() == [0.0, 0.0]
        centre = (s.index.asi8 * s.to_numpy()).sum() / s.to_numpy().sum()
        centre_at = pd.Timestamp(int(centre), unit=s.index.unit, tz="UTC")
        assert centre_at == pd.Timestamp("2018-06-01T03:30Z")


def test_the_german_scenario_window_is_twelve_whole_billing_months():
    cfg = load_config(CONFIGS / "germany-factory-dayahead.toml")
    year = pd.date_range("2017-12-31T23:00Z", "2018-12-31T23:00Z", freq="15min", inclusive="left")
    cover = tariff.month_coverage(cfg, year)
    assert list(cover) == [f"2018-{m:02d}" for m in range(1, 13)]
    assert np.allclose(list(cover.values()), 1.0)
