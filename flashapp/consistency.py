"""Check the database against its source of truth, and repair it.

The review log is the source of truth: every card state must equal the replay of its
user's reviews of that card. This module finds where that is not so, and rows that point
at nothing, and with `fix=True` repairs everything fixable in one transaction.

Card states and reviews are read as two streams, both ordered by (user, card), and merged:
memory holds one card's reviews at a time (plus the ids of users, decks, notes and cards,
and the problems found), whatever the size of the review log.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from fsrs import Card as FsrsCard
from fsrs import Scheduler
from sqlalchemy import delete, select, text
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import Session

from .database import may_write, write_transaction
from .models import Card, CardState, Deck, Note, ReviewLog, User
from .scheduling import ReviewCounts, count_reviews, replay, store_state, without_fuzz

FLOAT_TOLERANCE = 1e-9
# Ids named in one message; the count is always given in full.
IDS_SHOWN = 10
CHUNK = 500
# Rows read at a time from each of the two streams.
BATCH = 5000

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


class _NothingToFix(Exception):
    """Ends a fix's write transaction without a commit when there is nothing to repair."""


@contextmanager
def _check_transaction(session: Session, *, fix: bool) -> Iterator[None]:
    """The transaction the whole check reads (and repairs) in, on one consistent view.

    A fix is one write transaction (`write_transaction`) from its first read: on SQLite
    (WAL) it begins with BEGIN IMMEDIATE, holding the write lock from the first read, so an
    answer given meanwhile cannot be overwritten by a stale replay; on PostgreSQL it reads
    one REPEATABLE READ snapshot with the tables locked against writers, for the same reason.
    Checking alone is a plain read transaction, rolled back at the end: one snapshot on
    either database, which does not hold up the server's writers.
    """
    postgresql = session.get_bind().dialect.name == "postgresql"
    options = {"isolation_level": "REPEATABLE READ"} if postgresql else {}
    if not fix:
        token = may_write.set(False)
        try:
            session.connection(execution_options=options)
        finally:
            may_write.reset(token)
        try:
            yield
        finally:
            session.rollback()
        return
    with write_transaction(session):
        session.connection(execution_options=options)
        if postgresql:
            # Taken before the first query, so the snapshot sees everything committed before the lock.
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


def check_database(session: Session, scheduler: Scheduler, *, fix: bool) -> CheckReport:
    """Check the database: SQLite integrity, card states against their review logs, orphaned rows.

    Problems found:
    - (SQLite) `PRAGMA integrity_check` failing: not fixable here, restore a backup;
    - notes of missing decks, cards of missing notes or decks;
    - card states and reviews of missing users or cards;
    - a card state that differs from the replay of its reviews (state, step, due,
      last review, stability and difficulty within 1e-9, and its counts of reviews,
      Again answers and lapses), a card state without reviews, and reviews without a
      card state.

    With `fix=True` every fixable problem is repaired in one write transaction: orphans
    and states without reviews are deleted, other states rewritten or created from the
    replay. `session` must have no transaction in progress; it is committed (when
    fixing and something was found) or rolled back.
    """
    if session.in_transaction():
        raise RuntimeError("check_database needs a session with no transaction in progress")
    report = CheckReport()
    try:
        with _check_transaction(session, fix=fix):
            report.problems = _integrity(session)
            repairs = [] if report.problems else _check_rows(session, scheduler, report)
            if not (fix and any(p.fixable for p in report.problems)):
                raise _NothingToFix
            for repair in repairs:
                repair()
            session.flush()
            report.fixed = True
    except _NothingToFix:
        pass
    except DatabaseError as error:
        if not _unreadable_sqlite_file(session, error):
            raise
        report.problems = [Problem(INTEGRITY, f"SQLite cannot read the database file ({error.orig}): it is "
                                              "damaged; restore a backup (`flashapp restore`)", fixable=False)]
        report.fixed = False
    return report


def _unreadable_sqlite_file(session: Session, error: DatabaseError) -> bool:
    """Whether SQLite refused to read on because the file is damaged (not a lock, not a mistake)."""
    return (session.get_bind().dialect.name == "sqlite" and not isinstance(error, OperationalError)
            and type(error.orig) is sqlite3.DatabaseError)


def _merged(states: Iterator[Any], reviews: Iterator[Any]) -> Iterator[tuple[tuple[int, int], Any, list[Any]]]:
    """Walk two streams ordered by (user_id, card_id): each key with its state row (or None) and its reviews."""
    groups = ((key, list(group)) for key, group in groupby(reviews, key=lambda row: (row.user_id, row.card_id)))
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


def _stream(session: Session, query: Any) -> Iterator[Any]:
    return iter(session.execute(query.execution_options(stream_results=True, yield_per=BATCH)))


def _check_rows(session: Session, scheduler: Scheduler, report: CheckReport) -> list[Callable[[], None]]:
    """Fill `report.problems`; return the repairs to run, in order, when fixing."""
    problems = report.problems
    deletions: dict[Any, set[int]] = {ReviewLog.id: set(), CardState.id: set(), Card.id: set(), Note.id: set()}
    creations: list[tuple[int, int, FsrsCard, ReviewCounts]] = []
    rewrites: list[tuple[int, FsrsCard, ReviewCounts]] = []

    users = set(session.scalars(select(User.id)))
    decks = set(session.scalars(select(Deck.id)))
    notes = dict(session.execute(select(Note.id, Note.deck_id)).all())
    orphan_notes = {note_id for note_id, deck_id in notes.items() if deck_id not in decks}
    if orphan_notes:
        problems.append(Problem(ORPHAN_NOTE, f"notes {_ids(orphan_notes)} belong to no deck; fixing deletes them"))
        deletions[Note.id] |= orphan_notes

    cards = set()
    for card_id, note_id, deck_id, key in session.execute(select(Card.id, Card.note_id, Card.deck_id, Card.key)):
        cards.add(card_id)
        if deck_id not in decks or note_id not in notes or note_id in orphan_notes:
            problems.append(Problem(ORPHAN_CARD, f"card {card_id} ({key}) points at a missing note or deck; "
                                                 "rebuilding its deck re-links it and keeps its reviews, "
                                                 "fixing deletes it with its reviews"))
            deletions[Card.id].add(card_id)
    valid_cards = cards - deletions[Card.id]

    def missing(user_id: int, card_id: int) -> str | None:
        if user_id not in users:
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
    states = _stream(session, select(
        CardState.id, CardState.user_id, CardState.card_id, CardState.state, CardState.step, CardState.stability,
        CardState.difficulty, CardState.due, CardState.last_review, CardState.reps, CardState.lapses,
        CardState.again_count).order_by(CardState.user_id, CardState.card_id))
    reviews = _stream(session, select(
        ReviewLog.id, ReviewLog.user_id, ReviewLog.card_id, ReviewLog.rating, ReviewLog.reviewed_at,
        ReviewLog.duration_ms, ReviewLog.due, ReviewLog.state_before)
        .order_by(ReviewLog.user_id, ReviewLog.card_id, ReviewLog.reviewed_at, ReviewLog.id))

    for (user_id, card_id), state, group in _merged(states, reviews):
        reason = missing(user_id, card_id)
        if state is not None:
            if reason:
                orphan_states.append(Problem(ORPHAN_STATE, f"card state {state.id} belongs to {reason}"))
                deletions[CardState.id].add(state.id)
                state = None
            else:
                report.states_checked += 1
        if not group:
            if state is not None:
                lonely_states.append(Problem(
                    STATE_WITHOUT_REVIEWS, f"card state {state.id} (user {user_id}, card {card_id}) "
                                           "has no reviews; fixing deletes it (the card is new again)"))
                deletions[CardState.id].add(state.id)
            continue
        report.reviews_checked += len(group)
        where = f"user {user_id}, card {card_id}"
        if reason:
            ids = {row.id for row in group}
            what = f"review {_ids(ids)} belongs" if len(ids) == 1 else f"{len(ids)} reviews (ids {_ids(ids)}) belong"
            per_card.append(Problem(ORPHAN_REVIEWS, f"{what} to {reason}"))
            deletions[ReviewLog.id] |= ids
            continue
        try:
            replayed = replay(plain, card_id, group)
        except (ValueError, TypeError, KeyError) as error:
            per_card.append(Problem(UNREPLAYABLE, f"the reviews of {where} cannot be replayed ({error}); "
                                                  "repair or delete them by hand", fixable=False))
            continue
        assert replayed is not None  # the group has reviews
        counts = count_reviews(group)
        if state is None:
            per_card.append(Problem(REVIEWS_WITHOUT_STATE, f"{where} has {len(group)} reviews but no card state; "
                                                           "fixing creates it from the reviews"))
            creations.append((user_id, card_id, replayed, counts))
            continue
        differences = state_differences(state, replayed, counts)
        if differences:
            per_card.append(Problem(STATE_MISMATCH, f"card state {state.id} ({where}) differs from its "
                                                    f"{len(group)} reviews: {', '.join(differences)}"))
            rewrites.append((state.id, replayed, counts))
    problems += orphan_states + per_card + lonely_states

    def repair_rows() -> None:
        # Children before parents, so foreign keys hold at every step.
        for column in (ReviewLog.id, CardState.id, Card.id, Note.id):
            if column is Card.id and deletions[Card.id]:
                _delete_ids(session, ReviewLog.card_id, deletions[Card.id])
                _delete_ids(session, CardState.card_id, deletions[Card.id])
            if deletions[column]:
                _delete_ids(session, column, deletions[column])

    def rewrite_states() -> None:
        for state_id, replayed, counts in rewrites:
            store_state(session.get_one(CardState, state_id), replayed, counts=counts)
        for user_id, card_id, replayed, counts in creations:
            state = CardState(user_id=user_id, card_id=card_id)
            session.add(state)
            store_state(state, replayed, counts=counts)

    return [repair_rows, rewrite_states]
