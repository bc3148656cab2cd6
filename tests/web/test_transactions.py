"""On SQLite, only requests that may write take the write lock (BEGIN IMMEDIATE)."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from flashapp import db
from tests.conftest import AuthActions
from tests.web.test_study_web import STUDY, answer, showing


@pytest.fixture
def begins(built_app):
    if not built_app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("BEGIN IMMEDIATE is SQLite's")
    seen = []
    with built_app.app_context():
        engine = db.engine

    def record(conn, cursor, statement, *args):
        if statement.startswith("BEGIN"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_reading_pages_begin_deferred_and_answers_begin_immediate(built_app, client, begins):
    AuthActions(client).register("ada")
    begins.clear()
    page = client.get(STUDY).get_data(as_text=True)
    client.get("/healthz")
    assert begins and set(begins) == {"BEGIN"}
    begins.clear()
    answer(client, showing(page), "3")
    assert begins[0] == "BEGIN IMMEDIATE"
    # Outside requests (the CLI, domain code) every transaction may write.
    begins.clear()
    with built_app.app_context():
        db.session.execute(db.select(1))
        db.session.rollback()
    assert begins == ["BEGIN IMMEDIATE"]
