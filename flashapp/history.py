"""Reading a user's review history."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Card, Deck, ReviewLog


@dataclass(frozen=True)
class HistoryRow:
    review: ReviewLog
    question: str
    card_key: str
    deck_slug: str
    deck_title: str


def review_history(session: Session, *, user_id: int, limit: int | None = None,
                   offset: int = 0) -> list[HistoryRow]:
    """A user's answers, newest first, with each card's question and deck."""
    query = (select(ReviewLog, Card.question, Card.key, Deck.slug, Deck.title)
             .join(Card, Card.id == ReviewLog.card_id).join(Deck, Deck.id == Card.deck_id)
             .where(ReviewLog.user_id == user_id)
             .order_by(ReviewLog.reviewed_at.desc(), ReviewLog.id.desc()).offset(offset))
    if limit is not None:
        query = query.limit(limit)
    return [HistoryRow(*row) for row in session.execute(query)]
