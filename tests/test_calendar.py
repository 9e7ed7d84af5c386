"""The factory calendar (``dispatch.calendar``): day types for the load forecast and the tariff.

Expected values are worked out by hand (Asia/Shanghai is UTC+8 all year; public holidays from
the ``holidays`` package).
"""

from __future__ import annotations

import datetime as dt

import holidays
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.calendar import (
    DAY_TYPE_NAMES,
    SHUTDOWN,
    TARIFF_DAY_TYPES,
    FactoryCalendar,
    tariff_day_types,
)
from dispatch.config import DAY_TYPES, load_config
from dispatch.types import ConfigError, InputError
from tests.conftest import CONFIGS
from tests.factories import config

SUZHOU = load_config(CONFIGS / "suzhou-factory.toml")
GERMANY = load_config(CONFIGS / "germany-factory-dayahead.toml")


def names(calendar: FactoryCalendar, days: list[dt.date]) -> list[str]:
    return [DAY_TYPE_NAMES[k] for k in calendar.day_types(days)]


# --- fine-grained day types (load forecast) ---------------------------------------------------


def test_makeup_workday_and_weekend_types_from_config() -> None:
    cfg = config(
        site={"timezone": "Europe/Berlin", "country": "DE", "subdivision": "BY"},
        tariff={"makeup_workdays": [dt.date(2024, 1, 7)], "extra_holidays": [dt.date(2024, 1, 9)]},
    )
    cal = FactoryCalendar.from_config(cfg, shutdowns=[(dt.date(2024, 1, 10), dt.date(2024, 1, 11))])
    days = [dt.date(2024, 1, d) for d in (5, 6, 7, 8, 9, 10, 11, 13, 14)]
    # 6 Jan is Epiphany in Bavaria (a Saturday), 7 Jan a Sunday worked by decree
    assert names(cal, days) == ["workday", "holiday", "workday", "workday", "holiday", "shutdown",
                                "shutdown", "weekend_first", "rest_day"]


def test_shutdown_wins_over_makeup_and_a_single_weekend_day_is_a_rest_day() -> None:
    day = dt.date(2024, 1, 7)  # a Sunday
    cal = FactoryCalendar("UTC", weekend_days=(6,), shutdowns=((day, day),),
                          makeup_workdays=(day,), extra_holidays=(day,))
    assert cal.day_types([day]).tolist() == [SHUTDOWN]
    assert names(FactoryCalendar("UTC", weekend_days=(6,)), [dt.date(2024, 1, 6), day]) == [
        "workday", "rest_day"]


def test_a_tz_aware_index_is_read_in_the_site_time_zone() -> None:
    # 2026-09-30 16:00Z is already 2026-10-01 00:00 (National Day) in Shanghai
    stamps = pd.DatetimeIndex(["2026-09-30T15:00Z", "2026-09-30T16:00Z"])
    cal = FactoryCalendar("Asia/Shanghai", country="CN")
    assert names(cal, stamps) == ["workday", "holiday"]


def test_bad_calendars_are_input_errors() -> None:
    with pytest.raises(InputError, match="time zone"):
        FactoryCalendar("Mars/Olympus")
    with pytest.raises(InputError, match="country"):
        FactoryCalendar("UTC", country="XX")
    with pytest.raises(InputError, match="weekend_days"):
        FactoryCalendar("UTC", weekend_days=(7,))
    with pytest.raises(InputError, match="ends before it starts"):
        FactoryCalendar("UTC", shutdowns=((dt.date(2024, 1, 2), dt.date(2024, 1, 1)),))


def test_unknown_holiday_country_in_a_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'XX'"):
        FactoryCalendar.from_config(config(site={"country": "XX"}))


def test_subdivision_applies_only_to_the_sites_own_country() -> None:
    # a Bavarian site billed on the Austrian holiday calendar: BY is no Austrian subdivision
    cfg = config(site={"country": "DE", "subdivision": "BY"}, tariff={"holiday_country": "AT"})
    cal = FactoryCalendar.from_config(cfg)
    assert (cal.country, cal.subdivision) == ("AT", None)
    assert FactoryCalendar.from_config(GERMANY).subdivision == "BW"


# --- tariff day types -------------------------------------------------------------------------


def test_tariff_day_types_cover_the_configs_day_types() -> None:
    assert len(TARIFF_DAY_TYPES) == len(DAY_TYPE_NAMES)
    assert set(TARIFF_DAY_TYPES) == set(DAY_TYPES)


def test_public_holiday_is_a_tariff_holiday() -> None:
    assert tariff_day_types([dt.date(2026, 10, 1)], SUZHOU).tolist() == ["holiday"]  # National Day


def test_tariff_day_types_from_a_utc_index_use_the_site_date() -> None:
    # 2026-09-30 16:00Z is already 2026-10-01 00:00 in Suzhou
    stamps = pd.DatetimeIndex(["2026-09-30T15:00Z", "2026-09-30T16:00Z"])
    assert tariff_day_types(stamps, SUZHOU).tolist() == ["workday", "holiday"]


def test_weekend_and_makeup_tariff_day_types_in_suzhou() -> None:
    days = [dt.date(2026, 11, 7), dt.date(2026, 11, 8), dt.date(2026, 11, 9), dt.date(2026, 1, 4)]
    # Sat, Sun, Mon, and Sunday 2026-01-04, a working day by the State Council's arrangement
    assert tariff_day_types(days, SUZHOU).tolist() == ["weekend", "weekend", "workday", "workday"]


def test_china_s_adjusted_working_days_need_no_yearly_config() -> None:
    assert SUZHOU.tariff.makeup_workdays == []
    # the State Council's arrangements for 2025 and 2026: weekend days worked in exchange for
    # bridge holidays (2025-02-03, 2026-01-02 are the days off they pay for)
    worked = [dt.date(2025, 1, 26), dt.date(2025, 2, 8), dt.date(2026, 1, 4), dt.date(2026, 2, 28)]
    assert all(d.weekday() >= 5 for d in worked)
    assert tariff_day_types(worked, SUZHOU).tolist() == ["workday"] * 4
    assert tariff_day_types([dt.date(2025, 2, 3), dt.date(2026, 1, 2)], SUZHOU).tolist() == [
        "holiday", "holiday"]
    # a country without such days keeps its weekends
    assert tariff_day_types([dt.date(2026, 1, 4)], GERMANY).tolist() == ["weekend"]


def test_weekend_makeup_and_extra_holidays_in_a_built_config() -> None:
    cfg = config(tariff={  # UTC site, no country
        "makeup_workdays": ["2026-02-14", "2026-05-01"],
        "extra_holidays": ["2026-05-01", "2026-06-03"],
    })
    starts = ["2026-02-13", "2026-02-14", "2026-02-15", "2026-05-01", "2026-06-03"]
    kinds = tariff_day_types([dt.date.fromisoformat(d) for d in starts], cfg)
    # Fri; Sat 02-14 makeup workday; Sun; 05-01 in both lists -> makeup wins; extra holiday
    assert kinds.tolist() == ["workday", "workday", "weekend", "workday", "holiday"]


def test_german_subdivision_holidays() -> None:
    epiphany = [dt.date(2026, 1, 6)]
    assert tariff_day_types(epiphany, GERMANY).tolist() == ["holiday"]  # BW keeps Epiphany
    berlin = GERMANY.model_copy(
        update={"site": GERMANY.site.model_copy(update={"subdivision": "BE"})}
    )
    assert tariff_day_types(epiphany, berlin).tolist() == ["workday"]


@settings(max_examples=40, deadline=None)
@given(day=st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 31)))
def test_tariff_day_types_follow_the_precedence(day: dt.date) -> None:
    public = holidays.country_holidays("CN", years=day.year)
    if day in SUZHOU.tariff.makeup_workdays or day in public.weekend_workdays:
        expected = "workday"
    elif day in public:
        expected = "holiday"
    else:
        expected = "weekend" if day.weekday() >= 5 else "workday"
    assert tariff_day_types([day], SUZHOU).tolist() == [expected]
    fine = FactoryCalendar.from_config(SUZHOU).day_types([day])
    assert TARIFF_DAY_TYPES[int(fine[0])] == expected


# --- China's make-up working days over several years, from the State Council's notices ---------

# The weekend days worked by decree (调休上班) in the General Office of the State Council's yearly
# notices on the holiday arrangements (国务院办公厅关于…部分节假日安排的通知), written out from
# the notices, not read from the ``holidays`` package: the calendar must derive exactly these.
CHINA_MAKEUP_WORKDAYS = {
    2023: ("01-28", "01-29", "04-23", "05-06", "06-25", "10-07", "10-08"),
    2024: ("02-04", "02-18", "04-07", "04-28", "05-11", "09-14", "09-29", "10-12"),
    2025: ("01-26", "02-08", "04-27", "09-28", "10-11"),
    2026: ("01-04", "02-14", "02-28", "05-09", "09-20", "10-10"),
}
# The weekdays given off in exchange (the bridge days the make-up days pay for), same notices.
CHINA_BRIDGE_DAYS_OFF = {
    2023: ("01-26", "01-27", "05-02", "05-03", "06-23", "10-05", "10-06"),
    2024: ("02-15", "02-16", "04-05", "05-02", "05-03", "09-16", "10-04", "10-07"),
    2025: ("02-03", "02-04", "05-05", "10-07", "10-08"),
    2026: ("01-02", "02-20", "02-23", "05-05", "10-06", "10-07"),
}


def _dates(year: int, days: tuple[str, ...]) -> set[dt.date]:
    return {dt.date.fromisoformat(f"{year}-{d}") for d in days}


@pytest.mark.parametrize("year", sorted(CHINA_MAKEUP_WORKDAYS))
def test_china_s_makeup_workdays_match_the_state_council_notices(year: int) -> None:
    cal = FactoryCalendar.from_config(SUZHOU)  # no hand list: the site config has none
    assert cal.makeup_workdays == ()
    days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D").date.tolist()
    kinds = dict(zip(days, names(cal, days), strict=True))
    worked_weekends = {d for d in days if d.weekday() >= 5 and kinds[d] == "workday"}
    assert worked_weekends == _dates(year, CHINA_MAKEUP_WORKDAYS[year])
    assert all(kinds[d] == "holiday" for d in _dates(year, CHINA_BRIDGE_DAYS_OFF[year]))
    tariff = tariff_day_types(sorted(worked_weekends), SUZHOU).tolist()
    assert tariff == ["workday"] * len(worked_weekends)


def test_a_site_list_adds_makeup_days_to_the_decreed_ones() -> None:
    extra = dt.date(2027, 1, 9)  # a Saturday no notice decrees (2027's is not in the library)
    cal = FactoryCalendar("Asia/Shanghai", country="CN", makeup_workdays=(extra,))
    assert names(cal, [extra, dt.date(2027, 1, 10), dt.date(2026, 1, 4)]) == [
        "workday", "rest_day", "workday"]


@settings(max_examples=40, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 800), min_size=1, max_size=40),
    again=st.lists(st.integers(0, 800), min_size=1, max_size=40),
)
def test_the_day_types_kept_per_date_are_those_worked_out_afresh(offsets, again):
    """A calendar asked again (other dates, repeats, any order) answers as a new calendar
    with the same fields would, date by date; one with other holidays keeps its own."""
    import dispatch.calendar as calendar_module

    base = dt.date(2017, 12, 1)
    first = [base + dt.timedelta(days=k) for k in offsets]
    second = [base + dt.timedelta(days=k) for k in again]
    fields = {"timezone": "Europe/Berlin", "country": "DE", "subdivision": "BY",
              "shutdowns": ((dt.date(2018, 12, 24), dt.date(2018, 12, 31)),)}
    cal = FactoryCalendar(**fields)
    other = FactoryCalendar(**fields, extra_holidays=tuple(first[:3]))
    for dates in (first, second, first + second):
        got = cal.day_types(dates)
        assert got.tolist() == FactoryCalendar(**fields)._worked_out(dates).tolist()
        assert other.day_types(dates).tolist() == FactoryCalendar(
            **fields, extra_holidays=tuple(first[:3]))._worked_out(dates).tolist()
    open_days = [d for d in first[:3] if not dt.date(2018, 12, 24) <= d <= dt.date(2018, 12, 31)]
    assert set(other.day_types(open_days).tolist()) <= {calendar_module.HOLIDAY}
    assert len(cal._codes) <= calendar_module._CODES_KEPT


def test_the_kept_day_types_are_bounded(monkeypatch):
    import dispatch.calendar as calendar_module

    monkeypatch.setattr(calendar_module, "_CODES_KEPT", 10)
    cal = FactoryCalendar("Europe/Berlin", "DE")
    days = [dt.date(2018, 1, 1) + dt.timedelta(days=k) for k in range(25)]
    for k in range(0, 25, 5):
        assert cal.day_types(days[k : k + 5]).tolist() == cal._worked_out(days[k : k + 5]).tolist()
        assert len(cal._codes) <= 10
    assert cal.day_types([dt.date(2018, 1, 1)]).tolist() == [calendar_module.HOLIDAY]
