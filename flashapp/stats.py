"""A class's progress for its teacher: the roster, the facts being forgotten, one student's decks.

Everything is aggregated in SQL with a fixed number of queries, however many students a
class has. Predicted recall is FSRS retrievability, computed with the app's scheduler.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from fsrs import Card as FsrsCard
from fsrs import Rating, Scheduler
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from .models import Assignment, Card, CardState, Deck, Enrollment, Note, ReviewLog, ReviewState, User
from .scheduling import active_cards

INACTIVE_AFTER = timedelta(days=7)
OVERDUE_LIMIT = 20
LOW_RETENTION = 0.7
LOW_RETENTION_MIN_ANSWERS = 10
PACE_TOLERANCE = 0.8


def class_deck_ids(session: Session, classroom_id: int) -> list[int]:
    """The decks a class's numbers are about: its assigned decks, or every deck when none is assigned."""
    assigned = list(session.scalars(select(Assignment.deck_id).where(Assignment.classroom_id == classroom_id)
                                    .order_by(Assignment.id)))
    return assigned or list(session.scalars(select(Deck.id).order_by(Deck.title)))


def _class_students(classroom_id: int):
    return select(Enrollment.user_id).where(Enrollment.classroom_id == classroom_id)


@dataclass
class RosterRow:
    """One student's line on the class roster."""

    user_id: int
    username: str
    introduced: int = 0
    total: int = 0
    reviews_7d: int = 0
    review_answers_30d: int = 0
    recalled_30d: int = 0
    due_now: int = 0
    last_active: datetime | None = None
    introduced_by_deck: dict[int, int] = field(default_factory=dict)
    behind: list[str] = field(default_factory=list)

    @property
    def retention_30d(self) -> float | None:
        """True retention: the share of answers to review-state cards that were not Again."""
        if not self.review_answers_30d:
            return None
        return self.recalled_30d / self.review_answers_30d

    @property
    def introduced_share(self) -> float:
        return self.introduced / self.total if self.total else 0.0


def class_roster(session: Session, *, classroom_id: int, now: datetime) -> list[RosterRow]:
    """Every student of a class with their progress over the class's decks, and why any is falling behind."""
    deck_ids = class_deck_ids(session, classroom_id)
    students = _class_students(classroom_id)
    rows = {user_id: RosterRow(user_id, username) for user_id, username in session.execute(
        select(User.id, User.username).where(User.id.in_(students)).order_by(User.username))}
    if not rows:
        return []
    deck_totals = dict(session.execute(
        select(Card.deck_id, func.count(Card.id)).where(active_cards(deck_ids)).group_by(Card.deck_id)).all())
    total = sum(deck_totals.values())

    for user_id, deck_id, introduced, due_now in session.execute(
        select(CardState.user_id, Card.deck_id, func.count(CardState.id),
               func.count(CardState.id).filter(CardState.due <= now))
        .join(Card, Card.id == CardState.card_id)
        .where(CardState.user_id.in_(students), active_cards(deck_ids))
        .group_by(CardState.user_id, Card.deck_id)
    ):
        row = rows[user_id]
        row.introduced += introduced
        row.due_now += due_now
        row.introduced_by_deck[deck_id] = introduced

    week_ago, month_ago = now - timedelta(days=7), now - timedelta(days=30)
    in_month_on_review = and_(ReviewLog.reviewed_at >= month_ago, ReviewLog.state_before == ReviewState.REVIEW)
    for user_id, reviews_7d, answers_30d, recalled_30d, last_active in session.execute(
        select(ReviewLog.user_id,
               func.count(ReviewLog.id).filter(ReviewLog.reviewed_at >= week_ago),
               func.count(ReviewLog.id).filter(in_month_on_review),
               func.count(ReviewLog.id).filter(in_month_on_review, ReviewLog.rating != Rating.Again),
               func.max(ReviewLog.reviewed_at))
        .join(Card, Card.id == ReviewLog.card_id)
        .where(ReviewLog.user_id.in_(students), Card.deck_id.in_(deck_ids))
        .group_by(ReviewLog.user_id)
    ):
        row = rows[user_id]
        row.reviews_7d, row.review_answers_30d, row.recalled_30d = reviews_7d, answers_30d, recalled_30d
        row.last_active = _as_utc(last_active)

    targets = session.execute(
        select(Assignment.deck_id, Assignment.target_date, Assignment.created_at, Deck.title)
        .join(Deck, Deck.id == Assignment.deck_id)
        .where(Assignment.classroom_id == classroom_id, Assignment.target_date.is_not(None))
    ).all()
    for row in rows.values():
        row.total = total
        row.behind = _falling_behind(row, now=now, deck_totals=deck_totals, targets=targets)
    return list(rows.values())


def _as_utc(value: datetime | None) -> datetime | None:
    # An aggregate (max) comes back without the column's type on SQLite: a naive UTC datetime or a string.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def expected_share(*, assigned_on: date, target: date, today: date) -> float:
    """The share of a deck a student should have started by today to finish by the target, at an even pace."""
    if today >= target:
        return 1.0
    span = (target - assigned_on).days
    if span <= 0:
        return 1.0
    return max(0.0, min(1.0, (today - assigned_on).days / span))


def _falling_behind(row: RosterRow, *, now: datetime, deck_totals: dict[int, int], targets) -> list[str]:
    reasons = []
    if row.last_active is None or row.last_active < now - INACTIVE_AFTER:
        reasons.append("no reviews in 7 days")
    if row.due_now >= OVERDUE_LIMIT:
        reasons.append(f"{row.due_now} cards due")
    retention = row.retention_30d
    if retention is not None and row.review_answers_30d >= LOW_RETENTION_MIN_ANSWERS and retention < LOW_RETENTION:
        reasons.append(f"retention {retention:.0%}")
    for deck_id, target, created_at, title in targets:
        share = expected_share(assigned_on=created_at.date(), target=target, today=now.date())
        expected = share * deck_totals.get(deck_id, 0)
        if expected and row.introduced_by_deck.get(deck_id, 0) < PACE_TOLERANCE * expected:
            reasons.append(f"behind the pace for {title}")
    return reasons


@dataclass
class CardRow:
    """How a class is doing on one card."""

    card_id: int
    question: str
    answer: str
    deck_title: str
    note_key: str
    relation: str
    subject: str
    object: str
    section: str
    supplemented: bool
    mean_recall: float | None
    students: int
    reviews: int
    again: int
    lapses: int

    @property
    def again_rate(self) -> float | None:
        return self.again / self.reviews if self.reviews else None


def forgotten_cards(session: Session, scheduler: Scheduler, *, classroom_id: int, now: datetime,
                    limit: int | None = 20, card_id: int | None = None) -> list[CardRow]:
    """The class's cards, weakest first: lowest mean predicted recall now, then most Again answers.

    With `card_id`, only that card's row (if anyone has answered it).
    """
    deck_ids = class_deck_ids(session, classroom_id)
    students = _class_students(classroom_id)
    in_scope = active_cards(deck_ids) if card_id is None else and_(active_cards(deck_ids), Card.id == card_id)
    recall: dict[int, list[float]] = defaultdict(list)
    for card_id, state, step, stability, difficulty, due, last_review in session.execute(
        select(CardState.card_id, CardState.state, CardState.step, CardState.stability, CardState.difficulty,
               CardState.due, CardState.last_review)
        .join(Card, Card.id == CardState.card_id)
        .where(CardState.user_id.in_(students), in_scope, CardState.last_review.is_not(None))
    ):
        memory = FsrsCard(card_id=card_id, state=state, step=step, stability=stability,
                          difficulty=difficulty, due=due, last_review=last_review)
        recall[card_id].append(scheduler.get_card_retrievability(memory, now))

    answers = {card_id: (reviews, again, lapses) for card_id, reviews, again, lapses in session.execute(
        select(ReviewLog.card_id, func.count(ReviewLog.id),
               func.count(ReviewLog.id).filter(ReviewLog.rating == Rating.Again),
               func.count(ReviewLog.id).filter(ReviewLog.rating == Rating.Again,
                                               ReviewLog.state_before == ReviewState.REVIEW))
        .join(Card, Card.id == ReviewLog.card_id)
        .where(ReviewLog.user_id.in_(students), in_scope)
        .group_by(ReviewLog.card_id)
    )}
    studied = set(recall) | set(answers)
    if not studied:
        return []
    rows = []
    for card, note, deck_title in session.execute(
        select(Card, Note, Deck.title).join(Note, Note.id == Card.note_id).join(Deck, Deck.id == Card.deck_id)
        .where(Card.id.in_(studied))
    ):
        values = recall.get(card.id, [])
        reviews, again, lapses = answers.get(card.id, (0, 0, 0))
        rows.append(CardRow(
            card_id=card.id, question=card.question, answer=card.answer, deck_title=deck_title,
            note_key=note.key, relation=note.relation, subject=note.subject, object=note.object,
            section=note.section, supplemented=note.supplemented,
            mean_recall=sum(values) / len(values) if values else None, students=len(values),
            reviews=reviews, again=again, lapses=lapses,
        ))
    rows.sort(key=lambda r: (r.mean_recall if r.mean_recall is not None else 2.0, -(r.again_rate or 0), r.card_id))
    return rows if limit is None else rows[:limit]


@dataclass
class DeckProgress:
    """One student's progress on one deck."""

    deck_id: int
    title: str
    total: int
    introduced: int
    due_now: int
    reviews_7d: int
    review_answers_30d: int
    recalled_30d: int

    @property
    def retention_30d(self) -> float | None:
        if not self.review_answers_30d:
            return None
        return self.recalled_30d / self.review_answers_30d


def deck_progress(session: Session, *, user_id: int, deck_ids: list[int], now: datetime) -> list[DeckProgress]:
    """A student's progress on each of the given decks."""
    if not deck_ids:
        return []
    titles = dict(session.execute(select(Deck.id, Deck.title).where(Deck.id.in_(deck_ids))).all())
    totals = dict(session.execute(
        select(Card.deck_id, func.count(Card.id)).where(active_cards(deck_ids)).group_by(Card.deck_id)).all())
    states = {deck_id: (introduced, due) for deck_id, introduced, due in session.execute(
        select(Card.deck_id, func.count(CardState.id), func.count(CardState.id).filter(CardState.due <= now))
        .join(Card, Card.id == CardState.card_id)
        .where(CardState.user_id == user_id, active_cards(deck_ids)).group_by(Card.deck_id))}
    in_month_on_review = and_(ReviewLog.reviewed_at >= now - timedelta(days=30),
                              ReviewLog.state_before == ReviewState.REVIEW)
    reviews = {deck_id: rest for deck_id, *rest in session.execute(
        select(Card.deck_id,
               func.count(ReviewLog.id).filter(ReviewLog.reviewed_at >= now - timedelta(days=7)),
               func.count(ReviewLog.id).filter(in_month_on_review),
               func.count(ReviewLog.id).filter(in_month_on_review, ReviewLog.rating != Rating.Again))
        .join(Card, Card.id == ReviewLog.card_id)
        .where(ReviewLog.user_id == user_id, Card.deck_id.in_(deck_ids)).group_by(Card.deck_id))}
    result = []
    for deck_id in deck_ids:
        if deck_id not in titles:
            continue
        introduced, due = states.get(deck_id, (0, 0))
        week, answers, recalled = reviews.get(deck_id, (0, 0, 0))
        result.append(DeckProgress(deck_id, titles[deck_id], totals.get(deck_id, 0), introduced, due,
                                   week, answers, recalled))
    return result


REVLOG_COLUMNS = ["card_id", "review_time", "review_rating", "review_state", "review_duration", "user"]


def class_revlog(session: Session, *, classroom_id: int) -> list[tuple]:
    """The class's answers in the FSRS optimiser's revlog layout (times in ms), plus the student's name.

    review_state is the card's state when it was answered: 0 new, 1 learning, 2 review, 3 relearning.
    """
    deck_ids = class_deck_ids(session, classroom_id)
    rows = session.execute(
        select(ReviewLog.card_id, ReviewLog.reviewed_at, ReviewLog.rating, ReviewLog.state_before,
               ReviewLog.duration_ms, User.username)
        .join(User, User.id == ReviewLog.user_id).join(Card, Card.id == ReviewLog.card_id)
        .where(ReviewLog.user_id.in_(_class_students(classroom_id)), Card.deck_id.in_(deck_ids))
        .order_by(User.username, ReviewLog.card_id, ReviewLog.reviewed_at, ReviewLog.id)
    ).all()
    return [(card_id, int(at.timestamp() * 1000), rating, state, duration or 0, username)
            for card_id, at, rating, state, duration, username in rows]

