"""The grid-intensity and weather-file seams of the daemon's forecast: a measured intensity
CSV is known only up to now (beyond it, the same time a day earlier; before any measurement,
the configured factor), Electricity Maps' forecast is used as given and a failure falls
back to the configured factor, and a weather file another job rewrites is read again."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dispatch.daemon.feeds import IntensityFeed, WeatherFeed
from dispatch.sources import ElectricityMapsCI
from tests.factories import config
from tests.fixtures.sources.recorded_server import RecordedServer, Reply, fixture_doc, make_client

NOW = pd.Timestamp("2026-06-21T12:00Z")
Q = pd.Timedelta(minutes=15)


def write_ci(path: Path, start: pd.Timestamp, n: int) -> pd.Series:
    """A measured intensity series: 400 g/kWh plus the slot number (g/kWh)."""
    index = pd.date_range(start, periods=n, freq=Q)
    series = pd.Series(400.0 + np.arange(n), index=index)
    pd.DataFrame({"time": [t.isoformat() for t in index], "ci_g_per_kwh": series}).to_csv(
        path, index=False
    )
    return series


def test_a_measured_intensity_is_known_up_to_now_then_a_day_earlier(tmp_path: Path) -> None:
    path = tmp_path / "ci.csv"
    # measured from 20 h before now until 2 h AFTER now: the future rows must not be used
    measured = write_ci(path, NOW - pd.Timedelta(hours=20), 22 * 4)
    site = config(
        carbon={"grid_ci_g_per_kwh": 300.0, "source": "csv", "csv_path": str(path)},
        plan={"step_min": 15, "horizon_h": 36},
    )
    index = pd.date_range(NOW, periods=36 * 4, freq=Q)
    answer = IntensityFeed(site)(index, NOW)
    assert answer.frame is not None and not answer.fallback and "gaps: configured" in answer.note
    # each slot as measured a whole number of days earlier, the latest day before now;
    # where that was before the first measurement, the configured factor
    days = (index - NOW) // pd.Timedelta(days=1) + 1
    source = index - pd.to_timedelta(days, unit="D")
    known = measured[measured.index < NOW]
    expected = known.reindex(source).fillna(300.0).to_numpy()
    np.testing.assert_allclose(answer.frame["ci_g_per_kwh"], expected)
    assert (expected[:16] == 300.0).all() and (expected[16:96] >= 400.0).all()


def test_a_missing_intensity_file_falls_back_to_the_configured_factor(tmp_path: Path) -> None:
    site = config(
        carbon={
            "grid_ci_g_per_kwh": 300.0,
            "source": "csv",
            "csv_path": str(tmp_path / "absent.csv"),
        }
    )
    answer = IntensityFeed(site)(pd.date_range(NOW, periods=4, freq="h"), NOW)
    assert answer.fallback and answer.frame is None and "cannot read" in answer.note


def test_electricity_maps_forecast_is_used_and_a_failure_falls_back(
    server: RecordedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EM_TOKEN", "secret")
    site = config(
        carbon={
            "grid_ci_g_per_kwh": 300.0,
            "source": "electricity_maps",
            "electricity_maps_zone": "DE",
            "electricity_maps_token_env": "EM_TOKEN",
            "electricity_maps_url": server.url("/v3"),
        }
    )
    doc = fixture_doc("electricitymaps_forecast.json")
    first = pd.Timestamp(doc["forecast"][0]["datetime"])
    index = pd.date_range(first, periods=3, freq="h")
    feed = IntensityFeed(site)
    api = ElectricityMapsCI(
        "DE", "secret", base_url=server.url("/v3"), client=make_client([], attempts=1)
    )
    feed.read = lambda start, end: api.get_forecast(start=start, end=end).data
    server.serve("/v3/carbon-intensity/forecast", Reply(body=doc))
    answer = feed(index, first)
    expected = [float(p["carbonIntensity"]) for p in doc["forecast"][:3]]
    assert answer.frame is not None and answer.frame["ci_g_per_kwh"].tolist() == expected
    server.serve("/v3/carbon-intensity/forecast", Reply(503, b"{}"))
    failed = feed(index, first)
    assert failed.fallback and failed.frame is None and "503" in failed.note


def test_electricity_maps_without_its_token_is_a_config_error(monkeypatch) -> None:
    from dispatch.types import ConfigError

    monkeypatch.delenv("ELECTRICITY_MAPS_TOKEN", raising=False)
    site = config(
        carbon={
            "grid_ci_g_per_kwh": 300.0,
            "source": "electricity_maps",
            "electricity_maps_zone": "DE",
        }
    )
    with pytest.raises(ConfigError, match="ELECTRICITY_MAPS_TOKEN"):
        IntensityFeed(site)


def test_a_weather_file_is_read_again_when_another_job_rewrites_it(tmp_path: Path) -> None:
    path = tmp_path / "weather.csv"
    index = pd.date_range(NOW - pd.Timedelta(hours=2), periods=16, freq=Q)

    def write(ghi: float, mtime: float) -> None:
        pd.DataFrame(
            {
                "time": [t.isoformat() for t in index],
                "ghi": ghi,
                "dni": ghi,
                "dhi": ghi / 2,
                "temp_air": 20.0,
                "wind_speed": 1.0,
            }
        ).to_csv(path, index=False)
        os.utime(path, (mtime, mtime))

    write(100.0, 1_000_000.0)
    site = config(
        weather={"source": "file", "file_path": str(path), "refresh_min": 15},
        plan={"step_min": 15, "horizon_h": 2},
    )
    feed = WeatherFeed(site)
    first = feed(index, NOW)
    assert first.frame is not None and (first.frame["ghi"] == 100.0).all()
    write(300.0, 1_000_100.0)
    later = NOW + pd.Timedelta(minutes=15)
    assert (feed(index, later).frame["ghi"] == 300.0).all()  # type: ignore[index]
