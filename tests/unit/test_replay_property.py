"""Property: whatever answers and undos happen, replaying a card's review log gives its stored state.

Random sequences of actions on two cards: answer (rating 1-4, after a gap of minutes to months)
or undo the latest answer. Fuzzing off, fixed start time. After every action each card's log
must hold exactly the answers not undone, and its replay (and its counts of answers, Again
answers and lapses) must equal the stored state.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from flashapp.accounts import register_user
from flashapp.consistency import check_database
from flashapp.models import Card, CardState, Deck, ReviewLog
from flashapp.scheduling import (
    RATINGS,
    ReviewCounts,
    answer_card,
    card_reviews,
    count_reviews,
    make_scheduler,
    replay,
    undo_last_answer,
)
from tests.helpers import FAST_HASH_METHOD, T0, build_numbers_deck

SCHEDULER = make_scheduler(enable_fuzzing=False)

GAPS = st.one_of(
    st.integers(min_value=1, max_value=59).map(lambda n: timedelta(minutes=n)),
    st.integers(min_value=1, max_value=47).map(lambda n: timedelta(hours=n)),
    st.integers(min_value=1, max_value=120).map(lambda n: timedelta(days=n)),
)
ANSWER = st.tuples(st.just("answer"), st.integers(min_value=0, max_value=1), st.sampled_from(RATINGS), GAPS)
UNDO = st.just(("undo",))
ACTIONS = st.lists(st.one_of(ANSWER, ANSWER, UNDO), max_size=30)


@pytest.fixture
def world(session):
    """One user and a deck; the property resets the reviews and states for every example."""
    build_numbers_deck(session)
    user = register_user(session, username="ada", password="long enough", password_method=FAST_HASH_METHOD)
    session.commit()
    deck = session.scalar(select(Deck))
    cards = list(session.scalars(select(Card).order_by(Card.position)))[:2]
    return user.id, deck.id, [card.id for card in cards]


def stored(state: CardState) -> tuple:
    return (state.state, state.step, state.stability, state.difficulty, state.due, state.last_review)


def replayed(card) -> tuple:
    return (card.state.value, card.step, card.stability, card.difficulty, card.due, card.last_review)


def assert_replay_matches(session, user_id: int, card_ids: list[int], model: list[tuple]) -> None:
    for index, card_id in enumerate(card_ids):
        reviews = card_reviews(session, user_id=user_id, card_id=card_id)
        assert [(r.rating, r.reviewed_at) for r in reviews] == [
            (int(rating), at) for card, rating, at in model if card == index]
        state = session.scalar(select(CardState).where(CardState.user_id == user_id,
                                                       CardState.card_id == card_id))
        if not reviews:
            assert state is None
        else:
            assert stored(state) == replayed(replay(SCHEDULER, card_id, reviews, time_zone="UTC"))
            assert ReviewCounts.of(state) == count_reviews(reviews)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS)
def test_replaying_the_review_log_reproduces_the_stored_state(session, world, actions):
    user_id, deck_id, card_ids = world
    session.execute(delete(ReviewLog))
    session.execute(delete(CardState))
    session.commit()

    model: list[tuple] = []  # (card index, rating, time) of the answers not undone, oldest first
    at = T0
    for number, action in enumerate(actions):
        if action[0] == "answer":
            _, index, rating, gap = action
            at += gap
            answer_card(session, SCHEDULER, user_id=user_id, card_id=card_ids[index], rating=rating,
                        token=f"showing-{number}", now=at)
            model.append((index, rating, at))
        else:
            undone = undo_last_answer(session, SCHEDULER, user_id=user_id, deck_id=deck_id)
            assert undone == (card_ids[model.pop()[0]] if model else None)
        session.commit()
        assert_replay_matches(session, user_id, card_ids, model)
        session.commit()

    report = check_database(session, SCHEDULER, fix=False)
    assert report.problems == []
