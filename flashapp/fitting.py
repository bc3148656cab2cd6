"""Fit FSRS parameters to a class revlog export with fsrs-rs-python, the optimizer inside Anki.

Reads the revlog CSV the app exports (`exports.class_revlog_csv`), counts elapsed days in each
row's own study days (its time zone and day-start hour, as the optimizers do), fits on the
older part of the history and scores the fitted and the default parameters on the newer
part: a time-series split, so no review is predicted from parameters that saw it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import groupby

import fsrs_rs_python as fsrs_rs

from .scheduling import StudyDays


@dataclass(frozen=True)
class RevlogReview:
    """One row of a revlog export: what the optimizer needs of one answer."""

    card_id: int
    review_time_ms: int
    rating: int
    time_zone: str
    day_starts_at_hour: int


def read_revlog(lines: Iterable[str]) -> list[RevlogReview]:
    """The reviews of a revlog CSV (header first) in the app's export layout."""
    return [RevlogReview(int(row["card_id"]), int(row["review_time"]), int(row["review_rating"]),
                         row["timezone"], int(row["next_day_starts_at"]))
            for row in csv.DictReader(lines)]


@dataclass(frozen=True)
class TrainingItem:
    """One answer to predict, with its card's history up to and including it, and when it was given."""

    review_time_ms: int
    item: fsrs_rs.FSRSItem


def training_items(reviews: Iterable[RevlogReview]) -> list[TrainingItem]:
    """Every answer given a study day or more after the card's previous one, oldest first.

    Elapsed days are study days in each row's time zone from its day-start hour.
    """
    items: list[TrainingItem] = []
    ordered = sorted(reviews, key=lambda review: (review.card_id, review.review_time_ms))
    for _card_id, group in groupby(ordered, key=lambda review: review.card_id):
        history: list[fsrs_rs.FSRSReview] = []
        previous_day: int | None = None
        for review in group:
            days = StudyDays(review.time_zone, review.day_starts_at_hour)
            day = days.number(datetime.fromtimestamp(review.review_time_ms / 1000, tz=timezone.utc))
            elapsed = 0 if previous_day is None else day - previous_day
            history.append(fsrs_rs.FSRSReview(review.rating, elapsed))
            previous_day = day
            if elapsed > 0:
                items.append(TrainingItem(review.review_time_ms, fsrs_rs.FSRSItem(list(history))))
    items.sort(key=lambda entry: entry.review_time_ms)
    return items


@dataclass(frozen=True)
class Score:
    """How well parameters predict answers: log loss and RMSE over bins (lower is better)."""

    log_loss: float
    rmse_bins: float


@dataclass(frozen=True)
class Fit:
    """Parameters fitted on the older answers, with both them and the defaults scored on the newer ones."""

    parameters: list[float]
    default: Score
    fitted: Score
    trained_on: int
    tested_on: int

    @property
    def better(self) -> bool:
        """True when the fitted parameters predict the newer answers better than the defaults."""
        return self.fitted.log_loss < self.default.log_loss


def score(parameters: Sequence[float], items: Sequence[TrainingItem]) -> Score:
    """How well `parameters` predict these answers."""
    evaluation = fsrs_rs.FSRS(list(parameters)).evaluate([entry.item for entry in items])
    return Score(evaluation.log_loss, evaluation.rmse_bins)


def fit_parameters(reviews: Iterable[RevlogReview], *, test_share: float = 0.3) -> Fit:
    """Fit FSRS parameters on the oldest answers and score them against the defaults on the newest `test_share`.

    Raises ValueError when there are too few answers to split.
    """
    items = training_items(reviews)
    split = int(len(items) * (1 - test_share))
    train, test = items[:split], items[split:]
    if not train or not test:
        raise ValueError(f"{len(items)} answers a day or more apart are too few to fit and score parameters")
    defaults = list(fsrs_rs.DEFAULT_PARAMETERS)
    parameters = fsrs_rs.FSRS(defaults).compute_parameters([entry.item for entry in train])
    return Fit(list(parameters), score(defaults, test), score(parameters, test), len(train), len(test))
