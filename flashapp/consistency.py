"""Check the database against its source of truth, and repair it.

The review log is the source of truth: every card state must equal the replay of its
user's reviews of that card. This module finds where that is not so, and rows that point
at nothing, and with `fix=True` repairs everything fixable.

The check reads in one plain read transaction (one snapshot, no write lock): card states
and reviews as two streams, both ordered by (user, card), merged, with the columns decoded
by hand rather than row by row through the ORM. Memory holds one card's reviews at a time
(plus the ids of users, decks, notes and cards, and the problems found), whatever the size
of the review log. A fix then repairs what was found in short write transactions of at
most `FIX_BATCH` cards or rows each, so answers keep being accepted meanwhile; each batch
replays its cards again from the reviews as they are at that moment, so an answer given
during the check is never overwritten by a stale replay. An interrupted fix leaves whole
batches behind, and running it again finishes the work.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple

from fsrs import Card as FsrsCard
from fsrs import Rating, Scheduler, State
from sqlalchemy import Integer, String, delete, select, text, type_coerce
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import Session

from .database import may_write, write_transaction
from .models import Card, CardState, Deck, Note, ReviewLog, ReviewState, User
from .personal import all_personal_parameters, personal_parameters_of
from .scheduling import ReviewCounts, card_reviews, count_reviews, personal_scheduler, replay, store_state, without_fuzz

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

INTEGRITY = "integrity"
ORPHAN_NOTE = "orphan_note"
ORPHAN_CARD = "orphan_card"
ORPHAN_STATE = "orphan_state"
ORPHAN_REVIEWS = "orphan_reviews"
STATE_MISMATCH = "state_mismatch"
STATE_WITHOUT_REVIEWS = "state_without_reviews"
REVIEWS_WITHOUT_STATE = "reviews_without_state"
UNREPLAYABLE = "unreplayable"


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
        same = _close(stored, value) if name in ("stability", "difficulty") else stored == value
        if not same:
            differences.append(f"{name} {stored} (reviews give {value})")
    return differences


@contextmanager
def _read_transaction(session: Session) -> Iterator[None]:
    """The one read transaction the whole check reads in: one snapshot, never the write lock.

    On PostgreSQL the snapshot is REPEATABLE READ, so the two streams and the id sets agree.
    """
    postgresql = session.get_bind().dialect.name == "postgresql"
    options = {"isolation_level": "REPEATABLE READ"} if postgresql else {}
    token = may_write.set(False)
    try:
        session.connection(execution_options=options)
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
                   pause_seconds: float = FIX_PAUSE_SECONDS) -> CheckReport:
    """Check the database: SQLite integrity, card states against their review logs, orphaned rows.

    Problems found:
    - (SQLite) `PRAGMA integrity_check` failing, or a file SQLite cannot read: not fixable
      here, restore a backup;
    - notes of missing decks, cards of missing notes or decks;
    - card states and reviews of missing users or cards;
    - a card state that differs from the replay of its reviews (state, step, due,
      last review, stability and difficulty within 1e-9, and its counts of reviews,
      Again answers and lapses), a card state without reviews, and reviews without a
      card state.

    The check reads without the write lock. With `fix=True` every fixable problem is then
    repaired in write transactions of at most `batch_size` rows or cards each (on SQLite
    `pause_seconds` apart, so the server's writers get their turn): orphans and states
    without reviews are deleted, other states rewritten or created from a fresh replay of
    their reviews. `session` must have no transaction in progress.
    """
    if session.in_transaction():
        raise RuntimeError("check_database needs a session with no transaction in progress")
    report = CheckReport()
    try:
        with _read_transaction(session):
            report.problems = _integrity(session)
            plan = None if report.problems else _check_rows(session, scheduler, report)
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
).order_by(ReviewLog.user_id, ReviewLog.card_id, ReviewLog.reviewed_at, ReviewLog.id)


def _rows(session: Session, query: Any) -> Iterator[Any]:
    """The query's rows, fetched `BATCH` at a time through a server-side cursor.

    The date and enum columns come as the driver returns them: `_utc` and the lookups
    above decode them several times quicker per row than the models' column types,
    which tells at millions of rows.
    """
    result = session.connection().execute(query.execution_options(stream_results=True, yield_per=BATCH))
    for partition in result.partitions():
        yield from partition


def _state_stream(session: Session) -> Iterator[_State]:
    states = _STATES
    for (id_, user_id, card_id, state, step, stability, difficulty, due, last_review, reps, lapses,
         again) in _rows(session, _STATE_ROWS):
        yield _State(id_, user_id, card_id, states[state], step, stability, difficulty, _utc(due),  # type: ignore[arg-type]
                     _utc(last_review), reps, lapses, again)


def _review_groups(session: Session) -> Iterator[tuple[tuple[int, int], list[_Review]]]:
    """Each (user, card) with its reviews, oldest first."""
    ratings, before = _RATINGS, _REVIEW_STATES
    last_user = last_card = None
    group: list[_Review] = []
    for user_id, card_id, id_, rating, reviewed_at, duration_ms, due, state_before in _rows(session, _REVIEW_ROWS):
        if card_id != last_card or user_id != last_user:
            if group:
                yield (last_user, last_card), group  # type: ignore[misc]
            last_user, last_card, group = user_id, card_id, []
        group.append(_Review(id_, ratings[rating], _utc(reviewed_at), duration_ms,  # type: ignore[arg-type]
                             _utc(due), before[state_before]))  # type: ignore[arg-type]
    if group:
        yield (last_user, last_card), group  # type: ignore[misc]


def _check_rows(session: Session, scheduler: Scheduler, report: CheckReport) -> _Plan:
    """Fill `report.problems`; return what a fix would do."""
    problems = report.problems
    plan = _Plan()

    time_zones = dict(session.execute(select(User.id, User.time_zone)).all())
    decks = set(session.scalars(select(Deck.id)))
    notes = dict(session.execute(select(Note.id, Note.deck_id)).all())
    orphan_notes = {note_id for note_id, deck_id in notes.items() if deck_id not in decks}
    if orphan_notes:
        problems.append(Problem(ORPHAN_NOTE, f"notes {_ids(orphan_notes)} belong to no deck; fixing deletes them"))
        plan.notes |= orphan_notes

    cards = set()
    for card_id, note_id, deck_id, key in session.execute(select(Card.id, Card.note_id, Card.deck_id, Card.key)):
        cards.add(card_id)
        if deck_id not in decks or note_id not in notes or note_id in orphan_notes:
            problems.append(Problem(ORPHAN_CARD, f"card {card_id} ({key}) points at a missing note or deck; "
                                                 "rebuilding its deck re-links it and keeps its reviews, "
                                                 "fixing deletes it with its reviews"))
            plan.cards.add(card_id)
    valid_cards = cards - plan.cards

    def missing(user_id: int, card_id: int) -> str | None:
        if user_id not in time_zones:
            return f"user {user_id}, who does not exist"
        if card_id not in cards:
            return f"card {card_id}, which does not exist"
        if card_id not in valid_cards:
            return f"card {card_id}, which points at a missing note or deck"
        return None

    # Problems are listed as before the check streamed: orphaned states, then each card's
    # reviews in (user, card) order, then states without reviews.
    orphan_states: list[Problem] = []
    per_card: list[Problem] = []
    lonely_states: list[Problem] = []
    plain = without_fuzz(scheduler)
    # Each student's states are replayed under their own parameters, as they were worked out.
    own = {user: personal_scheduler(plain, parameters=weights)
           for user, weights in all_personal_parameters(session).items()}

    for (user_id, card_id), state, group in _merged(_state_stream(session), _review_groups(session)):
        if user_id not in time_zones or card_id not in valid_cards:
            reason = missing(user_id, card_id)
            if state is not None:
                orphan_states.append(Problem(ORPHAN_STATE, f"card state {state.id} belongs to {reason}"))
                plan.states.add(state.id)
                state = None
            if group:
                report.reviews_checked += len(group)
                ids = {row.id for row in group}
                what = (f"review {_ids(ids)} belongs" if len(ids) == 1
                        else f"{len(ids)} reviews (ids {_ids(ids)}) belong")
                per_card.append(Problem(ORPHAN_REVIEWS, f"{what} to {reason}"))
                plan.reviews |= ids
            continue
        if state is not None:
            report.states_checked += 1
        if not group:
            if state is not None:
                lonely_states.append(Problem(
                    STATE_WITHOUT_REVIEWS, f"card state {state.id} (user {user_id}, card {card_id}) "
                                           "has no reviews; fixing deletes it (the card is new again)"))
                plan.replays.append((user_id, card_id))
            continue
        report.reviews_checked += len(group)
        where = f"user {user_id}, card {card_id}"
        try:
            replayed = replay(own.get(user_id, plain), card_id, group, time_zone=time_zones[user_id])
        except (ValueError, TypeError, KeyError) as error:
            per_card.append(Problem(UNREPLAYABLE, f"the reviews of {where} cannot be replayed ({error}); "
                                                  "repair or delete them by hand", fixable=False))
            continue
        assert replayed is not None  # the group has reviews
        counts = count_reviews(group)
        if state is None:
            per_card.append(Problem(REVIEWS_WITHOUT_STATE, f"{where} has {len(group)} reviews but no card state; "
                                                           "fixing creates it from the reviews"))
            plan.replays.append((user_id, card_id))
            continue
        differences = state_differences(state, replayed, counts)
        if differences:
            per_card.append(Problem(STATE_MISMATCH, f"card state {state.id} ({where}) differs from its "
                                                    f"{len(group)} reviews: {', '.join(differences)}"))
            plan.replays.append((user_id, card_id))
    problems += orphan_states + per_card + lonely_states
    return plan
