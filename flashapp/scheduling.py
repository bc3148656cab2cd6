"""FSRS glue: answer a card, preview the intervals, pick the next card, undo.

Time is always passed in as a timezone-aware UTC datetime; nothing here reads the clock.
The review log is the source of truth: `replay` rebuilds a card's state from it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fsrs import Card as FsrsCard
from fsrs import Rating, Scheduler, State
from sqlalchemy import and_, bindparam, delete, func, select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import ScalarSelect

from .models import Card, CardState, Deck, ReviewLog, ReviewState, UTCDateTime

RATINGS = (Rating.Again, Rating.Hard, Rating.Good, Rating.Easy)
LEARN_AHEAD = timedelta(minutes=20)
# Anki's cap on how long one answer is taken to have lasted.
MAX_DURATION_MS = 60_000


def make_scheduler(*, desired_retention: float = 0.9, learning_steps_minutes: Sequence[float] = (1, 10),
                   relearning_steps_minutes: Sequence[float] = (10,), maximum_interval_days: int = 36500,
                   enable_fuzzing: bool = True, parameters: Sequence[float] | None = None) -> Scheduler:
    """The one FSRS scheduler an app uses, built from configuration values."""
    kwargs: dict[str, Any] = {}
    if parameters is not None:
        kwargs["parameters"] = parameters
    return Scheduler(
        desired_retention=desired_retention,
        learning_steps=tuple(timedelta(minutes=m) for m in learning_steps_minutes),
        relearning_steps=tuple(timedelta(minutes=m) for m in relearning_steps_minutes),
        maximum_interval=maximum_interval_days,
        enable_fuzzing=enable_fuzzing,
        **kwargs,
    )


def without_fuzz(scheduler: Scheduler) -> Scheduler:
    """The same scheduler with fuzzing off (the scheduler itself when it has none)."""
    if not scheduler.enable_fuzzing:
        return scheduler
    return Scheduler(parameters=scheduler.parameters, desired_retention=scheduler.desired_retention,
                     learning_steps=scheduler.learning_steps, relearning_steps=scheduler.relearning_steps,
                     maximum_interval=scheduler.maximum_interval, enable_fuzzing=False)


def zone(name: str) -> ZoneInfo:
    """The named time zone, or UTC when the name is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def day_start(now: datetime, time_zone: str, *, hour: int = 4) -> datetime:
    """When the user's current study day began (UTC): `hour` o'clock in their own time zone."""
    tz = zone(time_zone)
    local = now.astimezone(tz)
    day = (local - timedelta(hours=hour)).date()
    start = datetime.combine(day, time(hour), tzinfo=tz)
    return start.astimezone(timezone.utc)


def next_day_start(now: datetime, time_zone: str, *, hour: int = 4) -> datetime:
    """When the user's next study day begins (UTC), honouring daylight-saving changes."""
    tz = zone(time_zone)
    start_local = day_start(now, time_zone, hour=hour).astimezone(tz)
    following = datetime.combine(start_local.date() + timedelta(days=1), time(hour), tzinfo=tz)
    return following.astimezone(timezone.utc)


def to_fsrs_card(card_id: int, state: CardState | None, now: datetime) -> FsrsCard:
    """The `fsrs.Card` for a user's state of a card (a fresh one when never answered)."""
    if state is None:
        return FsrsCard(card_id=card_id, state=State.Learning, step=0, due=now)
    return FsrsCard(card_id=card_id, state=state.state, step=state.step, stability=state.stability,
                    difficulty=state.difficulty, due=state.due, last_review=state.last_review)


def preview_intervals(scheduler: Scheduler, card_id: int, state: CardState | None,
                      now: datetime) -> dict[Rating, timedelta]:
    """The interval each of Again, Hard, Good and Easy would schedule now (before fuzz)."""
    plain = without_fuzz(scheduler)
    card = to_fsrs_card(card_id, state, now)
    return {rating: plain.review_card(card, rating, now)[0].due - now for rating in RATINGS}


def format_interval(interval: timedelta) -> str:
    """An interval the way Anki writes it on its buttons: '<1m', '10m', '3h', '4d', '1.5mo', '2y'."""
    seconds = interval.total_seconds()
    if seconds < 60:
        return "<1m"
    minutes = seconds / 60
    if minutes < 60:
        return f"{round(minutes)}m"
    hours = minutes / 60
    if hours < 24:
        return f"{round(hours)}h"
    days = hours / 24
    if days < 30:
        return f"{round(days)}d"
    if days < 365:
        return f"{days / 30:.1f}".rstrip("0").rstrip(".") + "mo"
    return f"{days / 365:.1f}".rstrip("0").rstrip(".") + "y"


@dataclass(frozen=True)
class DueCounts:
    new: int = 0
    learning: int = 0
    review: int = 0
    started: int = 0  # cards of the deck the user has answered at least once

    @property
    def total(self) -> int:
        return self.new + self.learning + self.review


def active_cards(deck_ids: list[int]) -> ColumnElement[bool]:
    """Cards of these decks that are still studied (not retired)."""
    return and_(Card.deck_id.in_(deck_ids), Card.retired.is_(False))


# The study screen's statements are built once, with their values bound at each call: building a
# statement and its cache key costs more Python time than SQLite takes to run it.
_LEARNING_STATES = (State.Learning, State.Relearning)


def _count_states(*conditions: ColumnElement[bool]) -> ScalarSelect[int]:
    return (select(func.count(CardState.id)).join(Card, Card.id == CardState.card_id)
            .where(Card.deck_id == Deck.id, Card.retired.is_(False), CardState.user_id == bindparam("user_id"),
                   *conditions)
            .scalar_subquery())


_DUE_COUNTS = select(
    Deck.id,
    _count_states(CardState.state.in_(_LEARNING_STATES), CardState.due <= bindparam("now", type_=UTCDateTime)),
    _count_states(CardState.state == State.Review, CardState.due < bindparam("day_ends", type_=UTCDateTime)),
    _count_states(),
    select(func.count(Card.id)).where(Card.deck_id == Deck.id, Card.retired.is_(False)).scalar_subquery(),
    # New cards introduced today: answers given to cards that were new when shown.
    select(func.count(ReviewLog.id)).join(Card, Card.id == ReviewLog.card_id)
    .where(Card.deck_id == Deck.id, ReviewLog.user_id == bindparam("user_id"),
           ReviewLog.state_before == ReviewState.NEW,
           ReviewLog.reviewed_at >= bindparam("day_begins", type_=UTCDateTime)).scalar_subquery(),
).where(Deck.id.in_(bindparam("deck_ids", expanding=True)))


def active_card_counts(session: Session, deck_ids: list[int]) -> dict[int, int]:
    """How many active cards each of these decks has (decks without any are left out)."""
    if not deck_ids:
        return {}
    return {deck_id: count for deck_id, count in session.execute(
        select(Card.deck_id, func.count(Card.id)).where(active_cards(deck_ids)).group_by(Card.deck_id))}


def due_counts(session: Session, *, user_id: int, deck_ids: list[int], now: datetime, day_begins: datetime,
               day_ends: datetime, new_per_day: int) -> dict[int, DueCounts]:
    """New (still allowed today), learning (due now) and review (due today) counts per deck, in one query."""
    if not deck_ids:
        return {}
    rows = session.execute(_DUE_COUNTS, {"user_id": user_id, "deck_ids": list(deck_ids), "now": now,
                                         "day_begins": day_begins, "day_ends": day_ends})
    result = {}
    for deck_id, learning, review, started, total, introduced in rows:
        allowed = max(0, new_per_day - introduced)
        result[deck_id] = DueCounts(new=min(total - started, allowed), learning=learning, review=review,
                                    started=started)
    for deck_id in deck_ids:
        result.setdefault(deck_id, DueCounts())
    return result


_SCHEDULED = (select(Card, CardState).join(CardState, CardState.card_id == Card.id)
              .options(joinedload(Card.note, innerjoin=True))
              .where(CardState.user_id == bindparam("user_id"), Card.deck_id == bindparam("deck_id"),
                     Card.retired.is_(False))
              .order_by(CardState.due, Card.position).limit(1))
_LEARNING_DUE = _SCHEDULED.where(CardState.state.in_(_LEARNING_STATES),
                                 CardState.due <= bindparam("until", type_=UTCDateTime))
_REVIEW_DUE = _SCHEDULED.where(CardState.state == State.Review,
                               CardState.due < bindparam("until", type_=UTCDateTime))
# The first card by position that the user has no state for (a look-up per card, in order).
_FIRST_NEW = (select(Card).options(joinedload(Card.note, innerjoin=True))
              .where(Card.deck_id == bindparam("deck_id"), Card.retired.is_(False),
                     ~select(CardState.id).where(CardState.user_id == bindparam("user_id"),
                                                 CardState.card_id == Card.id).exists())
              .order_by(Card.position).limit(1))


def next_card(session: Session, *, user_id: int, deck_id: int, now: datetime, day_begins: datetime,
              day_ends: datetime, new_per_day: int,
              counts: DueCounts | None = None) -> tuple[Card, CardState | None] | None:
    """The card to show next, with the user's state of it (None for a new card).

    Learning cards due now come first, then reviews due today, then new cards up
    to the daily limit; with nothing else left, a learning card due within the
    next 20 minutes is shown early, as Anki does. Pass the deck's `due_counts`
    when already at hand: the choice then takes a single query.
    """
    if counts is None:
        counts = due_counts(session, user_id=user_id, deck_ids=[deck_id], now=now, day_begins=day_begins,
                            day_ends=day_ends, new_per_day=new_per_day)[deck_id]
    values = {"user_id": user_id, "deck_id": deck_id}
    if counts.learning:
        found = session.execute(_LEARNING_DUE, {**values, "until": now}).first()
    elif counts.review:
        found = session.execute(_REVIEW_DUE, {**values, "until": day_ends}).first()
    elif counts.new:
        card = session.scalar(_FIRST_NEW, values)
        return (card, None) if card is not None else None
    else:
        found = session.execute(_LEARNING_DUE, {**values, "until": now + LEARN_AHEAD}).first()
    return (found[0], found[1]) if found else None


def next_due(session: Session, *, user_id: int, deck_id: int) -> datetime | None:
    """When the user's earliest scheduled card in the deck falls due."""
    return session.scalar(
        select(func.min(CardState.due)).join(Card, Card.id == CardState.card_id)
        .where(CardState.user_id == user_id, active_cards([deck_id]))
    )


def state_stamp(state: CardState | None) -> str:
    """Identifies the version of a card's state a showing was made from."""
    if state is None or state.last_review is None:
        return "new"
    return state.last_review.isoformat()


class Outcome(enum.Enum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"  # the same showing answered again: nothing recorded
    STALE = "stale"  # the card was answered elsewhere since this showing: nothing recorded
    UNAVAILABLE = "unavailable"  # no such card, or retired


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    review: ReviewLog | None = None


def answer_card(session: Session, scheduler: Scheduler, *, user_id: int, card_id: int, rating: Rating,
                token: str, now: datetime, shown_stamp: str | None = None,
                duration_ms: int | None = None) -> Answer:
    """Record one answer to one showing of a card and schedule the card.

    `token` identifies the showing: answering the same showing twice records
    nothing the second time. `shown_stamp` (from `state_stamp`) guards against
    answering an outdated showing of a card that was answered since. The caller commits.
    """
    if session.scalar(select(ReviewLog.id).where(ReviewLog.token == token)) is not None:
        return Answer(Outcome.DUPLICATE)
    card = session.get(Card, card_id)
    if card is None or card.retired:
        return Answer(Outcome.UNAVAILABLE)
    state = session.scalar(
        select(CardState).where(CardState.user_id == user_id, CardState.card_id == card_id).with_for_update()
    )
    if shown_stamp is not None and shown_stamp != state_stamp(state):
        # A copy of this very answer may have been committed since the first look (PostgreSQL
        # reads each statement afresh): that is a repeat, not an answer from another window.
        if session.scalar(select(ReviewLog.id).where(ReviewLog.token == token)) is not None:
            return Answer(Outcome.DUPLICATE)
        return Answer(Outcome.STALE)
    before = to_fsrs_card(card_id, state, now)
    if duration_ms is not None:
        duration_ms = max(0, min(int(duration_ms), MAX_DURATION_MS))
    after, _log = scheduler.review_card(before, rating, now, duration_ms)
    state_before = ReviewState.NEW if state is None else ReviewState(state.state)
    review = ReviewLog(user_id=user_id, card_id=card_id, rating=rating, reviewed_at=now, duration_ms=duration_ms,
                       state_before=state_before, due=after.due, token=token)
    session.add(review)
    if state is None:
        state = CardState(user_id=user_id, card_id=card_id)
        session.add(state)
    store_state(state, after, counts=ReviewCounts.of(state).plus(rating=rating, state_before=review.state_before))
    session.flush()
    return Answer(Outcome.RECORDED, review)


class ReplayableReview(Protocol):
    """What replaying and counting need of a review: a `ReviewLog`, or a row with these columns."""

    @property
    def rating(self) -> Rating: ...
    @property
    def reviewed_at(self) -> datetime: ...
    @property
    def duration_ms(self) -> int | None: ...
    @property
    def due(self) -> datetime: ...
    @property
    def state_before(self) -> ReviewState: ...


@dataclass(frozen=True)
class ReviewCounts:
    """How often a user answered a card: every answer, the Again answers, and the lapses among them.

    A lapse is an Again given to a card in the review state (as Anki counts lapses).
    """

    reps: int = 0
    lapses: int = 0
    again: int = 0

    @classmethod
    def of(cls, state: CardState | None) -> ReviewCounts:
        """The counts a card state holds (none for a card never answered)."""
        if state is None:
            return cls()
        # A row made in this transaction has no counts until it is flushed.
        return cls(reps=state.reps or 0, lapses=state.lapses or 0, again=state.again_count or 0)

    def plus(self, *, rating: Rating, state_before: ReviewState) -> ReviewCounts:
        """These counts with one more answer."""
        again = rating == Rating.Again
        return ReviewCounts(reps=self.reps + 1, lapses=self.lapses + (again and state_before == ReviewState.REVIEW),
                            again=self.again + again)


def count_reviews(reviews: Iterable[ReplayableReview]) -> ReviewCounts:
    """The counts a card state must hold for these reviews."""
    counts = ReviewCounts()
    for review in reviews:
        counts = counts.plus(rating=review.rating, state_before=review.state_before)
    return counts


def store_state(state: CardState, card: FsrsCard, *, counts: ReviewCounts) -> None:
    """Write an `fsrs.Card`'s memory state and the card's review counts into a user's card state row."""
    state.state = card.state
    state.step = card.step
    state.stability = card.stability
    state.difficulty = card.difficulty
    state.due = card.due
    state.last_review = card.last_review
    state.reps = counts.reps
    state.lapses = counts.lapses
    state.again_count = counts.again


def replay(scheduler: Scheduler, card_id: int, reviews: Iterable[ReplayableReview]) -> FsrsCard | None:
    """Rebuild a card's FSRS state from its reviews, oldest first (None when there are none).

    Fuzz only moves the due date, which every review log keeps, so the replay
    runs without fuzz and takes each due date from its log. Replaying many cards is
    quicker with a scheduler that has fuzzing off already (`without_fuzz`).
    """
    plain = without_fuzz(scheduler)
    card = None
    for review in reviews:
        if card is None:
            card = FsrsCard(card_id=card_id, state=State.Learning, step=0, due=review.reviewed_at)
        card, _ = plain.review_card(card, review.rating, review.reviewed_at, review.duration_ms)
        card.due = review.due
    return card


def card_reviews(session: Session, *, user_id: int, card_id: int) -> list[ReviewLog]:
    """A user's reviews of one card, oldest first."""
    return list(session.scalars(
        select(ReviewLog).where(ReviewLog.user_id == user_id, ReviewLog.card_id == card_id)
        .order_by(ReviewLog.reviewed_at, ReviewLog.id)
    ))


def undo_last_answer(session: Session, scheduler: Scheduler, *, user_id: int, deck_id: int) -> int | None:
    """Remove the user's latest answer to an active card of a deck and restore that card's previous state.

    Returns the card's id, or None when there is nothing to undo. The caller commits.
    """
    last = session.scalar(
        select(ReviewLog).join(Card, Card.id == ReviewLog.card_id)
        .where(ReviewLog.user_id == user_id, active_cards([deck_id]))
        .order_by(ReviewLog.reviewed_at.desc(), ReviewLog.id.desc()).limit(1)
    )
    if last is None:
        return None
    card_id = last.card_id
    session.execute(delete(ReviewLog).where(ReviewLog.id == last.id))
    remaining = card_reviews(session, user_id=user_id, card_id=card_id)
    restored = replay(scheduler, card_id, remaining)
    state = session.scalar(select(CardState).where(CardState.user_id == user_id, CardState.card_id == card_id))
    if restored is None:
        if state is not None:
            session.delete(state)
    else:
        if state is None:
            state = CardState(user_id=user_id, card_id=card_id)
            session.add(state)
        store_state(state, restored, counts=count_reviews(remaining))
    session.flush()
    return card_id
