"""On SQLite, a request reads in a plain transaction and takes the write lock only to write."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from flashapp import db
from tests.helpers import STUDY, AuthActions, answer, showing


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
    # Reading the user, deck and card; then the answer alone under the write lock.
    assert begins == ["BEGIN", "BEGIN IMMEDIATE"]
    # Outside requests (the CLI, domain code) every transaction may write.
    begins.clear()
    with built_app.app_context():
        db.session.execute(db.select(1))
        db.session.rollback()
    assert begins == ["BEGIN IMMEDIATE"]


def test_a_write_in_a_read_transaction_is_refused_at_once(built_app, begins):
    from flashapp.database import ReadOnlyTransactionError, may_write
    from flashapp.models import User

    token = may_write.set(False)  # as in a request, outside `writing()`
    try:
        with built_app.app_context():
            db.session.add(User(username="sneaky", password_hash="x", role="student", time_zone="UTC"))
            with pytest.raises(ReadOnlyTransactionError):
                db.session.flush()
            db.session.rollback()
    finally:
        may_write.reset(token)
