"""Seed 002, *If the Student Doesn't Join*, in a real browser: the tutor waits in the classroom,
sends "Are you joining?" (the student's Messages page shows it live), ends the session as a
no-show and books a new time; and a group session completed after removing the absent student."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest

from classroom.auth import Identity
from classroom.db.tables import utcnow
from tests.e2e.conftest import RATE_CENTS, STUDENT, TUTOR, Browser, Server, playwright_async
from tests.support import seed_session

expect = playwright_async.expect

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

PROMPT = "Hi Sam, are you joining? I'm waiting for you in the online classroom."
ABSENT = Identity("student-absent", "student", "Alex Absent", "alex@example.test")
RECAP_150 = (
    "Topics covered: factoring quadratics and the formula. How your tutee did: solved six of "
    "eight alone. Next steps: word problems and graphing parabolas."
)
assert len(RECAP_150) == 150


def eleven_minutes_ago() -> Any:
    return utcnow().replace(second=0, microsecond=0) - timedelta(minutes=12)


async def test_student_no_show_prompt_end_and_book_a_new_time(
    server: Server, browser: Browser
) -> None:
    await server.set_rate(TUTOR, RATE_CENTS)
    session_id = await seed_session(server.db, TUTOR, [STUDENT], starts_at=eleven_minutes_ago())

    # The student has their Messages page open in another browser context; nothing there yet.
    student = await browser.page("student", server.link(STUDENT, "/messages"))
    await expect(student.get_by_role("heading", level=1)).to_have_text("Messages")
    await expect(student.locator(".conversation-empty")).to_be_visible()

    # The tutor opens the details page: the student has not come; Start session.
    tutor = await browser.page("tutor", server.link(TUTOR, f"/sessions/{session_id}"))
    await expect(tutor.get_by_role("heading", level=1)).to_have_text("Quadratic equations")
    await expect(tutor.locator(".noshow")).to_contain_text("Sam Student hasn't joined yet")
    await browser.screenshot(tutor, "tutor-details-student-absent")
    await tutor.get_by_role("button", name="Start session").click()
    await expect(tutor.get_by_role("button", name="Leave")).to_be_visible()

    # In the classroom: Send "Are you joining?".
    prompt = tutor.get_by_role("button", name=re.compile(r"^Send .Are you joining\?.$"))
    await prompt.click()
    await expect(tutor.locator(".noshow .sent-mark")).to_have_text("Sent ✓")
    await expect(tutor.locator(".chat .message[data-kind='prompt'] .message-text")).to_have_text(
        PROMPT
    )
    await browser.screenshot(tutor, "tutor-classroom-prompt-sent")

    # The student's Messages page shows it live, with the unread count in the navigation.
    conversation = student.locator(".conversation")
    await expect(conversation).to_have_count(1)
    await expect(conversation.locator(".conversation-last")).to_have_text(PROMPT)
    await expect(student.locator("#unread-total")).to_have_text("1")
    await browser.screenshot(student, "student-messages-live")
    await conversation.click()
    await expect(student.get_by_role("heading", level=2, name="Tina Tutor")).to_be_visible()
    await expect(student.locator(".thread .message-text")).to_have_text(PROMPT)
    await expect(student.locator("#unread-total")).to_be_hidden()  # read while on screen
    await browser.screenshot(student, "student-conversation")

    # End as no-show: confirm; the classroom closes and the details page says so.
    await tutor.get_by_role("button", name="End as no-show").click()
    confirm = tutor.get_by_role("dialog", name="End as no-show?")
    await expect(confirm).to_contain_text("Sam Student did not come")
    await browser.screenshot(tutor, "tutor-end-as-no-show-confirm")
    await confirm.get_by_role("button", name="End as no-show").click()
    await expect(tutor.get_by_role("heading", level=1)).to_have_text("Quadratic equations")
    banner = tutor.locator(".missed-banner")
    await expect(banner.get_by_role("heading", name="Missed – no-show")).to_be_visible()
    await expect(tutor.locator(".details-header .badge")).to_have_text("Missed – no-show")
    await expect(banner.get_by_role("button", name="Message Sam Student")).to_be_visible()
    await expect(tutor.locator(".session-messages .message-text")).to_have_text(PROMPT)
    await browser.screenshot(tutor, "tutor-details-missed-no-show")

    # Book a new time: the create dialog comes prefilled with the same student, duration, topic.
    await banner.get_by_role("button", name="Book a new time").click()
    dialog = tutor.get_by_role("dialog", name="Book a new time")
    await expect(dialog.get_by_role("checkbox", name="Sam Student")).to_be_checked()
    await expect(dialog.get_by_label("Duration")).to_have_value("60")
    await expect(dialog.get_by_label("Topic")).to_have_value("Quadratic equations")
    tomorrow = date.today() + timedelta(days=1)
    await dialog.get_by_label("Date", exact=True).fill(tomorrow.isoformat())
    await dialog.get_by_label("Start time").fill("17:00")
    await browser.screenshot(tutor, "tutor-book-a-new-time")
    await dialog.get_by_role("button", name="Create").click()
    await expect(dialog).to_be_hidden()
    await expect(banner.get_by_role("status")).to_contain_text("New session booked")

    # It is on the Sessions page, waiting for the student to accept.
    await tutor.get_by_role("link", name="← All sessions").click()
    await tutor.get_by_role("tab", name="Upcoming").click()
    booked = tutor.locator("article.session-card.state-requested")
    await expect(booked).to_have_count(1)
    await expect(booked.locator(".session-title")).to_have_text("Quadratic equations")
    await expect(booked).to_contain_text("with Sam Student")
    await browser.screenshot(tutor, "tutor-sessions-new-time")
    await tutor.get_by_role("tab", name="Past").click()
    missed = tutor.locator(f"article[data-session-id='{session_id}'] .badge")
    await expect(missed).to_have_text("Missed – no-show")

    assert browser.problems() == []


async def test_group_session_remove_the_absent_student_and_complete(
    server: Server, browser: Browser
) -> None:
    await server.set_rate(TUTOR, RATE_CENTS)
    session_id = await seed_session(
        server.db, TUTOR, [STUDENT, ABSENT], starts_at=eleven_minutes_ago()
    )
    fragment = f"/sessions/{session_id}"
    tutor = await browser.page("tutor", server.link(TUTOR, fragment))
    student = await browser.page("student", server.link(STUDENT, fragment))
    for page in (tutor, student):
        await expect(page.get_by_role("heading", level=1)).to_have_text("Quadratic equations")

    await student.get_by_role("button", name="Join online classroom").click()
    await expect(student.get_by_role("button", name="Leave call")).to_be_visible()
    await tutor.get_by_role("button", name="Start session").click()
    await expect(tutor.get_by_role("button", name="Leave")).to_be_visible()

    # The tutor's chat has one tab per student; a message reaches Sam live.
    chat = tutor.locator(".chat")
    await expect(chat.get_by_role("tab")).to_have_count(2)
    await chat.get_by_role("tab", name="Sam Student").click()
    await chat.get_by_role("tabpanel").get_by_label("Message").fill("Welcome, Sam!")
    await chat.get_by_role("tabpanel").get_by_role("button", name="Send").click()
    await expect(student.locator(".chat .message-text")).to_have_text("Welcome, Sam!")

    # Alex never came: remove them from the participant list.
    people = tutor.locator(".call-people")
    await expect(people.locator("[data-user-id='student-absent']")).to_contain_text("Not joined")
    await people.get_by_role("button", name="Remove Alex Absent").click()
    dialog = tutor.get_by_role("dialog", name="Remove Alex Absent?")
    await dialog.get_by_label("Reason (optional)").fill("Did not come and did not answer.")
    await browser.screenshot(tutor, "tutor-remove-dialog")
    await dialog.get_by_role("button", name="Remove").click()
    await expect(people.locator("[data-user-id='student-absent']")).to_contain_text("Removed")
    await expect(people.get_by_role("button", name=re.compile("^Remove"))).to_have_count(0)
    await expect(chat.get_by_role("tab")).to_have_count(1)  # no chat with a removed student
    await browser.screenshot(tutor, "tutor-classroom-removed")

    # Sam leaves; the tutor logs time and leaves: completed, only Sam billed.
    await student.get_by_role("button", name="Leave call").click()
    await expect(tutor.locator(".tile[data-user-id='student-e2e']")).to_have_count(0)
    await tutor.get_by_role("button", name="Leave").click()
    await tutor.get_by_role("menuitem", name=re.compile("^Log time & leave call")).click()
    log_time = tutor.get_by_role("dialog", name="Log time & leave call")
    await log_time.get_by_label("Time spent in the session").select_option("45")
    await log_time.get_by_label("What did you cover?").fill(RECAP_150)
    await log_time.get_by_role("button", name="Log time & leave call").click()
    await expect(tutor.locator(".details-header .badge")).to_have_text("Completed")
    await expect(tutor.locator(".invoice")).to_have_count(1)
    await expect(tutor.locator(".invoice .amount")).to_have_text("$30.00")
    participants = tutor.locator(".people")
    await expect(participants.locator("[data-user-id='student-absent']")).to_contain_text("Removed")
    await expect(tutor.locator(".session-messages .message-text")).to_have_text("Welcome, Sam!")
    await browser.screenshot(tutor, "tutor-details-completed-after-removal")

    assert browser.problems() == []


async def test_a_removed_student_is_taken_out_and_cannot_rejoin(
    server: Server, browser: Browser
) -> None:
    session_id = await seed_session(server.db, TUTOR, [STUDENT, ABSENT])
    fragment = f"/sessions/{session_id}"
    tutor = await browser.page("tutor", server.link(TUTOR, fragment))
    alex = await browser.page("alex", server.link(ABSENT, fragment))
    await alex.get_by_role("button", name="Join online classroom").click()
    await expect(alex.get_by_role("button", name="Leave call")).to_be_visible()
    await tutor.get_by_role("button", name="Start session").click()
    people = tutor.locator(".call-people")
    await expect(people.locator("[data-user-id='student-absent']")).to_contain_text("Here")

    await people.get_by_role("button", name="Remove Alex Absent").click()
    await (
        tutor.get_by_role("dialog", name="Remove Alex Absent?")
        .get_by_role("button", name="Remove")
        .click()
    )
    await expect(people.locator("[data-user-id='student-absent']")).to_contain_text("Removed")
    await expect(tutor.locator(".tile[data-user-id='student-absent']")).to_have_count(0)

    # Alex's page leaves the call and says why; the session no longer offers the classroom.
    await expect(alex.get_by_role("heading", level=1)).to_have_text("Quadratic equations")
    await expect(alex.locator(".flash-slot")).to_contain_text("The tutor removed you")
    await expect(alex.get_by_role("button", name="Join online classroom")).to_have_count(0)
    await browser.screenshot(alex, "removed-student-details")

    # Opening the classroom's address anyway is refused with the same sentence.
    await alex.goto(server.link(ABSENT, f"{fragment}/classroom"))
    await expect(alex.get_by_role("alert")).to_contain_text("The tutor removed you")
    await browser.screenshot(alex, "removed-student-join-refused")

    assert browser.problems() == []
