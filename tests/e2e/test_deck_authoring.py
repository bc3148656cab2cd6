"""A teacher turns a PDF into a deck in the browser; a student studies it; a typo fix keeps the student's history.

The teacher uploads a PDF (made by the test), writes facts from three of its sentences (one a cloze),
previews and publishes the deck, and assigns it to a class. A student studies some cards. The
teacher corrects a typo and publishes again: the student's history is kept and the student sees
the corrected question. Screenshots of the document, the fact editor and the preview at 1280 and
375 px go to screenshots/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import PDF_LINES, simple_pdf

from .pages import (
    DESKTOP,
    PHONE_OPTIONS,
    answer_shown_card,
    assert_fits_phone,
    expect,
    history_total,
    log_in,
    watch_errors,
)

pytestmark = pytest.mark.browser

TEACHER = "ms.author"
TEACHER_PASSWORD = "teacher passphrase for decks"
STUDENT = "al.reader"
STUDENT_PASSWORD = "student passphrase for decks"
CLASS_NAME = "Year 8 Science"
DECK_TITLE = "The water cycle"
SLUG = "the-water-cycle"
TYPO, FIXED = "evaporaton", "evaporation"


def test_a_teacher_writes_a_deck_from_a_pdf_and_revises_it_without_losing_progress(server, new_context,
                                                                                    screenshots, tmp_path):
    base = server.base
    server.install.create_user(TEACHER, TEACHER_PASSWORD, teacher=True)
    teacher = new_context(viewport=DESKTOP).new_page()
    errors = [watch_errors(teacher)]
    log_in(teacher, base, TEACHER, TEACHER_PASSWORD)

    document = teacher_uploads_a_pdf(teacher, base, tmp_path)
    teacher_writes_three_facts_one_a_cloze(teacher, document, screenshots)
    teacher_previews_the_cards(teacher, document, screenshots)
    code = teacher_publishes_and_assigns_to_a_class(teacher, base, document)
    take_phone_screenshots(new_context, base, document, screenshots)

    student = new_context(**PHONE_OPTIONS).new_page()
    errors.append(watch_errors(student))
    studied = student_studies_some_cards(student, base, code)
    teacher_fixes_the_typo_and_publishes_again(teacher, document)
    student_keeps_history_and_sees_the_correction(student, base, studied)

    for collected in errors:
        assert not collected, collected


def teacher_uploads_a_pdf(teacher, base: str, tmp_path: Path) -> str:
    """From "My decks", a new deck from a PDF: its document page lists the sections and sentences."""
    check = expect()
    pdf = tmp_path / "water-cycle.pdf"
    pdf.write_bytes(simple_pdf(PDF_LINES))
    teacher.get_by_role("navigation", name="Main").get_by_role("link", name="My decks").click()
    teacher.wait_for_url(f"{base}/teach/decks/")
    teacher.get_by_label("Deck title").fill(DECK_TITLE)
    teacher.get_by_label("Citation of the document").fill('Science Hub, "The water cycle" (2026)')
    teacher.get_by_label(re.compile("Or upload a file")).set_input_files(str(pdf))
    teacher.get_by_role("button", name="Store the document").click()
    teacher.wait_for_url(re.compile(re.escape(f"{base}/teach/decks/") + r"\d+$"))
    check(teacher.locator(".flash.success")).to_contain_text("is stored with 5 sentences")
    check(teacher.locator("h3.doc-section")).to_have_text(["The Water Cycle", "Precipitation"])
    check(teacher.locator("#s2")).to_contain_text("The Sun supplies the heat, e.g. on a warm day.")
    return teacher.url


def write_fact(teacher, document: str, anchor: str, *, relation: str, subject: str, obj: str) -> None:
    check = expect()
    teacher.goto(document)
    teacher.locator(f"#{anchor}").get_by_role("link", name=re.compile("Write a fact")).click()
    check(teacher.locator("#sentence-text")).to_have_text(teacher.locator("#sentence-text").inner_text())
    teacher.get_by_label("Relation").select_option(label=relation)
    teacher.get_by_label("Subject").fill(subject)
    teacher.get_by_label("Object").fill(obj)
    teacher.get_by_role("button", name="Save the fact").click()
    teacher.wait_for_url(re.compile(re.escape(document) + "#"))
    check(teacher.locator(".flash.success")).to_have_text("Fact saved. Publish the deck when you are ready.")


def teacher_writes_three_facts_one_a_cloze(teacher, document: str, screenshots: Path) -> None:
    """Three facts from three sentences; a cloze span not in its sentence is refused beside the field first."""
    check = expect()
    write_fact(teacher, document, "s1", relation="term → definition", subject=TYPO,
               obj="the change of liquid water into vapour")
    write_fact(teacher, document, "s5", relation="item → function", subject="gravity", obj="pulls rain down")
    teacher.locator("#s4").get_by_role("link", name=re.compile("Write a fact")).click()
    teacher.get_by_label("Relation").select_option(label="cloze: hide words of the sentence")
    teacher.get_by_label("Object").fill("sleet")
    teacher.get_by_role("button", name="Save the fact").click()
    check(teacher.locator("#object-error")).to_contain_text("“sleet” does not occur in the sentence")
    check(teacher.locator("#object")).to_have_attribute("aria-invalid", "true")
    teacher.screenshot(path=screenshots / "author-fact-editor-1280.png", full_page=True)
    teacher.get_by_label("Object").fill("rain, snow or hail")
    teacher.get_by_role("button", name="Save the fact").click()
    teacher.wait_for_url(re.compile(re.escape(document) + "#"))
    check(teacher.locator(".fact-list li")).to_have_count(3)
    teacher.screenshot(path=screenshots / "author-document-1280.png", full_page=True)


def teacher_previews_the_cards(teacher, document: str, screenshots: Path) -> None:
    """The preview shows every card: forward and reverse of the definition, the function, and the cloze."""
    check = expect()
    teacher.get_by_role("link", name="Preview the cards").click()
    check(teacher.get_by_role("heading", level=1)).to_have_text("Preview: 4 cards")
    check(teacher.locator(".preview-card .question")).to_contain_text([
        f"What is {TYPO}?", "Which term means: the change of liquid water into vapour?", "What does gravity do?",
        "Precipitation is water that falls from clouds as [...]."])
    teacher.screenshot(path=screenshots / "author-preview-1280.png", full_page=True)


def teacher_publishes_and_assigns_to_a_class(teacher, base: str, document: str) -> str:
    """Publish (revision 1), make a class, assign the deck from its page; the class's join code."""
    check = expect()
    teacher.get_by_role("button", name="Publish").click()
    teacher.wait_for_url(document)
    check(teacher.locator(".flash.success")).to_have_text(
        "Published revision 1: 4 cards added, 0 updated, 0 retired. Students keep their progress.")
    teacher.goto(f"{base}/teach/")
    teacher.get_by_label("Class name").fill(CLASS_NAME)
    teacher.get_by_role("button", name="Create class").click()
    teacher.wait_for_url(re.compile(re.escape(f"{base}/teach/classes/") + r"\d+$"))
    code = teacher.locator(".join-box .code").inner_text().strip()
    teacher.goto(document)
    teacher.get_by_role("button", name=f"Assign to {CLASS_NAME}").click()
    check(teacher.locator(".flash.success")).to_have_text("Deck assigned.")
    return code


def take_phone_screenshots(new_context, base: str, document: str, screenshots: Path) -> None:
    """The document, the fact editor and the preview fit a 375 px phone."""
    phone = new_context(**PHONE_OPTIONS).new_page()
    log_in(phone, base, TEACHER, TEACHER_PASSWORD)
    for name, url in (("document", document), ("fact-editor", f"{document}/facts/new?sentence="),
                      ("preview", f"{document}/preview")):
        if name == "fact-editor":
            phone.goto(document)
            phone.locator("#s4").get_by_role("link", name=re.compile("Write a fact")).click()
            phone.wait_for_url(re.compile(re.escape(f"{document}/facts/new")))
        else:
            phone.goto(url)
        assert_fits_phone(phone, f"the {name} page")
        phone.screenshot(path=screenshots / f"author-{name}-375.png", full_page=True)


def student_studies_some_cards(student, base: str, code: str) -> list[str]:
    """A student joins the class and answers three cards of the new deck (Good each time)."""
    check = expect()
    student.goto(f"{base}/register")
    student.fill("#username", STUDENT)
    student.fill("#password", STUDENT_PASSWORD)
    student.fill("#confirm", STUDENT_PASSWORD)
    student.fill("#class_code", code)
    student.get_by_role("button", name="Create account").click()
    student.wait_for_url(f"{base}/")
    check(student.locator("main")).to_contain_text(DECK_TITLE)
    student.goto(f"{base}/study/{SLUG}")
    questions = [answer_shown_card(student, 3).question for _ in range(3)]
    assert f"What is {TYPO}?" in questions or "Which term means: the change of liquid water into vapour?" in \
        questions
    assert history_total(student, base) == 3
    return questions


def teacher_fixes_the_typo_and_publishes_again(teacher, document: str) -> None:
    """The typo is corrected on the fact's page; publishing again updates the cards in place (revision 2)."""
    check = expect()
    teacher.goto(document)
    teacher.locator(".fact-list li", has_text=TYPO).get_by_role("link", name=re.compile("^Edit")).click()
    teacher.get_by_label("Subject").fill(FIXED)
    teacher.get_by_role("button", name="Save the fact").click()
    check(teacher.locator(".flash.success")).to_contain_text("Fact corrected.")
    teacher.get_by_role("button", name="Publish again").click()
    check(teacher.locator(".flash.success")).to_have_text(
        "Published revision 2: 0 cards added, 2 updated, 0 retired. Students keep their progress.")


def student_keeps_history_and_sees_the_correction(student, base: str, studied: list[str]) -> None:
    """The student's three answers are still there, and the history shows the corrected wording."""
    check = expect()
    assert history_total(student, base) == 3
    rows = student.locator("table.history tbody td.question")
    check(rows).to_have_count(3)
    texts = " | ".join(rows.all_inner_texts())
    assert TYPO not in texts.replace(FIXED, ""), texts
    if f"What is {TYPO}?" in studied:
        assert f"What is {FIXED}?" in texts, texts
    check(student.locator("main")).not_to_contain_text(f"What is {TYPO}?")
