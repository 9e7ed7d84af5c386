"""Ledger integrity: canonical form, hash chain, tamper detection, offsets registry."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.carbon import accounting as carbon
from dispatch.carbon import chain as ledger
from dispatch.carbon import factors, offsets
from dispatch.types import InputError
from tests.factories import config

CFG = config(carbon={"grid_ci_g_per_kwh": 450.0})


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2026-01-01T00:00Z", periods=n, freq="15min")
    load = rng.uniform(50, 150, n)
    pv = np.maximum(rng.normal(40, 40, n), 0)
    batt = rng.uniform(-30, 30, n)
    ci = rng.uniform(100, 800, n)
    ci[::7] = np.nan  # some intervals fall back to the configured factor
    return pd.DataFrame(
        {
            "p_load_kw": load,
            "p_pv_kw": pv,
            "p_batt_kw": batt,
            "p_grid_kw": load - pv - batt,
            "ci_g_per_kwh": ci,
        },
        index=idx,
    )


def _records(n: int, seed: int = 0) -> list[ledger.IntervalRecord]:
    acc = carbon.interval_accounting(_frame(n, seed), CFG)
    ref = factors.reference(factors.configured(CFG.carbon.grid_ci_g_per_kwh, None, {}))
    return ledger.records_from_accounts(
        acc, pd.Timedelta("15min"), carbon.METHOD_VERSION, factor_ref=ref
    )  # format 3


CHAIN = ledger.chain(_records(20))


def test_canonical_is_sorted_json_with_fixed_floats():
    text = ledger.canonical(CHAIN[0])
    data = json.loads(text)
    assert list(data) == sorted(data) and " " not in text
    assert "prev_hash" not in data and "record_hash" not in data
    assert data["start_utc"] == "2026-01-01T00:00:00Z" and data["end_utc"] == "2026-01-01T00:15:00Z"
    for key in ("import_kwh", "location_kg_co2", "ci_g_per_kwh"):
        assert len(text.split(f'"{key}":')[1].split(",")[0].split(".")[1]) == ledger.DECIMALS
    zero = CHAIN[0]._replace(export_kwh=-0.0, pv_kwh=-1e-9)
    assert '"export_kwh":0.000000' in ledger.canonical(zero)
    assert '"pv_kwh":0.000000' in ledger.canonical(zero)


def test_hashes_follow_the_definition():
    first, second = CHAIN[0], CHAIN[1]
    assert first.prev_hash == ledger.GENESIS and second.prev_hash == first.record_hash
    expected = hashlib.sha256((ledger.GENESIS + ledger.canonical(first)).encode()).hexdigest()
    assert first.record_hash == expected
    inputs = {
        k: v for k, v in json.loads(ledger.canonical(first)).items() if k in ledger.INPUT_FIELDS
    }
    assert len(inputs) == len(ledger.INPUT_FIELDS)
    assert first.inputs_hash == ledger.inputs_hash(first)


def test_untouched_chain_verifies():
    result = ledger.verify(CHAIN, expected_head=CHAIN[-1].record_hash)
    assert result.ok and result.index is None and result.reason == "ok"
    assert ledger.verify([]).ok


@pytest.mark.parametrize("field", ["import_kwh", "ci_g_per_kwh", "ci_source", "end_utc"])
def test_edited_input_is_located(field):
    bad = list(CHAIN)
    value = (
        "series-x"
        if field == "ci_source"
        else ("2026-01-01T03:00:00Z" if field == "end_utc" else 1.5)
    )
    bad[7] = bad[7]._replace(**{field: value})
    result = ledger.verify(bad)
    assert (result.index, result.ok) == (7, False) and "inputs_hash" in result.reason


def test_edited_computed_value_is_located():
    bad = list(CHAIN)
    bad[11] = bad[11]._replace(location_kg_co2=bad[11].location_kg_co2 + 0.000001)
    result = ledger.verify(bad)
    assert result.index == 11 and "record_hash" in result.reason


def test_rewritten_row_with_fresh_hashes_is_named_not_the_next():
    bad = list(CHAIN)
    edited = bad[5]._replace(location_kg_co2=0.0)
    bad[5] = ledger.chain([edited], prev_hash=bad[4].record_hash)[0]
    result = ledger.verify(bad)  # intervals 5 and 6 are adjacent: nothing missing between
    assert result.index == 5 and "hashes were recomputed" in result.reason
    seqs = list(range(1, 21))
    assert ledger.verify(bad, seqs=seqs).index == 5  # consecutive row numbers say the same


def test_a_row_inserted_before_the_first_is_named_not_the_genuine_first():
    forged = ledger.chain([CHAIN[0]._replace(start_utc="2025-12-31T23:45:00Z",
                                             end_utc="2026-01-01T00:00:00Z")])
    bad = forged + list(CHAIN)
    result = ledger.verify(bad)
    assert result.index == 0 and "inserted before the first" in result.reason
    result = ledger.verify(bad, seqs=[0, *range(1, 21)])  # the store numbers from 1
    assert result.index == 0 and "inserted row: seq 0" in result.reason


def test_a_gap_in_the_row_numbers_is_a_deletion_and_a_lower_number_an_insertion():
    seqs = [*range(1, 8), *range(9, 22)]  # seq 8 is gone
    assert ledger.verify(list(CHAIN), seqs=seqs).index == 7
    assert "rows seq 8..8 are missing" in ledger.verify(list(CHAIN), seqs=seqs).reason


def test_a_rechained_row_dated_inside_the_ledger_is_out_of_time_order():
    back = CHAIN[3]._replace(start_utc="2026-01-01T00:15:00Z", end_utc="2026-01-01T00:30:00Z")
    bad = list(CHAIN[:3]) + ledger.chain([back, *CHAIN[3:]], CHAIN[2].record_hash)[:1]
    result = ledger.verify(bad)
    assert result.index == 3 and "out of time order" in result.reason


@pytest.mark.parametrize("i", [0, 9, 19])
def test_deleted_row_is_located(i):
    bad = CHAIN[:i] + CHAIN[i + 1 :]
    result = ledger.verify(bad, expected_head=CHAIN[-1].record_hash)
    assert result.index == i
    assert "deleted" in result.reason or "removed from the end" in result.reason


def test_swapped_rows_are_located():
    bad = list(CHAIN)
    bad[3], bad[8] = bad[8], bad[3]
    result = ledger.verify(bad)
    assert result.index == 3 and "out of order" in result.reason
    adjacent = list(CHAIN)
    adjacent[12], adjacent[13] = adjacent[13], adjacent[12]
    result = ledger.verify(adjacent)
    assert result.index == 12 and "out of order" in result.reason


def test_not_finite_value_is_reported():
    bad = list(CHAIN)
    bad[2] = bad[2]._replace(import_kwh=float("nan"))
    result = ledger.verify(bad)
    assert result.index == 2 and "not finite" in result.reason
    with pytest.raises(InputError, match="not finite"):
        ledger.chain([CHAIN[0]._replace(ci_g_per_kwh=float("inf"))])


def test_append_continues_the_chain():
    records = _records(20)
    head = ledger.chain(records[:12])
    tail = ledger.chain(records[12:], prev_hash=head[-1].record_hash)
    assert head + tail == CHAIN


def test_records_round_trip_through_a_frame():
    frame = ledger.records_frame(CHAIN)
    assert frame.index[0] == pd.Timestamp("2026-01-01T00:00Z") and len(frame) == 20
    assert frame["import_kwh"].iloc[3] == CHAIN[3].import_kwh


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 19),
    st.sampled_from(["load_kwh", "export_kwh", "nopv_kg_co2"]),
    st.floats(-1e4, 1e4).filter(lambda x: abs(x) > 1e-6),
)
def test_any_edit_is_detected_at_its_row(i, field, delta):
    bad = list(CHAIN)
    bad[i] = bad[i]._replace(**{field: round(getattr(bad[i], field) + delta, 6)})
    assert ledger.verify(bad).index == i


def test_an_untouched_year_of_15_minute_records_verifies():
    records = _records(35_040, seed=1)
    chained = ledger.chain(records)
    result = ledger.verify(chained, expected_head=chained[-1].record_hash)
    assert result.ok, result.reason


OFFSET = offsets.OffsetRecord(
    "CCER",
    "CCER-2025-000123",
    2025,
    120.0,
    dt.date(2026, 2, 1),
    dt.date(2026, 3, 1),
    "national CCER registry",
)


def test_valid_registry_has_no_problems():
    held = offsets.OffsetRecord("carbon_inclusive", "JS-PH-77", 2026, 3.5, dt.date(2026, 5, 2))
    assert offsets.check_offsets([OFFSET, held]) == []
    offsets.validate_offsets([OFFSET, held])


def test_double_retirement_is_rejected():
    again = offsets.OffsetRecord(
        "CCER", "CCER-2025-000123", 2025, 120.0, dt.date(2026, 2, 1), dt.date(2026, 9, 1)
    )
    problems = offsets.check_offsets([OFFSET, again])
    assert problems == [
        "offset 1 (CCER 'CCER-2025-000123'): retired twice (double retirement), see offset 0"
    ]
    with pytest.raises(InputError, match="double retirement"):
        offsets.validate_offsets([OFFSET, again])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tonnes": 0.0}, "tonnes = 0.0 must be > 0"),
        ({"tonnes": -2.0}, "must be > 0"),
        ({"credit_type": "XYZ"}, "credit_type must be one of"),
        ({"serial": " "}, "serial is empty"),
        ({"retired_on": dt.date(2026, 1, 1)}, "before purchased_on"),
        ({"vintage_year": 2027}, "after its retirement"),
    ],
)
def test_offset_problems(change, message):
    from dataclasses import replace

    problems = offsets.check_offsets([replace(OFFSET, **change)])
    assert any(message in p for p in problems), problems


def test_a_segment_verifies_from_its_predecessor():
    assert ledger.verify(CHAIN[8:], genesis=CHAIN[7].record_hash).ok
    assert ledger.verify(CHAIN[8:]).index == 0


def test_reports_add_up_the_hashed_values():
    nudged = [r._replace(import_kwh=r.import_kwh + 2e-7) for r in CHAIN]
    assert ledger.verify(nudged).ok  # below the last decimal: neither hashed...
    pd.testing.assert_frame_equal(ledger.records_frame(nudged), ledger.records_frame(CHAIN))
    assert ledger.verify([CHAIN[0]._replace(import_kwh=CHAIN[0].import_kwh + 6e-7)]).index == 0
