"""Calendar rules: availability in the tutor's timezone, the local day, recurrence."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from classroom.errors import InvalidPayload, TooManyOccurrences
from classroom.sessions import calendar
from classroom.sessions.calendar import Window

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def window(weekday: int, start: str, end: str) -> Window:
    return calendar.parse_window(weekday, start, end)


def ny(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=NY)


# 2030-03-04 is a Monday.
MONDAY_EVENINGS = [window(0, "17:00", "20:00")]


def test_no_windows_means_available_any_time() -> None:
    start = ny(2030, 3, 4, 3)
    assert calendar.within_availability(start, start + timedelta(minutes=90), NY, [])


def test_inside_and_at_the_edges_of_a_window() -> None:
    start = ny(2030, 3, 4, 17)
    assert calendar.within_availability(start, start + timedelta(hours=1), NY, MONDAY_EVENINGS)
    late = ny(2030, 3, 4, 18, 30)
    assert calendar.within_availability(late, late + timedelta(minutes=90), NY, MONDAY_EVENINGS)


def test_outside_a_window() -> None:
    early = ny(2030, 3, 4, 16, 55)
    assert not calendar.within_availability(early, early + timedelta(hours=1), NY, MONDAY_EVENINGS)
    late = ny(2030, 3, 4, 19, 5)
    assert not calendar.within_availability(late, late + timedelta(hours=1), NY, MONDAY_EVENINGS)
    tuesday = ny(2030, 3, 5, 17)
    assert not calendar.within_availability(
        tuesday, tuesday + timedelta(hours=1), NY, MONDAY_EVENINGS
    )


def test_windows_are_read_in_the_tutors_timezone() -> None:
    # 22:00 UTC on Monday is 17:00 in New York (EST, UTC-5).
    start = datetime(2030, 3, 4, 22, 0, tzinfo=UTC)
    assert calendar.within_availability(start, start + timedelta(hours=1), NY, MONDAY_EVENINGS)
    assert not calendar.within_availability(
        start, start + timedelta(hours=1), BERLIN, MONDAY_EVENINGS
    )


def test_touching_windows_form_one_stretch_even_across_sunday_midnight() -> None:
    windows = [window(0, "00:00", "01:00"), window(6, "23:00", "24:00")]
    start = ny(2030, 3, 10, 23, 30)  # a Sunday
    assert calendar.within_availability(start, start + timedelta(hours=1), NY, windows)
    split = [window(0, "09:00", "10:00"), window(0, "10:00", "11:00")]
    start = ny(2030, 3, 4, 9, 30)
    assert calendar.within_availability(start, start + timedelta(hours=1), NY, split)
    gap = [window(0, "09:00", "10:00"), window(0, "10:05", "11:00")]
    assert not calendar.within_availability(start, start + timedelta(hours=1), NY, gap)


def test_around_the_clock_availability_crosses_midnight() -> None:
    windows = [window(d, "00:00", "24:00") for d in range(7)]
    start = ny(2030, 3, 10, 23, 30)
    assert calendar.within_availability(start, start + timedelta(hours=1), NY, windows)


def test_window_parsing() -> None:
    assert window(6, "08:30", "24:00").to_dict() == {"weekday": 6, "start": "08:30", "end": "24:00"}
    for bad in [(7, "09:00", "10:00"), (-1, "09:00", "10:00"), (0, "10:00", "09:00")]:
        with pytest.raises(InvalidPayload):
            window(*bad)
    for text in ["9:00", "24:00", "12:60", "noon", ""]:
        with pytest.raises(InvalidPayload):
            window(0, text, "23:00")
    with pytest.raises(InvalidPayload):
        calendar.validate_windows(
            [window(0, "09:00", "10:00")] * 1 + [Window(0, i, i + 1) for i in range(60)]
        )


def test_timezones() -> None:
    assert calendar.zone("Europe/Berlin") == BERLIN
    for bad in ["Mars/Olympus", "", "../etc/passwd", "/etc/localtime", "x" * 65]:
        with pytest.raises(InvalidPayload):
            calendar.zone(bad)


def test_local_day_bounds_follow_the_tutors_timezone() -> None:
    # 03:30 UTC on Tuesday is still Monday evening in New York.
    instant = datetime(2030, 3, 5, 3, 30, tzinfo=UTC)
    assert calendar.local_day(instant, NY) == date(2030, 3, 4)
    start, end = calendar.local_day_bounds(instant, NY)
    assert start == datetime(2030, 3, 4, 5, 0, tzinfo=UTC)
    assert end == datetime(2030, 3, 5, 5, 0, tzinfo=UTC)
    assert calendar.local_day(instant, BERLIN) == date(2030, 3, 5)


def test_local_day_on_a_daylight_saving_day_is_23_hours() -> None:
    start, end = calendar.local_day_bounds(ny(2030, 3, 10, 12), NY)
    assert end - start == timedelta(hours=23)


def test_weekly_recurrence_by_count_keeps_local_time_across_dst() -> None:
    first = ny(2030, 3, 4, 17)  # EST; clocks change on 2030-03-10
    starts = calendar.expand_recurrence(first.astimezone(UTC), NY, "weekly", count=3)
    assert [s.astimezone(NY).hour for s in starts] == [17, 17, 17]
    assert [s.astimezone(NY).date() for s in starts] == [
        date(2030, 3, 4),
        date(2030, 3, 11),
        date(2030, 3, 18),
    ]
    assert starts[1] - starts[0] == timedelta(days=7, hours=-1)


def test_biweekly_recurrence_until_a_date_inclusive() -> None:
    first = ny(2030, 3, 4, 17)
    starts = calendar.expand_recurrence(first, NY, "biweekly", until=date(2030, 4, 1))
    assert [s.astimezone(NY).date() for s in starts] == [
        date(2030, 3, 4),
        date(2030, 3, 18),
        date(2030, 4, 1),
    ]
    shorter = calendar.expand_recurrence(first, NY, "biweekly", until=date(2030, 3, 31))
    assert len(shorter) == 2
    assert len(calendar.expand_recurrence(first, NY, "weekly", until=date(2030, 3, 4))) == 1


def test_recurrence_is_capped_at_52() -> None:
    first = ny(2030, 3, 4, 17)
    assert len(calendar.expand_recurrence(first, NY, "weekly", count=52)) == 52
    with pytest.raises(TooManyOccurrences):
        calendar.expand_recurrence(first, NY, "weekly", count=53)
    last = calendar.expand_recurrence(first, NY, "weekly", count=52)[-1].astimezone(NY).date()
    assert len(calendar.expand_recurrence(first, NY, "weekly", until=last)) == 52
    with pytest.raises(TooManyOccurrences):
        calendar.expand_recurrence(first, NY, "weekly", until=last + timedelta(days=7))


def test_recurrence_needs_exactly_one_end() -> None:
    first = ny(2030, 3, 4, 17)
    with pytest.raises(InvalidPayload):
        calendar.expand_recurrence(first, NY, "weekly")
    with pytest.raises(InvalidPayload):
        calendar.expand_recurrence(first, NY, "weekly", count=2, until=date(2030, 5, 1))
    with pytest.raises(InvalidPayload):
        calendar.expand_recurrence(first, NY, "weekly", until=date(2030, 3, 3))
    with pytest.raises(InvalidPayload):
        calendar.expand_recurrence(first, NY, "weekly", count=0)
