"""The teacher's views of a class: the dashboard, one student, one card. Read-only use cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from fsrs import Scheduler
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .classroom import enrolled_student, own_classroom
from .errors import NotFound
from .memory_stats import StatisticsPage, statistics_page
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
from .trouble import TroubleReport, cards_in_trouble, missed_by

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
STUDYING_NOW = timedelta(minutes=5)  # an answer this recent means the student is studying now


@dataclass(frozen=True)
class Completion:
    """An assignment with a target date: who has started every one of its cards."""

    deck_title: str
    target_date: date
    total_cards: int
    finished: list[str]
    students: int


@dataclass(frozen=True)
class Dashboard:
    classroom: Classroom
    roster: list[RosterRow]
    trouble: TroubleReport
    sort: str
    descending: bool
    completion: list[Completion]
    studying_now: list[str]


def completion(classroom: Classroom, roster: list[RosterRow], deck_totals: dict[int, int]) -> list[Completion]:
    """For each assignment with a target date, the students who have started all its cards."""
    result = []
    for assignment in sorted(classroom.assignments, key=lambda a: (a.target_date or date.max, a.id)):
        if assignment.target_date is None:
            continue
        total = deck_totals.get(assignment.deck_id, 0)
        finished = [row.username for row in sorted(roster, key=lambda r: r.username.lower())
                    if total and row.introduced_by_deck.get(assignment.deck_id, 0) >= total]
        result.append(Completion(assignment.deck.title, assignment.target_date, total, finished, len(roster)))
    return result


def studying_now(roster: list[RosterRow], *, now: datetime) -> list[str]:
    """The students who answered a card in the last few minutes, by name."""
    return sorted((row.username for row in roster if row.last_active and row.last_active >= now - STUDYING_NOW),
                  key=str.lower)


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
    trouble = cards_in_trouble(session, scheduler, classroom_id=class_id, now=now, limit=FORGOTTEN_SHOWN,
                               scope=scope)
    return Dashboard(classroom, roster, trouble, sort, descending,
                     completion(classroom, roster, scope.deck_totals()), studying_now(roster, now=now))


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
    missed_by: list[str]
    fact: str
    section_title: str


def fact_in_words(*, question: str, answer: str) -> str:
    """A fact read as a sentence: its first card's question followed by the answer."""
    answer = answer.strip()
    if answer and answer[-1] not in ".!?":
        answer += "."
    return f"{question.strip()} {answer[:1].upper()}{answer[1:]}".strip()


def card_view(session: Session, scheduler: Scheduler, *, teacher_id: int, class_id: int, card_id: int,
              now: datetime) -> CardView:
    """One card of the class's decks, the fact behind it, and how the class is doing on it."""
    classroom = own_classroom(session, teacher_id=teacher_id, class_id=class_id)
    card = session.get(Card, card_id)
    if card is None or card.deck_id not in class_deck_ids(session, classroom.id):
        raise NotFound("There is no such card in this class's decks.")
    scope = class_scope(session, classroom_id=classroom.id)
    rows = forgotten_cards(session, scheduler, classroom_id=classroom.id, now=now, card_id=card.id, scope=scope)
    names = missed_by(session, student_ids=scope.student_ids, card_ids=[card.id]).get(card.id, [])
    first = card.note.cards[0] if card.note.cards else card
    return CardView(classroom, card, rows[0] if rows else None, names,
                    fact_in_words(question=first.question, answer=first.answer),
                    card.note.section.replace("-", " ").capitalize())


def student_statistics(session: Session, scheduler: Scheduler, *, teacher_id: int, class_id: int, user_id: int,
                       now: datetime, day_starts_at_hour: int, deck_slug: str | None = None,
                       period: str | None = None) -> tuple[Classroom, User, StatisticsPage]:
    """A student's statistics page, for the teachers of their classes (NotFound for anyone else's student)."""
    classroom, student = enrolled_student(session, teacher_id=teacher_id, class_id=class_id, user_id=user_id)
    page = statistics_page(session, scheduler, student=student, now=now, day_starts_at_hour=day_starts_at_hour,
                           deck_slug=deck_slug, period=period)
    return classroom, student, page
