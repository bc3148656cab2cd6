"""A teacher writes a deck in the browser: a document, facts from its sentences, publish, revise, permissions.

Every refusal is checked to show its message beside the field and to change nothing.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from flashapp import db
from flashapp.models import AuthoredFact, Card, CardState, Deck, Document, DocumentSentence, Note, ReviewLog, User
from tests.helpers import PDF_LINES, AuthActions, answer, create_class, csrf_token, encrypted_pdf, showing, simple_pdf


def token_of(client, url="/teach/decks/") -> str:
    return csrf_token(client.get(url).get_data(as_text=True))


def upload(client, data: bytes, name: str, *, title="The water cycle", citation="Science Hub, 2026"):
    """Post the new-deck form with a file, encoded here (the test client leaves a large body's file open)."""
    boundary = "----flashapp-test-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
             for key, value in (("csrf_token", token_of(client)), ("title", title), ("citation", citation))]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return client.post("/teach/decks/", data=body, content_type=f"multipart/form-data; boundary={boundary}")


def paste(client, text: str, *, title="Notes", citation="My own notes"):
    return client.post("/teach/decks/", data={"csrf_token": token_of(client), "title": title, "citation": citation,
                                             "text": text})


def counts(app) -> tuple[int, ...]:
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(model))
                     for model in (Document, DocumentSentence, AuthoredFact, Deck, Note, Card))


def sentence_id(app, starts: str) -> int:
    with app.app_context():
        return db.session.scalar(select(DocumentSentence.id).where(DocumentSentence.text.startswith(starts)))


def write(client, document_id, **fields):
    url = f"/teach/decks/{document_id}/facts/new"
    data = {"csrf_token": token_of(client, url), "relation": "term-definition", "explanation": "", **fields}
    return client.post(url, data=data)


def error_beside(page: str, field: str) -> str:
    match = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    assert match, f"no error beside {field}"
    return html.unescape(match.group(1))


@pytest.fixture
def document(app, teacher):
    """The teacher's PDF document: its id."""
    response = upload(teacher, simple_pdf(PDF_LINES), "water.pdf")
    assert response.status_code == 303, response.get_data(as_text=True)
    return int(response.headers["Location"].rsplit("/", 1)[1])


@pytest.fixture
def teacher(app):
    client = app.test_client()
    AuthActions(client).register("mrs-k")
    return client


def test_a_pdf_becomes_sections_and_addressable_sentences(app, teacher, document):
    page = teacher.get(f"/teach/decks/{document}").get_data(as_text=True)
    assert '<h3 class="doc-section" id="section-the-water-cycle">The Water Cycle</h3>' in page
    assert '<h3 class="doc-section" id="section-precipitation">Precipitation</h3>' in page
    with app.app_context():
        texts = list(db.session.scalars(select(DocumentSentence.text).order_by(DocumentSentence.position)))
        anchors = list(db.session.scalars(select(DocumentSentence.anchor).order_by(DocumentSentence.position)))
    assert texts == ["Evaporation is the change of liquid water into vapour.",
                     "The Sun supplies the heat, e.g. on a warm day.",
                     "Clouds form when vapour cools by about 0.5 degrees per 100 m.",
                     "Precipitation is water that falls from clouds as rain, snow or hail.",
                     "Dr. Rain says that gravity pulls it down."]
    assert anchors == ["s1", "s2", "s3", "s4", "s5"]
    for anchor in anchors:
        assert f'id="{anchor}"' in page
    assert page.count("Write a fact<span") == 5


def publish(client, document_id):
    return client.post(f"/teach/decks/{document_id}/publish",
                       data={"csrf_token": token_of(client, f"/teach/decks/{document_id}")})


def test_publishing_fixing_a_typo_and_republishing_keeps_keys_and_history(app, teacher, document):
    evaporation, rain = sentence_id(app, "Evaporation"), sentence_id(app, "Precipitation")
    assert write(teacher, document, sentence=evaporation, subject="evaporaton",
                 object="the change of liquid water into vapour").status_code == 303
    assert write(teacher, document, sentence=rain, relation="cloze", subject="",
                 object="rain, snow or hail").status_code == 303
    assert publish(teacher, document).status_code == 303
    class_id = create_class(teacher)
    with app.app_context():
        deck = db.session.scalar(select(Deck).where(Deck.slug == "the-water-cycle"))
        assert deck.owner_id == db.session.scalar(select(User.id).where(User.username == "mrs-k"))
        deck_id = deck.id
        keys = {c.key: (c.id, c.question) for c in db.session.scalars(select(Card).where(Card.deck_id == deck_id))}
        assert keys["the-water-cycle/cloze/s4-rain-snow-or-hail/cloze"][1] == \
            "Precipitation is water that falls from clouds as [...]."
        assert keys["the-water-cycle/term-definition/evaporaton/forward"][1] == "What is evaporaton?"
        note = db.session.scalar(select(Note).where(Note.key == "the-water-cycle/term-definition/evaporaton"))
        assert note.sentence_id == evaporation
    token = token_of(teacher, f"/teach/classes/{class_id}")
    assert teacher.post(f"/teach/classes/{class_id}/assignments",
                        data={"csrf_token": token, "deck_id": deck_id}).status_code == 303
    assert "Deck assigned." in teacher.get(f"/teach/classes/{class_id}").get_data(as_text=True)
    with app.app_context():
        from flashapp.models import Classroom
        join = db.session.get(Classroom, class_id).join_code
    student = app.test_client()
    AuthActions(student).register("ann", class_code=join)
    fields = showing(student.get("/study/the-water-cycle").get_data(as_text=True))
    assert answer(student, fields, slug="the-water-cycle").status_code in (200, 302, 303)

    # The teacher's card page links back to the sentence.
    card_id = keys["the-water-cycle/term-definition/evaporaton/forward"][0]
    card_page = teacher.get(f"/teach/classes/{class_id}/cards/{card_id}").get_data(as_text=True)
    assert f'href="/teach/decks/{document}#s1"' in card_page

    with app.app_context():
        fact_id = db.session.scalar(select(AuthoredFact.id).where(AuthoredFact.subject == "evaporaton"))
        before = db.session.scalar(select(func.count()).select_from(ReviewLog))
    url = f"/teach/decks/{document}/facts/{fact_id}"
    response = teacher.post(url, data={"csrf_token": token_of(teacher, url), "subject": "evaporation",
                                       "object": "the change of liquid water into vapour", "explanation": "",
                                       "sentence": str(evaporation)})
    assert response.status_code == 303
    assert publish(teacher, document).status_code == 303
    with app.app_context():
        card = db.session.get(Card, card_id)
        assert (card.key, card.question, card.retired) == ("the-water-cycle/term-definition/evaporaton/forward",
                                                           "What is evaporation?", False)
        assert db.session.scalar(select(func.count()).select_from(ReviewLog)) == before == 1
        assert db.session.scalar(select(func.count()).select_from(CardState)) == 1
    page = teacher.get(f"/teach/decks/{document}").get_data(as_text=True)
    assert "revision 2" in page

    # Removing a fact retires its cards at the next publish; history is kept.
    url = f"/teach/decks/{document}/facts/{fact_id}/remove"
    assert teacher.post(url, data={"csrf_token": token_of(teacher, f"/teach/decks/{document}")}).status_code == 303
    publish(teacher, document)
    with app.app_context():
        assert db.session.get(Card, card_id).retired
        assert db.session.scalar(select(func.count()).select_from(ReviewLog)) == 1


def test_preview_shows_every_card_as_a_student_sees_it(app, teacher, document):
    write(teacher, document, sentence=sentence_id(app, "Evaporation"), subject="evaporation", object="vapour")
    page = teacher.get(f"/teach/decks/{document}/preview").get_data(as_text=True)
    assert "What is evaporation?" in page and "Which term means: vapour?" in page
    assert "Preview: 2 cards" in page


@pytest.mark.parametrize(("data", "name", "message"), [
    (b"this is not a pdf at all", "fake.pdf", "is not a PDF"),
    (None, "locked.pdf", "encrypted"),
    (bytes(range(256)) * 8, "garbage.txt", "not UTF-8 text"),
    (b"\x01\x02\x03 abc \x04\x05" * 20, "controls.txt", "control characters"),
    (b"", "empty.txt", "no text to write facts from"),
    (b"# Only a heading\n", "heading.md", "no text to write facts from"),
    (b"A" * 600_000, "huge.txt", "the limit is 512,000 bytes"),
    (b"hello", "notes.docx", "not a kind of file this page reads"),
])
def test_a_bad_document_is_refused_beside_the_field_and_nothing_is_stored(app, teacher, data, name, message):
    before = counts(app)
    response = upload(teacher, encrypted_pdf() if data is None else data, name)
    assert response.status_code == 400
    assert message in error_beside(response.get_data(as_text=True), "file")
    assert counts(app) == before


def test_an_empty_pasted_document_and_missing_title_are_refused(app, teacher):
    before = counts(app)
    response = paste(teacher, "   \n  ")
    assert "no text to write facts from" in error_beside(response.get_data(as_text=True), "file")
    response = paste(teacher, "A sentence.", title="")
    assert response.status_code == 400
    assert "Give the deck's title." in error_beside(response.get_data(as_text=True), "title")
    assert counts(app) == before


def test_an_upload_past_the_servers_request_limit_is_refused_beside_the_field(app, teacher):
    before = counts(app)
    response = upload(teacher, b"A" * (1024 * 1024 + 10), "huge.txt")
    assert response.status_code == 413
    assert "the server takes at most 1,048,576 bytes a request" in error_beside(response.get_data(as_text=True),
                                                                               "file")
    assert counts(app) == before
    student = app.test_client()
    AuthActions(student).register("ann")
    response = student.post("/teach/decks/", data={"text": "A" * (1024 * 1024 + 10)})
    assert response.status_code == 413 and "larger than this server accepts" in response.get_data(as_text=True)


def test_a_duplicate_fact_and_a_cloze_span_not_in_the_sentence_are_refused(app, teacher, document):
    evaporation = sentence_id(app, "Evaporation")
    assert write(teacher, document, sentence=evaporation, subject="evaporation", object="vapour").status_code == 303
    before = counts(app)
    response = write(teacher, document, sentence=evaporation, subject="Evaporation", object="steam")
    assert response.status_code == 400
    assert "already has this" in error_beside(response.get_data(as_text=True), "subject")
    response = write(teacher, document, sentence=evaporation, relation="cloze", subject="", object="ice")
    assert response.status_code == 400
    assert "“ice” does not occur in the sentence" in error_beside(response.get_data(as_text=True), "object")
    response = write(teacher, document, subject="condensation", object="vapour to droplets")
    assert "Supplemented" in error_beside(response.get_data(as_text=True), "supplemented")
    assert counts(app) == before
    assert write(teacher, document, subject="condensation", object="vapour to droplets",
                 supplemented="y").status_code == 303


def test_a_template_with_an_unknown_placeholder_is_refused(app, teacher, document):
    url = f"/teach/decks/{document}/relations/term-definition"
    with app.app_context():
        before = db.session.get(Document, document).relations
    response = teacher.post(url, data={"csrf_token": token_of(teacher, url), "forward": "What is {subjet}?"})
    assert response.status_code == 400
    assert "uses {subjet}; it may only use {subject}" in error_beside(response.get_data(as_text=True), "forward")
    response = teacher.post(url, data={"csrf_token": token_of(teacher, url), "forward": "What is {subject}?",
                                       "reverse": "Which is {subject}?"})
    assert "uses {subject}; it may only use {object}" in error_beside(response.get_data(as_text=True), "reverse")
    with app.app_context():
        assert db.session.get(Document, document).relations == before
    response = teacher.post(url, data={"csrf_token": token_of(teacher, url), "forward": "Define {subject}."})
    assert response.status_code == 303
    write(teacher, document, sentence=sentence_id(app, "Evaporation"), subject="evaporation", object="vapour")
    assert "Define evaporation." in teacher.get(f"/teach/decks/{document}/preview").get_data(as_text=True)


def authoring_urls(app, document_id: int, fact_id: int):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("authoring."):
            url = (rule.rule.replace("<int:document_id>", str(document_id)).replace("<int:fact_id>", str(fact_id))
                   .replace("<name>", "term-definition").replace("<key>", "0123456789abcdef"))
            yield url, sorted(rule.methods - {"HEAD", "OPTIONS"})


def test_another_teacher_gets_404_and_a_student_403_on_every_authoring_route(app, teacher, document, runner):
    write(teacher, document, sentence=sentence_id(app, "Evaporation"), subject="evaporation", object="vapour")
    with app.app_context():
        fact_id = db.session.scalar(select(AuthoredFact.id))
    other = app.test_client()
    runner.invoke(args=["user", "create", "--teacher", "mr-b", "--password", "correct horse"])
    AuthActions(other).login("mr-b")
    student = app.test_client()
    AuthActions(student).register("ann")
    before = counts(app)
    for client, allowed in ((other, 404), (student, 403)):
        token = csrf_token(client.get("/account").get_data(as_text=True))
        for url, methods in authoring_urls(app, document, fact_id):
            if url == "/teach/decks/" and client is other:
                continue  # their own list
            for method in methods:
                response = client.open(url, method=method, data={"csrf_token": token, "subject": "x",
                                                                  "object": "y", "forward": "{subject}"})
                assert response.status_code == allowed, (method, url, response.status_code)
    assert counts(app) == before
    assert f"/teach/decks/{document}\"" not in other.get("/teach/decks/").get_data(as_text=True)


def test_a_published_deck_is_seen_by_its_teacher_and_their_classes_only(app, teacher, document):
    write(teacher, document, sentence=sentence_id(app, "Evaporation"), subject="evaporation", object="vapour")
    publish(teacher, document)
    outsider = app.test_client()
    AuthActions(outsider).register("zed")
    assert "The water cycle" not in outsider.get("/").get_data(as_text=True)
    for url in ("/study/the-water-cycle", "/decks/the-water-cycle.apkg", "/study/no-such-deck"):
        response = outsider.get(url)
        assert response.status_code == 404 and "the-water-cycle" not in response.get_data(as_text=True).replace(
            "No deck &#39;the-water-cycle&#39;", ""), url
    assert "The water cycle" in teacher.get("/").get_data(as_text=True)
    assert teacher.get("/decks/the-water-cycle.apkg").status_code == 200
    class_id = create_class(teacher)
    token = token_of(teacher, f"/teach/classes/{class_id}")
    with app.app_context():
        deck_id = db.session.scalar(select(Deck.id).where(Deck.slug == "the-water-cycle"))
        from flashapp.models import Classroom
        code = db.session.get(Classroom, class_id).join_code
    teacher.post(f"/teach/classes/{class_id}/assignments", data={"csrf_token": token, "deck_id": deck_id})
    member = app.test_client()
    AuthActions(member).register("ann", class_code=code)
    assert "The water cycle" in member.get("/").get_data(as_text=True)
    assert member.get("/study/the-water-cycle").status_code == 200


def test_another_teachers_deck_cannot_be_assigned(app, teacher, document, runner):
    write(teacher, document, sentence=sentence_id(app, "Evaporation"), subject="evaporation", object="vapour")
    publish(teacher, document)
    other = app.test_client()
    runner.invoke(args=["user", "create", "--teacher", "mr-b", "--password", "correct horse"])
    AuthActions(other).login("mr-b")
    class_id = create_class(other)
    page = other.get(f"/teach/classes/{class_id}").get_data(as_text=True)
    assert "The water cycle" not in page
    with app.app_context():
        deck_id = db.session.scalar(select(Deck.id).where(Deck.slug == "the-water-cycle"))
    other.post(f"/teach/classes/{class_id}/assignments", data={"csrf_token": csrf_token(page), "deck_id": deck_id})
    with app.app_context():
        from flashapp.models import Assignment
        assert db.session.scalar(select(func.count()).select_from(Assignment)) == 0


def test_the_downloaded_facts_file_rebuilds_to_the_same_cards_and_keys(app, teacher, document, runner, tmp_path):
    from sqlalchemy.orm import Session

    from flashapp.database import make_engine
    from flashapp.decksource import parse_deck_text
    from flashapp.generation import build_deck
    from flashapp.models import Base
    from tests.helpers import T0

    assert teacher.get(f"/teach/decks/{document}/facts.yaml").status_code == 303  # no facts yet: nothing to write
    write(teacher, document, sentence=sentence_id(app, "Evaporation"), subject="evaporation",
          object="the change of liquid water into vapour", explanation="The Sun supplies the heat.")
    write(teacher, document, sentence=sentence_id(app, "Precipitation"), relation="cloze", subject="",
          object="rain, snow or hail")
    write(teacher, document, subject="condensation", object="vapour turning into droplets", supplemented="y")
    publish(teacher, document)
    response = teacher.get(f"/teach/decks/{document}/facts.yaml")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="the-water-cycle.yaml"'
    text = response.get_data(as_text=True)
    with app.app_context():
        published = {(c.key, c.question, c.answer) for c in db.session.scalars(select(Card))}
    # Into a fresh database, as `flashapp deck build` would on another install: the same cards and keys.
    engine = make_engine(f"sqlite:///{tmp_path / 'other.sqlite'}")
    Base.metadata.create_all(engine)
    with Session(engine) as other:
        report = build_deck(other, parse_deck_text(text, "the-water-cycle.yaml"), now=T0)
        other.commit()
        assert {(c.key, c.question, c.answer) for c in other.scalars(select(Card))} == published
        assert len(report.cards_added) == len(published) == 5
    engine.dispose()
    # And the command line writes the same file for the deck.
    out = tmp_path / "deck.yaml"
    result = runner.invoke(args=["deck", "facts", "the-water-cycle", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == text


def test_suggested_facts_can_be_accepted_edited_or_dropped(app, teacher):
    response = paste(teacher, "# Cells\n\nOsmosis is the movement of water across a membrane. The organelles include "
                              "the nucleus, the ribosomes and the mitochondria. Sweat helps you cool down.")
    document = int(response.headers["Location"].rsplit("/", 1)[1])
    page = teacher.get(f"/teach/decks/{document}").get_data(as_text=True)
    keys = re.findall(r'/suggestions/([0-9a-f]{16})/accept', page)
    assert "osmosis → the movement of water across a membrane" in html.unescape(page).lower()
    assert "nucleus → organelles" in html.unescape(page) and "sweat → cool down" in html.unescape(page).lower()
    token = csrf_token(page)
    assert teacher.post(f"/teach/decks/{document}/suggestions/{keys[0]}/accept",
                        data={"csrf_token": token}).status_code == 303
    assert teacher.post(f"/teach/decks/{document}/suggestions/{keys[1]}/drop",
                        data={"csrf_token": token}).status_code == 303
    with app.app_context():
        facts = [(f.relation, f.subject, f.sentence.anchor) for f in db.session.scalars(select(AuthoredFact))]
    assert facts == [("term-definition", "osmosis", "s1")]
    page = teacher.get(f"/teach/decks/{document}").get_data(as_text=True)
    left = re.findall(r'/suggestions/([0-9a-f]{16})/accept', page)
    assert keys[0] not in left and keys[1] not in left and len(left) == len(keys) - 2
    # Accepting again what is gone is refused and changes nothing.
    before = counts(app)
    assert teacher.post(f"/teach/decks/{document}/suggestions/{keys[1]}/accept",
                        data={"csrf_token": token}).status_code == 404
    assert counts(app) == before
    # "Edit first" opens the fact editor filled in.
    edit = html.unescape(re.search(r'href="([^"]*facts/new\?[^"]*)"', page).group(1))
    asked = parse_qs(urlsplit(edit).query)
    form = html.unescape(teacher.get(edit).get_data(as_text=True))
    assert f'value="{asked["subject"][0]}"' in form and f'value="{asked["object"][0]}"' in form
    assert f'<option selected value="{asked["relation"][0]}">' in form


def post_file(client, url: str, data: bytes, name: str, fields: dict[str, str]):
    boundary = "----flashapp-test-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
             for key, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def hidden(page: str, name: str) -> str:
    return html.unescape(re.search(rf'name="{name}" type="hidden" value="([^"]*)"|'
                                   rf'type="hidden" name="{name}" value="([^"]*)"|'
                                   rf'id="{name}" name="{name}" type="hidden" value="([^"]*)"', page).group(0)
                         .rsplit('value="', 1)[1][:-1])


def test_facts_are_imported_from_a_csv_file_after_a_preview(app, teacher, document):
    url = f"/teach/decks/{document}/import"
    csv_file = (b"term,definition,notes,supplemented\n"
                b"Evaporation,the change of liquid water into vapour,,no\n"
                b"condensation,vapour turning into droplets,Clouds form.,yes\n")
    page = post_file(teacher, url, csv_file, "water.csv", {"csrf_token": token_of(teacher, url), "format": "table"})
    assert page.status_code == 200, re.findall(r"class=\"error\"[^>]*>([^<]*)", page.get_data(as_text=True))
    text = page.get_data(as_text=True)
    assert '<option selected value="term">' in text and '<option selected value="definition">' in text
    assert "the change of liquid water into vapour" in text  # the preview
    fields = {"csrf_token": csrf_token(text), "format": "table", "table": hidden(text, "table"),
              "filename": "water.csv", "subject": "term", "object": "definition", "relation_column": "",
              "relation": "term-definition", "explanation": "notes", "supplemented": "supplemented"}
    before = counts(app)
    # A mapping that names the same column twice is refused beside the mapping; nothing is imported.
    refused = teacher.post(url, data={**fields, "object": "term", "action": "import"})
    assert refused.status_code == 400 and "both come from 'term'" in html.unescape(refused.get_data(as_text=True))
    assert counts(app) == before
    response = teacher.post(url, data={**fields, "action": "import"})
    assert response.status_code == 303, response.get_data(as_text=True)
    with app.app_context():
        facts = {(f.subject, f.supplemented, f.explanation, f.sentence.anchor if f.sentence else None)
                 for f in db.session.scalars(select(AuthoredFact))}
    assert facts == {("Evaporation", False, "", "s1"), ("condensation", True, "Clouds form.", None)}
    # Importing the same file again would write each fact twice: refused as a whole, by line.
    again = teacher.post(url, data={**fields, "action": "import"})
    assert again.status_code == 400
    assert "line 2: This deck already has" in html.unescape(again.get_data(as_text=True))
    assert counts(app)[2] == 2


def test_anki_notes_with_cloze_text_become_cloze_facts(app, teacher, document):
    url = f"/teach/decks/{document}/import"
    # Anki's cloze notes mostly leave their second field ("Back Extra") empty; a Basic note has both.
    notes = (b"#separator:tab\n#html:true\n#notetype column:1\n"
             b"Cloze\tPrecipitation is water that falls from clouds as {{c1::rain, snow or hail}}.\t\n"
             b"Basic\tgravity\tpulls it down\n"
             b"Cloze\tThe Sun supplies the {{c1::heat::energy}}, e.g. on a warm day.\tfrom the page's second line\n")
    page = post_file(teacher, url, notes, "notes.txt", {"csrf_token": token_of(teacher, url), "format": "anki"})
    text = page.get_data(as_text=True)
    assert page.status_code == 200, text
    # The preview shows each cloze note as the cloze fact it becomes, not as a row missing its object.
    preview = html.unescape(text)
    assert "rain, snow or hail" in preview and "is empty" not in preview
    fields = {"csrf_token": csrf_token(text), "format": "anki", "table": hidden(text, "table"),
              "filename": "notes.txt", "subject": "field 1", "object": "field 2", "relation_column": "",
              "relation": "item-function", "explanation": "", "supplemented": "", "action": "import"}
    response = teacher.post(url, data=fields)
    assert response.status_code == 303, response.get_data(as_text=True)
    with app.app_context():
        facts = {(f.relation, f.subject, f.object, f.explanation, f.sentence.anchor if f.sentence else None)
                 for f in db.session.scalars(select(AuthoredFact))}
    assert facts == {
        ("cloze", "Precipitation is water that falls from clouds as rain, snow or hail.", "rain, snow or hail", "",
         "s4"),
        ("item-function", "gravity", "pulls it down", "", "s5"),
        ("cloze", "The Sun supplies the heat, e.g. on a warm day.", "heat", "from the page's second line", "s2")}


@pytest.mark.parametrize(("data", "name", "message"), [
    (bytes(range(256)), "garbage.csv", "not a text file"),
    (b"", "empty.csv", "is empty"),
    (b"only\n", "one.csv", "a fact needs at least a subject and an object column"),
])
def test_a_table_that_cannot_be_read_is_refused_beside_the_file(app, teacher, document, data, name, message):
    url = f"/teach/decks/{document}/import"
    before = counts(app)
    response = post_file(teacher, url, data, name, {"csrf_token": token_of(teacher, url), "format": "table"})
    assert response.status_code == 400
    assert message in error_beside(response.get_data(as_text=True), "file")
    assert counts(app) == before


def test_a_document_never_published_is_deleted_after_asking(app, teacher, document):
    write(teacher, document, sentence=sentence_id(app, "Evaporation"), subject="evaporation", object="vapour")
    other = paste(teacher, "# Rain\n\nRain is water falling from clouds.\n", title="Kept notes")
    assert other.status_code == 303
    before = counts(app)
    url = f"/teach/decks/{document}/delete"
    # The document's page offers it; without scripts the link opens a page that asks first.
    assert url in teacher.get(f"/teach/decks/{document}").get_data(as_text=True)
    asked = teacher.get(url)
    page = html.unescape(asked.get_data(as_text=True))
    assert asked.status_code == 200 and "Delete “The water cycle”?" in page and "The document, its 1 fact, and" in page
    assert counts(app) == before
    # A post without the form's token is refused and deletes nothing.
    assert teacher.post(url, data={}).status_code == 400
    assert counts(app) == before
    done = teacher.post(url, data={"csrf_token": csrf_token(asked.get_data(as_text=True))})
    assert done.status_code == 303 and done.headers["Location"].endswith("/teach/decks/")
    assert "Deleted “The water cycle”." in html.unescape(teacher.get("/teach/decks/").get_data(as_text=True))
    with app.app_context():
        assert db.session.scalars(select(Document.title)).all() == ["Kept notes"]
        assert db.session.scalar(select(func.count()).select_from(AuthoredFact)) == 0
        left = db.session.scalars(select(DocumentSentence.text)).all()
    assert left == ["Rain is water falling from clouds."]
    assert teacher.get(f"/teach/decks/{document}").status_code == 404


def test_a_published_deck_cannot_be_deleted_and_the_page_says_why(app, teacher, document):
    write(teacher, document, sentence=sentence_id(app, "Evaporation"), subject="evaporation", object="vapour")
    assert publish(teacher, document).status_code == 303
    before = counts(app)
    page = html.unescape(teacher.get(f"/teach/decks/{document}").get_data(as_text=True))
    assert f"/teach/decks/{document}/delete" not in page
    assert "A published deck cannot be deleted: its cards hold your students' answers." in page
    url = f"/teach/decks/{document}/delete"
    refused = teacher.post(url, data={"csrf_token": token_of(teacher, f"/teach/decks/{document}")})
    assert refused.status_code == 409
    assert "A published deck cannot be deleted" in html.unescape(refused.get_data(as_text=True))
    assert counts(app) == before
