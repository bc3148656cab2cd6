"""A class's progress for its teacher: the roster, the facts being forgotten, one student's decks.

Everything is aggregated in SQL with a fixed number of queries, however many students a
class has. Whole-history numbers (reviews, Again answers and lapses of a card) are read from
the card states, which keep them; only the 7- and 30-day numbers read the review log, and
only the window, through the index on (user_id, reviewed_at). Each class query names the
class's students by id, so its cost follows the class, not the rest of the school; and it names
the class's cards by id rather than joining each card state or review to its card, a lookup that
costs more than the rest of the row's work (and none at all when the class's decks are every deck).
The card state and review log queries read covering indexes alone, never the tables; rows are
counted with count(*) for that reason. Predicted recall is FSRS retrievability, worked out in
SQL in study days, with each student's own forgetting curve, from each state's last review as
whole microseconds (`CardState.last_review_us`, which the database keeps), so that no stored
time is parsed.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, NamedTuple

from fsrs import Rating, Scheduler
from sqlalchemy import (
    ARRAY,
    BigInteger,
    BindParameter,
    Float,
    Integer,
    SQLColumnExpression,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    extract,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression
from sqlalchemy.sql.operators import custom_op

from .models import (
    Assignment,
    Card,
    CardReviewCounts,
    CardState,
    Deck,
    DeckStateCounts,
    Enrollment,
    Note,
    PersonalParameters,
    ReviewLog,
    ReviewState,
    User,
)
from .scheduling import active_card_counts, active_cards, next_day_start, study_scheduler

INACTIVE_AFTER = timedelta(days=7)
OVERDUE_LIMIT = 20
LOW_RETENTION = 0.7
LOW_RETENTION_MIN_ANSWERS = 10
PACE_TOLERANCE = 0.8
WEEK, MONTH = timedelta(days=7), timedelta(days=30)


def class_deck_ids(session: Session, classroom_id: int) -> list[int]:
    """The decks a class's numbers are about: its assigned decks, or every deck when none is assigned."""
    assigned = list(session.scalars(select(Assignment.deck_id).where(Assignment.classroom_id == classroom_id)
                                    .order_by(Assignment.id)))
    return assigned or list(session.scalars(select(Deck.id).order_by(Deck.title)))


def class_student_ids(session: Session, classroom_id: int) -> list[int]:
    """The ids of a class's students.

    Class queries take this list rather than a subquery on the enrollments: PostgreSQL
    plans `user_id IN (SELECT ...)` as a scan of the whole table, every student's rows.
    """
    return list(session.scalars(select(Enrollment.user_id).where(Enrollment.classroom_id == classroom_id)
                                .order_by(Enrollment.user_id)))


@dataclass(frozen=True)
class Student:
    """What the class's numbers need to know of one of its students."""

    username: str
    time_zone: str
    parameters: str | None  # their own FSRS parameters (JSON), when they have any
    personal_since: datetime | None  # when those came into use


@dataclass(frozen=True)
class ClassScope:
    """What a class's numbers are about: its decks, its students, and the cards of those decks."""

    deck_ids: list[int]
    student_ids: list[int]
    card_decks: dict[int, int]  # every card of the decks, retired ones included: its deck
    retired: frozenset[int]
    every_deck: bool  # the decks are all the decks there are, so no card is outside them
    most_of_the_school: bool  # the students are at least half of all the accounts
    # The accounts outside the class (teachers included), read when the class holds most of the school:
    # a short list to rule out costs less per row than a long one to look each row up in.
    outsiders: tuple[int, ...] = ()
    # Those of them with card states, the only ones whose rows need ruling out (often none: teachers
    # seldom study, and no condition at all costs less than one every row passes).
    studying_outsiders: tuple[int, ...] = ()
    # The students by id, in the order of their names (as the database orders them).
    students: dict[int, Student] = field(default_factory=dict)
    # No student has a card state outside the decks (every deck is the class's, or the per-deck counts
    # say so), so their states and reviews need no condition on the cards' decks: a review always has its
    # card's state beside it. Leaving the condition out spares a look-up per row, which would otherwise make
    # a class's pages cost more once the school has decks of its own.
    only_its_decks: bool = False
    # The database takes a list of students as one array (PostgreSQL), not as one parameter each (`_among`).
    as_array: bool = False

    def among(self, column: SQLColumnExpression[int], ids: Sequence[int]) -> ColumnElement[bool]:
        """`column` is one of `ids` (`_among`)."""
        return _among(column, ids, as_array=self.as_array)

    def active_cards(self, deck_id: int | None = None) -> list[int]:
        """The ids of the cards still studied, of one deck or of all the class's decks."""
        return [card_id for card_id, deck in self.card_decks.items()
                if card_id not in self.retired and (deck_id is None or deck == deck_id)]

    def deck_totals(self) -> dict[int, int]:
        """How many active cards each deck has (decks without any are left out)."""
        totals: dict[int, int] = {}
        for card_id, deck_id in self.card_decks.items():
            if card_id not in self.retired:
                totals[deck_id] = totals.get(deck_id, 0) + 1
        return totals


def _among(column: SQLColumnExpression[int], ids: Sequence[int], *, as_array: bool) -> ColumnElement[bool]:
    """`column IN ids`; `as_array` (PostgreSQL), `column = ANY(ids)` with the ids as one array parameter.

    psycopg parses a statement of more than 50 parameters afresh at every call (its cache holds only
    smaller ones): for a class of 100, one statement naming each student cost 0.7 ms before being sent.
    """
    if as_array:
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Integer)))
    return column.in_(ids)


def _as_array(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def class_scope(session: Session, *, classroom_id: int) -> ClassScope:
    """The decks, students and cards a class's numbers are about, read once for all of them."""
    assigned = list(session.scalars(select(Assignment.deck_id).where(Assignment.classroom_id == classroom_id)
                                    .order_by(Assignment.id)))
    every_deck = not assigned or len(set(assigned)) == session.scalar(select(func.count(Deck.id)))
    deck_ids = assigned or list(session.scalars(select(Deck.id).order_by(Deck.title)))
    card_decks, retired = {}, set()
    if deck_ids:
        for card_id, deck_id, is_retired in session.execute(
                select(Card.id, Card.deck_id, Card.retired).where(Card.deck_id.in_(deck_ids))):
            card_decks[card_id] = deck_id
            if is_retired:
                retired.add(card_id)
    # The students with what the roster and their recall need, in one query (not one per use).
    members = {user_id: Student(username, time_zone, parameters, since)
               for user_id, username, time_zone, parameters, since in session.execute(
                   select(User.id, User.username, User.time_zone, PersonalParameters.parameters,
                          PersonalParameters.fitted_at)
                   .join(Enrollment, Enrollment.user_id == User.id)
                   .outerjoin(PersonalParameters, and_(PersonalParameters.user_id == User.id,
                                                       PersonalParameters.parameters.is_not(None)))
                   .where(Enrollment.classroom_id == classroom_id).order_by(User.username))}
    students = sorted(members)
    accounts = session.scalar(select(func.count(User.id))) or 0
    most = 2 * len(students) >= accounts
    outsiders: tuple[int, ...] = ()
    studying: tuple[int, ...] = ()
    if most:
        # Only the accounts outside are looked up in the card states (the ids are whole numbers, written into
        # the statement, so that no class can exceed the limit on parameters).
        accounts_outside = session.execute(
            select(User.id, exists().where(CardState.user_id == User.id))
            .where(User.id.not_in(bindparam(None, students, expanding=True, literal_execute=True)))
            .order_by(User.id)).all()
        outsiders = tuple(user_id for user_id, _ in accounts_outside)
        studying = tuple(user_id for user_id, has_states in accounts_outside if has_states)
    only_its_decks = every_deck or (
        bool(students) and session.scalar(
            select(DeckStateCounts.user_id)
            .where(_among(DeckStateCounts.user_id, students, as_array=_as_array(session)),
                   DeckStateCounts.deck_id.not_in(deck_ids),
                   DeckStateCounts.states > 0).limit(1)) is None)
    return ClassScope(deck_ids, students, card_decks, frozenset(retired), every_deck, most, outsiders, studying,
                      members, only_its_decks, _as_array(session))


def _card_in(column: SQLColumnExpression[int], card_ids: list[int], *, by_card: bool = False) -> ColumnElement[bool]:
    # `+ 0` keeps the card out of the index choice: a long list of cards would otherwise make SQLite
    # seek every (student, card) pair instead of reading each student's rows once (`by_card`: reading
    # card by card is the plan). The ids are whole numbers, written into the statement so that no list
    # of cards can exceed the limit on parameters.
    ids: BindParameter[list[int]] = bindparam(None, card_ids, expanding=True, literal_execute=True)
    return column.in_(ids) if by_card else (column + 0).in_(ids)


def _of_the_decks(column: SQLColumnExpression[int], scope: ClassScope, *,
                  by_card: bool = False) -> ColumnElement[bool] | None:
    """Rows of cards of the class's decks, retired ones included (None: every row of the students' is)."""
    return None if scope.only_its_decks else _card_in(column, list(scope.card_decks), by_card=by_card)


def _active(column: SQLColumnExpression[int], scope: ClassScope, *,
            by_card: bool = False) -> ColumnElement[bool] | None:
    """Rows of the class's active cards, among rows of its decks' cards (None: every such row is)."""
    if not scope.retired:
        return None
    if scope.only_its_decks:
        return ~(column + 0).in_(bindparam(None, sorted(scope.retired), expanding=True,
                                           literal_execute=True))
    return _card_in(column, scope.active_cards(), by_card=by_card)


def _of_the_students(scope: ClassScope) -> ColumnElement[bool] | None:
    """Card states of the class's students (None: every card state there is belongs to one of them).

    A class holding most of the school rules out the few accounts outside it that have card states, which
    costs less per state than looking each one up among a long list of students, and nothing at all when
    none of them has any. The outsiders are read with the rest of the scope: on PostgreSQL, which gives each
    statement its own snapshot, an outsider's first answer in between could count once on this page.
    """
    if not scope.most_of_the_school:
        return scope.among(CardState.user_id, scope.student_ids)
    if not scope.studying_outsiders:
        return None
    return (CardState.user_id + 0).not_in(
        bindparam(None, list(scope.studying_outsiders), expanding=True, literal_execute=True))


def true_retention(*, answers: int, recalled: int) -> float | None:
    """True retention: the share of answers to review-state cards that were not Again (None without any)."""
    return recalled / answers if answers else None


def _as_stored(session: Session, column: InstrumentedAttribute[datetime]) -> ColumnElement[datetime]:
    """A time column, for a condition tested at every row (not one an index settles) against a bound time.

    SQLite gives a column declared as a time numeric affinity, so comparing it with a bound time makes
    SQLite try to read the bound text as a number again at every row, which costs more than the rest
    of the row's count. A unary plus drops the affinity and leaves the comparison of the stored texts,
    in the same order. PostgreSQL compares times as times.
    """
    element = column.expression
    if session.get_bind().dialect.name != "sqlite":
        return element
    return UnaryExpression(element, operator=custom_op("+"), type_=element.type)


def _window_counts(session: Session, *, now: datetime) -> tuple[ColumnElement[Any], ...]:
    """Reviews in the last 7 days, answers to review-state cards in the last 30, and those not Again.

    Rows are counted with count(*): the ids are not in the indexes, and counting them would send
    PostgreSQL from the index to the table for every row.
    """
    on_review = ReviewLog.state_before == ReviewState.REVIEW
    return (func.count().filter(_as_stored(session, ReviewLog.reviewed_at) >= now - WEEK),
            func.count().filter(on_review),
            func.count().filter(on_review, ReviewLog.rating != Rating.Again))


@dataclass
class RosterRow:
    """One student's line on the class roster."""

    user_id: int
    username: str
    introduced: int = 0
    total: int = 0
    reviews_7d: int = 0
    review_answers_30d: int = 0
    recalled_30d: int = 0
    due_now: int = 0
    last_active: datetime | None = None
    introduced_by_deck: dict[int, int] = field(default_factory=dict)  # the decks with a target date
    behind: list[str] = field(default_factory=list)
    personal_since: datetime | None = None  # when the student's own FSRS parameters came into use

    @property
    def retention_30d(self) -> float | None:
        """True retention over the last 30 days (see `true_retention`)."""
        return true_retention(answers=self.review_answers_30d, recalled=self.recalled_30d)

    @property
    def introduced_share(self) -> float:
        return self.introduced / self.total if self.total else 0.0


def class_roster(session: Session, *, classroom_id: int, now: datetime,
                 scope: ClassScope | None = None) -> list[RosterRow]:
    """Every student of a class with their progress over the class's decks, and why any is falling behind.

    `scope` is the class's (`class_scope`), when the caller has read it already.
    """
    scope = scope or class_scope(session, classroom_id=classroom_id)
    students = scope.student_ids
    if not students:
        return []
    rows = {user_id: RosterRow(user_id, student.username, personal_since=student.personal_since)
            for user_id, student in scope.students.items()}
    deck_totals = scope.deck_totals()
    total = sum(deck_totals.values())
    targets = session.execute(
        select(Assignment.deck_id, Assignment.target_date, Assignment.created_at, Deck.title)
        .join(Deck, Deck.id == Assignment.deck_id)
        .where(Assignment.classroom_id == classroom_id, Assignment.target_date.is_not(None))
    ).all()

    paced = [deck_id for deck_id, _, _, _ in targets]
    numbers = _kept_state_numbers(session, scope, now=now, paced=paced)
    for user_id, (introduced, due_now, last_active, by_deck) in numbers.items():
        row = rows.get(user_id)
        if row is None:  # an account that joined the class or began to study since the scope was read
            continue
        row.introduced, row.due_now, row.last_active, row.introduced_by_deck = introduced, due_now, last_active, by_deck

    in_decks = _of_the_decks(ReviewLog.card_id, scope)
    for user_id, reviews_7d, answers_30d, recalled_30d in session.execute(
        select(ReviewLog.user_id, *_window_counts(session, now=now))
        .where(scope.among(ReviewLog.user_id, students), ReviewLog.reviewed_at >= now - MONTH,
               *([] if in_decks is None else [in_decks]))
        .group_by(ReviewLog.user_id)
    ):
        row = rows[user_id]
        row.reviews_7d, row.review_answers_30d, row.recalled_30d = reviews_7d, answers_30d, recalled_30d

    # The pace each deck with a target date asks for today: the same for every student, so worked out once.
    paces = []
    for deck_id, target, created_at, title in targets:
        if target is None:  # the query asks for assignments with a target date only
            continue
        share = expected_share(assigned_on=created_at.date(), target=target, today=now.date())
        expected = share * deck_totals.get(deck_id, 0)
        if expected:
            paces.append((deck_id, PACE_TOLERANCE * expected, f"behind the pace for {title}"))
    for row in rows.values():
        row.total = total
        row.behind = _falling_behind(row, now=now, paces=paces)
    return list(rows.values())


# A student's cards started (active cards of the class's decks), cards due now, latest answer (retired cards
# included) and cards started of each paced deck.
_StateNumbers = tuple[int, int, datetime | None, dict[int, int]]


def _kept_state_numbers(session: Session, scope: ClassScope, *, now: datetime,
                        paced: list[int]) -> dict[int, _StateNumbers]:
    """The class's students' numbers from the per-deck counts the database keeps (`DeckStateCounts`): only the
    cards due now and the states of retired cards (to leave out) come from the states themselves."""
    students = scope.student_ids
    of_decks = [] if scope.every_deck else [DeckStateCounts.deck_id.in_(scope.deck_ids)]
    kept: dict[int, tuple[dict[int, int], int | None]] = {}
    for user_id, deck_id, states, latest in session.execute(
            select(DeckStateCounts.user_id, DeckStateCounts.deck_id, DeckStateCounts.states,
                   DeckStateCounts.last_review_us)
            .where(scope.among(DeckStateCounts.user_id, students), DeckStateCounts.states > 0, *of_decks)):
        by_deck, last = kept.setdefault(user_id, ({}, None))
        by_deck[deck_id] = states
        if latest is not None and (last is None or latest > last):
            kept[user_id] = (by_deck, latest)
    retired = [card_id for card_id in scope.retired if card_id in scope.card_decks]
    if retired:
        for user_id, card_id in session.execute(
                select(CardState.user_id, CardState.card_id)
                .where(_card_in(CardState.card_id, retired, by_card=True), scope.among(CardState.user_id, students))):
            if user_id in kept:
                by_deck = kept[user_id][0]
                deck_id = scope.card_decks[card_id]
                by_deck[deck_id] = by_deck.get(deck_id, 0) - 1
    active = _active(CardState.card_id, scope)
    in_decks = _of_the_decks(CardState.card_id, scope)
    # The range of each student's states due by now, read from the index on (user_id, due, ...), one student at
    # a time: grouping the class's states instead, PostgreSQL reads every one of them when most are due.
    due_now = (select(func.count()).select_from(CardState)
               .where(CardState.user_id == User.id, CardState.due <= now,
                      *[condition for condition in (in_decks, active) if condition is not None])
               .scalar_subquery())
    due: dict[int, int] = dict(session.execute(select(User.id, due_now).where(scope.among(User.id, students))).all())
    numbers = {}
    for user_id, (by_deck, latest) in kept.items():
        numbers[user_id] = (sum(by_deck.values()), due.get(user_id, 0),
                            None if latest is None else _EPOCH + timedelta(microseconds=latest),
                            {deck_id: by_deck.get(deck_id, 0) for deck_id in paced})
    return numbers


def expected_share(*, assigned_on: date, target: date, today: date) -> float:
    """The share of a deck a student should have started by today to finish by the target, at an even pace."""
    if today >= target:
        return 1.0
    span = (target - assigned_on).days
    if span <= 0:
        return 1.0
    return max(0.0, min(1.0, (today - assigned_on).days / span))


def _falling_behind(row: RosterRow, *, now: datetime, paces: list[tuple[int, float, str]]) -> list[str]:
    """Why a student needs a look; `paces` holds each paced deck's least number of cards started, and the reason."""
    reasons = []
    if row.last_active is None or row.last_active < now - INACTIVE_AFTER:
        reasons.append("no reviews in 7 days")
    if row.due_now >= OVERDUE_LIMIT:
        reasons.append(f"{row.due_now} cards due")
    retention = row.retention_30d
    if retention is not None and row.review_answers_30d >= LOW_RETENTION_MIN_ANSWERS and retention < LOW_RETENTION:
        reasons.append(f"retention {retention:.0%}")
    for deck_id, least, reason in paces:
        if row.introduced_by_deck.get(deck_id, 0) < least:
            reasons.append(reason)
    return reasons


@dataclass
class CardRow:
    """How a class is doing on one card."""

    card_id: int
    question: str
    answer: str
    deck_title: str
    note_key: str
    relation: str
    subject: str
    object: str
    section: str
    supplemented: bool
    mean_recall: float | None
    students: int
    reviews: int
    again: int
    lapses: int

    @property
    def again_rate(self) -> float | None:
        return self.again / self.reviews if self.reviews else None


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DAY_US = 86_400_000_000


# unixepoch() came with SQLite 3.38; it reads a time as julianday() does and hands back whole seconds.
_SQLITE_HAS_UNIXEPOCH = sqlite3.sqlite_version_info >= (3, 38, 0)


def epoch_seconds(session: Session, column: SQLColumnExpression[datetime | None]) -> ColumnElement[int]:
    """A UTC datetime column as whole seconds since 1970 (the fraction dropped), computed by the database, exactly.

    SQLite reads the whole seconds alone ('YYYY-MM-DD HH:MM:SS'): with unixepoch() where it has it, else
    with julianday(), whose double holds them to well within half a second of the exact value. Either
    would round a fraction to milliseconds (0.9999995 s to the next second).
    """
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(extract("epoch", column)), BigInteger)
    whole_seconds = func.substr(type_coerce(column, String), 1, 19)
    if _SQLITE_HAS_UNIXEPOCH:
        return type_coerce(func.unixepoch(whole_seconds), Integer)  # the same exact number, in one call
    return cast(func.round((func.julianday(whole_seconds) - 2440587.5) * 86400), Integer)


def epoch_microseconds(session: Session, column: SQLColumnExpression[datetime | None]) -> ColumnElement[int]:
    """A UTC datetime column as whole microseconds since 1970, computed by the database, exactly.

    SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff': the whole seconds go through `epoch_seconds` and
    the fraction is added back; PostgreSQL's epoch is an exact numeric. No floating point,
    so a review exactly ten days ago is ten days old, not 9.99999.
    """
    if session.get_bind().dialect.name == "postgresql":
        return cast(extract("epoch", column) * 1_000_000, BigInteger)
    fraction = cast(func.substr(type_coerce(column, String).concat("000000"), 21, 6), Integer)
    return epoch_seconds(session, column) * 1_000_000 + fraction


def _sqlite_has_power(session: Session) -> None:
    # SQLite's math functions are a compile-time option; where they are missing, Python's stands in.
    connection = session.connection()
    if connection.dialect.name != "sqlite" or connection.info.get("flashapp.power"):
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    try:
        driver.execute("SELECT power(2, 0.5)").fetchall()
    except sqlite3.OperationalError:  # no such function
        driver.create_function("power", 2, math.pow, deterministic=True)
    connection.info["flashapp.power"] = True


@dataclass(frozen=True)
class _RecallRule:
    """What a student's predicted recall depends on besides the card: their day's end and their decay."""

    last_instant: datetime  # the last microsecond of the student's current study day
    decay: float


def _recall_rules(session: Session, scheduler: Scheduler, *, student_ids: Sequence[int], now: datetime,
                  students: Mapping[int, Student] | None = None) -> dict[_RecallRule, list[int]]:
    """The class's students grouped by their recall rule (nearly always one group: one zone, one set of parameters).

    `students` are the class's (`ClassScope.students`) when the caller has read them already.
    """
    rules = study_scheduler(scheduler)
    if students is None:
        zones = dict(session.execute(select(User.id, User.time_zone).where(User.id.in_(student_ids))).all())
        own = dict(session.execute(
            select(PersonalParameters.user_id, PersonalParameters.parameters)
            .where(PersonalParameters.user_id.in_(student_ids), PersonalParameters.parameters.is_not(None))).all())
    else:
        zones = {user_id: student.time_zone for user_id, student in students.items()}
        own = {user_id: student.parameters for user_id, student in students.items() if student.parameters}
    groups: dict[_RecallRule, list[int]] = {}
    made: dict[tuple[str, str | None], _RecallRule] = {}  # one reckoning per zone and parameters, not per student
    for user_id in student_ids:
        key = (zones.get(user_id, "UTC"), own.get(user_id))
        rule = made.get(key)
        if rule is None:
            zone, text = key
            ends = next_day_start(now, zone, hour=rules.day_starts_at_hour)
            parameters = json.loads(text or "null") or rules.parameters
            rule = made[key] = _RecallRule(ends - timedelta(microseconds=1), -float(parameters[20]))
        groups.setdefault(rule, []).append(user_id)
    return groups


def _per_student(groups: dict[_RecallRule, list[int]], value: Callable[[_RecallRule], Any],
                 type_: Any) -> ColumnElement[Any]:
    """One value for every student, or a CASE on the student when their rules differ."""
    ordered = sorted(groups.items(), key=lambda item: item[1][0])
    if len(ordered) == 1:
        return literal(value(ordered[0][0]), type_)
    whens = [(CardState.user_id.in_(ids), literal(value(rule), type_)) for rule, ids in ordered[:-1]]
    return case(*whens, else_=literal(value(ordered[-1][0]), type_))


def predicted_recall(session: Session, scheduler: Scheduler, *, student_ids: Sequence[int], now: datetime,
                     students: Mapping[int, Student] | None = None) -> ColumnElement[Any]:
    """FSRS predicted recall of each card state at `now`, as `scheduling.predicted_recall` works it out.

    Elapsed days are study days, counted as Anki counts them for its statistics: whole days of
    24 hours back from the end of the student's current study day (so a review earlier in the
    same study day is 0 days old, one yesterday 1). Across a daylight-saving change this can
    differ from the calendar count by one day for a review made within an hour of a day's start.
    The decay is each student's own (their fitted parameters, else the scheduler's). `students` are the
    class's (`ClassScope.students`) when the caller has read them already.
    """
    groups = _recall_rules(session, scheduler, student_ids=student_ids, now=now, students=students)
    _sqlite_has_power(session)
    until_us = _per_student(groups, lambda rule: (rule.last_instant - _EPOCH) // timedelta(microseconds=1),
                            BigInteger())
    decay = _per_student(groups, lambda rule: rule.decay, Float())
    factor = _per_student(groups, lambda rule: 0.9 ** (1 / rule.decay) - 1, Float())
    reviewed_us = CardState.last_review_us
    # Whole days from a review before the end of the study day: both databases divide whole numbers toward
    # zero, which for these is the floor. Each state is one pass through the CASE, and SQLite's cost is
    # the number of steps in it: the usual state is settled by the first test, the rest are rare.
    days = (until_us - reviewed_us) // literal(_DAY_US, BigInteger)
    # A plain division: the elapsed days times the factor are already a float (SQLAlchemy's `/` would add 0.0
    # to the stability to be sure of it, a step per state).
    recall = func.power(1 + (factor * days).op("/", return_type=Float())(CardState.stability), decay)
    return case((and_(reviewed_us < until_us, CardState.stability > 0), recall),
                (reviewed_us.is_(None), None),  # never reviewed: left out
                (CardState.stability > 0, 1.0),  # reviewed at or after the day's end: 0 days old, all recalled
                else_=0.0)  # no stability: at 0


class _CardNumbers(NamedTuple):
    card_id: int
    mean_recall: float | None
    students: int
    reviews: int | None
    again: int | None
    lapses: int | None


def _review_counts(session: Session, scope: ClassScope, card_ids: list[int]) -> dict[int, tuple[int, int, int]]:
    """The class's review counts of these cards, answers, Again answers and lapses, when the class holds most of
    the school: every account's sums, less those of the accounts outside the class that have card states."""
    if not card_ids:
        return {}
    counts = {card_id: [reps, again, lapses] for card_id, reps, again, lapses in session.execute(
        select(CardReviewCounts.card_id, CardReviewCounts.reps, CardReviewCounts.again_count,
               CardReviewCounts.lapses)
        .where(*([] if scope.every_deck else [_card_in(CardReviewCounts.card_id, card_ids, by_card=True)])))}
    if scope.studying_outsiders:
        for card_id, reps, again, lapses in session.execute(
                select(CardState.card_id, CardState.reps, CardState.again_count, CardState.lapses)
                .where(CardState.user_id.in_(scope.studying_outsiders))):
            if card_id in counts:
                own = counts[card_id]
                own[0], own[1], own[2] = own[0] - reps, own[1] - again, own[2] - lapses
    return {card_id: (reps, again, lapses) for card_id, (reps, again, lapses) in counts.items()}


def forgotten_cards(session: Session, scheduler: Scheduler, *, classroom_id: int, now: datetime,
                    limit: int | None = 20, card_id: int | None = None,
                    scope: ClassScope | None = None) -> list[CardRow]:
    """The class's cards, weakest first: lowest mean predicted recall now, then most Again answers.

    With `card_id`, only that card's row (if anyone has answered it). `scope` is the class's
    (`class_scope`), when the caller has read it already.
    """
    scope = scope or class_scope(session, classroom_id=classroom_id)
    students = scope.student_ids
    if not students:
        return []
    # SQLite groups by sorting, which costs more than the rest of a state's numbers. A class holding most of
    # the school has its states read card by card through the index on (card_id, user_id, ...), already in
    # order, skipping the few other students' rows; any other class has its students' states read through
    # the index on user_id and sorted, so that its cost follows the class and not the school.
    by_card = scope.most_of_the_school and session.get_bind().dialect.name == "sqlite"
    if card_id is None:
        in_decks = _of_the_decks(CardState.card_id, scope, by_card=by_card)
        active = _active(CardState.card_id, scope, by_card=by_card)
        in_scope = [condition for condition in (in_decks, active) if condition is not None]
    elif card_id in scope.card_decks and card_id not in scope.retired:
        in_scope = [CardState.card_id == card_id]
    else:
        return []
    # Grouped by an expression, not the column, when only some states are the class's: SQLite would otherwise
    # walk the index on card_id through every student of the school to save sorting the class's states. When
    # the states are read card by card, or all of them are the class's, the column lets the index's order serve.
    of_students = _of_the_students(scope)
    grouped_card = (CardState.card_id if by_card or of_students is None else CardState.card_id + 0).label("card_id")
    recall = func.avg(predicted_recall(session, scheduler, student_ids=students, now=now, students=scope.students))
    answered = func.count(CardState.last_review_us)
    numbers: dict[int, _CardNumbers]
    if by_card:
        # The review counts come summed over every account (SQLite keeps them: `CardReviewCounts`), less the
        # outsiders' own: summing three counts state by state costs a third of each state's work here.
        states = session.execute(select(grouped_card, recall, answered)
                                 .where(*([] if of_students is None else [of_students]), *in_scope)
                                 .group_by(grouped_card)).all()
        counts = _review_counts(session, scope, [card for card, _, _ in states])
        numbers = {}
        for card, mean_recall, students_answered in states:
            reviews, again, lapses = counts.get(card, (0, 0, 0))
            if students_answered or reviews > 0:
                numbers[card] = _CardNumbers(card, mean_recall, students_answered, reviews, again, lapses)
    else:
        numbers = {row[0]: _CardNumbers(*row) for row in session.execute(
            select(grouped_card, recall, answered, func.sum(CardState.reps), func.sum(CardState.again_count),
                   func.sum(CardState.lapses))
            .where(*([] if of_students is None else [of_students]), *in_scope)
            .group_by(grouped_card)
            .having(or_(answered > 0, func.sum(CardState.reps) > 0)))}
    if not numbers:
        return []

    def weakest_first(row: Any) -> tuple[float, float, int]:
        again_rate = row.again / row.reviews if row.reviews else 0.0
        return (row.mean_recall if row.mean_recall is not None else 2.0, -again_rate, row.card_id)

    chosen = sorted(numbers.values(), key=weakest_first)
    if limit is not None:
        chosen = chosen[:limit]
    # Plain tuples, not mapped objects nor rows: building a Card and a Note for every card costs more than reading
    # them, and reading a row's ten columns by name costs five times what the tuple below does.
    details = {card[0]: tuple(card)[1:] for card in session.execute(
        select(Card.id, Card.question, Card.answer, Deck.title, Note.key, Note.relation, Note.subject, Note.object,
               Note.section, Note.supplemented)
        .join(Note, Note.id == Card.note_id).join(Deck, Deck.id == Card.deck_id)
        .where(Card.id.in_(bindparam(None, [row.card_id for row in chosen], expanding=True, literal_execute=True)))
    )}
    rows = []
    for card_id, mean_recall, students_answered, answers, again_answers, lapse_count in chosen:
        card = details.get(card_id)
        if card is None:
            continue
        question, answer, deck_title, note_key, relation, subject, object_, section, supplemented = card
        rows.append(CardRow(card_id, question, answer, deck_title, note_key, relation, subject, object_, section,
                            supplemented, None if mean_recall is None else float(mean_recall), students_answered,
                            int(answers or 0), int(again_answers or 0), int(lapse_count or 0)))
    return rows


@dataclass
class DeckProgress:
    """One student's progress on one deck."""

    deck_id: int
    title: str
    total: int
    introduced: int
    due_now: int
    reviews_7d: int
    review_answers_30d: int
    recalled_30d: int

    @property
    def retention_30d(self) -> float | None:
        """True retention over the last 30 days (see `true_retention`)."""
        return true_retention(answers=self.review_answers_30d, recalled=self.recalled_30d)


def deck_progress(session: Session, *, user_id: int, deck_ids: list[int], now: datetime) -> list[DeckProgress]:
    """A student's progress on each of the given decks."""
    if not deck_ids:
        return []
    titles = dict(session.execute(select(Deck.id, Deck.title).where(Deck.id.in_(deck_ids))).all())
    totals = active_card_counts(session, deck_ids)
    states = {deck_id: (introduced, due) for deck_id, introduced, due in session.execute(
        select(Card.deck_id, func.count(CardState.id),
               func.count(CardState.id).filter(_as_stored(session, CardState.due) <= now))
        .join(Card, Card.id == CardState.card_id)
        .where(CardState.user_id == user_id, active_cards(deck_ids)).group_by(Card.deck_id))}
    reviews = {deck_id: (week, answers, recalled) for deck_id, week, answers, recalled in session.execute(
        select(Card.deck_id, *_window_counts(session, now=now))
        .join(Card, Card.id == ReviewLog.card_id)
        .where(ReviewLog.user_id == user_id, ReviewLog.reviewed_at >= now - MONTH, Card.deck_id.in_(deck_ids))
        .group_by(Card.deck_id))}
    result = []
    for deck_id in deck_ids:
        if deck_id not in titles:
            continue
        introduced, due = states.get(deck_id, (0, 0))
        week, answers, recalled = reviews.get(deck_id, (0, 0, 0))
        result.append(DeckProgress(deck_id, titles[deck_id], totals.get(deck_id, 0), introduced, due,
                                   week, answers, recalled))
    return result


# The FSRS optimizer's revlog layout, then each row's study-day rule (an IANA time zone and
# the hour a study day starts, as the optimizer asks for them), the student and the deck's card.
REVLOG_COLUMNS = ["card_id", "review_time", "review_rating", "review_state", "review_duration", "timezone",
                  "next_day_starts_at", "user", "deck_card_id"]
