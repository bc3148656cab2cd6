"""A student's desired retention, and what each choice costs: fsrs-rs-python's simulator on their decks.

The simulator studies the student's cards (those of their classes' decks, or every deck when
they have none) with their parameters, at most `new_per_day` new cards a day, for `DAYS` days;
a choice's cost is the reviews a day it takes on average, its gain the cards remembered at
the end (the sum of each card's recall probability).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import fsrs_rs_python as fsrs_rs
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .classroom import assigned_decks, own_classroom
from .database import write_transaction
from .errors import Invalid, NotFound
from .models import Deck, User

LOWEST, HIGHEST = 0.70, 0.97
SHOWN = (0.80, 0.85, 0.90, 0.95)
DAYS = 365
SEED = 2026


@dataclass(frozen=True)
class RetentionCost:
    """What studying at one desired retention comes to over `DAYS` days."""

    desired_retention: float
    reviews_per_day: float
    remembered: float


def valid_retention(value: float) -> float:
    """The value as a desired retention, or Invalid saying the range."""
    if not LOWEST <= value <= HIGHEST:
        raise Invalid(f"Choose a desired retention from {LOWEST:.2f} to {HIGHEST:.2f}.", field="desired_retention")
    return round(value, 2)


def set_desired_retention(session: Session, *, user_id: int, desired_retention: float | None) -> None:
    """Set the student's own desired retention (None: back to the install's). Due dates already given stay."""
    value = None if desired_retention is None else valid_retention(desired_retention)
    with write_transaction(session):
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("No such account.")
        user.desired_retention = value


def set_class_retention(session: Session, *, teacher_id: int, class_id: int,
                        desired_retention: float | None) -> None:
    """Set the default desired retention of one of this teacher's classes (None: the install's).

    Students who chose their own keep it; in several classes, a student takes the highest default.
    """
    value = None if desired_retention is None else valid_retention(desired_retention)
    with write_transaction(session):
        own_classroom(session, teacher_id=teacher_id, class_id=class_id).desired_retention = value


def cards_studied(session: Session, *, user_id: int) -> int:
    """How many cards the student studies: their classes' decks, or every deck when they have none."""
    deck_ids = list(assigned_decks(session, user_id))
    query = select(func.coalesce(func.sum(Deck.active_cards), 0))
    if deck_ids:
        query = query.where(Deck.id.in_(deck_ids))
    return int(session.scalar(query) or 0)


@lru_cache(maxsize=256)
def _simulated(parameters: tuple[float, ...], deck_size: int, new_per_day: int,
               retentions: tuple[float, ...], days: int) -> tuple[RetentionCost, ...]:
    config = fsrs_rs.default_simulator_config()
    config.deck_size = deck_size
    config.learn_span = days
    config.learn_limit = new_per_day
    config.max_cost_perday = 1e12  # the student studies whatever is due, however long it takes
    costs = []
    for retention in retentions:
        result = fsrs_rs.simulate(list(parameters), retention, config, SEED)
        answers = sum(result.review_cnt_per_day) + sum(result.learn_cnt_per_day)
        costs.append(RetentionCost(retention, answers / days, result.memorized_cnt_per_day[-1]))
    return tuple(costs)


def retention_costs(parameters: list[float] | None, *, deck_size: int, new_per_day: int,
                    retentions: tuple[float, ...] = SHOWN, days: int = DAYS) -> list[RetentionCost]:
    """Reviews a day and cards remembered after `days` days at each desired retention (None: default parameters).

    Worked out once per set of arguments and kept: a few milliseconds for a class's decks.
    """
    weights = tuple(float(w) for w in (parameters if parameters is not None else fsrs_rs.DEFAULT_PARAMETERS))
    if deck_size <= 0:
        return [RetentionCost(r, 0.0, 0.0) for r in retentions]
    return list(_simulated(weights, deck_size, max(1, new_per_day), tuple(retentions), days))


@dataclass(frozen=True)
class ChartPoint:
    """One retention's place on the cost chart (SVG user units)."""

    cost: RetentionCost
    x: float
    y_reviews: float
    y_remembered: float


def chart_points(costs: list[RetentionCost], *, width: float = 320, height: float = 160,
                 margin: float = 30) -> list[ChartPoint]:
    """The costs laid out on a chart: retention across, reviews a day and cards remembered up (each to its own top)."""
    if not costs:
        return []
    most_reviews = max(c.reviews_per_day for c in costs) or 1.0
    most_remembered = max(c.remembered for c in costs) or 1.0
    low, high = costs[0].desired_retention, costs[-1].desired_retention
    span = (high - low) or 1.0
    inner_w, inner_h = width - 2 * margin, height - 2 * margin
    return [ChartPoint(c, margin + inner_w * (c.desired_retention - low) / span,
                       margin + inner_h * (1 - c.reviews_per_day / most_reviews),
                       margin + inner_h * (1 - c.remembered / most_remembered)) for c in costs]
