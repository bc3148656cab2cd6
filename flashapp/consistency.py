"""Check the database against its source of truth, and repair it.

The review log is the source of truth: every card state must equal the replay of its
user's reviews of that card. This module finds where that is not so, and rows that point
at nothing, and with `fix=True` repairs everything fixable. The card states are in turn the source of the numbers the
database keeps from them for the teacher's pages (each state's last review in microseconds, and on
SQLite each card's summed review counts and each account's states per deck): those are compared with
what the states give, in a few set-based queries, and rebuilt from them by a fix.

The check reads in one plain read transaction (one snapshot, no write lock): card states
and reviews as two streams, both ordered by (user, card), merged, with the columns decoded
by hand rather than row by row through the ORM. Memory holds one card's reviews at a time
(plus the ids of users, decks, notes and cards, and the problems found), whatever the size
of the review log. A replay asks the FSRS engine only what it has not been asked before: the
same answers recur across cards (every card's first answers, the learning steps of the next
days), and up to `MEMORY_STEPS_KEPT` answers are kept at a time (`scheduling.memory_step`); a review card's
answer is asked of the engine's formulas directly, without the rest of `review_card`. On a
large review log the replays are shared among one process per CPU,
each checking ranges of (user, card) keys (a card's state and reviews are always in one
range) in a read transaction of its own, in the same snapshot on PostgreSQL; meanwhile this
process runs SQLite's integrity check and compares the kept numbers. (Those processes are not forked from the
caller, see `_worker_context`: on Windows they are spawned, so a script that calls the check must guard its own work
with `if __name__ == "__main__"`.)

A fix then repairs what was found in short write transactions of at
most `FIX_BATCH` cards or rows each, so answers keep being accepted meanwhile; each batch
replays its cards again from the reviews as they are at that moment, so an answer given
during the check is never overwritten by a stale replay. An interrupted fix leaves whole
batches behind, and running it again finishes the work.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
import re
import signal
import sqlite3
import time
from bisect import insort
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from operator import attrgetter
from typing import Any, NamedTuple, TypeVar

from fsrs import Card as FsrsCard
from fsrs import Rating, Scheduler, State
from sqlalchemy import (
    BigInteger,
    Engine,
    Integer,
    Select,
    String,
    delete,
    func,
    insert,
    inspect,
    literal_column,
    null,
    select,
    text,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import Session

from .database import make_engine, may_write, write_transaction
from .models import (
    Card,
    CardReviewCounts,
    CardState,
    Deck,
    DeckStateCounts,
    Note,
    ReviewLog,
    ReviewState,
    User,
    microseconds_sql,
)
from .personal import all_personal_parameters, personal_parameters_of
from .prepared import driver_runs
from .scheduling import (
    ReviewCounts,
    StudyDays,
    card_reviews,
    count_reviews,
    last_intervals,
    personal_scheduler,
    replay,
    set_last_intervals,
    store_state,
    study_scheduler,
    without_fuzz,
)

FLOAT_TOLERANCE = 1e-9
# Ids named in one message; the count is always given in full.
IDS_SHOWN = 10
CHUNK = 500
# Rows read at a time from each of the two streams.
BATCH = 5000
# Cards (or rows to delete) repaired per write transaction: each holds the write lock briefly.
FIX_BATCH = 200
# On SQLite, the pause between two batches of a fix. A writer in another process (the server)
# waiting for the lock retries at most every 100 ms (SQLite's busy handler); without a pause the
# next batch would take the lock again first, batch after batch, and such a writer could wait
# until its busy timeout runs out.
FIX_PAUSE_SECONDS = 0.12
# From about this many reviews on, the check shares the replays among one process per CPU
# (below, starting the processes costs about as much as it saves).
PARALLEL_REVIEWS = 200_000
# Ranges of cards per process: a process done early takes the next range, so none waits long
# for another at the end.
RANGES_PER_PROCESS = 8

INTEGRITY = "integrity"
ORPHAN_NOTE = "orphan_note"
ORPHAN_CARD = "orphan_card"
ORPHAN_STATE = "orphan_state"
ORPHAN_REVIEWS = "orphan_reviews"
STATE_MISMATCH = "state_mismatch"
LAST_INTERVAL_MISMATCH = "last_interval_mismatch"
STATE_WITHOUT_REVIEWS = "state_without_reviews"
REVIEWS_WITHOUT_STATE = "reviews_without_state"
UNREPLAYABLE = "unreplayable"
# The numbers the database keeps for the teacher's pages (see `models.DATABASE_KEPT`).
LAST_REVIEW_US_MISMATCH = "last_review_us_mismatch"
CARD_REVIEW_COUNTS_MISMATCH = "card_review_counts_mismatch"
DECK_STATE_COUNTS_MISMATCH = "deck_state_counts_mismatch"
# Rows described in one message about kept numbers; the count is always given in full.
KEPT_SHOWN = 5


@dataclass(frozen=True)
class Problem:
    """One inconsistency, in words, and whether `check_database(fix=True)` can repair it."""

    kind: str
    message: str
    fixable: bool = True


@dataclass
class CheckReport:
    """What a check found, and whether the fixable problems were repaired."""

    problems: list[Problem] = field(default_factory=list)
    fixed: bool = False
    states_checked: int = 0
    reviews_checked: int = 0

    @property
    def repaired(self) -> list[Problem]:
        """The problems this run repaired."""
        return [p for p in self.problems if self.fixed and p.fixable]

    @property
    def unfixed(self) -> list[Problem]:
        """The problems still in the database after this run."""
        return [p for p in self.problems if not (self.fixed and p.fixable)]

    @property
    def ok(self) -> bool:
        """True when nothing is left to fix."""
        return not self.unfixed


def _ids(unordered: Iterable[int]) -> str:
    ids = sorted(unordered)
    shown = ", ".join(str(i) for i in ids[:IDS_SHOWN])
    return shown + (f" and {len(ids) - IDS_SHOWN} more" if len(ids) > IDS_SHOWN else "")


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE)


def state_differences(state: Any, replayed: FsrsCard, counts: ReviewCounts | None = None) -> list[str]:
    """How a stored card state differs from the replay of its reviews ('field stored, replay value').

    `state` is a `CardState` or a row with its columns; `counts`, when given, are the
    review counts the reviews give (see `scheduling.count_reviews`).
    """
    expected: dict[str, Any] = {"state": replayed.state, "step": replayed.step, "stability": replayed.stability,
                                "difficulty": replayed.difficulty, "due": replayed.due,
                                "last_review": replayed.last_review}
    if counts is not None:
        expected |= {"reps": counts.reps, "lapses": counts.lapses, "again_count": counts.again}
    differences = []
    for name, value in expected.items():
        stored = getattr(state, name)
        if stored == value:
            continue  # as nearly always: no tolerance to work out
        if name in ("stability", "difficulty") and _close(stored, value):
            continue
        differences.append(f"{name} {stored} (reviews give {value})")
    return differences


@contextmanager
def _read_transaction(session: Session, *, snapshot: str | None = None) -> Iterator[None]:
    """The one read transaction the whole check reads in: one snapshot, never the write lock.

    On PostgreSQL the snapshot is REPEATABLE READ, so the two streams and the id sets agree;
    `snapshot` is one exported by another transaction (`_shared_snapshot`), to read in.
    """
    postgresql = session.get_bind().dialect.name == "postgresql"
    options = {"isolation_level": "REPEATABLE READ"} if postgresql else {}
    token = may_write.set(False)
    try:
        session.connection(execution_options=options)
        if snapshot is not None:
            # Must come first in the transaction; the id was checked to be only hex digits and dashes.
            session.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
    finally:
        may_write.reset(token)
    try:
        yield
    finally:
        session.rollback()


@contextmanager
def _fix_transaction(session: Session) -> Iterator[None]:
    """One batch of a fix: a short write transaction (`write_transaction`).

    On SQLite it begins with BEGIN IMMEDIATE; on PostgreSQL the tables are locked against
    writers for the batch, so the batch's replays read the reviews an answer cannot change
    under them.
    """
    with write_transaction(session):
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("LOCK TABLE note, card, card_state, review_log IN SHARE ROW EXCLUSIVE MODE"))
        yield


def _integrity(session: Session) -> list[Problem]:
    if session.get_bind().dialect.name != "sqlite":
        return []
    rows = [str(row) for row in session.scalars(text("PRAGMA integrity_check"))]
    if rows == ["ok"]:
        return []
    return [Problem(INTEGRITY, f"SQLite integrity check: {row}", fixable=False) for row in rows[:20]] + [
        Problem(INTEGRITY, "the database file is damaged: restore a backup (`flashapp restore`); "
                           "the other checks were skipped", fixable=False)]


def _delete_ids(session: Session, column: Any, ids: set[int]) -> None:
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        session.execute(delete(column.class_).where(column.in_(ordered[start:start + CHUNK]))
                        .execution_options(synchronize_session=False))


def check_database(session: Session, scheduler: Scheduler, *, fix: bool, batch_size: int = FIX_BATCH,
                   pause_seconds: float = FIX_PAUSE_SECONDS, workers: int | None = None) -> CheckReport:
    """Check the database: SQLite integrity, card states against their review logs, orphaned rows.

    Problems found:
    - (SQLite) `PRAGMA integrity_check` failing, or a file SQLite cannot read: not fixable
      here, restore a backup;
    - notes of missing decks, cards of missing notes or decks;
    - card states and reviews of missing users or cards;
    - a card state that differs from the replay of its reviews (state, step, due,
      last review, stability and difficulty within 1e-9, and its counts of reviews,
      Again answers and lapses), a card state without reviews, and reviews without a
      card state;
    - reviews whose last interval is not what the card's previous review scheduled
      (`scheduling.last_intervals`);
    - numbers the database keeps from the card states that differ from what the states give
      (`_kept_numbers`): a state's `last_review_us` against its `last_review`, `deck_state_counts`
      against the states counted, and on SQLite `card_review_counts` against the states summed.

    The check reads without the write lock. With `fix=True` every fixable problem is then
    repaired in write transactions of at most `batch_size` rows or cards each (on SQLite
    `pause_seconds` apart, so the server's writers get their turn): orphans and states
    without reviews are deleted, other states rewritten or created from a fresh replay of
    their reviews (which writes their reviews' last intervals too); then the kept numbers found
    wrong are rebuilt from the card states as they are by then. `session` must have no
    transaction in progress.

    The replays are shared among `workers` processes, each checking ranges of cards (None:
    one per CPU when there are `PARALLEL_REVIEWS` reviews or more, else none but this one);
    the fix is made here, after they are done.
    """
    if session.in_transaction():
        raise RuntimeError("check_database needs a session with no transaction in progress")
    report = CheckReport()
    try:
        with _read_transaction(session):
            processes = _processes(session, workers)
            if processes > 1:
                plan = _check_in_parallel(session, scheduler, report, processes)
            else:
                report.problems = _integrity(session)
                plan = None if report.problems else _check_rows(session, scheduler, report)
                if plan is not None:
                    report.problems += _kept_numbers(session, plan)
        if fix and plan is not None and any(p.fixable for p in report.problems):
            pause = pause_seconds if session.get_bind().dialect.name == "sqlite" else 0.0
            _repair(session, scheduler, plan, batch_size=batch_size, pause_seconds=pause)
            report.fixed = True
    except DatabaseError as error:
        if not _unreadable_sqlite_file(session, error):
            raise
        session.rollback()
        report.problems = [Problem(INTEGRITY, f"SQLite cannot read the database file ({error.orig}): it is "
                                              "damaged; restore a backup (`flashapp restore`)", fixable=False)]
        report.fixed = False
    return report


def _unreadable_sqlite_file(session: Session, error: DatabaseError) -> bool:
    """Whether SQLite refused to read on because the file is damaged (not a lock, not a mistake)."""
    return (session.get_bind().dialect.name == "sqlite" and not isinstance(error, OperationalError)
            and type(error.orig) is sqlite3.DatabaseError)


@dataclass
class _Plan:
    """What a fix does: rows to delete (children first) and the cards whose state to replay."""

    reviews: set[int] = field(default_factory=set)
    states: set[int] = field(default_factory=set)
    cards: set[int] = field(default_factory=set)
    notes: set[int] = field(default_factory=set)
    replays: list[tuple[int, int]] = field(default_factory=list)
    # Kept numbers to rebuild from the card states once these are repaired.
    last_review_us: set[int] = field(default_factory=set)
    review_counts: set[int] = field(default_factory=set)
    deck_counts: set[tuple[int, int]] = field(default_factory=set)


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _repair(session: Session, scheduler: Scheduler, plan: _Plan, *, batch_size: int, pause_seconds: float) -> None:
    """Carry out a plan in write transactions of at most `batch_size` rows or cards each."""
    plain = without_fuzz(scheduler)

    def delete_cards(ids: Sequence[int]) -> None:
        for column in (ReviewLog.card_id, CardState.card_id, Card.id):
            _delete_ids(session, column, set(ids))

    def replay_cards(keys: Sequence[tuple[int, int]]) -> None:
        for user_id, card_id in keys:
            replay_into_state(session, plain, user_id=user_id, card_id=card_id)

    # Children before parents, so foreign keys hold at every step.
    steps: list[tuple[Sequence[Any], Callable[[Sequence[Any]], None]]] = [
        (sorted(plan.reviews), lambda ids: _delete_ids(session, ReviewLog.id, set(ids))),
        (sorted(plan.states), lambda ids: _delete_ids(session, CardState.id, set(ids))),
        (sorted(plan.cards), delete_cards),
        (sorted(plan.notes), lambda ids: _delete_ids(session, Note.id, set(ids))),
        (plan.replays, replay_cards),
        # The states are the source of the kept numbers: those come last, from the repaired states.
        (sorted(plan.last_review_us), lambda ids: _rewrite_last_review_us(session, ids)),
        (sorted(plan.review_counts), lambda ids: _rebuild_review_counts(session, ids)),
        (sorted(plan.deck_counts), lambda keys: _rebuild_deck_counts(session, keys)),
    ]
    first = True
    for items, repair in steps:
        for batch in _batches(items, batch_size):
            if not first and pause_seconds:
                time.sleep(pause_seconds)
            first = False
            with _fix_transaction(session):
                repair(batch)


def replay_into_state(session: Session, plain: Scheduler, *, user_id: int, card_id: int) -> None:
    """Make a user's state of a card the replay of their reviews of it as they are now (no reviews: no state).

    Runs in the caller's write transaction; the user's own parameters are looked up here.
    """
    reviews = card_reviews(session, user_id=user_id, card_id=card_id)
    state = session.scalar(select(CardState).where(CardState.user_id == user_id, CardState.card_id == card_id))
    time_zone = session.scalar(select(User.time_zone).where(User.id == user_id))
    if time_zone is None:
        return  # the student has gone since the check: left for the next check to report
    set_last_intervals(reviews, StudyDays(time_zone, study_scheduler(plain).day_starts_at_hour))
    weights = personal_parameters_of(session, user_id)
    own = plain if weights is None else personal_scheduler(plain, parameters=weights)
    try:
        replayed = replay(own, card_id, reviews, time_zone=time_zone)
    except (ValueError, TypeError, KeyError):
        return  # became unreplayable since the check: left for the next check to report
    if replayed is None:
        if state is not None:
            session.delete(state)
        return
    if state is None:
        state = CardState(user_id=user_id, card_id=card_id)
        session.add(state)
    store_state(state, replayed, counts=count_reviews(reviews))
    session.flush()


def _merged(states: Iterator[Any], groups: Iterator[tuple[tuple[int, int], list[Any]]]
            ) -> Iterator[tuple[tuple[int, int], Any, list[Any]]]:
    """Walk card states and review groups, both ordered by (user_id, card_id): each key with its state (or None)
    and its reviews."""
    state = next(states, None)
    group = next(groups, None)
    while state is not None or group is not None:
        state_key = (state.user_id, state.card_id) if state is not None else None
        if group is None or (state_key is not None and state_key < group[0]):
            yield state_key, state, []  # type: ignore[misc]
            state = next(states, None)
        elif state_key is None or group[0] < state_key:
            yield group[0], None, group[1]
            group = next(groups, None)
        else:
            yield state_key, state, group[1]
            state = next(states, None)
            group = next(groups, None)


class _Review(NamedTuple):
    """What replaying and counting read of a review (`scheduling.ReplayableReview`)."""

    id: int
    rating: Rating
    reviewed_at: datetime
    duration_ms: int | None
    due: datetime
    state_before: ReviewState
    last_interval: int | None


class _State(NamedTuple):
    """A card state's columns, as `state_differences` compares them."""

    id: int
    user_id: int
    card_id: int
    state: State
    step: int | None
    stability: float | None
    difficulty: float | None
    due: datetime
    last_review: datetime | None
    reps: int
    lapses: int
    again_count: int


_RATINGS = {int(rating): rating for rating in Rating}
_STATES = {int(state): state for state in State}
_REVIEW_STATES = {int(state): state for state in ReviewState}


def _utc(value: datetime | str | None) -> datetime | None:
    """A column's raw datetime as the models give it: aware, in UTC (SQLite stores naive UTC text)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            # Parsed with its zone: several times quicker than setting it afterwards.
            return datetime.fromisoformat(value + "+00:00")
        except ValueError:  # text written by hand, perhaps with an offset of its own
            return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


_STATE_ROWS = select(
    CardState.id, CardState.user_id, CardState.card_id, type_coerce(CardState.state, Integer()), CardState.step,
    CardState.stability, CardState.difficulty, type_coerce(CardState.due, String()),
    type_coerce(CardState.last_review, String()), CardState.reps, CardState.lapses, CardState.again_count,
).order_by(CardState.user_id, CardState.card_id)
_REVIEW_ROWS = select(
    ReviewLog.user_id, ReviewLog.card_id, ReviewLog.id, type_coerce(ReviewLog.rating, Integer()),
    type_coerce(ReviewLog.reviewed_at, String()), ReviewLog.duration_ms, type_coerce(ReviewLog.due, String()),
    type_coerce(ReviewLog.state_before, Integer()),
).order_by(ReviewLog.user_id, ReviewLog.card_id, ReviewLog.reviewed_at)


def _batches_of_rows(session: Session, query: Any) -> Iterator[Sequence[Any]]:
    """The query's rows as the driver returns them, `BATCH` at a time (on PostgreSQL through a server-side cursor).

    Read on the driver's cursor (`prepared.driver_runs`): at millions of rows SQLAlchemy's result rows
    cost about as much as SQLite's reading. The date and enum columns come as the driver returns them:
    `_utc` and the lookups above decode them several times quicker per row than the models' column types.
    """
    return driver_runs(session.connection(), query, batch=BATCH)({})


def _rows(session: Session, query: Any) -> Iterator[Any]:
    """The query's rows, one by one (`_batches_of_rows`)."""
    for batch in _batches_of_rows(session, query):
        yield from batch


Key = tuple[int, int]
_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])


def _in_range(query: _Query, user_id: Any, card_id: Any, lower: Key | None, upper: Key | None) -> _Query:
    """The query's rows whose (user, card) key is in [lower, upper) (None: unbounded)."""
    if lower is not None:
        query = query.where(tuple_(user_id, card_id) >= tuple_(*lower))
    if upper is not None:
        query = query.where(tuple_(user_id, card_id) < tuple_(*upper))
    return query


def _state_stream(session: Session, lower: Key | None = None, upper: Key | None = None) -> Iterator[_State]:
    states = _STATES
    query = _in_range(_STATE_ROWS, CardState.user_id, CardState.card_id, lower, upper)
    for (id_, user_id, card_id, state, step, stability, difficulty, due, last_review, reps, lapses,
         again) in _rows(session, query):
        yield _State(id_, user_id, card_id, states[state], step, stability, difficulty, _utc(due),  # type: ignore[arg-type]
                     _utc(last_review), reps, lapses, again)


def _review_groups(session: Session, lower: Key | None = None, upper: Key | None = None
                   ) -> Iterator[tuple[Key, list[_Review]]]:
    """Each (user, card) with its reviews, oldest first.

    A database not yet upgraded to keep each review's last interval is checked without it (None).
    """
    ratings, before, utc, iso = _RATINGS, _REVIEW_STATES, _utc, datetime.fromisoformat
    last_user = last_card = last_at = None
    group: list[_Review] = []
    # Where the group's run of reviews stored with the same time as this one begins. The stream is ordered by
    # the stored time alone, as its index gives it without a sort; the app replays reviews stored at the same
    # moment (which it never writes, but an import might) in id order (`scheduling.card_reviews`), and so
    # each is put in its place among them here.
    same_time = 0
    kept = any(column["name"] == "last_interval" for column in inspect(session.connection()).get_columns("review_log"))
    query = _in_range(_REVIEW_ROWS.add_columns(ReviewLog.last_interval if kept else null()),
                      ReviewLog.user_id, ReviewLog.card_id, lower, upper)
    for batch in _batches_of_rows(session, query):
        for (user_id, card_id, id_, rating, reviewed_at, duration_ms, due, state_before, last_interval) in batch:
            if card_id != last_card or user_id != last_user:
                if group:
                    yield (last_user, last_card), group  # type: ignore[misc]
                last_user, last_card, group, same_time = user_id, card_id, [], 0
            elif reviewed_at != last_at:
                same_time = len(group)
            last_at = reviewed_at
            answered: datetime | None  # never None: both columns are NOT NULL
            left_due: datetime | None
            if type(reviewed_at) is str and type(due) is str:
                # SQLite's text, as the models write it: read with its zone (`_utc`), inline at millions of rows.
                try:
                    answered, left_due = iso(reviewed_at + "+00:00"), iso(due + "+00:00")
                except ValueError:
                    answered, left_due = utc(reviewed_at), utc(due)
            else:
                answered, left_due = utc(reviewed_at), utc(due)
            review = _Review(id_, ratings[rating], answered, duration_ms,  # type: ignore[arg-type]
                             left_due, before[state_before], last_interval)  # type: ignore[arg-type]
            if same_time < len(group):
                insort(group, review, lo=same_time, key=_BY_ID)
            else:
                group.append(review)
    if group:
        yield (last_user, last_card), group  # type: ignore[misc]


_BY_ID = attrgetter("id")


@dataclass
class _Catalogue:
    """The users and cards the card states and reviews are looked up in."""

    time_zones: dict[int, str]
    cards: set[int]
    # Cards whose note and deck exist (and whose note's deck exists).
    valid_cards: set[int]
    orphan_notes: set[int]
    # Cards pointing at a missing note or deck: (id, key).
    orphan_cards: list[tuple[int, str]]


def _catalogue(session: Session) -> _Catalogue:
    time_zones = dict(session.execute(select(User.id, User.time_zone)).all())
    decks = set(session.scalars(select(Deck.id)))
    notes = dict(session.execute(select(Note.id, Note.deck_id)).all())
    orphan_notes = {note_id for note_id, deck_id in notes.items() if deck_id not in decks}
    cards = set()
    orphan_cards = []
    for card_id, note_id, deck_id, key in session.execute(select(Card.id, Card.note_id, Card.deck_id, Card.key)):
        cards.add(card_id)
        if deck_id not in decks or note_id not in notes or note_id in orphan_notes:
            orphan_cards.append((card_id, key))
    return _Catalogue(time_zones, cards, cards - {card_id for card_id, _key in orphan_cards}, orphan_notes,
                      orphan_cards)


def _orphans(catalogue: _Catalogue, problems: list[Problem]) -> _Plan:
    """Report notes and cards that point at nothing; return the plan that deletes them."""
    plan = _Plan()
    if catalogue.orphan_notes:
        problems.append(Problem(ORPHAN_NOTE, f"notes {_ids(catalogue.orphan_notes)} belong to no deck; "
                                             "fixing deletes them"))
        plan.notes |= catalogue.orphan_notes
    for card_id, key in catalogue.orphan_cards:
        problems.append(Problem(ORPHAN_CARD, f"card {card_id} ({key}) points at a missing note or deck; "
                                             "rebuilding its deck re-links it and keeps its reviews, "
                                             "fixing deletes it with its reviews"))
        plan.cards.add(card_id)
    return plan


@dataclass
class _CardsChecked:
    """What the card-by-card part of the check found in a range of (user, card) keys."""

    orphan_states: list[Problem] = field(default_factory=list)
    per_card: list[Problem] = field(default_factory=list)
    lonely_states: list[Problem] = field(default_factory=list)
    plan: _Plan = field(default_factory=_Plan)
    states_checked: int = 0
    reviews_checked: int = 0


def _add_cards(report: CheckReport, plan: _Plan, parts: Iterable[_CardsChecked]) -> None:
    """Add the ranges' findings, in key order, to the report and the plan.

    Problems are listed as before the check streamed: orphaned states, then each card's
    reviews in (user, card) order, then states without reviews.
    """
    orphan_states: list[Problem] = []
    per_card: list[Problem] = []
    lonely_states: list[Problem] = []
    for part in parts:
        orphan_states += part.orphan_states
        per_card += part.per_card
        lonely_states += part.lonely_states
        plan.states |= part.plan.states
        plan.reviews |= part.plan.reviews
        plan.replays += part.plan.replays
        report.states_checked += part.states_checked
        report.reviews_checked += part.reviews_checked
    report.problems += orphan_states + per_card + lonely_states


def _check_rows(session: Session, scheduler: Scheduler, report: CheckReport) -> _Plan:
    """Fill `report.problems`; return what a fix would do."""
    catalogue = _catalogue(session)
    plan = _orphans(catalogue, report.problems)
    _add_cards(report, plan, [_check_cards(session, without_fuzz(scheduler), catalogue)])
    return plan


def _check_cards(session: Session, plain: Scheduler, catalogue: _Catalogue, lower: Key | None = None,
                 upper: Key | None = None) -> _CardsChecked:
    """Check the card states and reviews whose (user, card) key is in [lower, upper), card by card."""
    found = _CardsChecked()
    plan = found.plan
    time_zones, cards, valid_cards = catalogue.time_zones, catalogue.cards, catalogue.valid_cards

    def missing(user_id: int, card_id: int) -> str | None:
        if user_id not in time_zones:
            return f"user {user_id}, who does not exist"
        if card_id not in cards:
            return f"card {card_id}, which does not exist"
        if card_id not in valid_cards:
            return f"card {card_id}, which points at a missing note or deck"
        return None

    # Each student's states are replayed under their own parameters, as they were worked out.
    own = {user: personal_scheduler(plain, parameters=weights)
           for user, weights in all_personal_parameters(session).items()}
    day_hour = study_scheduler(plain).day_starts_at_hour
    study_days = {user: StudyDays(zone, day_hour) for user, zone in time_zones.items()}

    for (user_id, card_id), state, group in _merged(_state_stream(session, lower, upper),
                                                    _review_groups(session, lower, upper)):
        if user_id not in time_zones or card_id not in valid_cards:
            reason = missing(user_id, card_id)
            if state is not None:
                found.orphan_states.append(Problem(ORPHAN_STATE, f"card state {state.id} belongs to {reason}"))
                plan.states.add(state.id)
                state = None
            if group:
                found.reviews_checked += len(group)
                ids = {row.id for row in group}
                what = (f"review {_ids(ids)} belongs" if len(ids) == 1
                        else f"{len(ids)} reviews (ids {_ids(ids)}) belong")
                found.per_card.append(Problem(ORPHAN_REVIEWS, f"{what} to {reason}"))
                plan.reviews |= ids
            continue
        if state is not None:
            found.states_checked += 1
        if not group:
            if state is not None:
                found.lonely_states.append(Problem(
                    STATE_WITHOUT_REVIEWS, f"card state {state.id} (user {user_id}, card {card_id}) "
                                           "has no reviews; fixing deletes it (the card is new again)"))
                plan.replays.append((user_id, card_id))
            continue
        found.reviews_checked += len(group)
        where = f"user {user_id}, card {card_id}"
        # The study day of each review, which the replay works out and the last intervals need too.
        answered_days: list[int] = []
        try:
            replayed = replay(own.get(user_id, plain), card_id, group, time_zone=time_zones[user_id],
                              day_numbers=answered_days)
        except (ValueError, TypeError, KeyError) as error:
            found.per_card.append(Problem(UNREPLAYABLE, f"the reviews of {where} cannot be replayed ({error}); "
                                                        "repair or delete them by hand", fixable=False))
            continue
        assert replayed is not None  # the group has reviews
        counts = count_reviews(group)
        if state is None:
            found.per_card.append(Problem(REVIEWS_WITHOUT_STATE, f"{where} has {len(group)} reviews but no card "
                                                                 "state; fixing creates it from the reviews"))
            plan.replays.append((user_id, card_id))
            continue
        differences = state_differences(state, replayed, counts)
        if differences:
            found.per_card.append(Problem(STATE_MISMATCH, f"card state {state.id} ({where}) differs from its "
                                                          f"{len(group)} reviews: {', '.join(differences)}"))
        wrong = [] if group[0].last_interval is None else [
            review.id
            for review, value in zip(group, last_intervals(group, study_days[user_id], answered_days), strict=True)
            if review.last_interval != value]
        if wrong:
            found.per_card.append(Problem(LAST_INTERVAL_MISMATCH, f"{'review' if len(wrong) == 1 else 'reviews'} "
                                                                  f"{_ids(wrong)} ({where}) keep a last interval other "
                                                                  "than what the review before scheduled; fixing "
                                                                  "rewrites it"))
        if differences or wrong:
            plan.replays.append((user_id, card_id))
    return found


# --- The numbers the database keeps from the card states -----------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# On SQLite: each card whose summed review counts differ from its states' (kept, then given), a
# missing row counting as zeros, and a row of zeros as no row (what its triggers leave when the last
# state of a card goes).
_REVIEW_COUNTS_DIFFERENCES = text("""
WITH given AS (SELECT card_id, sum(reps) AS reps, sum(again_count) AS again_count, sum(lapses) AS lapses
               FROM card_state GROUP BY card_id)
SELECT given.card_id, kept.reps, kept.again_count, kept.lapses, given.reps, given.again_count, given.lapses
FROM given LEFT JOIN card_review_counts AS kept ON kept.card_id = given.card_id
WHERE coalesce(kept.reps, 0) != given.reps OR coalesce(kept.again_count, 0) != given.again_count
   OR coalesce(kept.lapses, 0) != given.lapses
UNION ALL
SELECT kept.card_id, kept.reps, kept.again_count, kept.lapses, 0, 0, 0 FROM card_review_counts AS kept
WHERE (kept.reps != 0 OR kept.again_count != 0 OR kept.lapses != 0)
  AND NOT EXISTS (SELECT 1 FROM card_state WHERE card_state.card_id = kept.card_id)
ORDER BY 1
""")
# Each (account, deck) whose kept count of states or latest review differs from its states' (the latest
# taken from each state's `last_review` itself), a row of no states and no review counting as no row. A
# state of a card that does not exist counts on no deck, as in the triggers. `differs`: SQLite's `IS NOT`
# is PostgreSQL's `IS DISTINCT FROM`.
_DECK_COUNTS_DIFFERENCES = """
WITH given AS (SELECT s.user_id, c.deck_id, count(*) AS states, max({latest}) AS latest
               FROM card_state AS s JOIN card AS c ON c.id = s.card_id GROUP BY s.user_id, c.deck_id)
SELECT given.user_id, given.deck_id, kept.states, kept.last_review_us, given.states, given.latest
FROM given LEFT JOIN deck_state_counts AS kept ON kept.user_id = given.user_id AND kept.deck_id = given.deck_id
WHERE kept.states {differs} given.states OR kept.last_review_us {differs} given.latest
UNION ALL
SELECT kept.user_id, kept.deck_id, kept.states, kept.last_review_us, 0, NULL FROM deck_state_counts AS kept
WHERE (kept.states != 0 OR kept.last_review_us IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM card_state AS s JOIN card AS c ON c.id = s.card_id
                  WHERE s.user_id = kept.user_id AND c.deck_id = kept.deck_id)
ORDER BY 1, 2
"""


def _microseconds(session: Session, column: str) -> Any:
    """SQL for a stored time as whole microseconds, as the triggers work it out."""
    return literal_column(microseconds_sql(session.get_bind().dialect.name, column), BigInteger())


def _time_of(microseconds: int | None) -> str:
    if microseconds is None:
        return "none"
    try:
        return (_EPOCH + timedelta(microseconds=microseconds)).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    except OverflowError:
        return f"{microseconds} microseconds"


def _counted(count: int, what: str) -> str:
    """'1 card keeps', '3 cards keep'."""
    return f"{count} {what} keeps" if count == 1 else f"{count} {what}s keep"


def _few(described: list[str], total: int) -> str:
    return "; ".join(described) + (f"; and {total - len(described)} more" if total > len(described) else "")


def _kept_problem(rows: Iterable[Any], found: set[Any], kind: str, *, key: Callable[[Any], Any],
                  describe: Callable[[Any], str], what: str, wrong: str, fixing: str) -> list[Problem]:
    """One problem for every row of `rows` (a kept number that differs), naming the first `KEPT_SHOWN`;
    each row's key goes into `found`, the plan's set of what to rebuild."""
    described: list[str] = []
    for row in rows:
        found.add(key(row))
        if len(described) < KEPT_SHOWN:
            described.append(describe(row))
    if not found:
        return []
    return [Problem(kind, f"{_counted(len(found), what)} {wrong}: {_few(described, len(found))}; {fixing}")]


def _kept_numbers(session: Session, plan: _Plan) -> list[Problem]:
    """Compare the numbers the database keeps from the card states with what the states give.

    Set-based: a few queries grouping the card states, each compared with the kept rows (a row
    missing on either side included); a plain scan of the states for `last_review_us`. Each
    table that differs is one problem, naming the first `KEPT_SHOWN` rows and counting the rest;
    the rows to rebuild go into `plan`. A database not yet upgraded to keep them is skipped.
    """
    if not any(column["name"] == "last_review_us"
               for column in inspect(session.connection()).get_columns("card_state")):
        return []
    given = _microseconds(session, "card_state.last_review")
    problems = _kept_problem(
        _rows(session, select(CardState.id, CardState.user_id, CardState.card_id, CardState.last_review_us, given)
              .where(CardState.last_review_us.is_distinct_from(given)).order_by(CardState.id)),
        plan.last_review_us, LAST_REVIEW_US_MISMATCH, key=lambda row: row[0],
        describe=lambda row: (f"card state {row[0]} (user {row[1]}, card {row[2]}) keeps {row[3]}, its last "
                              f"review {_time_of(row[4])} gives {row[4]}"),
        what="card state", wrong="a last review in microseconds (last_review_us) other than the last review's",
        fixing="fixing rewrites it from the last review")
    dialect = session.get_bind().dialect.name

    def counts(reps: int | None, again: int | None, lapses: int | None) -> str:
        return f"reps {reps}, again_count {again}, lapses {lapses}"

    def states(number: int | None, latest: int | None) -> str:
        return f"{number} state{'' if number == 1 else 's'}, latest review {_time_of(latest)}"

    if dialect == "sqlite":  # PostgreSQL keeps no sums per card: it sums the states in its own plans
        problems += _kept_problem(
            _rows(session, _REVIEW_COUNTS_DIFFERENCES), plan.review_counts, CARD_REVIEW_COUNTS_MISMATCH,
            key=lambda row: row[0],
            describe=lambda row: (f"card {row[0]} keeps {'no row' if row[1] is None else counts(*row[1:4])} "
                                  f"(its card states give {counts(*row[4:7])})"),
            what="card", wrong="review counts (card_review_counts) other than the sums of the card states",
            fixing="fixing rebuilds them from the card states")
    deck_query = text(_DECK_COUNTS_DIFFERENCES.format(
        latest=microseconds_sql(dialect, "s.last_review"),
        differs="IS NOT" if dialect == "sqlite" else "IS DISTINCT FROM"))
    problems += _kept_problem(
        _rows(session, deck_query), plan.deck_counts, DECK_STATE_COUNTS_MISMATCH, key=lambda row: (row[0], row[1]),
        describe=lambda row: (f"user {row[0]}, deck {row[1]} keeps "
                              f"{'no row' if row[2] is None else states(row[2], row[3])} "
                              f"(the card states give {states(row[4], row[5])})"),
        what="account", wrong="counts of card states per deck (deck_state_counts) other than the card states give",
        fixing="fixing rebuilds them from the card states")
    return problems


def _rewrite_last_review_us(session: Session, state_ids: Sequence[int]) -> None:
    """Write each state's `last_review_us` from its `last_review` as it is now."""
    session.execute(update(CardState).where(CardState.id.in_(state_ids))
                    .values(last_review_us=_microseconds(session, "card_state.last_review"))
                    .execution_options(synchronize_session=False))


def _rebuild_review_counts(session: Session, card_ids: Sequence[int]) -> None:
    """Sum the cards' review counts again from their card states as they are now (SQLite alone keeps them)."""
    session.execute(delete(CardReviewCounts).where(CardReviewCounts.card_id.in_(card_ids))
                    .execution_options(synchronize_session=False))
    session.execute(insert(CardReviewCounts).from_select(
        ["card_id", "reps", "again_count", "lapses"],
        select(CardState.card_id, func.sum(CardState.reps), func.sum(CardState.again_count),
               func.sum(CardState.lapses)).where(CardState.card_id.in_(card_ids)).group_by(CardState.card_id)))


def _rebuild_deck_counts(session: Session, keys: Sequence[tuple[int, int]]) -> None:
    """Count the (account, deck)s' card states again as they are now.

    Read through the accounts' states (the user's index), never a scan of every state.
    """
    users, decks = sorted({user for user, _ in keys}), sorted({deck for _, deck in keys})
    session.execute(delete(DeckStateCounts).where(tuple_(DeckStateCounts.user_id, DeckStateCounts.deck_id)
                                                  .in_(keys)).execution_options(synchronize_session=False))
    latest = func.max(_microseconds(session, "card_state.last_review"))
    session.execute(insert(DeckStateCounts).from_select(
        ["user_id", "deck_id", "states", "last_review_us"],
        select(CardState.user_id, Card.deck_id, func.count(), latest)
        .join(Card, Card.id == CardState.card_id)
        .where(CardState.user_id.in_(users), Card.deck_id.in_(decks),
               tuple_(CardState.user_id, Card.deck_id).in_(keys))
        .group_by(CardState.user_id, Card.deck_id)))


# --- Sharing the replays among processes ----------------------------------------------------------

def available_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def _processes(session: Session, workers: int | None) -> int:
    """How many processes replay the reviews: `workers`, or (None) one per CPU for a large review log."""
    url = _engine(session).url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return 1  # another process cannot open it
    if workers is None:
        # The highest id stands for the number of reviews: no count of millions of rows just to decide.
        if (session.scalar(select(func.max(ReviewLog.id))) or 0) < PARALLEL_REVIEWS:
            return 1
        workers = available_cpus()
    return max(1, workers)


def _key_ranges(session: Session, parts: int) -> list[tuple[Key | None, Key | None]]:
    """At most `parts` ranges [lower, upper) of (user, card) keys, in order, that cover every key once.

    Cut where the card states are cut into equal parts: a card state stands for its card's
    reviews, and its key is in one range with them, whatever the ranges.
    """
    states = session.scalar(select(func.count()).select_from(CardState)) or 0
    keys = select(CardState.user_id, CardState.card_id).order_by(CardState.user_id, CardState.card_id).limit(1)
    cuts: list[Key] = []
    for part in range(1, parts):
        row = session.execute(keys.offset(states * part // parts)).first() if states else None
        if row is not None and (not cuts or (row[0], row[1]) > cuts[-1]):
            cuts.append((row[0], row[1]))
    bounds: list[Key | None] = [None, *cuts, None]
    return list(pairwise(bounds))


_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f-]+")


def _shared_snapshot(session: Session) -> str | None:
    """On PostgreSQL, the read transaction's snapshot, exported so that the other processes read in it too.

    SQLite has no such thing: there each process reads in a snapshot of its own.
    """
    if session.get_bind().dialect.name != "postgresql":
        return None
    snapshot = session.scalar(text("SELECT pg_export_snapshot()"))
    assert snapshot is not None and _SNAPSHOT_ID.fullmatch(snapshot), snapshot
    return str(snapshot)


@dataclass(frozen=True)
class _Range:
    """A range of (user, card) keys for a process to check."""

    url: str
    plain: Scheduler
    lower: Key | None
    upper: Key | None
    snapshot: str | None


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group: the check's own process ends the others.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _check_range(task: _Range) -> _CardsChecked:
    """Check one range in a process of its own: its own connection and read transaction, and the
    users and cards read again there (on SQLite its snapshot is its own)."""
    engine = make_engine(task.url)
    try:
        with Session(engine) as session, _read_transaction(session, snapshot=task.snapshot):
            catalogue = _catalogue(session)
            # The modules and the catalogue stay to the end: kept out of the collector's passes, which
            # otherwise walk them again and again as the replays make and drop millions of objects.
            gc.freeze()
            return _check_cards(session, task.plain, catalogue, task.lower, task.upper)
    finally:
        engine.dispose()


def _worker_context() -> multiprocessing.context.BaseContext:
    """How the check's processes start: never forked from this process, which may hold connections and threads a
    fork would copy. Where it can, each is forked from a server process started clean that has imported this module
    once (one start-up for all the processes a run, or a test session, asks for); elsewhere (Windows) spawned."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])  # no effect once that server runs, which has it already
    return context


def _check_in_parallel(session: Session, scheduler: Scheduler, report: CheckReport, processes: int) -> _Plan | None:
    """`_integrity` then `_check_rows`, the reviews replayed by `processes` processes, range by range.

    Meanwhile this process runs SQLite's integrity check; when it finds damage, its findings
    alone are reported (as a check in one process does) and None is returned.
    """
    plain = without_fuzz(scheduler)
    url = _engine(session).url.render_as_string(hide_password=False)
    snapshot = _shared_snapshot(session)
    tasks = [_Range(url, plain, lower, upper, snapshot)
             for lower, upper in _key_ranges(session, processes * RANGES_PER_PROCESS)]
    with ProcessPoolExecutor(processes, mp_context=_worker_context(), initializer=_ignore_interrupts) as pool:
        parts = pool.map(_check_range, tasks)
        report.problems = _integrity(session)
        if report.problems:
            pool.shutdown(cancel_futures=True)
            return None
        catalogue = _catalogue(session)
        plan = _orphans(catalogue, report.problems)
        kept = _kept_numbers(session, plan)
        _add_cards(report, plan, parts)
        report.problems += kept
    return plan
