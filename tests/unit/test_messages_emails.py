"""The email of a message for someone offline: who wrote, the text, escaped in HTML."""

from __future__ import annotations

from classroom.notify import absence
from classroom.notify.model import Person

TUTOR = Person("t1", "Tina <b>Tutor</b>", "tina@example.test", "tutor")
SARA = Person("s1", "Sara Student", "sara@example.test", "student")


def test_the_text_is_kept_in_plain_text_and_escaped_in_html() -> None:
    text = 'Are you joining?\n<script>alert("x")</script> & see you'
    item = absence.message_received(
        recipient=SARA, sender=TUTOR, text=text, message_id=7, link="https://x.test/#/messages/c1"
    )
    assert item.person == SARA
    assert item.topic == "message.received"
    assert item.key == "message.received:7:s1"
    rendered = item.rendered
    assert rendered.subject == "New message from Tina <b>Tutor</b>"
    assert text in rendered.text
    assert "https://x.test/#/messages/c1" in rendered.text
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; see you" in rendered.html
    assert "Tina &lt;b&gt;Tutor&lt;/b&gt; sent you a message." in rendered.html
    assert "Are you joining?<br>" in rendered.html  # line breaks kept


def test_without_a_public_url_there_is_no_link_row() -> None:
    item = absence.message_received(
        recipient=TUTOR, sender=SARA, text="Running late", message_id=8, link=None
    )
    assert "Link" not in item.rendered.text
    assert item.key == "message.received:8:t1"
