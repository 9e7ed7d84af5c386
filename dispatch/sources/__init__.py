"""I/O adapters for weather, energy prices and grid carbon intensity.

Role: fetch or read the external series the planner needs and hand them over as pandas frames
with a tz-aware UTC index at period start and unit-suffixed column names (pvlib names for
weather). The only home of the HTTP client in ``dispatch``. May import ``dispatch.types`` and
``dispatch.config`` only, plus pvlib's file readers. Reads no wall clock: time enters through
``start``/``end`` arguments and injectable ``clock`` callables.

Modules: ``http`` (timeouts, retries, last-good cache), ``provider`` (the base of the HTTP
providers: client, cache, clock, fallback), ``frames`` (index and unit checks,
resampling), ``weather`` (Open-Meteo), ``files`` (CSV, TMY3, EPW, NSRDB PSM4),
``carbon_intensity`` (constant, profile, CSV, Electricity Maps), ``prices`` (CSV, aWATTar).
"""

from dispatch.sources.carbon_intensity import (
    ElectricityMapsCI,
    read_ci_csv,
)
from dispatch.sources.files import (
    read_epw,
    read_nsrdb_psm4,
    read_series_csv,
    read_tmy3,
    read_weather_csv,
)
from dispatch.sources.frames import resample_means
from dispatch.sources.http import Fetched, HttpClient, LastGoodCache, RetryPolicy, utc_now
from dispatch.sources.prices import AwattarPrices, read_price_csv
from dispatch.sources.weather import OpenMeteoWeather, parse_open_meteo

__all__ = [
    "AwattarPrices",
    "ElectricityMapsCI",
    "Fetched",
    "HttpClient",
    "LastGoodCache",
    "OpenMeteoWeather",
    "RetryPolicy",
    "parse_open_meteo",
    "read_ci_csv",
    "read_epw",
    "read_nsrdb_psm4",
    "read_price_csv",
    "read_series_csv",
    "read_tmy3",
    "read_weather_csv",
    "resample_means",
    "utc_now",
]
