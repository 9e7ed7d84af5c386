"""The store's column-at-a-time row builders against the value-at-a-time definitions."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.store import codec, rows
from dispatch.store.db import insert_rows
from dispatch.types import Forecast, InputError, Plan, PlanCosts

_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)


@given(st.lists(_FLOATS, max_size=30))
def test_real_column_is_real_of_each_value(values: list[float]):
    assert rows.real_column(np.array(values, dtype=float)) == [codec.real(v) for v in values]


@given(st.integers(0, 6), st.integers(0, 5), st.data())
def test_real_rows_are_real_of_each_cell(n_rows: int, n_cols: int, data: st.DataObject):
    cells = data.draw(st.lists(_FLOATS, min_size=n_rows * n_cols, max_size=n_rows * n_cols))
    a = np.array(cells, dtype=float).reshape(n_rows, n_cols)
    assert rows.real_rows(a) == [[codec.real(v) for v in row] for row in a.tolist()]


@given(st.lists(st.text(max_size=6), min_size=0, max_size=4, unique=True), st.data())
def test_json_rows_are_the_text_json_dumps_writes(names: list[str], data: st.DataObject):
    n = data.draw(st.integers(0, 5))
    cells = data.draw(st.lists(_FLOATS, min_size=n * len(names), max_size=n * len(names)))
    a = np.array(cells, dtype=float).reshape(n, len(names))
    expected = [
        json.dumps({k: (v if math.isfinite(v) else None) for k, v in zip(names, row, strict=True)})
        for row in a.tolist()
    ]
    assert rows.json_rows(names, a) == expected


def test_json_rows_refuse_a_shape_that_does_not_match_the_names():
    with pytest.raises(InputError):
        rows.json_rows(["a", "b"], np.zeros((3, 1)))


@pytest.mark.parametrize("unit", ["ns", "us", "ms", "s"])
def test_stamps_ms_floor_every_unit_to_milliseconds(unit: str):
    index = pd.DatetimeIndex(
        ["1969-12-31 23:59:59.9996", "2018-01-01 00:15:00.0004", "2026-06-01 12:00"], tz="UTC"
    ).as_unit(unit)
    expected = [math.floor(t.value / 1e6) for t in index.as_unit("ns")]
    assert rows.stamps_ms(index) == expected
    assert rows.stamps_ms(index[2:]) == [codec.to_ms(index[2])]


def test_stamps_ms_refuse_a_naive_index():
    with pytest.raises(InputError):
        rows.stamps_ms(pd.DatetimeIndex(["2026-01-01"]))


def _plan(frame: pd.DataFrame) -> Plan:
    return Plan("optimal", frame, PlanCosts(0.0, 0.0, 0.0, 0.0, 0.0), 0.0, 0.0, 0.0, "test")


def test_plan_slot_is_the_frame_row_and_new_plans_read_their_own_frame():
    idx = pd.date_range("2026-01-01", periods=3, freq="15min", tz="UTC")
    frame = pd.DataFrame({"p_batt_kw": [1.0, -2.5, np.nan], "soc_frac": [0.1, 0.2, 0.3]}, idx)
    plan = _plan(frame)
    for pos in range(3):
        got, want = plan.slot(pos), frame.iloc[pos].to_dict()
        assert got.keys() == want.keys()
        assert all(
            g == w or (math.isnan(g) and math.isnan(w))
            for g, w in zip(got.values(), want.values(), strict=True)
        )
    changed = dataclasses.replace(plan, frame=frame.assign(p_batt_kw=[7.0, 8.0, 9.0]))
    assert changed.slot(1)["p_batt_kw"] == 8.0 and plan.slot(1)["p_batt_kw"] == -2.5
    with pytest.raises(IndexError):
        plan.slot(3)


def test_plan_slot_of_a_frame_with_text_is_the_pandas_row():
    idx = pd.date_range("2026-01-01", periods=2, freq="15min", tz="UTC")
    frame = pd.DataFrame({"p_batt_kw": [1.0, 2.0], "note": ["a", "b"]}, idx)
    assert _plan(frame).slot(1) == {"p_batt_kw": 2.0, "note": "b"}


def test_forecast_slots_equal_a_forecast_made_of_the_cut_frames():
    idx = pd.date_range("2026-01-01", periods=6, freq="15min", tz="UTC")
    frame = pd.DataFrame(
        {
            "p_pv_kw": np.arange(6.0),
            "p_load_kw": np.arange(6.0) + 10,
            "ci_g_per_kwh": np.full(6, 300.0),
        },
        idx,
    )
    q = pd.DataFrame({0.9: np.arange(6.0) + 20}, idx)
    paths = pd.DataFrame({"a": np.arange(6.0) + 30, "b": np.arange(6.0) + 40}, idx)
    whole = Forecast(frame, q, None, paths, pd.Timestamp("2026-01-01", tz="UTC"))
    part = whole.slots(2, 5)
    fresh = Forecast(frame.iloc[2:5], q.iloc[2:5], None, paths.iloc[2:5], whole.issued_at)
    pd.testing.assert_frame_equal(part.frame, fresh.frame)
    pd.testing.assert_frame_equal(part.load_quantiles_kw, fresh.load_quantiles_kw)
    pd.testing.assert_frame_equal(part.load_scenarios_kw, fresh.load_scenarios_kw)
    assert part.pv_quantiles_kw is None and part.step == fresh.step
    assert part.issued_at == fresh.issued_at
    for c in ("p_pv_kw", "p_load_kw", "ci_g_per_kwh"):
        np.testing.assert_array_equal(part.column(c), fresh.column(c))
    with pytest.raises(KeyError):
        part.column("price_import_per_kwh")
    for start, stop in ((4, 5), (-1, 3), (3, 7)):
        with pytest.raises(InputError):
            whole.slots(start, stop)


def test_insert_rows_chunks_to_the_variable_limit_in_order(tmp_path):
    conn = sqlite3.connect(tmp_path / "t.sqlite3", isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b REAL, c TEXT)")
    rows = [(i, i * 0.5 if i % 3 else None, f"r{i}") for i in range(100)]
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 7)  # two rows of three per statement
    insert_rows(conn, "INSERT INTO t (a, b, c) VALUES", rows, 3)
    assert conn.execute("SELECT a, b, c FROM t ORDER BY id").fetchall() == rows
    assert [r[0] for r in conn.execute("SELECT id FROM t ORDER BY id")] == list(range(1, 101))
    with pytest.raises(InputError):
        insert_rows(conn, "INSERT INTO t (a, b, c) VALUES", [(1, 2.0, "x"), (1, 2.0)], 3)
