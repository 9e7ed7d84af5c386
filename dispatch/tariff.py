"""Pure tariff calendar: per-slot import and export prices, bands and billing months.

Role: turn the ``[tariff]`` section of a site configuration and a UTC period-start index into
prices (currency per kWh), the band in force (for display) and the billing-month label used by
the max-demand charge. May import only ``dispatch.types``, ``dispatch.config`` and
``dispatch.calendar`` (plus numpy and pandas); no I/O, no wall clock, no module-level mutable
state.

Calendar (site time zone):

- day type: ``workday``, ``weekend`` or ``holiday`` from ``dispatch.calendar`` (public holidays
  of ``config.holiday_country``, ``tariff.extra_holidays``, ``tariff.makeup_workdays``,
  ``tariff.weekend_days``). A date listed in ``makeup_workdays`` is a workday even when it is
  also a (public or extra) holiday: the explicit list wins;
- season: the one season whose date range holds the local date (``None`` without seasons);
- band: the last rule matching (season, day type, minute of day) wins.

A slot that straddles a band change (or a day or DST change) gets the time-weighted mean price:
every whole minute of the slot is looked up in site-local wall-clock time and the prices are
averaged. Slots shorter than a minute take the price at their start.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict

import numpy as np
import pandas as pd

from dispatch.calendar import tariff_day_types
from dispatch.config import (
    DAY_TYPES,
    SiteConfig,
    matching_rules,
    minute_of_day,
    rule_minutes,
    season_of_day,
)
from dispatch.types import InputError, check_time_index

_MINUTE_NS = 60_000_000_000
_EPOCH = dt.date(1970, 1, 1)
_CHUNK_SAMPLES = 2_000_000  # bounds memory of the per-minute lookup (int64 arrays)
DAY_AHEAD_LABEL = "day_ahead"  # band name shown when the import price has no rules


def _season_names(config: SiteConfig) -> list[str | None]:
    return [s.name for s in config.tariff.seasons] or [None]


def _band_code_table(config: SiteConfig) -> np.ndarray:
    """Band index (into ``tariff.bands``) per (season, day type) row and minute of the day.

    Row ``s * 3 + d`` is season ``s`` (order of ``tariff.seasons``) and day type ``d`` (order of
    ``DAY_TYPES``). Rules are applied in order, so the last matching rule wins.
    """
    t = config.tariff
    names = list(t.bands)
    seasons = _season_names(config)
    table = np.full((len(seasons) * len(DAY_TYPES), 1440), -1, dtype=np.int64)
    for s, season in enumerate(seasons):
        for d, day_type in enumerate(DAY_TYPES):
            row = table[s * len(DAY_TYPES) + d]
            for rule in matching_rules(t, season, day_type):
                for a, b in rule_minutes(rule):
                    row[a:b] = names.index(rule.band)
    return table


def _minutes_per_slot(step: pd.Timedelta, what: str) -> int:
    if step < pd.Timedelta(minutes=1):
        return 1
    if step % pd.Timedelta(minutes=1):
        raise InputError(f"{what}: the step {step} is not a whole number of minutes")
    return int(step // pd.Timedelta(minutes=1))


def _day_rows(config: SiteConfig, first_day: int, n_days: int) -> np.ndarray:
    """Table row (season x day type) of each local day ``first_day .. first_day + n_days - 1``.

    Days are counted from 1970-01-01.
    """
    dates = [_EPOCH + dt.timedelta(days=int(first_day) + i) for i in range(n_days)]
    kinds = tariff_day_types(dates, config)
    seasons = _season_names(config)
    rows = np.empty(n_days, dtype=np.int64)
    for i, (d, kind) in enumerate(zip(dates, kinds, strict=True)):
        found = season_of_day(config.tariff.seasons, d.month, d.day) if seasons[0] else [None]
        rows[i] = seasons.index(found[0]) * len(DAY_TYPES) + DAY_TYPES.index(kind)
    return rows


def _local_minutes(starts_ns: np.ndarray, m: int, tz: str) -> np.ndarray:
    """Site-local wall-clock minutes since 1970 of every minute of each slot, shape (n, m)."""
    utc = (starts_ns[:, None] + np.arange(m, dtype=np.int64) * _MINUTE_NS).ravel()
    wall = pd.DatetimeIndex(utc.view("M8[ns]")).tz_localize("UTC").tz_convert(tz)
    local_ns = wall.tz_localize(None).as_unit("ns").asi8
    return (local_ns // _MINUTE_NS).reshape(len(starts_ns), m)


def _per_minute_mean(
    config: SiteConfig, index: pd.DatetimeIndex, table: np.ndarray, m: int
) -> np.ndarray:
    """Mean over each slot's minutes of ``table[row of the local day, local minute of day]``.

    ``m`` is the number of whole minutes looked up per slot (1: the slot start only). The
    calendar (one ``holidays`` object) is built once for every local day the index touches.
    """
    tz = config.site.timezone
    starts = index.as_unit("ns").asi8
    ends = _local_minutes(starts[[0, -1]], m, tz)
    first = int(ends.min()) // 1440 - 1  # one spare day each side: DST shifts at midnight
    rows_of_day = _day_rows(config, first, int(ends.max()) // 1440 - first + 2)
    out = np.empty(len(starts), dtype=float)
    per_chunk = max(1, _CHUNK_SAMPLES // m)
    for lo in range(0, len(starts), per_chunk):
        minutes = _local_minutes(starts[lo : lo + per_chunk], m, tz)
        rows = rows_of_day[minutes // 1440 - first]
        values = table[rows, minutes % 1440]
        first_value = values[:, 0]  # mean as first + mean of differences: exact when uniform
        out[lo : lo + per_chunk] = first_value + (values - first_value[:, None]).mean(axis=1)
    return out


def _band_priced(
    config: SiteConfig, index: pd.DatetimeIndex, m: int, prices: dict[str, float]
) -> np.ndarray:
    """Time-weighted mean over each slot of a per-band price (currency per kWh)."""
    codes = _band_code_table(config)
    per_band = np.array([prices[name] for name in config.tariff.bands], dtype=float)
    return _per_minute_mean(config, index, per_band[codes], m)


def band_per_slot(config: SiteConfig, index: pd.DatetimeIndex) -> pd.Series:
    """Name of the band in force at each slot start (for display).

    Parameters
    ----------
    config : SiteConfig
        The site; ``tariff`` and ``site.timezone`` are used.
    index : pandas.DatetimeIndex
        UTC period starts at a fixed step.

    Returns
    -------
    pandas.Series of str
        Named ``"band"``; ``"day_ahead"`` everywhere when the tariff has no rules.
    """
    check_time_index(index, "tariff index")
    if not config.tariff.rules:
        return pd.Series([DAY_AHEAD_LABEL] * len(index), index=index, name="band", dtype=object)
    codes = _band_code_table(config).astype(float)
    at_start = _per_minute_mean(config, index, codes, 1).astype(np.int64)
    names = np.array(list(config.tariff.bands), dtype=object)
    return pd.Series(names[at_start], index=index, name="band", dtype=object)


def _uses_day_ahead(config: SiteConfig) -> bool:
    t = config.tariff
    return t.day_ahead is not None or t.export.mode == "day_ahead"


def _day_ahead_values(
    config: SiteConfig, index: pd.DatetimeIndex, series: pd.Series | None, needed: str | None
) -> np.ndarray | None:
    """The day-ahead price (currency per kWh) on ``index``, or None when not ``needed``.

    ``needed`` names the config key that requires the series, or is None.
    """
    if series is not None and not _uses_day_ahead(config):
        raise InputError(
            "day-ahead series: given, but the tariff uses no day-ahead price; add a "
            "[tariff.day_ahead] section or tariff.export.mode = 'day_ahead', or drop the series"
        )
    if needed is None:
        return None
    if series is None:
        raise InputError(
            f"day-ahead series: {needed} needs a day-ahead price series (currency per kWh, "
            "UTC period starts) covering every slot; none was given"
        )
    if not isinstance(series, pd.Series):
        raise InputError(f"day-ahead series: expected a pandas Series, got {type(series).__name__}")
    own = series.index
    if not isinstance(own, pd.DatetimeIndex) or own.tz is None:
        raise InputError("day-ahead series: the index must be tz-aware time stamps (UTC)")
    own = own.tz_convert("UTC")
    if series.dtype == np.float64:  # already numbers: what to_numeric would give
        values = series.to_numpy()
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    # on the slots asked about (the forecast's own column) there is nothing to align
    out = values if own.equals(index) else _aligned(own, values, index)
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        raise InputError(
            f"day-ahead series: the value for slot {index[bad[0]].isoformat()} is not a finite "
            f"number (NaN, infinite or not numeric; {bad.size} slot(s) in all)"
        )
    return out


def _aligned(own: pd.DatetimeIndex, values: np.ndarray, index: pd.DatetimeIndex) -> np.ndarray:
    """``values`` (stamped ``own``, UTC) on ``index``; refuses duplicates and missing slots."""
    if own.has_duplicates:
        raise InputError(
            f"day-ahead series: duplicate time stamp {own[own.duplicated()][0].isoformat()}"
        )
    aligned = pd.Series(values, index=own).reindex(index)
    absent = ~index.isin(own)
    if absent.any():
        first = index[np.flatnonzero(absent)[0]].isoformat()
        raise InputError(
            f"day-ahead series: no value for slot {first} ({int(absent.sum())} slot(s) of the "
            f"index from {index[0].isoformat()} are missing; the series must share its stamps)"
        )
    return aligned.to_numpy(dtype=float)


def _slots_and_day_ahead(
    config: SiteConfig, index: pd.DatetimeIndex, series: pd.Series | None, needed: str | None
) -> tuple[int, np.ndarray | None]:
    """Checked ``index``: whole minutes looked up per slot, and the day-ahead price (currency
    per kWh) on it when ``needed`` (see ``_day_ahead_values``)."""
    m = _minutes_per_slot(check_time_index(index, "tariff index"), "tariff index")
    return m, _day_ahead_values(config, index, series, needed)


def _day_ahead_priced(
    da: np.ndarray | None, multiplier: float, adder_per_kwh: float, base: np.ndarray | None = None
) -> np.ndarray:
    """``[base +] multiplier x da + adder_per_kwh`` (currency per kWh) per slot."""
    assert da is not None  # _day_ahead_values requires the series wherever this is reached
    if base is None:
        return multiplier * da + adder_per_kwh
    return base + multiplier * da + adder_per_kwh


def import_price_per_kwh(
    config: SiteConfig, index: pd.DatetimeIndex, day_ahead_per_kwh: pd.Series | None = None
) -> pd.Series:
    """Import price of each slot (currency per kWh).

    Parameters
    ----------
    config : SiteConfig
        The site; ``tariff`` and ``site.timezone`` are used.
    index : pandas.DatetimeIndex
        UTC period starts at a fixed step.
    day_ahead_per_kwh : pandas.Series, optional
        Day-ahead price (currency per kWh) on the same UTC stamps; required when the tariff
        has a ``day_ahead`` section, refused when the tariff uses no day-ahead price at all.

    Returns
    -------
    pandas.Series of float
        Named ``"price_import_per_kwh"``: the time-weighted band price; with ``day_ahead``
        ``replace``: ``multiplier`` x day-ahead + ``adder_per_kwh``; with ``add``: band price
        + ``multiplier`` x day-ahead + ``adder_per_kwh``.

    Raises
    ------
    InputError
        For a bad index, or a missing, misaligned, unexpected or non-finite day-ahead series.
    """
    m, da = _slots_and_day_ahead(config, index, day_ahead_per_kwh, _import_needs(config))
    return _import_series(config, index, m, da)


def _import_needs(config: SiteConfig) -> str | None:
    return "tariff.day_ahead" if config.tariff.day_ahead is not None else None


def _export_needs(config: SiteConfig) -> str | None:
    e = config.tariff.export
    return "tariff.export.mode = 'day_ahead'" if e.mode == "day_ahead" else None


def _import_series(
    config: SiteConfig, index: pd.DatetimeIndex, m: int, da: np.ndarray | None
) -> pd.Series:
    """``import_price_per_kwh`` from the checked slots (``m`` minutes each) and day-ahead."""
    d = config.tariff.day_ahead
    if d is not None and d.mode == "replace":
        values = _day_ahead_priced(da, d.multiplier, d.adder_per_kwh)
    else:
        values = _band_priced(config, index, m, config.tariff.band_prices_per_kwh())
        if d is not None:
            values = _day_ahead_priced(da, d.multiplier, d.adder_per_kwh, values)
    return pd.Series(values, index=index, name="price_import_per_kwh", dtype=float)


def export_price_per_kwh(
    config: SiteConfig, index: pd.DatetimeIndex, day_ahead_per_kwh: pd.Series | None = None
) -> pd.Series:
    """What exported energy earns in each slot (currency per kWh).

    Parameters
    ----------
    config : SiteConfig
        The site; ``tariff.export`` (and the band calendar for ``band``) is used.
    index : pandas.DatetimeIndex
        UTC period starts at a fixed step.
    day_ahead_per_kwh : pandas.Series, optional
        Day-ahead price (currency per kWh) on the same UTC stamps; required for export mode
        ``day_ahead``, refused when the tariff uses no day-ahead price at all.

    Returns
    -------
    pandas.Series of float
        Named ``"price_export_per_kwh"``: ``none`` 0; ``fixed`` ``price_per_kwh``; ``band``
        the time-weighted ``band_prices_per_kwh``; ``day_ahead`` ``day_ahead_multiplier`` x
        day-ahead + ``day_ahead_adder_per_kwh``.

    Raises
    ------
    InputError
        For a bad index, or a missing, misaligned, unexpected or non-finite day-ahead series.
    """
    m, da = _slots_and_day_ahead(config, index, day_ahead_per_kwh, _export_needs(config))
    return _export_series(config, index, m, da)


def _export_series(
    config: SiteConfig, index: pd.DatetimeIndex, m: int, da: np.ndarray | None
) -> pd.Series:
    """``export_price_per_kwh`` from the checked slots (``m`` minutes each) and day-ahead."""
    e = config.tariff.export
    if e.mode == "fixed":
        values = np.full(len(index), e.price_per_kwh, dtype=float)
    elif e.mode == "band":
        values = _band_priced(config, index, m, dict(e.band_prices_per_kwh))
    elif e.mode == "day_ahead":
        values = _day_ahead_priced(da, e.day_ahead_multiplier, e.day_ahead_adder_per_kwh)
    else:
        values = np.zeros(len(index), dtype=float)
    return pd.Series(values, index=index, name="price_export_per_kwh", dtype=float)


def prices_per_kwh(
    config: SiteConfig, index: pd.DatetimeIndex, day_ahead_per_kwh: pd.Series | None = None
) -> tuple[pd.Series, pd.Series]:
    """``import_price_per_kwh`` and ``export_price_per_kwh`` of the same slots, the index and
    the day-ahead series checked once (the same answers and errors, in that order)."""
    needed = _import_needs(config) or _export_needs(config)
    m, da = _slots_and_day_ahead(config, index, day_ahead_per_kwh, needed)
    return _import_series(config, index, m, da), _export_series(config, index, m, da)


def billing_month(config: SiteConfig, index: pd.DatetimeIndex) -> pd.Series:
    """Billing-month label ``"YYYY-MM"`` of each slot, counted in ``config.billing_timezone``.

    Parameters
    ----------
    config : SiteConfig
        The site; ``tariff.demand_billing_timezone`` (default ``site.timezone``) is used.
    index : pandas.DatetimeIndex
        UTC period starts at a fixed step; a slot belongs to the month of its start.

    Returns
    -------
    pandas.Series of str
        Named ``"billing_month"``.
    """
    check_time_index(index, "tariff index")
    labels = month_labels(index, config.billing_timezone)
    return pd.Series(labels, index=index, name="billing_month", dtype=object)


def month_labels(index: pd.DatetimeIndex, timezone: str) -> np.ndarray:
    """Month label ``"YYYY-MM"`` of each stamp of a tz-aware index, counted in ``timezone``
    (a new object array of str): the local wall-clock month, read from numpy month units.
    The labels of the last few indexes asked for are kept (a plan asks three times for its
    horizon's), keyed on every stamp, the unit and both time zones."""
    if index.tz is None:
        raise InputError("month labels: the time index is not tz-aware; give UTC stamps")
    key = (index.asi8.tobytes(), index.unit, str(index.tz), timezone)
    return _month_labels(key, index).copy()


def _month_labels(key: tuple[bytes, str, str, str], index: pd.DatetimeIndex) -> np.ndarray:
    with _LABELS_LOCK:  # the plan job's thread and the event loop both ask
        if key in _LABELS:
            _LABELS.move_to_end(key)
            return _LABELS[key]
    wall = index.tz_convert(key[3]).tz_localize(None).to_numpy()
    months = wall.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    uniq, inverse = np.unique(months, return_inverse=True)
    names = [f"{1970 + k // 12:04d}-{k % 12 + 1:02d}" for k in uniq.tolist()]
    labels = np.array(names, dtype=object)[inverse]
    with _LABELS_LOCK:
        _LABELS[key] = labels
        while len(_LABELS) > _LABELS_KEPT:
            _LABELS.popitem(last=False)
    return labels


_LABELS: OrderedDict[tuple[bytes, str, str, str], np.ndarray] = OrderedDict()
_LABELS_KEPT = 8
_LABELS_LOCK = threading.Lock()


def day_ahead_published_until(
    config: SiteConfig, now: pd.DatetimeIndex
) -> pd.DatetimeIndex | None:
    """The end of the day-ahead prices published by each time of ``now`` (UTC).

    Parameters
    ----------
    config : SiteConfig
        The site; ``tariff.day_ahead_market`` gives the market's time zone and publication time.
    now : pandas.DatetimeIndex
        Tz-aware times.

    Returns
    -------
    pandas.DatetimeIndex or None
        Per time, the exclusive UTC end of the last delivery day whose prices are out: the
        market-time midnight after tomorrow from the publication time on, else tonight's.
        None when the config has no ``day_ahead_market`` (the series counts as known).
    """
    market = config.tariff.day_ahead_market
    if market is None:
        return None
    wall = now.tz_convert(market.timezone).tz_localize(None)
    minute = np.asarray(wall.hour * 60 + wall.minute, dtype=np.int64)
    days_ahead = np.where(minute >= minute_of_day(market.published), 2, 1)
    ends = wall.normalize() + pd.to_timedelta(days_ahead, unit="D")
    local = ends.tz_localize(market.timezone, ambiguous=True, nonexistent="shift_forward")
    return local.tz_convert("UTC")
def month_coverage(config: SiteConfig, index: pd.DatetimeIndex) -> dict[str, float]:
    """The share of each billing month's time that the slots of ``index`` cover.

    1.0 for a month the index covers whole; less for the partial months at the ends of a
    replay window (a window of local days on UTC billing months, a 7-day run): their demand
    charge is billed pro rata (``SlotInputs.demand_charge_frac``, ``sim.kpis``).

    Parameters
    ----------
    config : SiteConfig
        The site (``config.billing_timezone``).
    index : pandas.DatetimeIndex
        UTC period starts at a fixed step.

    Returns
    -------
    dict of str to float
        Billing-month label (``billing_month``) -> covered share in (0, 1].
    """
    labels = billing_month(config, index).to_numpy(str)
    step = index[1] - index[0]
    out = {}
    for month in dict.fromkeys(labels.tolist()):
        start = pd.Timestamp(f"{month}-01").tz_localize(config.billing_timezone)
        length = (start + pd.offsets.MonthBegin(1)) - start
        out[month] = min(1.0, float(np.count_nonzero(labels == month) * step / length))
    return out
