"""The REST API with FastAPI's test client: reads, token-guarded writes validated against the
site's limits, every write an event, the checked-in OpenAPI spec."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dispatch.config import ConfigError, load_config, parse_config
from dispatch.daemon import Clock, Daemon, Notifier
from dispatch.daemon.api import openapi_spec
from dispatch.store import Store

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 6, 1, 4, tzinfo=dt.UTC)
TOKEN = "s3cret-token-for-tests-0123456789"
WHO = {"who": "li", "why": "maintenance"}


def make(tmp_path: Path, token: str | None = TOKEN) -> Daemon:
    data = load_config(ROOT / "configs" / "suzhou-factory.toml").model_dump()
    data["store"] = {"path": str(tmp_path / "h.sqlite3")}
    data["carbon"].pop("certificates", None)
    data["http"] = {"port": 0}
    if token is not None:
        (tmp_path / "api-token").write_text(token + "\n")
        data["http"]["token_file"] = str(tmp_path / "api-token")
    return Daemon(parse_config(data), Clock(T0, 1.0, monotonic=lambda: 0.0), notifier=Notifier(""))


@pytest.fixture
def api(tmp_path: Path):
    d = make(tmp_path)
    with TestClient(d.http.app) as client:
        yield d, client
    d.store_pool.shutdown()
    d.store.close()


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def events(tmp_path: Path) -> list[dict]:
    with Store(tmp_path / "h.sqlite3") as s:
        return s.rows("events")


def test_writes_need_the_token(api, tmp_path: Path) -> None:
    d, client = api
    body = {"mode": "pause", "minutes": 5, **WHO}
    r = client.post("/api/v1/mode", json=body)
    assert r.status_code == 401 and r.json()["detail"] == "a valid bearer token is needed"
    assert client.post("/api/v1/mode", json=body, headers=auth("wrong" * 5)).status_code == 401
    assert d.operator.peek(T0).overrides == () and events(tmp_path) == []


def test_without_a_token_file_the_api_is_read_only(tmp_path: Path) -> None:
    d = make(tmp_path, token=None)
    with TestClient(d.http.app) as client:
        r = client.post("/api/v1/mode", json={"mode": "pause", "minutes": 5, **WHO}, headers=auth())
        status = client.get("/api/v1/status").json()
    d.store.close()
    assert r.status_code == 403 and "read-only" in r.json()["detail"]
    assert status["writable"] is False and status["site"] == "suzhou-factory"


def test_a_setpoint_beyond_the_limits_is_refused_with_the_limit_named(api, tmp_path) -> None:
    _, client = api
    r = client.post(
        "/api/v1/mode",
        headers=auth(),
        json={"mode": "manual", "p_batt_kw": 5000, "minutes": 10, **WHO},
    )
    assert r.status_code == 422
    assert r.json()["detail"] == (
        "p_batt_kw = 5000 kW is beyond the battery's limits: charge "
        "3000 kW (negative), discharge 3000 kW"
    )
    [e] = events(tmp_path)
    assert e["kind"] == "operator_refused" and "li (maintenance)" in e["message"]
    assert client.get("/api/v1/overrides").json() == {"overrides": []}


def test_a_manual_setpoint_is_accepted_stored_and_listed(api, tmp_path: Path) -> None:
    d, client = api
    r = client.post(
        "/api/v1/mode",
        headers=auth(),
        json={"mode": "manual", "p_batt_kw": -1500, "minutes": 20, **WHO},
    )
    assert r.status_code == 200
    over = r.json()["override"]
    assert (over["kind"], over["value"], over["who"]) == ("mode", -1500.0, "li")
    assert over["until"] == "2026-06-01T04:20:00+00:00"
    assert client.get("/api/v1/overrides").json()["overrides"] == [over]
    assert client.get("/api/v1/status").json()["overrides"] == [over]
    found = client.get(
        "/api/v1/events", params={"start": "2026-06-01T00:00:00Z", "kind": "operator_mode"}
    ).json()
    assert [e["message"] for e in found["events"]] == [
        "api: manual -1500 kW until 2026-06-01T04:20:00+00:00 by li: maintenance"
    ]
    back = client.post("/api/v1/mode", headers=auth(), json={"mode": "auto", **WHO})
    assert back.json() == {"override": None} and d.operator.peek(T0).overrides == ()


def test_a_malformed_body_is_refused_by_the_schema(api) -> None:
    _, client = api
    r = client.post(
        "/api/v1/reserve", headers=auth(), json={"soc_reserve_frac": 1.5, "minutes": 5, **WHO}
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "soc_reserve_frac"]
    r = client.post("/api/v1/peak-target", headers=auth(), json={"peak_target_kw": 900})
    assert r.status_code == 422  # no who / why: not accepted


def test_history_ranges_are_bounded_and_tables_named(api) -> None:
    _, client = api
    bad = client.get(
        "/api/v1/history/measurements",
        params={"start": "2026-05-01T00:00:00Z", "end": "2026-05-20T00:00:00Z"},
    )
    assert bad.status_code == 422 and "7 days" in bad.json()["detail"]
    naive = client.get("/api/v1/history/measurements", params={"start": "2026-05-01T00:00:00"})
    assert naive.status_code == 422 and "UTC offset" in naive.json()["detail"]
    missing = client.get("/api/v1/history/secrets", params={"start": "2026-05-01T00:00:00Z"})
    assert missing.status_code == 404 and "measurements" in missing.json()["detail"]
    ok = client.get("/api/v1/history/measurements", params={"start": "2026-05-01T00:00:00Z"})
    assert ok.status_code == 200 and ok.json()["rows"] == []


def test_healthz_is_503_until_a_control_cycle_completes(api) -> None:
    _, client = api
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json()["ok"] is False


def test_the_checked_in_openapi_spec_is_the_apis(tmp_path: Path) -> None:
    checked_in = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert checked_in == json.loads(json.dumps(openapi_spec())), "run `make openapi`"
    assert {"/api/v1/mode", "/api/v1/reserve", "/api/v1/peak-target"} <= set(checked_in["paths"])


@pytest.mark.parametrize("content", ["", "short", "two words-but-long-enough"])
def test_a_bad_token_file_is_a_config_error(tmp_path: Path, content: str) -> None:
    with pytest.raises(ConfigError, match="the API token must be one word"):
        make(tmp_path, token=content)


def test_a_relative_token_file_is_found_beside_the_config(tmp_path: Path) -> None:
    text = (ROOT / "configs" / "suzhou-factory.toml").read_text()
    (tmp_path / "site.toml").write_text(text + '\n[http]\ntoken_file = "api-token"\n')
    assert load_config(tmp_path / "site.toml").http.token_file == str(tmp_path / "api-token")
