"""The weather seam of the daemon's forecast (``[weather] source = "open_meteo"``) against an
Open-Meteo answer served on 127.0.0.1: a good answer feeds the PV chain; a 5xx, a timeout
and a wrong unit fall back to the last good answer while it is young, else to clear sky,
and the forecast, the status document and the metrics say so."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dispatch.config import SiteConfig, load_config, parse_config
from dispatch.daemon import Clock, Daemon, Notifier
from dispatch.daemon.feeds import WeatherFeed
from dispatch.daemon.page import status_doc
from dispatch.forecast import pv_weather
from dispatch.pipeline.forecast import pv_forecast
from tests.fixtures.sources.recorded_server import RecordedServer, Reply, make_client

ROOT = Path(__file__).resolve().parents[1]
NOW = pd.Timestamp("2026-06-21T03:00Z")  # 11:00 in Suzhou: the sun is up
Q = pd.Timedelta(minutes=15)
CLOUD = 0.5  # the served irradiance is half of clear sky


def site(server: RecordedServer, tmp_path: Path | None = None, **weather: Any) -> SiteConfig:
    data = load_config(ROOT / "configs" / "suzhou-factory.toml").model_dump()
    data["weather"] = {"source": "open_meteo", "open_meteo_url": server.url("/v1/forecast"),
                       **weather}  # fmt: skip
    data["carbon"].pop("certificates", None)
    data["store"] = {"path": str((tmp_path or Path("/tmp")) / "w.sqlite3")}
    data["http"] = {"enabled": False}
    data["forecast"] = {"load_kw": 3000.0}
    return parse_config(data)


def open_meteo_doc(config: SiteConfig, start: pd.Timestamp, hours: int,
                   unit: str = "W/m²") -> dict[str, Any]:  # fmt: skip
    """An answer in Open-Meteo's documented shape: 15-min radiation stamped at the END of its
    period (the mean of the 15 min before), temperature and wind at the stamp."""
    index = pd.date_range(start, periods=hours * 4, freq=Q)
    sky = pv_weather.clearsky_weather(config.site, index)
    stamps = [(t + Q).strftime("%Y-%m-%dT%H:%M") for t in index]
    block = {"time": stamps,
             "shortwave_radiation": (CLOUD * sky["ghi"]).round(3).tolist(),
             "direct_normal_irradiance": (CLOUD * sky["dni"]).round(3).tolist(),
             "diffuse_radiation": (CLOUD * sky["dhi"]).round(3).tolist(),
             "temperature_2m": [25.0] * len(index), "wind_speed_10m": [2.0] * len(index)}
    units = {"time": "iso8601", "shortwave_radiation": unit, "direct_normal_irradiance": unit,
             "diffuse_radiation": unit, "temperature_2m": "°C", "wind_speed_10m": "m/s"}
    return {"latitude": 31.3, "longitude": 120.72, "utc_offset_seconds": 0, "timezone": "GMT",
            "minutely_15_units": units, "minutely_15": block}  # fmt: skip


def slots(now: pd.Timestamp = NOW, n: int = 48) -> pd.DatetimeIndex:
    """The recent 2 h before ``now`` and ``n`` slots from it, as the plan job asks."""
    return pd.date_range(now - pd.Timedelta(hours=2), periods=8 + n, freq=Q)


def feed(server: RecordedServer, config: SiteConfig) -> WeatherFeed:
    return WeatherFeed(config, client=make_client([], attempts=2))


def test_a_good_answer_feeds_the_pv_chain(server: RecordedServer) -> None:
    config = site(server)
    server.serve("/v1/forecast", Reply(body=open_meteo_doc(config, NOW - pd.Timedelta(hours=3),
                                                           60)))  # fmt: skip
    answer = feed(server, config)(slots(), NOW)
    assert not answer.fallback and answer.note == "open_meteo, 0.0 h old"
    assert answer.frame is not None and answer.frame.index.equals(slots())
    sky = pv_weather.clearsky_weather(config.site, slots())
    np.testing.assert_allclose(answer.frame["ghi"], CLOUD * sky["ghi"], atol=1e-3)
    horizon = slots()[8:]
    cloudy, _ = pv_forecast(config, horizon, answer.frame)
    clear, _ = pv_forecast(config, horizon, None)
    noon = cloudy["p_pv_kw"].iloc[:8]  # 11:00-13:00 local
    assert (noon < 0.75 * clear["p_pv_kw"].iloc[:8]).all() and (noon > 0).all()


@pytest.mark.parametrize("failure, says", [
    (Reply(503, b'{"error": true}'), "HTTP 503"),
    (Reply(200, b"{}", delay_s=1.0), "timeout"),
    ("kW/m²", "unit"),
])  # fmt: skip
def test_a_failing_source_falls_back_to_clear_sky_and_says_why(
    server: RecordedServer, failure: Reply | str, says: str
) -> None:
    config = site(server)
    if isinstance(failure, str):
        failure = Reply(body=open_meteo_doc(config, NOW - pd.Timedelta(hours=3), 60, failure))
    server.serve("/v1/forecast", failure)
    answer = feed(server, config)(slots(), NOW)
    assert answer.fallback and answer.frame is None
    assert answer.note.startswith("fallback: clear sky (") and says in answer.note


def test_the_last_good_answer_stands_while_young_then_clear_sky(server: RecordedServer) -> None:
    config = site(server, refresh_min=60, max_age_h=6)
    good = Reply(body=open_meteo_doc(config, NOW - pd.Timedelta(hours=3), 60))
    server.serve("/v1/forecast", good, Reply(503, b"{}"))
    weather = feed(server, config)
    assert weather(slots(), NOW).note == "open_meteo, 0.0 h old"
    later = NOW + pd.Timedelta(hours=2)  # refresh due: the source fails now
    young = weather(slots(later), later)
    assert not young.fallback and young.frame is not None
    assert young.note.startswith("open_meteo, 2.0 h old; now failing:") and "503" in young.note
    old = NOW + pd.Timedelta(hours=7)  # older than max_age_h
    stale = weather(slots(old), old)
    assert stale.fallback and stale.frame is None and "503" in stale.note


def test_the_forecast_status_and_metrics_name_the_fallback(server: RecordedServer,
                                                           tmp_path: Path) -> None:  # fmt: skip
    config = site(server, tmp_path)
    server.serve("/v1/forecast", Reply(503, b"{}"))
    d = Daemon(config, Clock(NOW.to_pydatetime(), 1.0), notifier=Notifier(""))
    d.services.feeds.weather.read = WeatherFeed(config, client=make_client([], 1)).read
    asyncio.run(d.plan_job())
    fs = d.forecast_state
    assert fs is not None and fs.fallbacks == ("weather",)
    assert "pv: clear sky (fallback: clear sky (" in fs.source
    doc = status_doc(d)
    assert doc["forecast"]["fallbacks"] == ["weather"] and doc["plan"]["status"] == "optimal"
    samples = {(s.name, tuple(s.labels.items())): s.value
               for fam in text_string_to_metric_families(d.metrics.render().decode())
               for s in fam.samples}  # fmt: skip
    assert samples[("dispatch_input_fallback", (("input", "weather"),))] == 1.0
    assert samples[("dispatch_input_fallback", (("input", "intensity"),))] == 0.0
    d.worker.shutdown()
    d.store_pool.shutdown()
    d.store.close()


def test_an_answer_without_the_recent_hours_leaves_pv_uncorrected(server: RecordedServer) -> None:
    config = site(server)
    doc = open_meteo_doc(config, NOW - Q, 60)  # from now on only (its first stamp is NOW)
    server.serve("/v1/forecast", Reply(body=copy.deepcopy(doc)))
    answer = feed(server, config)(pd.date_range(NOW, periods=48, freq=Q), NOW)
    assert answer.frame is not None
    history = pd.Series(100.0, index=pd.date_range(NOW - pd.Timedelta(hours=2), NOW - Q,
                                                   freq=Q))  # fmt: skip
    _, note = pv_forecast(config, answer.frame.index, answer.frame, history)
    assert "no weather for the last hours" in note
