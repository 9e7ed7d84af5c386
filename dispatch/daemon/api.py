"""The daemon's HTTP interface: a FastAPI app with the status page, a REST API and metrics.

Role: read endpoints (``/api/v1/status``, ``plan``, ``forecast``, ``history/{table}``,
``events``, ``carbon``, ``carbon/head``, ``overrides``), the operator's write endpoints
(``mode``, ``reserve``, ``peak-target``: each through ``operator.Operator``, validated against
the site's limits, stored as an event with who and why and expiring by itself), the HTML status
page ``/``, ``/metrics`` (Prometheus), ``/healthz`` (200 while control cycles complete) and the
OpenAPI spec (``/openapi.json``, checked in as ``docs/openapi.json``). Writes need the bearer
token of ``[http] token_file``; none configured, the API is read-only. Reads run in the
server's threads on the daemon's published immutable state and their own store connections.
Imports FastAPI and this package.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dispatch.daemon.carbon_anchor import head_doc
from dispatch.daemon.operator import (
    CommandError,
    CommandStoreError,
    ModeCommand,
    Operator,
    PeakTargetCommand,
    ReserveCommand,
)
from dispatch.daemon.page import html_page, plan_doc, status_doc
from dispatch.store.schema import TABLES
from dispatch.types import ConfigError, DispatchError

if TYPE_CHECKING:
    from dispatch.daemon.core import Daemon

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The longest range ``/api/v1/history`` and ``/api/v1/events`` answer in one request.
MAX_RANGE = dt.timedelta(days=7)
#: Completed control cycles a healthy daemon may miss before ``/healthz`` says 503.
HEALTHY_CYCLES = 3
BEARER = HTTPBearer(auto_error=False)
#: The error answers the spec documents (each a JSON ``{"detail": ...}``).
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "the body is not JSON"},
    401: {"description": "no or a wrong bearer token"},
    403: {"description": "read-only: no [http] token_file is configured"},
    404: {"description": "no such table"},
    422: {"description": "refused: a bad field, or beyond the site's limits (named)"},
    503: {"description": "the store cannot be used now (or, for /healthz, no recent cycle)"},
}
HISTORY_TABLES = ("measurements", "setpoints", "events", "plans", "forecasts", "demand_peak")


def clean(x: Any) -> Any:
    """``x`` with every non-finite float as None (JSON has no NaN)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [clean(v) for v in x]
    return x


class CleanJSON(JSONResponse):
    """JSON with NaN as null and anything else (times) as its string."""

    def render(self, content: Any) -> bytes:
        return json.dumps(clean(content), indent=1, default=str).encode()


def read_token(path: str | None) -> str | None:
    """The API's bearer token from ``[http] token_file`` (None: read-only API).

    Raises
    ------
    ConfigError
        When the file cannot be read or holds no token.
    """
    if path is None:
        return None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the API token: {exc.strerror}", path) from None
    if len(token) < 16 or any(c.isspace() for c in token):
        raise ConfigError("the API token must be one word of at least 16 characters", path)
    return token


#: A query time: ISO 8601 with a UTC offset (documented as ``date-time`` in the spec).
Time = Annotated[
    str,
    Query(
        json_schema_extra={"format": "date-time"},
        description="ISO 8601 with a UTC offset, e.g. 2026-05-01T00:00Z",
    ),
]


def _time(name: str, text: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise HTTPException(422, f"{name} = {text!r} is not an ISO 8601 time") from None
    if t.tzinfo is None:
        raise HTTPException(422, f"{name} needs a UTC offset (e.g. 2026-05-01T00:00Z)")
    return t


def _range(start: str, end: str | None) -> tuple[dt.datetime, dt.datetime]:
    t0 = _time("start", start)
    t1 = _time("end", end) if end is not None else t0 + MAX_RANGE
    if not t0 < t1 <= t0 + MAX_RANGE:
        raise HTTPException(422, f"need start < end <= start + {MAX_RANGE.days} days")
    return t0, t1


def build_app(daemon: Daemon, operator: Operator, token: str | None) -> FastAPI:
    """The FastAPI app of one daemon.

    Parameters
    ----------
    daemon : Daemon
        Whose state to serve (read only).
    operator : Operator
        Where the write endpoints send their commands.
    token : str, optional
        The bearer token writes need; None: every write is refused (403).
    """
    app = FastAPI(
        title="factory-dispatch",
        version="1",
        summary="Status, plan, history and operator overrides of one site's dispatch daemon",
        default_response_class=CleanJSON,
        docs_url=None,  # Swagger UI and ReDoc load from a CDN: the plant LAN is offline
        redoc_url=None,
    )

    def authorised(cred: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
        if token is None:
            raise HTTPException(403, "read-only: no [http] token_file is configured")
        if cred is None or not secrets.compare_digest(cred.credentials.encode(), token.encode()):
            raise HTTPException(
                401, "a valid bearer token is needed", {"WWW-Authenticate": "Bearer"}
            )

    def submit(cmd: ModeCommand | ReserveCommand | PeakTargetCommand) -> dict[str, Any]:
        try:
            new = operator.submit(cmd, "api")
        except CommandStoreError as exc:
            raise HTTPException(503, str(exc)) from None
        except CommandError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"override": new.as_dict() if new is not None else None}

    write = {
        "dependencies": [Depends(authorised)],
        "tags": ["operator"],
        "responses": {c: ERRORS[c] for c in (400, 401, 403, 422, 503)},
    }

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return html_page(daemon)

    @app.get("/healthz", tags=["status"], responses={503: ERRORS[503]})
    def healthz() -> CleanJSON:
        """200 while control cycles complete (the last within three cycles), else 503."""
        c, now = daemon.last_cycle, daemon.clock.now()
        age = (now - c.time).total_seconds() if c is not None else None
        ok = age is not None and age <= HEALTHY_CYCLES * daemon.config.control.cycle_s
        body = {"ok": ok, "last_cycle_age_s": age, "safe_state": daemon.in_safe_state}
        return CleanJSON(body, status_code=200 if ok else 503)

    @app.get("/metrics", response_class=Response, tags=["status"])
    def metrics() -> Response:
        """Prometheus text exposition."""
        return Response(daemon.metrics.render(), media_type=PROMETHEUS_TYPE)

    @app.get("/status", include_in_schema=False)
    @app.get("/api/v1/status", tags=["status"])
    def status() -> dict[str, Any]:
        """The last control cycle, the plan and forecast in force, failures, overrides."""
        return status_doc(daemon) | {"writable": token is not None}

    @app.get("/plan", include_in_schema=False)
    @app.get("/api/v1/plan", tags=["status"])
    def plan() -> dict[str, Any]:
        """The plan in force, one record per slot."""
        return plan_doc(daemon)

    @app.get("/api/v1/forecast", tags=["status"])
    def forecast() -> dict[str, Any]:
        """The forecast in force, one record per slot (kW, prices per kWh, g/kWh)."""
        fs = daemon.forecast_state
        if fs is None:
            return {"forecast": None}
        f = fs.frame
        records = zip(f.index, f.to_dict("records"), strict=True)
        slots = [{"time": t.isoformat(), **row} for t, row in records]
        return {
            "forecast_id": fs.forecast_id,
            "issued_at": fs.issued_at.isoformat(),
            "source": fs.source,
            "warmup": fs.warmup,
            "slots": slots,
        }

    @app.get(
        "/api/v1/history/{table}",
        tags=["history"],
        responses={404: ERRORS[404], 422: ERRORS[422], 503: ERRORS[503]},
    )
    def history(table: str, start: Time, end: Time | None = None) -> dict[str, Any]:
        """Stored rows of a table with time in [start, end), at most 7 days."""
        if table not in HISTORY_TABLES:
            raise HTTPException(404, f"no table {table!r}: one of {', '.join(HISTORY_TABLES)}")
        t0, t1 = _range(start, end)
        try:
            rows = daemon.store.rows(table, t0, t1)
        except DispatchError as exc:
            raise HTTPException(503, str(exc)) from None
        return {"table": table, "time_column": TABLES[table][0], "rows": rows}

    @app.get("/api/v1/events", tags=["history"], responses={422: ERRORS[422], 503: ERRORS[503]})
    def events(
        start: Time,
        end: Time | None = None,
        kind: Annotated[str | None, Query(description="only events of this kind")] = None,
    ) -> dict[str, Any]:
        """Stored events in [start, end), at most 7 days: operator writes, faults, plans."""
        rows = history("events", start, end)["rows"]
        return {"events": [r for r in rows if kind is None or r["kind"] == kind]}

    @app.get("/api/v1/carbon", tags=["carbon"], responses={503: ERRORS[503]})
    def carbon() -> dict[str, Any]:
        """The carbon ledger's month and year figures (t CO2) and its head."""
        try:
            head = daemon.store.ledger_head()
        except DispatchError as exc:
            raise HTTPException(503, str(exc)) from None
        return {"figures": daemon.carbon_figures, "head": dataclasses.asdict(head)}

    @app.get("/api/v1/carbon/head", tags=["carbon"], responses={503: ERRORS[503]})
    def carbon_head() -> dict[str, Any]:
        """The ledger's and carbon instruments' unsigned chain state (records, head hash,
        ``end_utc``, per-row fingerprints, as in a checkpoint): keep a copy off the box."""
        try:
            return head_doc(daemon.store, daemon.clock.now())
        except DispatchError as exc:
            raise HTTPException(503, str(exc)) from None

    @app.get("/api/v1/overrides", tags=["operator"])
    def overrides() -> dict[str, Any]:
        """The operator's overrides in force."""
        now = daemon.clock.now()
        return {"overrides": [o.as_dict() for o in operator.peek(now).overrides]}

    @app.post("/api/v1/mode", **write)
    def mode(cmd: ModeCommand) -> dict[str, Any]:
        """Auto (follow the plan), pause (hand each battery back to its default mode) or a
        manual battery power, for ``minutes``."""
        return submit(cmd)

    @app.post("/api/v1/reserve", **write)
    def reserve(cmd: ReserveCommand) -> dict[str, Any]:
        """A reserve SoC the battery keeps (no discharge below it) for ``minutes``."""
        return submit(cmd)

    @app.post("/api/v1/peak-target", **write)
    def peak_target(cmd: PeakTargetCommand) -> dict[str, Any]:
        """A grid-import target the guard holds and the plan caps its import at."""
        return submit(cmd)

    return app


def openapi_spec() -> dict[str, Any]:
    """The API's OpenAPI document (it does not depend on a site): ``docs/openapi.json``,
    written by ``make openapi``."""
    return build_app(None, None, None).openapi()  # type: ignore[arg-type]
