"""iCalendar text: folding, escaping, stable UIDs, methods and sequences."""

from __future__ import annotations

from datetime import UTC, datetime

from classroom.notify.ical import (
    escape_text,
    event_uid,
    fold,
    render_feed,
    render_invite,
    unfold,
)
from classroom.notify.model import Person, SessionInfo

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
TUTOR = Person("t1", "Tina Tutor", "tina@example.test", "tutor")
STUDENT = Person("s1", 'Sara "Quote" Student', "sara@example.test", "student")


def session(**changes: object) -> SessionInfo:
    values: dict[str, object] = {
        "id": "sess-1",
        "tutor": TUTOR,
        "students": (STUDENT,),
        "starts_at": datetime(2026, 12, 1, 15, 30, tzinfo=UTC),
        "duration_minutes": 45,
        "topic": "Física; vectors, forces\nand more",
    }
    values.update(changes)
    return SessionInfo(**values)  # type: ignore[arg-type]


def fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in unfold(text):
        name, _, value = line.partition(":")
        out.setdefault(name.split(";")[0], value)
    return out


def test_fold_keeps_lines_within_75_octets_and_never_splits_a_character() -> None:
    line = "DESCRIPTION:" + "é" * 100 + "x" * 80
    folded = fold(line)
    assert folded.endswith("\r\n")
    physical = folded[:-2].split("\r\n")
    assert len(physical) > 2
    assert all(len(p.encode()) <= 75 for p in physical)
    assert all(p.startswith(" ") for p in physical[1:])
    assert unfold(folded) == [line]
    assert fold("SHORT:x") == "SHORT:x\r\n"


def test_text_values_are_escaped() -> None:
    assert escape_text("a,b;c\\d\ne\r\nf") == "a\\,b\\;c\\\\d\\ne\\nf"
    assert escape_text("bell\x07") == "bell"


def test_invite_has_a_stable_uid_method_sequence_and_times() -> None:
    text = render_invite(
        session(),
        method="REQUEST",
        sequence=3,
        now=NOW,
        attendee=STUDENT,
        organizer="Classroom <classroom@example.test>",
        url="https://classroom.example.test",
    )
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    assert "\n" not in text.replace("\r\n", "")
    f = fields(text)
    assert f["METHOD"] == "REQUEST"
    assert f["UID"] == event_uid("sess-1") == "sess-1@classroom"
    assert f["SEQUENCE"] == "3"
    assert f["DTSTART"] == "20261201T153000Z"
    assert f["DTEND"] == "20261201T161500Z"
    assert f["DTSTAMP"] == "20261122T090000Z"
    assert f["STATUS"] == "TENTATIVE"
    assert f["SUMMARY"] == "Tutoring session: Física\\; vectors\\, forces and more"
    assert f["ORGANIZER"] == "mailto:classroom@example.test"
    assert 'ATTENDEE;CN="Sara Quote Student";' in "".join(unfold(text))
    assert f["ATTENDEE"] == "mailto:sara@example.test"


def test_cancel_marks_the_event_cancelled() -> None:
    text = render_invite(session(state="accepted"), method="CANCEL", sequence=4, now=NOW)
    f = fields(text)
    assert (f["METHOD"], f["STATUS"], f["SEQUENCE"]) == ("CANCEL", "CANCELLED", "4")


def test_feed_lists_each_session_once_with_its_state() -> None:
    entries = [
        (session(id="a", state="accepted"), 0),
        (session(id="b", state="cancelled"), 2),
        (session(id="c", state="requested", topic=None), 1),
    ]
    text = render_feed(entries, now=NOW, name="Sara's sessions")
    lines = unfold(text)
    assert lines.count("BEGIN:VEVENT") == 3
    assert [line for line in lines if line.startswith("UID:")] == [
        "UID:a@classroom",
        "UID:b@classroom",
        "UID:c@classroom",
    ]
    assert [line for line in lines if line.startswith("STATUS:")] == [
        "STATUS:CONFIRMED",
        "STATUS:CANCELLED",
        "STATUS:TENTATIVE",
    ]
    assert "METHOD:PUBLISH" in lines
    assert "X-WR-CALNAME:Sara's sessions" in lines
    assert "SUMMARY:Tutoring session" in lines
