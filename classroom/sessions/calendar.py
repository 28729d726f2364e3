"""Calendar rules, pure: availability windows, the calendar day, recurrence (standard library only).

Everything calendar-shaped is read in the **tutor's timezone** (their profile's IANA zone, UTC when
unset): availability windows are wall-clock times there, "one session per tutor/student pair per
calendar day" means the tutor's local day, and a recurring series keeps the same local wall-clock
time across daylight-saving changes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from classroom.errors import InvalidPayload, TooManyOccurrences

MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
MAX_WINDOWS = 50
MAX_OCCURRENCES = 52

Frequency = Literal["weekly", "biweekly"]
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def zone(name: str) -> ZoneInfo:
    """An IANA timezone, or ``invalid_payload``."""
    try:
        if not name or len(name) > 64 or name.startswith("/") or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidPayload(f"timezone: {name!r} is not an IANA timezone name.") from None


@dataclass(frozen=True, slots=True)
class Window:
    """A weekly availability window: ``weekday`` 0 = Monday … 6 = Sunday, minutes since local
    midnight, ``end`` may be 1440 ("24:00")."""

    weekday: int
    start: int
    end: int

    def to_dict(self) -> dict[str, object]:
        return {"weekday": self.weekday, "start": _hhmm(self.start), "end": _hhmm(self.end)}


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_hhmm(text: str, allow_midnight_end: bool = False) -> int:
    if allow_midnight_end and text == "24:00":
        return MINUTES_PER_DAY
    match = _HHMM.match(text)
    if match is None:
        raise InvalidPayload(f"{text!r} is not a time of day (HH:MM).")
    return int(match.group(1)) * 60 + int(match.group(2))


def parse_window(weekday: int, start: str, end: str) -> Window:
    if not 0 <= weekday <= 6:
        raise InvalidPayload("availability: weekday must be 0 (Monday) to 6 (Sunday).")
    window = Window(weekday, parse_hhmm(start), parse_hhmm(end, allow_midnight_end=True))
    if window.end <= window.start:
        raise InvalidPayload(f"availability: {start}-{end} ends before it starts.")
    return window


def validate_windows(windows: Sequence[Window]) -> list[Window]:
    if len(windows) > MAX_WINDOWS:
        raise InvalidPayload(f"availability: at most {MAX_WINDOWS} windows.")
    return sorted(set(windows), key=lambda w: (w.weekday, w.start, w.end))


def _week_intervals(windows: Iterable[Window]) -> list[tuple[int, int]]:
    """Windows as minutes since Monday 00:00, merged where they touch or overlap."""
    merged: list[tuple[int, int]] = []
    spans = sorted(
        (w.weekday * MINUTES_PER_DAY + w.start, w.weekday * MINUTES_PER_DAY + w.end)
        for w in windows
    )
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _minute_of_week(local: datetime) -> int:
    return local.weekday() * MINUTES_PER_DAY + local.hour * 60 + local.minute


def within_availability(
    starts_at: datetime, ends_at: datetime, tz: ZoneInfo, windows: Sequence[Window]
) -> bool:
    """Whether the session starts and ends inside one stretch of availability (windows that touch,
    such as Sunday until 24:00 and Monday from 00:00, form one stretch). No windows: always."""
    if not windows:
        return True
    local_start = starts_at.astimezone(tz)
    local_end = ends_at.astimezone(tz)
    # Wall-clock length: an hour longer or shorter when the clocks change during the session.
    wall = local_end.replace(tzinfo=None) - local_start.replace(tzinfo=None)
    start = _minute_of_week(local_start)
    end = start + max(0, math.ceil(wall.total_seconds() / 60))
    intervals = _week_intervals(windows)
    # A stretch running through Sunday midnight continues at Monday 00:00.
    if intervals[0][0] == 0 and intervals[-1][1] == MINUTES_PER_WEEK:
        if len(intervals) == 1:
            return True  # available around the clock
        first = intervals.pop(0)
        intervals[-1] = (intervals[-1][0], MINUTES_PER_WEEK + first[1])
    for lo, hi in intervals:
        for shift in (0, MINUTES_PER_WEEK):
            if lo <= start + shift and end + shift <= hi:
                return True
    return False


def local_day(instant: datetime, tz: ZoneInfo) -> date:
    return instant.astimezone(tz).date()


def local_day_bounds(instant: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants where the local calendar day containing ``instant`` begins and ends
    (23 or 25 hours apart on daylight-saving days)."""
    day = local_day(instant, tz)
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def expand_recurrence(
    starts_at: datetime,
    tz: ZoneInfo,
    frequency: Frequency,
    count: int | None = None,
    until: date | None = None,
    max_occurrences: int = MAX_OCCURRENCES,
) -> list[datetime]:
    """The start of every occurrence of a weekly or bi-weekly series, the first being
    ``starts_at``; each keeps the first one's local wall-clock time in ``tz``. Give exactly one of
    ``count`` (1 to ``max_occurrences``) or ``until`` (a local date, inclusive)."""
    if (count is None) == (until is None):
        raise InvalidPayload("recurrence: give either count or until.")
    step = timedelta(weeks=1 if frequency == "weekly" else 2)
    local = starts_at.astimezone(tz).replace(tzinfo=None)
    if count is not None:
        if count < 1:
            raise InvalidPayload("recurrence.count: at least 1.")
        if count > max_occurrences:
            raise TooManyOccurrences(max_occurrences=max_occurrences)
        total = count
    else:
        assert until is not None
        if until < local.date():
            raise InvalidPayload("recurrence.until: before the first session.")
        total = (until - local.date()).days // step.days + 1
        if total > max_occurrences:
            raise TooManyOccurrences(max_occurrences=max_occurrences)
    return [(local + i * step).replace(tzinfo=tz).astimezone(UTC) for i in range(total)]
