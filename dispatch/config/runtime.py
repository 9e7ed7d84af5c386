"""Configuration of the running daemon: devices, control loop, store, HTTP status server and
forecast job."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from dispatch.config.base import NonNegFloat, PosFloat, _Model

MAP_SUFFIX = ".toml"


def is_map_path(register_map: str | Path) -> bool:
    """Whether a ``register_map`` value is a file of the site's own (a path ending in
    ``.toml``) rather than the name of a map shipped in ``dispatch/devices/maps``."""
    return isinstance(register_map, Path) or register_map.endswith(MAP_SUFFIX)


class DeviceSection(_Model):
    """One Modbus endpoint (``[[devices]]``): where it is, which register map, how to write.

    The register map is the name of a shipped map (``"sunspec"``, ``"huawei_sun2000_luna"``,
    ...: package data in ``dispatch/devices/maps``) or a path ending in ``.toml`` to a map of
    the site's own, relative to the config file's folder (``load_config`` makes it absolute).
    It is loaded and checked by ``dispatch.devices`` (``dispatch check-config`` does so).
    """

    name: str
    register_map: str
    transport: Literal["tcp", "rtu"] = "tcp"
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 502
    unit_id: Annotated[int, Field(ge=0, le=255)] = 1
    serial_port: str | None = Field(None, description="RTU only, e.g. '/dev/ttyUSB0'")
    baudrate: Annotated[int, Field(gt=0)] = 9600
    parity: Literal["N", "E", "O"] = "N"
    timeout_s: PosFloat = 1.0
    retries: Annotated[int, Field(ge=0, le=5)] = 1
    controls_battery: bool = Field(True, description="false for a read-only meter or PV device")
    revert_timeout_s: Annotated[float, Field(ge=10, le=86400)] = 300.0
    deadband_kw: NonNegFloat = Field(0.5, description="skip writes that change less than this")
    min_write_interval_s: NonNegFloat = Field(5.0, description="write-rate limit")
    charge_max_kw: PosFloat | None = Field(None, description="caps the device-reported limit")
    discharge_max_kw: PosFloat | None = Field(None, description="caps the device-reported limit")
    backoff_initial_s: PosFloat = 5.0
    backoff_max_s: PosFloat = 300.0
    frozen_reads: Annotated[int, Field(ge=0)] = Field(
        30, description="flag a device stale after this many identical reads; 0 disables"
    )
    handback_values: dict[str, float] = Field(
        default_factory=dict,
        description="field -> value the handback writes after the mode, over the map's "
        "[control] extra_default (e.g. grid_charging = 1 keeps SunSpec grid charging on)",
    )

    @model_validator(mode="after")
    def _transport(self) -> DeviceSection:
        if self.transport == "rtu" and not self.serial_port:
            raise ValueError(f"device {self.name!r}: transport = 'rtu' needs serial_port")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"backoff_max_s = {self.backoff_max_s} must be >= backoff_initial_s = "
                f"{self.backoff_initial_s}"
            )
        return self


class ControlSection(_Model):
    """The fast control loop (``[control]``): cadence, data ages, SoC margin, safe state."""

    cycle_s: Annotated[float, Field(gt=0, le=300)] = Field(5.0, description="control period")
    plan_max_age_s: PosFloat | None = Field(
        None, description="a plan older than this is stale; defaults to two plan steps"
    )
    snapshot_max_age_s: PosFloat = Field(
        15.0, description="a reading older (or newer) than this vs. now is stale"
    )
    soc_margin_frac: Annotated[float, Field(ge=0, le=0.2)] = Field(
        0.01, description="no discharge at soc_min + margin, no charge at soc_max - margin"
    )
    safe_p_batt_kw: float = Field(
        0.0, description="battery power written in the safe state (kW, > 0 discharge)"
    )
    guard: bool = Field(True, description="live peak-shaving and export guard between plans")
    follow_fault_cycles: Annotated[int, Field(ge=0, le=1000)] = Field(
        6,
        description="cycles in a row the measured battery power may miss the accepted "
        "setpoint by more than 5 % of the rating before the safe state (0: never)",
    )
    follow_fault_hold_s: Annotated[float, Field(gt=0, le=86400)] = Field(
        300.0, description="how long a battery that did not follow stays in the safe state (s)"
    )


class PricesSection(_Model):
    """Where the daemon takes the day-ahead prices from (``[prices]``), for a tariff that uses
    them; beyond the published prices the forecast job forecasts them
    (``dispatch.forecast.prices``)."""

    source: Literal["none", "csv", "awattar"] = Field(
        "none",
        description="'csv': a file with time and price_per_kwh (or price_eur_per_mwh) that "
        "another job keeps up to date; 'awattar': the aWATTar API (EPEX day-ahead, DE or AT)",
    )
    csv_path: str | None = Field(None, description="the price CSV (source = 'csv')")
    awattar_country: Literal["DE", "AT"] = Field("DE", description="aWATTar market area")
    awattar_url: str | None = Field(
        None, description="aWATTar endpoint; unset: the country's public /v1/marketdata"
    )
    history_days: Annotated[int, Field(ge=2, le=60)] = Field(
        15,
        description="days of published prices read; the weekday rule needs the eight "
        "before the last published one",
    )

    @model_validator(mode="after")
    def _source(self) -> PricesSection:
        if self.source == "csv" and not self.csv_path:
            raise ValueError("prices.source = 'csv' needs prices.csv_path")
        return self


class StoreSection(_Model):
    """The SQLite history (``[store]``)."""

    path: str = Field("dispatch.sqlite3", description="database file; relative to the cwd")
    retention_days: Annotated[int, Field(ge=1)] = Field(
        400, description="rows older than this are deleted by housekeeping"
    )
    retention_days_by_table: dict[str, Annotated[int, Field(ge=1)]] = Field(
        {}, description="per-table override of retention_days, e.g. {measurements = 90}"
    )


class HttpSection(_Model):
    """The daemon's status page, REST API and metrics server (``[http]``). Without a
    ``token_file`` the API is read-only; with one, ``POST /api/v1/...`` needs its token as
    ``Authorization: Bearer <token>``."""

    enabled: bool = Field(True, description="serve /, /api/v1, /metrics and /healthz")
    host: str = Field("127.0.0.1", description="listen address; keep it local or firewalled")
    port: Annotated[int, Field(ge=0, le=65535)] = Field(8787, description="0: any free port")
    token_file: str | None = Field(
        None,
        description="file holding the API's bearer token (one line); unset: read-only API. "
        "Relative: in the config file's folder (systemd: the credentials directory)",
    )
    max_override_h: Annotated[float, Field(gt=0, le=168)] = Field(
        24.0, description="longest an operator override (pause, manual, reserve, target) lasts"
    )


class MqttSection(_Model):
    """State to an MQTT broker with Home Assistant discovery, and the operator's commands
    from it (``[mqtt]``). The daemon runs the same when the broker is down and reconnects."""

    enabled: bool = Field(False, description="publish state (and discovery) to the broker")
    host: str = Field("127.0.0.1", description="broker host")
    port: Annotated[int, Field(ge=1, le=65535)] = Field(1883, description="broker port")
    username: str | None = Field(None, description="broker user (unset: anonymous)")
    password_file: str | None = Field(
        None, description="file holding the broker password; relative: beside the config"
    )
    topic_prefix: str | None = Field(
        None, description="topics under this (unset: dispatch/<site name>)"
    )
    discovery_prefix: str = Field("homeassistant", description="Home Assistant's prefix")
    publish_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        10.0, description="state publish interval (clock s); every cycle when shorter"
    )
    commands: bool = Field(
        False, description="accept operator commands on <prefix>/cmd/<kind> (false: read-only)"
    )

    @field_validator("topic_prefix", "discovery_prefix")
    @classmethod
    def _topic(cls, v: str | None) -> str | None:
        if v is not None and (not v or any(c in v for c in "#+") or v.endswith("/")):
            raise ValueError("a topic prefix is non-empty, has no '#' or '+' and no trailing /")
        return v


class WeatherSection(_Model):
    """Where the PV forecast's weather comes from (``[weather]``), for ``forecast.pv_source =
    'weather'``: clear sky, the Open-Meteo forecast API, or a weather file another job keeps
    current. The last good answer is kept with its age; when none is younger than
    ``max_age_h``, the forecast falls back to clear sky and says so (status page, metrics)."""

    source: Literal["clear_sky", "open_meteo", "file"] = Field(
        "clear_sky", description="'clear_sky', 'open_meteo' or 'file' (CSV in pvlib columns)"
    )
    file_path: str | None = Field(None, description="the weather CSV (source = 'file')")
    open_meteo_url: str | None = Field(
        None, description="Open-Meteo endpoint; unset: the public /v1/forecast"
    )
    refresh_min: Annotated[float, Field(gt=0, le=1440)] = Field(
        60.0, description="how often a new weather forecast is asked for (min)"
    )
    max_age_h: Annotated[float, Field(gt=0, le=168)] = Field(
        24.0, description="oldest last good weather forecast still used (h)"
    )

    @model_validator(mode="after")
    def _source(self) -> WeatherSection:
        if self.source == "file" and not self.file_path:
            raise ValueError("weather.source = 'file' needs weather.file_path")
        return self


class ForecastSection(_Model):
    """How the daemon forecasts (``[forecast]``): the site load from its measured history
    (or a constant), PV from the weather (``[weather]``) or from its own measured PV, and how
    often."""

    load_kw: NonNegFloat | None = Field(
        None, description="constant site load (kW) instead of a forecast from measured history"
    )
    history_days: Annotated[int, Field(ge=1, le=400)] = Field(
        56,
        description="days of measured load and PV that feed the forecast (the load "
        "forecaster searches 56 days for matching days)",
    )
    refresh_min: Annotated[float, Field(gt=0, le=1440)] | None = Field(
        None, description="forecast period (min); unset: a new forecast for every plan"
    )
    pv_source: Literal["weather", "persistence"] = Field(
        "weather",
        description="'weather': the pvlib chain of the [[pv]] arrays on the [weather] "
        "forecast; 'persistence': from the PV measured on the days before "
        "(forecast.pv_persistence; clear sky until a day is measured)",
    )
    pv_persistence: Literal["blend", "yesterday"] = Field(
        "blend",
        description="persistence PV: 'blend' the PV measured a day earlier pulled towards "
        "the mean of the 14 days before it, by how much of a day's PV energy carried over to "
        "the next on the site's last 28 days (learnt, not set); 'yesterday' the PV measured "
        "a day earlier as it was",
    )
    pv_intraday: bool = Field(
        True,
        description="scale the PV forecast by how the PV measured over the last 2 h compares "
        "with what the same method gives for those hours, fading over 6 h of lead time",
    )
    pv_calibration: str | None = Field(
        None, description="JSON fit of `dispatch calibrate-pv`, applied to the weather's PV"
    )
    shutdowns: list[tuple[dt.date, dt.date]] = Field(
        [],
        description="planned shutdowns as inclusive local date ranges, e.g. "
        "[['2026-12-23', '2027-01-03']]: the load forecast gives them their own day type and "
        "does not learn working days from them",
    )

    @field_validator("shutdowns")
    @classmethod
    def _ordered(cls, v: list[tuple[dt.date, dt.date]]) -> list[tuple[dt.date, dt.date]]:
        for i, (start, end) in enumerate(v):
            if end < start:
                raise ValueError(f"shutdowns[{i}] = [{start}, {end}] ends before it starts")
        return v
