"""The factory calendar: which kind of day each site-local date is.

Role: the one place that decides public holidays, site holidays, make-up working days, weekend
days and planned shutdowns, for both the tariff (three day types) and the load forecast (five).

Fine-grained day types (codes index ``DAY_TYPE_NAMES``), in order of precedence:

1. ``shutdown``: the date lies in one of the inclusive shutdown ranges;
2. ``workday``: the date is a make-up working day (worked by decree: the ``holidays``
   package's ``weekend_workdays`` of the country, e.g. China's adjusted working days, and the
   configured ``makeup_workdays``), even when it is also a weekend day or a (public or extra)
   holiday: the explicit list wins;
3. ``holiday``: a public holiday of the calendar's country (and subdivision) or an extra
   holiday;
4. ``weekend_first`` / ``rest_day``: the weekday is a weekend day; the first one listed (e.g.
   Saturday) is ``weekend_first`` when there are two or more weekend days, the others
   ``rest_day``;
5. ``workday``: every other date.

The tariff's three day types map from these through ``TARIFF_DAY_TYPES``: ``weekend_first`` and
``rest_day`` are ``weekend``, ``shutdown`` is ``holiday`` (tariff calendars have no shutdowns).

Pure: no I/O, no wall clock. May import ``dispatch.types``, ``dispatch.config``, holidays, numpy
and pandas.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Self

import holidays
import numpy as np
import pandas as pd

from dispatch.config import SiteConfig
from dispatch.types import ConfigError, InputError

__all__ = ["DAY_TYPE_NAMES", "HOLIDAY", "REST", "SHUTDOWN", "TARIFF_DAY_TYPES", "WEEKEND_FIRST",
           "WORK", "DateRange", "FactoryCalendar", "local_dates", "tariff_day_types"]

WORK, WEEKEND_FIRST, REST, HOLIDAY, SHUTDOWN = range(5)
DAY_TYPE_NAMES = ("workday", "weekend_first", "rest_day", "holiday", "shutdown")
# Tariff day type (one of ``dispatch.config.DAY_TYPES``) of each fine-grained code.
TARIFF_DAY_TYPES = ("workday", "weekend", "weekend", "holiday", "holiday")
_CODES_KEPT = 4096  # dates whose day type a calendar keeps (over ten years of days)
DateRange = tuple[dt.date, dt.date]


def local_dates(
    dates: Sequence[dt.date] | pd.DatetimeIndex, timezone: str
) -> list[dt.date]:
    """Site-local calendar dates.

    Parameters
    ----------
    dates : sequence of datetime.date or datetime.datetime, or pandas.DatetimeIndex
        A tz-aware index is first converted to ``timezone``; a naive one, and datetimes, are
        read as site-local.
    timezone : str
        IANA time zone of the site.

    Returns
    -------
    list of datetime.date
    """
    if isinstance(dates, pd.DatetimeIndex):
        if dates.tz is not None:
            dates = dates.tz_convert(timezone)
        return [ts.date() for ts in dates]
    return [d.date() if isinstance(d, dt.datetime) else d for d in dates]


@dataclass(frozen=True)
class FactoryCalendar:
    """Which kind of day each site-local date is (see the module docstring for precedence).

    Attributes
    ----------
    timezone : str
        IANA time zone of the site; days and times of day are counted in it.
    country, subdivision : str, optional
        Public holidays from the ``holidays`` package (e.g. ``"DE"``, ``"BY"``).
    weekend_days : tuple of int
        Rest days of the week, 0 = Monday. The first one listed (e.g. Saturday) gets its own
        day type when there are two or more; the others share ``rest_day``.
    shutdowns : tuple of (date, date)
        Inclusive date ranges of planned shutdowns (e.g. the Christmas break).
    makeup_workdays : tuple of date
        Dates worked although they are weekend days or holidays, beyond those the ``holidays``
        package knows for the country.
    extra_holidays : tuple of date
        Site holidays beyond the public ones.

    Raises
    ------
    InputError
        On an unknown time zone, a weekend day outside 0..6, a shutdown ending before it starts
        or a country or subdivision unknown to the ``holidays`` package.
    """

    timezone: str
    country: str | None = None
    subdivision: str | None = None
    weekend_days: tuple[int, ...] = (5, 6)
    shutdowns: tuple[DateRange, ...] = ()
    makeup_workdays: tuple[dt.date, ...] = ()
    extra_holidays: tuple[dt.date, ...] = ()
    _years: dict[int, frozenset[dt.date]] = field(default_factory=dict, init=False, repr=False,
                                                  compare=False)  # fmt: skip
    _worked: dict[int, frozenset[dt.date]] = field(default_factory=dict, init=False,
                                                   repr=False, compare=False)
    #: Each date's code once worked out (the fields are fixed, so is the answer); bounded.
    _codes: dict[dt.date, int] = field(default_factory=dict, init=False, repr=False,
                                       compare=False)

    def __post_init__(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InputError(f"calendar: unknown time zone {self.timezone!r}") from None
        for name in ("weekend_days", "shutdowns", "makeup_workdays", "extra_holidays"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        bad = [d for d in self.weekend_days if d not in range(7)]
        if bad:
            raise InputError(f"calendar: weekend_days must lie in 0..6 (0 = Monday), got {bad}")
        for start, end in self.shutdowns:
            if end < start:
                raise InputError(f"calendar: shutdown ({start}, {end}) ends before it starts")
        self._decreed(())  # fails early on an unknown country or subdivision

    @classmethod
    def from_config(cls, config: SiteConfig, shutdowns: Iterable[DateRange] = ()) -> Self:
        """The site's calendar from its ``site`` and ``tariff`` sections.

        Parameters
        ----------
        config : SiteConfig
            ``site.timezone``, ``holiday_country`` (``tariff.holiday_country``, default
            ``site.country``), ``site.subdivision`` (used only when the holiday country is the
            site's own), ``tariff.weekend_days``, ``tariff.makeup_workdays`` and
            ``tariff.extra_holidays`` are used.
        shutdowns : iterable of (date, date)
            Inclusive shutdown date ranges (the load forecast's are in ``forecast.shutdowns``,
            see ``for_load``).

        Raises
        ------
        ConfigError
            If the holiday country or subdivision is unknown to the ``holidays`` package.
        """
        t = config.tariff
        country = config.holiday_country
        own = config.site.country in (None, country)
        subdiv = config.site.subdivision if own else None
        try:
            return cls(config.site.timezone, country, subdiv, tuple(t.weekend_days),
                       tuple(shutdowns), tuple(t.makeup_workdays), tuple(t.extra_holidays))
        except InputError as exc:
            if not isinstance(exc.__cause__, NotImplementedError):
                raise
            raise ConfigError(
                f"tariff.holiday_country / site.country = {country!r} with site.subdivision = "
                f"{subdiv!r}: the holidays package has no such calendar ({exc.__cause__}); use "
                "an ISO code such as 'CN' or 'DE' and a valid subdivision"
            ) from None

    @classmethod
    def for_load(cls, config: SiteConfig) -> Self:
        """The calendar of the load forecast: ``from_config`` with the planned shutdowns of
        ``forecast.shutdowns`` (the tariff's calendar has none)."""
        return cls.from_config(config, config.forecast.shutdowns)

    def _decreed(self, years: Iterable[int]) -> tuple[set[dt.date], set[dt.date]]:
        """Public holidays and decreed working days (weekend days worked in exchange for a
        bridge holiday, e.g. China's adjusted working days: ``weekend_workdays`` of the
        ``holidays`` package) over ``years``, from one ``holidays`` object (empty years: a
        check of the country).

        Raises ``InputError`` whose ``__cause__`` is the ``holidays`` package's
        ``NotImplementedError`` for an unknown country or subdivision.
        """
        if self.country is None:
            return set(), set()
        wanted = set(years)
        new = sorted(wanted - self._years.keys())
        if new or not wanted:
            try:
                found = holidays.country_holidays(self.country, subdiv=self.subdivision,
                                                  years=new)  # fmt: skip
            except NotImplementedError as exc:
                raise InputError(
                    f"calendar: no public holidays for country={self.country!r}, "
                    f"subdivision={self.subdivision!r}: {exc}"
                ) from exc
            worked = getattr(found, "weekend_workdays", ())
            for year in new:  # kept per year: a calendar asks for the same years again
                self._years[year] = frozenset(d for d in found if d.year == year)
                self._worked[year] = frozenset(d for d in worked if d.year == year)
        return (set().union(*(self._years[y] for y in wanted)),
                set().union(*(self._worked[y] for y in wanted)))

    def day_types(self, dates: Sequence[dt.date] | pd.DatetimeIndex) -> np.ndarray:
        """Day-type code of each site-local date (index into ``DAY_TYPE_NAMES``).

        Parameters
        ----------
        dates : sequence of datetime.date, or pandas.DatetimeIndex
            Site-local dates; a tz-aware index is converted to ``timezone`` first.

        Returns
        -------
        numpy.ndarray of int64
            One code per date (``WORK``, ``WEEKEND_FIRST``, ``REST``, ``HOLIDAY``,
            ``SHUTDOWN``); precedence as in the module docstring.
        """
        days = local_dates(dates, self.timezone)
        kept = self._codes  # shared by the plan job's thread and the event loop: read with
        known = {d: kept.get(d) for d in days}  # get, answer from this call's own dict
        new = [d for d, code in known.items() if code is None]
        if new:
            worked = dict(zip(new, self._worked_out(new).tolist(), strict=True))
            known.update(worked)
            if len(kept) + len(worked) > _CODES_KEPT:
                kept.clear()
            kept.update(worked)
        return np.array([known[d] for d in days], dtype=np.int64)

    def _worked_out(self, days: list[dt.date]) -> np.ndarray:
        """``day_types`` of site-local ``days``, date by date."""
        public, decreed = self._decreed({d.year for d in days})
        off = public | set(self.extra_holidays)
        makeup = decreed | set(self.makeup_workdays)
        first = self.weekend_days[0] if len(self.weekend_days) > 1 else None
        out = np.full(len(days), WORK, dtype=np.int64)
        for i, d in enumerate(days):
            if any(a <= d <= b for a, b in self.shutdowns):
                out[i] = SHUTDOWN
            elif d in makeup:
                out[i] = WORK
            elif d in off:
                out[i] = HOLIDAY
            elif d.weekday() in self.weekend_days:
                out[i] = WEEKEND_FIRST if d.weekday() == first else REST
        return out


def tariff_day_types(
    dates: Sequence[dt.date] | pd.DatetimeIndex, config: SiteConfig
) -> np.ndarray:
    """Tariff day type of each date: ``"workday"``, ``"weekend"`` or ``"holiday"``.

    Parameters
    ----------
    dates : sequence of datetime.date, or pandas.DatetimeIndex
        Site-local dates. A tz-aware index is first converted to ``config.site.timezone``; a
        naive one is read as site-local.
    config : SiteConfig
        The site; the calendar keys of ``FactoryCalendar.from_config`` are used.

    Returns
    -------
    numpy.ndarray of str
        One day type per date: a make-up working day is a ``workday`` even when it is also a
        holiday, then ``holiday``, then ``weekend``, else ``workday``.

    Raises
    ------
    ConfigError
        If the holiday country or subdivision is unknown to the ``holidays`` package.
    """
    codes = FactoryCalendar.from_config(config).day_types(dates)
    return np.array(TARIFF_DAY_TYPES)[codes]
