"""Tariff configuration: bands, seasons, time-of-use rules, day-ahead and export pricing, the
demand charge, and the checks that every minute of every day type has a band."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from dispatch.config.base import (
    _MMDD,
    DAY_TYPES,
    NonNegFloat,
    PosFloat,
    _check_timezone,
    _Model,
    minute_of_day,
)


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


class DayAheadMarketSection(_Model):
    """When a delivery day's day-ahead prices become known: the auction's results are
    published once a day, at ``published`` (``HH:MM``, market time) on the day before.

    A plan reaching past the published prices must forecast the rest (the replays do so in
    ``sim.foresight``). Without this section the day-ahead series is taken as known over the
    whole horizon.
    """

    timezone: str = Field(description="the market's IANA time zone, e.g. Europe/Berlin")
    published: str = Field("13:00", description="HH:MM market time, on the day before delivery")

    _tz = field_validator("timezone")(_check_timezone)

    @field_validator("published")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        minute_of_day(v)
        return v


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
    weekend_days: list[Annotated[int, Field(ge=0, le=6)]] = Field([5, 6], description="0 = Monday")
    holiday_country: str | None = Field(None, description="defaults to site.country")
    extra_holidays: list[dt.date] = []
    makeup_workdays: list[dt.date] = Field(
        [], description="weekend days worked by decree (e.g. China's adjusted working days)"
    )
    day_ahead: DayAheadSection | None = None
    day_ahead_market: DayAheadMarketSection | None = None
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

    def band_prices_per_kwh(self) -> dict[str, float]:
        """Price of every band (currency per kWh); a derived band is ``multiplier`` x its
        base (chains are refused by the validation)."""
        out: dict[str, float] = {}
        for name, band in self.bands.items():
            if isinstance(band, DerivedBand):
                out[name] = band.multiplier * float(self.bands[band.of])  # type: ignore[arg-type]
            else:
                out[name] = float(band)
        return out


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
    if t.day_ahead_market is not None and t.day_ahead is None and t.export.mode != "day_ahead":
        problems.append("day_ahead_market given, but the tariff uses no day-ahead price")
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
        r
        for r in t.rules
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
