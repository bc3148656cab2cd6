"""Engine set-up shared by the app, the CLI and the domain tests."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import Engine, create_engine, event, text

# Whether transactions begun in this context may write. Read-only work (an HTTP GET) begins a
# plain deferred transaction, which in WAL mode never waits for, nor blocks, a writer.
may_write: ContextVar[bool] = ContextVar("may_write", default=True)


@contextmanager
def read_only():
    """Transactions begun inside only read: on SQLite they take no write lock."""
    token = may_write.set(False)
    try:
        yield
    finally:
        may_write.reset(token)


def configure_engine(engine: Engine) -> Engine:
    """Make an SQLite engine safe for a class: WAL, full sync, foreign keys, BEGIN IMMEDIATE.

    In WAL mode a transaction that reads and then writes fails at once with
    "database is locked" when another writer got in between, whatever the busy
    timeout; starting every transaction that may write with BEGIN IMMEDIATE makes it
    wait its turn (see `may_write`). Other backends are returned unchanged.
    """
    if engine.dialect.name != "sqlite":
        return engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event, not the driver, open transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if may_write.get() else "BEGIN")

    return engine


def make_engine(url: str, **kwargs) -> Engine:
    """Create and configure an engine for `url`."""
    return configure_engine(create_engine(url, **kwargs))


def database_status(connection) -> str:
    """'ok' when the database answers a trivial query."""
    connection.execute(text("SELECT 1"))
    return "ok"
