"""The whole story in a real browser: a tutor page and a student page, real server, real media."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import RATE_CENTS, STUDENT, TUTOR, Browser, Server, playwright_async
from tests.support import seed_session

expect = playwright_async.expect

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

RECAP_150 = (
    "Topics covered: factoring quadratics and the formula. How your tutee did: solved six of "
    "eight alone. Next steps: word problems and graphing parabolas."
)
assert len(RECAP_150) == 150

MEDIA_TIMEOUT_MS = 25_000
ENTER_TIMEOUT_MS = 20_000
# wait_for_function polls a synchronous predicate: each poll starts a getStats() read and looks
# at the result of the previous one.
DECODED_VIDEO = """(userId) => {
  const media = window.classroomMedia;
  if (!media) return false;
  media.videoStats().then((stats) => { window.lastVideoStats = stats; });
  return (window.lastVideoStats || []).some((s) => s.userId === userId && s.framesDecoded > 0);
}"""
VIDEO_STATS = "() => window.classroomMedia.videoStats()"


async def sees_video_of(page: Any, user_id: str) -> None:
    """Wait (bounded) until the page has decoded video frames from ``user_id`` (getStats)."""
    await page.wait_for_function(DECODED_VIDEO, arg=user_id, timeout=MEDIA_TIMEOUT_MS, polling=250)
    stats = await page.evaluate(VIDEO_STATS)
    decoded = [s["framesDecoded"] for s in stats if s["userId"] == user_id]
    assert decoded and max(decoded) > 0, stats


async def open_both(server: Server, browser: Browser, session_id: str) -> tuple[Any, Any]:
    fragment = f"/sessions/{session_id}"
    tutor = await browser.page("tutor", server.link(TUTOR, fragment))
    student = await browser.page("student", server.link(STUDENT, fragment))
    for page in (tutor, student):
        await expect(page.get_by_role("heading", level=1)).to_have_text("Quadratic equations")
        assert "token=" not in page.url  # the token left the address bar
    return tutor, student


async def enter_classroom(browser: Browser, tutor: Any, student: Any) -> None:
    await student.get_by_role("button", name="Join online classroom").click()
    # Camera start-up and the join take a few seconds on a loaded 2-core machine.
    await expect(student.get_by_role("button", name="Leave call")).to_be_visible(
        timeout=ENTER_TIMEOUT_MS
    )
    await expect(tutor.locator(".presence-item[data-user-id='student-e2e']")).to_be_visible()
    await browser.screenshot(tutor, "tutor-details-student-waiting")

    await tutor.get_by_role("button", name="Start session").click()
    await expect(tutor.get_by_role("button", name="Leave")).to_be_visible(timeout=ENTER_TIMEOUT_MS)
    await expect(student.locator(".tile[data-user-id='tutor-e2e'] .tile-name")).to_have_text(
        "Tina Tutor"
    )
    await expect(tutor.locator(".tile[data-user-id='student-e2e'] .tile-name")).to_have_text(
        "Sam Student"
    )
    await sees_video_of(student, TUTOR.user_id)
    await sees_video_of(tutor, STUDENT.user_id)
    await browser.screenshot(tutor, "tutor-classroom")
    await browser.screenshot(student, "student-classroom")


async def test_join_log_time_refused_then_completed_and_reviewed(
    server: Server, browser: Browser
) -> None:
    await server.set_rate(TUTOR, RATE_CENTS)
    session_id = await seed_session(server.db, TUTOR, [STUDENT])
    tutor, student = await open_both(server, browser, session_id)
    await browser.screenshot(student, "student-details")
    await enter_classroom(browser, tutor, student)

    # Log time & leave call while the student is still there: refused, the tutor stays.
    await tutor.get_by_role("button", name="Leave").click()
    await expect(tutor.get_by_role("menu")).to_be_visible()
    await browser.screenshot(tutor, "tutor-hangup-menu")
    await tutor.get_by_role("menuitem", name=re.compile("^Log time & leave call")).click()
    dialog = tutor.get_by_role("dialog", name="Log time & leave call")
    await expect(dialog).to_be_visible()
    submit = dialog.get_by_role("button", name="Log time & leave call")
    await dialog.get_by_label("Time spent in the session").select_option("45")
    recap = dialog.get_by_label("What did you cover?")
    await recap.fill(RECAP_150[:149])
    await expect(dialog.locator(".char-count")).to_contain_text("149 / 150")
    await expect(submit).to_be_disabled()
    await recap.fill(RECAP_150)
    await expect(submit).to_be_enabled()
    await submit.click()
    await expect(dialog.get_by_role("alert")).to_contain_text(
        "Your student is still in the classroom"
    )
    await browser.screenshot(tutor, "tutor-log-time-refused")
    assert tutor.url.endswith("/classroom")
    await sees_video_of(tutor, STUDENT.user_id)

    # The student hangs up; the same pop-up now completes the session.
    await student.get_by_role("button", name="Leave call").click()
    await expect(student.get_by_role("heading", level=1)).to_have_text("Quadratic equations")
    await expect(tutor.locator(".tile[data-user-id='student-e2e']")).to_have_count(0)
    await submit.click()
    await expect(tutor.locator(".details-header .badge")).to_have_text("Completed")

    # Details: completed, the invoice and the attendance.
    await expect(tutor.locator(".logged-minutes")).to_have_text("45 min")
    await expect(tutor.locator(".recap-text")).to_have_text(RECAP_150)
    await expect(tutor.locator(".invoice .amount")).to_have_text("$30.00")
    attendance = tutor.locator("table.attendance tbody tr")
    await expect(attendance).to_have_count(2)
    await expect(tutor.locator(".overlap")).to_contain_text("Tutor and student together")
    await browser.screenshot(tutor, "tutor-details-completed")

    # The student's page learned it live; they rate and review.
    await expect(student.locator(".details-header .badge")).to_have_text("Completed")
    await expect(student.locator(".invoice .amount")).to_have_text("$30.00")
    review = student.locator(".review-card")
    await review.locator("label.star").nth(4).click()  # the fifth star
    await expect(review.locator(".rating-word")).to_have_text("5 of 5 — Excellent")
    await review.get_by_label("Your review (optional)").fill(
        "Clear explanations and patient with my questions."
    )
    await review.get_by_role("button", name="Submit review").click()
    await expect(review.get_by_role("img", name="5 out of 5 stars")).to_be_visible()
    await expect(review).to_contain_text("Clear explanations and patient with my questions.")
    await browser.screenshot(student, "student-review")

    # The Sessions page lists it among the past sessions, completed.
    await student.get_by_role("link", name="← All sessions").click()
    await student.get_by_role("tab", name="Past").click()
    card = student.locator(f"article[data-session-id='{session_id}']")
    await expect(card.locator(".badge")).to_have_text("Completed")
    await browser.screenshot(student, "student-sessions-past")

    assert browser.problems() == []


async def test_leave_call_then_complete_session_enables_live(
    server: Server, browser: Browser
) -> None:
    await server.set_rate(TUTOR, RATE_CENTS)
    session_id = await seed_session(server.db, TUTOR, [STUDENT])
    tutor, student = await open_both(server, browser, session_id)
    await enter_classroom(browser, tutor, student)

    # Leave call takes the tutor to the details page; the student is still in.
    await tutor.get_by_role("button", name="Leave").click()
    await tutor.get_by_role("menuitem", name=re.compile("^Leave call")).click()
    await expect(tutor.get_by_role("heading", level=1)).to_have_text("Quadratic equations")
    complete = tutor.get_by_role("button", name="Complete Session")
    await expect(complete).to_be_disabled()
    await expect(tutor.locator("#complete-hint")).to_contain_text("Sam Student still in")
    await browser.screenshot(tutor, "tutor-details-complete-disabled")

    # It enables the moment the student leaves, and disables again if they come back.
    await student.get_by_role("button", name="Leave call").click()
    await expect(complete).to_be_enabled()
    await student.get_by_role("button", name="Join online classroom").click()
    await expect(complete).to_be_disabled()
    await student.get_by_role("button", name="Leave call").click()
    await expect(complete).to_be_enabled()
    await browser.screenshot(tutor, "tutor-details-complete-enabled")

    await complete.click()
    dialog = tutor.get_by_role("dialog", name="Complete session")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Time spent in the session").select_option("45")
    await dialog.get_by_label("What did you cover?").fill(RECAP_150)
    await browser.screenshot(tutor, "tutor-complete-dialog")
    await dialog.get_by_role("button", name="Log time").click()
    await expect(tutor.locator(".details-header .badge")).to_have_text("Completed")
    await expect(tutor.locator(".invoice .amount")).to_have_text("$30.00")
    await expect(student.locator(".details-header .badge")).to_have_text("Completed")
    await browser.screenshot(student, "student-details-completed")

    assert browser.problems() == []
