"""Check the database against its source of truth, and repair it.

The review log is the source of truth: every card state must equal the replay of its
user's reviews of that card. This module finds where that is not so, and rows that point
at nothing, and with `fix=True` repairs everything fixable in one transaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import groupby

from fsrs import Card as FsrsCard
from fsrs import Scheduler
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session, scoped_session

from .database import may_write
from .models import Card, CardState, Deck, Note, ReviewLog, User
from .scheduling import replay, store_state

FLOAT_TOLERANCE = 1e-9
# Ids named in one message; the count is always given in full.
IDS_SHOWN = 10
CHUNK = 500

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


def _ids(ids) -> str:
    ids = sorted(ids)
    shown = ", ".join(str(i) for i in ids[:IDS_SHOWN])
    return shown + (f" and {len(ids) - IDS_SHOWN} more" if len(ids) > IDS_SHOWN else "")


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE)


def state_differences(state: CardState, replayed: FsrsCard) -> list[str]:
    """How a stored card state differs from the replay of its reviews ('field stored, replay value')."""
    expected = {"state": replayed.state, "step": replayed.step, "stability": replayed.stability,
                "difficulty": replayed.difficulty, "due": replayed.due, "last_review": replayed.last_review}
    differences = []
    for name, value in expected.items():
        stored = getattr(state, name)
        same = _close(stored, value) if name in ("stability", "difficulty") else stored == value
        if not same:
            differences.append(f"{name} {stored} (reviews give {value})")
    return differences


def _begin(session: Session, *, fix: bool) -> None:
    """Open the transaction the whole check reads (and repairs) in, on one consistent view.

    SQLite (WAL): a read transaction sees one snapshot; when fixing, it begins with
    BEGIN IMMEDIATE, holding the write lock from the first read, so an answer given
    meanwhile cannot be overwritten by a stale replay. Checking alone begins a deferred
    transaction, which does not hold up the server's writers.
    PostgreSQL: one snapshot for every query, and when fixing, the tables locked against
    writers for the same reason.
    """
    if session.get_bind().dialect.name != "postgresql":
        token = may_write.set(fix)
        try:
            session.connection()
        finally:
            may_write.reset(token)
        return
    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    if fix:
        # Taken before the first query, so the snapshot sees everything committed before the lock.
        session.execute(text("LOCK TABLE note, card, card_state, review_log IN SHARE ROW EXCLUSIVE MODE"))


def _integrity(session: Session) -> list[Problem]:
    if session.get_bind().dialect.name != "sqlite":
        return []
    rows = [str(row) for row in session.scalars(text("PRAGMA integrity_check"))]
    if rows == ["ok"]:
        return []
    return [Problem(INTEGRITY, f"SQLite integrity check: {row}", fixable=False) for row in rows[:20]] + [
        Problem(INTEGRITY, "the database file is damaged: restore a backup (`flashapp restore`); "
                           "the other checks were skipped", fixable=False)]


def _delete_ids(session: Session, column, ids) -> None:
    ids = sorted(ids)
    for start in range(0, len(ids), CHUNK):
        session.execute(delete(column.class_).where(column.in_(ids[start:start + CHUNK]))
                        .execution_options(synchronize_session=False))


def check_database(session: Session, scheduler: Scheduler, *, fix: bool) -> CheckReport:
    """Check the database: SQLite integrity, card states against their review logs, orphaned rows.

    Problems found:
    - (SQLite) `PRAGMA integrity_check` failing: not fixable here, restore a backup;
    - notes of missing decks, cards of missing notes or decks;
    - card states and reviews of missing users or cards;
    - a card state that differs from the replay of its reviews (state, step, due,
      last review, and stability and difficulty within 1e-9), a card state without
      reviews, and reviews without a card state.

    With `fix=True` every fixable problem is repaired in one transaction: orphans and
    states without reviews are deleted, other states rewritten or created from the
    replay. `session` must have no transaction in progress; it is committed (when
    fixing) or rolled back.
    """
    if isinstance(session, scoped_session):
        session = session()
    if session.in_transaction():
        raise RuntimeError("check_database needs a session with no transaction in progress")
    report = CheckReport()
    try:
        _begin(session, fix=fix)
        report.problems = _integrity(session)
        if report.problems:
            session.rollback()
            return report
        repairs = _check_rows(session, scheduler, report)
        if fix and any(p.fixable for p in report.problems):
            for repair in repairs:
                repair()
            session.flush()
            session.commit()
            report.fixed = True
        else:
            session.rollback()
    except BaseException:
        session.rollback()
        raise
    return report


def _check_rows(session: Session, scheduler: Scheduler, report: CheckReport) -> list:
    """Fill `report.problems`; return the repairs to run, in order, when fixing."""
    problems = report.problems
    deletions: dict = {ReviewLog.id: set(), CardState.id: set(), Card.id: set(), Note.id: set()}
    writes: list = []

    users = set(session.scalars(select(User.id)))
    decks = set(session.scalars(select(Deck.id)))
    notes = dict(session.execute(select(Note.id, Note.deck_id)).all())
    orphan_notes = {note_id for note_id, deck_id in notes.items() if deck_id not in decks}
    if orphan_notes:
        problems.append(Problem(ORPHAN_NOTE, f"notes {_ids(orphan_notes)} belong to no deck; fixing deletes them"))
        deletions[Note.id] |= orphan_notes

    cards = {}
    for card_id, note_id, deck_id, key in session.execute(select(Card.id, Card.note_id, Card.deck_id, Card.key)):
        cards[card_id] = key
        if deck_id not in decks or note_id not in notes or note_id in orphan_notes:
            problems.append(Problem(ORPHAN_CARD, f"card {card_id} ({key}) points at a missing note or deck; "
                                                 "rebuilding its deck re-links it and keeps its reviews, "
                                                 "fixing deletes it with its reviews"))
            deletions[Card.id].add(card_id)
    valid_cards = set(cards) - deletions[Card.id]

    def missing(user_id: int, card_id: int) -> str | None:
        if user_id not in users:
            return f"user {user_id}, who does not exist"
        if card_id not in cards:
            return f"card {card_id}, which does not exist"
        if card_id not in valid_cards:
            return f"card {card_id}, which points at a missing note or deck"
        return None

    states: dict[tuple[int, int], CardState] = {}
    for state in session.scalars(select(CardState).order_by(CardState.user_id, CardState.card_id)):
        reason = missing(state.user_id, state.card_id)
        if reason:
            problems.append(Problem(ORPHAN_STATE, f"card state {state.id} belongs to {reason}"))
            deletions[CardState.id].add(state.id)
        else:
            states[(state.user_id, state.card_id)] = state
    report.states_checked = len(states)

    reviews = session.execute(
        select(ReviewLog.id, ReviewLog.user_id, ReviewLog.card_id, ReviewLog.rating, ReviewLog.reviewed_at,
               ReviewLog.duration_ms, ReviewLog.due)
        .order_by(ReviewLog.user_id, ReviewLog.card_id, ReviewLog.reviewed_at, ReviewLog.id)
    )
    for (user_id, card_id), group in groupby(reviews, key=lambda row: (row.user_id, row.card_id)):
        group = list(group)
        report.reviews_checked += len(group)
        where = f"user {user_id}, card {card_id}"
        reason = missing(user_id, card_id)
        if reason:
            ids = {row.id for row in group}
            what = f"review {_ids(ids)} belongs" if len(ids) == 1 else f"{len(ids)} reviews (ids {_ids(ids)}) belong"
            problems.append(Problem(ORPHAN_REVIEWS, f"{what} to {reason}"))
            deletions[ReviewLog.id] |= ids
            continue
        state = states.pop((user_id, card_id), None)
        try:
            replayed = replay(scheduler, card_id, group)
        except (ValueError, TypeError, KeyError) as error:
            problems.append(Problem(UNREPLAYABLE, f"the reviews of {where} cannot be replayed ({error}); "
                                                  "repair or delete them by hand", fixable=False))
            continue
        if state is None:
            problems.append(Problem(REVIEWS_WITHOUT_STATE, f"{where} has {len(group)} reviews but no card state; "
                                                           "fixing creates it from the reviews"))
            writes.append((user_id, card_id, replayed))
            continue
        differences = state_differences(state, replayed)
        if differences:
            problems.append(Problem(STATE_MISMATCH, f"card state {state.id} ({where}) differs from its "
                                                    f"{len(group)} reviews: {', '.join(differences)}"))
            writes.append((state, replayed))

    for (user_id, card_id), state in states.items():
        problems.append(Problem(STATE_WITHOUT_REVIEWS, f"card state {state.id} (user {user_id}, card {card_id}) "
                                                       "has no reviews; fixing deletes it (the card is new again)"))
        deletions[CardState.id].add(state.id)

    def repair_rows() -> None:
        # Children before parents, so foreign keys hold at every step.
        for column in (ReviewLog.id, CardState.id, Card.id, Note.id):
            if column is Card.id and deletions[Card.id]:
                _delete_ids(session, ReviewLog.card_id, deletions[Card.id])
                _delete_ids(session, CardState.card_id, deletions[Card.id])
            if deletions[column]:
                _delete_ids(session, column, deletions[column])

    def rewrite_states() -> None:
        for write in writes:
            if len(write) == 3:
                user_id, card_id, replayed = write
                state = CardState(user_id=user_id, card_id=card_id)
                session.add(state)
            else:
                state, replayed = write
            store_state(state, replayed)

    return [repair_rows, rewrite_states]
