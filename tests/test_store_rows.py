"""The store's column-at-a-time row builders against the value-at-a-time definitions."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.store import codec, rows
from dispatch.types import InputError

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
