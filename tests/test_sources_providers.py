"""Good answers of the HTTP providers of ``dispatch.sources``, value by value, and the
content checks of each (units, time convention, resampling, nulls), served on 127.0.0.1 from
hand-written answers in the documented shapes (``tests/fixtures/sources``)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dispatch.sources import AwattarPrices, ElectricityMapsCI, OpenMeteoWeather
from dispatch.types import SourceError
from tests.fixtures.sources.recorded_server import (
    FakeClock,
    RecordedServer,
    Reply,
    fixture_doc,
    make_client,
)

TOKEN = "secret-token-123"
W_START, W_END = pd.Timestamp("2026-06-21T04:00Z"), pd.Timestamp("2026-06-21T07:00Z")
P_START, P_END = pd.Timestamp("2026-06-20T22:00Z"), pd.Timestamp("2026-06-21T22:00Z")


def weather(server: RecordedServer, sleeps: list[float]) -> OpenMeteoWeather:
    return OpenMeteoWeather(52.52, 13.42, base_url=server.url("/v1/forecast"),
                            client=make_client(sleeps), clock=FakeClock())


def em(server: RecordedServer, sleeps: list[float]) -> ElectricityMapsCI:
    return ElectricityMapsCI("DE", TOKEN, base_url=server.url("/v3"), client=make_client(sleeps),
                             clock=FakeClock())


def awattar(server: RecordedServer, sleeps: list[float]) -> AwattarPrices:
    return AwattarPrices("DE", base_url=server.url("/v1/marketdata"),
                         client=make_client(sleeps), clock=FakeClock())


def query_of(server: RecordedServer) -> dict[str, list[str]]:
    return server.requests[-1][1]


# ------------------------------------------------------------------------------- good answers


def test_open_meteo_good_answer_values_units_and_period_start(server, sleeps):
    server.serve("/v1/forecast", Reply(body=fixture_doc("open_meteo_minutely_15.json")))
    frame = weather(server, sleeps).fetch(W_START, W_END)
    assert list(frame.columns) == ["ghi", "dni", "dhi", "temp_air", "wind_speed"]
    assert str(frame.index.dtype) == "datetime64[ns, UTC]"
    assert frame.index[0] == W_START and frame.index[-1] == pd.Timestamp("2026-06-21T06:45Z")
    assert len(frame) == 12
    # radiation stamped 04:15 is the mean of 04:00-04:15: it labels the period starting 04:00
    first = frame.iloc[0]
    assert (first.ghi, first.dni, first.dhi) == (6.0, 40.0, 5.0)
    # temperature and wind: trapezoid mean of the instants at 04:00 and 04:15
    assert first.temp_air == pytest.approx((12.4 + 12.5) / 2)
    assert first.wind_speed == pytest.approx((2.1 + 2.3) / 2)
    assert frame.loc["2026-06-21T06:45Z", "ghi"] == 287.0
    path, query, _headers = server.requests[-1]
    assert path == "/v1/forecast"
    assert query["minutely_15"] == [
        "shortwave_radiation,direct_normal_irradiance,diffuse_radiation,temperature_2m,"
        "wind_speed_10m"
    ]
    assert query["timezone"] == ["UTC"] and query["wind_speed_unit"] == ["ms"]
    assert query["start_minutely_15"] == ["2026-06-21T04:00"]
    assert query["end_minutely_15"] == ["2026-06-21T07:00"]
    assert sleeps == []


def test_open_meteo_hourly_to_15_min_hold_and_interpolate(server, sleeps):
    server.serve("/v1/forecast", Reply(body=fixture_doc("open_meteo_hourly.json")))
    provider = OpenMeteoWeather(52.52, 13.42, resolution="hourly", client=make_client(sleeps),
                                base_url=server.url("/v1/forecast"))
    start, end, step = W_START, pd.Timestamp("2026-06-21T10:00Z"), pd.Timedelta("15min")
    hold = provider.fetch(start, end, step, method="hold")
    assert len(hold) == 24 and (hold.index[1] - hold.index[0]) == step
    assert hold.loc["2026-06-21T05:00Z":"2026-06-21T05:45Z", "ghi"].tolist() == [110.0] * 4
    # hourly energy is kept exactly by holding
    assert hold["ghi"].resample("1h").mean().tolist() == [20.0, 110.0, 240.0, 380.0, 510.0, 620.0]
    smooth = provider.fetch(start, end, step, method="interpolate")
    # 05:00-05:15 has its midpoint 37.5 min after the 04:30 midpoint of the 20 W/m2 hour
    assert smooth.loc["2026-06-21T05:00Z", "ghi"] == pytest.approx(20 + 0.625 * 90)
    assert smooth.iloc[0].ghi == 20.0  # before the first midpoint: held
    assert query_of(server)["start_hour"] == ["2026-06-21T04:00"]


def test_open_meteo_15_min_to_hourly_means(server, sleeps):
    server.serve("/v1/forecast", Reply(body=fixture_doc("open_meteo_minutely_15.json")))
    frame = weather(server, sleeps).fetch(W_START, W_END, pd.Timedelta("1h"))
    assert frame.index.tolist() == list(pd.date_range(W_START, periods=3, freq="1h"))
    assert frame.iloc[0].ghi == pytest.approx((6 + 18 + 35 + 56) / 4)


def test_electricity_maps_forecast_and_latest_good(server, sleeps):
    server.serve("/v3/carbon-intensity/forecast",
                 Reply(body=fixture_doc("electricitymaps_forecast.json")))
    server.serve("/v3/carbon-intensity/latest",
                 Reply(body=fixture_doc("electricitymaps_latest.json")))
    provider = em(server, sleeps)
    fc = provider.forecast()
    assert list(fc.columns) == ["ci_g_per_kwh"] and len(fc) == 24
    assert fc.index[0] == pd.Timestamp("2026-06-21T06:00Z")
    assert fc.index[-1] == pd.Timestamp("2026-06-22T05:00Z")
    assert fc.iloc[0, 0] == 412.0 and fc["ci_g_per_kwh"].min() == 190.0
    _path, query, headers = server.requests[-1]
    assert query["zone"] == ["DE"] and headers["auth-token"] == TOKEN
    latest = provider.latest()
    assert latest.index.tolist() == [pd.Timestamp("2026-06-21T06:00Z")]
    assert latest.iloc[0, 0] == 385.0
    cut = provider.get_forecast(start=pd.Timestamp("2026-06-21T10:00Z"),
                          end=pd.Timestamp("2026-06-21T12:00Z"))
    assert cut.data["ci_g_per_kwh"].tolist() == [318.0, 281.0] and not cut.stale


def test_awattar_good_answer_converted_to_per_kwh(server, sleeps):
    server.serve("/v1/marketdata", Reply(body=fixture_doc("awattar_marketdata.json")))
    frame = awattar(server, sleeps).fetch(P_START, P_END)
    assert list(frame.columns) == ["price_per_kwh"] and len(frame) == 24
    assert frame.index[0] == P_START and str(frame.index.dtype) == "datetime64[ns, UTC]"
    assert frame.iloc[0, 0] == pytest.approx(0.09241)
    assert frame.loc["2026-06-21T11:00Z", "price_per_kwh"] == pytest.approx(-0.00496)
    assert query_of(server) == {"start": ["1781992800000"], "end": ["1782079200000"]}


# --------------------------------------------------------------- Open-Meteo content details


def _om_doc() -> dict[str, Any]:
    return copy.deepcopy(fixture_doc("open_meteo_minutely_15.json"))


def test_open_meteo_km_per_h_converted(server, sleeps):
    doc = _om_doc()
    doc["minutely_15_units"]["wind_speed_10m"] = "km/h"
    doc["minutely_15"]["wind_speed_10m"] = [v * 3.6 for v in doc["minutely_15"]["wind_speed_10m"]]
    server.serve("/v1/forecast", Reply(body=doc))
    frame = weather(server, sleeps).fetch(W_START, W_END)
    assert frame.iloc[0].wind_speed == pytest.approx(2.2)


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda d: d["minutely_15_units"].update(temperature_2m="°F"), "temperature_2m is in '°F'"),
        (lambda d: d["minutely_15"].update(temperature_2m=[v + 273.15 for v in
                                                            d["minutely_15"]["temperature_2m"]]),
         "kelvin"),
        (lambda d: d["minutely_15"]["diffuse_radiation"].__setitem__(4, -3.0), "dhi = -3"),
        (lambda d: d.pop("minutely_15_units"), "missing field 'minutely_15_units'"),
        (lambda d: d["minutely_15"]["time"].pop(), "has 13 values, 'time' has 12"),
    ],
    ids=["fahrenheit", "kelvin", "negative", "no-units", "lengths"],
)
def test_open_meteo_content_errors(server, sleeps, edit, pattern):
    doc = _om_doc()
    edit(doc)
    server.serve("/v1/forecast", Reply(body=doc))
    with pytest.raises(SourceError, match=pattern):
        weather(server, sleeps).fetch(W_START, W_END)


def test_open_meteo_nulls_at_the_end_are_cut_inside_are_errors(server, sleeps):
    doc = _om_doc()
    for var in ("shortwave_radiation", "temperature_2m"):
        doc["minutely_15"][var][-2:] = [None, None]
    server.serve("/v1/forecast", Reply(body=doc))
    frame = weather(server, sleeps).fetch(W_START, W_END)
    assert frame.index[-1] == pd.Timestamp("2026-06-21T06:15Z")
    assert np.isfinite(frame.to_numpy()).all()
    doc = _om_doc()
    doc["minutely_15"]["direct_normal_irradiance"][5] = None
    server.serve("/v1/forecast", Reply(body=doc))
    with pytest.raises(SourceError, match=r"missing value in dni at 2026-06-21T05:00:00\+00:00"):
        weather(server, sleeps).fetch(W_START, W_END)


def test_awattar_quarter_hour_periods_and_per_kwh_magnitude(server, sleeps):
    doc = fixture_doc("awattar_marketdata.json")
    t0 = doc["data"][0]["start_timestamp"]
    doc["data"] = [{"start_timestamp": t0 + i * 900_000, "end_timestamp": t0 + (i + 1) * 900_000,
                    "marketprice": 80.0 + i, "unit": "Eur/MWh"} for i in range(8)]
    server.serve("/v1/marketdata", Reply(body=doc))
    provider = awattar(server, sleeps)
    frame = provider.fetch(P_START, P_END)
    assert len(frame) == 8 and frame.index[1] - frame.index[0] == pd.Timedelta("15min")
    assert frame.iloc[-1, 0] == pytest.approx(0.087)
    doc["data"][3]["marketprice"] = 9_000_000.0
    server.serve("/v1/marketdata", Reply(body=doc))
    with pytest.raises(SourceError, match="per-MWh"):
        provider.fetch(P_START, P_END)
