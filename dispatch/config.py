"""Site configuration: pydantic models, TOML loading and cross-field checks.

Role: turn a TOML file into one frozen, validated ``SiteConfig`` or raise ``ConfigError`` with
one line per problem naming the key path, the bad value and what is allowed. May import only
``dispatch.types``.

Every key carries its unit (``energy_kwh``, ``charge_max_kw``, ``soc_min_frac``...). Money is in
the tariff's currency; carbon intensity in g CO2 per kWh; carbon price in currency per kg.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dispatch.types import ConfigError

Frac = Annotated[float, Field(ge=0.0, le=1.0)]
PosFloat = Annotated[float, Field(gt=0.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]
DAY_TYPES = ("workday", "weekend", "holiday")
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_MMDD = re.compile(r"^(0[1-9]|1[0-2])-([0-2]\d|3[01])$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as 'Asia/Shanghai'"
        ) from exc
    return name


def minute_of_day(text: str) -> int:
    """Parse ``"HH:MM"`` (``"24:00"`` allowed) into minutes after midnight."""
    m = _HHMM.match(text)
    if not m or (m.group(1) == "24" and m.group(2) != "00"):
        raise ValueError(f"time of day {text!r} must be 'HH:MM' between 00:00 and 24:00")
    return int(m.group(1)) * 60 + int(m.group(2))


class SiteSection(_Model):
    """Where the site is; its time zone drives tariffs, calendars and display."""

    name: str = "site"
    latitude_deg: Annotated[float, Field(ge=-90, le=90)]
    longitude_deg: Annotated[float, Field(ge=-180, le=180)]
    altitude_m: float = 0.0
    timezone: str
    country: str | None = Field(None, description="ISO country code for public holidays, e.g. 'CN'")
    subdivision: str | None = Field(None, description="holidays subdivision code, e.g. 'BY'")

    _tz = field_validator("timezone")(_check_timezone)


class GridSection(_Model):
    """The grid connection point."""

    import_max_kw: PosFloat
    export_allowed: bool = True
    export_max_kw: NonNegFloat | None = Field(
        None, description="export limit; defaults to import_max_kw when export is allowed"
    )

    @model_validator(mode="after")
    def _export(self) -> GridSection:
        if not self.export_allowed and self.export_max_kw not in (None, 0.0):
            raise ValueError(
                f"export_max_kw = {self.export_max_kw} contradicts export_allowed = false "
                "(zero-export site): remove it or set it to 0"
            )
        return self

    @property
    def export_limit_kw(self) -> float:
        """Effective export limit (kW): 0 on a zero-export site."""
        if not self.export_allowed:
            return 0.0
        return self.import_max_kw if self.export_max_kw is None else self.export_max_kw


class BatterySection(_Model):
    """The battery as seen at its AC terminals (PCS + BMS)."""

    energy_kwh: PosFloat
    charge_max_kw: PosFloat
    discharge_max_kw: PosFloat
    soc_min_frac: Frac = 0.05
    soc_max_frac: Frac = 0.95
    soc_reserve_frac: Frac | None = Field(
        None, description="soft floor kept for outages or peaks; defaults to soc_min_frac"
    )
    soc_initial_frac: Frac = Field(0.5, description="used when no measured SoC is given")
    eta_charge: Annotated[float, Field(gt=0, le=1)] = 0.95
    eta_discharge: Annotated[float, Field(gt=0, le=1)] = 0.95
    wear_cost_per_kwh: NonNegFloat = Field(0.0, description="cost per kWh of throughput")

    @model_validator(mode="after")
    def _window(self) -> BatterySection:
        if self.soc_min_frac >= self.soc_max_frac:
            raise ValueError(
                f"soc_min_frac = {self.soc_min_frac} must be below "
                f"soc_max_frac = {self.soc_max_frac}"
            )
        r = self.soc_reserve_frac
        if r is not None and not self.soc_min_frac <= r <= self.soc_max_frac:
            raise ValueError(
                f"soc_reserve_frac = {r} must lie in [soc_min_frac, soc_max_frac] = "
                f"[{self.soc_min_frac}, {self.soc_max_frac}]"
            )
        return self

    @property
    def reserve_frac(self) -> float:
        """Effective reserve SoC (fraction)."""
        return self.soc_min_frac if self.soc_reserve_frac is None else self.soc_reserve_frac


class PvArraySection(_Model):
    """One PV array with its own orientation and inverter."""

    name: str
    dc_kwp: PosFloat
    ac_kw: PosFloat = Field(description="inverter AC limit of this array")
    tilt_deg: Annotated[float, Field(ge=0, le=90)] = 20.0
    azimuth_deg: Annotated[float, Field(ge=0, lt=360)] = Field(
        180.0, description="pvlib convention: 0 north, 90 east, 180 south"
    )
    gamma_pdc_per_c: Annotated[float, Field(ge=-0.02, le=0)] = -0.0037
    losses_frac: Annotated[float, Field(ge=0, lt=1)] = 0.14
    albedo_frac: Frac = 0.2
    transposition_model: Literal["perez", "haydavies", "isotropic"] = Field(
        "perez", description="sky-diffuse model for the plane of array"
    )
    decomposition_model: Literal["erbs", "dirint"] = Field(
        "erbs", description="splits GHI into DNI and DHI when the weather lacks them"
    )
    iam_model: Literal["physical", "ashrae", "none"] = Field(
        "physical", description="incidence-angle modifier applied to the beam"
    )
    temperature_model: Literal["sapm", "pvsyst"] = "sapm"
    racking: Literal["open_rack", "close_mount", "insulated_back"] = Field(
        "open_rack", description="mounting, selects the cell-temperature parameters"
    )
    module_type: Literal["glass_polymer", "glass_glass"] = "glass_polymer"
    module: str | None = Field(
        None, description="CEC module name (pvlib's shipped database): single-diode DC model"
    )
    modules_per_string: Annotated[int, Field(ge=1)] | None = None
    strings: Annotated[int, Field(ge=1)] | None = None
    inverter: str | None = Field(
        None, description="CEC inverter name (pvlib's shipped database): Sandia inverter model"
    )
    inverters: Annotated[int, Field(ge=1)] = Field(1, description="count of named inverters")

    @model_validator(mode="after")
    def _pv_models(self) -> PvArraySection:
        if self.module is not None and (self.modules_per_string is None or self.strings is None):
            raise ValueError(
                f"module = {self.module!r} needs modules_per_string and strings (integers >= 1)"
            )
        if self.module is None and (self.modules_per_string or self.strings):
            raise ValueError("modules_per_string and strings only apply with a CEC module name")
        if self.inverter is None and self.inverters != 1:
            raise ValueError(f"inverters = {self.inverters} only applies with a CEC inverter name")
        if self.name == "p_pv_kw":
            raise ValueError("name 'p_pv_kw' is reserved for the site total; choose another")
        return self


class DerivedBand(_Model):
    """A band priced as a multiple of another, e.g. critical peak = 1.2 x peak."""

    of: str
    multiplier: PosFloat


class SeasonSection(_Model):
    """A season as an inclusive date range (``"MM-DD"``), which may wrap the new year."""

    name: str
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _mmdd(cls, v: str) -> str:
        if not _MMDD.match(v):
            raise ValueError(f"{v!r} must be 'MM-DD'")
        dt.date(2024, int(v[:2]), int(v[3:]))  # raises on 02-30 etc.
        return v


class TouRule(_Model):
    """Assign ``band`` to the hours ``start``-``end`` (site time; may wrap midnight).

    Empty ``seasons`` or ``day_types`` mean all. Later rules override earlier ones, so a base
    schedule comes first and overlays (critical peak, holiday deep valley) after it.
    """

    band: str
    start: str
    end: str
    seasons: list[str] = []
    day_types: list[Literal["workday", "weekend", "holiday"]] = []

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        minute_of_day(v)
        return v


class DayAheadSection(_Model):
    """How a day-ahead price series (currency per kWh) enters the import price.

    ``replace``: import = multiplier x day-ahead + adder. ``add``: import = band price +
    multiplier x day-ahead + adder.
    """

    mode: Literal["replace", "add"] = "replace"
    multiplier: float = 1.0
    adder_per_kwh: float = 0.0


class ExportSection(_Model):
    """What exported energy earns: nothing, a fixed price, a price per band, or day-ahead."""

    mode: Literal["none", "fixed", "band", "day_ahead"] = "none"
    price_per_kwh: float = 0.0
    band_prices_per_kwh: dict[str, float] = {}
    day_ahead_multiplier: float = 1.0
    day_ahead_adder_per_kwh: float = 0.0


class TariffSection(_Model):
    """Time-of-use energy prices, export price and the monthly max-demand charge."""

    currency: str = "EUR"
    bands: dict[str, float | DerivedBand] = Field(
        default_factory=dict, description="band name -> price per kWh, or {of, multiplier}"
    )
    seasons: list[SeasonSection] = []
    rules: list[TouRule] = []
    weekend_days: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        [5, 6], description="0 = Monday"
    )
    holiday_country: str | None = Field(None, description="defaults to site.country")
    extra_holidays: list[dt.date] = []
    makeup_workdays: list[dt.date] = Field(
        [], description="weekend days worked by decree (e.g. China's adjusted working days)"
    )
    day_ahead: DayAheadSection | None = None
    export: ExportSection = ExportSection()
    demand_charge_per_kw_month: NonNegFloat = 0.0
    demand_billing_timezone: str | None = Field(
        None, description="time zone of billing months; defaults to the site time zone"
    )

    @field_validator("demand_billing_timezone")
    @classmethod
    def _billing_tz(cls, v: str | None) -> str | None:
        return None if v is None else _check_timezone(v)

    @model_validator(mode="after")
    def _consistent(self) -> TariffSection:
        problems = _tariff_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _tariff_problems(t: TariffSection) -> list[str]:
    problems: list[str] = []
    for name, band in t.bands.items():
        if isinstance(band, DerivedBand):
            base = t.bands.get(band.of)
            if base is None:
                problems.append(
                    f"bands.{name}.of = {band.of!r} is not a band; have {sorted(t.bands)}"
                )
            elif isinstance(base, DerivedBand):
                problems.append(f"bands.{name}.of = {band.of!r} must name a band with a price")
    season_names = [s.name for s in t.seasons]
    if len(set(season_names)) != len(season_names):
        problems.append(f"seasons: duplicate names in {season_names}")
    for i, rule in enumerate(t.rules):
        if rule.band not in t.bands:
            problems.append(
                f"rules[{i}].band = {rule.band!r} is not a band; have {sorted(t.bands)}"
            )
        unknown = [s for s in rule.seasons if s not in season_names]
        if unknown:
            problems.append(f"rules[{i}].seasons: unknown {unknown}; have {season_names}")
    for name in t.export.band_prices_per_kwh:
        if name not in t.bands:
            problems.append(f"export.band_prices_per_kwh.{name} is not a band")
    if t.export.mode == "band" and not t.rules:
        problems.append("export.mode = 'band' needs bands and rules to know the band of a slot")
    if t.export.mode == "band":
        missing = sorted(set(t.bands) - set(t.export.band_prices_per_kwh))
        if missing:
            problems.append(f"export.mode = 'band' needs band_prices_per_kwh for {missing}")
    if t.rules and not t.bands:
        problems.append("rules given but no bands")
    if not t.rules and t.day_ahead is None:
        problems.append("no import price: give bands and rules, or a day_ahead section")
    if t.day_ahead is not None and t.day_ahead.mode == "add" and not t.rules:
        problems.append("day_ahead.mode = 'add' needs bands and rules to add to")
    if t.seasons:
        problems += _season_coverage(t.seasons)
    if t.rules:
        problems += _rule_coverage(t)
    return problems


def season_of_day(seasons: list[SeasonSection], month: int, day: int) -> list[str]:
    """Names of the seasons whose date range contains ``month``-``day``."""
    key = (month, day)
    names = []
    for s in seasons:
        a = (int(s.start[:2]), int(s.start[3:]))
        b = (int(s.end[:2]), int(s.end[3:]))
        inside = a <= key <= b if a <= b else (key >= a or key <= b)
        if inside:
            names.append(s.name)
    return names


def _season_coverage(seasons: list[SeasonSection]) -> list[str]:
    day = dt.date(2024, 1, 1)  # a leap year covers 02-29
    while day.year == 2024:
        names = season_of_day(seasons, day.month, day.day)
        if len(names) != 1:
            what = "no season" if not names else f"several seasons {names}"
            return [f"seasons: {day:%m-%d} falls in {what}; each day needs exactly one"]
        day += dt.timedelta(days=1)
    return []


def rule_minutes(rule: TouRule) -> list[tuple[int, int]]:
    """Minute ranges ``[a, b)`` of the day that ``rule`` covers (two when it wraps midnight)."""
    a, b = minute_of_day(rule.start), minute_of_day(rule.end)
    if a == b:
        return [(0, 1440)]
    return [(a, b)] if a < b else [(a, 1440), (0, b)]


def matching_rules(t: TariffSection, season: str | None, day_type: str) -> list[TouRule]:
    """The rules of ``t`` that apply on days of ``season`` (None: no seasons) and ``day_type``,
    in order (a later rule overrides an earlier one where both cover a minute)."""
    return [
        r for r in t.rules
        if (not r.seasons or season in r.seasons) and (not r.day_types or day_type in r.day_types)
    ]


def _rule_coverage(t: TariffSection) -> list[str]:
    seasons = [s.name for s in t.seasons] or [None]
    for season in seasons:
        for day_type in DAY_TYPES:
            covered = bytearray(1440)
            for rule in matching_rules(t, season, day_type):
                for a, b in rule_minutes(rule):
                    covered[a:b] = b"\x01" * (b - a)
            if 0 in covered:
                m = covered.index(0)
                where = f"season {season!r}, " if season else ""
                return [
                    f"rules: no band for {where}{day_type} at {m // 60:02d}:{m % 60:02d}; "
                    "every minute of every day type needs a band"
                ]
    return []


class CertificateSection(_Model):
    """One contractual instrument (``[[carbon.certificates]]``): a green certificate or a PPA.

    It covers up to ``mwh`` of the site's grid imports in the intervals whose start lies in
    the inclusive site-local date range ``valid_from``..``valid_to``; covered energy counts at
    ``ci_g_per_kwh`` (0 for renewable certificates) in the market-based method.
    """

    id: str = Field(min_length=1, description="certificate or contract id, unique")
    instrument: Literal["green_certificate", "ppa"] = "green_certificate"
    valid_from: dt.date
    valid_to: dt.date
    mwh: PosFloat = Field(description="energy the instrument covers (MWh)")
    ci_g_per_kwh: NonNegFloat = Field(0.0, description="emission factor of the covered energy")

    @model_validator(mode="after")
    def _dates(self) -> CertificateSection:
        if self.valid_to < self.valid_from:
            raise ValueError(
                f"certificate {self.id!r}: valid_to = {self.valid_to} is before "
                f"valid_from = {self.valid_from}"
            )
        return self


class CarbonSection(_Model):
    """Grid carbon intensity, its price in the objective, and the carbon-ledger settings."""

    grid_ci_g_per_kwh: NonNegFloat = Field(
        description="grid emission factor used when no series is given"
    )
    hourly_profile_g_per_kwh: list[NonNegFloat] | None = Field(
        None, description="24 values by site-local hour; replaces the constant factor"
    )
    price_per_kg: NonNegFloat = Field(0.0, description="carbon price in currency per kg CO2")
    residual_mix_g_per_kwh: NonNegFloat | None = Field(
        None,
        description="market-based factor of imports no certificate covers; "
        "unset = the location-based intensity of each interval",
    )
    certificates: list[CertificateSection] = Field(
        [], description="green certificates and PPAs for the market-based method"
    )
    neutrality_target_year: Annotated[int, Field(ge=2000, le=2100)] | None = Field(
        None, description="calendar year from which net emissions must be zero"
    )
    neutrality_basis: Literal["market", "location"] = Field(
        "market", description="which Scope 2 method the neutrality balance uses"
    )

    @field_validator("hourly_profile_g_per_kwh")
    @classmethod
    def _profile(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and len(v) != 24:
            raise ValueError(f"needs 24 hourly values, got {len(v)}")
        return v

    @field_validator("certificates")
    @classmethod
    def _unique_certificates(cls, v: list[CertificateSection]) -> list[CertificateSection]:
        ids = [c.id for c in v]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"certificate ids must be unique, repeated: {dup}")
        return v


class PlanSection(_Model):
    """The receding-horizon plan: step, horizon, terminal rule and solver."""

    step_min: Literal[1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60] = 15
    horizon_h: Annotated[float, Field(gt=0, le=168)] = 24.0
    terminal_soc: Literal["at_least_start", "target", "free"] = "at_least_start"
    terminal_soc_frac: Frac | None = None
    solver: str = Field(
        "auto", description="'auto' (persistent HiGHS), 'highs-simplex', 'highs-ipm' or cvxpy's"
    )
    solver_options: dict[str, Any] = {}
    soft_penalty_per_kwh: PosFloat = Field(
        100.0, description="price of breaking a soft limit (import cap, SoC window); >> any price"
    )
    reserve_penalty_per_kwh: NonNegFloat = Field(
        1.0, description="price per kWh-slot of dipping below the reserve SoC"
    )

    @model_validator(mode="after")
    def _terminal(self) -> PlanSection:
        if self.terminal_soc == "target" and self.terminal_soc_frac is None:
            raise ValueError("terminal_soc = 'target' needs terminal_soc_frac")
        if (self.horizon_h * 60) % self.step_min:
            raise ValueError(
                f"horizon_h = {self.horizon_h} is not a whole number of "
                f"{self.step_min}-minute steps"
            )
        return self

    @property
    def n_slots(self) -> int:
        """Number of slots in the horizon."""
        return round(self.horizon_h * 60 / self.step_min)


class DeviceSection(_Model):
    """One Modbus endpoint (``[[devices]]``): where it is, which register map, how to write.

    The register map is a TOML file name under ``configs/registers`` (``"sunspec"``,
    ``"huawei_sun2000_luna"``...) or a path; it is loaded and checked by ``dispatch.devices``.
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
    """The daemon's read-only status and metrics server (``[http]``)."""

    enabled: bool = Field(True, description="serve /, /status, /plan and /metrics")
    host: str = Field("127.0.0.1", description="listen address; keep it local or firewalled")
    port: Annotated[int, Field(ge=0, le=65535)] = Field(8787, description="0: any free port")


class ForecastSection(_Model):
    """Where the daemon's forecast job takes the site load from (``[forecast]``); PV is the
    clear-sky forecast of the ``[[pv]]`` arrays."""

    load_kw: NonNegFloat | None = Field(
        None, description="constant site load (kW) instead of a forecast from measured history"
    )
    history_days: Annotated[int, Field(ge=1, le=400)] = Field(
        28, description="days of measured load from the store that feed the load forecast"
    )
    refresh_min: Annotated[float, Field(gt=0, le=1440)] = Field(
        60.0, description="forecast job period (min)"
    )


class SiteConfig(_Model):
    """The whole site configuration."""

    site: SiteSection
    grid: GridSection
    battery: BatterySection
    pv: list[PvArraySection] = []
    tariff: TariffSection
    carbon: CarbonSection
    plan: PlanSection = PlanSection()
    devices: list[DeviceSection] = []
    control: ControlSection = ControlSection()
    store: StoreSection = StoreSection()
    http: HttpSection = HttpSection()
    forecast: ForecastSection = ForecastSection()

    @model_validator(mode="after")
    def _cross(self) -> SiteConfig:
        names = [a.name for a in self.pv]
        if len(set(names)) != len(names):
            raise ValueError(f"pv: array names must be unique, got {names}")
        tr = self.plan.terminal_soc_frac
        b = self.battery
        if tr is not None and not b.soc_min_frac <= tr <= b.soc_max_frac:
            raise ValueError(
                f"plan.terminal_soc_frac = {tr} must lie in the battery's SoC window "
                f"[{b.soc_min_frac}, {b.soc_max_frac}]"
            )
        if self.tariff.export.mode != "none" and not self.grid.export_allowed:
            raise ValueError(
                f"tariff.export.mode = {self.tariff.export.mode!r} but grid.export_allowed = "
                "false: set export.mode = 'none' on a zero-export site"
            )
        return self

    @property
    def pv_dc_kwp(self) -> float:
        """Total PV peak power (kWp)."""
        return sum(a.dc_kwp for a in self.pv)

    @property
    def billing_timezone(self) -> str:
        """Time zone in which billing months are counted."""
        return self.tariff.demand_billing_timezone or self.site.timezone

    @property
    def holiday_country(self) -> str | None:
        """Country whose public holidays count as holidays in the tariff calendar."""
        return self.tariff.holiday_country or self.site.country


def _format_error(err: dict[str, Any]) -> str:
    path = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return f"{path}: unknown key (typo?); remove it or check the docs for allowed keys"
    if err["type"] == "missing":
        return f"{path}: required key is missing"
    value = err.get("input")
    shown = repr(value) if not isinstance(value, dict) else "{...}"
    return f"{path} = {shown}: {msg}"


def parse_config(data: dict[str, Any], source: str | None = None) -> SiteConfig:
    """Validate a configuration mapping.

    Parameters
    ----------
    data : dict
        The parsed TOML document.
    source : str, optional
        Where it came from, for error messages.

    Raises
    ------
    ConfigError
        With one line per problem.
    """
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_format_error(e) for e in exc.errors()], source) from None


def load_config(path: str | Path) -> SiteConfig:
    """Read and validate a TOML site configuration file.

    Raises
    ------
    ConfigError
        When the file is missing, not valid TOML, or fails validation.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror}", str(p)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", str(p)) from None
    return parse_config(data, str(p))
