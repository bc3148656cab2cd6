"""Shared fixtures: a real database (SQLite, and PostgreSQL when FLASHAPP_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import functools
import gc
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from jinja2.bccache import Bucket, BytecodeCache
from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from flashapp.consistency import available_cpus
from flashapp.database import make_engine
from flashapp.models import Base
from flashapp.scheduling import make_scheduler
from tests.helpers import BUNDLED_DECK, FAST_HASH_METHOD, AuthActions, build_decks_in, upgrade_database_in

POSTGRES_URL = os.environ.get("FLASHAPP_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
_UNREACHABLE = "FLASHAPP_TEST_POSTGRES_URL is set but PostgreSQL cannot be reached: {}"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one test process per CPU, and one more.

    Many tests wait rather than compute (an fsync on every commit, a server or CLI started as a
    process of its own, Chromium drawing a page), and the extra process uses those waits. On a
    2-core machine, in turns: the whole suite 358 s with two processes and 342 s with three; without
    the browser tests 92 and 83 s with two, 83 and 78 s with three (83 s with four).
    """
    return available_cpus() + 1


def worker_database_url(url: str) -> str:
    """The PostgreSQL database this test process uses: the one the URL names, or, when the tests run in parallel
    (pytest-xdist), a database of the worker's own next to it (`<name>_gw0`, `<name>_gw1`, ...).

    Every test drops and recreates the schema of its database, so two workers must never share one. A missing
    worker database is created once, from the server's `postgres` maintenance database, and left in place for
    later runs.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    given = make_url(url)
    if not given.database or not re.fullmatch(r"\w+", given.database, re.ASCII):
        pytest.fail(f"FLASHAPP_TEST_POSTGRES_URL must name its database in letters, digits and _: {url}",
                    pytrace=False)
    return _created_database(given.set(database=f"{given.database}_{worker}"))


@functools.cache
def _created_database(target: URL) -> str:
    """Create the database target names unless it exists; its URL."""
    name = target.database
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    exists = text("SELECT 1 FROM pg_database WHERE datname = :name").bindparams(name=name)
    try:
        with admin.connect() as connection:
            if connection.scalar(exists) is None:
                try:
                    # template0 rather than the default template1, which another session may be connected to.
                    connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
                except ProgrammingError:
                    if connection.scalar(exists) is None:  # not made meanwhile by another run
                        raise
    except OperationalError as error:
        pytest.fail(_UNREACHABLE.format(error), pytrace=False)
    finally:
        admin.dispose()
    return target.render_as_string(hide_password=False)


def _reset_postgres(url: str) -> None:
    """Give the test a clean schema; an unreachable server fails the test rather than skipping it."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    except OperationalError as error:
        pytest.fail(_UNREACHABLE.format(error), pytrace=False)
    finally:
        engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def _collector_unfrozen_at_the_end():
    """Give what `_long_lived_objects_left_out_of_collections` froze back to the collector once the run ends."""
    yield
    gc.unfreeze()


@pytest.fixture(autouse=True)
def _long_lived_objects_left_out_of_collections():
    """Before each test, keep what is alive (modules, their classes and caches) out of the collector's scans.

    Each test's teardown collects the garbage it left (`_close`); without a freeze, every one of those
    collections walks the whole heap of imported libraries, about 80 ms a test. Freezing once, when the run
    starts, is not enough: the caches that fill up as the run goes on (SQLAlchemy's compiled statements,
    hypothesis's strategies, pytest's reports) grow what is left to walk from about 50,000 objects to 260,000,
    and each collection from about 25 ms to 200 ms. The garbage of earlier tests is collected before the freeze,
    so only what outlived them is frozen, and garbage made by the test itself is still collected as before.
    """
    gc.collect()
    gc.freeze()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> str:
    """A fresh, empty database for one test."""
    if request.param == "postgresql":
        assert POSTGRES_URL
        url = worker_database_url(POSTGRES_URL)
        _reset_postgres(url)
        return url
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


class _CompiledTemplates(BytecodeCache):
    """The templates compiled once for the whole run, shared by every test's app (each has its own Jinja
    environment, which would otherwise compile every template it renders again)."""

    def __init__(self) -> None:
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


_COMPILED_TEMPLATES = _CompiledTemplates()


def _url_builders_compiled_once() -> None:
    """Compile werkzeug's URL builder of each route once for the whole run, not once per test's app.

    Werkzeug writes two builder functions for each route as Python source and compiles them as the
    route is added: most of the time making an app takes (27 ms of 32), which nearly every test does.
    A builder's code follows from the route's parsed parts alone (the route it belongs to is passed to
    it when called), so a builder made for one app serves the same route in the next. Routes with
    default values, which werkzeug writes into the code, are compiled as usual.
    """
    from werkzeug.routing.rules import Rule

    compile_builder = Rule._compile_builder
    compiled: dict[tuple[object, ...], object] = {}

    @functools.wraps(compile_builder)
    def remembered(self: Rule, append_unknown: bool = True):
        if self.defaults:
            return compile_builder(self, append_unknown)
        key = (self.rule, tuple(self._trace), append_unknown)
        builder = compiled.get(key)
        if builder is None:
            builder = compiled[key] = compile_builder(self, append_unknown)
        return builder

    Rule._compile_builder = remembered


_url_builders_compiled_once()


def _test_app(database_url: str, instance: Path):
    from flashapp import create_app

    app = create_app({
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-key-" + "x" * 32,
        "ENABLE_FUZZING": False,
        "PASSWORD_HASH_METHOD": FAST_HASH_METHOD,
    })
    app.jinja_env.bytecode_cache = _COMPILED_TEMPLATES
    return app


def _close(app) -> None:
    from flashapp import db

    # A streamed download that a test did not read to its end (the test client reads its first chunk)
    # keeps its request, and that request's read transaction, until it is collected: collect it now,
    # before the database is dropped or disposed.
    gc.collect()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _replace_sqlite_file(template: Path, database_url: str) -> None:
    """Put a copy of template where database_url points (its engine, if any, already disposed)."""
    path = Path(make_url(database_url).database)
    for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(template, path)


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory) -> dict[str, Path]:
    """SQLite files made once per run, then copied for each test that needs them.

    "schema": the newest schema, made the way `flashapp init` makes it; "bundled": the same
    with the bundled deck built. Building them once saves most of each web test's set-up;
    tests/test_migrations.py still runs the migrations on a database of its own.
    """
    folder = tmp_path_factory.mktemp("sqlite-templates")
    schema, bundled = folder / "schema.sqlite", folder / "bundled.sqlite"
    app = _test_app(f"sqlite:///{schema}", folder / "instance")
    upgrade_database_in(app)
    _close(app)
    shutil.copyfile(schema, bundled)
    app = _test_app(f"sqlite:///{bundled}", folder / "instance")
    build_decks_in(app, [BUNDLED_DECK])
    _close(app)
    return {"schema": schema, "bundled": bundled}


def _is_sqlite(database_url: str) -> bool:
    return database_url.startswith("sqlite")


@pytest.fixture
def app(request, database_url, tmp_path):
    """The app on a fresh database with the newest schema and no decks."""
    if _is_sqlite(database_url):
        _replace_sqlite_file(request.getfixturevalue("sqlite_templates")["schema"], database_url)
    app = _test_app(database_url, tmp_path / "instance")
    if not _is_sqlite(database_url):
        upgrade_database_in(app)
    yield app
    _close(app)


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
def built_app(request, app, database_url):
    """The app with the bundled deck built."""
    if _is_sqlite(database_url):
        _close(app)
        _replace_sqlite_file(request.getfixturevalue("sqlite_templates")["bundled"], database_url)
    else:
        build_decks_in(app, [BUNDLED_DECK])
    return app


@dataclass
class _Fills:
    """What `fill_once` made in one test process: by key, a copy of the SQLite file and what the fill returned."""

    folder: Path
    made: dict[str, tuple[Path, object]] = field(default_factory=dict)


@pytest.fixture(scope="session")
def _sqlite_fills(tmp_path_factory) -> _Fills:
    return _Fills(tmp_path_factory.mktemp("sqlite-fills"))


@pytest.fixture
def fill_once(request, database_url):
    """`fill_once(key, engine, fill)`: the test's database as `fill()` leaves it, and what `fill()` returned.

    For fixtures whose data takes long to make (a student's months of answers): on SQLite, fill() runs
    on the first test of this process that asks for `key`, and each later one gets a copy of the file it
    left (engine, on the test's database, is disposed first) and the same return value, which must
    therefore be plain data (ids, counts), never objects of a session. The data must be the same each
    time, as the fill makes it from fixed times and seeds. On PostgreSQL fill() runs for every test.
    """
    if not _is_sqlite(database_url):
        return lambda key, engine, fill: fill()
    fills = request.getfixturevalue("_sqlite_fills")

    def fill_once(key: str, engine, fill):
        if key in fills.made:
            copy, value = fills.made[key]
            engine.dispose()
            _replace_sqlite_file(copy, database_url)
            return value
        value = fill()
        copy = fills.folder / f"fill-{len(fills.made)}.sqlite"
        # SQLite's backup copies the database as committed, from the WAL as well, whatever connections are open.
        source, target = sqlite3.connect(make_url(database_url).database), sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        fills.made[key] = (copy, value)
        return value

    return fill_once


@pytest.fixture
def small_disk(tmp_path):
    """A real filesystem of 4 MB of its own (tmpfs), so that a test can fill it. Mounting one needs root, as CI has."""
    if os.geteuid() != 0:
        pytest.skip("filling a disk needs a small filesystem of its own, and mounting one needs root")
    folder = tmp_path / "small-disk"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "flashapp-test", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def app_on_small_disk(small_disk, sqlite_templates):
    """The app with the bundled deck built, its SQLite file and instance folder on `small_disk`."""
    database = small_disk / "flashapp.sqlite"
    shutil.copyfile(sqlite_templates["bundled"], database)
    app = _test_app(f"sqlite:///{database}", small_disk / "instance")
    yield app
    _close(app)
