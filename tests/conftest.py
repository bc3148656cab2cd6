"""Shared fixtures: a real database (SQLite, and PostgreSQL when FLASHAPP_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from flashapp.database import make_engine
from flashapp.models import Base
from flashapp.scheduling import make_scheduler
from tests.helpers import BUNDLED_DECK, FAST_HASH_METHOD, AuthActions, build_decks_in, upgrade_database_in

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
def engine(database_url):
    """An engine on a fresh schema, without any Flask app."""
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    """A SQLAlchemy session on a fresh schema, without any Flask app."""
    with Session(engine) as session:
        yield session


@pytest.fixture
def scheduler():
    """The FSRS scheduler with fuzzing off, so intervals are exact."""
    return make_scheduler(enable_fuzzing=False)


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
    upgrade_database_in(app)
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


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def built_app(app):
    """The app with the bundled deck built."""
    build_decks_in(app, [BUNDLED_DECK])
    return app
