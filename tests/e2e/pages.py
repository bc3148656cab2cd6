"""Page helpers the browser tests share: logging in, studying, the history, watching for errors, phone widths."""

from __future__ import annotations

import re
from dataclasses import dataclass

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}
PHONE_OPTIONS = {"viewport": PHONE, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
TIMEOUT_MS = 10_000
DECK_SLUG = "back-muscles"
DECK_TITLE = "Back muscles"
RATING_NAMES = {1: "Again", 2: "Hard", 3: "Good", 4: "Easy"}

# A document load answered with an error status is logged by Chromium as a console error;
# the tests expect some of those (a refused form is a 400), so they are not page errors.
_HTTP_STATUS_MESSAGE = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d\b")


def expect():
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=TIMEOUT_MS)
    return playwright_expect


def watch_errors(page, *, ignore_http_errors: bool = True) -> list[str]:
    """Collect the page's uncaught script errors and console errors (CSP refusals show up there too).

    With ignore_http_errors=False, a page load answered with a 4xx counts as an error as well.
    """
    errors: list[str] = []

    def console(message) -> None:
        if message.type == "error" and not (ignore_http_errors and _HTTP_STATUS_MESSAGE.match(message.text)):
            errors.append(f"{page.url}: {message.text}")

    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    page.on("console", console)
    return errors


def log_in(page, base: str, username: str, password: str, *, tap: bool = False) -> None:
    """Fill in the log-in form and send it; the caller checks where it lands."""
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    button = page.get_by_role("button", name="Log in")
    with page.expect_navigation():
        if tap:
            button.tap()
        else:
            button.click()


def log_in_with_the_keyboard(page, base: str, username: str, password: str) -> None:
    """Log in by keyboard alone: the name field has the focus; type, Tab, type, Enter."""
    check = expect()
    page.goto(f"{base}/login")
    check(page.locator("#username")).to_be_focused()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")


def go_to(page, base: str, link: str, path: str) -> None:
    """Follow a link of the main navigation and wait for its page."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=link, exact=True).click()
    page.wait_for_url(f"{base}{path}")


def assert_fits_phone(page, what: str) -> None:
    # Measured once the page has loaded: a navigation still under way has no document yet.
    page.wait_for_load_state("load")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{what} overflows horizontally at {PHONE['width']} px: scrollWidth={width}"


@dataclass(frozen=True)
class Showing:
    """One card as shown on the study page."""

    card: str
    question: str
    token: str


def showing(page) -> Showing:
    expect()(page.locator("#card")).to_be_visible()
    return Showing(card=page.locator("#card").get_attribute("data-card"),
                   question=page.locator("#card .question").inner_text().strip(),
                   token=page.locator("#answer-form input[name=token]").input_value())


def moved_on(page, before: Showing) -> Showing:
    """Wait for the study page to show a new showing (a fresh token), and return it."""
    expect()(page.locator("#answer-form input[name=token]")).not_to_have_value(before.token)
    page.wait_for_load_state()
    return showing(page)


def history_rows(page) -> list[tuple[str, str]]:
    """(question, rating name) of each row on the history page, newest first."""
    rows = page.evaluate("""() => [...document.querySelectorAll('table.history tbody tr')].map(tr => [
        tr.querySelector('td.question').firstChild.textContent.trim(),
        tr.querySelector('.pill').textContent.trim(),
    ])""")
    return [tuple(row) for row in rows]


def history_total(page, base: str) -> int:
    """The number of answers the history page says the user has given."""
    page.goto(f"{base}/history")
    hint = page.locator("#history-summary").inner_text()
    match = re.match(r"(\d+) answers?, newest first", hint)
    assert match, f"unexpected history summary: {hint!r}"
    return int(match.group(1))


def answer_shown_card(page, rating: int, *, tap: bool = False) -> Showing:
    """Reveal the card on the study page and press a rating button; return the showing answered.

    Waits until the next study page (another card, or "All caught up") has loaded.
    """
    check = expect()
    answered = showing(page)
    reveal = page.locator("summary", has_text="Show answer")
    button = page.locator("#answer-form button.rating", has_text=RATING_NAMES[rating])
    if tap:
        reveal.tap()
    else:
        reveal.click()
    check(page.locator("#answer")).to_be_visible()
    # With JavaScript the answer is sent in the background and the next page's content swapped in;
    # without it the browser loads the next page. Either way a new showing or the done screen follows.
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/answer")) as posted:
        if tap:
            button.tap()
        else:
            button.click()
    assert posted.value.status == 303, f"answering {RATING_NAMES[rating]} got HTTP {posted.value.status}"
    check(page.locator(f"#done, #answer-form input[name=token]:not([value='{answered.token}'])")).to_have_count(1)
    page.wait_for_load_state()
    return answered


def make_class(teacher, base: str, *, username: str, password: str, name: str) -> tuple[str, str]:
    """The teacher logs in, makes a class and assigns the bundled deck; the dashboard's URL and the join code."""
    log_in(teacher, base, username, password)
    teacher.goto(f"{base}/teach/")
    teacher.get_by_label("Class name").fill(name)
    teacher.get_by_role("button", name="Create class").click()
    teacher.wait_for_url(re.compile(re.escape(f"{base}/teach/classes/") + r"\d+$"))
    code = teacher.locator(".join-box .code").inner_text().strip()
    assign = teacher.locator("form.row-form")
    assign.get_by_label("Deck", exact=True).select_option(label=DECK_TITLE)
    assign.get_by_role("button", name="Assign").click()
    expect()(teacher.locator(".flash.success")).to_have_text("Deck assigned.")
    return teacher.url, code
