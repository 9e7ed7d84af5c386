"""Backtest scenarios: a TOML file naming a site config and the data series to replay.

Role: read a scenario, load each series from its CSV with its own time convention, and align
everything on one UTC grid at the plan step. Depends on ``dispatch`` (config, types).

A series table::

    [series.p_load_kw]
    file = "${SHARED_DATA}/factory_load_vdi4657/LP_G_MV.csv"
    time_column = "datetime"           # ISO 8601 with offset, or UTC when the column has none
    value_column = "electrical load [W]"
    scale = 30.0                       # multiply into the unit of the series name
    timestamps = "start"               # or "end": the stamp closes its period
    resample = "hold"                  # "hold", "interpolate" (between stamps) or "mean"
    values = "mean"                    # each value is its period's mean (default "instant":
                                       # the value at the stamp); "interpolate" then passes
                                       # through the centres of the periods

Files in local wall time take three more keys (all optional; ``korea-steel-2018.toml`` uses
them)::

    time_format = "%d/%m/%Y %H:%M"     # strptime format of the time column (default ISO 8601)
    time_zone = "Asia/Seoul"           # naive stamps are wall time there (default: UTC)
    midnight = "previous_day"          # end stamps whose 00:00 row carries the date of the day
                                       # it closes ("31/12/2018 00:00" = 2019-01-01 00:00)
    regular = true                     # stamps must be one fixed step apart: no gap, duplicate
                                       # or disorder (else an error names the first one)

``${SHARED_DATA}`` is the ``shared/data`` folder beside the project (or ``$SHARED_DATA``);
other relative paths are relative to the scenario file.

Without data files, a ``[generated]`` table builds the load and PV on the embedded defaults
(``load = "demo_profile"``: ``sim.loadprofile``'s two-shift factory load; ``pv = "clear_sky"``:
the site's arrays under clear sky through ``dispatch.forecast``); a series named in both is an
error. Prices and intensity then come from the site's tariff and carbon sections. A file
series and a generated one mix (e.g. measured load with clear-sky PV); ``pv_scale_by_month``
(twelve factors, January first, site-local months) shapes clear-sky PV by a monthly clearness.
"""

from __future__ import annotations

import os
import tomllib
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from dispatch.config import SiteConfig, load_config
from dispatch.types import ConfigError, InputError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SERIES_NAMES = ("p_load_kw", "p_pv_kw", "day_ahead_per_kwh", "price_import_per_kwh",
                "price_export_per_kwh", "ci_g_per_kwh")  # fmt: skip


def shared_data_dir() -> Path:
    """The real-data folder: ``$SHARED_DATA`` or ``../shared/data`` beside the project."""
    return Path(os.environ.get("SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


class SeriesSpec(BaseModel):
    """Where one series comes from and how to put it on the plan grid."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file: str
    time_column: str
    value_column: str
    scale: float = 1.0
    timestamps: Literal["start", "end"] = "start"
    resample: Literal["hold", "interpolate", "mean"] = "hold"
    values: Literal["instant", "mean"] = "instant"  # a value at its stamp, or its period's mean
    time_format: str | None = None  # strptime format of the time column; None: ISO 8601
    time_zone: str | None = None  # IANA zone of naive stamps; None: naive stamps are UTC
    midnight: Literal["same_day", "previous_day"] = "same_day"  # date on an end stamp's 00:00
    regular: bool = False  # require one fixed step between stamps (no gap, duplicate, disorder)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                zoneinfo.ZoneInfo(v)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown IANA time zone {v!r}") from None
        return v

    @model_validator(mode="after")
    def _midnight_needs_end(self) -> SeriesSpec:
        if self.midnight == "previous_day" and self.timestamps != "end":
            raise ValueError('midnight = "previous_day" needs timestamps = "end"')
        return self


class GeneratedSpec(BaseModel):
    """Series built on the embedded defaults instead of read from files."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    load: Literal["demo_profile"] | None = None
    pv: Literal["clear_sky"] | None = None
    pv_scale: Annotated[float, Field(ge=0)] = 1.0  # e.g. < 1 for clouds on clear-sky PV
    # monthly clearness on top of pv_scale: 12 factors, January first, site-local months
    pv_scale_by_month: Annotated[list[Annotated[float, Field(ge=0)]],
                                 Field(min_length=12, max_length=12)] | None = None  # fmt: skip
    seed: int = 0  # load-noise seed


class ScenarioSpec(BaseModel):
    """A scenario file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    site_config: str
    start: AwareDatetime
    end: AwareDatetime = Field(description="exclusive")
    soc_initial_frac: Annotated[float, Field(ge=0, le=1)] = 0.5
    series: dict[Literal[SERIES_NAMES], SeriesSpec] = {}  # type: ignore[valid-type]
    generated: GeneratedSpec = GeneratedSpec()


@dataclass(frozen=True)
class Scenario:
    """A loaded scenario: the site and its aligned data.

    Attributes
    ----------
    name : str
        Scenario name.
    config : SiteConfig
        The site.
    data : pandas.DataFrame
        UTC period starts at the plan step over ``[start, end)``; the columns named in the
        scenario (``p_load_kw``, ``p_pv_kw`` and prices or day-ahead, intensity).
    soc_initial_frac : float
        State of charge at the start.
    """

    name: str
    config: SiteConfig
    data: pd.DataFrame
    soc_initial_frac: float


def _resolve(path: str, base: Path) -> Path:
    text = path.replace("${SHARED_DATA}", str(shared_data_dir()))
    p = Path(text)
    return p if p.is_absolute() else (base / p).resolve()


def parse_times(column: pd.Series, spec: SeriesSpec, name: str) -> pd.DatetimeIndex:
    """The time column as UTC instants, by ``time_format``, ``time_zone`` and ``midnight``.

    Raises
    ------
    InputError
        For a stamp that does not parse, stamps with an offset when ``time_zone`` is given, or a
        wall time that does not exist or is ambiguous in ``time_zone`` (a DST change).
    """
    fmt = spec.time_format or "ISO8601"
    try:
        if spec.time_zone is None:
            times = pd.DatetimeIndex(pd.to_datetime(column, utc=True, format=fmt))
        else:
            times = pd.DatetimeIndex(pd.to_datetime(column, format=fmt))
            if times.tz is not None:
                raise InputError(f"series {name}: stamps carry an offset; drop time_zone")
    except (ValueError, TypeError) as exc:
        raise InputError(f"series {name}: cannot parse {spec.time_column!r}: {exc}") from None
    if spec.midnight == "previous_day":
        wall = times.tz_convert(spec.time_zone or "UTC") if times.tz is not None else times
        at_midnight = (wall.hour == 0) & (wall.minute == 0) & (wall.second == 0)
        times = times + pd.to_timedelta(at_midnight.astype(int), unit="D")
    if spec.time_zone is not None:
        try:
            times = times.tz_localize(spec.time_zone, ambiguous="raise", nonexistent="raise")
        except (ValueError, TypeError) as exc:  # pytz-style Ambiguous/NonExistentTimeError
            raise InputError(f"series {name}: {exc} in {spec.time_zone}") from None
        times = times.tz_convert("UTC")
    return times


def check_regular(times: pd.DatetimeIndex, column: pd.Series, name: str) -> None:
    """Raise ``InputError`` naming the first stamp that is not one step after the previous."""
    if len(times) < 2:
        return
    steps = times[1:] - times[:-1]
    step = steps.median()
    bad = np.flatnonzero(steps != step)
    if bad.size:
        i = int(bad[0]) + 1
        zero = pd.Timedelta(0)
        what = "duplicate" if steps[i - 1] == zero else "gap" if steps[i - 1] > zero else None
        raise InputError(
            f"series {name}: {what or 'out of order'} at row {i} ({column.iloc[i]!r} -> "
            f"{times[i].isoformat()}, previous {times[i - 1].isoformat()}); the step is {step}"
        )


def load_series(spec: SeriesSpec, base: Path, index: pd.DatetimeIndex, name: str) -> pd.Series:
    """One series on the plan grid ``index`` (UTC period starts)."""
    path = _resolve(spec.file, base)
    try:
        raw = pd.read_csv(path, usecols=[spec.time_column, spec.value_column], encoding="utf-8-sig")
    except (OSError, ValueError) as exc:
        raise InputError(f"series {name}: cannot read {path}: {exc}") from None
    times = parse_times(raw[spec.time_column], spec, name)
    values = pd.Series(raw[spec.value_column].to_numpy(float) * spec.scale, index=times)
    if spec.regular:
        check_regular(times, raw[spec.time_column], name)
    period = pd.Series(times).diff().median()
    if spec.timestamps == "end":
        values.index = values.index - period
    if spec.values == "mean" and spec.resample == "interpolate":  # a mean belongs at the centre
        values.index = values.index + period / 2
    values = values[~values.index.duplicated()].sort_index()
    step = index[1] - index[0]
    grid = pd.date_range(index[0], index[-1] + step, freq=step, inclusive="left")
    if spec.resample == "mean":
        out = values.resample(step).mean().reindex(grid)
    else:
        method = "time" if spec.resample == "interpolate" else "ffill"
        joined = values.reindex(values.index.union(grid))
        joined = joined.interpolate(method=method) if method == "time" else joined.ffill()
        out = joined.reindex(grid).ffill()
        if spec.values == "mean" and spec.resample == "interpolate":  # the first half period
            out = out.bfill(limit=max(1, round(period / step / 2)))  # holds its own mean
    missing = np.flatnonzero(~np.isfinite(out.to_numpy()))
    if missing.size:
        raise InputError(
            f"series {name} ({path.name}) has no value for {grid[missing[0]].isoformat()}; "
            f"it covers {values.index[0].isoformat()} .. {values.index[-1].isoformat()}"
        )
    return out.rename(name)


def generated_series(gen: GeneratedSpec, config: SiteConfig, index: pd.DatetimeIndex,
                     from_files: set[str], source: str) -> list[pd.Series]:  # fmt: skip
    """The ``[generated]`` series on ``index`` (kW): demo factory load, clear-sky PV."""
    from sim.loadprofile import FactoryProfile, factory_load_kw, pv_available_kw

    out = []
    for name, wanted in (("p_load_kw", gen.load), ("p_pv_kw", gen.pv)):
        if wanted and name in from_files:
            raise ConfigError(f"{name} is both generated and read from a file", source)
    if gen.load == "demo_profile":
        profile = FactoryProfile(peak_kw=0.75 * config.grid.import_max_kw,
                                 timezone=config.site.timezone)  # fmt: skip
        out.append(factory_load_kw(index, profile, gen.seed).rename("p_load_kw"))
    if gen.pv == "clear_sky":
        scale = np.full(len(index), gen.pv_scale)
        if gen.pv_scale_by_month is not None:
            months = index.tz_convert(config.site.timezone).month.to_numpy() - 1
            scale = scale * np.asarray(gen.pv_scale_by_month)[months]
        out.append((scale * pv_available_kw(config, index)).rename("p_pv_kw"))
    return out


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario TOML and load its site config and series.

    Raises
    ------
    ConfigError
        For a bad scenario file or site config.
    InputError
        For a series that is missing or does not cover the period.
    """
    path = Path(path)
    try:
        spec = ScenarioSpec.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the scenario: {exc}", str(path)) from None
    except ValidationError as exc:
        raise ConfigError([f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()],
                          str(path)) from None  # fmt: skip
    config = load_config(_resolve(spec.site_config, path.parent))
    step = pd.Timedelta(minutes=config.plan.step_min)
    start, end = (
        pd.Timestamp(spec.start).tz_convert("UTC"),
        pd.Timestamp(spec.end).tz_convert("UTC"),
    )
    index = pd.date_range(start, end, freq=step, inclusive="left")
    columns = [load_series(s, path.parent, index, name) for name, s in spec.series.items()]
    columns += generated_series(spec.generated, config, index, set(spec.series), str(path))
    data = pd.concat(columns, axis=1)
    for col in ("p_load_kw", "p_pv_kw"):
        if col not in data:
            raise ConfigError(f"series.{col} is required", str(path))
        data[col] = data[col].clip(lower=0.0)
    return Scenario(spec.name, config, data, spec.soc_initial_frac)
