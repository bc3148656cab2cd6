"""Reading a user's review history."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload

from .models import Card, CardState, Deck, ReviewLog


def history_query(user_id: int, *, deck_ids: list[int] | None = None) -> Select[ReviewLog]:
    """A user's answers, newest first, each with its card and deck loaded (for paging through)."""
    query = (select(ReviewLog).where(ReviewLog.user_id == user_id)
             .options(joinedload(ReviewLog.card).joinedload(Card.deck))
             .order_by(ReviewLog.reviewed_at.desc(), ReviewLog.id.desc()))
    if deck_ids is not None:
        query = query.join(Card, Card.id == ReviewLog.card_id).where(Card.deck_id.in_(deck_ids))
    return query


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


def card_states(session: Session, *, user_id: int) -> list[tuple[CardState, str, str, str]]:
    """A user's card states with each card's key, question and deck slug, by deck and card order."""
    rows = session.execute(
        select(CardState, Card.key, Card.question, Deck.slug).join(Card, Card.id == CardState.card_id)
        .join(Deck, Deck.id == Card.deck_id).where(CardState.user_id == user_id).order_by(Deck.slug, Card.position))
    return [(state, key, question, slug) for state, key, question, slug in rows]
