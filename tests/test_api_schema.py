"""Schemathesis, an independent client generated from the checked-in OpenAPI spec, sends
requests of every shape to every endpoint: no server error, every status and body as the
spec documents, nothing the schema forbids accepted. ``/healthz`` may answer 503 by design,
and a schema-valid write may be refused (422): the site's limits are not in the spec."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, positive_data_acceptance

from tests.test_api import auth, make

DAEMON = make(Path(tempfile.mkdtemp(prefix="dispatch-api-")))  # no devices, nothing measured
schema = schemathesis.openapi.from_asgi("/openapi.json", DAEMON.http.app)


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_request_breaks_the_api(case: schemathesis.Case) -> None:
    excluded = [positive_data_acceptance]
    if case.path == "/healthz":
        excluded.append(not_a_server_error)
    case.call_and_validate(headers=auth(), excluded_checks=excluded)
