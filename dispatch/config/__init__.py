"""Site configuration: pydantic models, TOML loading and cross-field checks.

Role: turn a TOML file into one frozen, validated ``SiteConfig`` or raise ``ConfigError`` with
one line per problem naming the key path, the bad value and what is allowed. May import only
``dispatch.types``. The models live in ``base``, ``tariffs``
(tariff section) and ``runtime`` (daemon sections); everything is re-exported here.

Every key carries its unit (``energy_kwh``, ``charge_max_kw``, ``soc_min_frac``...). Money is in
the tariff's currency; carbon intensity in g CO2 per kWh; carbon price in currency per kg.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from dispatch.config.base import (
    DAY_TYPES,
    Frac,
    NonNegFloat,
    PosFloat,
    _check_timezone,
    _Model,
    minute_of_day,
)
from dispatch.config.carbon import CarbonSection, CertificateSection
from dispatch.config.runtime import (
    ControlSection,
    DeviceSection,
    ForecastSection,
    HttpSection,
    MqttSection,
    PricesSection,
    StoreSection,
    WeatherSection,
    is_map_path,
)
from dispatch.config.tariffs import (
    DayAheadMarketSection,
    DayAheadSection,
    DerivedBand,
    ExportSection,
    SeasonSection,
    TariffSection,
    TouRule,
    matching_rules,
    rule_minutes,
    season_of_day,
)
from dispatch.types import ConfigError

__all__ = [
    "DAY_TYPES", "BatterySection", "CarbonSection", "CertificateSection", "ControlSection",
    "DayAheadMarketSection", "DayAheadSection", "DerivedBand", "DeviceSection", "ExportSection",
    "ForecastSection", "GridSection", "HttpSection", "MqttSection", "PlanSection", "PricesSection",
    "PvArraySection", "SeasonSection", "SiteConfig", "SiteSection", "StoreSection",
    "TariffSection", "TouRule", "WeatherSection",
    "anchor_map_paths", "is_map_path", "load_config", "matching_rules", "minute_of_day",
    "parse_config", "rule_minutes", "season_of_day",
]  # fmt: skip


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


class PlanSection(_Model):
    """The receding-horizon plan: step, horizon, terminal rule and solver."""

    step_min: Literal[1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60] = 15
    horizon_h: Annotated[float, Field(gt=0, le=168)] = 36.0
    terminal_soc: Literal["at_least_start", "target", "free"] = "free"
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
    peak_risk_quantile: Annotated[float, Field(ge=0.5, lt=1.0)] = Field(
        0.98,
        description="quantile of the net load the peak reserve is sized for: energy is held "
        "back so that the month's peak target survives a load at this quantile (0.5: the "
        "expected load, no reserve; needs load or PV quantiles in the forecast)",
    )
    peak_reserve_window_h: Annotated[float, Field(gt=0, le=168)] = Field(
        16.0, description="hours ahead the peak reserve covers"
    )
    peak_reserve_sizing: Literal["quantiles", "scenarios"] = Field(
        "quantiles",
        description="'quantiles': the reserve covers every slot at its risk quantile at once "
        "(holds more back); 'scenarios': the risk quantile of what past forecast errors, as "
        "whole paths, would have needed (holds less back, leaves more for arbitrage)",
    )
    day_off_reserve_frac: Frac | None = Field(
        None,
        description="SoC the plan keeps on days off of the load calendar (weekends, "
        "holidays, planned shutdowns), for work that comes unannounced; the live guard may "
        "spend it on peaks (None: the battery's reserve)",
    )
    peak_reserve_recharge: bool = Field(
        True,
        description="size the peak reserve counting the charging the battery can do below "
        "the month's target between peaks (a site whose load has gaps, e.g. breaks and "
        "evenings, refills there); off: every peak in the window is paid from the reserve",
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
    mqtt: MqttSection = MqttSection()
    forecast: ForecastSection = ForecastSection()
    prices: PricesSection = PricesSection()
    weather: WeatherSection = WeatherSection()

    @property
    def uses_day_ahead(self) -> bool:
        """Whether the tariff prices imports or exports from a day-ahead series."""
        return self.tariff.day_ahead is not None or self.tariff.export.mode == "day_ahead"

    @model_validator(mode="after")
    def _cross(self) -> SiteConfig:
        names = [a.name for a in self.pv]
        if len(set(names)) != len(names):
            raise ValueError(f"pv: array names must be unique, got {names}")
        b = self.battery
        for name in ("terminal_soc_frac", "day_off_reserve_frac"):
            frac = getattr(self.plan, name)
            if frac is not None and not b.soc_min_frac <= frac <= b.soc_max_frac:
                raise ValueError(
                    f"plan.{name} = {frac} must lie in the battery's SoC window "
                    f"[{b.soc_min_frac}, {b.soc_max_frac}]"
                )
        if self.prices.source != "none" and not self.uses_day_ahead:
            raise ValueError(
                f"prices.source = {self.prices.source!r}, but the tariff uses no day-ahead "
                "price (no tariff.day_ahead, export.mode is not 'day_ahead')"
            )
        if self.tariff.export.mode != "none" and not self.grid.export_allowed:
            raise ValueError(
                f"tariff.export.mode = {self.tariff.export.mode!r} but grid.export_allowed = "
                "false: set export.mode = 'none' on a zero-export site"
            )
        prices = self.tariff.band_prices_per_kwh()
        if prices and self.plan.soft_penalty_per_kwh <= max(prices.values()):
            raise ValueError(
                f"plan.soft_penalty_per_kwh = {self.plan.soft_penalty_per_kwh:g} is not above the "
                f"highest band price {max(prices.values()):g} {self.tariff.currency}/kWh: the "
                "plan would break the SoC window and import cap for profit; price it far above "
                "any energy price, in the tariff's currency"
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

    A relative ``register_map`` path and secret file (``SECRET_FILES``) are taken from the
    config file's folder (``anchor_map_paths``); every other relative path in it from the
    working directory.

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
    return parse_config(anchor_map_paths(data, p.parent), str(p))


#: Files of secrets found beside the config when relative (systemd: its credentials folder).
SECRET_FILES = (("http", "token_file"), ("mqtt", "password_file"))


def anchor_map_paths(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``data`` with each relative ``devices[i].register_map`` path (``"my_pcs.toml"``) and
    secret file (``SECRET_FILES``) made absolute against ``folder``, the config file's
    folder; names of shipped maps unchanged."""
    for section, key in SECRET_FILES:
        part = data.get(section)
        value = part.get(key) if isinstance(part, dict) else None
        if isinstance(value, str) and value and not Path(value).is_absolute():
            data = {**data, section: {**part, key: str((folder / value).resolve())}}
    devices = data.get("devices")
    if not isinstance(devices, list):
        return data
    anchored = []
    for dev in devices:
        rmap = dev.get("register_map") if isinstance(dev, dict) else None
        if isinstance(rmap, str) and is_map_path(rmap) and not Path(rmap).is_absolute():
            dev = {**dev, "register_map": str((folder / rmap).resolve())}
        anchored.append(dev)
    return {**data, "devices": anchored}
