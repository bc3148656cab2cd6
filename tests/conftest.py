"""Shared fixtures: a real database (SQLite, and PostgreSQL when FLASHAPP_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from flashapp.database import make_engine
from flashapp.models import Base
from tests.helpers import FAST_HASH_METHOD

REPO = Path(__file__).resolve().parent.parent
BUNDLED_DECK = REPO / "decks" / "back-muscles.yaml"
POSTGRES_URL = os.environ.get("FLASHAPP_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def _reset_postgres(url: str) -> None:
    """Give the test a clean schema; an unreachable server fails the test rather than skipping it."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    except OperationalError as error:
        pytest.fail(f"FLASHAPP_TEST_POSTGRES_URL is set but PostgreSQL cannot be reached: {error}", pytrace=False)
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> str:
    """A fresh, empty database for one test."""
    if request.param == "postgresql":
        _reset_postgres(POSTGRES_URL)
        return POSTGRES_URL
    return f"sqlite:///{tmp_path / 'test.sqlite'}"


@pytest.fixture
def session(database_url):
    """A SQLAlchemy session on a fresh schema, without any Flask app."""
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


@pytest.fixture
def app(database_url, tmp_path):
    from flashapp import create_app, db

    app = create_app({
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-key-" + "x" * 32,
        "ENABLE_FUZZING": False,
        "PASSWORD_HASH_METHOD": FAST_HASH_METHOD,
    })
    from flashapp.cli import upgrade_database

    with app.app_context():
        upgrade_database()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The CSRF token from a rendered form."""
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1) or match.group(2)


class AuthActions:
    def __init__(self, client):
        self.client = client

    def register(self, username="ada", password="correct horse", time_zone="UTC"):
        token = csrf_token(self.client.get("/register").get_data(as_text=True))
        return self.client.post("/register", data={"username": username, "password": password,
                                                   "confirm": password, "time_zone": time_zone,
                                                   "csrf_token": token})

    def login(self, username="ada", password="correct horse"):
        token = csrf_token(self.client.get("/login").get_data(as_text=True))
        return self.client.post("/login", data={"username": username, "password": password, "csrf_token": token})

    def logout(self):
        token = csrf_token(self.client.get("/").get_data(as_text=True))
        return self.client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def built_app(app):
    """The app with the bundled deck built."""
    from flashapp import db
    from flashapp.cli import build_decks

    with app.app_context():
        build_decks([BUNDLED_DECK])
        db.session.remove()
    return app
