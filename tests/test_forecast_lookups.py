"""The forecast job's fast look-ups give what the pandas operations they replace give."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.forecast import intraday

STEP = pd.Timedelta(minutes=15)
START = pd.Timestamp("2018-03-24T00:00Z")


def _reindexed(history: pd.Series, index: pd.DatetimeIndex) -> np.ndarray:
    """The reference: ``day_before`` as pandas reindexing says it."""
    days = (index - index[0]) // intraday.DAY + 1
    source = index - pd.to_timedelta(np.asarray(days), unit="D")
    return history[history.index < index[0]].reindex(source).to_numpy(dtype=float)


@settings(max_examples=60, deadline=None)
@given(
    kept=st.lists(st.booleans(), min_size=1, max_size=400),
    first=st.integers(0, 500),
    n=st.integers(1, 250),
    reverse=st.booleans(),
)
def test_day_before_is_the_reindexed_history(kept, first, n, reverse):
    stamps = pd.date_range(START, periods=len(kept), freq=STEP)[np.asarray(kept)]
    history = pd.Series(np.arange(len(stamps)) * 1.5 - 3.0, index=stamps)
    if reverse:
        history = history.iloc[::-1]
    index = pd.date_range(START + first * STEP, periods=n, freq=STEP)
    expected = _reindexed(history, index)
    assert np.array_equal(intraday.day_before(history, index), expected, equal_nan=True)


def test_values_at_reads_nothing_at_or_after_before_ns():
    stamps = pd.date_range(START, periods=8, freq=STEP)
    history = pd.Series(np.arange(8.0), index=stamps)
    at = intraday.stamps_ns(stamps)
    got = intraday.values_at(history, at, before_ns=int(at[5]))
    assert np.array_equal(got, [0, 1, 2, 3, 4, np.nan, np.nan, np.nan], equal_nan=True)
    assert np.isnan(intraday.values_at(history.iloc[:0], at)).all()


def _seasonal_reference(series, index, timezone, lag_days):
    """``load.seasonal_naive`` as pandas said it before the look-ups."""
    wall = index.tz_convert(timezone).tz_localize(None) - pd.Timedelta(days=lag_days)
    back = wall.tz_localize(timezone, ambiguous="NaT", nonexistent="shift_forward")
    back = back.tz_convert("UTC")
    back = back.where(~back.isna(), index - pd.Timedelta(days=lag_days))
    return series.reindex(back).to_numpy(dtype=float)


def _fallback_reference(series, index, tz):
    out = np.full(len(index), np.nan)
    for lag in (7, 14, 21, 28, 1, 2, 3, 4, 5, 6):
        gap = np.isnan(out)
        if not gap.any():
            break
        out[gap] = _seasonal_reference(series, index[gap], tz, lag)
    return np.where(np.isnan(out), float(np.nanmean(series.to_numpy())), out)


@settings(max_examples=40, deadline=None)
@given(
    start_day=st.sampled_from(["2018-03-20", "2018-03-26", "2018-10-24", "2018-10-29"]),
    hours=st.integers(0, 23),
    missing=st.sets(st.integers(0, 40 * 96 - 1), max_size=300),
    n=st.integers(1, 200),
)
def test_seasonal_naive_and_fallback_match_pandas_across_dst(start_day, hours, missing, n):
    from dispatch.forecast import load

    first = pd.Timestamp(start_day, tz="UTC") - pd.Timedelta(days=30)
    stamps = pd.date_range(first, periods=40 * 96, freq=STEP)
    values = np.sin(np.arange(len(stamps)) / 7.0) * 100 + 500
    values[sorted(missing)] = np.nan
    series = pd.Series(values, index=stamps)
    issue = pd.Timestamp(start_day, tz="UTC") + pd.Timedelta(hours=hours)
    index = pd.date_range(issue, periods=n, freq=STEP)
    for lag in (1, 7, 28):
        got = load.seasonal_naive(series, index, "Europe/Berlin", lag)
        ref = _seasonal_reference(series, index, "Europe/Berlin", lag)
        assert np.array_equal(got, ref, equal_nan=True)
    got = load._fallback(series, index, "Europe/Berlin")
    assert np.array_equal(got, _fallback_reference(series, index, "Europe/Berlin"), equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(
    kept=st.lists(st.booleans(), min_size=2, max_size=300),
    nan_at=st.sets(st.integers(0, 299), max_size=30),
    now_slot=st.integers(1, 320),
    since_slot=st.one_of(st.none(), st.integers(0, 200)),
    offset_min=st.sampled_from([0, 5]),
)
def test_prepare_history_matches_the_resampled_means(
    kept, nan_at, now_slot, since_slot, offset_min
):
    from dispatch.forecast import load
    from dispatch.types import InputError

    kept[:2] = [True, True]  # two neighbours: the history's step is the plan step
    stamps = pd.date_range(START, periods=len(kept), freq=STEP)[np.asarray(kept)]
    values = np.arange(len(stamps)) * 2.5 + 1.0
    values[[i for i in nan_at if i < len(values)]] = np.nan
    history = pd.Series(values, index=stamps + pd.Timedelta(minutes=offset_min))
    now = START + now_slot * STEP + pd.Timedelta(minutes=3)
    since = None if since_slot is None else START + since_slot * STEP
    expected = history[history.index < now]
    if since is not None:
        expected = expected[expected.index >= since]
    try:
        got = load.prepare_history(history, now, STEP, since=since)
    except InputError:
        grid = expected.resample(STEP, origin="epoch", closed="left", label="left").mean()
        grid = grid[grid.index + STEP <= now]
        assert not np.isfinite(grid.to_numpy()).any()
        return
    grid = expected.resample(STEP, origin="epoch", closed="left", label="left").mean()
    grid = grid[grid.index + STEP <= now].rename("p_load_kw")
    pd.testing.assert_series_equal(got, grid, check_freq=False, check_exact=True)


@settings(max_examples=30, deadline=None)
@given(
    n_quantiles=st.integers(0, 2),
    n_paths=st.integers(0, 3),
    n=st.integers(2, 50),
    seed=st.integers(0, 1000),
)
def test_the_forecast_frame_splits_as_the_pandas_splits(n_quantiles, n_paths, n, seed):
    from dispatch import pipeline

    rng = np.random.default_rng(seed)
    index = pd.date_range(START, periods=n, freq=STEP)
    names = ["p_pv_kw", "p_load_kw"] + [f"p_load_kw@{0.9 + 0.05 * k:g}" for k in range(n_quantiles)]
    names += [f"p_load_kw#{k}" for k in range(n_paths)] + ["day_ahead_per_kwh"]
    frame = pd.DataFrame(rng.normal(size=(n, len(names))), index=index, columns=names)
    out, quantiles = pipeline.split_load_quantiles(frame.copy())
    out, paths = pipeline.split_load_scenarios(out)
    columns = {c: frame[c].to_numpy() for c in frame.columns}
    got_columns, got_quantiles, got_paths = pipeline._split_columns(frame.index, columns)
    got_out = pd.DataFrame(got_columns, index=frame.index)
    pd.testing.assert_frame_equal(got_out, out, check_exact=True)
    for got, expected in ((got_quantiles, quantiles), (got_paths, paths)):
        if expected is None:
            assert got is None
        else:
            pd.testing.assert_frame_equal(got, expected, check_exact=True)


@settings(max_examples=30, deadline=None)
@given(
    load_nan=st.sets(st.integers(0, 29), max_size=10),
    pv_nan=st.sets(st.integers(0, 29), max_size=10),
    shifted=st.booleans(),
)
def test_the_measured_net_load_is_taken_where_both_are_known(load_nan, pv_nan, shifted):
    from dispatch.pipeline import measured_net_kw

    index = pd.date_range(START, periods=30, freq=STEP)
    load = pd.Series(np.arange(30.0) * 3 + 100, index=index)
    pv = pd.Series(np.arange(30.0), index=index + (STEP if shifted else pd.Timedelta(0)))
    load.iloc[sorted(load_nan)] = np.nan
    pv.iloc[sorted(pv_nan)] = np.nan
    both = pd.concat([load, pv], axis=1).dropna()
    expected = both.iloc[:, 0] - both.iloc[:, 1]
    got = measured_net_kw(load, pv)
    assert np.array_equal(got.to_numpy(), expected.to_numpy())
    assert got.index.equals(expected.index)


@settings(max_examples=30, deadline=None)
@given(
    start_day=st.sampled_from(["2018-03-23", "2018-10-26", "2018-06-01"]),
    slots=st.lists(st.integers(0, 6 * 96), min_size=1, max_size=400, unique=True),
    values=st.lists(st.floats(-1e3, 1e4), min_size=400, max_size=400),
)
def test_the_day_table_is_the_one_of_the_stamp_by_stamp_keys(start_day, slots, values):
    from dispatch.forecast import load

    tz = "Europe/Berlin"
    index = pd.Timestamp(start_day, tz="UTC") + pd.to_timedelta(sorted(slots), "s") * 900
    index = pd.DatetimeIndex(index)
    step_ns = STEP.value
    got = load._local_keys(index, tz, STEP)
    expected = load._stamp_keys(intraday.stamps_ns(index), tz, step_ns)
    for a, b in zip(got, expected, strict=True):
        assert np.array_equal(a, b)
    series = pd.Series(values[: len(index)], index=index)
    series.iloc[::7] = np.nan
    dates, table = load._day_table(series, tz, STEP)
    uniq, row = np.unique(expected[0], return_inverse=True)
    total, count = np.zeros((len(uniq), 96)), np.zeros((len(uniq), 96))
    ok = np.isfinite(series.to_numpy())
    np.add.at(total, (row[ok], expected[1][ok]), series.to_numpy()[ok])
    np.add.at(count, (row[ok], expected[1][ok]), 1.0)
    with np.errstate(invalid="ignore"):
        assert np.array_equal(table, total / count, equal_nan=True)
    assert np.array_equal(dates, uniq)


def test_a_float_frame_and_an_object_frame_complete_alike():
    from dispatch import pipeline
    from dispatch.config import load_config

    config = load_config("configs/germany-factory-dayahead.toml")
    index = pd.date_range(START, periods=12, freq=STEP)
    rng = np.random.default_rng(3)
    names = ["p_pv_kw", "p_load_kw", "p_load_kw@0.98", "day_ahead_per_kwh", "ci_g_per_kwh"]
    frame = pd.DataFrame(rng.uniform(0, 1, size=(12, 5)), index=index, columns=names)
    fast = pipeline.complete_forecast(config, frame)
    slow = pipeline.complete_forecast(config, frame.astype({"ci_g_per_kwh": "float32"}))
    expected = slow.frame.astype({"ci_g_per_kwh": "float64"})
    expected["ci_g_per_kwh"] = frame["ci_g_per_kwh"]
    pd.testing.assert_frame_equal(fast.frame, expected, check_exact=True)
    pd.testing.assert_frame_equal(fast.load_quantiles_kw, slow.load_quantiles_kw, check_exact=True)


@settings(max_examples=20, deadline=None)
@given(n_paths=st.integers(0, 2), with_ci=st.booleans(), seed=st.integers(0, 1000))
def test_columns_complete_as_the_frame_through_the_pandas_path(n_paths, with_ci, seed):
    """The plan job's arrays-by-name path gives the forecast that the object-frame (pandas)
    path gives for the same columns: frame, quantiles and paths, exactly."""
    from dispatch import pipeline
    from dispatch.config import load_config

    config = load_config("configs/germany-factory-dayahead.toml")
    index = pd.date_range(START, periods=12, freq=STEP)
    rng = np.random.default_rng(seed)
    names = ["p_pv_kw", "p_load_kw", "p_load_kw@0.98"] + [f"p_load_kw#{k}" for k in range(n_paths)]
    names += ["day_ahead_per_kwh"] + (["ci_g_per_kwh"] if with_ci else [])
    frame = pd.DataFrame(rng.uniform(0, 1, size=(12, len(names))), index=index, columns=names)
    issued = START - STEP
    fast = pipeline.complete_columns(config, index, {c: frame[c].to_numpy() for c in names},
                                     issued_at=issued)
    slow = pipeline.complete_forecast(config, frame.astype({"p_load_kw": object}),
                                      issued_at=issued)
    expected = slow.frame.astype({"p_load_kw": "float64"})
    pd.testing.assert_frame_equal(fast.frame, expected, check_exact=True)
    pd.testing.assert_frame_equal(fast.load_quantiles_kw, slow.load_quantiles_kw, check_exact=True)
    if n_paths:
        pd.testing.assert_frame_equal(fast.load_scenarios_kw, slow.load_scenarios_kw,
                                      check_exact=True)
    else:
        assert fast.load_scenarios_kw is None and slow.load_scenarios_kw is None
    assert fast.issued_at == issued


def test_the_clear_sky_days_give_the_chain_per_array_calibrated_and_off_the_grid():
    import dataclasses

    from dispatch.config import load_config
    from dispatch.forecast import calibrate
    from dispatch.pipeline.clear_sky import ClearSkyPV, chain

    config = load_config("configs/germany-factory-dayahead.toml")
    fields = {f.name for f in dataclasses.fields(calibrate.CalibrationFit)}
    values = {"scale": 0.9, "clip_kw": 4000.0, "excluded": {}}
    fit = calibrate.CalibrationFit(**{k: values.get(k, 0) for k in fields})
    cache = ClearSkyPV(config, fit)
    on_grid = pd.date_range("2018-06-20T18:00Z", periods=96, freq=STEP)  # two UTC days
    off_grid = on_grid + pd.Timedelta(minutes=5)
    for index in (on_grid, off_grid, on_grid[3:7]):
        for f in (None, fit):
            direct = chain(config, index, None, f)
            pd.testing.assert_frame_equal(chain(config, index, None, f, cache), direct,
                                          check_exact=False, rtol=1e-12, atol=1e-9)
    assert chain(config, on_grid, None, None)["p_pv_kw"].max() > 4000.0 / 0.9  # the clip bites


@settings(max_examples=40, deadline=None)
@given(
    start_day=st.sampled_from(["2018-03-23", "2018-10-26", "2018-12-30", "2020-02-27"]),
    tz=st.sampled_from(["Europe/Berlin", "Asia/Seoul", "America/New_York"]),
    first=st.integers(0, 4 * 96),
    slots=st.integers(1, 300),
    offset_min=st.sampled_from([0, 0, 7]),
)
def test_local_weekdays_are_pandas_day_of_week(start_day, tz, first, slots, offset_min):
    from dispatch.forecast import load

    start = pd.Timestamp(start_day, tz="UTC") + first * STEP + pd.Timedelta(minutes=offset_min)
    index = pd.date_range(start, periods=slots, freq=STEP)
    expected = index.tz_convert(tz).day_of_week.to_numpy()
    assert np.array_equal(load.local_weekdays(index, tz, STEP), expected)


@settings(max_examples=60, deadline=None)
@given(
    day=st.sampled_from(["2018-03-24", "2018-10-27", "2018-06-01", "2018-11-03", "2018-03-10"]),
    picks=st.sets(st.integers(0, 4 * 96 - 1), min_size=1, max_size=60),
    tz=st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Seoul"]),
    off_grid_min=st.sampled_from([0, 0, 5]),
)
def test_lagged_stamps_from_day_tables_match_stamp_by_stamp(day, picks, tz, off_grid_min):
    """The per-UTC-day tables give each stamp's lagged stamp as computed alone, for any subset
    of slots across DST changes (and off the grid, where the tables are not used)."""
    from dispatch.forecast import load

    grid = pd.date_range(pd.Timestamp(day, tz="UTC"), periods=4 * 96, freq=STEP)
    index = grid[sorted(picks)] + pd.Timedelta(minutes=off_grid_min)
    lags = (7, 14, 1, 2)
    got = load._lagged_ns(index, tz, lags, STEP.value)
    alone = [load._lagged_ns(index[i : i + 1], tz, lags)[:, 0] for i in range(len(index))]
    one_by_one = np.stack(alone, axis=1)
    assert got.shape == (len(lags), len(index))
    assert np.array_equal(got, one_by_one)


@settings(max_examples=40, deadline=None)
@given(
    start_day=st.sampled_from(["2018-03-23", "2018-10-26", "2018-06-01", "2018-11-02"]),
    first=st.integers(0, 3 * 96),
    n=st.integers(2, 5 * 96),
    tz=st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Seoul"]),
)
def test_a_run_of_slots_takes_the_keys_stamp_by_stamp_gives(start_day, first, n, tz):
    """A run of consecutive slots (the history, the horizon) across days and DST changes:
    the keys sliced from the days end to end are those of each stamp alone; the answer is
    the caller's own (changing it leaves the next answer alone)."""
    from dispatch.forecast import load

    index = pd.date_range(pd.Timestamp(start_day, tz="UTC") + first * STEP, periods=n, freq=STEP)
    got = load._local_keys(index, tz, STEP)
    expected = load._stamp_keys(intraday.stamps_ns(index), tz, STEP.value)
    for a, b in zip(got, expected, strict=True):
        assert np.array_equal(a, b)
    got[1][:] = -1
    again = load._local_keys(index, tz, STEP)
    assert np.array_equal(again[1], expected[1])


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 40),
    k=st.integers(0, 5),
    odd=st.sampled_from([None, "float32", "int64", "scalar"]),
    seed=st.integers(0, 1000),
)
def test_the_stacked_float_frame_is_the_dict_constructed_frame(n, k, odd, seed):
    from dispatch.types import float_frame

    rng = np.random.default_rng(seed)
    index = pd.date_range(START, periods=n, freq=STEP)
    columns: dict[str, object] = {f"c{i}": rng.normal(size=n) for i in range(k)}
    columns["p_load_kw@0.9"] = np.full(n, np.nan)
    if odd == "scalar":
        columns["x"] = 2.5
    elif odd is not None:
        columns["x"] = np.arange(n).astype(odd)
    got = float_frame(columns, index)
    expected = pd.DataFrame(columns, index=index)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got.index is index or got.index.equals(index)


@given(st.lists(st.integers(0, 6), max_size=40), st.booleans())
def test_the_unique_dates_of_a_sorted_run_are_numpy_unique(days, keep_order):
    from dispatch.forecast import load

    values = np.asarray(days if keep_order else sorted(days), dtype="datetime64[D]")
    got, expected = load._sorted_unique(values), np.unique(values, return_inverse=True)
    for a, b in zip(got, expected, strict=True):
        assert np.array_equal(a, b)
