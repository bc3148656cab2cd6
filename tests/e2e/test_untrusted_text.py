"""Card text is untrusted: a deck full of markup must show up as literal text, never run.

A hostile facts file is built into this module's database with `flashapp deck build`. A student
studies it and reads the history, a teacher reads the dashboard and every card's page, all in
real Chromium with the page's Content-Security-Policy bypassed, so that only escaping stands
between the text and the page. The other test shows that normal pages need nothing the CSP
forbids: no inline script or style is refused anywhere.
"""

from __future__ import annotations

import re

import pytest

from tests.helpers import deck_text, write_deck

from .pages import (
    DECK_SLUG,
    DESKTOP,
    answer_shown_card,
    expect,
    go_to,
    log_in,
    watch_errors,
)

pytestmark = pytest.mark.browser

TEACHER = "mr.okafor"
TEACHER_PASSWORD = "teacher passphrase here"
STUDENT = "dee.student"
STUDENT_PASSWORD = "student passphrase here"
CLASS_NAME = "Period 3"

PWN_SCRIPT = "<script>window.__pwned=1</script>"
PWN_IMG = '<img src=x onerror="window.__pwned=1">'
PWN_LINK = '<a href="javascript:window.__pwned=1">click me</a>'
PWN_SVG = '"><svg onload=alert(1)>'
HOSTILE = [PWN_SCRIPT, PWN_IMG, PWN_LINK, PWN_SVG]

HOSTILE_SLUG = "untrusted-text"
HOSTILE_TITLE = 'Untrusted <b>text</b> & "quotes"'
HOSTILE_SOURCE = f"A web page that says {PWN_SCRIPT}"
QUESTION = "What does this markup do: {subject}"
# Each fact puts a different hostile string in its subject (the question), object (the answer)
# and explanation, so every string is seen in every place. No object equals another fact's
# subject: such facts would be siblings, and a sibling waits for the next study day.
FACTS = [
    {"id": "script", "subject": PWN_SCRIPT, "object": f"{PWN_IMG} (answer)", "explanation": PWN_LINK},
    {"id": "img", "subject": PWN_IMG, "object": f"{PWN_LINK} (answer)", "explanation": PWN_SVG},
    {"id": "link", "subject": PWN_LINK, "object": f"{PWN_SVG} (answer)", "explanation": PWN_SCRIPT},
    {"id": "svg", "subject": PWN_SVG, "object": f"{PWN_SCRIPT} (answer)", "explanation": PWN_IMG},
]
CARDS = {QUESTION.format(subject=f["subject"]): f for f in FACTS}

# Records every CSP refusal the page reports, before any of the page's own code runs.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', event => {
  window.__cspViolations.push({directive: event.violatedDirective, blocked: event.blockedURI,
                               sample: event.sample, source: event.sourceFile + ':' + event.lineNumber});
}, true);
"""

# Markup that would only be in the page if card text had been parsed as HTML.
INJECTED_ELEMENTS = """() => {
  const found = [];
  for (const element of document.querySelectorAll('*')) {
    for (const attribute of element.attributes) {
      if (/^on/i.test(attribute.name)) { found.push(`${element.tagName} ${attribute.name}`); }
      if (/^\\s*javascript:/i.test(attribute.value)) { found.push(`${element.tagName} ${attribute.name}=javascript:`); }
    }
    if (element.tagName === 'SCRIPT' && !element.src) { found.push('inline SCRIPT'); }
    if (element.tagName === 'IMG') { found.push(`IMG src=${element.getAttribute('src')}`); }
  }
  return found;
}"""


def hostile_deck_file(folder):
    text = deck_text(slug=HOSTILE_SLUG, title=HOSTILE_TITLE, source=HOSTILE_SOURCE, sections={"markup": "Markup"},
                     relations={"markup": {"forward": QUESTION, "answer": "{object}"}},
                     facts=[dict(relation="markup", section="markup", **fact) for fact in FACTS])
    return write_deck(folder, text, name=f"{HOSTILE_SLUG}.yaml")


@pytest.fixture(scope="module")
def classroom(server, browser, tmp_path_factory):
    """The hostile deck built into the running server's database, and a class with one student.

    Returns the class dashboard's URL.
    """
    built = server.flashapp("deck", "build", hostile_deck_file(tmp_path_factory.mktemp("hostile-deck")))
    assert f"{HOSTILE_SLUG}: {len(FACTS)} notes added" in built.stdout, built.stdout
    server.install.create_user(TEACHER, TEACHER_PASSWORD, teacher=True)
    server.install.create_user(STUDENT, STUDENT_PASSWORD)

    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        log_in(page, server.base, TEACHER, TEACHER_PASSWORD)
        page.goto(f"{server.base}/teach/")
        page.get_by_label("Class name").fill(CLASS_NAME)
        page.get_by_role("button", name="Create class").click()
        page.wait_for_url(re.compile(r"/teach/classes/\d+$"))
        dashboard = page.url
        code = page.locator(".join-box .code").inner_text().strip()
        context.clear_cookies()
        log_in(page, server.base, STUDENT, STUDENT_PASSWORD)
        page.goto(f"{server.base}/join")
        page.get_by_label("Class code").fill(code)
        page.get_by_role("button", name="Join").click()
        page.wait_for_url(f"{server.base}/")
        expect()(page.locator(".flash.success")).to_have_text(f"You are in {CLASS_NAME}.")
    finally:
        context.close()
    return dashboard


class Watcher:
    """A page's dialogs, script errors and CSP refusals, and checks that nothing in it was injected."""

    def __init__(self, page):
        self.page = page
        self.dialogs: list[str] = []
        self.errors = watch_errors(page)
        page.on("dialog", self._dialog)

    def _dialog(self, dialog):
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def assert_safe(self, where: str) -> None:
        page = self.page
        page.wait_for_load_state()
        assert page.evaluate("typeof window.__pwned") == "undefined", f"card text ran as script on {where}"
        assert page.evaluate(INJECTED_ELEMENTS) == [], f"card text became markup on {where}"
        assert not self.dialogs, f"a dialog opened on {where}: {self.dialogs}"

    def click_literal_links(self, where: str) -> int:
        """Click every visible literal "click me"; each click must leave the page as it was."""
        page = self.page
        url = page.url
        texts = page.get_by_text("click me")
        clicked = 0
        for index in range(texts.count()):
            text = texts.nth(index)
            if not text.is_visible():
                continue
            text.click()
            clicked += 1
            page.wait_for_timeout(100)
            assert page.url == url, f"clicking the literal 'click me' on {where} went to {page.url}"
            self.assert_safe(f"{where}, after clicking 'click me'")
        return clicked

    def csp_violations(self) -> list[dict]:
        # Violation reports are queued as tasks; give the page a moment to deliver them.
        self.page.wait_for_timeout(150)
        return self.page.evaluate("window.__cspViolations")


def test_card_text_is_shown_as_text(server, classroom, new_context):
    base = server.base
    # Bypass the CSP: it would stop injected script anyway, and these checks are about escaping.
    student = Watcher(new_context(viewport=DESKTOP, bypass_csp=True).new_page())
    teacher = Watcher(new_context(viewport=DESKTOP, bypass_csp=True).new_page())

    deck = decks_page_lists_the_hostile_deck_by_its_literal_title(student, base)
    study_page_shows_every_card_literally(student, base, deck)
    history_shows_the_literal_questions(student, base)
    forgetting = dashboard_shows_the_literal_questions_and_answers(teacher, base, classroom)
    students_page_shows_the_literal_questions(teacher)
    card_pages_show_the_literal_facts(teacher, base, forgetting)

    # Every hostile string was on screen as text somewhere above; nothing ran, nothing errored.
    for collected in (student.errors, teacher.errors):
        assert not collected, collected


def decks_page_lists_the_hostile_deck_by_its_literal_title(watcher: Watcher, base: str):
    """The student's decks list the hostile deck under its literal title; its entry."""
    student = watcher.page
    log_in(student, base, STUDENT, STUDENT_PASSWORD)
    expect()(student).to_have_url(f"{base}/")
    deck = student.locator("li.deck", has=student.get_by_role("heading", name=HOSTILE_TITLE, exact=True))
    expect()(deck).to_have_count(1)
    watcher.assert_safe("the decks page")
    return deck


def study_page_shows_every_card_literally(watcher: Watcher, base: str, deck) -> None:
    """Every question, answer and explanation on the study page is the literal text."""
    check = expect()
    student = watcher.page
    deck.get_by_role("link", name="Study").click()
    student.wait_for_url(f"{base}/study/{HOSTILE_SLUG}")
    assert student.title() == f"{HOSTILE_TITLE} · flashapp"
    check(student.locator(".study-head .back")).to_have_text(f"← {HOSTILE_TITLE}")
    seen = []
    clicks = 0
    for _ in CARDS:
        watcher.assert_safe(f"the study page for card {len(seen) + 1}")
        question = student.locator("#card .question").inner_text().strip()
        assert question in CARDS, f"unexpected question {question!r}"
        fact = CARDS[question]
        student.locator("summary", has_text="Show answer").click()
        check(student.locator("#answer")).to_have_text(fact["object"])
        check(student.locator("#card .explanation")).to_have_text(fact["explanation"])
        check(student.locator("#card .explanation")).to_be_visible()
        watcher.assert_safe(f"the study page for {question!r}, answer shown")
        clicks += watcher.click_literal_links(f"the study page for {question!r}")
        check(student.locator("#answer")).to_be_visible()
        student.locator("summary", has_text="Show answer").evaluate("summary => summary.parentElement.open = false")
        seen.append(answer_shown_card(student, 3).question)
    assert sorted(seen) == sorted(CARDS)
    # Three of the four cards show the literal link (in the question, the answer or the explanation).
    assert clicks == 3, f"'click me' was clicked {clicks} times on the study pages"
    # Nothing new is left; a learning card may be shown a little early, as Anki does.
    check(student.locator("#done, #card").first).to_be_visible()
    if student.locator("#card").count():
        assert student.locator("#card .question").inner_text().strip() in CARDS
    watcher.assert_safe("the study page after the last new card")


def history_shows_the_literal_questions(watcher: Watcher, base: str) -> None:
    """The history lists the four questions, literally, under the literal deck title."""
    student = watcher.page
    go_to(student, base, "History", "/history")
    rows = student.locator("table.history tbody tr")
    expect()(rows).to_have_count(len(CARDS))
    listed = student.evaluate("""() => [...document.querySelectorAll('table.history td.question')].map(td => [
        td.firstChild.textContent.trim(), td.querySelector('.deck-name').textContent])""")
    assert sorted(listed) == sorted([q, HOSTILE_TITLE] for q in CARDS)
    watcher.assert_safe("the history page")
    # The link's text is in one question and, since the history shows answers too, in one answer.
    assert watcher.click_literal_links("the history page") == 2


def dashboard_shows_the_literal_questions_and_answers(watcher: Watcher, base: str, classroom: str) -> dict:
    """The dashboard's forgetting table lists every card literally; its rows by question: (answer, link)."""
    teacher = watcher.page
    log_in(teacher, base, TEACHER, TEACHER_PASSWORD)
    teacher.goto(classroom)
    teacher.get_by_text("Every card the class has answered").click()  # the folded list of every card
    expect()(teacher.locator("table.forgetting tbody tr").first).to_be_visible()
    forgetting = dict(teacher.evaluate("""() => [...document.querySelectorAll('table.forgetting tbody tr')].map(tr => [
        tr.querySelector('td a').textContent, [tr.querySelector('td .deck-name').textContent,
                                              tr.querySelector('td a').getAttribute('href')]])"""))
    for question, fact in CARDS.items():
        assert question in forgetting, f"{question!r} is missing from the forgetting table: {list(forgetting)}"
        assert forgetting[question][0] == fact["object"]
    watcher.assert_safe("the class dashboard")
    return forgetting


def students_page_shows_the_literal_questions(watcher: Watcher) -> None:
    """The student's page, reached from the roster, lists the same questions."""
    check = expect()
    teacher = watcher.page
    teacher.locator("table.roster").get_by_role("link", name=STUDENT, exact=True).click()
    teacher.wait_for_url(re.compile(r"/students/\d+$"))
    check(teacher.locator("table.history tbody tr")).to_have_count(len(CARDS))
    for question in CARDS:
        check(teacher.locator("table.history td.question", has_text=question)).to_have_count(1)
    watcher.assert_safe("the student's page")
    assert watcher.click_literal_links("the student's page") == 1


def card_pages_show_the_literal_facts(watcher: Watcher, base: str, forgetting: dict) -> None:
    """Each card's page shows its question, answer, explanation, the fact in words and its source literally."""
    check = expect()
    teacher = watcher.page
    for question, fact in CARDS.items():
        where = f"the card page for {question!r}"
        teacher.goto(base + forgetting[question][1])
        check(teacher.locator("h1.question")).to_have_text(question)
        check(teacher.locator("article .answer")).to_have_text(fact["object"])
        check(teacher.locator(".explanation")).to_have_text(fact["explanation"])
        check(teacher.locator("article .card-meta")).to_contain_text(HOSTILE_TITLE)
        check(teacher.locator(".fact-words")).to_contain_text(fact["object"][1:])
        check(teacher.locator(".source")).to_contain_text(f"Stated in {HOSTILE_SOURCE}")
        watcher.assert_safe(where)
        clicked = watcher.click_literal_links(where)
        assert clicked >= (1 if PWN_LINK in fact.values() else 0), where


def test_normal_pages_raise_no_csp_violations(server, classroom, new_context):
    base = server.base
    student = Watcher(csp_recording_page(new_context))
    teacher = Watcher(csp_recording_page(new_context))

    pages_before_logging_in_need_nothing_the_csp_forbids(student, base)
    students_pages_need_nothing_the_csp_forbids(student, base)
    teachers_pages_need_nothing_the_csp_forbids(teacher, base, classroom)
    for collected in (student.errors, teacher.errors):
        assert not collected, collected
    the_recorder_reports_a_refused_inline_script(teacher)


def csp_recording_page(new_context):
    """A desktop page that records every CSP refusal from its first script on."""
    context = new_context(viewport=DESKTOP)
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    return context.new_page()


def assert_no_violations(watcher: Watcher, base: str, where: str, response=None) -> None:
    """The page (and its response, when given) carries the CSP, and the CSP refused nothing on it."""
    page = watcher.page
    if response is not None:
        policy = response.headers.get("content-security-policy", "")
        assert "default-src 'self'" in policy, f"{where} was served without the CSP: {policy!r}"
    assert watcher.csp_violations() == [], f"the CSP refused something on {where}"
    watcher.assert_safe(where)
    assert page.url.startswith(base)


def pages_before_logging_in_need_nothing_the_csp_forbids(watcher: Watcher, base: str) -> None:
    """The log-in and sign-up pages (the latter runs timezone.js)."""
    student = watcher.page
    assert_no_violations(watcher, base, "the log-in page", student.goto(f"{base}/login"))
    assert_no_violations(watcher, base, "the sign-up page", student.goto(f"{base}/register"))
    expect()(student.locator("#time_zone")).to_have_value(re.compile(r".+/.+|UTC"))


def students_pages_need_nothing_the_csp_forbids(watcher: Watcher, base: str) -> None:
    """Decks, study (answered by mouse and by keyboard), history, account and classes."""
    check = expect()
    student = watcher.page
    log_in(student, base, STUDENT, STUDENT_PASSWORD)
    assert_no_violations(watcher, base, "the decks page", student.goto(f"{base}/"))
    assert_no_violations(watcher, base, "the study page", student.goto(f"{base}/study/{DECK_SLUG}"))
    answer_shown_card(student, 3)
    assert_no_violations(watcher, base, "the study page after an answer")
    student.keyboard.press("Space")  # study.js reveals the answer: proof that the page's own script runs
    check(student.locator("#answer")).to_be_visible()
    check(student.locator('button[data-key="3"]')).to_be_focused()
    assert_no_violations(watcher, base, "the study page, answer shown by the keyboard")
    token = student.locator("#answer-form input[name=token]").input_value()
    with student.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/answer")):
        student.keyboard.press("4")
    check(student.locator(f"#done, #answer-form input[name=token]:not([value='{token}'])")).to_have_count(1)
    assert_no_violations(watcher, base, "the study page after a keyboard answer")
    assert_no_violations(watcher, base, "the history page", student.goto(f"{base}/history"))
    check(student.locator("table.history tbody tr").first).to_be_visible()
    assert_no_violations(watcher, base, "the account page", student.goto(f"{base}/account"))
    assert_no_violations(watcher, base, "the classes page", student.goto(f"{base}/join"))


def teachers_pages_need_nothing_the_csp_forbids(watcher: Watcher, base: str, classroom: str) -> None:
    """Classes, the dashboard, the join poster, a card's page and a student's page."""
    check = expect()
    teacher = watcher.page
    log_in(teacher, base, TEACHER, TEACHER_PASSWORD)
    assert_no_violations(watcher, base, "the teacher's classes", teacher.goto(f"{base}/teach/"))
    assert_no_violations(watcher, base, "the class dashboard", teacher.goto(classroom))
    check(teacher.locator("table.roster svg.bar")).not_to_have_count(0)
    check(teacher.locator("table.forgetting tbody tr")).not_to_have_count(0)
    card_link = teacher.locator("table.forgetting tbody tr td a").first.get_attribute("href")
    assert_no_violations(watcher, base, "the join poster", teacher.goto(f"{classroom}/join"))
    check(teacher.locator("figure.qr svg")).to_be_visible()
    assert_no_violations(watcher, base, "a card page", teacher.goto(base + card_link))
    teacher.goto(classroom)
    teacher.locator("table.roster").get_by_role("link", name=STUDENT, exact=True).click()
    teacher.wait_for_url(re.compile(r"/students/\d+$"))
    assert_no_violations(watcher, base, "a student's page")


def the_recorder_reports_a_refused_inline_script(watcher: Watcher) -> None:
    """The recorder itself works: an inline script added to the page is refused and reported."""
    teacher = watcher.page
    teacher.evaluate("""() => {
        const script = document.createElement('script');
        script.textContent = 'window.__inlineRan = 1';
        document.body.append(script);
    }""")
    violations = watcher.csp_violations()
    assert teacher.evaluate("typeof window.__inlineRan") == "undefined"
    assert [v["directive"] for v in violations] == ["script-src-elem"], violations
    assert any("Content Security Policy" in error for error in watcher.errors), watcher.errors
