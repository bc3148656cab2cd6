"""Studying, as a student does it: the deck list, the study screen, answering and undo.

Each function is one use case: it takes ids and values, reads or writes in its own
transaction (writes through `write_transaction`), and returns plain values. Time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from fsrs import Rating, Scheduler, State
from sqlalchemy import Select, bindparam, case, distinct, exists, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from .classroom import AssignedDeck, assigned_decks
from .database import grouped_write, write_transaction
from .decks import all_decks, deck_by_slug, no_such_deck
from .errors import Invalid
from .memory_stats import streaks
from .models import Card, CardState, ExtraNewCards, ReviewAhead, ReviewLog, UTCDateTime
from .scheduling import (
    RATINGS,
    Answer,
    DeckDue,
    DueCounts,
    Outcome,
    QueuedCard,
    StateChanged,
    StudyDays,
    answered_today,
    buried_cards,
    buried_notes,
    button_label,
    day_start,
    deck_due_counts,
    due_counts,
    id_set,
    id_set_value,
    next_day_start,
    next_queued_card,
    plan_answer,
    preview_intervals,
    queued_card,
    record_answer,
    repeat_or_stale,
    state_stamp,
    unburied_queue,
    undo_last_answer,
    without_buried,
)
from .showings import ShowingTokens
from .stats import DeckProgress, deck_progress


@dataclass(frozen=True)
class StudySettings:
    """The install's study rules, from its configuration."""

    new_cards_per_day: int = 20
    day_starts_at_hour: int = 4


@dataclass(frozen=True)
class StudyDay:
    """A student's study day: when it began and when the next one begins (UTC)."""

    begins: datetime
    ends: datetime


def study_day(*, now: datetime, time_zone: str, settings: StudySettings) -> StudyDay:
    """The study day `now` falls in, in the student's own time zone."""
    hour = settings.day_starts_at_hour
    return StudyDay(day_start(now, time_zone, hour=hour), next_day_start(now, time_zone, hour=hour))


@dataclass(frozen=True)
class DeckEntry:
    """One deck on a student's deck list."""

    id: int
    slug: str
    title: str
    counts: DueCounts
    assignment: AssignedDeck | None
    progress: DeckProgress | None


def deck_list(session: Session, *, user_id: int, time_zone: str, now: datetime,
              settings: StudySettings) -> list[DeckEntry]:
    """Every deck with the student's new, learning and due counts; assigned decks carry their progress."""
    day = study_day(now=now, time_zone=time_zone, settings=settings)
    decks = all_decks(session, visible_to=user_id)
    counts = due_counts(session, user_id=user_id, deck_ids=[d.id for d in decks], now=now,
                        day_begins=day.begins, day_ends=day.ends, new_per_day=settings.new_cards_per_day)
    answered: frozenset[int] | None = None  # the cards answered today in any deck, read once for every deck
    for deck_id, deck_counts in counts.items():
        if deck_counts.answered_today:
            if answered is None:
                answered = frozenset(answered_today(session, user_id=user_id, day_begins=day.begins))
            buried = buried_notes(session, user_id=user_id, deck_id=deck_id, day_begins=day.begins,
                                  answered=answered)
            counts[deck_id] = without_buried(session, deck_counts, user_id=user_id, deck_id=deck_id,
                                             day_begins=day.begins, day_ends=day.ends, buried=buried,
                                             answered=answered)
    assigned = assigned_decks(session, user_id)
    progress = {p.deck_id: p for p in deck_progress(session, user_id=user_id, deck_ids=list(assigned), now=now)}
    return [DeckEntry(d.id, d.slug, d.title, counts[d.id], assigned.get(d.id), progress.get(d.id)) for d in decks]


@dataclass(frozen=True, slots=True)
class AnswerButton:
    """One answer button: its rating, the interval it schedules, and the rating's number and name as drawn."""

    rating: Rating
    interval: str
    value: int
    label: str

    @classmethod
    def of(cls, rating: Rating, interval: str) -> AnswerButton:
        return cls(rating, interval, rating.value, rating.name)


@dataclass(frozen=True)
class Showing:
    """One card put in front of the student, with what answering it would schedule."""

    card_id: int
    question: str
    answer: str
    explanation: str
    section: str
    supplemented: bool
    state: State | None  # None: a new card
    buttons: tuple[AnswerButton, ...]
    token: str  # signed: the answer names the card, its state's version and the time through it alone

    @property
    def kind(self) -> str:
        """'New card', 'Learning' or 'Review', as the card's meta line says."""
        if self.state is None:
            return "New card"
        return "Review" if self.state is State.Review else "Learning"

    @property
    def queue(self) -> str:
        """Which of the study page's counts the card belongs to: 'new', 'learning' or 'review'."""
        if self.state is None:
            return "new"
        return "review" if self.state is State.Review else "learning"


@dataclass(frozen=True)
class DaySummary:
    """What a student did in one deck this study day, and their streak of study days (any deck)."""

    answers: int = 0
    cards: int = 0
    correct: int = 0  # answers other than Again
    seconds: int = 0
    streak: int = 0  # study days in a row with at least one answer, up to today (or yesterday)

    @property
    def share_correct(self) -> float:
        return self.correct / self.answers if self.answers else 0.0


@dataclass(frozen=True)
class StudyScreen:
    """What the study page shows: the next card, or when the next one is due."""

    deck_id: int
    slug: str
    title: str
    counts: DueCounts
    showing: Showing | None
    can_undo: bool
    next_due: datetime | None  # when the next card can be studied (None: nothing is left to study)
    next_day: datetime
    summary: DaySummary | None = None  # with no card to show: today's work
    ahead: tuple[tuple[int, int], ...] = ()  # with no card to show: review cards due in 1, 3 and 7 study days
    reviewing_ahead: bool = False  # the card shown is due on a later study day, opened by review ahead

    @property
    def progress(self) -> float:
        """Today's share of the deck's work done: answers given against answers given plus cards left."""
        done = self.counts.answered_today
        return done / (done + self.counts.total) if done + self.counts.total else 1.0


def study_screen(session: Session, scheduler: Scheduler, showings: ShowingTokens, *, user_id: int, slug: str,
                 time_zone: str, now: datetime, settings: StudySettings,
                 undone_card_id: int | None = None) -> StudyScreen:
    """The next card of a deck for this student (the card just undone first), or when the next one is due.

    The card comes with a token signed by `showings`: the only way to answer it. Nothing is written.
    """
    day = study_day(now=now, time_zone=time_zone, settings=settings)
    deck, counts, picked, buried = _queue(session, user_id=user_id, slug=slug, now=now, day=day,
                                          reviews_until=day.ends, settings=settings, undone_card_id=undone_card_id)
    reviewing_ahead = False
    if picked is None:
        # Nothing left today: reviews the student chose to study ahead of their day, if any.
        until = session.scalar(_REVIEWING_AHEAD_UNTIL, {"user_id": user_id, "deck_id": deck.deck_id,
                                                         "day_begins": day.begins})
        if until is not None and until > day.ends:
            deck, counts, picked, buried = _queue(session, user_id=user_id, slug=slug, now=now, day=day,
                                                  reviews_until=until, settings=settings)
            reviewing_ahead = picked is not None
    showing = None
    upcoming = None
    summary = None
    ahead: tuple[tuple[int, int], ...] = ()
    if picked is None:
        days = StudyDays(time_zone, settings.day_starts_at_hour)
        upcoming = next_cards(session, user_id=user_id, deck_id=deck.deck_id, counts=counts, days=days,
                              next_day=day.ends)
        summary = day_summary(session, user_id=user_id, deck_id=deck.deck_id, now=now, days=days)
        ahead = review_ahead_counts(session, user_id=user_id, deck_id=deck.deck_id, days=days, now=now,
                                    buried=buried)
    else:
        state = picked.state
        intervals = preview_intervals(scheduler, picked.card_id, state, now, time_zone=time_zone, user_id=user_id)
        showing = Showing(
            card_id=picked.card_id, question=picked.question, answer=picked.answer, explanation=picked.explanation,
            section=picked.section, supplemented=picked.supplemented, state=None if state is None else state.state,
            buttons=tuple(AnswerButton.of(r, button_label(intervals[r])) for r in RATINGS),
            token=showings.issue(user_id=user_id, card_id=picked.card_id, stamp=state_stamp(state), now=now))
    # Every started card has at least one answer to take back.
    return StudyScreen(deck.deck_id, slug, deck.title, counts, showing, counts.started > 0, upcoming, day.ends,
                       summary, ahead, reviewing_ahead)


def _queue(session: Session, *, user_id: int, slug: str, now: datetime, day: StudyDay, reviews_until: datetime,
           settings: StudySettings, undone_card_id: int | None = None
           ) -> tuple[DeckDue, DueCounts, QueuedCard | None, list[int]]:
    """The deck, the student's counts in it and the card to show, with review cards due before `reviews_until`;
    and the deck's cards buried for today."""
    deck = deck_due_counts(session, user_id=user_id, slug=slug, now=now, day_begins=day.begins,
                           day_ends=reviews_until, new_per_day=settings.new_cards_per_day)
    if deck is None or not deck.visible:
        raise no_such_deck(session, slug, visible_to=user_id)
    counts = deck.counts
    buried = buried_notes(session, user_id=user_id, deck_id=deck.deck_id, day_begins=day.begins,
                          built_at=deck.built_at,
                          answered=deck.answered_cards) if counts.answered_today else frozenset()
    cards = buried_cards(session, deck_id=deck.deck_id, buried=buried, built_at=deck.built_at)
    undone = None if undone_card_id is None else queued_card(session, user_id=user_id, deck_id=deck.deck_id,
                                                             card_id=undone_card_id)
    if cards:
        # The counts less the buried cards and the next card, in one query.
        counts, picked = unburied_queue(session, user_id=user_id, deck_id=deck.deck_id, now=now,
                                        day_begins=day.begins, day_ends=reviews_until, counts=counts,
                                        buried_card_ids=cards, answered=deck.answered_cards,
                                        new_from=deck.new_from)
        return deck, counts, undone or picked, cards
    counts = without_buried(session, counts, user_id=user_id, deck_id=deck.deck_id, day_begins=day.begins,
                            day_ends=reviews_until, buried=buried, cards=cards)
    picked = undone or next_queued_card(session, user_id=user_id, deck_id=deck.deck_id, now=now,
                                        day_ends=reviews_until, counts=counts, buried=buried, buried_card_ids=cards)
    return deck, counts, picked, cards


# Review ahead, as Anki's custom study offers it: the review cards of the next few study days, today.
REVIEW_AHEAD_DAYS = (1, 3, 7)
_REVIEWING_AHEAD_UNTIL = (select(func.max(ReviewAhead.until))
                          .where(ReviewAhead.user_id == bindparam("user_id"),
                                 ReviewAhead.deck_id == bindparam("deck_id"),
                                 ReviewAhead.granted_at >= bindparam("day_begins", type_=UTCDateTime)))


@lru_cache(maxsize=4)
def _review_ahead_statement(dialect: str) -> Select[Any]:
    """`review_ahead_counts`' one statement, built once a dialect: bound `user_id`, `deck_id`, `begins`, `ends_<i>`
    for each of `REVIEW_AHEAD_DAYS`, and the buried cards as `ids` (`id_set`)."""
    ends = [bindparam(f"ends_{index}", type_=UTCDateTime) for index in range(len(REVIEW_AHEAD_DAYS))]
    return (select(*(func.coalesce(func.sum(case((CardState.due < end, 1), else_=0)), 0) for end in ends))
            .join(Card, Card.id == CardState.card_id)
            .where(CardState.user_id == bindparam("user_id"), Card.deck_id == bindparam("deck_id"),
                   Card.retired.is_(False), CardState.state == State.Review,
                   CardState.due >= bindparam("begins", type_=UTCDateTime), CardState.due < ends[-1],
                   CardState.card_id.not_in(id_set(dialect))))


def review_ahead_counts(session: Session, *, user_id: int, deck_id: int, days: StudyDays, now: datetime,
                        buried: list[int] | None = None) -> tuple[tuple[int, int], ...]:
    """For each choice of `REVIEW_AHEAD_DAYS`: how many review cards fall due in that many study days after today.

    Cards buried for today (their fact or a sibling answered today) are left out: reviewing ahead does not
    bring them back before the next study day either. `buried` is their ids when the caller has them.
    """
    today = days.number(now)
    if buried is None:
        buried = buried_cards(session, deck_id=deck_id, buried=buried_notes(session, user_id=user_id, deck_id=deck_id,
                                                                            day_begins=days.begins(today)))
    dialect = session.get_bind().dialect.name
    row = session.execute(_review_ahead_statement(dialect), {
        "user_id": user_id, "deck_id": deck_id, "begins": days.begins(today + 1),
        "ids": id_set_value(dialect, buried),
        **{f"ends_{index}": days.begins(today + 1 + ahead) for index, ahead in enumerate(REVIEW_AHEAD_DAYS)}}).one()
    return tuple((ahead, int(count)) for ahead, count in zip(REVIEW_AHEAD_DAYS, row, strict=True))


def review_ahead(session: Session, *, user_id: int, slug: str, days_ahead: int, now: datetime, time_zone: str,
                 settings: StudySettings) -> int:
    """Open this deck's review cards of the next `days_ahead` study days for today (Anki's "review ahead").

    Recorded for this student, deck and time (so for this study day only). Answered early, a
    card is scheduled by FSRS from the days actually elapsed. Returns how many cards it opens;
    Invalid for a choice not offered or when none fall due in that time.
    """
    if days_ahead not in REVIEW_AHEAD_DAYS:
        raise Invalid(f"Review ahead by {', '.join(map(str, REVIEW_AHEAD_DAYS[:-1]))} or "
                      f"{REVIEW_AHEAD_DAYS[-1]} days.")
    deck = deck_by_slug(session, slug, visible_to=user_id)
    days = StudyDays(time_zone, settings.day_starts_at_hour)
    count = dict(review_ahead_counts(session, user_id=user_id, deck_id=deck.id, days=days, now=now))[days_ahead]
    if not count:
        raise Invalid(f"No cards of this deck fall due in the next {days_ahead} day{'' if days_ahead == 1 else 's'}.")
    with write_transaction(session):
        session.add(ReviewAhead(user_id=user_id, deck_id=deck.id, granted_at=now,
                                until=days.begins(days.number(now) + 1 + days_ahead)))
    return count


# The student's earliest due time in a deck, per card state.
_NEXT_TIMES = (select(CardState.state, func.min(CardState.due)).join(Card, Card.id == CardState.card_id)
               .where(CardState.user_id == bindparam("user_id"), Card.deck_id == bindparam("deck_id"),
                      Card.retired.is_(False))
               .group_by(CardState.state))


def next_cards(session: Session, *, user_id: int, deck_id: int, counts: DueCounts, days: StudyDays,
               next_day: datetime) -> datetime | None:
    """When the student can next study this deck, once nothing is left for now (None: nothing ever will be).

    A learning card can be studied when it falls due; a review card from the start of the
    study day it falls due on; new cards (while any are left) from `next_day`, the start of
    the next study day.
    """
    rows = session.execute(_NEXT_TIMES, {"user_id": user_id, "deck_id": deck_id}).all()
    times = [days.begins(days.number(due)) if state is State.Review else due for state, due in rows]
    if counts.unseen:
        times.append(next_day)
    return min(times) if times else None


# The student's answers in a deck since a time: how many, to how many cards, how many not Again, and milliseconds.
_DAY_TOTALS = (select(func.count(ReviewLog.id), func.count(distinct(ReviewLog.card_id)),
                      func.coalesce(func.sum(case((ReviewLog.rating == Rating.Again, 0), else_=1)), 0),
                      func.coalesce(func.sum(ReviewLog.duration_ms), 0))
               .join(Card, Card.id == ReviewLog.card_id)
               .where(ReviewLog.user_id == bindparam("user_id"), Card.deck_id == bindparam("deck_id"),
                      ReviewLog.reviewed_at >= bindparam("day_begins", type_=UTCDateTime)))


def day_summary(session: Session, *, user_id: int, deck_id: int, now: datetime, days: StudyDays) -> DaySummary:
    """The student's answers in this deck this study day, and their streak of study days across decks."""
    today = days.number(now)
    answers, cards, correct, milliseconds = session.execute(
        _DAY_TOTALS, {"user_id": user_id, "deck_id": deck_id, "day_begins": days.begins(today)}).one()
    return DaySummary(answers=answers, cards=cards, correct=int(correct), seconds=round(int(milliseconds) / 1000),
                      streak=study_streak(session, user_id=user_id, now=now, days=days))


# How many study days `study_streak` asks about in one query.
STREAK_DAYS_PER_QUERY = 32
# The smallest step of a stored time: an answer at `until` or before is one before `until` and this.
_INSTANT = timedelta(microseconds=1)


def study_streak(session: Session, *, user_id: int, now: datetime, days: StudyDays) -> int:
    """Study days in a row on which the student answered at least one card, ending today.

    A streak not yet continued today still counts up to yesterday, as the day is not over.
    The days are asked about `STREAK_DAYS_PER_QUERY` at a time, newest first, until the run
    ends: a year's streak takes a dozen queries of index lookups, not a walk through a year's answers.
    """
    today = days.number(now)
    studied: set[int] = set()
    newest = today
    while True:
        oldest = newest - STREAK_DAYS_PER_QUERY + 1
        studied |= _study_days_answered(session, user_id=user_id, days=days, numbers=range(oldest, newest + 1),
                                        until=now)
        current = streaks(sorted(studied), today=today, calendar_from=today).current
        run_from = today if today in studied else today - 1
        if run_from - current >= oldest:  # the day before the run was asked about: it has no answer
            return current
        newest = oldest - 1


def _day_answered(index: int) -> ColumnElement[bool]:
    """Whether the student (bound `user_id`) answered in the bound window `begins_<index>` to `ends_<index>`."""
    return exists().where(ReviewLog.user_id == bindparam("user_id"),
                          ReviewLog.reviewed_at >= bindparam(f"begins_{index}", type_=UTCDateTime),
                          ReviewLog.reviewed_at < bindparam(f"ends_{index}", type_=UTCDateTime))


# One query for `STREAK_DAYS_PER_QUERY` study days, built once: an index lookup for each.
_DAYS_ANSWERED = select(*(_day_answered(index) for index in range(STREAK_DAYS_PER_QUERY)))


def _study_days_answered(session: Session, *, user_id: int, days: StudyDays, numbers: range,
                         until: datetime) -> set[int]:
    """Which of these study days (numbers, `STREAK_DAYS_PER_QUERY` of them) hold an answer of the student's
    given at `until` or before."""
    window: dict[str, Any] = {"user_id": user_id}
    ends = days.begins(numbers[0])
    for index, number in enumerate(numbers):
        begins, ends = ends, days.begins(number + 1)
        window[f"begins_{index}"], window[f"ends_{index}"] = begins, min(ends, until + _INSTANT)
    row = session.execute(_DAYS_ANSWERED, window).one()
    return {number for number, found in zip(numbers, row, strict=True) if found}


MORE_NEW_CARDS = 10


def more_new_cards(session: Session, *, user_id: int, slug: str, now: datetime, count: int = MORE_NEW_CARDS) -> int:
    """Let the student start `count` more new cards of this deck today, beyond the daily limit.

    Recorded for this student, deck and time (so for this study day only). Returns how many
    more there are to start. Invalid when every card of the deck has been started already.
    """
    deck = deck_by_slug(session, slug, visible_to=user_id)
    started = session.scalar(
        select(func.count(CardState.id)).join(Card, Card.id == CardState.card_id)
        .where(CardState.user_id == user_id, Card.deck_id == deck.id, Card.retired.is_(False))) or 0
    unseen = deck.active_cards - started
    if unseen <= 0:
        raise Invalid("Every card of this deck has been started: there are no new cards left to add.")
    with write_transaction(session):
        session.add(ExtraNewCards(user_id=user_id, deck_id=deck.id, granted_at=now, count=count))
    return min(count, unseen)


def answer(session: Session, scheduler: Scheduler, showings: ShowingTokens, *, user_id: int, slug: str,
           token: str, rating: Rating, now: datetime) -> Outcome:
    """Record the student's answer to one showing of a card of this deck, named by the showing's signed token.

    The card, the state version it was shown from and the time it was shown come from the token
    alone; the duration is measured from it. A token not issued by `showings` to this student, or
    too old, is refused (RefusedShowing) and nothing is written; a card of another deck is
    NotFound. A repeat of the same showing records nothing; so does a showing made stale by an
    answer given elsewhere since, or a card retired since.
    """
    shown = showings.read(token, user_id=user_id, now=now)
    # Worked out from a plain read; the write lock is then held only for the two writes.
    planned = plan_answer(session, scheduler, user_id=user_id, card_id=shown.card_id, rating=rating,
                          token=shown.key, now=now, shown_stamp=shown.stamp, duration_ms=shown.duration_ms(now),
                          deck_slug=slug)
    if isinstance(planned, Answer):
        return planned.outcome
    try:
        # Answers given at the same moment share a commit, so they wait for the disk once.
        return grouped_write(session, lambda writing: record_answer(writing, planned)).outcome
    except StateChanged:
        # Answered in the meantime, by a copy of this request or in another window: nothing was written.
        return repeat_or_stale(session, shown.key).outcome


def undo(session: Session, scheduler: Scheduler, *, user_id: int, slug: str) -> int | None:
    """Take back the student's latest answer in this deck; returns that card's id (None: nothing to undo)."""
    deck = deck_by_slug(session, slug)
    with write_transaction(session):
        return undo_last_answer(session, scheduler, user_id=user_id, deck_id=deck.id)
