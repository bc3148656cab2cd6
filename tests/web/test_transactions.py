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
    # Reading the user, deck and card, each a statement of its own (the write checks them again); then
    # the answer alone under the write lock.
    assert begins == ["BEGIN IMMEDIATE"]
    # The next request reads in a plain transaction again.
    begins.clear()
    client.get(STUDY)
    assert begins == ["BEGIN"]
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


@pytest.fixture
def endings(built_app):
    """How each transaction on the app's engine ended: 'commit' or 'rollback' (a rollback of nothing is not one)."""
    seen: list[str] = []
    with built_app.app_context():
        engine = db.engine

    def committed(connection):
        seen.append("commit")

    def rolled_back(connection):
        if connection.in_transaction():
            seen.append("rollback")

    event.listen(engine, "commit", committed)
    event.listen(engine, "rollback", rolled_back)
    yield seen
    event.remove(engine, "commit", committed)
    event.remove(engine, "rollback", rolled_back)


def test_a_request_that_only_read_ends_its_transaction_with_a_commit(built_app, client, endings):
    AuthActions(client).register("ada")
    client.get("/healthz")  # the first runs SQLite's quick check, whose own transactions roll back
    endings.clear()
    for path in (STUDY, "/", "/history", "/healthz"):
        assert client.get(path).status_code == 200
        assert endings == ["commit"], path
        endings.clear()


def test_a_failed_request_and_one_with_unwritten_changes_are_rolled_back(database_url, tmp_path):
    from flask_login import current_user

    from flashapp.models import User
    from tests.conftest import _close, _test_app
    from tests.helpers import upgrade_database_in

    app = _test_app(database_url, tmp_path / "instance")
    upgrade_database_in(app)

    @app.route("/rename-in-memory")
    def rename_in_memory() -> str:
        user = db.session.get(User, current_user.id)
        user.time_zone = "Europe/Paris"  # changed on the object only: the request writes nothing
        return "renamed in memory"

    @app.route("/fail")
    def fail() -> str:
        db.session.execute(db.select(1))
        raise RuntimeError("the view failed")

    ends: list[str] = []
    with app.app_context():
        event.listen(db.engine, "commit", lambda connection: ends.append("commit"))
    try:
        client = app.test_client()
        AuthActions(client).register("ada")
        ends.clear()
        assert client.get("/rename-in-memory").status_code == 200
        assert ends == []  # not committed: the change is dropped with the session
        with app.app_context():
            assert db.session.scalar(db.select(User.time_zone).where(User.username == "ada")) == "UTC"
        app.config["PROPAGATE_EXCEPTIONS"] = False
        assert client.get("/fail").status_code == 500
        assert ends == []
    finally:
        _close(app)


def test_on_postgresql_a_connection_keeps_the_statements_its_driver_prepared(built_app, client):
    if built_app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("prepared statements are PostgreSQL's driver's")
    AuthActions(client).register("ada")
    for _ in range(12):  # the driver prepares a statement run five times on one connection
        assert client.get(STUDY).status_code == 200
    with built_app.app_context():
        rows = db.session.execute(db.text("SELECT statement FROM pg_prepared_statements")).scalars().all()
        db.session.rollback()
    assert any("FROM deck" in statement and "count(card_state.id)" in statement for statement in rows), rows


def test_an_answer_writes_on_the_connection_it_read_with(built_app, client, begins, endings):
    AuthActions(client).register("ada")
    page = client.get(STUDY).get_data(as_text=True)
    with built_app.app_context():
        engine = db.engine
    checkouts: list[object] = []

    def checked_out(dbapi_connection, record, proxy):
        checkouts.append(dbapi_connection)

    event.listen(engine, "checkout", checked_out)
    try:
        begins.clear()
        endings.clear()
        assert answer(client, showing(page), "3").status_code == 303
    finally:
        event.remove(engine, "checkout", checked_out)
    # The reads (the user, the card) and the write run on the same connection: one checkout and one
    # commit, where ending one transaction and beginning another took two of each.
    assert begins == ["BEGIN IMMEDIATE"]
    assert len(checkouts) == 1
    assert endings == ["commit"]


def test_a_write_after_a_read_sees_what_was_committed_in_between(built_app):
    # The read snapshot ends before the write begins: the write reads what was committed meanwhile.
    from sqlalchemy import create_engine, update

    from flashapp.database import may_write, write_transaction
    from flashapp.models import User

    url = built_app.config["SQLALCHEMY_DATABASE_URI"]
    with built_app.app_context():
        with write_transaction(db.session()):
            db.session.add(User(username="bea", password_hash="x", role="student", time_zone="UTC"))
        db.session.remove()
    other = create_engine(url)  # another program, which the request's read-only guard does not cover
    token = may_write.set(False)
    try:
        with built_app.app_context():
            session = db.session()
            assert session.scalar(db.select(User.time_zone).where(User.username == "bea")) == "UTC"
            with other.begin() as connection:
                connection.execute(update(User).where(User.username == "bea").values(time_zone="Asia/Tokyo"))
            # SQLite's read transaction keeps its snapshot; on PostgreSQL each statement reads what is committed.
            kept = "UTC" if url.startswith("sqlite") else "Asia/Tokyo"
            assert session.scalar(db.select(User.time_zone).where(User.username == "bea")) == kept
            with write_transaction(session):
                assert session.scalar(db.select(User.time_zone).where(User.username == "bea")) == "Asia/Tokyo"
                session.execute(update(User).where(User.username == "bea").values(time_zone="Europe/Oslo"))
            db.session.remove()
        with other.connect() as connection:
            assert connection.execute(db.select(User.time_zone).where(User.username == "bea")).scalar() == "Europe/Oslo"
    finally:
        may_write.reset(token)
        other.dispose()


@pytest.fixture
def statements(built_app):
    """Every statement SQLite runs on the app's connections, as its trace hook sees them (BEGIN and COMMIT too)."""
    if not built_app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite's trace hook")
    seen: list[str] = []
    with built_app.app_context():
        engine = db.engine
    engine.dispose()  # new connections, each with the hook

    def hook(dbapi_connection, record):
        dbapi_connection.set_trace_callback(seen.append)

    event.listen(engine, "connect", hook)
    yield seen
    event.remove(engine, "connect", hook)
    engine.dispose()


def test_an_answer_reads_without_a_read_transaction_and_writes_in_one(built_app, client, statements):
    AuthActions(client).register("ada")
    page = client.get(STUDY).get_data(as_text=True)
    statements.clear()
    assert answer(client, showing(page), "3").status_code == 303
    words = [statement.split(None, 1)[0].upper() for statement in statements]
    # The session's user and the card's plan, each read on its own; then BEGIN IMMEDIATE, the review and the
    # card's state, COMMIT: no read transaction's BEGIN and COMMIT before.
    assert words.index("BEGIN") == 2, statements
    assert statements[2] == "BEGIN IMMEDIATE"
    assert words[:2] == ["SELECT", "SELECT"] and words[-1] == "COMMIT" and words.count("COMMIT") == 1, statements
    statements.clear()
    assert client.get(STUDY).status_code == 200
    words = [statement.split(None, 1)[0].upper() for statement in statements]
    assert statements[0] == "BEGIN" and words[-1] == "COMMIT", statements  # a page still reads in one snapshot
