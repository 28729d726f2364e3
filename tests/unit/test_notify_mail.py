"""The MIME message of an outbox email: the same bytes as the standard library's default policy
builds (the boundaries aside), with the header classes made once."""

from __future__ import annotations

import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest

from classroom.notify import ical, mail, messages
from classroom.notify.model import InvoiceInfo, Person, SessionInfo

NOW = datetime(2030, 1, 1, 9, 30, tzinfo=UTC)
TUTOR = Person("t-1", "Tina Tutor", "tina@example.test", "tutor", (), "Europe/Paris")
STUDENT = Person("s-1", "Zoë Ünïcode-Student", "zoe@example.test", "student")
PARENT = Person("p-1", "Paula Parent", "paula@example.test", "parent", ("s-1",))
SESSION = SessionInfo(
    "session-1", TUTOR, (STUDENT,), NOW, 60, (PARENT,), "Algèbre «linéaire»", "online", "accepted"
)


def _payloads() -> list[dict[str, Any]]:
    outgoing = messages.completed(
        SESSION,
        recap="Covered — " + "r" * 300,
        minutes=60,
        invoices=[InvoiceInfo("i", "s-1", 60, 5000)],
    ) + messages.requested(SESSION, "https://classroom.example.test")
    payloads = []
    for item in outgoing:
        payload: dict[str, Any] = {
            "to": item.person.email,
            "to_name": item.person.display_name,
            **item.rendered.to_payload(),
        }
        if item.calendar:
            payload["ics_method"] = item.calendar
            payload["ics"] = ical.render_invite(
                SESSION,
                method=item.calendar,
                sequence=0,
                now=NOW,
                attendee=item.person,
                organizer="Classroom <classroom@example.test>",
                url=None,
            )
        payloads.append(payload)
    return payloads


def _bytes(message: EmailMessage) -> bytes:
    return re.sub(rb"={15}\d+==", b"<boundary>", message.as_bytes())


@pytest.mark.parametrize("payload", _payloads(), ids=lambda p: str(p["subject"]))
def test_the_message_is_what_the_default_policy_builds(payload: dict[str, Any]) -> None:
    mail.build_message("row-0", payload, "Classroom <classroom@example.test>", NOW)
    built = mail.build_message("row-1", payload, "Classroom <classroom@example.test>", NOW)
    assert built.policy is mail.POLICY
    standard = mail.build_message(
        "row-1", payload, "Classroom <classroom@example.test>", NOW, email.policy.default
    )
    assert standard.policy is email.policy.default
    assert _bytes(built) == _bytes(standard)
    assert b"Subject:" in _bytes(built) and (b"text/calendar" in _bytes(built)) == (
        "ics" in payload
    )


@pytest.mark.parametrize("payload", _payloads(), ids=lambda p: str(p["subject"]))
def test_a_rendered_email_is_seven_bit_and_reads_back_the_same(payload: dict[str, Any]) -> None:
    rendered = mail.render("row-1", payload, "Classroom <classroom@example.test>", NOW)
    assert rendered.data.isascii()  # no SMTP server needs 8BITMIME for it
    seven_bit = email.policy.default.clone(cte_type="7bit")
    standard = mail.build_message(
        "row-1", payload, "Classroom <classroom@example.test>", NOW, seven_bit
    )
    assert re.sub(rb"={15}\d+==", b"<boundary>", rendered.data) == _bytes(standard)
    parsed = email.message_from_bytes(rendered.data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    plain = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content() == payload["text"] + ("" if payload["text"].endswith("\n") else "\n")
    assert payload["html"] in html.get_content()
    assert str(parsed["Subject"]) == rendered.subject == payload["subject"]
    assert rendered.sender == "classroom@example.test"
    assert rendered.recipients == (payload["to"],)
    assert payload["to"] in rendered.to


def test_rendering_refuses_what_cannot_make_an_email() -> None:
    payload = _payloads()[0]
    with pytest.raises(KeyError):
        mail.render("row-1", {k: v for k, v in payload.items() if k != "to"}, "C <c@x.test>", NOW)
    with pytest.raises(ValueError, match="no address"):
        mail.render("row-1", payload, "", NOW)


def test_header_classes_are_made_once_and_repeated_headers_parsed_once() -> None:
    factory = mail.POLICY.header_factory
    assert factory("Subject", "one").__class__ is factory("subject", "two").__class__
    assert factory("Subject", "one") is not factory("Subject", "one")
    assert factory("MIME-Version", "1.0") is factory("MIME-Version", "1.0")
    plain = 'text/plain; charset="utf-8"'
    assert factory("Content-Type", plain) is factory("Content-Type", plain)
    multipart = 'multipart/alternative; boundary="===============1=="'
    assert factory("Content-Type", multipart) is not factory("Content-Type", multipart)
    for n in range(200):  # never more than a bounded number kept
        factory("From", f"Sender {n} <s{n}@example.test>")
    assert factory("From", "Sender 199 <s199@example.test>") is not factory(
        "From", "Sender 199 <s199@example.test>"
    )
