"""One student's session in a real browser against a real `flashapp serve` process.

Register, study with the keyboard only, undo, read the history, download the Anki
package, study again with JavaScript off, try to answer one showing twice, and
check the pages at desktop and phone widths (screenshots go to screenshots/).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass

import pytest

pytestmark = pytest.mark.browser

USERNAME = "ada.e2e"
PASSWORD = "correct horse battery"
DECK_SLUG = "back-muscles"
DECK_TITLE = "Back muscles"
# Mostly Good and Easy, so the cards answered do not come straight back
# (Again brings its card back after a minute, Hard after a few).
RATINGS = [3, 4, 1, 3, 2, 4, 3]
RATING_NAMES = {1: "Again", 2: "Hard", 3: "Good", 4: "Easy"}
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}
TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class Showing:
    """One card as shown on the study page."""

    card: str
    question: str
    token: str


def _expect():
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    return expect


def showing(page) -> Showing:
    expect = _expect()
    expect(page.locator("#card")).to_be_visible()
    return Showing(card=page.locator("#card").get_attribute("data-card"),
                   question=page.locator("#card .question").inner_text().strip(),
                   token=page.locator("#answer-form input[name=token]").input_value())


def is_answer_post(response) -> bool:
    return response.request.method == "POST" and response.url.endswith(f"/study/{DECK_SLUG}/answer")


def moved_on(page, before: Showing) -> Showing:
    """Wait for the study page to show a new showing (a fresh token), and return it."""
    expect = _expect()
    expect(page.locator("#answer-form input[name=token]")).not_to_have_value(before.token)
    page.wait_for_load_state()
    return showing(page)


def history_rows(page) -> list[tuple[str, str]]:
    """(question, rating name) of each row on the history page, newest first."""
    return page.evaluate("""() => [...document.querySelectorAll('table.history tbody tr')].map(tr => [
        tr.querySelector('td.question').firstChild.textContent.trim(),
        tr.querySelector('.pill').textContent.trim(),
    ])""")


def history_total(page, base: str) -> int:
    page.goto(f"{base}/history")
    hint = page.locator("p.hint").first.inner_text()
    match = re.match(r"(\d+) answers?, newest first", hint)
    assert match, f"unexpected history summary: {hint!r}"
    return int(match.group(1))


def assert_fits_phone(page, what: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{what} overflows horizontally at 375 px: scrollWidth={width}"


def log_in(page, base: str) -> None:
    """Log in with the keyboard: type, Tab, type, Enter."""
    expect = _expect()
    page.goto(f"{base}/login")
    expect(page.locator("#username")).to_be_focused()
    page.keyboard.type(USERNAME)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")


def test_study_flow(new_context, live_server, screenshots, tmp_path):
    expect = _expect()
    base = live_server
    page = new_context(viewport=DESKTOP, timezone_id="Europe/Amsterdam", accept_downloads=True).new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.on("console", lambda message: page_errors.append(message.text) if message.type == "error" else None)

    # 1. Register and land on the decks page.
    page.goto(f"{base}/register")
    expect(page.locator("#time_zone")).to_have_value("Europe/Amsterdam")  # preselected from the browser
    page.fill("#username", USERNAME)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/")
    expect(page.locator(".flash.success")).to_contain_text(f"Welcome, {USERNAME}.")
    deck = page.locator("li.deck", has_text=DECK_TITLE)
    expect(deck.get_by_role("heading", name=DECK_TITLE)).to_be_visible()
    new_count = int(deck.locator(".count.new b").inner_text())
    assert new_count >= len(RATINGS) + 3, f"the bundled deck offers only {new_count} new cards today"
    expect(deck.locator(".count.learning b")).to_have_text("0")
    expect(deck.locator(".count.review b")).to_have_text("0")

    # 2. Study with the keyboard only: Space shows the answer, a digit answers.
    deck.get_by_role("link", name="Study").click()
    page.wait_for_url(f"{base}/study/{DECK_SLUG}")
    expect(page.locator("#undo-form")).to_have_count(0)  # nothing to undo yet
    answered: list[tuple[Showing, int]] = []
    current = showing(page)
    for rating in RATINGS:
        answer = page.locator("#answer")
        expect(answer).to_be_hidden()
        page.keyboard.press("Space")
        expect(answer).to_be_visible()
        expect(page.locator("#reveal")).to_have_attribute("open", "")
        expect(page.locator('button[data-key="3"]')).to_be_focused()
        with page.expect_response(is_answer_post) as response:
            page.keyboard.press(str(rating))
        assert response.value.status == 303, f"answer {rating} got HTTP {response.value.status}"
        answered.append((current, rating))
        following = moved_on(page, current)
        # Each card answered is scheduled at least a minute ahead, so another card comes next.
        assert following.card != current.card, f"card {current.card} came back after {RATING_NAMES[rating]}"
        current = following

    # 3. Ctrl+Z takes back the last answer and shows that card again.
    undone, _ = answered.pop()
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/undo")) as response:
        page.keyboard.press("Control+z")
    assert response.value.status == 303
    expect(page.locator(".flash")).to_have_text("Undid your last answer.")
    expect(page.locator("#card")).to_have_attribute("data-card", undone.card)
    expect(page.locator("#card .question")).to_have_text(undone.question)
    expect(page.locator("#answer")).to_be_hidden()

    # 4. The history lists exactly the answers that remain, newest first.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="History").click()
    page.wait_for_url(f"{base}/history")
    remaining = [(s.question, RATING_NAMES[r]) for s, r in reversed(answered)]
    expect(page.locator("table.history tbody tr")).to_have_count(len(RATINGS) - 1)
    assert [tuple(row) for row in history_rows(page)] == remaining
    expect(page.locator("p.hint").first).to_contain_text(f"{len(RATINGS) - 1} answers")
    expect(page.locator("p.hint").first).to_contain_text("Europe/Amsterdam")
    csv_response = page.request.get(f"{base}/history.csv")
    assert csv_response.ok
    csv_lines = csv_response.text().strip().splitlines()
    assert len(csv_lines) == 1 + len(RATINGS) - 1, csv_lines
    page.screenshot(path=screenshots / "history-desktop.png", full_page=True)

    # 5. Download the Anki package from the decks page.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Decks").click()
    page.wait_for_url(f"{base}/")
    deck = page.locator("li.deck", has_text=DECK_TITLE)
    with page.expect_download() as download_info:
        deck.get_by_role("link", name="Anki .apkg").click()
    download = download_info.value
    assert download.failure() is None
    assert download.suggested_filename == f"{DECK_SLUG}.apkg"
    apkg = tmp_path / download.suggested_filename
    download.save_as(apkg)
    assert zipfile.is_zipfile(apkg), "the .apkg download is not a zip file"
    with zipfile.ZipFile(apkg) as archive:
        assert "collection.anki2" in archive.namelist(), archive.namelist()
        assert archive.testzip() is None
    page.screenshot(path=screenshots / "decks-desktop.png", full_page=True)

    # 6. JavaScript off: the core loop works with plain HTML, by mouse and by keyboard.
    plain = new_context(viewport=DESKTOP, java_script_enabled=False).new_page()
    log_in(plain, base)
    plain.locator("li.deck", has_text=DECK_TITLE).get_by_role("link", name="Study").click()
    plain.wait_for_url(f"{base}/study/{DECK_SLUG}")
    before = showing(plain)
    expect(plain.locator("#answer")).to_be_hidden()
    plain.locator("summary", has_text="Show answer").click()
    expect(plain.locator("#answer")).to_be_visible()
    with plain.expect_navigation():
        plain.get_by_role("button", name=re.compile(r"\bGood\b")).click()
    after = moved_on(plain, before)
    assert after.card != before.card, "after Good with JavaScript off, the same card came back"
    expect(plain.locator("#answer")).to_be_hidden()

    # Keyboard only, still without JavaScript: Tab to the summary, Enter, Tab to Good, Enter.
    for _ in range(30):
        if plain.evaluate("document.activeElement && document.activeElement.tagName") == "SUMMARY":
            break
        plain.keyboard.press("Tab")
    else:
        pytest.fail("Tab never reached the Show answer control with JavaScript off")
    plain.keyboard.press("Enter")
    expect(plain.locator("#answer")).to_be_visible()
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

    # 7. Answering one showing twice records one answer. First the page's guard: the answer's
    #    request is held in flight (a slow network) while Good is clicked and 3 pressed again.
    total = history_total(page, base)
    assert total == len(RATINGS) - 1 + 2
    page.goto(f"{base}/study/{DECK_SLUG}")
    before = showing(page)
    page.keyboard.press("Space")
    expect(page.locator("#answer")).to_be_visible()
    held = []

    def hold(route):
        held.append(route)

    page.route(f"**/study/{DECK_SLUG}/answer", hold)
    # One script clicks Good, waits while the answer is in flight, and clicks Good again; it
    # counts the form submissions the page let through. (A second evaluate would wait for
    # the pending navigation, so everything in the page happens in this one.)
    clicks = page.evaluate("""async () => {
        const form = document.getElementById('answer-form');
        const good = form.querySelector('button[data-key="3"]');
        let submitted = 0;
        document.addEventListener('submit', event => { if (!event.defaultPrevented) { submitted++; } });
        good.click();
        await new Promise(resolve => setTimeout(resolve, 300));
        const sending = form.classList.contains('sending');
        good.click();
        return {submitted, sending};
    }""")
    assert clicks == {"submitted": 1, "sending": True}, clicks
    page.keyboard.press("3")  # and the shortcut, pressed again
    page.wait_for_timeout(500)
    assert len(held) == 1, f"answering again while the answer was in flight sent {len(held) - 1} more"
    with page.expect_navigation():
        held[0].continue_()
    page.unroute(f"**/study/{DECK_SLUG}/answer", hold)
    after = moved_on(page, before)
    assert after.card != before.card
    assert history_total(page, base) == total + 1, "answering one showing twice recorded two answers"

    # Then the server's guard: the same showing posted twice at once.
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
    assert history_total(page, base) == total + 2, "one showing posted twice recorded two answers"
    page.goto(f"{base}/study/{DECK_SLUG}")
    assert showing(page).card != before.card

    # 8. Desktop study screenshot, answer revealed with the four buttons.
    page.keyboard.press("Space")
    expect(page.locator("#answer")).to_be_visible()
    page.screenshot(path=screenshots / "study-desktop.png", full_page=True)
    assert not page_errors, page_errors

    # 8 (phone). A phone-sized touch screen: nothing overflows, the buttons are big enough.
    mobile = new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                         timezone_id="Europe/Amsterdam").new_page()
    mobile.goto(f"{base}/login")
    mobile.fill("#username", USERNAME)
    mobile.fill("#password", PASSWORD)
    mobile.get_by_role("button", name="Log in").tap()
    mobile.wait_for_url(f"{base}/")
    assert_fits_phone(mobile, "the decks page")
    mobile.screenshot(path=screenshots / "decks-phone.png", full_page=True)

    mobile.goto(f"{base}/history")
    expect(mobile.locator("table.history tbody tr")).to_have_count(total + 2)
    assert_fits_phone(mobile, "the history page")
    mobile.screenshot(path=screenshots / "history-phone.png", full_page=True)

    mobile.goto(f"{base}/study/{DECK_SLUG}")
    mobile.locator("summary", has_text="Show answer").tap()
    expect(mobile.locator("#answer")).to_be_visible()
    assert_fits_phone(mobile, "the study page")
    buttons = mobile.locator("#answer-form button.rating")
    expect(buttons).to_have_count(4)
    for index in range(4):
        box = buttons.nth(index).bounding_box()
        assert box is not None
        assert box["height"] >= 44, f"answer button {index + 1} is {box['height']:.0f} px tall"
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        # Reachable without scrolling: the buttons sit inside the first screen.
        assert box["y"] + box["height"] <= PHONE["height"], f"answer button {index + 1} is below the fold"
    mobile.screenshot(path=screenshots / "study-phone.png", full_page=True)
