"""Every page a visitor, a student and a teacher see, checked with axe-core at desktop and phone widths.

axe-core comes from npm (`make test` installs it into node_modules); it is injected into each page by
the test and never served by the app. A serious or critical violation fails the test, listed by page.
"""

from __future__ import annotations

import re

import pytest

from tests.helpers import REPO

from .pages import DECK_SLUG, DESKTOP, PHONE_OPTIONS, answer_shown_card, expect, log_in, make_class

pytestmark = pytest.mark.browser

AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
TEACHER = "mr.okafor"
TEACHER_PASSWORD = "teacher passphrase for axe"
STUDENT = "di.axe"
STUDENT_PASSWORD = "student passphrase for axe"
CLASS_NAME = "Axe Anatomy"
BLOCKING = {"serious", "critical"}


def axe_violations(page, where: str) -> list[str]:
    """Run axe-core on the page as it is now; one line per serious or critical violation."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    results = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.map(n => n.target.join(' ') + (n.failureSummary ? ' (' +
                n.failureSummary.split('\\n').slice(1).join(' ').trim() + ')' : ''))}));
    }""")
    return [f"{where}: [{v['impact']}] {v['id']}: {v['help']} at {'; '.join(v['targets'])}"
            for v in results if v["impact"] in BLOCKING]


def _luminance(rgb: tuple[float, ...]) -> float:
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (v / 255 for v in rgb[:3])]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: tuple[float, ...], second: tuple[float, ...]) -> float:
    """WCAG's contrast ratio of two sRGB colours."""
    dark, light = sorted((_luminance(first), _luminance(second)))
    return (light + 0.05) / (dark + 0.05)


def _rgb(css: str) -> tuple[float, ...]:
    return tuple(float(v) for v in re.findall(r"[\d.]+", css)[:3])


def focus_ring_problems(page, where: str) -> list[str]:
    """axe does not judge focus rings: the focused element's outline must be 3:1 against what surrounds it."""
    colours = page.evaluate("""() => {
        const el = document.activeElement, style = getComputedStyle(el);
        const behind = [];
        for (let node = el.parentElement; node; node = node.parentElement) {
            const bg = getComputedStyle(node).backgroundColor;
            if (bg !== 'rgba(0, 0, 0, 0)' && bg !== 'transparent') { behind.push(bg); }
        }
        return {outline: style.outlineColor, width: style.outlineWidth, style: style.outlineStyle, behind};
    }""")
    if colours["style"] == "none" or float(colours["width"].removesuffix("px") or 0) < 2:
        return [f"{where}: no visible focus ring ({colours})"]
    ring = _rgb(colours["outline"])
    surround = _rgb(colours["behind"][0]) if colours["behind"] else (255.0, 255.0, 255.0)
    ratio = contrast(ring, surround)
    return [] if ratio >= 3 else [f"{where}: the focus ring {colours['outline']} on {surround} is {ratio:.2f}:1"]


def join_and_study(student, base: str, code: str) -> str:
    """The student signs up with the class code and answers three cards; the id of a card answered."""
    student.goto(f"{base}/register?code={code}")
    student.fill("#username", STUDENT)
    student.fill("#password", STUDENT_PASSWORD)
    student.fill("#confirm", STUDENT_PASSWORD)
    student.get_by_role("button", name="Create account").click()
    student.wait_for_url(f"{base}/")
    student.goto(f"{base}/study/{DECK_SLUG}")
    answered = [answer_shown_card(student, rating) for rating in (3, 4, 1)]
    return answered[0].card


def write_a_deck(teacher, base: str) -> str:
    """The teacher pastes a short document, writes one fact from it and publishes; the document's URL."""
    teacher.goto(f"{base}/teach/decks/")
    teacher.get_by_label("Deck title").fill("Axe notes")
    teacher.get_by_label("Citation of the document").fill("Our own notes")
    teacher.get_by_label(re.compile("Paste the text")).fill("# Rain\n\nRain is liquid water falling from clouds. "
                                                           "Snow is frozen, e.g. in winter. Hail is a ball of ice.\n")
    teacher.get_by_role("button", name="Store the document").click()
    teacher.wait_for_url(re.compile(re.escape(f"{base}/teach/decks/") + r"\d+$"))
    document = teacher.url
    teacher.locator("#s1").get_by_role("link", name=re.compile("Write a fact")).click()
    teacher.get_by_label("Subject").fill("rain")
    teacher.get_by_label("Object").fill("liquid water falling from clouds")
    teacher.get_by_role("button", name="Save the fact").click()
    teacher.wait_for_url(re.compile(re.escape(document) + "#"))
    teacher.get_by_role("button", name="Publish").click()
    expect()(teacher.locator(".flash.success")).to_contain_text("Published revision 1")
    return document


def test_no_serious_accessibility_violations_on_any_page(server, new_context):
    assert AXE.exists(), f"{AXE} is missing: run `make test` (it installs axe-core with npm)"
    base = server.base
    server.install.create_user(TEACHER, TEACHER_PASSWORD, teacher=True)
    setup_teacher = new_context(viewport=DESKTOP).new_page()
    dashboard, code = make_class(setup_teacher, base, username=TEACHER, password=TEACHER_PASSWORD,
                                 name=CLASS_NAME)
    card_id = join_and_study(new_context(viewport=DESKTOP).new_page(), base, code)
    setup_teacher.goto(dashboard)
    student_page = setup_teacher.get_by_role("link", name=STUDENT, exact=True).first.get_attribute("href")
    assert student_page, "the dashboard does not link to the student"
    class_id = dashboard.rsplit("/", 1)[1]
    document = write_a_deck(setup_teacher, base).removeprefix(base)

    found: list[str] = []
    # The app's Content-Security-Policy refuses inline scripts; the test's contexts let axe in.
    for width, options in (("1280", {"viewport": DESKTOP, "bypass_csp": True}),
                           ("375", {**PHONE_OPTIONS, "bypass_csp": True})):
        visitor = new_context(**options).new_page()
        for path in ("/login", "/register", f"/register?code={code}"):
            visitor.goto(f"{base}{path}")
            found += axe_violations(visitor, f"{path} at {width} px (visitor)")

        student = new_context(**options).new_page()
        log_in(student, base, STUDENT, STUDENT_PASSWORD)
        for path in ("/", "/history", "/account", "/join", "/stats", "/stats?period=year"):
            student.goto(f"{base}{path}")
            found += axe_violations(student, f"{path} at {width} px (student)")
        # The statistics page's tables, each chart's numbers, opened.
        student.evaluate("document.querySelectorAll('details.numbers').forEach(d => { d.open = true; })")
        found += axe_violations(student, f"the statistics page's tables at {width} px (student)")
        # The history page's upload from Anki, refused: the message beside the file field.
        student.goto(f"{base}/history")
        student.get_by_text("Bring back reviews from Anki").click()
        student.set_input_files("#file", files=[{"name": "notes.apkg", "mimeType": "application/octet-stream",
                                                 "buffer": b"these are notes, not a deck"}])
        with student.expect_navigation():
            student.get_by_role("button", name="Bring back reviews").click()
        expect()(student.locator("#file-error")).to_be_visible()
        found += axe_violations(student, f"the history page with an upload refused at {width} px")
        student.goto(f"{base}/study/{DECK_SLUG}")
        found += axe_violations(student, f"the study page's question at {width} px")
        if not student.locator("#card").count():
            # The first width answered every card due today; undo brings the last one back.
            with student.expect_navigation():
                student.get_by_role("button", name="Undo last answer").click()
        # Space reveals the answer and puts the focus on Good: its focus ring is drawn while axe looks.
        student.keyboard.press("Space")
        expect()(student.locator("#answer")).to_be_visible()
        expect()(student.locator('#answer-form button[data-key="3"]')).to_be_focused()
        found += axe_violations(student, f"the study page's answer at {width} px")
        found += focus_ring_problems(student, f"Good on the study page at {width} px")
        token = student.locator("#answer-form input[name=token]").input_value()
        with student.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/answer")):
            student.keyboard.press("4")
        expect()(student.locator(f"#done, #answer-form input[name=token]:not([value='{token}'])")).to_have_count(1)
        while student.locator("#card").count():
            answer_shown_card(student, 4)
        expect()(student.locator("#done")).to_be_visible()
        found += axe_violations(student, f"the done screen at {width} px")

        teacher = new_context(**options).new_page()
        log_in(teacher, base, TEACHER, TEACHER_PASSWORD)
        for path, what in (("/teach/", "the class list"), (dashboard.removeprefix(base), "the dashboard"),
                           (f"{dashboard.removeprefix(base)}?sort=name", "the dashboard sorted"),
                           (student_page, "a student's page"),
                           (f"{student_page}/stats?period=today", "a student's statistics"),
                           (f"/teach/classes/{class_id}/cards/{card_id}", "a card's page"),
                           (f"/teach/classes/{class_id}/join", "the join page"),
                           ("/history", "the teacher's history"), ("/teach/decks/", "the teacher's decks"),
                           (document, "a document"), (f"{document}/facts/new", "a supplemented fact's editor"),
                           (f"{document}/relations/term-definition", "a relation's questions"),
                           (f"{document}/preview", "a deck's preview")):
            teacher.goto(f"{base}{path}")
            found += axe_violations(teacher, f"{what} at {width} px (teacher)")
        # The fact editor for a sentence, showing a refusal beside its field.
        teacher.goto(f"{base}{document}")
        teacher.locator("#s2").get_by_role("link", name=re.compile("Write a fact")).click()
        teacher.get_by_label("Relation").select_option(label="cloze: hide words of the sentence")
        teacher.get_by_label("Object").fill("hail")
        teacher.get_by_role("button", name="Save the fact").click()
        expect()(teacher.locator("#object-error")).to_be_visible()
        found += axe_violations(teacher, f"the fact editor with an error at {width} px (teacher)")
        # The import page, with a table read and its preview shown.
        teacher.goto(f"{base}{document}/import")
        found += axe_violations(teacher, f"the import page at {width} px (teacher)")
        teacher.get_by_label("File", exact=True).set_input_files(files=[{"name": "facts.csv", "mimeType": "text/csv",
                                                             "buffer": b"term,definition\nsleet,icy rain\n"}])
        teacher.get_by_role("button", name="Read the file").click()
        expect()(teacher.locator("table.import-preview")).to_be_visible()
        found += axe_violations(teacher, f"the import mapping and preview at {width} px (teacher)")
        teacher.goto(f"{base}/teach/decks/")
        teacher.get_by_role("button", name="Store the document").click()
        expect()(teacher.locator("#title-error")).to_be_visible()
        found += axe_violations(teacher, f"the new deck form with errors at {width} px (teacher)")

    assert not found, "axe-core found serious or critical violations:\n" + "\n".join(found)

