"""Reading a user's review history: the answers newest first, grouped by study day with each day's totals."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from fsrs import Rating
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, joinedload

from .models import Card, ReviewLog
from .scheduling import StudyDays


def history_query(user_id: int, *, deck_ids: list[int] | None = None) -> Select[ReviewLog]:
    """A user's answers, newest first, each with its card and deck loaded (for paging through)."""
    query = (select(ReviewLog).where(ReviewLog.user_id == user_id)
             .options(joinedload(ReviewLog.card).joinedload(Card.deck))
             .order_by(ReviewLog.reviewed_at.desc(), ReviewLog.id.desc()))
    if deck_ids is not None:
        query = query.join(Card, Card.id == ReviewLog.card_id).where(Card.deck_id.in_(deck_ids))
    return query


@dataclass(frozen=True)
class HistoryDay:
    """One study day of a user's history: the answers of it at hand, and the whole day's totals."""

    day: date  # the local date the study day begins on
    reviews: tuple[ReviewLog, ...]
    answers: int  # every answer of that day (in the decks looked at), not only those at hand
    correct: int  # of them, answers other than Again

    @property
    def share_correct(self) -> float:
        return self.correct / self.answers if self.answers else 0.0


def history_days(session: Session, reviews: Sequence[ReviewLog], *, user_id: int, days: StudyDays,
                 deck_ids: list[int] | None = None) -> list[HistoryDay]:
    """These answers (newest first) grouped by the study day they were given on, each day with its totals.

    A day's totals count all of the user's answers that day in `deck_ids` (every deck when None),
    so a day split over two pages shows the same totals on both.
    """
    groups: dict[int, list[ReviewLog]] = {}
    for review in reviews:
        groups.setdefault(days.number(review.reviewed_at), []).append(review)
    result = []
    for number, group in groups.items():
        answers, correct = _day_totals(session, user_id=user_id, begins=days.begins(number),
                                       ends=days.begins(number + 1), deck_ids=deck_ids)
        result.append(HistoryDay(date.fromordinal(number), tuple(group), answers, correct))
    return result


def _day_totals(session: Session, *, user_id: int, begins: datetime, ends: datetime,
                deck_ids: Iterable[int] | None) -> tuple[int, int]:
    query = (select(func.count(ReviewLog.id), func.coalesce(func.sum(case((ReviewLog.rating == Rating.Again, 0),
                                                                          else_=1)), 0))
             .where(ReviewLog.user_id == user_id, ReviewLog.reviewed_at >= begins, ReviewLog.reviewed_at < ends))
    if deck_ids is not None:
        query = query.join(Card, Card.id == ReviewLog.card_id).where(Card.deck_id.in_(list(deck_ids)))
    answers, correct = session.execute(query).one()
    return int(answers), int(correct)
