"""Reading the shipped Grafana dashboard: its panels, PromQL expressions and metric names.

Shared by the dashboard's structure test (``tests/test_dashboard.py``) and the scrape of a
real daemon (``tests/integration/test_dashboard_scrape.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "grafana" / "dispatch-dashboard.json"
#: A metric name of ours in an expression (what follows it is not part of a name).
#: Wider than our names (``dispatch_[a-z0-9_]+``), so a misspelt one is caught, not skipped.
NAME = re.compile(r"(?<![A-Za-z0-9_:])dispatch_[A-Za-z0-9_:]+")
#: A PromQL string literal.
STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")
#: The label lists of ``by``/``without``/``on``/...: a ``dispatch_`` word there is a label.
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
#: A string literal or label matchers alone (skipped), or a name of ours with its matchers.
TOKEN = re.compile(
    STRING.pattern + r"|\{[^{}]*\}|(?P<name>" + NAME.pattern + r")(?P<labels>\{[^{}]*\})?"
)
#: Functions whose argument must be a counter or a histogram's series.
RATES = re.compile(r"\b(?:rate|irate|increase)\s*\(")
#: The series each kind of family exposes, as suffixes of its name.
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
    "gauge": ("",),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}
#: Suffixes of the series ``rate``-like functions may take.
RATE_SUFFIXES = ("_total", "_bucket", "_count", "_sum")


def load() -> dict[str, Any]:
    """The dashboard document."""
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def panels(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows and the panels of collapsed rows included."""
    for p in doc["panels"]:
        yield p
        yield from p.get("panels", [])


def expressions(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable."""
    for p in panels(doc):
        for t in p.get("targets", []):
            yield f"panel {p['id']} {p['title']!r} target {t.get('refId')}", t["expr"]
    for v in doc["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]
            yield f"variable {v['name']}", q["query"] if isinstance(q, dict) else q


def selectors(expr: str) -> list[tuple[str, str]]:
    """(name, label matchers or "") of every selector of a ``dispatch_`` metric in an
    expression; label names and values, strings and grouping labels are not selectors."""
    found = (m for m in TOKEN.finditer(GROUPING.sub(" ", expr)) if m.group("name"))
    return [(m.group("name"), m.group("labels") or "") for m in found]


def metric_names(expr: str) -> set[str]:
    """The ``dispatch_`` metric names an expression selects."""
    return {name for name, _ in selectors(expr)}


def _argument(expr: str, start: int) -> str:
    """The text inside the parenthesis that opens at ``expr[start - 1]``."""
    depth = 1
    for i in range(start, len(expr)):
        depth += {"(": 1, ")": -1}.get(expr[i], 0)
        if depth == 0:
            return expr[start:i]
    raise ValueError(f"unbalanced parentheses in {expr!r}")


def rated_names(expr: str) -> set[str]:
    """The metric names inside ``rate``, ``irate`` and ``increase`` calls."""
    masked = STRING.sub(lambda m: '"' + "_" * (len(m.group()) - 2) + '"', expr)
    calls = (_argument(masked, m.end()) for m in RATES.finditer(masked))
    return set().union(*(metric_names(arg) for arg in calls))


def series_names(families: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Every series name the families (name, type) expose, with the family's type."""
    return {name + s: kind for name, kind in families for s in SUFFIXES[kind]}


def registry_series(registry: CollectorRegistry) -> dict[str, str]:
    """Every series name the metrics of ``registry`` can expose, with their type."""
    return series_names((f.name, f.type) for f in registry.collect())


def unexported(doc: dict[str, Any], series: dict[str, str]) -> list[str]:
    """What is wrong with the dashboard's names against ``series`` (``registry_series`` or
    a scrape's): names not exported, ``rate`` of a gauge, an expression without a name."""
    problems = []
    for where, expr in expressions(doc):
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: no dispatch_ metric in {expr!r}")
        problems += [f"{where}: {n} is not exported" for n in sorted(names - series.keys())]
        for n in sorted(rated_names(expr) & series.keys()):
            if series[n] not in ("counter", "histogram") or not n.endswith(RATE_SUFFIXES):
                problems.append(f"{where}: rate of {n}, a {series[n]}")
    return problems
