"""The cards a class is struggling with: evidence first, and which students missed each one.

The dashboard used to list every card anyone had seen, most of them at full recall. Here a
card counts as trouble only with enough answers behind it, and then only when the class
answers Again often or its predicted recall has dropped below a line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fsrs import Rating, Scheduler
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import ReviewLog, User
from .stats import CardRow, ClassScope, class_scope, forgotten_cards

MIN_ANSWERS = 3  # answers across the class before a card's numbers mean anything
AGAIN_LINE = 0.25  # an Again rate at or above this is trouble
RECALL_LINE = 0.8  # a mean predicted recall below this is trouble


@dataclass(frozen=True)
class TroubleCard:
    """A card the class finds hard, why, and the students who answered it Again."""

    row: CardRow
    missed_by: list[str]
    reasons: list[str]


def trouble_reasons(row: CardRow) -> list[str]:
    """Why a card counts as trouble (empty when it does not, or when too few answers say so)."""
    if row.reviews < MIN_ANSWERS:
        return []
    reasons = []
    again = row.again_rate
    if again is not None and again >= AGAIN_LINE:
        reasons.append(f"Again {again:.0%} of {row.reviews} answers")
    if row.mean_recall is not None and row.mean_recall < RECALL_LINE:
        reasons.append(f"predicted recall {row.mean_recall:.0%}")
    return reasons


def _severity(row: CardRow) -> tuple[float, float, int]:
    again = row.again_rate or 0.0
    shortfall = 1.0 - row.mean_recall if row.mean_recall is not None else 0.0
    return (-max(again, shortfall), -again, row.card_id)


def missed_by(session: Session, *, student_ids: list[int], card_ids: list[int]) -> dict[int, list[str]]:
    """For each card, the students (by name) who have answered it Again at least once."""
    if not student_ids or not card_ids:
        return {}
    result: dict[int, list[str]] = {}
    for card_id, username in session.execute(
        select(ReviewLog.card_id, User.username).join(User, User.id == ReviewLog.user_id)
        .where(ReviewLog.card_id.in_(card_ids), ReviewLog.user_id.in_(student_ids),
               ReviewLog.rating == Rating.Again)
        .distinct().order_by(ReviewLog.card_id, User.username)
    ):
        result.setdefault(card_id, []).append(username)
    return result


@dataclass(frozen=True)
class TroubleReport:
    """The cards in trouble, and every card anyone in the class has answered, weakest first."""

    cards: list[TroubleCard]
    answered: list[CardRow]

    @property
    def cards_answered(self) -> int:
        return len(self.answered)


def cards_in_trouble(session: Session, scheduler: Scheduler, *, classroom_id: int, now: datetime,
                     limit: int | None = 15, scope: ClassScope | None = None) -> TroubleReport:
    """The class's cards with evidence of trouble, worst first, each with the students who missed it.

    A card needs `MIN_ANSWERS` answers across the class, and then an Again rate of at least
    `AGAIN_LINE` or a mean predicted recall below `RECALL_LINE`. An empty list means the
    class is doing well on every card it has answered enough.
    """
    scope = scope or class_scope(session, classroom_id=classroom_id)
    rows = forgotten_cards(session, scheduler, classroom_id=classroom_id, now=now, limit=None, scope=scope)
    troubled = sorted((row for row in rows if trouble_reasons(row)), key=_severity)
    if limit is not None:
        troubled = troubled[:limit]
    names = missed_by(session, student_ids=scope.student_ids, card_ids=[row.card_id for row in troubled])
    return TroubleReport([TroubleCard(row, names.get(row.card_id, []), trouble_reasons(row)) for row in troubled],
                         rows)
