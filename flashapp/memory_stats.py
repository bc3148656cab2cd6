"""One student's statistics, as Anki shows them: today, the forecast, the calendar, retention, cards, buttons, hours.

The review log is read in one grouped query, however many answers there are: each answer is
counted by local hour, state, rating and whether its card was young or mature (from the last
interval the answer keeps); everything by day, hour or button is added up from those counts here,
in one pass. Only the student's card states (one row per card studied) are read whole. Days are
study days: the student's time zone and the hour a day starts. The database turns each answer's
time into local seconds with the UTC offsets the time zone had over the span asked about (worked
out here, daylight-saving changes included), so that it needs no time-zone support of its own.
"""

from __future__ import annotations

import enum
import functools
import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from fsrs import Scheduler, State
from sqlalchemy import Integer, Select, SQLColumnExpression, bindparam, case, func, literal, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from .decks import all_decks, deck_by_slug
from .errors import Invalid
from .models import Card, CardState, Deck, ReviewLog, ReviewState, UTCDateTime
from .personal import Learner, student_scheduler
from .scheduling import StudyDays, zone
from .stats import epoch_seconds, predicted_recall, true_retention

MATURE_DAYS = 21  # a review card is mature from this interval on, as in Anki
FORECAST_DAYS = 30
FORECAST_WEEKS = 13  # the three months' forecast, by week
CALENDAR_DAYS = 365
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_SECONDS = 86_400
# Narrows a query to the decks looked at: the conditions on a card id column (none for every deck).
_Decks = Callable[[SQLColumnExpression[int]], list[ColumnElement[bool]]]


class Period(enum.StrEnum):
    """How far back the answers per day, the buttons and the hours look."""

    TODAY = "today"
    MONTH = "month"
    YEAR = "year"

    @property
    def days(self) -> int:
        return {"today": 1, "month": 30, "year": 365}[self.value]

    @property
    def label(self) -> str:
        return {"today": "Today", "month": "Last 30 days", "year": "Last 12 months"}[self.value]


def parse_period(value: str | None) -> Period:
    """The period a request names (a month when none is named); Invalid names the periods there are."""
    if value is None or value == "":
        return Period.MONTH
    try:
        return Period(value)
    except ValueError:
        raise Invalid(f"No period '{value[:40]}'. Choose today, month or year.", field="period") from None


@dataclass(frozen=True)
class TodaySummary:
    """The current study day's answers."""

    answers: int = 0
    correct: int = 0  # answers other than Again
    again: int = 0
    milliseconds: int = 0  # time spent answering, as recorded (each answer at most a minute)

    @property
    def share_correct(self) -> float | None:
        return self.correct / self.answers if self.answers else None

    @property
    def minutes(self) -> float:
        return self.milliseconds / 60_000


@dataclass(frozen=True)
class DayAnswers:
    """One study day's answers by the card's state when answered (a new card's first answer is learning)."""

    day: date
    learning: int = 0
    review: int = 0
    relearning: int = 0

    @property
    def total(self) -> int:
        return self.learning + self.review + self.relearning


@dataclass(frozen=True)
class CardCounts:
    """The cards of the decks looked at, by where the student is with each."""

    new: int = 0  # active cards never answered
    learning: int = 0
    relearning: int = 0
    young: int = 0  # review cards with an interval under MATURE_DAYS
    mature: int = 0
    retired: int = 0  # answered cards whose fact has since been removed from its deck

    @property
    def total(self) -> int:
        return self.new + self.learning + self.relearning + self.young + self.mature + self.retired


@dataclass(frozen=True)
class Bucket:
    """One bar of a distribution: a label, and how many cards fall in it."""

    label: str
    count: int


@dataclass(frozen=True)
class RetentionRow:
    """Answers to review cards over one period, young and mature apart: passed is Hard, Good or Easy."""

    label: str
    young_passed: int = 0
    young_failed: int = 0
    mature_passed: int = 0
    mature_failed: int = 0

    @property
    def young(self) -> float | None:
        return true_retention(answers=self.young_passed + self.young_failed, recalled=self.young_passed)

    @property
    def mature(self) -> float | None:
        return true_retention(answers=self.mature_passed + self.mature_failed, recalled=self.mature_passed)

    @property
    def answers(self) -> int:
        return self.young_passed + self.young_failed + self.mature_passed + self.mature_failed

    @property
    def total(self) -> float | None:
        return true_retention(answers=self.answers, recalled=self.young_passed + self.mature_passed)


@dataclass(frozen=True)
class HourAnswers:
    """Answers given in one hour of the day (the student's own clock)."""

    hour: int
    answers: int = 0
    correct: int = 0

    @property
    def share_correct(self) -> float | None:
        return self.correct / self.answers if self.answers else None


BUTTON_TYPES = ("learning", "young", "mature")


@dataclass(frozen=True)
class Streaks:
    """Days in a row with at least one answer."""

    current: int  # ending today, or yesterday while today has no answer yet
    longest: int
    days_studied: int  # of the calendar's days


@dataclass(frozen=True)
class StateNumbers:
    """What the student's card states say: the counts, the forecast, and the memory distributions."""

    counts: CardCounts
    forecast: list[int]  # cards due on each of the next FORECAST_DAYS study days; overdue ones count today
    forecast_weeks: list[int]  # cards due in each of the next FORECAST_WEEKS weeks
    intervals: list[Bucket]  # review cards' intervals
    stability: list[Bucket]
    difficulty: list[Bucket]
    retrievability: list[Bucket]  # the recall FSRS predicts now


@dataclass
class StudentStats:
    """Everything the statistics page shows, for one student, one deck or all, one period."""

    period: Period
    today_number: int  # the current study day (`StudyDays.number`)
    today: TodaySummary
    calendar: dict[date, int]  # answers on each study day of the last CALENDAR_DAYS (days without any left out)
    streaks: Streaks
    days: list[DayAnswers]  # every study day of the period, oldest first
    states: StateNumbers
    retention: list[RetentionRow]
    buttons: dict[str, list[int]] = field(default_factory=dict)  # card type: Again, Hard, Good, Easy
    hours: list[HourAnswers] = field(default_factory=list)

    @property
    def today_date(self) -> date:
        return date.fromordinal(self.today_number)

    @property
    def counts(self) -> CardCounts:
        return self.states.counts

    @property
    def forecast(self) -> list[int]:
        return self.states.forecast

    @property
    def forecast_weeks(self) -> list[int]:
        return self.states.forecast_weeks


# --- Local time in SQL -------------------------------------------------------------------------


def _offset_changes(days: StudyDays, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
    """The UTC offsets (seconds) the time zone has from `since` to `until`: (from when, offset), the first at or
    before `since`.

    Worked out over the whole UTC days the span touches, and kept: the page asks for the same days
    request after request, and a span of years (a card due far ahead) costs a few milliseconds.
    """
    first = since.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    last = until.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return list(_zone_offsets(days.time_zone, first, last))


@functools.lru_cache(maxsize=64)
def _zone_offsets(time_zone: str, since: datetime, until: datetime) -> tuple[tuple[datetime, int], ...]:
    """`_offset_changes` from `since` to `until`, one day at a time.

    A change is found to the second by halving the day it falls in; zones change at most a few times a year.
    """
    tz = zone(time_zone)

    def offset(at: datetime) -> int:
        delta = at.astimezone(tz).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    changes = [(since, offset(since))]
    at = since
    while at < until:
        following = min(at + timedelta(days=1), until)
        if offset(following) != changes[-1][1]:
            # Zones change on a whole second: halve the whole seconds from `at` (old offset) to `following`.
            low = math.floor(at.timestamp())
            high = math.ceil(following.timestamp())
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(_utc(middle)) == changes[-1][1] else (low, middle)
            changes.append((_utc(high), offset(_utc(high))))
        at = following
    return tuple(changes)


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def local_seconds(session: Session, column: SQLColumnExpression[datetime | None], days: StudyDays, *, since: datetime,
                  until: datetime) -> ColumnElement[int]:
    """The column's time as whole seconds since 1970 on the student's own clock, for times from `since` to `until`."""
    changes = _offset_changes(days, since, until)
    seconds = epoch_seconds(session, column)
    if len(changes) == 1:
        return seconds + changes[0][1]
    # The latest change first: each time takes the offset of the last change at or before it.
    offset = case(*[(column >= literal(start, UTCDateTime), value) for start, value in reversed(changes[1:])],
                  else_=changes[0][1])
    return seconds + offset


# --- The review log ----------------------------------------------------------------------------

# Answers counted by study day, hour of the day, the card's state, the rating, and whether a review
# card was mature (None for the other states).
Tally = dict[tuple[int, int, int, int, bool | None], int]  # states and ratings as their numbers
# The states as plain numbers: the tally is counted in a loop where an enum's comparison costs more than the rest.
_NEW, _LEARNING, _REVIEW, _RELEARNING = (int(state) for state in ReviewState)
_KINDS = 64  # four states, four ratings, three maturities (none, young, mature) packed in six bits


def student_stats(session: Session, scheduler: Scheduler, *, user_id: int, time_zone: str, day_starts_at_hour: int,
                  now: datetime, deck_ids: Sequence[int] | None = None, period: Period = Period.MONTH) -> StudentStats:
    """One student's statistics over the given decks (every deck when None) at `now`.

    `scheduler` is the student's own (their parameters give the recall predicted now).
    """
    days = StudyDays(time_zone, day_starts_at_hour)
    today = days.number(now)
    card_ids = None if deck_ids is None else _card_ids(session, list(deck_ids))

    def of_the_decks(column: SQLColumnExpression[int]) -> list[ColumnElement[bool]]:
        if card_ids is None:
            return []
        # `+ 0` keeps the card out of the index choice: the student's rows are read by their own index.
        return [(column + 0).in_(bindparam(None, card_ids or [-1], expanding=True, literal_execute=True))]

    period_first = today - period.days + 1
    counts = _add_up(_grouped_answers(session, user_id=user_id, days=days, now=now, decks=of_the_decks),
                     day_hour=days.hour, today=today, period_first=period_first)
    by_day = counts.by_day
    return StudentStats(
        period=period,
        today_number=today,
        today=_today(session, by_day.get(today), user_id=user_id, begins=days.begins(today), decks=of_the_decks),
        states=card_numbers(session, scheduler, user_id=user_id, days=days, now=now, deck_ids=deck_ids),
        calendar={date.fromordinal(n): sum(day[:_AGAIN_COUNT]) for n, day in sorted(by_day.items())
                  if n > today - CALENDAR_DAYS},
        streaks=streaks(sorted(by_day), today=today, calendar_from=today - CALENDAR_DAYS + 1),
        days=[_day_answers(n, by_day.get(n)) for n in range(period_first, today + 1)],
        retention=retention_table(counts.reviews, today=today),
        buttons=dict(zip(BUTTON_TYPES, counts.buttons, strict=True)),
        hours=[HourAnswers(hour, answers, correct)
               for hour, (answers, correct) in enumerate(zip(counts.answers, counts.correct, strict=True))],
    )


def _card_ids(session: Session, deck_ids: list[int]) -> list[int]:
    return list(session.scalars(select(Card.id).where(Card.deck_id.in_(deck_ids)).order_by(Card.id)))


def _plain_rows(session: Session, query: Select[Any]) -> list[tuple[Any, ...]]:
    """The query's rows as plain tuples, read straight from the connection a batch at a time.

    The ORM's handling of each row would cost more than the rest. And thousands of result rows kept
    at once outlive the garbage collector's young generations, so that it then sweeps every object
    the process has (tens of milliseconds) on most requests; tuples of plain values drop out of its
    sweeps at the first look.
    """
    result = session.connection().execute(query)
    return [tuple(row) for batch in result.partitions(200) for row in batch]


def answer_tally(session: Session, *, user_id: int, days: StudyDays, now: datetime, decks: _Decks) -> Tally:
    """Every answer of the student's (in the decks) counted by study day, hour, state, rating and maturity.

    A review is of a mature card when the card's last interval, which each answer keeps (Anki's
    `lastIvl`, in study days), was at least MATURE_DAYS.
    """
    tally: Tally = {}
    for packed, count in _grouped_answers(session, user_id=user_id, days=days, now=now, decks=decks):
        hours, kind = divmod(packed, _KINDS)
        state_rating, mature = divmod(kind, 4)
        state_before, rating_index = divmod(state_rating, 4)
        number = (hours - days.hour) // 24 + _EPOCH_ORDINAL
        tally[(number, hours % 24, state_before, rating_index + 1, None if mature == 0 else mature == 2)] = count
    return tally


def _grouped_answers(session: Session, *, user_id: int, days: StudyDays, now: datetime,
                     decks: _Decks) -> list[tuple[int, int]]:
    """The student's answers (in the decks) in one plain pass, counted by local hour and kind.

    The database groups by one whole number, the local hour since 1970 and the answer's kind packed
    together (`_KINDS` a hour: the state before the answer, the rating, and 0 for an answer to a card
    not in review, 1 for a young review card, 2 for a mature one), which it sorts faster than five
    columns and hands back as plain integers.
    """
    first = session.scalar(select(func.min(ReviewLog.reviewed_at))
                           .where(ReviewLog.user_id == user_id, *decks(ReviewLog.card_id)))
    if first is None:
        return []
    state, rating = type_coerce(ReviewLog.state_before, Integer), type_coerce(ReviewLog.rating, Integer)
    maturity = case((state != int(ReviewState.REVIEW), 0), (ReviewLog.last_interval >= MATURE_DAYS, 2), else_=1)
    local = local_seconds(session, ReviewLog.reviewed_at, days, since=min(first, now), until=now)
    key = ((local // 3600) * _KINDS + state * 16 + (rating - 1) * 4 + maturity).label("key")
    # OFFSET 0 keeps SQLite from merging the two selects, which would work each key out twice (for the
    # row and again for its group).
    answers = select(key).where(ReviewLog.user_id == user_id, *decks(ReviewLog.card_id)).offset(0).subquery()
    grouped = select(answers.c.key, func.count()).group_by(answers.c.key)
    return _plain_rows(session, grouped)


@dataclass
class _Counts:
    """The answers added up for the page (`_add_up`)."""

    # Each study day's answers by the state before them (new, learning, review, relearning), then its Again answers.
    by_day: dict[int, list[int]]
    # Each study day's answers to review cards over the retention table's year: young passed, young failed,
    # mature passed, mature failed.
    reviews: dict[int, list[int]]
    # Over the period: answers and correct answers by hour of the day; the buttons by card type (BUTTON_TYPES).
    answers: list[int]
    correct: list[int]
    buttons: list[list[int]]


_AGAIN_COUNT = 4  # where a day's count of Again answers is kept, after the four states'


def _add_up(rows: Sequence[tuple[int, int]], *, day_hour: int, today: int, period_first: int) -> _Counts:
    """Everything the page counts from the grouped answers (`_grouped_answers`), in one pass."""
    counts = _Counts({}, {}, [0] * 24, [0] * 24, [[0] * 4 for _ in BUTTON_TYPES])
    by_day, reviews, answers, correct, buttons = (counts.by_day, counts.reviews, counts.answers, counts.correct,
                                                  counts.buttons)
    retention_first = today - RETENTION_DAYS + 1
    for packed, count in rows:
        hours, kind = divmod(packed, _KINDS)
        number = (hours - day_hour) // 24 + _EPOCH_ORDINAL
        state, rating_index, maturity = kind >> 4, (kind >> 2) & 3, kind & 3
        failed = rating_index == 0  # Again
        day = by_day.get(number)
        if day is None:
            day = by_day[number] = [0, 0, 0, 0, 0]
        day[state] += count
        if failed:
            day[_AGAIN_COUNT] += count
        if maturity and number >= retention_first:
            review = reviews.get(number)
            if review is None:
                review = reviews[number] = [0, 0, 0, 0]
            review[2 * maturity - 2 + failed] += count
        if number >= period_first:
            hour = hours % 24
            answers[hour] += count
            if not failed:
                correct[hour] += count
            buttons[maturity][rating_index] += count  # learning (not a review card), young, mature
    return counts


def _today(session: Session, day: list[int] | None, *, user_id: int, begins: datetime, decks: _Decks) -> TodaySummary:
    answers = sum(day[:_AGAIN_COUNT]) if day else 0
    again = day[_AGAIN_COUNT] if day else 0
    milliseconds = 0
    if answers:
        milliseconds = int(session.scalar(
            select(func.coalesce(func.sum(ReviewLog.duration_ms), 0))
            .where(ReviewLog.user_id == user_id, ReviewLog.reviewed_at >= begins, *decks(ReviewLog.card_id))) or 0)
    return TodaySummary(answers=answers, correct=answers - again, again=again, milliseconds=milliseconds)


def _day_answers(number: int, day: list[int] | None) -> DayAnswers:
    """One study day's answers (as `_Counts.by_day` keeps them) by state; a new card's first answer is learning."""
    if day is None:
        return DayAnswers(date.fromordinal(number))
    return DayAnswers(date.fromordinal(number), day[_NEW] + day[_LEARNING], day[_REVIEW], day[_RELEARNING])


def streaks(studied: Sequence[int], *, today: int, calendar_from: int) -> Streaks:
    """The current and longest runs of consecutive study days among `studied` (day numbers, ascending).

    The current run ends today, or yesterday while today has no answer yet (the day is not over): the
    streak the done screen shows (`study.study_streak`, which asks the database about each day), here
    counted from the days the page has already grouped, of one deck or all.
    """
    longest = run = 0
    previous: int | None = None
    for number in studied:
        run = run + 1 if previous is not None and number == previous + 1 else 1
        longest = max(longest, run)
        previous = number
    days = set(studied)
    current = 0
    cursor = today if today in days else today - 1
    while cursor in days:
        current += 1
        cursor -= 1
    return Streaks(current=current, longest=longest,
                   days_studied=sum(1 for number in studied if calendar_from <= number <= today))


# The true retention table's periods: a label, and the first and last day as study days back from today.
RETENTION_PERIODS = (("Today", 0, 0), ("Yesterday", 1, 1), ("Last week", 6, 0), ("Last month", 29, 0),
                     ("Last year", 364, 0))
RETENTION_DAYS = max(back for _, back, _ in RETENTION_PERIODS) + 1  # the days they cover, today included


def retention_table(reviews: dict[int, list[int]], *, today: int) -> list[RetentionRow]:
    """Anki's true retention table: answers to review cards over each period, young and mature apart.

    `reviews` holds each study day's answers to review cards as `_Counts.reviews` keeps them.
    """
    rows = []
    for label, back, until in RETENTION_PERIODS:
        totals = [0, 0, 0, 0]
        for number in range(today - back, today - until + 1):
            for index, count in enumerate(reviews.get(number, ())):
                totals[index] += count
        rows.append(RetentionRow(label, *totals))
    return rows


# --- Card states -------------------------------------------------------------------------------

INTERVAL_EDGES = (1, 2, 3, 7, 14, 21, 45, 90, 180, 365)  # days: each bucket starts at an edge
# The card states as plain numbers, as the database hands them back.
_REVIEW_CARD, _RELEARNING_CARD = int(State.Review), int(State.Relearning)


def day_buckets(values: Sequence[float], edges: Sequence[int] = INTERVAL_EDGES) -> list[Bucket]:
    """Values in days counted into buckets that start at each edge (values under the first count in it).

    Labels are in days: '1', '3 to 6' (with an en dash), '365+'.
    """
    counts = [0] * len(edges)
    for index, count in Counter([bisect_right(edges, value) for value in values]).items():
        counts[max(0, index - 1)] += count
    labels = []
    for i, edge in enumerate(edges):
        if i + 1 == len(edges):
            labels.append(f"{edge}+")
        elif edges[i + 1] - edge == 1:
            labels.append(str(edge))
        else:
            labels.append(f"{edge}–{edges[i + 1] - 1}")
    return [Bucket(label, count) for label, count in zip(labels, counts, strict=True)]


def percent_buckets(shares: Sequence[float]) -> list[Bucket]:
    """Shares from 0 to 1 counted in tenths, labelled in percent from '0 to 9' to '90 to 100' (en dashes)."""
    counts = [0] * 10
    # 0.7 is 70 %, not 69.99...
    for tenth, count in Counter([int(share * 100 + 1e-9) // 10 for share in shares]).items():
        counts[9 if tenth > 9 else 0 if tenth < 0 else tenth] += count
    return [Bucket(f"{edge}–{edge + 9 if edge < 90 else 100}", count)
            for edge, count in zip(range(0, 100, 10), counts, strict=True)]


def card_numbers(session: Session, scheduler: Scheduler, *, user_id: int, days: StudyDays, now: datetime,
                 deck_ids: Sequence[int] | None) -> StateNumbers:
    """Card counts, the forecast and the memory distributions, from the student's states of the decks' cards.

    The study days of each due date and last review, and the recall predicted now, are worked out by
    the database; a student has one state per card studied.
    """
    today = days.number(now)
    # Each column's times span their own stretch: the offsets in force over it are all its CASE needs.
    spans = session.execute(select(func.min(CardState.due), func.max(CardState.due), func.min(CardState.last_review),
                                   func.max(CardState.last_review)).where(CardState.user_id == user_id)).one()

    def day_of(column: SQLColumnExpression[datetime | None], earliest: datetime | None,
               latest: datetime | None) -> ColumnElement[int]:
        local = local_seconds(session, column, days, since=min(earliest or now, now), until=max(latest or now, now))
        return (local - days.hour * 3600) // _DAY_SECONDS

    query = (select(type_coerce(CardState.state, Integer), Card.retired, day_of(CardState.due, *spans[:2]),
                    day_of(CardState.last_review, *spans[2:]), CardState.stability, CardState.difficulty,
                    predicted_recall(session, scheduler, student_ids=[user_id], now=now))
             .join(Card, Card.id == CardState.card_id).where(CardState.user_id == user_id))
    active_total = select(func.coalesce(func.sum(Deck.active_cards), 0))
    if deck_ids is not None:
        query = query.where(Card.deck_id.in_(list(deck_ids)))
        active_total = active_total.where(Deck.id.in_(list(deck_ids)))
    rows = _plain_rows(session, query)
    studied = [row for row in rows if not row[1]]  # retired cards count apart
    retired = len(rows) - len(studied)
    # A review card's interval: the study days from its last review to its due day, as Anki keeps it.
    intervals = [int(due) - int(reviewed) if reviewed is not None else 0
                 for state, _, due, reviewed, *_ in studied if state == _REVIEW_CARD]
    mature = sum(1 for interval in intervals if interval >= MATURE_DAYS)
    young = len(intervals) - mature
    relearning = sum(1 for row in studied if row[0] == _RELEARNING_CARD)
    learning = len(studied) - len(intervals) - relearning
    # Study days until each card is due (an overdue card is due today), counted per day and per week ahead.
    forecast = [0] * FORECAST_DAYS
    weeks = [0] * FORECAST_WEEKS
    for ahead, count in Counter([max(0, int(row[2]) + _EPOCH_ORDINAL - today) for row in studied]).items():
        if ahead < FORECAST_DAYS:
            forecast[ahead] += count
        if ahead < 7 * FORECAST_WEEKS:
            weeks[ahead // 7] += count
    stabilities = [row[4] for row in studied if row[4] is not None]
    # FSRS's difficulty of 1 to 10, shown from 0 % to 100 % as Anki does.
    difficulties = [(row[5] - 1) / 9 for row in studied if row[5] is not None]
    recall = [float(row[6]) for row in studied if row[6] is not None]
    started = learning + relearning + young + mature
    new = max(0, int(session.scalar(active_total) or 0) - started)
    return StateNumbers(CardCounts(new, learning, relearning, young, mature, retired), forecast, weeks,
                        day_buckets(intervals), day_buckets(stabilities), percent_buckets(difficulties),
                        percent_buckets(recall))


# --- The page ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatisticsPage:
    """What the statistics page shows: the numbers, the deck looked at (None: all) and the decks to choose from."""

    stats: StudentStats
    deck: Deck | None
    decks: list[Deck]


def statistics_page(session: Session, scheduler: Scheduler, *, student: Learner, now: datetime, day_starts_at_hour: int,
                    deck_slug: str | None = None, period: str | None = None) -> StatisticsPage:
    """One student's statistics page, one deck (by slug) or all, over a period (today, month or year).

    `scheduler` is the install's; the student's own parameters and desired retention are put on it.
    Raises Invalid for an unknown period and NotFound for an unknown deck, before reading anything else.
    """
    chosen = parse_period(period)
    deck = deck_by_slug(session, deck_slug) if deck_slug else None
    stats = student_stats(session, student_scheduler(scheduler, student), user_id=student.id,
                          time_zone=student.time_zone, day_starts_at_hour=day_starts_at_hour, now=now,
                          deck_ids=None if deck is None else [deck.id], period=chosen)
    return StatisticsPage(stats, deck, all_decks(session))
