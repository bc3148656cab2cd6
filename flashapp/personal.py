"""Each student's own FSRS parameters: fitted from their review history, kept only when they predict it better.

A fit takes the student's answers oldest first, fits on the older 70 % with fsrs-rs-python
and scores both the candidate and the parameters in use on the newer 30 % (a time-series
split: no answer is predicted by parameters that saw it). The candidate is kept only when
both its log loss and its RMSE are lower; then the student's memory states are recomputed
from the review log under it. Due dates stay as they were scheduled.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import fsrs_rs_python as fsrs_rs
from fsrs import Scheduler, State
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .database import reading, write_transaction
from .errors import NotFound
from .fitting import RevlogReview, Score, score, training_items
from .models import CardState, PersonalParameters, ReviewLog, User
from .scheduling import personal_scheduler, recompute_memory_states, rescheduled_due, study_scheduler

# Below this many reviews a fit is not tried: fsrs-rs-python hands back its defaults for
# thinner histories (measured with bench/optimizer.py --threshold; see the README).
MIN_REVIEWS = 400
# A new fit is tried once the history has grown by this share since the last one.
GROWTH_SHARE = 0.2
# The newest answers a fit reads at most: bounds its time and memory.
MAX_REVIEWS = 50_000
TEST_SHARE = 0.3


class Learner(Protocol):
    """What a student's own scheduling needs of them: a `User`, or the request's `accounts.SignedIn`."""

    @property
    def id(self) -> int: ...
    @property
    def time_zone(self) -> str: ...
    @property
    def desired_retention(self) -> float | None: ...
    @property
    def class_retention(self) -> float | None: ...
    @property
    def own_parameters(self) -> str | None: ...


def parameters_in_use(personal: PersonalParameters | None) -> list[float] | None:
    """A student's own parameters, or None while the defaults are in use."""
    return None if personal is None else parsed_parameters(personal.parameters)


def parsed_parameters(text: str | None) -> list[float] | None:
    """Parameters as kept (a JSON list of the weights), or None for none."""
    return None if text is None else [float(w) for w in json.loads(text)]


def student_scheduler(scheduler: Scheduler, user: Learner) -> Scheduler:
    """The scheduler for this student's answers: their parameters and desired retention on the install's rules.

    The desired retention is the student's own, else their class's default, else the install's.
    """
    return personal_scheduler(scheduler, parameters=parsed_parameters(user.own_parameters),
                              desired_retention=desired_retention_of(user))


def desired_retention_of(user: Learner) -> float | None:
    """The student's desired retention: their own, else their class's default (None: the install's)."""
    return user.desired_retention if user.desired_retention is not None else user.class_retention


def all_personal_parameters(session: Session) -> dict[int, list[float]]:
    """Every student's own parameters, by user id (students on the defaults are left out).

    Empty for a database from before personal parameters, not yet upgraded (`flashapp check` reads those too).
    """
    if not inspect(session.connection()).has_table(PersonalParameters.__tablename__):
        return {}
    rows = session.execute(select(PersonalParameters.user_id, PersonalParameters.parameters)
                           .where(PersonalParameters.parameters.is_not(None)))
    return {user_id: parsed for user_id, text in rows if (parsed := parsed_parameters(text)) is not None}


def latest_fit(session: Session, user_id: int) -> PersonalParameters | None:
    """A student's own parameters and their latest fit, as the account page shows them (None: never fitted)."""
    return session.get(PersonalParameters, user_id)


def personal_parameters_of(session: Session, user_id: int) -> list[float] | None:
    """One student's own parameters (None: the defaults, or a database from before personal parameters)."""
    if not inspect(session.connection()).has_table(PersonalParameters.__tablename__):
        return None
    text = session.scalar(select(PersonalParameters.parameters).where(PersonalParameters.user_id == user_id))
    return parsed_parameters(text)


def student_reviews(session: Session, *, user_id: int, day_starts_at_hour: int,
                    limit: int = MAX_REVIEWS) -> list[RevlogReview]:
    """The student's newest `limit` answers, in the optimizer's terms, oldest first."""
    time_zone = session.scalar(select(User.time_zone).where(User.id == user_id))
    if time_zone is None:
        raise NotFound("No such account.")
    rows = session.execute(
        select(ReviewLog.card_id, ReviewLog.reviewed_at, ReviewLog.rating).where(ReviewLog.user_id == user_id)
        .order_by(ReviewLog.reviewed_at.desc(), ReviewLog.id.desc()).limit(limit)).all()
    return [RevlogReview(card_id, int(at.timestamp() * 1000), int(rating), time_zone, day_starts_at_hour)
            for card_id, at, rating in reversed(rows)]


@dataclass(frozen=True)
class Candidate:
    """Parameters fitted on the older answers, scored with the parameters in use on the newer ones."""

    parameters: list[float]
    current: Score
    fitted: Score
    trained_on: int
    tested_on: int

    @property
    def better(self) -> bool:
        """Lower log loss and lower RMSE than the parameters in use."""
        return self.fitted.log_loss < self.current.log_loss and self.fitted.rmse_bins < self.current.rmse_bins


def fit_candidate(reviews: Sequence[RevlogReview], current: Sequence[float] | None, *,
                  test_share: float = TEST_SHARE) -> Candidate | None:
    """Fit on the oldest answers and score against `current` (None: the defaults) on the newest; None when too few."""
    items = training_items(reviews)
    split = int(len(items) * (1 - test_share))
    train, test = items[:split], items[split:]
    if not train or not test:
        return None
    in_use = list(current) if current is not None else list(fsrs_rs.DEFAULT_PARAMETERS)
    fitted = list(fsrs_rs.FSRS(list(fsrs_rs.DEFAULT_PARAMETERS)).compute_parameters([t.item for t in train]))
    return Candidate(fitted, score(in_use, test), score(fitted, test), len(train), len(test))


@dataclass(frozen=True)
class FitOutcome:
    """What one student's fit did."""

    user_id: int
    username: str
    reviews: int
    kept: bool
    message: str
    candidate: Candidate | None = None
    states_recomputed: int = 0


def optimize_student(session: Session, scheduler: Scheduler, *, user_id: int, now: datetime,
                     min_reviews: int = MIN_REVIEWS) -> FitOutcome:
    """Fit one student's parameters from their history and keep them if they beat the ones in use.

    Fitting reads in a plain transaction and writes nothing; the write (the outcome, and when
    kept the parameters and the recomputed memory states) is one short transaction.
    """
    with reading(session):
        return _optimize_student(session, scheduler, user_id=user_id, now=now, min_reviews=min_reviews)


def _optimize_student(session: Session, scheduler: Scheduler, *, user_id: int, now: datetime,
                      min_reviews: int) -> FitOutcome:
    # The history is read and fitted without the write lock: students go on answering meanwhile.
    rules = study_scheduler(scheduler)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such account.")
    username = user.username
    # What the fit starts from: if another fit of this student is written before this one, this one gives way.
    started_from = None if user.personal is None else user.personal.tried_at
    reviews = student_reviews(session, user_id=user_id, day_starts_at_hour=rules.day_starts_at_hour)
    current = parameters_in_use(user.personal)
    total = session.scalar(select(func.count(ReviewLog.id)).where(ReviewLog.user_id == user_id)) or 0
    candidate = None
    if total < min_reviews:
        message = f"{total} reviews: fewer than the {min_reviews} a fit needs"
    else:
        candidate = fit_candidate(reviews, current)
        if candidate is None:
            message = f"{total} reviews, too few of them a day or more apart to fit"
        elif candidate.better:
            message = (f"kept: log loss {candidate.current.log_loss:.4f} → {candidate.fitted.log_loss:.4f}, "
                       f"RMSE {candidate.current.rmse_bins:.4f} → {candidate.fitted.rmse_bins:.4f}")
        else:
            message = (f"not kept: log loss {candidate.current.log_loss:.4f} → {candidate.fitted.log_loss:.4f}, "
                       f"RMSE {candidate.current.rmse_bins:.4f} → {candidate.fitted.rmse_bins:.4f}")
    kept = candidate is not None and candidate.better
    recomputed = 0
    try:
        with write_transaction(session):
            row = session.get(PersonalParameters, user_id, populate_existing=True, with_for_update=True)
            if (None if row is None else row.tried_at) != started_from:
                raise _OvertakenError
            recomputed = _write_outcome(session, rules, row, user_id=user_id, now=now, total=total,
                                        message=message, candidate=candidate if kept else None)
    except (_OvertakenError, IntegrityError):
        # Another fit (the server's background job, or `flashapp optimize`) wrote first: its result stands.
        session.rollback()
        return FitOutcome(user_id, username, total, False, "not kept: another fit of this student finished first",
                          candidate)
    return FitOutcome(user_id, username, total, kept, message, candidate, recomputed)


class _OvertakenError(Exception):
    """Another fit of the same student was written while this one ran."""


def _write_outcome(session: Session, rules: Scheduler, row: PersonalParameters | None, *, user_id: int,
                   now: datetime, total: int, message: str, candidate: Candidate | None) -> int:
    """Record a fit's outcome; with a kept `candidate`, its parameters and the memory states recomputed under them."""
    if row is None:
        row = PersonalParameters(user_id=user_id)
        session.add(row)
    row.tried_at, row.tried_review_count, row.tried_outcome = now, total, message[:200]
    if candidate is None:
        session.flush()
        return 0
    row.parameters = json.dumps(candidate.parameters)
    row.fitted_at, row.review_count = now, total
    row.log_loss_before, row.rmse_before = candidate.current.log_loss, candidate.current.rmse_bins
    row.log_loss_after, row.rmse_after = candidate.fitted.log_loss, candidate.fitted.rmse_bins
    session.flush()
    return recompute_memory_states(session, rules, user_id=user_id, personal={user_id: candidate.parameters})


def students_due_for_a_fit(session: Session, *, min_reviews: int = MIN_REVIEWS,
                           growth_share: float = GROWTH_SHARE) -> list[int]:
    """Students with enough history who were never fitted, or whose history grew by `growth_share` since.

    Those never tried come first, then by the growth since their last fit.
    """
    counts = (select(ReviewLog.user_id, func.count(ReviewLog.id).label("reviews"))
              .group_by(ReviewLog.user_id).subquery())
    rows = session.execute(
        select(counts.c.user_id, counts.c.reviews, PersonalParameters.tried_review_count)
        .outerjoin(PersonalParameters, PersonalParameters.user_id == counts.c.user_id)
        .where(counts.c.reviews >= min_reviews)).all()
    due = [(tried is not None, reviews / max(1, tried or 1), user_id) for user_id, reviews, tried in rows
           if tried is None or reviews >= tried * (1 + growth_share)]
    return [user_id for _tried, _growth, user_id in sorted(due, key=lambda d: (d[0], -d[1], d[2]))]


def optimize_due_students(session: Session, scheduler: Scheduler, *, now: datetime, budget_seconds: float,
                          clock: Callable[[], float] = time.monotonic) -> list[FitOutcome]:
    """Fit the students due for a fit, one at a time, starting no new fit once `budget_seconds` have passed."""
    started = clock()
    outcomes = []
    for user_id in students_due_for_a_fit(session):
        if clock() - started >= budget_seconds:
            break
        outcomes.append(optimize_student(session, scheduler, user_id=user_id, now=now))
        session.commit()  # let go of the read snapshot between students
    return outcomes


@dataclass(frozen=True)
class Rescheduled:
    """What rescheduling a student's cards did."""

    review_cards: int  # review cards looked at
    sooner: int
    later: int


def reschedule_cards(session: Session, scheduler: Scheduler, *, user_id: int) -> Rescheduled:
    """Work out each review card's due date again under the student's parameters and desired retention now.

    A card falls due where answering it at its last review would have put it today (the same
    fuzz): parameters fitted since, or another desired retention, move it sooner or later.
    Learning cards keep their steps. The new due date is written to the card and to its last
    answer in the review log, which keeps the one it first scheduled, so a replay of the log
    gives the rescheduled card and `flashapp check` agrees with it.
    """
    with write_transaction(session):
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("No such account.")
        rules = student_scheduler(scheduler, user)
        states = {state.card_id: state for state in session.scalars(
            select(CardState).where(CardState.user_id == user_id, CardState.state == State.Review))}
        last_answers: dict[int, ReviewLog] = {}
        for answer in session.scalars(
                select(ReviewLog).where(ReviewLog.user_id == user_id, ReviewLog.card_id.in_(states))
                .order_by(ReviewLog.card_id, ReviewLog.reviewed_at, ReviewLog.id)):
            last_answers[answer.card_id] = answer
        sooner = later = 0
        for card_id, state in states.items():
            due = rescheduled_due(rules, state, user_id=user_id, card_id=card_id, time_zone=user.time_zone)
            last = last_answers.get(card_id)
            if due is None or due == state.due or last is None:
                continue  # a state without reviews is for `flashapp check` to report
            sooner, later = (sooner + 1, later) if due < state.due else (sooner, later + 1)
            if last.due_as_answered is None:
                last.due_as_answered = last.due
            last.due = state.due = due
    return Rescheduled(len(states), sooner, later)
