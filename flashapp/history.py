"""Reading a user's review history."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import joinedload

from .models import Card, ReviewLog


def history_query(user_id: int, *, deck_ids: list[int] | None = None) -> Select[ReviewLog]:
    """A user's answers, newest first, each with its card and deck loaded (for paging through)."""
    query = (select(ReviewLog).where(ReviewLog.user_id == user_id)
             .options(joinedload(ReviewLog.card).joinedload(Card.deck))
             .order_by(ReviewLog.reviewed_at.desc(), ReviewLog.id.desc()))
    if deck_ids is not None:
        query = query.join(Card, Card.id == ReviewLog.card_id).where(Card.deck_id.in_(deck_ids))
    return query
