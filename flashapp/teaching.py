"""The teacher's views of a class: the dashboard, one student, one card. Read-only use cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fsrs import Scheduler
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .classroom import enrolled_student, own_classroom
from .errors import NotFound
from .models import Assignment, Card, Classroom, User
from .stats import (
    CardRow,
    DeckProgress,
    RosterRow,
    class_deck_ids,
    class_roster,
    class_scope,
    deck_progress,
    forgotten_cards,
)

# How the roster can be sorted, and the key for each.
ROSTER_SORTS = {
    "name": lambda r: r.username.lower(),
    "introduced": lambda r: r.introduced_share,
    "reviews": lambda r: r.reviews_7d,
    "retention": lambda r: -1 if r.retention_30d is None else r.retention_30d,
    "due": lambda r: r.due_now,
    "active": lambda r: r.last_active.timestamp() if r.last_active else 0,
    "behind": lambda r: len(r.behind),
}
FORGOTTEN_SHOWN = 15


@dataclass(frozen=True)
class Dashboard:
    classroom: Classroom
    roster: list[RosterRow]
    cards: list[CardRow]
    sort: str
    descending: bool


def dashboard(session: Session, scheduler: Scheduler, *, teacher_id: int, class_id: int, now: datetime,
              sort: str | None = None, direction: str | None = None) -> Dashboard:
    """A class at a glance: the roster (sorted as asked, by name within ties) and the facts being forgotten."""
    classroom = session.scalar(
        select(Classroom).where(Classroom.id == class_id)
        .options(selectinload(Classroom.assignments).selectinload(Assignment.deck)))
    if classroom is None or classroom.teacher_id != teacher_id:
        raise NotFound("There is no such class among yours.")
    if sort not in ROSTER_SORTS:
        sort = "behind"
    descending = (direction or ("desc" if sort == "behind" else "asc")) == "desc"
    # The roster and the card list are about the same decks, students and cards: read them once.
    scope = class_scope(session, classroom_id=class_id)
    roster = sorted(class_roster(session, classroom_id=class_id, now=now, scope=scope), key=ROSTER_SORTS["name"])
    roster.sort(key=ROSTER_SORTS[sort], reverse=descending)
    cards = forgotten_cards(session, scheduler, classroom_id=class_id, now=now, limit=FORGOTTEN_SHOWN, scope=scope)
    return Dashboard(classroom, roster, cards, sort, descending)


@dataclass(frozen=True)
class StudentView:
    classroom: Classroom
    student: User
    progress: list[DeckProgress]


def student_view(session: Session, *, teacher_id: int, class_id: int, user_id: int, now: datetime) -> StudentView:
    """One student's progress on the class's decks, for the teachers of their classes."""
    classroom, student = enrolled_student(session, teacher_id=teacher_id, class_id=class_id, user_id=user_id)
    progress = deck_progress(session, user_id=student.id, deck_ids=class_deck_ids(session, classroom.id), now=now)
    return StudentView(classroom, student, progress)


@dataclass(frozen=True)
class CardView:
    classroom: Classroom
    card: Card
    stats: CardRow | None


def card_view(session: Session, scheduler: Scheduler, *, teacher_id: int, class_id: int, card_id: int,
              now: datetime) -> CardView:
    """One card of the class's decks, the fact behind it, and how the class is doing on it."""
    classroom = own_classroom(session, teacher_id=teacher_id, class_id=class_id)
    card = session.get(Card, card_id)
    if card is None or card.deck_id not in class_deck_ids(session, classroom.id):
        raise NotFound("There is no such card in this class's decks.")
    rows = forgotten_cards(session, scheduler, classroom_id=classroom.id, now=now, card_id=card.id)
    return CardView(classroom, card, rows[0] if rows else None)
