"""File and configuration sources of ``dispatch.sources``: CSV series, TMY3, EPW, NSRDB PSM4,
constant and profile carbon intensity, resampling and the small HTTP helpers."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib
import pytest
import requests
from pvlib import iotools

from dispatch.sources import (
    HttpClient,
    RetryPolicy,
    read_ci_csv,
    read_epw,
    read_nsrdb_psm4,
    read_price_csv,
    read_tmy3,
    read_weather_csv,
    resample_means,
)
from dispatch.sources.http import safe_url
from dispatch.types import InputError, SourceError

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
TMY3 = Path(pvlib.__path__[0]) / "data" / "723170TYA.CSV"
NSRDB = "nsrdb_pvlib_tests/nsrdb_psm4_40.53N_108.54W_2023_30min.csv"
HEADER = "time,ghi,dni,dhi,temp_air,wind_speed\n"
ROWS = [
    "2026-06-21T12:00:00+02:00,612.5,701.0,118.2,21.4,3.2",
    "2026-06-21T12:15:00+02:00,640.0,722.4,121.0,21.7,3.4",
    "2026-06-21T12:30:00+02:00,655.1,730.9,123.6,22.0,3.1",
]


def write(tmp_path: Path, text: str, name: str = "series.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------- CSV series


def test_weather_csv_good():
    frame = read_weather_csv(FIXTURES / "weather.csv")
    assert list(frame.columns) == ["ghi", "dni", "dhi", "temp_air", "wind_speed"]
    assert str(frame.index.dtype) == "datetime64[ns, UTC]"
    assert frame.index[0] == pd.Timestamp("2026-06-21T10:00Z")  # 12:00+02:00
    assert frame.iloc[1].tolist() == [640.0, 722.4, 121.0, 21.7, 3.4]


@pytest.mark.parametrize(
    ("rows", "header", "pattern"),
    [
        (ROWS, "time,ghi,dni,temp_air,wind_speed\n", r"missing column\(s\) \['dhi'\]"),
        ([ROWS[0], ROWS[2], ROWS[1]], HEADER,
         r"line 4: time 2026-06-21T10:15:00\+00:00 is not after line 3"),
        ([ROWS[0], ROWS[1], ROWS[1]], HEADER,
         r"line 4: duplicate time 2026-06-21T10:15:00\+00:00 \(also line 3\)"),
        ([ROWS[0], ROWS[1].replace("640.0", ""), ROWS[2]], HEADER,
         r"line 3 \(time 2026-06-21T10:15:00\+00:00\): column ghi is missing"),
        ([ROWS[0], ROWS[1].replace("640.0", "NaN"), ROWS[2]], HEADER,
         r"line 3 \(time 2026-06-21T10:15:00\+00:00\): column ghi is missing or not a finite"),
        ([ROWS[0], ROWS[1].replace("+02:00", ""), ROWS[2]], HEADER,
         r"line 3: time '2026-06-21T12:15:00' needs a UTC offset"),
        ([ROWS[0], ROWS[1].replace("2026-06-21T12", "2026-13-21T12"), ROWS[2]], HEADER,
         r"line 3: time .* is not ISO 8601"),
        ([ROWS[0], ROWS[2]], HEADER + ROWS[1].replace("12:15", "11:00") + "\n",
         r"irregular step"),
        ([ROWS[0], ROWS[1].replace("640.0", "640000"), ROWS[2]], HEADER,
         r"wrong units\? ghi = 640000 at 2026-06-21T10:15:00\+00:00"),
        ([ROWS[0], ROWS[1].replace("21.7", "294.9"), ROWS[2]], HEADER, r"kelvin"),
        ([ROWS[0], ROWS[1].replace("3.4", "inf"), ROWS[2]], HEADER,
         r"line 3 .*column wind_speed is missing or not a finite number \('inf'\)"),
        (["2026-06-21,612.5,701.0,118.2,21.4,3.2", ROWS[1]], HEADER,
         r"line 2: time '2026-06-21' needs a UTC offset"),
    ],
    ids=["missing-column", "unsorted", "duplicate", "empty", "nan", "naive", "bad-time",
         "irregular", "irradiance-units", "kelvin", "inf", "date-only"],
)
def test_weather_csv_errors_name_line_and_time(tmp_path, rows, header, pattern):
    path = write(tmp_path, header + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match=pattern) as err:
        read_weather_csv(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="cannot read the file"):
        read_weather_csv(tmp_path / "absent.csv")


def test_price_csv_per_kwh_across_dst():
    frame = read_price_csv(FIXTURES / "prices_per_kwh.csv")
    assert list(frame.columns) == ["price_per_kwh"]
    assert frame.index.tolist() == list(pd.date_range("2026-03-28T23:00Z", periods=4, freq="1h"))
    assert frame["price_per_kwh"].tolist() == [0.0924, 0.0881, 0.0850, -0.0050]


def test_price_csv_per_mwh_converted():
    frame = read_price_csv(FIXTURES / "prices_eur_per_mwh.csv")
    assert frame["price_per_kwh"].tolist() == pytest.approx([0.09241, -0.00496])


def test_price_csv_per_mwh_values_in_per_kwh_column_refused(tmp_path):
    path = write(tmp_path, "time,price_per_kwh\n2026-06-21T00:00Z,0.09\n2026-06-21T01:00Z,92.4\n")
    with pytest.raises(InputError, match=r"price_per_kwh = 92.4 .* look like per-MWh"):
        read_price_csv(path)
    assert read_price_csv(path, max_abs_per_kwh=100.0).iloc[1, 0] == 92.4  # e.g. JPY


def test_price_csv_without_price_column(tmp_path):
    path = write(tmp_path, "time,cost\n2026-06-21T00:00Z,0.09\n2026-06-21T01:00Z,0.1\n")
    with pytest.raises(InputError, match="missing column 'price_per_kwh'"):
        read_price_csv(path)


def test_ci_csv_good_and_negative_refused(tmp_path):
    frame = read_ci_csv(FIXTURES / "ci.csv")
    assert frame["ci_g_per_kwh"].tolist() == [412.0, 398.5, 380.0]
    assert frame.index[0] == pd.Timestamp("2026-06-21T00:00Z")
    path = write(tmp_path, "time,ci_g_per_kwh\n2026-06-21T00:00Z,412\n2026-06-21T01:00Z,-1\n")
    with pytest.raises(InputError, match=r"ci_g_per_kwh = -1 at 2026-06-21T01:00:00\+00:00"):
        read_ci_csv(path)


# ------------------------------------------------------------------- pvlib.iotools formats


def test_tmy3_from_pvlib_data_moves_hour_ending_stamps_to_period_start():
    frame = read_tmy3(TMY3, year=1990)
    assert len(frame) == 8760 and str(frame.index.dtype) == "datetime64[ns, UTC]"
    assert frame.index[0] == pd.Timestamp("1990-01-01T05:00Z")  # 00:00 at UTC-5
    assert frame.index[-1] == pd.Timestamp("1991-01-01T04:00Z")
    raw, _meta = iotools.read_tmy3(str(TMY3), coerce_year=1990, map_variables=True)
    # the hour ending 12:00 local (UTC-5) is the period starting 16:00 UTC
    assert raw.loc["1990-01-01 12:00-05:00", "ghi"] == 261
    assert frame.loc["1990-01-01T16:00Z"].tolist() == [261.0, 3.0, 260.0, 11.7, 5.2]
    np.testing.assert_array_equal(frame["ghi"].to_numpy(), raw["ghi"].to_numpy(dtype=float))
    with pytest.raises(ValueError, match="leap year"):
        read_tmy3(TMY3, year=2024)


def test_epw_synthetic_day():
    frame = read_epw(FIXTURES / "synthetic_day.epw", year=2026)
    assert len(frame) == 24
    assert frame.index[0] == pd.Timestamp("2026-06-20T22:00Z")  # hour 1 at UTC+1 ends 00:00Z
    raw, meta = iotools.read_epw(str(FIXTURES / "synthetic_day.epw"), coerce_year=2026)
    assert meta["TZ"] == 1.0
    np.testing.assert_array_equal(frame["ghi"].to_numpy(), raw["ghi"].to_numpy(dtype=float))
    assert frame["ghi"].max() > 800 and frame["ghi"].iloc[:5].eq(0).all()


def test_epw_unreadable(tmp_path):
    path = write(tmp_path, "not an epw\n", "bad.epw")
    with pytest.raises(InputError, match="cannot read as EPW"):
        read_epw(path, year=2026)


@pytest.mark.shared_data
def test_nsrdb_psm4_real_file(shared_data):
    path = shared_data / NSRDB
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    frame = read_nsrdb_psm4(path)
    assert len(frame) == 17520 and str(frame.index.dtype) == "datetime64[ns, UTC]"
    # 00:00 at UTC-7 is an instant: its period starts a quarter hour earlier
    assert frame.index[0] == pd.Timestamp("2023-01-01T06:45Z")
    assert frame.index[1] - frame.index[0] == pd.Timedelta("30min")
    raw, _meta = iotools.read_nsrdb_psm4(str(path), map_variables=True)
    np.testing.assert_array_equal(frame["ghi"].to_numpy(), raw["ghi"].to_numpy(dtype=float))
    hourly = resample_means(frame, pd.Timedelta("1h"))
    assert len(hourly) == 8759  # the first and last half hours make no whole hour
    assert hourly["ghi"].sum() == pytest.approx(frame["ghi"].sum() / 2, rel=1e-3)


# ---------------------------------------------------------------------------- resampling


def test_resample_coarser_drops_incomplete_periods_and_checks_steps():
    idx = pd.date_range("2026-06-21T00:45Z", periods=6, freq="15min")
    frame = pd.DataFrame({"ghi": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}, index=idx)
    hourly = resample_means(frame, pd.Timedelta("1h"))
    assert hourly.index.tolist() == [pd.Timestamp("2026-06-21T01:00Z")]
    assert hourly.iloc[0, 0] == 3.5
    with pytest.raises(ValueError, match="not a whole multiple"):
        resample_means(frame, pd.Timedelta("20min"))
    with pytest.raises(ValueError, match="does not divide"):
        resample_means(frame, pd.Timedelta("10min"))


# ---------------------------------------------------------------------------- HTTP helpers


def test_safe_url_hides_secrets():
    url = safe_url("https://x.example/api", {"zone": "DE", "api_key": "abc", "token": "t"})
    assert url == "https://x.example/api?zone=DE&api_key=%2A%2A%2A&token=%2A%2A%2A"
    assert "abc" not in url


def test_retry_policy_schedule_and_checks():
    policy = RetryPolicy(backoff_s=0.5, backoff_max_s=3.0)
    assert [policy.delay_s(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]
    assert policy.delay_s(1, retry_after_s=2.0) == 2.0
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)


def test_connection_refused_is_retried_then_a_source_error():
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    session = requests.Session()
    session.trust_env = False
    sleeps: list[float] = []
    client = HttpClient(RetryPolicy(connect_timeout_s=0.3, read_timeout_s=0.3, attempts=2,
                                    backoff_s=0.01), session=session, sleep=sleeps.append)
    with pytest.raises(SourceError, match=r"test: GET .*:\d+/x failed after 2 tries: connection"):
        client.get_json("test", f"http://127.0.0.1:{port}/x")
    assert sleeps == [0.01]


def test_no_proxy_variables_leak_into_the_tests():
    assert not any(os.environ.get(k) for k in ("HTTP_PROXY", "http_proxy"))
