"""The fault matrix's own checks can fail: a committed row lost or changed shows in
``committed``, and ``metric`` reads the exact sample asked for."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from dispatch.store import Store
from tests.integration.conftest import T0
from tests.integration.fault_checks import committed, metric


def test_a_lost_or_changed_row_shows(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite3"
    with Store(db) as s:
        for i in range(3):
            s.write_event(T0, "info", "start", f"run {i}")
    before = committed(db)
    assert before["events"].count == 3 and before["events"].max_key == 3
    with Store(db) as s:
        s.write_event(T0, "info", "stop", "a later row")
    assert committed(db, upto=before) == before  # a row after them changes nothing
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE events SET message = 'changed' WHERE id = 2")
    assert committed(db, upto=before)["events"] != before["events"]
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("DELETE FROM events WHERE id = 2")
    assert committed(db, upto=before)["events"].count == 2


def test_metric_reads_the_sample_with_exactly_its_labels() -> None:
    text = (
        "# TYPE dispatch_device_fault_level gauge\n"
        'dispatch_device_fault_level{device="a"} 2.0\n'
        'dispatch_device_fault_level{device="b"} 0.0\n'
    )
    assert metric(text, "dispatch_device_fault_level", device="a") == 2.0
    assert metric(text, "dispatch_device_fault_level", device="b") == 0.0
    with pytest.raises(KeyError):
        metric(text, "dispatch_device_fault_level")
