"""FSRS glue: answer a card, preview the intervals, pick the next card, undo.

Time is always passed in as a timezone-aware UTC datetime; nothing here reads the clock.
The review log is the source of truth: `replay` rebuilds a card's state from it.

py-fsrs is the engine, and this module is its one adapter. The engine counts elapsed time
in 24-hour periods and fuzzes at random; the adapter makes it schedule as Anki and the FSRS
optimizers do: elapsed days are study days (the student's time zone and day-start hour),
review cards fall due on a study day, fuzz is seeded by the card and its review (so a
button's interval is the one scheduled), Hard < Good < Easy, and stability is capped.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections.abc import Collection, Iterable, Iterator, Sequence
from copy import copy
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from itertools import chain, groupby, repeat
from typing import Any, Protocol, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fsrs import Card as FsrsCard
from fsrs import Rating, Scheduler, State
from sqlalchemy import (
    Connection,
    Insert,
    Integer,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy import cast as cast_as
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import ScalarSelect, Subquery

from .errors import NotFound
from .models import (
    Card,
    CardState,
    Deck,
    DeckStateCounts,
    ExtraNewCards,
    Note,
    ReviewLog,
    ReviewOrigin,
    ReviewState,
    User,
    UTCDateTime,
    deck_visible_to,
    review_microseconds,
)
from .prepared import Prepared

RATINGS = (Rating.Again, Rating.Hard, Rating.Good, Rating.Easy)
C = TypeVar("C", bound=FsrsCard)
LEARN_AHEAD = timedelta(minutes=20)
# Anki's cap on how long one answer is taken to have lasted.
MAX_DURATION_MS = 60_000


# The longest stability FSRS keeps, in days (fsrs-rs, and so Anki, clamp at the same value).
STABILITY_MAX = 36500.0
# Anki's fuzz: from `start` days on, the range widens by `factor` of each further day.
FUZZ_RANGES = ((2.5, 7.0, 0.15), (7.0, 20.0, 0.1), (20.0, math.inf, 0.05))


# A card's memory state as a replay carries it: (state, step, stability, difficulty).
Memory = tuple[State, int | None, float | None, float | None]
# How many of the engine's answers are kept for replays (`memory_step`): at most about 26 MB (measured with every
# stability and difficulty a float of its own).
MEMORY_STEPS_KEPT = 1 << 16


class StudyScheduler(Scheduler):
    """The app's FSRS scheduler: py-fsrs's settings plus the day a student's study day starts.

    The adapter's functions (`preview_intervals`, `plan_answer`, `replay` ...) schedule with
    it; `review_card` on it directly is py-fsrs's own, with none of the adapter's rules.
    """

    day_starts_at_hour: int
    # Stability never exceeds the maximum interval (nor FSRS's own ceiling).
    stability_cap: float

    def __init__(self, *, day_starts_at_hour: int = 4, **settings: Any) -> None:
        super().__init__(**settings)
        self.day_starts_at_hour = day_starts_at_hour
        self.stability_cap = min(STABILITY_MAX, float(self.maximum_interval))
        # The engine works out memory states only; the adapter does the fuzz itself.
        self.engine = Scheduler(**{**settings, "enable_fuzzing": False})
        self._fresh: dict[Rating, FsrsCard] = {}

    def fresh_answered(self, card_id: int, rating: Rating, now: datetime) -> _ReplayCard:
        """What the engine makes of a card never answered (`to_fsrs_card` of no state), answered `rating` at `now`.

        The same for every such card but for its id and times, which move with `now`: the engine's
        answer is worked out once per rating, at a fixed time, and kept.
        """
        kept = self._fresh.get(rating)
        if kept is None:
            kept, _log = self.engine.review_card(FsrsCard(card_id=0, state=State.Learning, step=0, due=_FRESH_AT),
                                                 rating, _FRESH_AT)
            self._fresh[rating] = kept
        return _ReplayCard(card_id=card_id, state=kept.state, step=kept.step, stability=kept.stability,
                           difficulty=kept.difficulty, due=now + (kept.due - _FRESH_AT),
                           last_review=None if kept.last_review is None else now + (kept.last_review - _FRESH_AT))


# The engine's answers kept for replays (`memory_step`), for every scheduler together, by the scheduler's id. Each
# answer holds its scheduler too, so that no other scheduler can take that id while the answer is kept.
_MEMORY_STEPS: dict[tuple[Any, ...], tuple[StudyScheduler, Memory]] = {}


def memory_step(rules: StudyScheduler, state: State, step: int | None, stability: float | None,
                difficulty: float | None, rating: Rating, elapsed_days: int | None) -> Memory:
    """The memory state (state, step, stability, difficulty) after answering `rating`, `elapsed_days` study days
    after the last review (None: the card's first answer), stability capped, as `_memory_after` works it out.

    The engine's answer depends on nothing else, and replaying a class's reviews asks the same
    questions again and again (every card's first answers, the learning steps of the days after):
    the answers are kept, up to `MEMORY_STEPS_KEPT` of them at a time for all schedulers together. A review
    card's answer not kept is worked out by `_reviewed`, the others by the engine's `review_card`.
    """
    key = (id(rules), state, step, stability, difficulty, rating, elapsed_days)
    kept = _MEMORY_STEPS.get(key)
    if kept is None:
        memory: Memory
        if state == State.Review and elapsed_days is not None:
            # Most answers of a long history are to review cards, and most of those have not been asked before.
            memory = _reviewed(rules, step, cast(float, stability), cast(float, difficulty), rating, elapsed_days)
        else:
            now = _FRESH_AT
            # A `_ReplayCard`, which the engine copies cheaply; `_answered` moves its last review `elapsed_days` back.
            shown = _ReplayCard(card_id=0, state=state, step=step, stability=stability, difficulty=difficulty,
                                due=now, last_review=None if elapsed_days is None else now)
            after = _answered(rules.engine, shown, rating, now, elapsed_days or 0, rules.stability_cap)
            memory = (after.state, after.step, after.stability, after.difficulty)
        if len(_MEMORY_STEPS) >= MEMORY_STEPS_KEPT:
            _MEMORY_STEPS.clear()
        kept = _MEMORY_STEPS[key] = (rules, memory)
    return kept[1]


class _Recalled:
    """What py-fsrs reads of a card to work out its retrievability: its stability and last review."""

    __slots__ = ("last_review", "stability")

    def __init__(self, stability: float, last_review: datetime) -> None:
        self.stability = stability
        self.last_review = last_review


@lru_cache(maxsize=4096)
def _days_before_fresh(days: int) -> datetime:
    """`days` whole days before `_FRESH_AT`: a review card's last review as `_reviewed` shows it to the engine."""
    return _FRESH_AT - timedelta(days=days)


def _reviewed(rules: StudyScheduler, step: int | None, stability: float, difficulty: float, rating: Rating,
              elapsed_days: int) -> Memory:
    """The memory state after answering a review card `rating`, `elapsed_days` study days after its last review,
    stability capped: `review_card`'s review-card case, asked of the engine's own formulas.

    `review_card` also works out the next interval and due date, copies the card and writes a review log,
    none of which a memory state needs; skipping them takes about two fifths off an answer not kept
    (`tests/unit/test_scheduling.py` holds it to `review_card`'s answers, exactly).
    """
    engine = rules.engine
    if elapsed_days < 1:
        stability_after = engine._short_term_stability(stability=stability, rating=rating)
    else:
        shown = _Recalled(stability, _days_before_fresh(elapsed_days))
        recall = engine.get_card_retrievability(cast(FsrsCard, shown), current_datetime=_FRESH_AT)
        stability_after = engine._next_stability(difficulty=difficulty, stability=stability, retrievability=recall,
                                                 rating=rating)
    difficulty_after = engine._next_difficulty(difficulty=difficulty, rating=rating)
    stability_after = min(stability_after, rules.stability_cap)
    if rating == Rating.Again and engine.relearning_steps:
        return State.Relearning, 0, stability_after, difficulty_after
    return State.Review, step, stability_after, difficulty_after


def make_scheduler(*, desired_retention: float = 0.9, learning_steps_minutes: Sequence[float] = (1, 10),
                   relearning_steps_minutes: Sequence[float] = (10,), maximum_interval_days: int = 36500,
                   enable_fuzzing: bool = True, parameters: Sequence[float] | None = None,
                   day_starts_at_hour: int = 4) -> StudyScheduler:
    """The one FSRS scheduler an app uses, built from configuration values."""
    kwargs: dict[str, Any] = {}
    if parameters is not None:
        kwargs["parameters"] = tuple(parameters)
    return StudyScheduler(
        desired_retention=desired_retention,
        learning_steps=tuple(timedelta(minutes=m) for m in learning_steps_minutes),
        relearning_steps=tuple(timedelta(minutes=m) for m in relearning_steps_minutes),
        maximum_interval=maximum_interval_days,
        enable_fuzzing=enable_fuzzing,
        day_starts_at_hour=day_starts_at_hour,
        **kwargs,
    )


def study_scheduler(scheduler: Scheduler) -> StudyScheduler:
    """The scheduler as a `StudyScheduler` (a plain py-fsrs one gets the default 04:00 day start)."""
    if isinstance(scheduler, StudyScheduler):
        return scheduler
    return StudyScheduler(parameters=scheduler.parameters, desired_retention=scheduler.desired_retention,
                          learning_steps=scheduler.learning_steps, relearning_steps=scheduler.relearning_steps,
                          maximum_interval=scheduler.maximum_interval, enable_fuzzing=scheduler.enable_fuzzing)


def personal_scheduler(scheduler: Scheduler, *, parameters: Sequence[float] | None = None,
                       desired_retention: float | None = None) -> StudyScheduler:
    """The install's scheduler with a student's own parameters and desired retention (None: the install's).

    Schedulers are shared: one per combination of settings, made on first use.
    """
    rules = study_scheduler(scheduler)
    weights = rules.parameters if parameters is None else tuple(float(w) for w in parameters)
    retention = rules.desired_retention if desired_retention is None else float(desired_retention)
    if weights == tuple(rules.parameters) and retention == rules.desired_retention:
        return rules
    key = (weights, retention, tuple(rules.learning_steps), tuple(rules.relearning_steps), rules.maximum_interval,
           rules.enable_fuzzing, rules.day_starts_at_hour)
    made = _PERSONAL_SCHEDULERS.get(key)
    if made is None:
        made = StudyScheduler(parameters=weights, desired_retention=retention, learning_steps=rules.learning_steps,
                              relearning_steps=rules.relearning_steps, maximum_interval=rules.maximum_interval,
                              enable_fuzzing=rules.enable_fuzzing, day_starts_at_hour=rules.day_starts_at_hour)
        if len(_PERSONAL_SCHEDULERS) >= _PERSONAL_SCHEDULERS_KEPT:
            _PERSONAL_SCHEDULERS.clear()
        _PERSONAL_SCHEDULERS[key] = made
    return made


_PERSONAL_SCHEDULERS: dict[tuple[Any, ...], StudyScheduler] = {}
_PERSONAL_SCHEDULERS_KEPT = 4096


def without_fuzz(scheduler: Scheduler) -> StudyScheduler:
    """The same scheduler with fuzzing off (the scheduler itself when it has none)."""
    rules = study_scheduler(scheduler)
    if not rules.enable_fuzzing:
        return rules
    return StudyScheduler(parameters=rules.parameters, desired_retention=rules.desired_retention,
                          learning_steps=rules.learning_steps, relearning_steps=rules.relearning_steps,
                          maximum_interval=rules.maximum_interval, enable_fuzzing=False,
                          day_starts_at_hour=rules.day_starts_at_hour)


# The names of the zone that is UTC all year round (the accounts' default is "UTC").
UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "UCT", "Universal", "Zulu"})


def zone(name: str) -> ZoneInfo:
    """The named time zone, or UTC when the name is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True)
class StudyDays:
    """A student's study days: each begins at `hour` o'clock in their own time zone.

    Days are numbered as the local calendar date they begin on (`date.toordinal`).
    """

    time_zone: str
    hour: int = 4
    tz: tzinfo = field(init=False, repr=False, compare=False)
    _shift: timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        named = zone(self.time_zone)
        # UTC as Python's own fixed zone: a time already in UTC converts to it with no lookup, which makes a day
        # number about three times quicker (the same days: UTC has no changes of offset).
        object.__setattr__(self, "tz", timezone.utc if named.key in UTC_NAMES else named)
        object.__setattr__(self, "_shift", timedelta(hours=self.hour))

    def number(self, at: datetime) -> int:
        """The number of the study day `at` falls in."""
        # Called for every review a replay or a check reads: the local date's ordinal straight from the datetime.
        return (at.astimezone(self.tz) - self._shift).toordinal()

    def begins(self, number: int) -> datetime:
        """When study day `number` begins (UTC), honouring daylight-saving changes."""
        start = datetime.combine(date.fromordinal(number), time(self.hour), tzinfo=self.tz)
        return start.astimezone(timezone.utc)

    def elapsed(self, since: datetime, until: datetime) -> int:
        """Whole study days from `since` to `until` (0 within one study day), as Anki and the optimizers count."""
        return max(0, self.number(until) - self.number(since))

    def due_after(self, now: datetime, days: int) -> datetime:
        """When a card answered at `now` with an interval of `days` study days falls due (UTC).

        The same local time `days` days later, kept inside that study day, so that the card
        is due on the right day whatever the clocks did in between.
        """
        local = now.astimezone(self.tz).replace(tzinfo=None) + timedelta(days=days)
        due = local.replace(tzinfo=self.tz).astimezone(timezone.utc)
        day = self.number(now) + days
        first, following = self.begins(day), self.begins(day + 1)
        return min(max(due, first), following - timedelta(microseconds=1))


@lru_cache(maxsize=1024)
def _study_days(time_zone: str, hour: int) -> StudyDays:
    """The study days of a time zone and day-start hour, made once (a `StudyDays` is never changed)."""
    return StudyDays(time_zone, hour)


def day_start(now: datetime, time_zone: str, *, hour: int = 4) -> datetime:
    """When the user's current study day began (UTC): `hour` o'clock in their own time zone."""
    days = _study_days(time_zone, hour)
    return days.begins(days.number(now))


def next_day_start(now: datetime, time_zone: str, *, hour: int = 4) -> datetime:
    """When the user's next study day begins (UTC), honouring daylight-saving changes."""
    days = _study_days(time_zone, hour)
    return days.begins(days.number(now) + 1)


def anki_interval(answered: datetime, due: datetime, days: StudyDays, answered_day: int | None = None) -> int:
    """The interval an answer given at `answered` scheduled (the card due at `due`), as Anki's review log keeps one.

    Whole study days when the card fell due on a later study day (a review interval, or a
    learning step that runs past the day's end); otherwise minus the seconds until it fell due,
    at least one (a learning step within the day). A review's `last_interval` is this for the
    card's previous answer. `answered_day`, when given, is `days.number(answered)`, already worked out.
    """
    ahead = days.number(due) - (days.number(answered) if answered_day is None else answered_day)
    if ahead > 0:
        return ahead
    return -max(1, round((due - answered).total_seconds()))


class MemoryState(Protocol):
    """A user's stored memory state of a card: a `CardState`, or a row with its columns."""

    @property
    def state(self) -> State: ...
    @property
    def step(self) -> int | None: ...
    @property
    def stability(self) -> float | None: ...
    @property
    def difficulty(self) -> float | None: ...
    @property
    def due(self) -> datetime: ...
    @property
    def last_review(self) -> datetime | None: ...


class CountedState(MemoryState, Protocol):
    """A memory state with its review counts."""

    @property
    def reps(self) -> int: ...
    @property
    def lapses(self) -> int: ...
    @property
    def again_count(self) -> int: ...


def to_fsrs_card(card_id: int, state: MemoryState | None, now: datetime) -> FsrsCard:
    """The `fsrs.Card` for a user's state of a card (a fresh one when never answered)."""
    if state is None:
        return FsrsCard(card_id=card_id, state=State.Learning, step=0, due=now)
    return FsrsCard(card_id=card_id, state=state.state, step=state.step, stability=state.stability,
                    difficulty=state.difficulty, due=state.due, last_review=state.last_review)


def _round(value: float) -> int:
    """Half away from zero, as Anki rounds (Python's round() goes to the even neighbour)."""
    return math.floor(value + 0.5)


def _fuzz_bounds(interval: int, minimum: int, maximum: int) -> tuple[int, int]:
    """The days an interval may be fuzzed to, kept within [minimum, maximum] (Anki's rule)."""
    lower = upper = interval
    if interval >= 2.5:
        delta = 1.0 + sum(factor * max(min(float(interval), end) - start, 0.0) for start, end, factor in FUZZ_RANGES)
        lower, upper = max(2, _round(interval - delta)), _round(interval + delta)
    lower, upper = min(max(lower, minimum), maximum), min(max(upper, minimum), maximum)
    if lower == upper and 2 < upper < maximum:
        upper = lower + 1
    return lower, upper


def ideal_interval(scheduler: Scheduler, stability: float) -> float:
    """The days after which recall of a memory this stable falls to the desired retention (unrounded, unfuzzed)."""
    decay = -float(scheduler.parameters[20])
    factor = 0.9 ** (1 / decay) - 1
    return float(stability / factor * (float(scheduler.desired_retention) ** (1 / decay) - 1))


def _review_interval(rules: StudyScheduler, stability: float, *, minimum: int, fuzz: float | None) -> int:
    """Whole days until a review card with this stability is due: at least `minimum`, fuzzed by `fuzz`."""
    ideal = ideal_interval(rules, stability)
    maximum = max(1, rules.maximum_interval)
    minimum = min(max(1, minimum), maximum)
    interval = min(max(_round(ideal), 1, minimum), maximum)
    if fuzz is None:
        return interval
    lower, upper = _fuzz_bounds(interval, minimum, maximum)
    return math.floor(lower + fuzz * (1 + upper - lower))


def fuzz_factor(*, user_id: int, card_id: int, last_review: datetime | None) -> float:
    """The fuzz of one review of a card, in [0, 1): the same for the same student, card and card state.

    Anki seeds its fuzz with the card and its review count, so what a button shows is what
    answering does; the card's last review plays the part of the count here.
    """
    seed = f"{user_id}/{card_id}/{'new' if last_review is None else last_review.isoformat()}"
    digest = hashlib.blake2b(seed.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2 ** 64


def _memory_after(rules: StudyScheduler, card: FsrsCard, rating: Rating, now: datetime,
                  elapsed_days: int) -> FsrsCard:
    """The engine's answer with `elapsed_days` study days since the last review, stability capped.

    The engine counts whole 24-hour periods since `last_review`, so it is handed a last
    review exactly that many days back; the real one is kept.
    """
    return _answered(rules.engine, copy(card), rating, now, elapsed_days, rules.stability_cap)


def _answered(engine: Scheduler, shown: FsrsCard, rating: Rating, now: datetime, elapsed_days: int,
              stability_cap: float) -> FsrsCard:
    """`_memory_after` on a card of the caller's own, which it changes (its last review moves)."""
    if shown.last_review is not None:
        shown.last_review = now - timedelta(days=elapsed_days)
    after, _log = engine.review_card(shown, rating, now)
    return _capped(after, stability_cap)


def _capped(card: C, stability_cap: float) -> C:
    """The card with its stability kept at `stability_cap` at most (changed in place)."""
    if card.stability is not None and card.stability > stability_cap:
        card.stability = stability_cap
    return card


# When a fresh card's answers are worked out (`StudyScheduler.fresh_answered`): any time would do.
_FRESH_AT = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _is_fresh(card: FsrsCard) -> bool:
    """Whether a card is one never answered, as `to_fsrs_card` makes it for no state."""
    return (card.last_review is None and card.stability is None and card.difficulty is None
            and card.state == State.Learning and card.step == 0)


def schedule_answers(scheduler: Scheduler, card: FsrsCard, now: datetime, *, time_zone: str,
                     user_id: int, rating: Rating | None = None) -> dict[Rating, FsrsCard]:
    """The card after each of Again, Hard, Good and Easy at `now`: what the buttons show and answering stores.

    Elapsed days are study days in `time_zone`. A review card's interval is whole study days,
    fuzzed (when the scheduler fuzzes) by `fuzz_factor`, with Hard < Good < Easy as Anki
    keeps them: on a review card Good is at least Hard + 1 day and Easy at least Good + 1; on
    a learning card Easy is at least a day longer than Good would give on graduating.

    With `rating`, only what that answer stores is worked out: the card after it (and after the
    answers its interval is kept above); the other answers may be missing.
    """
    after, intervals, days = _answers(scheduler, card, now, time_zone=time_zone, user_id=user_id, rating=rating)
    for each, number in intervals.items():
        after[each].due = days.due_after(now, number)
    return {each: cast(_ReplayCard, answered).plain() for each, answered in after.items()}


def _answers(scheduler: Scheduler, card: FsrsCard, now: datetime, *, time_zone: str, user_id: int,
             rating: Rating | None = None) -> tuple[dict[Rating, FsrsCard], dict[Rating, int], StudyDays]:
    """`schedule_answers` before the due dates of review intervals: the cards after each answer (their own copies,
    a review card's due date not yet moved), the whole study days of each answer that makes a review card, and
    the study days they count in."""
    rules = study_scheduler(scheduler)
    days = _study_days(time_zone, rules.day_starts_at_hour)
    elapsed = 0 if card.last_review is None else days.elapsed(card.last_review, now)
    reviewing = card.state == State.Review
    needed = RATINGS if rating is None else _RATINGS_NEEDED[reviewing][rating]
    # Answered on copies that copy themselves cheaply (the engine copies the card it is given too); the
    # cards handed back are plain ones.
    after: dict[Rating, FsrsCard]
    if _is_fresh(card):
        after = {each: _capped(rules.fresh_answered(card.card_id, each, now), rules.stability_cap) for each in needed}
    else:
        shown = _ReplayCard(card_id=card.card_id, state=card.state, step=card.step, stability=card.stability,
                            difficulty=card.difficulty, due=card.due, last_review=card.last_review)
        after = {each: _memory_after(rules, shown, each, now, elapsed) for each in needed}
    # A learning card's answers make a review interval only when one graduates it (Easy, mostly): the others
    # need neither the fuzz nor Good's graduating interval.
    graduating = not reviewing and any(answered.state == State.Review for answered in after.values())
    fuzz = fuzz_factor(user_id=user_id, card_id=card.card_id, last_review=card.last_review) \
        if rules.enable_fuzzing and (reviewing or graduating) else None

    def interval(rating: Rating, minimum: int) -> int:
        stability = after[rating].stability
        assert stability is not None
        return _review_interval(rules, stability, minimum=minimum, fuzz=fuzz)

    intervals: dict[Rating, int] = {}
    if reviewing:
        minimum = 1
        for each in (Rating.Hard, Rating.Good, Rating.Easy):
            if each not in after:
                break  # the later ones are not needed
            intervals[each] = interval(each, minimum)
            minimum = intervals[each] + 1
        if Rating.Again in after and after[Rating.Again].state == State.Review:  # no relearning steps
            intervals[Rating.Again] = interval(Rating.Again, 1)
    elif graduating:
        graduating_good = interval(Rating.Good, 1)
        for each in after:
            if after[each].state == State.Review:
                intervals[each] = interval(each, graduating_good + 1 if each == Rating.Easy else 1)
    return after, intervals, days


# The answers `schedule_answers` works out for one answer, on a review card and on any other: Hard, Good
# and Easy each keep above the ones before; a learning card's Easy keeps above Good's graduating interval.
_RATINGS_NEEDED = {
    True: {Rating.Again: (Rating.Again,), Rating.Hard: (Rating.Hard,), Rating.Good: (Rating.Hard, Rating.Good),
           Rating.Easy: (Rating.Hard, Rating.Good, Rating.Easy)},
    False: {rating: tuple(sorted({Rating.Good, rating})) for rating in RATINGS},
}


def preview_intervals(scheduler: Scheduler, card_id: int, state: MemoryState | None, now: datetime, *,
                      time_zone: str, user_id: int) -> dict[Rating, timedelta]:
    """The interval each of Again, Hard, Good and Easy schedules now, fuzz included.

    A learning step is its time; a review interval is its whole number of study days.
    """
    # A review interval is the whole study days `schedule_answers` puts the due date ahead by (`due_after` keeps
    # it inside that day), taken before the date is worked out: the buttons need only the number.
    after, intervals, _days = _answers(scheduler, to_fsrs_card(card_id, state, now), now, time_zone=time_zone,
                                       user_id=user_id)
    return {rating: timedelta(days=intervals[rating]) if card.state == State.Review else card.due - now
            for rating, card in after.items()}


def rescheduled_due(scheduler: Scheduler, state: MemoryState, *, user_id: int, card_id: int,
                    time_zone: str) -> datetime | None:
    """When a review card falls due under `scheduler` (a student's parameters and desired retention), counted
    from its last review as answering it then would have scheduled, fuzz included; None for other cards."""
    if state.state != State.Review or state.stability is None or state.last_review is None:
        return None
    rules = study_scheduler(scheduler)
    fuzz = fuzz_factor(user_id=user_id, card_id=card_id, last_review=state.last_review) \
        if rules.enable_fuzzing else None
    days = _review_interval(rules, min(state.stability, rules.stability_cap), minimum=1, fuzz=fuzz)
    return StudyDays(time_zone, rules.day_starts_at_hour).due_after(state.last_review, days)


def predicted_recall(state: MemoryState, now: datetime, *, time_zone: str, day_starts_at_hour: int,
                     parameters: Sequence[float]) -> float | None:
    """FSRS's predicted recall of a card now, with elapsed time in study days, as the engine counts them.

    None for a card never reviewed; 0 for a state without a stability. `parameters` are the
    student's (their own, or the scheduler's defaults): the forgetting curve's decay is theirs.
    """
    if state.last_review is None:
        return None
    if state.stability is None or state.stability <= 0:
        return 0.0
    decay = -float(parameters[20])
    factor = 0.9 ** (1 / decay) - 1
    elapsed = StudyDays(time_zone, day_starts_at_hour).elapsed(state.last_review, now)
    return float((1 + factor * elapsed / state.stability) ** decay)


# Anki's units for the answer buttons: a month is a twelfth of a 365-day year.
_MINUTE = 60.0
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_YEAR = 365 * _DAY
_MONTH = _YEAR / 12


def format_interval(interval: timedelta) -> str:
    """An interval the way Anki writes it on its buttons: '20s', '6m', '1.5h', '30d', '2.5mo', '1.1y'.

    Seconds, minutes and days are whole; hours, months and years keep one decimal.
    """
    seconds = abs(interval.total_seconds())
    units = ((_YEAR, "y", False), (_MONTH, "mo", False), (_DAY, "d", True), (_HOUR, "h", False),
             (_MINUTE, "m", True), (1.0, "s", True))
    size, unit, whole = next(u for u in units if seconds >= u[0] or u[1] == "s")
    amount = seconds / size
    if whole:
        return f"{_round(amount)}{unit}"
    tenths = _round(amount * 10)
    return (f"{tenths // 10}" if tenths % 10 == 0 else f"{tenths / 10:.1f}") + unit


def button_label(interval: timedelta) -> str:
    """An answer button's interval as Anki labels it: '<' before one the card may be shown sooner than."""
    label = format_interval(interval)
    return f"<{label}" if interval < LEARN_AHEAD else label


@dataclass(frozen=True)
class DueCounts:
    new: int = 0
    learning: int = 0
    review: int = 0
    started: int = 0  # cards of the deck the user has answered at least once
    answered_today: int = 0  # answers given in the deck this study day
    unseen: int = 0  # cards of the deck never shown, whatever today's limit

    @property
    def total(self) -> int:
        return self.new + self.learning + self.review


def active_cards(deck_ids: list[int]) -> ColumnElement[bool]:
    """Cards of these decks that are still studied (not retired)."""
    return and_(Card.deck_id.in_(deck_ids), Card.retired.is_(False))


# The study screen's statements are built once, with their values bound at each call: building a
# statement and its cache key costs more Python time than SQLite takes to run it.
# Learning and relearning cards, as two comparisons rather than IN (...): a list of values is rendered into
# the statement's text again at every execution, which costs the study page more than running it.
_LEARNING = or_(CardState.state == State.Learning, CardState.state == State.Relearning)


def _count_states(*conditions: ColumnElement[bool]) -> ScalarSelect[int]:
    # `+ 0` keeps SQLite from walking every card of the deck by its index on deck_id: it walks the
    # student's own states instead, which is the smaller set while a deck is being learnt.
    return (select(func.count(CardState.id)).join(Card, Card.id == CardState.card_id)
            .where(Card.deck_id + 0 == Deck.id, Card.retired.is_(False), CardState.user_id == bindparam("user_id"),
                   *conditions)
            .scalar_subquery())


def _started() -> ColumnElement[int]:
    """The cards of the deck the user has a state for, retired cards left out.

    Reads the count the database's triggers keep per student and deck (`DeckStateCounts`, retired cards
    included) and takes away the student's states of the deck's retired cards, found from the few
    retired cards: nothing here walks the student's states, which grow all term.
    """
    kept = (select(DeckStateCounts.states)
            .where(DeckStateCounts.user_id == bindparam("user_id"), DeckStateCounts.deck_id == Deck.id)
            .scalar_subquery())
    # From the deck's retired cards (its queue index leads with deck and retired) to the student's state of each.
    retired = (select(func.count(CardState.id)).select_from(Card)
               .join(CardState, and_(CardState.card_id == Card.id, CardState.user_id == bindparam("user_id")))
               .where(Card.deck_id == Deck.id, Card.retired.is_(True))
               .scalar_subquery())
    return func.coalesce(kept, 0) - retired


# The student's answers of this study day.
_ANSWERED_TODAY = (ReviewLog.user_id == bindparam("user_id"),
                   ReviewLog.reviewed_at >= bindparam("day_begins", type_=UTCDateTime))


def _listed(dialect: str, column: ColumnElement[int] | InstrumentedAttribute[int]) -> ColumnElement[Any]:
    """The values of `column` as one value, repeats kept: a JSON list on SQLite, an array on PostgreSQL."""
    if dialect == "sqlite":
        return func.json_group_array(column)
    return func.array_agg(column)


def _today(dialect: str, *, listed: bool) -> Subquery:
    """The student's answers of this study day, per deck, in one walk of their own index on review_log: how many,
    and how many of them to cards that were new.

    With `listed` (the study page), those of the deck named by `slug` alone, with the cards answered as `_listed`
    lists them: one row, aggregated without grouping, which spares SQLite sorting every answer by its deck. And
    where the walk for the next new card may start (`new_from`, see `_NEW_FROM`).
    """
    columns = [func.count(ReviewLog.id).label("answered"),
               func.count(case((ReviewLog.state_before == ReviewState.NEW, 1))).label("introduced")]
    today = select().join(Card, Card.id == ReviewLog.card_id).where(*_ANSWERED_TODAY)
    if listed:
        deck_id = select(Deck.id).where(Deck.slug == bindparam("slug")).scalar_subquery()
        built_at = select(Deck.built_at).where(Deck.slug == bindparam("slug")).scalar_subquery()
        new_from = func.max(case((and_(ReviewLog.state_before == ReviewState.NEW,
                                       ReviewLog.origin == ReviewOrigin.APP,
                                       ReviewLog.reviewed_at >= built_at), Card.position)))
        return (today.add_columns(deck_id.label("deck_id"), *columns,
                                  _listed(dialect, ReviewLog.card_id).label("cards"), new_from.label("new_from"))
                .where(Card.deck_id == deck_id).subquery("today"))
    return today.add_columns(Card.deck_id.label("deck_id"), *columns).group_by(Card.deck_id).subquery("today")


# Whether the student answered the card of the state being counted this study day (by their index on card and time).
_ANSWERED_TODAY_EXISTS = select(ReviewLog.id).where(*_ANSWERED_TODAY, ReviewLog.card_id == CardState.card_id).exists()


def _counts(dialect: str, *, listed: bool = False) -> Select[Any]:
    """Each deck with the user's counts in it (`_due` reads them); with `listed`, the cards answered today too.

    Its values: `_count_values`, and the decks to count.
    """
    today = _today(dialect, listed=listed)
    statement = select(
        Deck.id,
        # As Anki counts them: learning cards due within the learn-ahead time, which are shown early.
        _count_states(_LEARNING, CardState.due <= bindparam("learn_until", type_=UTCDateTime)),
        # Reviews due, less those answered today: buried, as the notes of every card answered today are.
        _count_states(CardState.state == State.Review, CardState.due < bindparam("day_ends", type_=UTCDateTime),
                      ~_ANSWERED_TODAY_EXISTS),
        _started(),
        # Kept by every build of the deck rather than counted here.
        Deck.active_cards,
        # New cards introduced today (answers given to cards that were new when shown), and every answer given.
        func.coalesce(today.c.introduced, 0),
        func.coalesce(today.c.answered, 0),
        # More new cards the student asked for today, on top of the daily limit.
        select(func.coalesce(func.sum(ExtraNewCards.count), 0))
        .where(ExtraNewCards.deck_id == Deck.id, ExtraNewCards.user_id == bindparam("user_id"),
               ExtraNewCards.granted_at >= bindparam("day_begins", type_=UTCDateTime)).scalar_subquery(),
        Deck.title,
        Deck.built_at,
    ).select_from(Deck).outerjoin(today, today.c.deck_id == Deck.id)
    if listed:
        statement = statement.add_columns(today.c.cards, today.c.new_from)
    return statement


_DIALECTS = ("sqlite", "postgresql")
_DUE_COUNTS = {d: _counts(d).where(Deck.id.in_(bindparam("deck_ids", expanding=True))) for d in _DIALECTS}
# The cards a student answered today, in any deck: a few dozen, read from the student's own index.
_ANSWERED_CARDS = select(ReviewLog.card_id).where(*_ANSWERED_TODAY).distinct()
# By slug, for the study page: with whether the user may see the deck and the cards they answered in it today
# (what burying starts from), so that one query serves all three.
_DUE_COUNTS_BY_SLUG = {d: Prepared(_counts(d, listed=True)
                                   .add_columns(case((deck_visible_to(bindparam("user_id")), True), else_=False))
                                   .where(Deck.slug == bindparam("slug")))
                       for d in _DIALECTS}


def _count_values(*, user_id: int, now: datetime, day_begins: datetime, day_ends: datetime) -> dict[str, Any]:
    """What the counts statements (`_counts`) are given, bar the decks."""
    return {"user_id": user_id, "learn_until": now + LEARN_AHEAD, "day_begins": day_begins, "day_ends": day_ends}


def answered_card_ids(dialect: str, listed: Any) -> list[int]:
    """The card ids `_listed` gives on this dialect, as a list, each once."""
    if not listed:
        return []
    ids = listed if dialect == "postgresql" else cast(list[int], json.loads(listed))
    return list(dict.fromkeys(ids))


def _due(learning: int, review: int, started: int, total: int, introduced: int, answered: int, extra: int, *,
         new_per_day: int) -> DueCounts:
    allowed = max(0, new_per_day + extra - introduced)
    unseen = max(0, total - started)
    return DueCounts(new=min(unseen, allowed), learning=learning, review=review, started=started,
                     answered_today=answered, unseen=unseen)


def active_card_counts(session: Session, deck_ids: list[int]) -> dict[int, int]:
    """How many active cards each of these decks has (decks without any are left out)."""
    if not deck_ids:
        return {}
    rows = session.execute(
        select(Card.deck_id, func.count(Card.id)).where(active_cards(deck_ids)).group_by(Card.deck_id))
    return dict(rows.all())


def due_counts(session: Session, *, user_id: int, deck_ids: list[int], now: datetime, day_begins: datetime,
               day_ends: datetime, new_per_day: int) -> dict[int, DueCounts]:
    """New (still allowed today), learning and review (due today) counts per deck, in one query.

    Learning cards are counted as Anki counts them: those due within the learn-ahead time too,
    since they are shown early once nothing else is left.
    """
    if not deck_ids:
        return {}
    values = _count_values(user_id=user_id, now=now, day_begins=day_begins, day_ends=day_ends)
    rows = session.execute(_DUE_COUNTS[session.get_bind().dialect.name], {**values, "deck_ids": list(deck_ids)})
    result = {deck_id: _due(*counts, new_per_day=new_per_day) for deck_id, *counts, _title, _built_at in rows}
    for deck_id in deck_ids:
        result.setdefault(deck_id, DueCounts())
    return result


@dataclass(frozen=True)
class DeckDue:
    """A deck found by its slug, with the user's counts in it."""

    deck_id: int
    title: str
    counts: DueCounts
    built_at: datetime  # which build of the deck this is (`buried_notes` keys its sibling map by it)
    visible: bool  # whether the user may see and study it (`deck_visible_to`)
    answered_cards: list[int]  # the deck's cards the user answered today (`buried_notes` starts from them)
    new_from: int | None = None  # where the walk for the next new card may start (`_NEW_FROM`); None: the start


def deck_due_counts(session: Session, *, user_id: int, slug: str, now: datetime, day_begins: datetime,
                    day_ends: datetime, new_per_day: int) -> DeckDue | None:
    """The deck with this slug, the user's counts in it (as `due_counts`) and whether they may see it, in one
    query; None: no such deck."""
    connection = session.connection()
    dialect = connection.dialect.name
    row = _DUE_COUNTS_BY_SLUG[dialect].first(connection, {
        **_count_values(user_id=user_id, now=now, day_begins=day_begins, day_ends=day_ends), "slug": slug})
    if row is None:
        return None
    deck_id, *counts, title, built_at, answered, new_from, visible = row
    return DeckDue(deck_id, title, _due(*counts, new_per_day=new_per_day), built_at, bool(visible),
                   answered_card_ids(dialect, answered), new_from)


# The queue's statements read plain rows: what the study page shows of a card and its note, and the
# user's state of it (NULLs for a new card).
_SHOWN_COLUMNS = (Card.id, Card.question, Card.answer, Note.explanation, Note.section, Note.supplemented)
_STATE_COLUMNS = (CardState.state, CardState.step, CardState.stability, CardState.difficulty, CardState.due,
                  CardState.last_review)
_SCHEDULED = (select(*_SHOWN_COLUMNS, *_STATE_COLUMNS).select_from(Card)
              .join(CardState, CardState.card_id == Card.id).join(Note, Note.id == Card.note_id)
              .where(CardState.user_id == bindparam("user_id"), Card.deck_id == bindparam("deck_id"),
                     Card.retired.is_(False))
              .order_by(CardState.due, Card.position).limit(1))
# Learning cards due within the learn-ahead time, reviews due today. Learning cards are due at the moment their
# last answer set, so two are never due at once in practice: ordered by due and card, as the student's index on
# due holds them, the first is read off the index where ordering by position sorted every learning card due.
_LEARNING_SOON = (_SCHEDULED.where(_LEARNING, CardState.due <= bindparam("learn_until", type_=UTCDateTime))
                  .order_by(None).order_by(CardState.due, CardState.card_id))
_REVIEW_DUE = _SCHEDULED.where(CardState.state == State.Review,
                               CardState.due < bindparam("day_ends", type_=UTCDateTime))
# The first card by position that the user has no state for (a look-up per card, in order), from `new_from` on.
#
# The walk passes every card the student has started before it finds one, so it would grow all term. It starts
# instead at the highest position among the new cards the student was given in the app today (since the deck's
# last build): when that card was shown, each card not started below it was buried (the queue gives the first
# new card not buried), and stays buried all day, for undo takes back the deck's answers last first. So the walk
# passes only the cards introduced since. Answers brought back from Anki are left out (Anki chose those cards),
# and so are the answers given before a build, which may have put new cards below them.
_NEW_FROM = -(2**31)  # no bound: every position
_FIRST_NEW = (select(*_SHOWN_COLUMNS).select_from(Card).join(Note, Note.id == Card.note_id)
              .where(Card.deck_id == bindparam("deck_id"), Card.retired.is_(False),
                     Card.position >= bindparam("new_from"),
                     ~select(CardState.id).where(CardState.user_id == bindparam("user_id"),
                                                 CardState.card_id == Card.id).exists())
              .order_by(Card.position).limit(1))


# One card of a deck, active, with the user's state of it if any (the card just undone).
_ONE_CARD = (select(*_SHOWN_COLUMNS, *_STATE_COLUMNS).select_from(Card).join(Note, Note.id == Card.note_id)
             .outerjoin(CardState, and_(CardState.card_id == Card.id, CardState.user_id == bindparam("user_id")))
             .where(Card.id == bindparam("card_id"), Card.deck_id == bindparam("deck_id"), Card.retired.is_(False)))


@dataclass(frozen=True)
class QueuedCard:
    """A card to show, as the study page shows it, with the user's state of it (None: a new card)."""

    card_id: int
    question: str
    answer: str
    explanation: str
    section: str
    supplemented: bool
    state: MemoryState | None

    @classmethod
    def of(cls, row: Any) -> QueuedCard:
        """From a row of the queue's statements (a new card's state columns are NULL or missing)."""
        state = row if len(row) > 6 and row.state is not None else None
        return cls(row.id, row.question, row.answer, row.explanation, row.section, row.supplemented, state)


def queued_card(session: Session, *, user_id: int, deck_id: int, card_id: int) -> QueuedCard | None:
    """One active card of a deck, as `next_queued_card` gives it (None: not an active card of the deck)."""
    row = session.connection().execute(_ONE_CARD, {"user_id": user_id, "deck_id": deck_id,
                                                   "card_id": card_id}).first()
    return None if row is None else QueuedCard.of(row)


# What burying needs of a deck, kept in this process for each build of the deck: its notes by the words
# that make them siblings, and its cards by note. Keyed by the deck's `built_at`, which every build that
# changes a note or a card moves on, so a worker never keeps a map older than the deck it reads; a build
# in this process also forgets it at once. With it, burying reads only the student's own rows, whatever
# the database's statistics say about the deck's tables.
_SIBLINGS: dict[int, tuple[datetime, _SiblingMap]] = {}
_SIBLINGS_KEPT = 64


@dataclass(frozen=True)
class _SiblingMap:
    buries: dict[int, frozenset[int]]  # card id -> the notes its answer buries (its own and its siblings), every card
    active_cards: dict[int, tuple[int, ...]]  # note id -> its cards that are not retired


_DECK_NOTES = select(Note.id, Note.subject, Note.object).where(Note.deck_id == bindparam("deck_id"))
_DECK_CARDS = select(Card.id, Card.note_id, Card.retired).where(Card.deck_id == bindparam("deck_id"))
_DECK_BUILT_AT = select(Deck.built_at).where(Deck.id == bindparam("deck_id"))


def forget_siblings(deck_id: int | None = None) -> None:
    """Drop this process's sibling map of a deck (of every deck with None): its notes or cards changed."""
    if deck_id is None:
        _SIBLINGS.clear()
    else:
        _SIBLINGS.pop(deck_id, None)


def _sibling_map(connection: Connection, deck_id: int, built_at: datetime | None) -> _SiblingMap:
    if built_at is None:
        built_at = connection.execute(_DECK_BUILT_AT, {"deck_id": deck_id}).scalar_one()
    kept = _SIBLINGS.get(deck_id)
    if kept is not None and kept[0] == built_at:
        return kept[1]
    terms: dict[int, tuple[str, str]] = {}
    by_term: dict[str, set[int]] = {}
    for note_id, subject, obj in connection.execute(_DECK_NOTES, {"deck_id": deck_id}):
        pair = (subject.lower(), obj.lower())
        terms[note_id] = pair
        for term in pair:
            by_term.setdefault(term, set()).add(note_id)
    # What answering a card of each note buries, worked out once for the build rather than on every page.
    siblings = {note_id: frozenset(by_term[subject] | by_term[obj]) for note_id, (subject, obj) in terms.items()}
    buries: dict[int, frozenset[int]] = {}
    active: dict[int, list[int]] = {}
    for card_id, note_id, retired in connection.execute(_DECK_CARDS, {"deck_id": deck_id}):
        buries[card_id] = siblings[note_id]
        if not retired:
            active.setdefault(note_id, []).append(card_id)
    made = _SiblingMap(buries, {note_id: tuple(ids) for note_id, ids in active.items()})
    if len(_SIBLINGS) >= _SIBLINGS_KEPT:
        _SIBLINGS.clear()
    _SIBLINGS[deck_id] = (built_at, made)
    return made


_NO_NOTES: frozenset[int] = frozenset()


def answered_today(session: Session, *, user_id: int, day_begins: datetime) -> list[int]:
    """The cards the user answered this study day, in any deck, each once."""
    return list(session.connection().execute(_ANSWERED_CARDS, {"user_id": user_id,
                                                               "day_begins": day_begins}).scalars())


def buried_notes(session: Session, *, user_id: int, deck_id: int, day_begins: datetime,
                 built_at: datetime | None = None, answered: Collection[int] | None = None) -> frozenset[int]:
    """The notes of a deck whose new and review cards are buried for the rest of the study day.

    As Anki buries the other cards of a note once one is answered, until the next study day;
    and further: notes sharing a subject or an object with a note answered today are siblings
    too (a fact and the grouped question that lists it, two facts about one muscle), so that
    cards do not give each other away. Learning cards are never buried. `built_at` is the
    deck's, and `answered` the cards the user answered today, in this deck (`DeckDue.answered_cards`) or
    in any; both are read here when not given.
    """
    connection = session.connection()
    if answered is None:
        answered = answered_today(session, user_id=user_id, day_begins=day_begins)
    if not answered:
        return frozenset()
    buries = _sibling_map(connection, deck_id, built_at).buries
    # Cards of other decks bury nothing here.
    return _NO_NOTES.union(*map(buries.get, answered, repeat(_NO_NOTES)))


def id_set(dialect: str) -> Select[tuple[int]]:
    """The ids given as one parameter, `ids`, as a subquery (`id_set_value` makes the value).

    One parameter, however many ids there are: the buried cards grow all day (each answer buries
    a few), and rendering a parameter for each costs more than the query.
    """
    if dialect == "postgresql":
        return select(func.unnest(bindparam("ids", type_=ARRAY(Integer))).column_valued())
    return select(func.json_each(bindparam("ids", type_=String)).table_valued("value").c.value)


def id_set_value(dialect: str, ids: Iterable[int]) -> object:
    """The value of `id_set`'s parameter on this dialect: an array on PostgreSQL, a JSON list on SQLite."""
    listed = sorted(ids)
    return listed if dialect == "postgresql" else json.dumps(listed)


# A new card's state columns, NULL as the types they stand for (a union's columns must agree on PostgreSQL).
_NO_STATE = tuple(cast_as(null(), column.type).label(column.key) for column in _STATE_COLUMNS)
# Where a card to show comes from, shown in this order: learning due now, reviews due today, new cards, and
# learning due within the learn-ahead time (the learning card due first is either the first or the last).
_QUEUE_ORDER = {"learning now": 0, "review": 1, "new": 2, "learning ahead": 3}


@lru_cache(maxsize=64)
def _queue_statement(dialect: str, learning: bool, review: bool, new: bool, buried: bool,
                     answered: bool = False) -> Select[Any]:
    """The one statement that finds the next card among the queues that have any (as the counts say).

    Each queue gives its first card, and the first of those in `_QUEUE_ORDER` is the one shown: one
    round trip where asking each queue in turn took two or three. With `buried`, new and review cards
    of the cards given as `ids` (`id_set`) are left out; with `answered` too, `ids` need only be the buried
    cards not answered today (from `day_begins`), the review cards answered today being left out by a look-up
    of each in the student's answers (a card answered today is never new). Made once for each combination.
    """
    ahead = case((CardState.due <= bindparam("now", type_=UTCDateTime), _QUEUE_ORDER["learning now"]),
                 else_=_QUEUE_ORDER["learning ahead"])
    arms: list[Select[Any]] = []
    if learning:
        arms.append(_LEARNING_SOON.add_columns(ahead.label("queue")))
    if review:
        reviews = _REVIEW_DUE.where(Card.id.not_in(id_set(dialect))) if buried else _REVIEW_DUE
        if answered:
            reviews = reviews.where(~_ANSWERED_TODAY_EXISTS)
        arms.append(reviews.add_columns(literal_column(str(_QUEUE_ORDER["review"]), Integer).label("queue")))
    if new:
        first_new = _FIRST_NEW.where(Card.id.not_in(id_set(dialect))) if buried else _FIRST_NEW
        arms.append(first_new.add_columns(*_NO_STATE,
                                          literal_column(str(_QUEUE_ORDER["new"]), Integer).label("queue")))
    if len(arms) == 1:
        return arms[0]
    queued = union_all(*(select(arm.subquery()) for arm in arms)).subquery()
    return select(queued).order_by(queued.c.queue).limit(1)


def _buried_states(dialect: str) -> Select[int, int]:
    """How many of the cards given as `ids` the student has started, and how many of those are reviews due today
    that they did not answer today (the counts leave those out already).

    Each card's state is looked up by the unique index on user and card: the outer join keeps the ids the
    outer loop, where SQLite would otherwise walk every state the student has (its plan cannot tell how few
    ids a parameter holds).
    """
    ids = id_set(dialect).subquery("buried")
    return (select(func.count(CardState.id).label("buried_started"),
                   func.count(case((and_(CardState.state == State.Review,
                                         CardState.due < bindparam("day_ends", type_=UTCDateTime),
                                         ~_ANSWERED_TODAY_EXISTS), 1)))
                   .label("buried_reviews"))
            .select_from(ids)
            .outerjoin(CardState, and_(CardState.user_id == bindparam("user_id"),
                                       CardState.card_id == ids.c[0])))


_BURIED_STATES = {d: _buried_states(d) for d in _DIALECTS}


def buried_cards(session: Session, *, deck_id: int, buried: frozenset[int],
                 built_at: datetime | None = None) -> list[int]:
    """The active cards of the buried notes of a deck (`buried_notes`)."""
    if not buried:
        return []
    active = _sibling_map(session.connection(), deck_id, built_at).active_cards
    return list(chain.from_iterable(map(active.get, buried, repeat(()))))


def _not_answered(cards: list[int], answered: Collection[int]) -> tuple[list[int], int]:
    """The buried `cards` not among the cards answered today, and how many of them are.

    A card answered today is started (its answer wrote its state) and the counts leave it out of the reviews
    due already, so only the others need looking up.
    """
    done = set(answered)
    others = [card_id for card_id in cards if card_id not in done]
    return others, len(cards) - len(others)


def without_buried(session: Session, counts: DueCounts, *, user_id: int, deck_id: int, day_begins: datetime,
                   day_ends: datetime, buried: frozenset[int], built_at: datetime | None = None,
                   cards: list[int] | None = None, answered: Collection[int] = ()) -> DueCounts:
    """The counts less the buried cards: reviews due today (those not answered today, which the counts leave
    out already) and new cards of the buried notes.

    `cards` are the buried notes' active cards (`buried_cards`), found here when not given; `answered` the
    cards answered today, in this deck or in any, when at hand (only the other buried cards are looked up).
    """
    if not buried:
        return counts
    if cards is None:
        cards = buried_cards(session, deck_id=deck_id, buried=buried, built_at=built_at)
    others, answered_active = _not_answered(cards, answered)
    connection = session.connection()
    started, reviews = connection.execute(_BURIED_STATES[connection.dialect.name], {
        "user_id": user_id, "day_begins": day_begins, "day_ends": day_ends,
        "ids": id_set_value(connection.dialect.name, others)}).one()
    return _less_buried(counts, cards, started=answered_active + started, reviews=reviews)


@lru_cache(maxsize=16)
def _unburied_queue_statement(dialect: str, learning: bool, review: bool, new: bool) -> Prepared:
    """`_BURIED_STATES` and `_queue_statement` in one: always one row, the card's columns NULL when there is none."""
    counted = _BURIED_STATES[dialect].subquery()
    queued = _queue_statement(dialect, learning, review, new, True, True).subquery()
    return Prepared(select(counted, queued).select_from(counted.outerjoin(queued, true())))


def unburied_queue(session: Session, *, user_id: int, deck_id: int, now: datetime, day_begins: datetime,
                   day_ends: datetime, counts: DueCounts, buried_card_ids: list[int],
                   answered: Sequence[int], new_from: int | None = None) -> tuple[DueCounts, QueuedCard | None]:
    """`without_buried` and `next_queued_card` together, for cards of buried notes (`buried_cards`): one query.

    `answered` are the deck's cards answered today (`DeckDue.answered_cards`). Those are buried (burying starts
    from them), started, and left out of the counts' reviews already, so only the other buried cards, the few
    siblings not answered today, are looked up here: the query does not grow with the day's answers. The
    queues are those the counts before burying have: a queue left empty by burying gives no card anyway, its
    buried cards being left out; and no new card is looked for while a review is sure to come first
    (`_new_needed`). `new_from` is where the walk for a new card starts (`DeckDue.new_from`, see `_NEW_FROM`).
    """
    if not (counts.learning or counts.review or counts.new):
        return without_buried(session, counts, user_id=user_id, deck_id=deck_id, day_begins=day_begins,
                              day_ends=day_ends, buried=frozenset(buried_card_ids), cards=buried_card_ids,
                              answered=answered), None
    siblings, answered_active = _not_answered(buried_card_ids, answered)
    connection = session.connection()
    dialect = connection.dialect.name
    values = {"user_id": user_id, "day_begins": day_begins, "day_ends": day_ends,
              "ids": id_set_value(dialect, siblings), "deck_id": deck_id, "now": now,
              "learn_until": now + LEARN_AHEAD, "new_from": _NEW_FROM if new_from is None else new_from}
    new = _new_needed(counts, len(siblings))
    statement = _unburied_queue_statement(dialect, bool(counts.learning), bool(counts.review), new)
    row = statement.one(connection, values)
    less = _less_buried(counts, buried_card_ids, started=answered_active + row.buried_started,
                        reviews=row.buried_reviews)
    if new and less.new and new_from is not None and (row.id is None or row.queue > _QUEUE_ORDER["new"]):
        # A new card is left, yet none from `new_from` on: one below it was unburied after the card at
        # `new_from` was shown (an undo in another window, say, before that card was answered). Walk them all.
        row = statement.one(connection, {**values, "new_from": _NEW_FROM})
    return less, None if row.id is None else QueuedCard.of(row)


def _new_needed(counts: DueCounts, buried_count: int) -> bool:
    """Whether the queue must look for a new card: there may be some, and burying may leave no review due before
    them (the counts' reviews leave out those answered today; each of the `buried_count` buried cards not answered
    today may be one)."""
    return bool(counts.new) and counts.review <= buried_count


def _less_buried(counts: DueCounts, cards: list[int], *, started: int, reviews: int) -> DueCounts:
    """The counts less the buried `cards`, of which the student started `started`, `reviews` of them reviews due."""
    left = max(0, counts.unseen - (len(cards) - started))
    # Made outright rather than with dataclasses.replace, which looks the fields up again on every call.
    return DueCounts(new=min(counts.new, left), learning=counts.learning, review=max(0, counts.review - reviews),
                     started=counts.started, answered_today=counts.answered_today, unseen=left)


def next_queued_card(session: Session, *, user_id: int, deck_id: int, now: datetime, day_ends: datetime,
                     counts: DueCounts, buried: frozenset[int] = frozenset(),
                     buried_card_ids: list[int] | None = None) -> QueuedCard | None:
    """The card to show next (None: nothing for now), from the deck's `due_counts`, in a single query.

    Learning cards due now come first, then reviews due today, then new cards up
    to the daily limit; with nothing else left, a learning card due within the
    next 20 minutes is shown early, as Anki does. New and review cards of the
    `buried` notes (`buried_notes`; their active cards `buried_card_ids` when at hand)
    are left for the next study day.
    """
    if not (counts.learning or counts.review or counts.new):
        return None
    connection = session.connection()
    dialect = connection.dialect.name
    values: dict[str, Any] = {"user_id": user_id, "deck_id": deck_id, "now": now, "learn_until": now + LEARN_AHEAD,
                              "day_ends": day_ends, "new_from": _NEW_FROM}
    if buried:
        if buried_card_ids is None:
            buried_card_ids = buried_cards(session, deck_id=deck_id, buried=buried)
        values["ids"] = id_set_value(dialect, buried_card_ids)
    statement = _queue_statement(dialect, bool(counts.learning), bool(counts.review),
                                 _new_needed(counts, len(buried_card_ids or ())), bool(buried))
    found = connection.execute(statement, values).first()
    return None if found is None else QueuedCard.of(found)


def next_card(session: Session, *, user_id: int, deck_id: int, now: datetime, day_begins: datetime,
              day_ends: datetime, new_per_day: int, counts: DueCounts | None = None,
              buried: frozenset[int] = frozenset()) -> tuple[Card, CardState | None] | None:
    """The card to show next (`next_queued_card`), loaded with the user's state of it (None for a new card)."""
    if counts is None:
        counts = due_counts(session, user_id=user_id, deck_ids=[deck_id], now=now, day_begins=day_begins,
                            day_ends=day_ends, new_per_day=new_per_day)[deck_id]
    queued = next_queued_card(session, user_id=user_id, deck_id=deck_id, now=now, day_ends=day_ends, counts=counts,
                              buried=buried)
    if queued is None:
        return None
    card = session.get(Card, queued.card_id)
    assert card is not None  # just read
    state = None if queued.state is None else session.scalar(
        select(CardState).where(CardState.user_id == user_id, CardState.card_id == queued.card_id))
    return card, state


def state_stamp(state: MemoryState | None) -> str:
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
    recorded: PlannedReview | None = None  # the values of the recorded answer's review row

    @property
    def review(self) -> ReviewLog | None:
        """The recorded answer as a review row (not attached to the session), made when asked for."""
        if self.recorded is None:
            return None
        return ReviewLog(**{name: getattr(self.recorded, name) for name in _REVIEW_COLUMNS})


@dataclass(frozen=True, slots=True)
class PlannedReview:
    """The values of the review row an answer writes (its columns of `ReviewLog`): plain, as the answer runs
    where a mapped object cost more to make than the rest of planning it."""

    user_id: int
    card_id: int
    rating: Rating
    reviewed_at: datetime
    duration_ms: int | None
    state_before: ReviewState
    due: datetime
    token: str
    last_interval: int


class StateChanged(Exception):
    """The card's state moved between reading it and writing the answer: roll back, then look again."""


@dataclass(frozen=True)
class PlannedAnswer:
    """An answer worked out from one read of the card's state, ready to be written."""

    review: PlannedReview
    after: FsrsCard
    counts: ReviewCounts
    previous_review: datetime | None  # the state's version it was worked out from (None: a new card)


# Read once per answer: the card, and the user's state of it if any.
_CARD_AND_STATE = Prepared(
    select(Card.retired, Deck.slug, CardState.state, CardState.step, CardState.stability, CardState.difficulty,
           CardState.due, CardState.last_review, CardState.reps, CardState.lapses, CardState.again_count,
           User.time_zone)
    .join(Deck, Deck.id == Card.deck_id)
    .join(User, User.id == bindparam("user_id"))
    .outerjoin(CardState, and_(CardState.card_id == Card.id, CardState.user_id == bindparam("user_id")))
    .where(Card.id == bindparam("card_id"))
)
_TOKEN_USED = select(ReviewLog.id).where(ReviewLog.token == bindparam("token"))


def repeat_or_stale(session: Session, token: str) -> Answer:
    """Why a showing's answer was not written: its token was used (a repeat), or the card moved on."""
    # A copy of this very answer may have been committed since (double click, resend): that is a
    # repeat, not an answer given in another window.
    if session.scalar(_TOKEN_USED, {"token": token}) is not None:
        return Answer(Outcome.DUPLICATE)
    return Answer(Outcome.STALE)


def plan_answer(session: Session, scheduler: Scheduler, *, user_id: int, card_id: int, rating: Rating,
                token: str, now: datetime, shown_stamp: str | None = None, duration_ms: int | None = None,
                deck_slug: str | None = None) -> PlannedAnswer | Answer:
    """Work out what answering one showing of a card writes, from one read (no write, no lock).

    Returns the Answer outright when nothing is to be written: an unknown or retired card, or a
    showing made stale (or already answered) since `shown_stamp` (from `state_stamp`) was taken.
    Without a stamp, a token already used is a repeat. With `deck_slug`, a card of another deck
    (or none) is NotFound.
    """
    if shown_stamp is None and session.scalar(_TOKEN_USED, {"token": token}) is not None:
        return Answer(Outcome.DUPLICATE)
    row = _CARD_AND_STATE.first(session.connection(), {"user_id": user_id, "card_id": card_id})
    if deck_slug is not None and (row is None or row.slug != deck_slug):
        raise NotFound("There is no such card in this deck.")
    if row is None or row.retired:
        return Answer(Outcome.UNAVAILABLE)
    state: CountedState | None = None if row.state is None else row
    if shown_stamp is not None and shown_stamp != state_stamp(state):
        return repeat_or_stale(session, token)
    if duration_ms is not None:
        duration_ms = max(0, min(int(duration_ms), MAX_DURATION_MS))
    after = schedule_answers(scheduler, to_fsrs_card(card_id, state, now), now, time_zone=row.time_zone,
                             user_id=user_id, rating=rating)[rating]
    state_before = ReviewState.NEW if state is None else ReviewState(state.state)
    # The card's state keeps its last answer's time and due date: the interval the card has now.
    last_interval = 0 if state is None or state.last_review is None else anki_interval(
        state.last_review, state.due, _study_days(row.time_zone, study_scheduler(scheduler).day_starts_at_hour))
    review = PlannedReview(user_id=user_id, card_id=card_id, rating=rating, reviewed_at=now, duration_ms=duration_ms,
                           state_before=state_before, due=after.due, token=token, last_interval=last_interval)
    counts = ReviewCounts.of(state).plus(rating=rating, state_before=state_before)
    return PlannedAnswer(review, after, counts, None if state is None else state.last_review)


_REVIEW_COLUMNS = ("user_id", "card_id", "rating", "reviewed_at", "duration_ms", "state_before", "due", "token",
                   "last_interval")


def _insert_unless_there(model: type[ReviewLog | CardState], conflict: tuple[str, ...]) -> dict[str, Insert]:
    """Per dialect, an insert that does nothing when a row with the same `conflict` values exists.

    RETURNING tells for certain whether the row went in (the drivers' row counts disagree here).
    """
    # The columns come from the values given at each call.
    table = cast(Table, model.__table__)
    return {
        "postgresql": postgresql_insert(table).on_conflict_do_nothing(index_elements=conflict).returning(table.c.id),
        "sqlite": sqlite_insert(table).on_conflict_do_nothing(index_elements=conflict).returning(table.c.id),
    }


_INSERT_REVIEW = _insert_unless_there(ReviewLog, ("token",))


def _given(table: Table, names: tuple[str, ...]) -> dict[str, Any]:
    """Each named column's value, from the parameter of the same name."""
    return {name: bindparam(name, type_=table.c[name].type) for name in names}


# What answering writes, each statement with every column given (`Prepared` fills in no defaults).
_ANSWER_REVIEW_COLUMNS = (*_REVIEW_COLUMNS, "origin")
_STATE_COLUMNS_WRITTEN = ("state", "step", "stability", "difficulty", "due", "last_review", "last_review_us", "reps",
                          "lapses", "again_count")
_REVIEW_TABLE, _STATE_TABLE = cast(Table, ReviewLog.__table__), cast(Table, CardState.__table__)
_RECORD_REVIEW = {dialect: Prepared(insert.values(_given(_REVIEW_TABLE, _ANSWER_REVIEW_COLUMNS)))
                  for dialect, insert in _INSERT_REVIEW.items()}
_STATE_GIVEN = ("user_id", "card_id", *_STATE_COLUMNS_WRITTEN)
_RECORD_STATE = {dialect: Prepared(insert.values(_given(_STATE_TABLE, _STATE_GIVEN)))
                 for dialect, insert in _insert_unless_there(CardState, ("user_id", "card_id")).items()}
# The new state, if the state is still the one the answer was planned from.
_UPDATE_STATE = Prepared(update(_STATE_TABLE).values(_given(_STATE_TABLE, _STATE_COLUMNS_WRITTEN))
                         .where(CardState.user_id == bindparam("of_user"), CardState.card_id == bindparam("of_card"),
                                CardState.last_review == bindparam("previous_review", type_=UTCDateTime)))


def insert_reviews_unless_there(connection: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert review rows, each unless a review with its token is there already; how many went in."""
    if not rows:
        return 0
    return len(connection.execute(_INSERT_REVIEW[connection.dialect.name], list(rows)).all())


def record_answer(session: Session, planned: PlannedAnswer) -> Answer:
    """Write a planned answer: its review, and the card's new state if the state is still the one planned from.

    Returns DUPLICATE (nothing written) when the showing's token is already used. Raises
    StateChanged, after writing the review, when the state moved since the plan: roll back.
    The caller commits.
    """
    review, after, counts = planned.review, planned.after, planned.counts
    # Straight on the transaction's connection: these run with the write lock held, where every
    # bit of Python keeps the other writers waiting.
    connection = session.connection()
    dialect = connection.dialect.name
    values = {name: getattr(review, name) for name in _REVIEW_COLUMNS}
    if _RECORD_REVIEW[dialect].first(connection, {**values, "origin": ReviewOrigin.APP}) is None:
        return Answer(Outcome.DUPLICATE)
    # The last review's microseconds go with it: SQLite's trigger then finds them right and writes the row once.
    memory = {"state": after.state, "step": after.step, "stability": after.stability,
              "difficulty": after.difficulty, "due": after.due, "last_review": after.last_review,
              "last_review_us": review_microseconds(after.last_review),
              "reps": counts.reps, "lapses": counts.lapses, "again_count": counts.again}
    if planned.previous_review is None:
        written = _RECORD_STATE[dialect].first(
            connection, {**memory, "user_id": review.user_id, "card_id": review.card_id}) is not None
    else:
        written = _UPDATE_STATE.rowcount(connection, {
            **memory, "of_user": review.user_id, "of_card": review.card_id,
            "previous_review": planned.previous_review}) > 0
    if not written:
        raise StateChanged()
    return Answer(Outcome.RECORDED, review)


def answer_card(session: Session, scheduler: Scheduler, *, user_id: int, card_id: int, rating: Rating,
                token: str, now: datetime, shown_stamp: str | None = None,
                duration_ms: int | None = None) -> Answer:
    """Record one answer to one showing of a card and schedule the card, in the caller's transaction.

    `token` identifies the showing: answering the same showing twice records
    nothing the second time. `shown_stamp` (from `state_stamp`) guards against
    answering an outdated showing of a card that was answered since. The caller commits.
    """
    planned = plan_answer(session, scheduler, user_id=user_id, card_id=card_id, rating=rating, token=token,
                          now=now, shown_stamp=shown_stamp, duration_ms=duration_ms)
    if isinstance(planned, Answer):
        return planned
    savepoint = session.begin_nested()
    try:
        answer = record_answer(session, planned)
    except StateChanged:
        savepoint.rollback()
        return repeat_or_stale(session, token)
    savepoint.commit()
    return answer


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
    def of(cls, state: CountedState | None) -> ReviewCounts:
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
    """The counts a card state must hold for these reviews (`ReviewCounts.plus` over each, in one pass)."""
    reps = lapses = again = 0
    for review in reviews:
        reps += 1
        if review.rating == Rating.Again:
            again += 1
            lapses += review.state_before == ReviewState.REVIEW
    return ReviewCounts(reps=reps, lapses=lapses, again=again)


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


def replay(scheduler: Scheduler, card_id: int, reviews: Iterable[ReplayableReview], *,
           time_zone: str, day_numbers: list[int] | None = None) -> FsrsCard | None:
    """Rebuild a card's FSRS state from its reviews, oldest first (None when there are none).

    Elapsed days are study days in `time_zone` (the student's), as when the answers were
    given. Fuzz only moves the due date, which every review log keeps, so each due date is
    taken from its log. With `day_numbers`, the study day of each review is added to that list, oldest first
    (for `last_intervals`, which needs them too).
    """
    last = None
    for last in _replayed(scheduler, reviews, time_zone=time_zone,  # noqa: B007 - the last one is kept
                          day_numbers=day_numbers):
        pass
    return None if last is None else _replayed_card(card_id, *last)


def replay_steps(scheduler: Scheduler, card_id: int, reviews: Iterable[ReplayableReview], *,
                 time_zone: str) -> Iterator[FsrsCard]:
    """The card's FSRS state after each of its reviews, oldest first; the last is `replay`'s."""
    for review, memory in _replayed(scheduler, reviews, time_zone=time_zone):
        yield _replayed_card(card_id, review, memory)


def _replayed_card(card_id: int, review: ReplayableReview, memory: Memory) -> FsrsCard:
    """The card as a review left it: the memory state the replay gives, the due date the review log keeps."""
    state, step, stability, difficulty = memory
    return FsrsCard(card_id=card_id, state=state, step=step, stability=stability, difficulty=difficulty,
                    due=review.due, last_review=review.reviewed_at)


class _ReplayCard(FsrsCard):
    """An `fsrs.Card` that copies itself cheaply, for replays.

    The engine copies the card it is handed at every answer; `copy.copy` of a plain
    `fsrs.Card` goes through the pickling protocol, slow enough to tell in a replay of
    millions of reviews (`flashapp check`).
    """

    def __copy__(self) -> _ReplayCard:
        twin = object.__new__(_ReplayCard)
        twin.__dict__.update(self.__dict__)
        return twin

    def plain(self) -> FsrsCard:
        """The same state as a plain `fsrs.Card` (which compares equal to other plain ones)."""
        return FsrsCard(card_id=self.card_id, state=self.state, step=self.step, stability=self.stability,
                        difficulty=self.difficulty, due=self.due, last_review=self.last_review)


def _replayed(scheduler: Scheduler, reviews: Iterable[ReplayableReview], *,
              time_zone: str, day_numbers: list[int] | None = None) -> Iterator[tuple[ReplayableReview, Memory]]:
    """Each review with the memory state after it (state, step, stability, difficulty), for `replay` and
    `replay_steps`: a card is made only of what the caller keeps. Each review's study day is added to
    `day_numbers`, when given."""
    rules = study_scheduler(scheduler)
    days = _study_days(time_zone, rules.day_starts_at_hour)
    memory: Memory = (State.Learning, 0, None, None)
    last_day: int | None = None
    for review in reviews:
        # Each review's study day is worked out once: at the next review it is the last review's.
        day = days.number(review.reviewed_at)
        if day_numbers is not None:
            day_numbers.append(day)
        memory = memory_step(rules, *memory, review.rating, None if last_day is None else max(0, day - last_day))
        last_day = day
        yield review, memory


def recompute_memory_states(session: Session, scheduler: Scheduler, *, user_id: int | None = None,
                            personal: dict[int, Sequence[float]] | None = None) -> int:
    """Rewrite every card state that differs from the replay of its reviews under the current rules.

    For an upgrade that changes how memory states are worked out, or for a student whose
    parameters changed: the review log is the source of truth, so each state becomes its replay
    (`replay`, the same one `flashapp check` compares with) under the student's parameters
    (`personal`, by user id; the scheduler's own for the others). Due dates come from the review
    log, so they stay. With `user_id`, only that student's states. Review counts are left as
    they are. Returns how many states were rewritten; runs in the caller's transaction, which
    the caller commits.
    """
    rules = without_fuzz(scheduler)
    personal = personal or {}
    users = select(User.id, User.time_zone)
    states = select(CardState.id, CardState.user_id, CardState.card_id, CardState.state, CardState.step,
                    CardState.stability, CardState.difficulty, CardState.due, CardState.last_review)
    history = select(ReviewLog.user_id, ReviewLog.card_id, ReviewLog.rating, ReviewLog.reviewed_at,
                     ReviewLog.duration_ms, ReviewLog.due, ReviewLog.state_before)
    if user_id is not None:
        users = users.where(User.id == user_id)
        states = states.where(CardState.user_id == user_id)
        history = history.where(ReviewLog.user_id == user_id)
    zones = dict(session.execute(users).all())
    stored = {(row.user_id, row.card_id): row for row in session.execute(states)}
    reviews = session.execute(
        history.order_by(ReviewLog.user_id, ReviewLog.card_id, ReviewLog.reviewed_at, ReviewLog.id)
        .execution_options(yield_per=5000))
    rewrites: list[dict[str, Any]] = []
    for (owner, card_id), group in groupby(reviews, key=lambda row: (row.user_id, row.card_id)):
        state = stored.get((owner, card_id))
        if state is None or owner not in zones:
            continue  # `flashapp check` reports these
        own = personal.get(owner)
        card = replay(rules if own is None else personal_scheduler(rules, parameters=own), card_id, group,
                      time_zone=zones[owner])
        assert card is not None  # a group has reviews
        memory = {"state": card.state, "step": card.step, "stability": card.stability,
                  "difficulty": card.difficulty, "due": card.due, "last_review": card.last_review}
        if any(not _same(getattr(state, name), value) for name, value in memory.items()):
            rewrites.append({**memory, "state_id": state.id})
    for values in rewrites:
        session.execute(update(CardState).where(CardState.id == values.pop("state_id")).values(**values))
    return len(rewrites)


def _same(stored: object, replayed: object) -> bool:
    if isinstance(stored, float) and isinstance(replayed, float):
        return math.isclose(stored, replayed, rel_tol=1e-9, abs_tol=1e-9)
    return stored == replayed


def card_reviews(session: Session, *, user_id: int, card_id: int) -> list[ReviewLog]:
    """A user's reviews of one card, oldest first."""
    return list(session.scalars(
        select(ReviewLog).where(ReviewLog.user_id == user_id, ReviewLog.card_id == card_id)
        .order_by(ReviewLog.reviewed_at, ReviewLog.id)
    ))


class TimedReview(Protocol):
    """What a review's last interval is worked out from: when it was given, and when it left the card due."""

    @property
    def reviewed_at(self) -> datetime: ...
    @property
    def due(self) -> datetime: ...


def last_intervals(reviews: Sequence[TimedReview], days: StudyDays,
                   answered_days: Sequence[int] | None = None) -> list[int]:
    """The last interval of each of a card's reviews, oldest first: 0, then what the review before scheduled.

    `answered_days`, when given, are the study days the reviews were given on (as `replay` gives them).
    """
    if not reviews:
        return []
    given: Iterable[int | None] = repeat(None) if answered_days is None else answered_days
    # zip stops at the last review but one (`answered_days` has a day for the last one too).
    return [0] + [anki_interval(review.reviewed_at, review.due, days, day)
                  for review, day in zip(reviews[:-1], given, strict=False)]


def set_last_intervals(reviews: Sequence[ReviewLog], days: StudyDays) -> int:
    """Give one card's reviews (one user's, oldest first) the last intervals their order gives; how many changed.

    For when reviews were taken away or slipped in between others (undo, reviews brought back
    from Anki): each review's last interval depends on the one before it.
    """
    changed = 0
    for review, value in zip(reviews, last_intervals(reviews, days), strict=True):
        if review.last_interval != value:
            review.last_interval = value
            changed += 1
    return changed


_SET_LAST_INTERVAL = (update(cast(Table, ReviewLog.__table__))
                      .where(ReviewLog.id == bindparam("review_id")).values(last_interval=bindparam("value")))


def restore_last_intervals(session: Session, *, day_starts_at_hour: int, user_id: int | None = None) -> int:
    """Write every review's last interval as the review log gives it (`last_intervals`); how many changed.

    Student by student (their time zone, the install's day-start hour), in the caller's
    transaction: for filling the column in, or after the day-start hour was changed. Reads and
    writes the columns it needs alone, so that it also serves the migration that adds them.
    """
    users = select(User.id, User.time_zone).order_by(User.id)
    if user_id is not None:
        users = users.where(User.id == user_id)
    changed = 0
    for owner, time_zone in session.execute(users).all():
        days = StudyDays(time_zone, day_starts_at_hour)
        rows = session.execute(
            select(ReviewLog.id, ReviewLog.card_id, ReviewLog.reviewed_at, ReviewLog.due, ReviewLog.last_interval)
            .where(ReviewLog.user_id == owner)
            .order_by(ReviewLog.card_id, ReviewLog.reviewed_at, ReviewLog.id)).all()
        rewrites = []
        for _, group in groupby(rows, key=lambda row: row.card_id):
            reviews = list(group)
            rewrites += [{"review_id": review.id, "value": value}
                         for review, value in zip(reviews, last_intervals(reviews, days), strict=True)
                         if review.last_interval != value]
        for start in range(0, len(rewrites), 5000):
            session.execute(_SET_LAST_INTERVAL, rewrites[start:start + 5000])
        changed += len(rewrites)
    return changed


def undo_last_answer(session: Session, scheduler: Scheduler, *, user_id: int, deck_id: int) -> int | None:
    """Remove the user's latest answer in the app to an active card of a deck and restore that card's previous state.

    Reviews brought back from Anki are not undone here. Returns the card's id, or None when
    there is nothing to undo. The caller commits.
    """
    last = session.scalar(
        select(ReviewLog).join(Card, Card.id == ReviewLog.card_id)
        .where(ReviewLog.user_id == user_id, ReviewLog.origin == ReviewOrigin.APP, active_cards([deck_id]))
        .order_by(ReviewLog.reviewed_at.desc(), ReviewLog.id.desc()).limit(1)
    )
    if last is None:
        return None
    card_id = last.card_id
    session.execute(delete(ReviewLog).where(ReviewLog.id == last.id))
    remaining = card_reviews(session, user_id=user_id, card_id=card_id)
    time_zone = session.scalar(select(User.time_zone).where(User.id == user_id)) or "UTC"
    # A review brought back from Anki after the one taken away now follows the one before it.
    set_last_intervals(remaining, StudyDays(time_zone, study_scheduler(scheduler).day_starts_at_hour))
    restored = replay(scheduler, card_id, remaining, time_zone=time_zone)
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
