"""No-show and removal emails: who gets them, what they say, each family's own fee."""

from __future__ import annotations

from datetime import UTC, datetime

from classroom.notify import absence
from classroom.notify.model import InvoiceInfo, Person, SessionInfo

TUTOR = Person("t1", "Tina Tutor", "tina@example.test", "tutor")
SARA = Person("s1", "Sara Student", "sara@example.test", "student")
SID = Person("s2", "Sid Student", "sid@example.test", "student")
PAULA = Person("p1", "Paula Parent", "paula@example.test", "parent", ("s1",))
START = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
LINK = "https://x.test/#/sessions/sess-1"


def session(*students: Person) -> SessionInfo:
    return SessionInfo(
        id="sess-1",
        tutor=TUTOR,
        students=students or (SARA,),
        parents=(PAULA,),
        starts_at=START,
        duration_minutes=60,
        topic="Algebra",
    )


def test_student_no_show_reaches_everyone_with_a_way_to_a_new_time() -> None:
    out = absence.no_show(
        session(), reason="student_no_show", absent=[SARA], reporter=TUTOR, fees=[], link=LINK
    )
    assert [o.person.user_id for o in out] == ["t1", "s1", "p1"]
    assert {o.topic for o in out} == {"session.no_show"}
    assert len({o.key for o in out}) == 3
    by = {o.person.user_id: o.rendered for o in out}
    assert by["s1"].subject == "Missed session: Tuesday 1 December 2026, 15:30 UTC"
    assert "Sara Student did not join the tutoring session with Tina Tutor" in by["s1"].text
    assert "Message Tina Tutor to find a new time" in by["s1"].text
    assert "Message Sara Student to agree on a new time" in by["t1"].text
    assert LINK in by["p1"].text
    assert "fee" not in by["s1"].text


def test_a_fee_is_shown_to_the_tutor_and_the_family_that_pays_it() -> None:
    fees = [InvoiceInfo("inv-1", "s1", 60, 1500)]
    out = absence.no_show(
        session(SARA, SID),
        reason="student_no_show",
        absent=[SARA, SID],
        reporter=TUTOR,
        fees=fees,
        link=None,
    )
    by = {o.person.user_id: o.rendered.text for o in out}
    assert "No-show fee (Sara Student): 15.00 USD" in by["t1"]
    assert "No-show fee (Sara Student): 15.00 USD" in by["s1"]
    assert "No-show fee (Sara Student): 15.00 USD" in by["p1"]
    assert "No-show fee" not in by["s2"]


def test_tutor_no_show_says_nobody_is_charged() -> None:
    out = absence.no_show(
        session(), reason="tutor_no_show", absent=[TUTOR], reporter=SARA, fees=[], link=None
    )
    by = {o.person.user_id: o.rendered.text for o in out}
    assert "Tina Tutor did not join the tutoring session" in by["s1"]
    assert "while Sara Student waited in the classroom" in by["s1"]
    assert "Nobody is charged" in by["p1"]
    assert "Please message Sara Student to offer a new time" in by["t1"]


def test_removed_reaches_the_student_and_their_parents_with_a_cancelled_event() -> None:
    out = absence.removed(
        session(SID), student=SARA, parents=[PAULA], reason="<i>Disruptive</i>", link=None
    )
    assert [o.person.user_id for o in out] == ["s1", "p1"]
    assert {o.calendar for o in out} == {"CANCEL"}
    by = {o.person.user_id: o.rendered for o in out}
    assert "Tina Tutor removed you from the tutoring session" in by["s1"].text
    assert "You will not be charged" in by["s1"].text
    assert by["p1"].subject.startswith("Sara Student removed from the session")
    assert "&lt;i&gt;Disruptive&lt;/i&gt;" in by["s1"].html
