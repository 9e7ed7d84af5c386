"""HTTP providers of ``dispatch.sources`` failing in every documented way, and the cache.

A real ``http.server`` on 127.0.0.1 (port 0, ``tests/fixtures/sources/recorded_server.py``)
plays each provider with a slow answer (timeout), HTTP 500 once or always, 429, 401, malformed
JSON, missing fields, wrong units and odd shapes; then the last-good cache is checked (stale flag
and age; refused when too old). Nothing leaves the machine. The answers are hand-written in the
documented shapes (see ``tests/fixtures/sources/README.md``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

from dispatch.sources import (
    AwattarPrices,
    ElectricityMapsCI,
    Fetched,
    HttpClient,
    LastGoodCache,
    OpenMeteoWeather,
)
from dispatch.types import SourceError
from tests.fixtures.sources.recorded_server import (
    FIXTURES,
    FakeClock,
    RecordedServer,
    Reply,
    fixture_doc,
    make_client,
)

TOKEN = "secret-token-123"


# ------------------------------------------------------------------------- providers under test

W_START, W_END = pd.Timestamp("2026-06-21T04:00Z"), pd.Timestamp("2026-06-21T07:00Z")
P_START, P_END = pd.Timestamp("2026-06-20T22:00Z"), pd.Timestamp("2026-06-21T22:00Z")


@dataclass
class Case:
    """How to build, call and break one provider."""

    id: str
    name: str
    path: str
    fixture: str
    build: Callable[[RecordedServer, HttpClient, LastGoodCache, FakeClock], Any]
    fetch: Callable[[Any], pd.DataFrame]
    get: Callable[[Any, float], Fetched]
    drop_field: Callable[[dict[str, Any]], str]
    wrong_units: Callable[[dict[str, Any]], None]


def _drop_om(doc: dict[str, Any]) -> str:
    del doc["minutely_15"]["diffuse_radiation"]
    return "diffuse_radiation"


def _units_om(doc: dict[str, Any]) -> None:
    doc["minutely_15"]["shortwave_radiation"][5] = 80_000.0  # looks like J/m2


def _drop_em_forecast(doc: dict[str, Any]) -> str:
    del doc["forecast"][3]["carbonIntensity"]
    return "carbonIntensity"


def _units_em_forecast(doc: dict[str, Any]) -> None:
    doc["forecast"][2]["carbonIntensity"] = -380  # sign or unit mistake


def _drop_em_latest(doc: dict[str, Any]) -> str:
    del doc["datetime"]
    return "datetime"


def _units_em_latest(doc: dict[str, Any]) -> None:
    doc["carbonIntensity"] = 385_000  # g/MWh


def _drop_aw(doc: dict[str, Any]) -> str:
    del doc["data"][2]["marketprice"]
    return "marketprice"


def _units_aw(doc: dict[str, Any]) -> None:
    for item in doc["data"]:
        item["unit"] = "Eur/kWh"


def _weather(srv: RecordedServer, c: HttpClient, cache: LastGoodCache, clk: FakeClock) -> Any:
    return OpenMeteoWeather(52.52, 13.42, base_url=srv.url("/v1/forecast"), client=c,
                            cache=cache, clock=clk)


def _em(srv: RecordedServer, c: HttpClient, cache: LastGoodCache, clk: FakeClock) -> Any:
    return ElectricityMapsCI("DE", TOKEN, base_url=srv.url("/v3"), client=c, cache=cache,
                             clock=clk)


def _aw(srv: RecordedServer, c: HttpClient, cache: LastGoodCache, clk: FakeClock) -> Any:
    return AwattarPrices("DE", base_url=srv.url("/v1/marketdata"), client=c, cache=cache,
                         clock=clk)


CASES = [
    Case("open-meteo", "open-meteo", "/v1/forecast", "open_meteo_minutely_15.json", _weather,
         lambda p: p.fetch(W_START, W_END),
         lambda p, s: p.get(W_START, W_END, allow_stale_s=s), _drop_om, _units_om),
    Case("em-forecast", "electricity-maps", "/v3/carbon-intensity/forecast",
         "electricitymaps_forecast.json", _em,
         lambda p: p.forecast(), lambda p, s: p.get_forecast(allow_stale_s=s),
         _drop_em_forecast, _units_em_forecast),
    Case("em-latest", "electricity-maps", "/v3/carbon-intensity/latest",
         "electricitymaps_latest.json", _em,
         lambda p: p.latest(), lambda p, s: p.get_latest(allow_stale_s=s),
         _drop_em_latest, _units_em_latest),
    Case("awattar", "awattar", "/v1/marketdata", "awattar_marketdata.json", _aw,
         lambda p: p.fetch(P_START, P_END),
         lambda p, s: p.get(P_START, P_END, allow_stale_s=s), _drop_aw, _units_aw),
]


def _provider(case: Case, server: RecordedServer, sleeps: list[float], attempts: int = 3,
              clock: FakeClock | None = None) -> Any:
    return case.build(server, make_client(sleeps, attempts), LastGoodCache(),
                      clock or FakeClock())


# ------------------------------------------------------------------------- failures, per case

IDS = [c.id for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_timeout_is_a_source_error_naming_provider_url_and_cause(case, server, sleeps):
    server.serve(case.path, Reply(body=fixture_doc(case.fixture), delay_s=0.8))
    with pytest.raises(SourceError) as err:
        case.fetch(_provider(case, server, sleeps, attempts=2))
    msg = str(err.value)
    assert msg.startswith(f"{case.name}: GET ")
    assert server.url(case.path) in msg and "timeout" in msg and "2 tries" in msg
    assert TOKEN not in msg
    assert sleeps == [0.01]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_http_500_then_success_on_retry(case, server, sleeps):
    server.serve(case.path, Reply(500, b"oops"), Reply(body=fixture_doc(case.fixture)))
    frame = case.fetch(_provider(case, server, sleeps))
    assert not frame.empty and frame.notna().all().all()
    assert len(server.requests) == 2 and sleeps == [0.01]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_http_500_always_gives_up_after_bounded_tries(case, server, sleeps):
    server.serve(case.path, Reply(503, b"busy"))
    with pytest.raises(SourceError, match=r"failed after 3 tries: HTTP 503"):
        case.fetch(_provider(case, server, sleeps))
    assert len(server.requests) == 3
    assert sleeps == [0.01, 0.02]  # exponential back-off


def test_429_honours_retry_after_within_the_cap(server, sleeps):
    case = CASES[3]
    server.serve(case.path, Reply(429, b"slow down", headers={"Retry-After": "30"}),
                 Reply(body=fixture_doc(case.fixture)))
    case.fetch(_provider(case, server, sleeps))
    assert sleeps == [0.05]  # Retry-After 30 s capped at backoff_max_s


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_client_error_is_not_retried_and_hides_the_token(case, server, sleeps):
    server.serve(case.path, Reply(401, b'{"message": "invalid token"}'))
    with pytest.raises(SourceError, match="HTTP 401") as err:
        case.fetch(_provider(case, server, sleeps))
    assert len(server.requests) == 1 and TOKEN not in str(err.value)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_malformed_json(case, server, sleeps):
    text = (FIXTURES / case.fixture).read_bytes()
    server.serve(case.path, Reply(body=text[: len(text) // 2]))
    with pytest.raises(SourceError, match="malformed JSON") as err:
        case.fetch(_provider(case, server, sleeps))
    assert server.url(case.path) in str(err.value)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_missing_field_is_named(case, server, sleeps):
    doc = copy.deepcopy(fixture_doc(case.fixture))
    name = case.drop_field(doc)
    server.serve(case.path, Reply(body=doc))
    with pytest.raises(SourceError, match=f"missing field '{name}'"):
        case.fetch(_provider(case, server, sleeps))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_wrong_units_are_refused(case, server, sleeps):
    doc = copy.deepcopy(fixture_doc(case.fixture))
    case.wrong_units(doc)
    server.serve(case.path, Reply(body=doc))
    with pytest.raises(SourceError, match="wrong units"):
        case.fetch(_provider(case, server, sleeps))


# ------------------------------------------------------------------------- last-good cache


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cache_used_when_allowed_and_refused_when_too_old(case, server, sleeps, caplog):
    clock = FakeClock()
    provider = _provider(case, server, sleeps, clock=clock)
    server.serve(case.path, Reply(body=fixture_doc(case.fixture)))
    fresh = case.get(provider, 0.0)
    assert (fresh.stale, fresh.age_s, fresh.fetched_at) == (False, 0.0, clock.now)
    assert fresh.source == case.name
    server.serve(case.path, Reply(500, b"down"))
    clock.advance(600)
    stale = case.get(provider, 900.0)
    assert stale.stale and stale.age_s == 600.0 and stale.fetched_at == fresh.fetched_at
    pd.testing.assert_frame_equal(stale.data, fresh.data)
    assert "HTTP 500" in (stale.error or "")
    assert "last good answer, 600 s old" in caplog.text
    with pytest.raises(SourceError, match=r"600 s old, more than allow_stale_s = 300"):
        case.get(provider, 300.0)


def test_no_cached_answer_is_said(server, sleeps):
    case = CASES[0]
    server.serve(case.path, Reply(500, b"down"))
    with pytest.raises(SourceError, match="no cached answer"):
        case.get(_provider(case, server, sleeps), 3600.0)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("body", [[], "text", {"data": 3, "forecast": {"a": 1}}],
                         ids=["list", "string", "odd-nesting"])
def test_odd_answer_shapes_are_source_errors(case, server, sleeps, body):
    server.serve(case.path, Reply(body=json.dumps(body).encode()))
    with pytest.raises(SourceError, match=case.name):
        case.fetch(_provider(case, server, sleeps))
