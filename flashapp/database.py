"""Engine set-up shared by the app, the CLI and the domain tests."""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Generic, Literal, TypeVar, cast

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import ConnectionPoolEntry

from .errors import Busy, NotSaved, StorageFull, StorageReadOnly
from .prepared import run_on_driver

# Whether transactions begun in this context may write. Read-only work (an HTTP GET) begins a
# plain deferred transaction, which in WAL mode never waits for, nor blocks, a writer.
may_write: ContextVar[bool] = ContextVar("may_write", default=True)
# Whether a read transaction begun in this context keeps one snapshot for all its statements (BEGIN).
# Off for a request whose reads only plan one write that checks them again under the write lock (an
# answer: `web.helpers.plans_one_write`): on SQLite each of its reads is then a statement of its own, in
# autocommit, which spares the read transaction's BEGIN and COMMIT; its write begins as every write does.
read_snapshot: ContextVar[bool] = ContextVar("read_snapshot", default=True)


# How long a write waits for its turn at most, in this process's queue and at SQLite's lock together.
DEFAULT_WRITE_WAIT_SECONDS = 5.0
# A write waiting longer than this is worth telling the health check about (a turn normally takes milliseconds).
SLOW_WAIT_SECONDS = 0.5
TURNED_AWAY_WINDOW_SECONDS = 60.0
_HOLDS_WRITERS_LOCK = "flashapp.holds_writers_lock"
_WRITABLE = "flashapp.writable"
_BUSY_TIMEOUT_MS = "flashapp.busy_timeout_ms"
# How much sooner than a write's whole wait SQLite's busy timeout may end, to spare setting it again.
BUSY_TIMEOUT_SLACK_MS = 100
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class ReadOnlyTransactionError(RuntimeError):
    """Code wrote inside a transaction that was begun as read-only."""


@dataclass(frozen=True)
class WriteHealth:
    """How writes to a database are going, as the health check reports it."""

    state: Literal["ok", "waiting", "failing"]
    detail: str = ""

    def __str__(self) -> str:
        return self.state if not self.detail else f"{self.state}: {self.detail}"


T = TypeVar("T")


# The savepoint each write of a group is made in (`CommitGroup`).
_GROUPED_SAVEPOINT = "grouped_write"


@dataclass
class _Grouped(Generic[T]):
    work: Callable[[Session], T]
    done: bool = False  # committed or refused, by whichever thread wrote it (set under the group's lock)
    result: T | None = None
    error: BaseException | None = None


class CommitGroup:
    """Small writes from this process's threads that share one transaction, and so one commit.

    With `synchronous=FULL` every commit waits for the disk; under load the writes queue for
    the write lock one fsync at a time. Here the first writer to get its turn writes whatever
    the others have queued meanwhile too, each in a savepoint of its own (one that fails is
    undone alone and raises in its own thread), and commits them together. Each caller returns
    only once its write is committed, or raises when it was not.
    """

    def __init__(self) -> None:
        self._queue: list[_Grouped[Any]] = []
        self._guard = threading.Lock()
        # Tells the threads whose writes another thread took that a batch is done (one for the group:
        # a writer alone, the usual case, then waits on nothing of its own).
        self._written = threading.Condition(self._guard)
        self._turn = threading.Lock()

    def write(self, session: Session, work: Callable[[Session], T], *, wait_seconds: float,
              busy: Callable[[], BaseException]) -> T:
        item: _Grouped[T] = _Grouped(work)
        with self._guard:
            self._queue.append(item)
        wrote = False
        if self._turn.acquire(timeout=wait_seconds):
            try:
                if not item.done:
                    self._write_queued(session)
                    wrote = True
            finally:
                self._turn.release()
        else:
            with self._guard:
                waiting = item in self._queue
                if waiting:
                    self._queue.remove(item)
            if waiting:
                raise busy()  # no writer came round to it: nothing was written
        if not wrote:
            with self._written:  # taken by the writer in turn, which ends by committing it or refusing it
                while not item.done:
                    self._written.wait()
            if session.in_transaction() and not session.info.get(_IN_WRITE_TRANSACTION):
                session.commit()  # written by another thread: a read snapshot from before it would not see it
        if item.error is not None:
            raise item.error
        return cast(T, item.result)

    def _write_queued(self, session: Session) -> None:
        with self._guard:
            batch, self._queue = self._queue, []
        try:
            with write_transaction(session):
                if len(batch) == 1:  # alone: its refusal rolls the whole transaction back, no savepoint needed
                    batch[0].result = batch[0].work(session)
                    return
                # Each write in a savepoint of the transaction's connection, set and ended on the driver: the
                # session's own nested transactions cost six times as much, and the writes change no objects
                # of the session that it would have to forget when one is undone.
                connection = session.connection()
                for item in batch:
                    run_on_driver(connection, f"SAVEPOINT {_GROUPED_SAVEPOINT}")
                    try:
                        item.result = item.work(session)
                    except DBAPIError:
                        raise  # the database's trouble: nothing of the group is saved
                    except Exception as error:  # noqa: BLE001  # this write's own refusal, raised in its thread
                        run_on_driver(connection, f"ROLLBACK TO SAVEPOINT {_GROUPED_SAVEPOINT}")
                        item.error = error
                    run_on_driver(connection, f"RELEASE SAVEPOINT {_GROUPED_SAVEPOINT}")
        except BaseException as error:
            for item in batch:
                item.result, item.error = None, error
            raise
        finally:
            with self._written:
                for item in batch:
                    item.done = True
                self._written.notify_all()


def grouped_write(session: Session, work: Callable[[Session], T]) -> T:
    """Run `work` in a write transaction (as `write_transaction`) that may commit together with other threads'.

    For small, independent writes made often (an answer): `work` must only write through the
    session it is given, with Core statements (no objects of the session: its writes may be undone
    behind the session's back), and raise to have its own writes undone. It returns once committed.
    """
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    if session.info.get(_IN_WRITE_TRANSACTION):
        with write_transaction(session):
            return work(session)
    if session.in_transaction() and engine.dialect.name != "sqlite":
        # A read transaction: let go of its snapshot while waiting. On SQLite, the thread that writes
        # makes it the write transaction (`write_transaction`); the others end it once written for.
        session.commit()
    gate = write_gate(engine)
    return gate.group.write(session, work, wait_seconds=gate.wait_seconds, busy=gate.busy)


class WriteGate:
    """This process's writes to one database: their turns, how long they wait, how the latest one ended.

    On SQLite the writers of a process take turns on `lock`; each waits `wait_seconds` at most,
    at this lock and at SQLite's own together. While writes are stuck (one has waited half a
    second and none got through since, or one gave up after its whole wait), a newcomer finding
    `waiting_at_most` writers already waiting is turned away at once, so that the server keeps
    threads for pages that only read. A busy but moving queue turns nobody away.
    """

    def __init__(self, *, wait_seconds: float = DEFAULT_WRITE_WAIT_SECONDS) -> None:
        self.wait_seconds = wait_seconds
        self.waiting_at_most: int | None = None
        self.lock = threading.Lock()
        self._guard = threading.Lock()
        self._waiting: dict[object, float] = {}
        self._turned_away: deque[float] = deque()
        self._last_through = time.monotonic()
        self._last_gave_up = float("-inf")
        self._failure: tuple[datetime, NotSaved] | None = None
        self.group = CommitGroup()

    def busy(self, *, waited: bool = True) -> Busy:
        """The error of a write turned away as busy, after its whole wait or (`waited=False`) at once; counted."""
        now = time.monotonic()
        with self._guard:
            self._turned_away.append(now)
            if waited:
                self._last_gave_up = now
        cause = (f"the write lock stayed taken for over {self.wait_seconds:g} s" if waited else
                 f"writes were stuck and {self.waiting_at_most} already waited for the write lock")
        return Busy("The server is busy saving other work and could not get to this in time. "
                    "Nothing was saved: go back and try again in a moment.",
                    cause=f"{cause} (another program may hold the database, such as a long `flashapp check --fix`)")

    def _stuck(self, now: float) -> bool:
        if self._last_gave_up > self._last_through:
            return True
        oldest = min(self._waiting.values(), default=now)
        return now - oldest >= SLOW_WAIT_SECONDS and now - self._last_through >= SLOW_WAIT_SECONDS

    @contextmanager
    def waiting(self) -> Iterator[float]:
        """Count the caller as waiting for its turn until the block ends; yields the time its wait ends by."""
        key, now = object(), time.monotonic()
        with self._guard:
            full = (self.waiting_at_most is not None and len(self._waiting) >= self.waiting_at_most
                    and self._stuck(now))
            if not full:
                self._waiting[key] = now
        if full:
            raise self.busy(waited=False)
        try:
            yield now + self.wait_seconds
        finally:
            with self._guard:
                del self._waiting[key]

    def got_through(self) -> None:
        """A writer got its turn: writes are moving."""
        self._last_through = time.monotonic()

    def failed(self, error: NotSaved) -> None:
        """Remember a write that the database refused (busy refusals are counted by `busy`)."""
        if not isinstance(error, Busy):
            self._failure = (datetime.now(timezone.utc), error)

    def saved(self) -> None:
        """A write went through: whatever made writes fail has passed."""
        self._failure = None

    def health(self) -> WriteHealth:
        """Failing while the latest write failed; waiting while writes wait long or were lately turned away."""
        if self._failure is not None:
            at, error = self._failure
            return WriteHealth("failing", f"the latest write, at {at:%H:%M:%S} UTC, was not saved: {error.cause}. "
                                          f"This clears with the next write that is saved.")
        now = time.monotonic()
        with self._guard:
            waits = sorted(now - started for started in self._waiting.values())
            while self._turned_away and self._turned_away[0] < now - TURNED_AWAY_WINDOW_SECONDS:
                self._turned_away.popleft()
            turned_away = len(self._turned_away)
        parts = []
        if waits and waits[-1] >= SLOW_WAIT_SECONDS:
            parts.append(f"{len(waits)} waiting for the write lock, the longest for {waits[-1]:.1f} s")
        if turned_away:
            parts.append(f"{turned_away} turned away as busy in the last minute "
                         f"(each waits {self.wait_seconds:g} s at most)")
        return WriteHealth("waiting", "; ".join(parts)) if parts else WriteHealth("ok")


_gates: weakref.WeakKeyDictionary[Engine, WriteGate] = weakref.WeakKeyDictionary()
_gates_guard = threading.Lock()


def write_gate(engine: Engine) -> WriteGate:
    """The write gate of an engine (made on first use)."""
    with _gates_guard:
        gate = _gates.get(engine)
        if gate is None:
            gate = _gates[engine] = WriteGate()
        return gate


def _release(info: dict[Any, Any]) -> None:  # SQLAlchemy's .info dicts hold anything
    lock = info.pop(_HOLDS_WRITERS_LOCK, None)
    if lock is not None:
        lock.release()


def _begin_writing(connection: Connection, gate: WriteGate) -> None:
    """Begin SQLite's write transaction on a connection that has none open: this process's turn, then BEGIN IMMEDIATE.

    Raises Busy when the turn does not come within the gate's wait.
    """
    with gate.waiting() as wait_ends:
        if not gate.lock.acquire(timeout=gate.wait_seconds):
            raise gate.busy()
        connection.info[_HOLDS_WRITERS_LOCK] = gate.lock
        try:
            # SQLite waits for its lock what is left of the write's wait. A timeout set before that
            # is left alone when it ends no more than BUSY_TIMEOUT_SLACK_MS before the wait would.
            left_ms = max(0, round((wait_ends - time.monotonic()) * 1000))
            timeout_ms = connection.info.get(_BUSY_TIMEOUT_MS)  # kept with the driver's connection
            if timeout_ms is None or not left_ms - BUSY_TIMEOUT_SLACK_MS <= timeout_ms <= left_ms:
                connection.connection.driver_connection.execute(  # type: ignore[union-attr]  # sqlite3's
                    f"PRAGMA busy_timeout={left_ms}")
                connection.info[_BUSY_TIMEOUT_MS] = left_ms
            run_on_driver(connection, "BEGIN IMMEDIATE")
        except BaseException:
            _release(connection.info)
            raise
        gate.got_through()


def configure_engine(engine: Engine, *, write_wait_seconds: float = DEFAULT_WRITE_WAIT_SECONDS) -> Engine:
    """Make an SQLite engine safe for a class: WAL, full sync, foreign keys, BEGIN IMMEDIATE.

    In WAL mode a transaction that reads and then writes fails at once with
    "database is locked" when another writer got in between, whatever the busy
    timeout; starting every transaction that may write with BEGIN IMMEDIATE makes it
    wait its turn (see `may_write`), for `write_wait_seconds` at most. Other backends
    only get their write gate's wait set.
    """
    gate = write_gate(engine)
    gate.wait_seconds = write_wait_seconds
    if engine.dialect.name != "sqlite":
        return engine
    busy_timeout_ms = round(write_wait_seconds * 1000)

    # An SQLite URL without a driver name means pysqlite, whose connections are sqlite3's.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's "begin" event, not the driver, open transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        record.info[_BUSY_TIMEOUT_MS] = busy_timeout_ms
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    # Writers of this process queue on a lock of their own, in turn, instead of polling
    # SQLite's busy handler, which sleeps in growing steps and makes for long waits under
    # load. Writers in other processes still meet at SQLite's lock and its busy timeout.
    # A writer waits at the two together for the gate's wait at most, then is turned away.
    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.info[_WRITABLE] = may_write.get()
        if not connection.info[_WRITABLE]:
            if read_snapshot.get():
                run_on_driver(connection, "BEGIN")
            return
        _begin_writing(connection, gate)

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
        try:
            connection.connection.commit()
        except sqlite3.Error as error:
            # A failed COMMIT (a full disk) may leave SQLite's transaction open: end it, so that nothing
            # is half-saved, and raise the error as SQLAlchemy raises the driver's errors elsewhere.
            with suppress(sqlite3.Error):
                connection.connection.rollback()
            raise DBAPIError.instance("COMMIT", None, error, sqlite3.Error) from error
        finally:
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


def refresh_statistics(session: Session, tables: tuple[str, ...]) -> None:
    """Have PostgreSQL sample these tables again, in the caller's transaction (SQLite: nothing to do).

    After a bulk change, such as a deck's first build: without statistics the planner takes a deck's
    thousand cards for one, and the study page's joins walk every card of the deck per answer.
    """
    if session.get_bind().dialect.name == "postgresql":
        for table in tables:
            session.execute(text(f"ANALYZE {table}"))  # names from the code, never from input


_IN_WRITE_TRANSACTION = "flashapp.in_write_transaction"


# Primary result codes of SQLite (an extended code keeps its primary code in its low byte).
SQLITE_BUSY, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL = 5, 8, 10, 13
# PostgreSQL's SQLSTATEs for the same troubles.
PG_DISK_FULL, PG_READ_ONLY, PG_LOCK_NOT_AVAILABLE = "53100", "25006", "55P03"


def _where(engine: Engine) -> str:
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return url.database or "the in-memory database"
    return url.render_as_string(hide_password=True)


def not_saved(error: DBAPIError, engine: Engine) -> NotSaved | None:
    """The NotSaved error for a database error that is the machine's trouble, not the program's; else None."""
    original = error.orig
    code = getattr(original, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    state = getattr(original, "sqlstate", None)
    where = _where(engine)
    if primary == SQLITE_FULL or state == PG_DISK_FULL:
        return StorageFull("Not saved: the server's disk is full. Nothing was saved: try again later, "
                           "and tell your teacher.",
                           cause=f"the disk holding {where} is full ({original}); free some space on it")
    if primary == SQLITE_READONLY or state == PG_READ_ONLY:
        return StorageReadOnly("Not saved: the server's database is read-only. Nothing was saved: tell your "
                               "teacher, then try again.",
                               cause=f"{where} is read-only ({original}); make the file and its folder "
                                     f"writable for the user running flashapp")
    if primary == SQLITE_BUSY or state == PG_LOCK_NOT_AVAILABLE:
        return write_gate(engine).busy()
    if primary == SQLITE_IOERR:
        return NotSaved("Not saved: the server's disk could not be written. Nothing was saved: try again "
                        "later, and tell your teacher.",
                        cause=f"the disk holding {where} failed a write ({original}); check the disk")
    return None


@contextmanager
def reading(session: Session) -> Iterator[Session]:
    """A block that only reads, however long it takes: its transaction never holds the write lock.

    Ends the session's transaction first, so the block begins a plain one (on SQLite a deferred
    transaction, which in WAL mode neither waits for nor blocks a writer). A `write_transaction`
    inside the block still writes.
    """
    if session.in_transaction():
        session.commit()
    token = may_write.set(False)
    try:
        yield session
    finally:
        may_write.reset(token)


def _writing_in_place(session: Session, gate: WriteGate) -> SessionTransaction | None:
    """On SQLite, the session's read transaction made its write transaction, on the same connection; else None.

    What committing the read transaction and beginning a new one does, without the session letting go of
    its connection and taking one again (a sizeable share of an answer's time): the read snapshot ends
    (COMMIT), then the write begins as every write does (`_begin_writing`). Only for a read transaction
    with nothing waiting to be flushed. Raises Busy, with the session's transaction ended, when the
    write's turn does not come.
    """
    transaction = session.get_transaction()
    if transaction is None or session.new or session.dirty or session.deleted:
        return None
    connection = session.connection()
    if connection.dialect.name != "sqlite" or connection.info.get(_WRITABLE, True):
        return None
    try:
        connection.connection.commit()  # the read snapshot ends here
        connection.info[_WRITABLE] = True
        _begin_writing(connection, gate)
    except BaseException:
        session.rollback()
        raise
    return transaction


@contextmanager
def write_transaction(session: Session) -> Iterator[Session]:
    """The one way data changes: every use case that writes runs its work inside this block.

    Ends the session's read transaction first, so that the write lock (SQLite: BEGIN
    IMMEDIATE, taken in turn with this process's other writers) is held only for the
    block; commits at its end and rolls back on an exception. A use case called from
    inside another one joins the outer transaction. The web, the CLI and the checks all
    write through here.

    Raises NotSaved (Busy, StorageFull, StorageReadOnly) when the database cannot take the
    write: a full disk, a read-only file, the write lock held too long. Nothing is saved then.
    """
    if session.info.get(_IN_WRITE_TRANSACTION):
        yield session
        return
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    gate = write_gate(engine)
    token = may_write.set(True)
    session.info[_IN_WRITE_TRANSACTION] = True
    try:
        upgraded = _writing_in_place(session, gate)
        if upgraded is None and session.in_transaction():
            session.commit()  # a read transaction: nothing to write, only the snapshot to let go
        with upgraded if upgraded is not None else session.begin():
            yield session
    except DBAPIError as error:
        problem = not_saved(error, engine)
        if problem is None:
            raise
        gate.failed(problem)
        raise problem from error
    except NotSaved as problem:
        gate.failed(problem)
        raise
    finally:
        session.info.pop(_IN_WRITE_TRANSACTION, None)
        may_write.reset(token)
    gate.saved()
