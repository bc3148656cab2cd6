"""A card never answered: the scheduler keeps the engine's answers to it, and they match the engine's own.

`StudyScheduler.fresh_answered` works out a new card's four answers once per scheduler and moves
them to the time of each showing. These tests hold it to py-fsrs's `review_card` on the same card
at many times, and `schedule_answers` on a new card to the result of the engine run afresh.
Fixed UTC times; fuzz off, as the subject is the memory state and the due time.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fsrs import Card as FsrsCard
from fsrs import Rating, State

from flashapp import scheduling
from flashapp.scheduling import RATINGS, make_scheduler, schedule_answers, to_fsrs_card

# Around a daylight-saving change, a leap day, a year's end and a far future.
TIMES = [datetime(2026, 3, 29, 0, 59, 30, tzinfo=timezone.utc), datetime(2028, 2, 29, 23, 0, tzinfo=timezone.utc),
         datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
         datetime(2091, 7, 4, 12, 0, 1, 250, tzinfo=timezone.utc)]
# Personal parameters as a fit leaves them: unlike the defaults in every weight the first answer uses.
FITTED = [0.3, 1.9, 3.1, 12.5, 6.9, 0.6, 2.1, 0.005, 1.6, 0.12, 1.0, 1.9, 0.11, 0.3, 2.3, 0.25, 2.9, 0.5, 0.7,
          0.05, 0.15]
SCHEDULERS = {
    "defaults": make_scheduler(enable_fuzzing=False),
    "fitted, 80 %": make_scheduler(enable_fuzzing=False, parameters=FITTED, desired_retention=0.8),
    "no learning steps": make_scheduler(enable_fuzzing=False, learning_steps_minutes=()),
    "three learning steps": make_scheduler(enable_fuzzing=False, learning_steps_minutes=(1, 10, 60)),
    "a one-day maximum": make_scheduler(enable_fuzzing=False, maximum_interval_days=1),
}


def _fields(card: FsrsCard) -> tuple[object, ...]:
    return (card.card_id, card.state, card.step, card.stability, card.difficulty, card.due, card.last_review)


@pytest.mark.parametrize("name", SCHEDULERS)
def test_a_fresh_card_answered_is_what_the_engine_makes_of_it_at_every_time(name: str) -> None:
    rules = SCHEDULERS[name]
    for now in TIMES:
        for rating in RATINGS:
            fresh = FsrsCard(card_id=41, state=State.Learning, step=0, due=now)
            expected, _log = rules.engine.review_card(fresh, rating, now)
            assert _fields(rules.fresh_answered(41, rating, now)) == _fields(expected), (name, now, rating)


@pytest.mark.parametrize("name", SCHEDULERS)
def test_schedule_answers_on_a_new_card_equals_running_the_engine_afresh(name: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    rules = SCHEDULERS[name]
    kept = {now: schedule_answers(rules, to_fsrs_card(7, None, now), now, time_zone="Europe/Berlin", user_id=3)
            for now in TIMES}
    monkeypatch.setattr(scheduling, "_is_fresh", lambda card: False)  # every card through the engine
    for now in TIMES:
        afresh = schedule_answers(rules, to_fsrs_card(7, None, now), now, time_zone="Europe/Berlin", user_id=3)
        assert {r: _fields(c) for r, c in kept[now].items()} == {r: _fields(c) for r, c in afresh.items()}, (name, now)


def test_the_kept_answers_are_not_changed_by_what_is_done_with_a_card_handed_out() -> None:
    rules = make_scheduler(enable_fuzzing=False)
    now = TIMES[0]
    handed = rules.fresh_answered(5, Rating.Good, now)
    handed.stability, handed.due = 1e9, now + timedelta(days=999)
    again = rules.fresh_answered(5, Rating.Good, now + timedelta(hours=1))
    assert again.stability != 1e9 and again.due - (now + timedelta(hours=1)) == timedelta(minutes=10)


def test_a_card_with_any_history_is_not_taken_for_a_fresh_one() -> None:
    now = TIMES[1]
    assert scheduling._is_fresh(to_fsrs_card(1, None, now))
    answered = make_scheduler(enable_fuzzing=False).fresh_answered(1, Rating.Again, now)
    assert not scheduling._is_fresh(answered)
    assert not scheduling._is_fresh(FsrsCard(card_id=1, state=State.Learning, step=1, due=now))
    assert not scheduling._is_fresh(FsrsCard(card_id=1, state=State.Relearning, step=0, due=now))
