"""Messages rules: plain text within its limit, who reads and who writes, the prepared prompt."""

from __future__ import annotations

import pytest

from classroom.errors import ClassroomError
from classroom.messages import model


def code(value: object) -> str:
    with pytest.raises(ClassroomError) as caught:
        model.clean_text(value)
    return caught.value.code


def test_text_is_trimmed_with_line_breaks_kept_and_controls_dropped() -> None:
    assert model.clean_text("  Hi\r\nthere\rnow\t!  ") == "Hi\nthere\nnow\t!"
    assert model.clean_text("a\x00b\x1bc\x7f") == "abc"
    assert model.clean_text("<b>bold</b> & 'quotes'") == "<b>bold</b> & 'quotes'"  # as sent


def test_text_is_one_to_two_thousand_characters() -> None:
    assert model.clean_text("é" * 2000) == "é" * 2000
    assert code("é" * 2001) == "message_too_long"
    assert code("  \n\t ") == "invalid_payload"
    assert code("\x00\x01") == "invalid_payload"
    assert code(None) == "invalid_payload"
    assert code("\ud800") == "invalid_payload"  # a lone surrogate cannot be stored


def test_client_ids() -> None:
    assert model.check_client_id(None) is None
    assert model.check_client_id("abc-DEF_123") == "abc-DEF_123"
    for bad in ("", "x" * 65, "has space", "no-show-prompt:s1", 5):
        with pytest.raises(ClassroomError):
            model.check_client_id(bad)


def test_who_reads_and_who_writes() -> None:
    def relation(user: str, role: str, children: tuple[str, ...] = ()) -> object:
        return model.relation_to(user, role, children, "t1", "s1")

    assert relation("t1", "tutor") == "tutor"
    assert relation("s1", "student") == "student"
    assert relation("p1", "parent", ("s1",)) == "parent"
    assert relation("a1", "admin") == "admin"
    assert relation("t2", "tutor") is None
    assert relation("s2", "student") is None
    assert relation("p2", "parent", ("s2",)) is None
    assert relation("s1", "tutor") is None  # the id alone is not enough
    assert [model.may_write(r) for r in ("tutor", "student", "parent", "admin", None)] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert model.counterpart("t1", "t1", "s1") == "s1"
    assert model.counterpart("s1", "t1", "s1") == "t1"


def test_a_conversation_is_opened_by_a_tutor_or_a_student() -> None:
    assert model.pair_for("tutor", "t1", "s1") == ("t1", "s1")
    assert model.pair_for("student", "s1", "t1") == ("t1", "s1")
    for role, user, other in (("parent", "p1", "t1"), ("admin", "a1", "s1"), ("tutor", "t1", "t1")):
        with pytest.raises(ClassroomError):
            model.pair_for(role, user, other)


def test_pages_and_unread() -> None:
    assert model.page_limit(None) == 50
    assert model.page_limit(0) == 1
    assert model.page_limit(10_000) == 200
    assert model.unread(3, [1, 2, 3, 4, 9]) == 2


def test_the_prepared_prompt_greets_the_student_by_first_name() -> None:
    assert model.prompt_text("Sara Student") == (
        "Hi Sara, are you joining? I'm waiting for you in the online classroom."
    )
