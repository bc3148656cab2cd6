"""One student's session in a real browser against a real `flashapp serve` process.

Register, study with the keyboard only, undo, read the history, download the Anki
package, study again with JavaScript off, try to answer one showing twice, and
check the pages at desktop and phone widths (screenshots go to screenshots/).
"""

from __future__ import annotations

import re
import zipfile

import pytest

from .pages import (
    DECK_SLUG,
    DECK_TITLE,
    DESKTOP,
    PHONE,
    PHONE_OPTIONS,
    RATING_NAMES,
    Showing,
    assert_fits_phone,
    expect,
    go_to,
    history_rows,
    history_total,
    log_in,
    log_in_with_the_keyboard,
    moved_on,
    showing,
    watch_errors,
)

pytestmark = pytest.mark.browser

USERNAME = "ada.e2e"
PASSWORD = "correct horse battery"
# Mostly Good and Easy, so the cards answered do not come straight back
# (Again brings its card back after a minute, Hard after a few).
RATINGS = [3, 4, 1, 3, 2, 4, 3]


def test_study_flow(new_context, live_server, screenshots, tmp_path):
    base = live_server
    page = new_context(viewport=DESKTOP, timezone_id="Europe/Amsterdam", accept_downloads=True).new_page()
    page_errors = watch_errors(page, ignore_http_errors=False)

    sign_up_and_see_the_bundled_deck(page, base)
    answered = study_cards_with_the_keyboard(page, base, RATINGS)
    undo_last_answer(page, answered)
    history_shows(page, base, answered, screenshots)
    download_the_anki_package(page, base, tmp_path, screenshots)
    study_with_javascript_off(new_context(viewport=DESKTOP, java_script_enabled=False).new_page(), base)
    total = history_total(page, base)
    assert total == len(RATINGS) - 1 + 2
    answering_again_while_the_answer_is_in_flight_sends_nothing(page, base, total)
    posting_one_showing_twice_records_one_answer(page, base, total + 1)
    reveal_the_answer_for_the_desktop_screenshot(page, screenshots)
    assert not page_errors, page_errors
    the_pages_fit_a_phone(new_context(**PHONE_OPTIONS, timezone_id="Europe/Amsterdam").new_page(), base,
                          total + 2, screenshots)


def is_answer_post(response) -> bool:
    return response.request.method == "POST" and response.url.endswith(f"/study/{DECK_SLUG}/answer")


def sign_up_and_see_the_bundled_deck(page, base: str) -> None:
    """Register (the time zone comes preselected from the browser) and land on the decks page."""
    check = expect()
    page.goto(f"{base}/register")
    check(page.locator("#time_zone")).to_have_value("Europe/Amsterdam")
    page.fill("#username", USERNAME)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/")
    check(page.locator(".flash.success")).to_contain_text(f"Welcome, {USERNAME}.")
    deck = page.locator("li.deck", has_text=DECK_TITLE)
    check(deck.get_by_role("heading", name=DECK_TITLE)).to_be_visible()
    new_count = int(deck.locator(".count.new b").inner_text())
    assert new_count >= len(RATINGS) + 3, f"the bundled deck offers only {new_count} new cards today"
    check(deck.locator(".count.learning b")).to_have_text("0")
    check(deck.locator(".count.review b")).to_have_text("0")


def study_cards_with_the_keyboard(page, base: str, ratings: list[int]) -> list[tuple[Showing, int]]:
    """Space shows the answer, a digit answers; each answer brings another card. The cards answered."""
    check = expect()
    page.locator("li.deck", has_text=DECK_TITLE).get_by_role("link", name="Study").click()
    page.wait_for_url(f"{base}/study/{DECK_SLUG}")
    check(page.locator("#undo-form")).to_have_count(0)  # nothing to undo yet
    answered: list[tuple[Showing, int]] = []
    current = showing(page)
    for rating in ratings:
        answer = page.locator("#answer")
        check(answer).to_be_hidden()
        page.keyboard.press("Space")
        check(answer).to_be_visible()
        check(page.locator("#reveal")).to_have_attribute("open", "")
        check(page.locator('button[data-key="3"]')).to_be_focused()
        with page.expect_response(is_answer_post) as response:
            page.keyboard.press(str(rating))
        assert response.value.status == 303, f"answer {rating} got HTTP {response.value.status}"
        answered.append((current, rating))
        following = moved_on(page, current)
        # Each card answered is scheduled at least a minute ahead, so another card comes next.
        assert following.card != current.card, f"card {current.card} came back after {RATING_NAMES[rating]}"
        current = following
    return answered


def undo_last_answer(page, answered: list[tuple[Showing, int]]) -> None:
    """Ctrl+Z takes back the last answer (dropped from `answered`) and shows that card again."""
    check = expect()
    undone, _ = answered.pop()
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/undo")) as response:
        page.keyboard.press("Control+z")
    assert response.value.status == 303
    check(page.locator(".flash")).to_have_text("Undid your last answer.")
    check(page.locator("#card")).to_have_attribute("data-card", undone.card)
    check(page.locator("#card .question")).to_have_text(undone.question)
    check(page.locator("#answer")).to_be_hidden()


def history_shows(page, base: str, answered: list[tuple[Showing, int]], screenshots) -> None:
    """The history lists exactly the answers that remain, newest first, and exports them as CSV."""
    check = expect()
    go_to(page, base, "History", "/history")
    remaining = [(s.question, RATING_NAMES[r]) for s, r in reversed(answered)]
    check(page.locator("table.history tbody tr")).to_have_count(len(answered))
    assert history_rows(page) == remaining
    check(page.locator("#history-summary")).to_contain_text(f"{len(answered)} answers")
    check(page.locator("#history-summary")).to_contain_text("Europe/Amsterdam")
    csv_response = page.request.get(f"{base}/history.csv")
    assert csv_response.ok
    csv_lines = csv_response.text().strip().splitlines()
    assert len(csv_lines) == 1 + len(answered), csv_lines
    page.screenshot(path=screenshots / "history-desktop.png", full_page=True)


def download_the_anki_package(page, base: str, folder, screenshots) -> None:
    """The decks page offers the deck as an .apkg: a zip with an Anki collection inside."""
    go_to(page, base, "Decks", "/")
    deck = page.locator("li.deck", has_text=DECK_TITLE)
    with page.expect_download() as download_info:
        deck.get_by_role("link", name="Export to Anki", exact=True).click()
    download = download_info.value
    assert download.failure() is None
    assert download.suggested_filename == f"{DECK_SLUG}.apkg"
    apkg = folder / download.suggested_filename
    download.save_as(apkg)
    assert zipfile.is_zipfile(apkg), "the .apkg download is not a zip file"
    with zipfile.ZipFile(apkg) as archive:
        assert "collection.anki2" in archive.namelist(), archive.namelist()
        assert archive.testzip() is None
    page.screenshot(path=screenshots / "decks-desktop.png", full_page=True)


def study_with_javascript_off(plain, base: str) -> None:
    """Without JavaScript the core loop works with plain HTML: once by mouse, once by keyboard."""
    check = expect()
    log_in_with_the_keyboard(plain, base, USERNAME, PASSWORD)
    plain.locator("li.deck", has_text=DECK_TITLE).get_by_role("link", name="Study").click()
    plain.wait_for_url(f"{base}/study/{DECK_SLUG}")
    before = showing(plain)
    check(plain.locator("#answer")).to_be_hidden()
    plain.locator("summary", has_text="Show answer").click()
    check(plain.locator("#answer")).to_be_visible()
    with plain.expect_navigation():
        plain.get_by_role("button", name=re.compile(r"\bGood\b")).click()
    after = moved_on(plain, before)
    assert after.card != before.card, "after Good with JavaScript off, the same card came back"
    check(plain.locator("#answer")).to_be_hidden()

    # Keyboard only: Tab to the summary, Enter, Tab to Good, Enter.
    for _ in range(30):
        if plain.evaluate("document.activeElement && document.activeElement.tagName") == "SUMMARY":
            break
        plain.keyboard.press("Tab")
    else:
        pytest.fail("Tab never reached the Show answer control with JavaScript off")
    plain.keyboard.press("Enter")
    check(plain.locator("#answer")).to_be_visible()
    for _ in range(10):
        if plain.evaluate("document.activeElement && document.activeElement.dataset.key") == "3":
            break
        plain.keyboard.press("Tab")
    else:
        pytest.fail("Tab never reached the Good button with JavaScript off")
    with plain.expect_navigation():
        plain.keyboard.press("Enter")
    third = moved_on(plain, after)
    assert third.card not in (before.card, after.card)


def answering_again_while_the_answer_is_in_flight_sends_nothing(page, base: str, total: int) -> None:
    """The page's guard: while the answer's request is held (a slow network), Good and 3 send nothing more."""
    check = expect()
    page.goto(f"{base}/study/{DECK_SLUG}")
    before = showing(page)
    page.keyboard.press("Space")
    check(page.locator("#answer")).to_be_visible()
    held = []

    def hold(route):
        held.append(route)

    page.route(f"**/study/{DECK_SLUG}/answer", hold)
    # One script clicks Good, waits while the answer is in flight, and clicks Good again.
    clicks = page.evaluate("""async () => {
        const form = document.getElementById('answer-form');
        const good = form.querySelector('button[data-key="3"]');
        good.click();
        await new Promise(resolve => setTimeout(resolve, 300));
        const sending = form.classList.contains('sending');
        good.click();
        return {sending};
    }""")
    assert clicks == {"sending": True}, clicks
    page.keyboard.press("3")  # and the shortcut, pressed again
    page.wait_for_timeout(500)
    assert len(held) == 1, f"answering again while the answer was in flight sent {len(held) - 1} more"
    held[0].continue_()
    page.unroute(f"**/study/{DECK_SLUG}/answer", hold)
    after = moved_on(page, before)
    assert after.card != before.card
    assert history_total(page, base) == total + 1, "answering one showing twice recorded two answers"


def posting_one_showing_twice_records_one_answer(page, base: str, total: int) -> None:
    """The server's guard: the same showing posted twice at once is recorded once."""
    page.goto(f"{base}/study/{DECK_SLUG}")
    before = showing(page)
    statuses = page.evaluate("""async () => {
        const form = document.getElementById('answer-form');
        const send = () => {
            const data = new FormData(form);
            data.set('rating', '3');
            return fetch(form.action, {method: 'POST', body: data, redirect: 'manual', credentials: 'same-origin'});
        };
        const responses = await Promise.all([send(), send()]);
        return responses.map(r => r.type === 'opaqueredirect' ? 303 : r.status);
    }""")
    assert statuses == [303, 303], statuses
    assert history_total(page, base) == total + 1, "one showing posted twice recorded two answers"
    page.goto(f"{base}/study/{DECK_SLUG}")
    assert showing(page).card != before.card


def reveal_the_answer_for_the_desktop_screenshot(page, screenshots) -> None:
    """The study screen with the answer revealed and the four buttons."""
    page.keyboard.press("Space")
    expect()(page.locator("#answer")).to_be_visible()
    page.screenshot(path=screenshots / "study-desktop.png", full_page=True)


def the_pages_fit_a_phone(mobile, base: str, answers: int, screenshots) -> None:
    """On a phone-sized touch screen nothing overflows, and the answer buttons are big and on screen."""
    check = expect()
    log_in(mobile, base, USERNAME, PASSWORD, tap=True)
    mobile.wait_for_url(f"{base}/")
    assert_fits_phone(mobile, "the decks page")
    mobile.screenshot(path=screenshots / "decks-phone.png", full_page=True)

    mobile.goto(f"{base}/history")
    check(mobile.locator("table.history tbody tr")).to_have_count(answers)
    assert_fits_phone(mobile, "the history page")
    mobile.screenshot(path=screenshots / "history-phone.png", full_page=True)

    mobile.goto(f"{base}/study/{DECK_SLUG}")
    mobile.locator("summary", has_text="Show answer").tap()
    check(mobile.locator("#answer")).to_be_visible()
    assert_fits_phone(mobile, "the study page")
    buttons = mobile.locator("#answer-form button.rating")
    check(buttons).to_have_count(4)
    for index in range(4):
        box = buttons.nth(index).bounding_box()
        assert box is not None
        assert box["height"] >= 44, f"answer button {index + 1} is {box['height']:.0f} px tall"
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        # Reachable without scrolling: the buttons sit inside the first screen.
        assert box["y"] + box["height"] <= PHONE["height"], f"answer button {index + 1} is below the fold"
    mobile.screenshot(path=screenshots / "study-phone.png", full_page=True)
