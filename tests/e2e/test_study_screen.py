"""The study screen in a real browser: the answer as strong as the question and right under it, on a phone
and a desktop; the current card's count marked; the history grouped by day."""

from __future__ import annotations

import pytest

from .pages import DECK_SLUG, DESKTOP, PHONE_OPTIONS, expect

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def student(server) -> str:
    """A student's name (the install's first account, the teacher, is made first)."""
    server.flashapp("user", "create", "teacher.screen", "--password", PASSWORD, "--teacher")
    server.flashapp("user", "create", "bea.screen", "--password", PASSWORD)
    return "bea.screen"


def log_in_and_study(page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    page.goto(f"{base}/study/{DECK_SLUG}")


def style(locator, name: str) -> str:
    return locator.evaluate(f"element => getComputedStyle(element).{name}")


@pytest.mark.parametrize("options", [PHONE_OPTIONS, {"viewport": DESKTOP}], ids=["phone", "desktop"])
def test_the_answer_is_as_strong_as_the_question_and_right_under_it(new_context, live_server, student, options,
                                                                   screenshots):
    page = new_context(**options).new_page()
    log_in_and_study(page, live_server, student)
    check = expect()
    check(page.locator(".count.new.current")).to_be_visible()
    question, answer = page.locator("h1.question"), page.locator("#answer")
    page.get_by_text("Show answer").click()
    check(answer).to_be_visible()
    assert float(style(answer, "fontSize")[:-2]) >= float(style(question, "fontSize")[:-2])
    assert int(style(answer, "fontWeight")) >= 600
    gap = answer.bounding_box()["y"] - (question.bounding_box()["y"] + question.bounding_box()["height"])
    assert gap < 100, f"{gap:.0f} px between the question and its answer"
    name = "phone" if options is PHONE_OPTIONS else "desktop"
    page.screenshot(path=screenshots / f"study-answer-{name}.png", full_page=True)
