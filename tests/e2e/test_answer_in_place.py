"""With JavaScript on, an answer is sent in the background and the next card swapped in, without a page load.

One review per key press (a double press included), undo right after a swapped-in card, and the back
button leaves the study page without sending anything again.
"""

from __future__ import annotations

import pytest

from .pages import DECK_SLUG, DECK_TITLE, DESKTOP, expect, history_total, showing, watch_errors

pytestmark = pytest.mark.browser

USERNAME = "flo.inplace"
PASSWORD = "in place passphrase"
# Good and Easy only, so no card answered comes back during the test.
RATINGS = ["3", "4", "3", "4", "3"]


def is_answer_post(response) -> bool:
    return response.request.method == "POST" and response.url.endswith(f"/study/{DECK_SLUG}/answer")


def sign_up(page, base: str) -> None:
    page.goto(f"{base}/register")
    page.fill("#username", USERNAME)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/")


def answer_by_keyboard(page, rating: str, *, presses: int = 1) -> str:
    """Space, then the rating key `presses` times in a row; waits for the next card. The card answered."""
    check = expect()
    before = showing(page)
    page.keyboard.press("Space")
    check(page.locator("#answer")).to_be_visible()
    with page.expect_response(is_answer_post) as posted:
        for _ in range(presses):
            page.keyboard.press(rating)
    assert posted.value.status == 303
    check(page.locator("#answer-form input[name=token]")).not_to_have_value(before.token)
    check(page.locator("#answer")).to_be_hidden()
    return before.card


def test_answers_swap_the_next_card_in_without_a_page_load(new_context, live_server):
    base = live_server
    check = expect()
    page = new_context(viewport=DESKTOP).new_page()
    errors = watch_errors(page, ignore_http_errors=False)
    sign_up(page, base)
    page.locator("li.deck", has_text=DECK_TITLE).get_by_role("link", name="Study").click()
    page.wait_for_url(f"{base}/study/{DECK_SLUG}")

    posts: list[str] = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    page.evaluate("window.sameDocument = true")  # gone if the browser loads a new page
    answered = [answer_by_keyboard(page, rating) for rating in RATINGS]
    # A key pressed twice in a row answers once: the second press finds the answer already on its way.
    answered.append(answer_by_keyboard(page, "3", presses=2))
    page.wait_for_timeout(300)
    assert page.evaluate("window.sameDocument === true"), "an answer loaded a new page"
    assert len(set(answered)) == len(answered), answered
    assert len(posts) == len(answered), posts
    check(page).to_have_url(f"{base}/study/{DECK_SLUG}")
    # The swapped-in card works like a loaded one: Space reveals it and Good has the focus.
    page.keyboard.press("Space")
    check(page.locator('#answer-form button[data-key="3"]')).to_be_focused()

    # Back leaves the study page for the deck list (answers add no history entries) and sends nothing;
    # forward loads the study page afresh.
    posts.clear()
    page.go_back()
    check(page).to_have_url(f"{base}/")
    page.go_forward()
    check(page).to_have_url(f"{base}/study/{DECK_SLUG}")
    check(page.locator("#card")).to_be_visible()
    page.wait_for_timeout(300)
    assert posts == [], f"going back and forward sent {posts}"

    # Undo takes back an answer given on a swapped-in card.
    answered.append(answer_by_keyboard(page, "4"))
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/undo")):
        page.keyboard.press("Control+z")
    check(page.locator(".flash")).to_have_text("Undid your last answer.")
    check(page.locator("#card")).to_have_attribute("data-card", answered[-1])
    check(page.locator("#answer")).to_be_hidden()
    assert history_total(page, base) == len(answered) - 1, "each key press should record one review"
    assert not errors, errors
