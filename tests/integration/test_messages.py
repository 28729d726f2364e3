"""Messages against a real server with real Socket.IO clients, on SQLite and PostgreSQL: live to
a connected recipient on any page, by email to an offline one, in order, never to a stranger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from classroom.auth import Identity
from classroom.db.engine import Database
from tests.conftest import People
from tests.integration.absence_support import Http, bodies, mails, outbox
from tests.support import Connect, seed_session, wait_until


@pytest.fixture
async def server(make_client: Any) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await make_client(public_url="https://classroom.test")
    return client


@pytest.fixture
def http(server: TestClient[Any, Any], people: People) -> Http:
    return Http(server, people)


async def open_conversation(http: Http, who: Identity, with_id: str) -> dict[str, Any]:
    conversation: dict[str, Any] = await http.post("/api/conversations", who, {"with": with_id})
    return conversation


async def test_live_to_a_connected_recipient_in_order_and_no_email(
    db: Database, people: People, http: Http, connect: Connect, tmp_path: Path
) -> None:
    await seed_session(db, people.tutor, [people.student])
    student_page = await connect(people.student)  # any page: connected, in no classroom
    parent_page = await connect(people.parent)
    stranger = await connect(people.student2)
    conversation = await open_conversation(http, people.tutor, "student-1")
    assert conversation["tutor"]["id"] == "tutor-1"
    assert conversation["student"] == {"id": "student-1", "name": "Sara Student", "role": "student"}
    assert conversation["unread"] == 0 and conversation["can_write"] is True
    path = f"/api/conversations/{conversation['id']}/messages"

    texts = ["Hi Sara!", "Page 12 today.", "See you at five."]
    sent = [await http.post(path, people.tutor, {"text": t}, status=201) for t in texts]
    assert [m["id"] for m in sent] == sorted(m["id"] for m in sent)
    assert sent[0]["sender"] == {"id": "tutor-1", "name": "Tina Tutor", "role": "tutor"}
    assert sent[0]["session_id"] is None and sent[0]["kind"] == "text"

    await student_page.wait_for("message", lambda m: m["text"] == texts[-1])
    assert [m["text"] for m in student_page.events["message"]] == texts
    await parent_page.wait_for("message", lambda m: m["text"] == texts[-1])
    assert "message" not in stranger.events

    listed = await http.get("/api/conversations", people.student)
    assert listed["unread_total"] == 3
    (item,) = listed["conversations"]
    assert item["unread"] == 3 and item["last_message"]["text"] == "See you at five."
    assert (await http.get("/api/conversations", people.parent))["conversations"][0]["unread"] == 3
    assert (await http.get("/api/conversations", people.tutor))["unread_total"] == 0

    read = await http.post(f"/api/conversations/{conversation['id']}/read", people.student, {})
    assert read == {
        "conversation_id": conversation["id"],
        "last_read_id": sent[-1]["id"],
        "unread": 0,
    }
    await student_page.wait_for("conversation_read", lambda e: e["unread"] == 0)
    # The parent's marker is their own.
    assert (await http.get("/api/conversations", people.parent))["unread_total"] == 3
    # The student was connected: nothing was emailed to them.
    assert await outbox(db, "message.received") == []


async def test_an_offline_recipient_gets_an_email_escaped_with_a_link(
    db: Database, people: People, http: Http, connect: Connect, tmp_path: Path
) -> None:
    await seed_session(db, people.tutor, [people.student])
    conversation = await open_conversation(http, people.student, "tutor-1")
    text = 'Running late <script>alert("hi")</script> & sorry\nBe there at 5:10'
    await http.post(
        f"/api/conversations/{conversation['id']}/messages", people.student, {"text": text}, 201
    )
    mail_dir = tmp_path / "mail"
    await wait_until(lambda: len(mails(mail_dir)) == 1)
    (mail,) = mails(mail_dir)
    assert mail["To"] == "Tina Tutor <tina@example.test>"
    assert mail["Subject"] == "New message from Sara Student"
    plain, html = bodies(mail)
    assert text in plain
    assert f"https://classroom.test/#/messages/{conversation['id']}" in plain
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;hi&quot;)&lt;/script&gt; &amp; sorry<br>" in html

    # Once the tutor is connected, the next message is live only.
    tutor_page = await connect(people.tutor)
    await http.post(
        f"/api/conversations/{conversation['id']}/messages", people.student, {"text": "Here!"}, 201
    )
    await tutor_page.wait_for("message", lambda m: m["text"] == "Here!")
    assert len(await outbox(db, "message.received")) == 1


async def test_never_to_a_stranger(db: Database, people: People, http: Http) -> None:
    await seed_session(db, people.tutor, [people.student])
    await seed_session(db, people.tutor2, [people.student2])
    conversation = await open_conversation(http, people.tutor, "student-1")
    path = f"/api/conversations/{conversation['id']}/messages"
    await http.post(path, people.tutor, {"text": "Hello"}, 201)

    # Not theirs: unknown and invisible look alike.
    for who in (people.student2, people.tutor2):
        assert await http.error("GET", path, who, None, 404) == "not_found"
        assert await http.error("POST", path, who, {"text": "hi"}, 404) == "not_found"
        read = f"/api/conversations/{conversation['id']}/read"
        assert await http.error("POST", read, who, {}, 404) == "not_found"
        assert (await http.get("/api/conversations", who))["conversations"] == []
    assert await http.error("GET", "/api/conversations/nope/messages", people.tutor, None, 404) == (
        "not_found"
    )
    # Only people who share a booking start a conversation.
    body = {"with": "tutor-1"}
    assert await http.error("POST", "/api/conversations", people.student2, body, 403) == (
        "forbidden"
    )
    assert await http.error("POST", "/api/conversations", people.parent, body, 403) == ("forbidden")
    # The linked parent reads and may mark read, but does not write.
    page = await http.get(path, people.parent)
    assert [m["text"] for m in page["messages"]] == ["Hello"]
    assert page["conversation"]["can_write"] is False
    assert await http.error("POST", path, people.parent, {"text": "Hi"}, 403) == "forbidden"
    # Support reads everything.
    assert (await http.get(path, people.admin))["messages"][0]["text"] == "Hello"


async def test_history_pages_backwards(db: Database, people: People, http: Http) -> None:
    await seed_session(db, people.tutor, [people.student])
    conversation = await open_conversation(http, people.tutor, "student-1")
    path = f"/api/conversations/{conversation['id']}/messages"
    for n in range(5):
        sender = people.tutor if n % 2 == 0 else people.student
        await http.post(path, sender, {"text": f"message {n}"}, 201)
    latest = await http.get(f"{path}?limit=2", people.student)
    assert [m["text"] for m in latest["messages"]] == ["message 3", "message 4"]
    assert latest["has_more"] is True
    older = await http.get(f"{path}?limit=2&before={latest['messages'][0]['id']}", people.student)
    assert [m["text"] for m in older["messages"]] == ["message 1", "message 2"]
    oldest = await http.get(f"{path}?before={older['messages'][0]['id']}", people.student)
    assert [m["text"] for m in oldest["messages"]] == ["message 0"]
    assert oldest["has_more"] is False
    # Unread: others' messages after the reader's marker; sending marks what came before read.
    assert latest["conversation"]["unread"] == 1  # the tutor's "message 4"
    tutor_view = await http.get(path, people.tutor)
    assert tutor_view["conversation"]["unread"] == 0
    assert (await http.get(path, people.parent))["conversation"]["unread"] == 5
    assert await http.error("GET", f"{path}?before=x", people.tutor, None, 400) == (
        "invalid_payload"
    )


async def test_text_rules_and_idempotent_retries(
    db: Database, people: People, http: Http, connect: Connect
) -> None:
    await seed_session(db, people.tutor, [people.student])
    student = await connect(people.student)
    conversation = await open_conversation(http, people.tutor, "student-1")
    path = f"/api/conversations/{conversation['id']}/messages"

    for body, status, code in [
        ({"text": "   \n "}, 400, "invalid_payload"),
        ({"text": "x" * 2001}, 422, "message_too_long"),
        ({"text": 5}, 400, "invalid_payload"),
        ({}, 400, "invalid_payload"),
        ({"text": "hi", "extra": 1}, 400, "invalid_payload"),
        ({"text": "hi", "client_id": "has space"}, 400, "invalid_payload"),
    ]:
        assert await http.error("POST", path, people.tutor, body, status) == code
    longest = await http.post(path, people.tutor, {"text": " " + "y" * 2000 + " "}, 201)
    assert longest["text"] == "y" * 2000
    cleaned = await http.post(path, people.tutor, {"text": "a\r\nb\x00c\x07\td"}, 201)
    assert cleaned["text"] == "a\nbc\td"

    first = await http.post(path, people.tutor, {"text": "Once", "client_id": "c-1"}, 201)
    again = await http.post(path, people.tutor, {"text": "Once", "client_id": "c-1"}, 201)
    assert again == first
    await student.wait_for("message", lambda m: m["text"] == "Once")
    page = await http.get(path, people.tutor)
    assert [m["text"] for m in page["messages"]].count("Once") == 1
    assert [m["text"] for m in student.events["message"]].count("Once") == 1
    # Opening the same pair again finds the same conversation.
    assert (await open_conversation(http, people.student, "tutor-1"))["id"] == conversation["id"]


async def test_the_classroom_chat_panel_stays_with_the_session(
    db: Database, people: People, http: Http, connect: Connect
) -> None:
    session_id = await seed_session(db, people.tutor, [people.student])
    tutor, student = await connect(people.tutor), await connect(people.student)
    outside = await student.call("send_message", {"text": "Hello?"})
    assert outside["ok"] is False and outside["error"]["code"] == "not_in_classroom"
    assert (await tutor.call("join", {"session_id": session_id}))["ok"]
    assert (await student.call("join", {"session_id": session_id}))["ok"]

    ack = await student.call("send_message", {"text": "Can you hear me?"})
    assert ack["ok"], ack
    assert ack["message"]["session_id"] == session_id
    await tutor.wait_for("message", lambda m: m["text"] == "Can you hear me?")
    reply = await tutor.call("send_message", {"text": "Yes!", "client_id": "r1"})
    assert reply["ok"] and reply["message"]["conversation_id"] == ack["message"]["conversation_id"]
    await student.wait_for("message", lambda m: m["text"] == "Yes!")
    for payload, code in [
        (None, "invalid_payload"),
        ({"text": 3}, "invalid_payload"),
        ({"text": "x" * 2001}, "message_too_long"),
        ({"text": "hi", "to": "tutor-2"}, "invalid_payload"),
    ]:
        refused = await student.call("send_message", payload)
        assert refused["error"]["code"] == code, refused

    # The same conversation outside the classroom, and the session keeps what was said.
    history = await http.get(
        f"/api/conversations/{ack['message']['conversation_id']}/messages", people.student
    )
    assert [m["text"] for m in history["messages"]] == ["Can you hear me?", "Yes!"]
    for who in (people.tutor, people.student, people.parent):
        details = await http.get(f"/api/sessions/{session_id}", who)
        assert [m["text"] for m in details["messages"]] == ["Can you hear me?", "Yes!"]
    # A message sent on another page is not part of the session.
    await http.post(
        f"/api/conversations/{ack['message']['conversation_id']}/messages",
        people.tutor,
        {"text": "Homework is on page 3"},
        201,
    )
    details = await http.get(f"/api/sessions/{session_id}", people.tutor)
    assert len(details["messages"]) == 2


async def test_group_classroom_the_tutor_says_to_whom(
    db: Database, people: People, http: Http, connect: Connect
) -> None:
    session_id = await seed_session(db, people.tutor, [people.student, people.student2])
    tutor, sara, sid = (
        await connect(people.tutor),
        await connect(people.student),
        await connect(people.student2),
    )
    for client in (tutor, sara, sid):
        assert (await client.call("join", {"session_id": session_id}))["ok"]
    ambiguous = await tutor.call("send_message", {"text": "Hi"})
    assert ambiguous["error"]["code"] == "invalid_payload"
    stranger = await tutor.call("send_message", {"text": "Hi", "to": "student-9"})
    assert stranger["error"]["code"] == "not_a_participant"
    assert (await tutor.call("send_message", {"text": "Only Sid", "to": "student-2"}))["ok"]
    await sid.wait_for("message", lambda m: m["text"] == "Only Sid")
    assert "message" not in sara.events
    # Each student sees only their own conversation in the session details.
    sara_view = await http.get(f"/api/sessions/{session_id}", people.student)
    assert sara_view["messages"] == []
    sid_view = await http.get(f"/api/sessions/{session_id}", people.student2)
    assert [m["text"] for m in sid_view["messages"]] == ["Only Sid"]
    # A session id given over HTTP must be the pair's.
    other = await http.post("/api/conversations", people.tutor, {"with": "student-1"})
    code = await http.error(
        "POST",
        f"/api/conversations/{other['id']}/messages",
        people.tutor,
        {"text": "x", "session_id": "nope"},
        403,
    )
    assert code == "not_a_participant"


async def test_the_unread_total_counts_every_conversation_not_only_the_page(
    db: Database, people: People, http: Http
) -> None:
    await seed_session(db, people.tutor, [people.student])
    await seed_session(db, people.tutor2, [people.student])
    for tutor in (people.tutor, people.tutor2):
        conversation = await open_conversation(http, tutor, "student-1")
        path = f"/api/conversations/{conversation['id']}/messages"
        await http.post(path, tutor, {"text": f"Hello from {tutor.name}"}, status=201)
    page = await http.get("/api/conversations?limit=1", people.student)
    assert len(page["conversations"]) == 1
    assert page["unread_total"] == 2
