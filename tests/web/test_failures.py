"""What a student sees, and what the log keeps, when the server fails or cannot save."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from flask import abort
from sqlalchemy import func, make_url, select

from flashapp import db
from flashapp.database import make_engine, write_gate
from flashapp.models import ReviewLog, User
from tests.helpers import FAST_HASH_METHOD, STUDY, AuthActions, answer, fill_disk, read_only, showing

ERROR_ID = re.compile(r"The error id is <code>([0-9a-f]{8})</code>")


@pytest.fixture
def production_errors(app):
    """Errors handled as the served app handles them: a page, not a traceback raised into the test."""
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.route("/fails")
    def fails():
        raise RuntimeError("the secret detail of a bug")

    @app.route("/refuses")
    def refuses():
        abort(500)

    return app


def test_an_unexpected_error_shows_the_apps_page_with_an_id_that_the_log_has(production_errors, client, caplog):
    caplog.set_level(logging.ERROR, logger="flashapp")
    response = client.get("/fails")
    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong" in page and 'class="topbar"' in page
    assert "secret detail" not in page and "Traceback" not in page and "RuntimeError" not in page
    error_id = ERROR_ID.search(page).group(1)
    logged = [record for record in caplog.records if error_id in record.getMessage()]
    assert len(logged) == 1
    assert "GET /fails" in logged[0].getMessage()
    assert logged[0].exc_info and "secret detail" in str(logged[0].exc_info[1])


def test_a_500_raised_on_purpose_gets_the_same_page_and_a_logged_id(production_errors, client, caplog):
    caplog.set_level(logging.ERROR, logger="flashapp")
    response = client.get("/refuses")
    assert response.status_code == 500
    error_id = ERROR_ID.search(response.get_data(as_text=True)).group(1)
    assert any(f"Error {error_id} on GET /refuses" in record.getMessage() for record in caplog.records)


def test_each_error_gets_its_own_id(production_errors, client):
    first = ERROR_ID.search(client.get("/fails").get_data(as_text=True)).group(1)
    second = ERROR_ID.search(client.get("/fails").get_data(as_text=True)).group(1)
    assert first != second


def _count(app, model) -> int:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(model))
        db.session.remove()
    return count


def test_a_full_disk_saves_nothing_says_try_again_and_recovers_by_itself(app_on_small_disk, small_disk):
    app = app_on_small_disk
    client = app.test_client()
    assert AuthActions(client).register("ada").status_code == 302
    shown = showing(client.get(STUDY).get_data(as_text=True))
    filler = fill_disk(small_disk)

    response = answer(client, shown, "3")
    page = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "Not saved" in page and "disk is full" in page and "try again" in page
    newcomer = app.test_client()
    signup = AuthActions(newcomer).register("bob")
    assert signup.status_code == 503 and "Nothing was saved" in signup.get_data(as_text=True)
    assert _count(app, ReviewLog) == 0 and _count(app, User) == 1

    health = client.get("/healthz")
    assert health.status_code == 503
    checks = health.get_json()["checks"]
    assert checks["database"] == "ok"
    assert checks["writes"].startswith("failing") and "disk is full" in checks["writes"]

    filler.unlink()
    assert answer(client, shown, "3").status_code == 303
    assert AuthActions(newcomer).register("bob").status_code == 302
    assert _count(app, ReviewLog) == 1 and _count(app, User) == 2
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json()["checks"]["writes"] == "ok"


def test_a_database_made_read_only_while_serving_saves_nothing_and_says_so(built_app, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("a read-only database file is SQLite's")
    app, database = built_app, Path(make_url(database_url).database)
    client = app.test_client()
    assert AuthActions(client).register("ada").status_code == 302
    with read_only(database):
        try:
            with app.app_context():
                db.engine.dispose()  # the connections opened from now on find the file read-only
            signup = AuthActions(app.test_client()).register("bob")
            page = signup.get_data(as_text=True)
            assert signup.status_code == 503
            assert "read-only" in page and "Nothing was saved" in page and "tell your teacher" in page
            assert client.get(STUDY).status_code == 200  # reading goes on
            health = client.get("/healthz")
            assert health.status_code == 503
            writes = health.get_json()["checks"]["writes"]
            assert writes.startswith("failing") and f"{database} is read-only" in writes
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()  # let go of the file before it is made writable again
    assert _count(app, User) == 1
    assert AuthActions(app.test_client()).register("bob").status_code == 302
    assert client.get("/healthz").status_code == 200


def test_a_read_only_postgresql_saves_nothing_and_says_so(built_app, database_url, tmp_path):
    if not database_url.startswith("postgresql"):
        pytest.skip("a standby that only reads is PostgreSQL's")
    from flashapp import create_app

    # A second server on the same database whose every transaction is read-only, as on a standby.
    standby = create_app({
        "TESTING": True, "INSTANCE_PATH": str(tmp_path / "standby"), "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": built_app.config["SECRET_KEY"], "PASSWORD_HASH_METHOD": FAST_HASH_METHOD,
        "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": "-c default_transaction_read_only=on"}},
    })
    try:
        client = standby.test_client()
        signup = AuthActions(client).register("bob")
        page = signup.get_data(as_text=True)
        assert signup.status_code == 503 and "read-only" in page and "Nothing was saved" in page
        assert client.get("/login").status_code == 200
        health = client.get("/healthz")
        assert health.status_code == 503 and health.get_json()["checks"]["writes"].startswith("failing")
    finally:
        with standby.app_context():
            db.session.remove()
            db.engine.dispose()
    assert _count(built_app, User) == 0


def test_an_answer_that_cannot_get_the_write_lock_in_time_is_busy_and_saves_nothing(built_app, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the write lock is SQLite's")
    client = built_app.test_client()
    assert AuthActions(client).register("ada").status_code == 302
    shown = showing(client.get(STUDY).get_data(as_text=True))
    with built_app.app_context():
        write_gate(db.engine).wait_seconds = 0.3
    holder = make_engine(database_url)
    with holder.begin():  # BEGIN IMMEDIATE: another program holds the write lock
        response = answer(client, shown, "3")
    holder.dispose()
    page = response.get_data(as_text=True)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "Busy, try again" in page and "Nothing was saved" in page and "try again in a moment" in page
    assert _count(built_app, ReviewLog) == 0
    assert answer(client, shown, "3").status_code == 303
    assert _count(built_app, ReviewLog) == 1
