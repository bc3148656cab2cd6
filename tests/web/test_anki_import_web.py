"""Bringing reviews back from Anki through the history page's upload form (and the teacher's view of them)."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder

from flashapp import db
from flashapp.anki_export import export_anki_package
from flashapp.models import CardState, Deck, ReviewLog, ReviewOrigin, User
from tests.anki_study import export, import_package, new_collection, study
from tests.helpers import AuthActions, csrf_token

BUNDLED_TITLE = "Back muscles"


@pytest.fixture(scope="session")
def _anki_files() -> dict[str, tuple[bytes, int]]:
    """What `anki_file` made in this test process, by database backend: the package's bytes and the answers."""
    return {}


@pytest.fixture
def anki_file(built_app, database_url, tmp_path, _anki_files):
    """An Anki deck package with scheduling: the bundled deck studied in Anki on three days; (path, answers).

    Made once per test process and backend (Anki takes a second or two to import, study and export), then
    copied: every test's built app holds the same bundled deck with the same ids, which is all the package
    is made from.
    """
    backend = database_url.split(":", 1)[0]
    if backend in _anki_files:
        data, answers = _anki_files[backend]
        package = tmp_path / "from-anki-apkg.apkg"
        package.write_bytes(data)
        return package, answers
    package, answers = _studied_in_anki(built_app, tmp_path)
    _anki_files[backend] = (package.read_bytes(), answers)
    return package, answers


def _studied_in_anki(built_app, tmp_path):
    with built_app.app_context():
        deck = db.session.scalar(select(Deck).where(Deck.slug == "back-muscles"))
        export_anki_package(db.session, deck_id=deck.id, out=tmp_path / "deck.apkg")
        title = deck.title
        db.session.remove()
    col = new_collection(tmp_path / "anki")
    import_package(col, tmp_path / "deck.apkg")
    start = (datetime.now(timezone.utc) - timedelta(days=10)).replace(hour=9, minute=0, second=0, microsecond=0)
    answers = study(col, title, start=start, days=3, seed=11)
    package, col = export(col, tmp_path, "apkg")
    col.close()
    return package, answers


@pytest.fixture
def ann(built_app, classroom):
    """A student of the teacher's class, logged in."""
    client = built_app.test_client()
    AuthActions(client).register("ann", class_code=classroom[1])
    return client


def counts(app) -> tuple[int, int]:
    with app.app_context():
        result = (db.session.scalar(select(func.count(ReviewLog.id))),
                  db.session.scalar(select(func.count(CardState.id))))
        db.session.remove()
    return result


def upload(client, data: bytes, *, name: str = "from-anki.apkg", token: str | None = "page"):
    if token == "page":
        token = csrf_token(client.get("/history").get_data(as_text=True))
    fields = {"file": (io.BytesIO(data), name)}
    if token is not None:
        fields["csrf_token"] = token
    # Built here so that the body's temporary file is closed even when the server never reads it (413).
    builder = EnvironBuilder(path="/history/anki", method="POST", data=fields, content_type="multipart/form-data")
    environ = builder.get_environ()
    try:
        return client.open(environ)
    finally:
        environ["wsgi.input"].close()
        builder.close()


def test_the_history_page_offers_the_upload(ann):
    page = ann.get("/history").get_data(as_text=True)
    assert "<h2 id=\"anki-import-title\">Bring back reviews from Anki</h2>" in page
    form = re.search(r'<form method="post" action="/history/anki" enctype="multipart/form-data"[^>]*>(.*?)</form>',
                     page, re.S)
    assert form and 'type="file"' in form.group(1) and 'accept=".apkg,.colpkg"' in form.group(1)
    assert 'name="csrf_token"' in form.group(1)


def test_reviews_from_anki_join_the_history_marked_and_a_second_upload_adds_nothing(built_app, ann, teacher,
                                                                                       classroom, anki_file):
    package, answers = anki_file
    response = upload(ann, package.read_bytes())
    assert response.status_code == 303 and response.headers["Location"].endswith("/history")
    page = ann.get("/history").get_data(as_text=True)
    assert f"Added {answers} reviews from Anki" in page
    assert page.count('<span class="pill origin-anki">in Anki</span>') == min(answers, 50)
    with built_app.app_context():
        student = db.session.scalar(select(User).where(User.username == "ann"))
        origins = db.session.execute(select(ReviewLog.origin, func.count()).where(ReviewLog.user_id == student.id)
                                     .group_by(ReviewLog.origin)).all()
        student_id = student.id
        total = db.session.scalar(select(Deck.active_cards).where(Deck.slug == "back-muscles"))
        db.session.remove()
    assert origins == [(ReviewOrigin.ANKI, answers)]
    before = counts(built_app)

    again = upload(ann, package.read_bytes())
    assert again.status_code == 303
    assert "No new reviews" in ann.get("/history").get_data(as_text=True)
    assert counts(built_app) == before

    # The statistics count them: three study days in Anki.
    assert "<b>3</b> of the last 365 days studied" in ann.get("/stats").get_data(as_text=True)
    # The teacher sees them on the student's page, marked, and in the class's numbers.
    student_page = teacher.get(f"/teach/classes/{classroom[0]}/students/{student_id}").get_data(as_text=True)
    assert '<span class="pill origin-anki">in Anki</span>' in student_page
    started = before[1]  # every card answered in Anki now has a state, replayed from its reviews
    assert started > 0 and f"{started} of {total} cards started" in student_page
    roster = teacher.get(f"/teach/classes/{classroom[0]}").get_data(as_text=True)
    assert "ann" in roster


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_an_upload_without_the_forms_token_is_refused_and_changes_nothing(built_app, ann, anki_file, token):
    package, _ = anki_file
    before = counts(built_app)
    response = upload(ann, package.read_bytes(), token=token)
    assert response.status_code == 400
    assert "This form has expired or was not sent by this site" in response.get_data(as_text=True)
    assert counts(built_app) == before


def test_a_file_that_is_not_what_it_claims_is_refused_beside_the_field(built_app, ann):
    before = counts(built_app)
    response = upload(ann, b"Just some notes I typed, saved as a deck.\n" * 20, name="back-muscles.apkg")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert re.search(r'<div class="field has-error">.*?aria-invalid="true".*?<p class="error" id="file-error">'
                     r"This file is not an Anki export\.", page, re.S)
    assert counts(built_app) == before


def test_an_upload_without_a_file_asks_for_one(built_app, ann):
    token = csrf_token(ann.get("/history").get_data(as_text=True))
    response = ann.post("/history/anki", data={"csrf_token": token, "file": "not a file"},
                        content_type="multipart/form-data")
    assert response.status_code == 400
    assert "Choose the file you exported from Anki" in response.get_data(as_text=True)


def test_an_oversized_upload_is_refused_with_the_limit(built_app, ann, anki_file):
    package, _ = anki_file
    before = counts(built_app)
    built_app.config["ANKI_UPLOAD_MAX_BYTES"] = 1024 * 1024
    too_big = upload(ann, package.read_bytes() + b"\0" * (2 * 1024 * 1024))
    assert too_big.status_code == 413
    assert "larger than the 1 MB this server accepts" in too_big.get_data(as_text=True)
    # Within the body's room for the form, but over the limit for the file: the import says so.
    built_app.config["ANKI_UPLOAD_MAX_BYTES"] = package.stat().st_size - 1
    over = upload(ann, package.read_bytes())
    assert over.status_code == 400 and "an upload from Anki may be at most" in over.get_data(as_text=True)
    assert counts(built_app) == before


def test_an_upload_needs_a_login(built_app, anki_file):
    package, _ = anki_file
    client = built_app.test_client()
    response = client.post("/history/anki", data={"file": (io.BytesIO(package.read_bytes()), "x.apkg")},
                           content_type="multipart/form-data")
    assert response.status_code in (302, 400)
    assert counts(built_app) == (0, 0)
