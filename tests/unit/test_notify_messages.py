"""Who gets which email, what it says, and that user values are escaped in HTML."""

from __future__ import annotations

import dataclasses
import typing
from datetime import UTC, datetime, timedelta

import pytest

from classroom.notify import absence, messages
from classroom.notify.model import InvoiceInfo, Person, SessionInfo
from classroom.notify.session_events import SessionEventNotifications
from classroom.notify.templates import format_when, render
from classroom.notify.worker import backoff
from classroom.sessions.events import EventKind

TUTOR = Person("t1", "Tina Tutor", "tina@example.test", "tutor")
SARA = Person("s1", "Sara Student", "sara@example.test", "student")
SID = Person("s2", "Sid Student", "sid@example.test", "student")
PAULA = Person("p1", "Paula Parent", "paula@example.test", "parent", ("s1",))
PETE = Person("p2", "Pete Parent", "pete@example.test", "parent", ("s1", "s2"))
START = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)


def session(**changes: object) -> SessionInfo:
    values: dict[str, object] = {
        "id": "sess-1",
        "tutor": TUTOR,
        "students": (SARA, SID),
        "parents": (PAULA, PETE),
        "starts_at": START,
        "duration_minutes": 60,
        "topic": "Algebra",
    }
    values.update(changes)
    return SessionInfo(**values)  # type: ignore[arg-type]


def test_session_info_has_no_place_for_private_notes() -> None:
    names = {f.name for f in dataclasses.fields(SessionInfo)}
    assert "notes" not in names
    with pytest.raises(ValueError, match="timezone-aware"):
        session(starts_at=datetime(2026, 12, 1, 15, 30))


def test_requested_reaches_students_parents_and_the_tutor_once_each() -> None:
    out = messages.requested(session())
    assert [o.person.user_id for o in out] == ["t1", "s1", "s2", "p1", "p2"]
    assert {o.calendar for o in out} == {"REQUEST"}
    assert len({o.key for o in out}) == 5
    by = {o.person.user_id: o.rendered for o in out}
    assert by["p2"].subject == "New tutoring session request for Sara Student and Sid Student"
    assert by["p1"].subject == "New tutoring session request for Sara Student"
    assert "Please accept or decline" in by["s1"].text
    assert "Tuesday 1 December 2026, 15:30 UTC" in by["s1"].text


def test_completion_gives_each_family_only_its_own_invoice() -> None:
    invoices = [InvoiceInfo("inv-1", "s1", 60, 4500), InvoiceInfo("inv-2", "s2", 60, 10)]
    out = messages.completed(session(), recap="Recap " * 30, minutes=60, invoices=invoices)
    by = {o.person.user_id: o.rendered.text for o in out}
    assert set(by) == {"s1", "s2", "p1", "p2"}  # not the tutor
    assert "inv-1" in by["s1"] and "inv-2" not in by["s1"] and "45.00 USD" in by["s1"]
    assert "inv-2" in by["s2"] and "0.10 USD" in by["s2"]
    assert "inv-1" in by["p1"] and "inv-2" not in by["p1"]
    assert "inv-1" in by["p2"] and "inv-2" in by["p2"]
    assert all("Recap Recap" in text for text in by.values())


def test_cancellation_keys_and_lateness() -> None:
    out = messages.cancelled(session(), reason="  ", late=True, by=None)
    assert {o.calendar for o in out} == {"CANCEL"}
    text = out[0].rendered.text
    assert "has been cancelled." in text and "Late cancellation" in text and "Reason" not in text


def test_reminder_wording() -> None:
    assert messages.in_time(1440) == "in 24 hours"
    assert messages.in_time(2880) == "in 2 days"
    assert messages.in_time(60) == "in 1 hour"
    assert messages.in_time(120) == "in 2 hours"
    assert messages.in_time(15) == "in 15 minutes"
    [first, *_] = messages.reminder(session(), 60, 2)
    assert first.rendered.subject == "Reminder: tutoring session in 1 hour"
    assert first.key == "reminder:sess-1:2:60:t1"


def test_html_escapes_every_user_value_and_text_keeps_them() -> None:
    rendered = render(
        "session.accepted",
        recipient="<Tina>",
        values={"student": "Bob <img src=x onerror=alert(1)>", "when": format_when(START)},
        details=[("Topic", '"quoted" & <b>bold</b>')],
    )
    assert "<img" not in rendered.html and "<b>bold" not in rendered.html
    assert "Bob &lt;img src=x onerror=alert(1)&gt;" in rendered.html
    assert "&quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt;" in rendered.html
    assert "Hi &lt;Tina&gt;," in rendered.html
    assert "Bob <img src=x onerror=alert(1)>" in rendered.text
    assert rendered.subject.startswith("Bob <img src=x onerror=alert(1)> accepted")


def test_subjects_are_one_line_even_with_newlines_in_names() -> None:
    evil = dataclasses.replace(SARA, name="Sara\r\nBcc: everyone@example.test")
    out = messages.responded(session(), evil, accepted=True, sequence=0)
    assert "\n" not in out[0].rendered.subject and "\r" not in out[0].rendered.subject


def test_backoff_doubles_and_is_capped() -> None:
    delays = [backoff(n, 10, 300, jitter=0) for n in range(1, 8)]
    assert delays == [10, 20, 40, 80, 160, 300, 300]
    assert all(10 <= backoff(1, 10, 300) <= 12 for _ in range(50))


def test_session_helpers() -> None:
    s = session()
    assert s.ends_at == START + timedelta(minutes=60)
    assert s.parents_of("s2") == (PETE,)
    assert [p.user_id for p in s.everyone()] == ["t1", "s1", "s2", "p1", "p2"]
    assert InvoiceInfo("i", "s1", 5, -250, "EUR").amount_text == "-2.50 EUR"


def test_times_are_in_the_tutors_timezone_and_utc_for_everyone_else() -> None:
    assert format_when(START) == "Tuesday 1 December 2026, 15:30 UTC"
    assert format_when(START, "UTC") == "Tuesday 1 December 2026, 15:30 UTC"
    assert format_when(START, "Not/A_Zone") == "Tuesday 1 December 2026, 15:30 UTC"
    assert format_when(START, "America/New_York") == (
        "Tuesday 1 December 2026, 10:30 EST (America/New_York)"
    )
    summer = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)  # the next day in Sydney
    assert format_when(summer, "Australia/Sydney") == (
        "Thursday 2 July 2026, 09:30 AEST (Australia/Sydney)"
    )
    tutor = dataclasses.replace(TUTOR, timezone="America/New_York")
    moved = messages.rescheduled(session(tutor=tutor), START - timedelta(days=1), 1)
    by = {o.person.user_id: o.rendered for o in moved}
    assert (
        by["t1"].subject == "Session moved to Tuesday 1 December 2026, 10:30 EST (America/New_York)"
    )
    assert "from Monday 30 November 2026, 10:30 EST (America/New_York)" in by["t1"].text
    assert "When:     Tuesday 1 December 2026, 10:30 EST (America/New_York)" in by["t1"].text
    assert by["s1"].subject == "Session moved to Tuesday 1 December 2026, 15:30 UTC"
    assert "EST" not in by["s1"].text + by["p1"].text
    [to_tutor] = messages.responded(session(tutor=tutor), SARA, accepted=False, sequence=0)
    assert "10:30 EST" in to_tutor.rendered.subject


def test_a_withdrawal_tells_the_tutor_and_cancels_the_students_event() -> None:
    rest = session(students=(SID,), parents=(PETE,))
    out = messages.withdrawn(rest, SARA, (PAULA,), reason="Exam clash", late=True)
    assert [(o.person.user_id, o.calendar) for o in out] == [
        ("t1", None),
        ("s1", "CANCEL"),
        ("p1", "CANCEL"),
    ]
    assert len({o.key for o in out}) == 3
    by = {o.person.user_id: o.rendered for o in out}
    assert (
        by["t1"].subject
        == "Sara Student withdrew from your session on Tuesday 1 December 2026, 15:30 UTC"
    )
    assert "It goes ahead with Sid Student." in by["t1"].text
    assert "Exam clash" in by["t1"].text and "Late cancellation" in by["t1"].text
    assert by["s1"].subject.startswith("You withdrew from the session on ")
    assert by["p1"].subject.startswith("Sara Student withdrew from the session on ")


def test_every_session_event_kind_is_mapped_or_knowingly_ignored() -> None:
    kinds = typing.get_args(EventKind)
    assert "session.withdrawn" in kinds
    unmapped = [
        kind
        for kind in kinds
        if not SessionEventNotifications.handles(kind)
        and kind not in SessionEventNotifications.IGNORED
    ]
    assert unmapped == []


def test_no_show_notices_show_the_tutor_their_own_timezone() -> None:
    tutor = dataclasses.replace(TUTOR, timezone="Europe/Paris")
    out = absence.no_show(
        session(tutor=tutor),
        reason="student_no_show",
        absent=(SID,),
        reporter=None,
        fees=(),
        link=None,
    )
    by = {o.person.user_id: o.rendered.text for o in out}
    assert "Tuesday 1 December 2026, 16:30 CET (Europe/Paris)" in by["t1"]
    assert "Tuesday 1 December 2026, 15:30 UTC" in by["s1"] and "CET" not in by["s1"]
