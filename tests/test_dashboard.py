"""The shipped Grafana dashboard: a well-formed document whose queries name our metrics.

Structure: every panel has a unique id and a place on the 24-column grid that no other panel
covers; every panel but a row queries the templated Prometheus data source; every target has
an expression and a unique refId; every selector is filtered on the ``$instance`` variable.
Names: every ``dispatch_`` name in every expression is a series the daemon's ``Metrics``
exposes (a counter's ``_total``, a histogram's ``_bucket``/``_count``/``_sum``, an info's
``_info``), and ``rate``/``increase`` take only counters and histogram series. A renamed metric
fails here; ``tests/integration/test_dashboard_scrape.py`` checks the same names against the
``/metrics`` of a real daemon.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from prometheus_client import Gauge

from dispatch.daemon.metrics import Metrics
from tests import dashboard

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PANEL_TYPES = {"row", "timeseries", "stat", "state-timeline"}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return dashboard.load()


def test_the_dashboard_is_a_grafana_document(doc: dict[str, Any]) -> None:
    assert doc["title"] and doc["uid"] == "factory-dispatch" and doc["id"] is None
    assert isinstance(doc["schemaVersion"], int) and doc["schemaVersion"] >= 36
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["instance"]["datasource"] == DATASOURCE


def test_panels_have_unique_ids_and_do_not_overlap(doc: dict[str, Any]) -> None:
    ps = list(dashboard.panels(doc))
    ids = [p["id"] for p in ps]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    cells: dict[tuple[int, int], int] = {}
    for p in ps:
        g = p["gridPos"]
        assert p["type"] in PANEL_TYPES, p["title"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        for cell in itertools.product(
            range(g["x"], g["x"] + g["w"]), range(g["y"], g["y"] + g["h"])
        ):
            assert cell not in cells, f"panel {p['id']} overlaps panel {cells[cell]}"
            cells[cell] = p["id"]


def test_every_panel_queries_the_templated_prometheus_source(doc: dict[str, Any]) -> None:
    for p in dashboard.panels(doc):
        if p["type"] == "row":
            assert "targets" not in p and "datasource" not in p
            continue
        assert p["datasource"] == DATASOURCE, p["title"]
        assert p["targets"], f"panel {p['title']!r} has no target"
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DATASOURCE and t["expr"].strip(), p["title"]


def test_every_selector_is_filtered_on_the_instance(doc: dict[str, Any]) -> None:
    for where, expr in dashboard.expressions(doc):
        if where.startswith("variable"):
            continue
        for name, labels in dashboard.selectors(expr):
            assert labels.startswith('{instance=~"$instance"'), f"{where}: {name} unfiltered"


def test_every_variable_used_is_defined(doc: dict[str, Any]) -> None:
    text = str([p for p in dashboard.panels(doc)])
    used = set(re.findall(r"\$\{?([a-z_]+)\}?", text)) - {"__rate_interval"}
    assert used <= {v["name"] for v in doc["templating"]["list"]}


def test_metric_names_are_read_from_expressions() -> None:
    expr = (
        'max by (dispatch_plan_status) (dispatch_plan_status{instance=~"$i", '
        'dispatch_x="dispatch_y"}) == 1 + rate(dispatch_cycle_seconds_bucket[5m]) '
        "- xdispatch_no + dispatch_cycles_total + dispatch_Cycles"
    )
    assert dashboard.metric_names(expr) == {
        "dispatch_plan_status",
        "dispatch_cycle_seconds_bucket",
        "dispatch_cycles_total",
        "dispatch_Cycles",
    }
    assert dashboard.rated_names(expr) == {"dispatch_cycle_seconds_bucket"}
    assert dashboard.rated_names('sum(increase(dispatch_a_total{x="("}[1m])) + dispatch_b') == {
        "dispatch_a_total"
    }


def test_series_names_follow_the_family_types() -> None:
    series = dashboard.series_names(
        [
            ("dispatch_c", "counter"),
            ("dispatch_h", "histogram"),
            ("dispatch_g", "gauge"),
            ("dispatch_b", "info"),
        ]
    )
    assert series == {
        "dispatch_c_total": "counter",
        "dispatch_h_bucket": "histogram",
        "dispatch_h_count": "histogram",
        "dispatch_h_sum": "histogram",
        "dispatch_g": "gauge",
        "dispatch_b_info": "info",
    }


def test_every_name_the_dashboard_queries_is_a_series_of_the_metrics(doc: dict[str, Any]) -> None:
    assert dashboard.unexported(doc, dashboard.registry_series(Metrics().registry)) == []
    seen = set().union(*(dashboard.metric_names(e) for _, e in dashboard.expressions(doc)))
    # the panels the issue asks for: power, SoC, peak and target, PV and load, prices,
    # faults, safe state, tracking, plan status and age, carbon, build
    for name in (
        "dispatch_power_kw",
        "dispatch_setpoint_kw",
        "dispatch_soc_ratio",
        "dispatch_peak_target_kw",
        "dispatch_month_peak_kw",
        "dispatch_energy_price_per_kwh",
        "dispatch_device_up",
        "dispatch_device_fault_level",
        "dispatch_safe_state",
        "dispatch_setpoint_not_following",
        "dispatch_plan_status",
        "dispatch_data_age_seconds",
        "dispatch_carbon_month_to_date_tonnes",
        "dispatch_grid_ci_g_per_kwh",
        "dispatch_build_info",
    ):
        assert name in seen, name


def test_a_renamed_metric_or_a_rate_of_a_gauge_is_caught(doc: dict[str, Any]) -> None:
    m = Metrics()
    m.registry.unregister(m.month_peak)
    Gauge("dispatch_month_peak_import_kw", "renamed", registry=m.registry)
    problems = dashboard.unexported(doc, dashboard.registry_series(m.registry))
    assert problems and all("dispatch_month_peak_kw is not exported" in p for p in problems)
    target = {"refId": "A", "expr": 'rate(dispatch_soc_ratio{instance=~"$instance"}[5m])'}
    gauge = {"panels": [{"id": 1, "title": "t", "targets": [target]}], "templating": {"list": []}}
    assert dashboard.unexported(gauge, {"dispatch_soc_ratio": "gauge"}) == [
        "panel 1 't' target A: rate of dispatch_soc_ratio, a gauge"
    ]
