"""Engine set-up shared by the app, the CLI and the domain tests."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry

# Whether transactions begun in this context may write. Read-only work (an HTTP GET) begins a
# plain deferred transaction, which in WAL mode never waits for, nor blocks, a writer.
may_write: ContextVar[bool] = ContextVar("may_write", default=True)


WRITER_QUEUE_TIMEOUT = 30.0
_HOLDS_WRITERS_LOCK = "flashapp.holds_writers_lock"
_WRITABLE = "flashapp.writable"
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class ReadOnlyTransactionError(RuntimeError):
    """Code wrote inside a transaction that was begun as read-only."""


def _release(info: dict[Any, Any]) -> None:  # SQLAlchemy's .info dicts hold anything
    lock = info.pop(_HOLDS_WRITERS_LOCK, None)
    if lock is not None:
        lock.release()


def configure_engine(engine: Engine) -> Engine:
    """Make an SQLite engine safe for a class: WAL, full sync, foreign keys, BEGIN IMMEDIATE.

    In WAL mode a transaction that reads and then writes fails at once with
    "database is locked" when another writer got in between, whatever the busy
    timeout; starting every transaction that may write with BEGIN IMMEDIATE makes it
    wait its turn (see `may_write`). Other backends are returned unchanged.
    """
    if engine.dialect.name != "sqlite":
        return engine

    # An SQLite URL without a driver name means pysqlite, whose connections are sqlite3's.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's "begin" event, not the driver, open transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    # Writers of this process queue on a lock of their own, in turn, instead of polling
    # SQLite's busy handler, which sleeps in growing steps and makes for long waits under
    # load. Writers in other processes still meet at SQLite's lock and its busy timeout.
    writers = threading.Lock()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.info[_WRITABLE] = may_write.get()
        if not connection.info[_WRITABLE]:
            connection.exec_driver_sql("BEGIN")
            return
        if writers.acquire(timeout=WRITER_QUEUE_TIMEOUT):
            connection.info[_HOLDS_WRITERS_LOCK] = writers
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release(connection.info)
            raise

    @event.listens_for(engine, "before_cursor_execute")
    def _refuse_writes_in_read_transactions(connection: Connection, _cursor: DBAPICursor, statement: str,
                                            *_args: object) -> None:
        # A write in a deferred transaction would fail with "database is locked" as soon as
        # another writer got in first: catch the mistake every time, not only under load.
        if not connection.info.get(_WRITABLE, True) and statement.lstrip()[:7].upper().startswith(WRITES):
            raise ReadOnlyTransactionError(
                f"a write in a read-only transaction (wrap it in a write transaction): {statement[:60]}")

    @event.listens_for(engine, "commit")
    def _on_commit(connection: Connection) -> None:
        # Committing first, then letting the next writer in, keeps the handover free of busy waits.
        connection.connection.commit()
        _release(connection.info)

    @event.listens_for(engine, "rollback")
    def _on_rollback(connection: Connection) -> None:
        connection.connection.rollback()
        _release(connection.info)

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: object, record: ConnectionPoolEntry) -> None:
        _release(record.info)

    return engine


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create and configure an engine for `url`."""
    return configure_engine(create_engine(url, **kwargs))


def database_status(session: Session) -> str:
    """'ok' when the database answers a trivial query."""
    session.execute(text("SELECT 1"))
    return "ok"


_IN_WRITE_TRANSACTION = "flashapp.in_write_transaction"


@contextmanager
def write_transaction(session: Session) -> Iterator[Session]:
    """The one way data changes: every use case that writes runs its work inside this block.

    Ends the session's read transaction first, so that the write lock (SQLite: BEGIN
    IMMEDIATE, taken in turn with this process's other writers) is held only for the
    block; commits at its end and rolls back on an exception. A use case called from
    inside another one joins the outer transaction. The web, the CLI and the checks all
    write through here.
    """
    if session.info.get(_IN_WRITE_TRANSACTION):
        yield session
        return
    if session.in_transaction():
        session.commit()  # a read transaction: nothing to write, only the snapshot to let go
    token = may_write.set(True)
    session.info[_IN_WRITE_TRANSACTION] = True
    try:
        with session.begin():
            yield session
    finally:
        session.info.pop(_IN_WRITE_TRANSACTION, None)
        may_write.reset(token)
