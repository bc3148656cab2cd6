"""The answer buttons' intervals are what answering stores, counted as the study page shows them.

`preview_intervals` takes a review interval as the whole study days the answer puts the due date
ahead by, without working out the date itself. These tests hold it to that date: for every answer,
the study days from now to the due date `schedule_answers` gives (a review), or the time until it
(a learning step); with fuzz on, in time zones whose clocks change at or near the hour a study day
starts, for new cards and for cards walked through learning, review and relearning. Fixed UTC times.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from fsrs import Card as FsrsCard
from fsrs import Rating, State

from flashapp.scheduling import (
    RATINGS,
    MemoryState,
    StudyDays,
    make_scheduler,
    preview_intervals,
    schedule_answers,
    to_fsrs_card,
)

# Zones whose clocks change at midnight (Santiago), at 02:00-03:00 (Berlin, New York), by half an hour
# (Lord Howe), never (Kolkata, UTC); and day starts at midnight, in a changing hour, and late at night.
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "America/Santiago", "Australia/Lord_Howe", "Asia/Kolkata"]
HOURS = [0, 2, 4, 23]
# Around the changes of 2026 in those zones, and an ordinary day.
STARTS = [datetime(2026, 3, 28, 22, 0, tzinfo=timezone.utc), datetime(2026, 4, 4, 13, 0, tzinfo=timezone.utc),
          datetime(2026, 9, 5, 2, 30, tzinfo=timezone.utc), datetime(2026, 10, 3, 14, 45, tzinfo=timezone.utc),
          datetime(2026, 10, 24, 23, 59, 59, tzinfo=timezone.utc), datetime(2026, 6, 10, 9, 0, tzinfo=timezone.utc)]


def _shown_as_the_page_counts(after: dict[Rating, FsrsCard], now: datetime, days: StudyDays) -> dict[Rating, timedelta]:
    """The definition, from what answering stores (`schedule_answers`): a review card's due date as whole study
    days from now, a learning step's as the time until it."""
    return {rating: timedelta(days=days.number(answered.due) - days.number(now)) if answered.state == State.Review
            else answered.due - now for rating, answered in after.items()}


def _state(card: FsrsCard) -> MemoryState:
    # The columns `to_fsrs_card` reads, as a stored state gives them.
    return card  # type: ignore[return-value]  # an fsrs Card has every field a MemoryState is read for


@pytest.mark.parametrize("time_zone", ZONES)
def test_every_button_shows_the_study_days_or_the_time_answering_stores(time_zone: str) -> None:
    rng = random.Random(time_zone)
    shown_count = reviews_shown = 0
    for hour in HOURS:
        scheduler = make_scheduler(day_starts_at_hour=hour, learning_steps_minutes=(1, 10),
                                   relearning_steps_minutes=(10,))
        days = StudyDays(time_zone, hour)
        for start in STARTS:
            card_id, user_id = rng.randrange(1, 10**6), rng.randrange(1, 10**4)
            now, state = start, None
            for _ in range(8):  # a new card, then whatever the answers make of it
                after = schedule_answers(scheduler, to_fsrs_card(card_id, state, now), now, time_zone=time_zone,
                                         user_id=user_id)
                shown = preview_intervals(scheduler, card_id, state, now, time_zone=time_zone, user_id=user_id)
                assert shown == _shown_as_the_page_counts(after, now, days), (time_zone, hour, now, state)
                shown_count += 1
                reviews_shown += any(answered.state == State.Review for answered in after.values())
                answered = after[rng.choice(RATINGS)]
                state = _state(answered)
                # Answered again when due, or a little early or late, so that clock changes fall in between.
                now = max(now + timedelta(minutes=1), answered.due + timedelta(hours=rng.uniform(-30, 30)))
    assert reviews_shown > shown_count // 2  # review intervals were shown, not only learning steps
