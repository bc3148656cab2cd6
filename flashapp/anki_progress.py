"""A student's progress as an Anki package: the deck, plus their scheduling, review log and FSRS memory states.

The deck is written as the plain export writes it (`anki_export`); the collection is then
amended before it is packed: each card the student has answered gets Anki's type, queue, due
and interval, its memory state in the card's `data`, and every answer becomes a review-log row.

Anki counts review due dates in days since the collection's creation, and shifts them on
import by the difference between the package's "today" and the importing collection's. So
the package's collection is created at the start of one of the student's study days, with
their day-start hour as its rollover and their time zone's offset as its creation offset:
its days are then the student's study days, and a card due in three study days in the app
is due in three days in Anki, whenever the package is imported.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import groupby
from typing import BinaryIO

from fsrs import Scheduler, State
from sqlalchemy import select
from sqlalchemy.orm import Session

from .accounts import find_user
from .anki_export import ExportedCard, export_anki_package
from .decks import deck_by_slug
from .errors import NotFound
from .models import CardState, ReviewLog, ReviewState
from .personal import Learner, student_scheduler
from .scheduling import StudyDays, StudyScheduler, anki_interval, ideal_interval, replay_steps, study_scheduler

# Anki's numbers (rslib: card/mod.rs, revlog/mod.rs).
CARD_TYPES = {State.Learning: 1, State.Review: 2, State.Relearning: 3}
QUEUE_LEARN, QUEUE_REVIEW, QUEUE_DAY_LEARN = 1, 2, 3
REVLOG_TYPES = {ReviewState.NEW: 0, ReviewState.LEARNING: 0, ReviewState.REVIEW: 1, ReviewState.RELEARNING: 2}
# The ease Anki gives a card when it first graduates; FSRS does not use it, but Anki keeps one on review cards.
INITIAL_EASE = 2500


@dataclass(frozen=True)
class ProgressExport:
    """What a progress package holds."""

    cards: int
    studied_cards: int  # cards with scheduling and a memory state
    reviews: int  # review-log rows


def export_progress(session: Session, scheduler: Scheduler, *, username: str, slug: str,
                    out: str | os.PathLike[str] | BinaryIO, now: datetime) -> ProgressExport:
    """Write the deck with this slug and this student's progress in it as an .apkg.

    Raises NotFound for an unknown account, or an unknown deck (naming the decks there are).
    """
    user = find_user(session, username)
    if user is None:
        raise NotFound(f"There is no account '{username}'.")
    return export_user_progress(session, scheduler, user=user, slug=slug, out=out, now=now)


def export_user_progress(session: Session, scheduler: Scheduler, *, user: Learner, slug: str,
                         out: str | os.PathLike[str] | BinaryIO, now: datetime) -> ProgressExport:
    """Write the deck with this slug and `user`'s progress in it as an .apkg (NotFound: no such deck)."""
    deck = deck_by_slug(session, slug, visible_to=user.id)
    rules = study_scheduler(student_scheduler(scheduler, user))
    progress = _Progress(rules=rules, user_id=user.id, time_zone=user.time_zone, now=now)
    export_anki_package(session, deck_id=deck.id, out=out, timestamp=now.timestamp(), amend=progress.amend)
    return progress.summary


@dataclass
class _Progress:
    """Amends an exported collection with one student's progress (see `anki_export.Amendment`)."""

    rules: StudyScheduler
    user_id: int
    time_zone: str
    now: datetime
    summary: ProgressExport = ProgressExport(0, 0, 0)

    def amend(self, session: Session, connection: sqlite3.Connection, cards: list[ExportedCard]) -> None:
        days = StudyDays(self.time_zone, self.rules.day_starts_at_hour)
        by_id = {card.card_id: card for card in cards}
        states = {state.card_id: state for state in session.scalars(
            select(CardState).where(CardState.user_id == self.user_id, CardState.card_id.in_(list(by_id))))}
        reviews = list(session.scalars(
            select(ReviewLog).where(ReviewLog.user_id == self.user_id, ReviewLog.card_id.in_(list(by_id)))
            .order_by(ReviewLog.card_id, ReviewLog.reviewed_at, ReviewLog.id)))

        first = min((review.reviewed_at for review in reviews), default=self.now)
        created_day = days.number(min(first, self.now))
        _set_collection_days(connection, days=days, created_day=created_day, now=self.now)

        used_ids: set[int] = set()
        revlog: list[tuple[int, ...]] = []
        for card_id, group in groupby(reviews, key=lambda review: review.card_id):
            revlog.extend(self._revlog_rows(by_id[card_id], list(group), days=days, used_ids=used_ids))
        connection.executemany(
            "INSERT INTO revlog (id, cid, usn, ease, ivl, lastIvl, factor, time, type)"
            " VALUES (?, ?, -1, ?, ?, ?, ?, ?, ?)",
            revlog)

        for card_id, state in states.items():
            connection.execute(
                "UPDATE cards SET type = ?, queue = ?, due = ?, ivl = ?, factor = ?, reps = ?, lapses = ?, left = ?,"
                " data = ? WHERE id = ?",
                (*self._card_values(state, by_id[card_id], days=days, created_day=created_day),
                 by_id[card_id].anki_card_id))
        self.summary = ProgressExport(cards=len(cards), studied_cards=len(states), reviews=len(revlog))

    def _card_values(self, state: CardState, card: ExportedCard, *, days: StudyDays,
                     created_day: int) -> tuple[object, ...]:
        """Anki's type, queue, due, interval, ease, reps, lapses, remaining steps and data for a studied card."""
        rules = self.rules
        last_review = state.last_review or state.due
        if state.state == State.Review:
            queue, due = QUEUE_REVIEW, days.number(state.due) - created_day
            interval = max(1, days.number(state.due) - days.number(last_review))
        elif days.number(state.due) > days.number(last_review):
            # A learning step that runs past the day's end waits for that day, as Anki's day-learning queue does.
            queue, due = QUEUE_DAY_LEARN, days.number(state.due) - created_day
        else:
            queue, due = QUEUE_LEARN, int(state.due.timestamp())
        if state.state == State.Learning:
            interval = 0
            remaining = max(0, len(rules.learning_steps) - (state.step or 0))
        elif state.state == State.Relearning:
            # The interval the card would get back on graduating now, as Anki keeps one while relearning.
            interval = max(1, math.floor(ideal_interval(rules, state.stability or 0.0) + 0.5))
            remaining = max(0, len(rules.relearning_steps) - (state.step or 0))
        else:
            remaining = 0
        data = {"pos": card.position, "s": state.stability, "d": state.difficulty,
                "dr": rules.desired_retention, "decay": rules.parameters[20],
                "lrt": int(last_review.timestamp())}
        ease = 0 if state.state == State.Learning else INITIAL_EASE
        return (CARD_TYPES[state.state], queue, due, interval, ease, state.reps, state.lapses, remaining,
                json.dumps(data))

    def _revlog_rows(self, card: ExportedCard, reviews: Sequence[ReviewLog], *, days: StudyDays,
                     used_ids: set[int]) -> list[tuple[int, ...]]:
        """One review-log row per answer, as Anki writes them (rslib: scheduler/answering/revlog.rs)."""
        rows: list[tuple[int, ...]] = []
        # The memory state after each answer, for the difficulty Anki keeps in each row.
        steps = replay_steps(self.rules, card.card_id, reviews, time_zone=self.time_zone)
        for review, after in zip(reviews, steps, strict=True):
            # What the answer scheduled, in days or (a step within the day) minus its seconds; its `lastIvl` is
            # the one the review keeps, which the next answer's row keeps in turn.
            interval = anki_interval(review.reviewed_at, review.due, days)
            # The difficulty after the answer, shifted to 0.1-1.1, in thousandths (Anki's `factor` under FSRS).
            factor = round(((after.difficulty or 1.0) - 1.0) / 9.0 * 1000 + 100)
            row_id = int(review.reviewed_at.timestamp() * 1000)
            while row_id in used_ids:  # Anki keys its review log by the answer's millisecond
                row_id += 1
            used_ids.add(row_id)
            rows.append((row_id, card.anki_card_id, int(review.rating), interval, review.last_interval, factor,
                         review.duration_ms or 0, REVLOG_TYPES[review.state_before]))
        return rows


def _set_collection_days(connection: sqlite3.Connection, *, days: StudyDays, created_day: int,
                         now: datetime) -> None:
    """Make the collection's days the student's study days: created at the start of `created_day`."""
    created = days.begins(created_day)
    conf = json.loads(connection.execute("SELECT conf FROM col").fetchone()[0])
    conf.update({
        "schedVer": 2,  # Anki converts the cards of an older scheduler on import
        "rollover": days.hour,
        # Minutes west of UTC, as Anki keeps them: at the collection's creation, and now.
        "creationOffset": _minutes_west(created, days),
        "localOffset": _minutes_west(now, days),
    })
    connection.execute("UPDATE col SET crt = ?, conf = ?", (int(created.timestamp()), json.dumps(conf)))


def _minutes_west(at: datetime, days: StudyDays) -> int:
    offset = at.astimezone(days.tz).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return -int(offset.total_seconds() // 60)


def progress_file_name(slug: str, username: str, now: datetime) -> str:
    """The download's name: the deck, the student and the day (UTC), e.g. `back-muscles-ana-2026-03-02.apkg`."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in username)
    return f"{slug}-{safe}-{now.astimezone(timezone.utc).date().isoformat()}.apkg"
