"""Review counts kept on card states, one count of active cards per deck, and predicted recall in SQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fsrs import Card as FsrsCard
from fsrs import Rating, State
from sqlalchemy import select, update

from flashapp.accounts import register_user
from flashapp.classroom import create_classroom, join_classroom
from flashapp.models import Card, CardState, Deck, ReviewState
from flashapp.scheduling import ReviewCounts, active_card_counts, count_reviews, make_scheduler
from flashapp.stats import class_student_ids, forgotten_cards, true_retention
from tests.helpers import FAST_HASH_METHOD, build_numbers_deck

NOW = datetime(2026, 4, 1, 12, 0, 0, 500000, tzinfo=timezone.utc)

class Review:
    def __init__(self, rating: Rating, state_before: ReviewState) -> None:
        self.rating, self.state_before = rating, state_before


def test_counts_add_up_answers_agains_and_lapses():
    reviews = [Review(Rating.Good, ReviewState.NEW), Review(Rating.Again, ReviewState.LEARNING),
               Review(Rating.Good, ReviewState.LEARNING), Review(Rating.Again, ReviewState.REVIEW),
               Review(Rating.Easy, ReviewState.RELEARNING), Review(Rating.Again, ReviewState.RELEARNING)]
    assert count_reviews(reviews) == ReviewCounts(reps=6, lapses=1, again=3)
    assert count_reviews([]) == ReviewCounts() == ReviewCounts.of(None)
    assert ReviewCounts(reps=2).plus(rating=Rating.Again, state_before=ReviewState.REVIEW) == ReviewCounts(3, 1, 1)


def test_true_retention_is_the_share_not_again():
    assert true_retention(answers=4, recalled=3) == 0.75
    assert true_retention(answers=0, recalled=0) is None


@pytest.fixture
def two_decks(session):
    for slug in ("alpha", "beta"):
        build_numbers_deck(session, count=8, slug=slug, now=NOW)
    session.commit()
    return list(session.scalars(select(Deck.id).order_by(Deck.slug)))


def test_active_card_counts_leave_out_retired_cards(session, two_decks):
    alpha, beta = two_decks
    assert active_card_counts(session, [alpha, beta]) == {alpha: 8, beta: 8}
    session.execute(update(Card).where(Card.deck_id == beta, Card.position < 3).values(retired=True))
    assert active_card_counts(session, [alpha, beta]) == {alpha: 8, beta: 5}
    assert active_card_counts(session, [beta]) == {beta: 5}
    assert active_card_counts(session, []) == {}


def test_predicted_recall_in_sql_is_fsrs_retrievability(session, two_decks):
    """Stabilities and elapsed times around whole days, to the microsecond, against fsrs itself."""
    teacher = register_user(session, username="mrs-k", password="long enough", password_method=FAST_HASH_METHOD)
    classroom = create_classroom(session, teacher=teacher, name="Recall")
    cards = list(session.scalars(select(Card).order_by(Card.id)))
    ages = [timedelta(days=10), timedelta(days=10, microseconds=-1), timedelta(days=3, microseconds=1),
            timedelta(0), timedelta(hours=-2), timedelta(days=400, hours=5), timedelta(microseconds=999999),
            timedelta(days=1, microseconds=-999999)]
    stabilities = [10.0, 0.5, 3.3, 80.0, 2.0, 1.7, 0.01, 25.0]
    scheduler = make_scheduler(enable_fuzzing=False, desired_retention=0.85)
    expected: dict[int, list[float]] = {}
    for u in range(3):
        student = register_user(session, username=f"s{u}", password="long enough", password_method=FAST_HASH_METHOD)
        join_classroom(session, user=student, code=classroom.join_code)
        session.flush()
        for c, card in enumerate(cards[:8]):
            age, stability = ages[(c + u) % 8], stabilities[(c * 3 + u) % 8]
            session.add(CardState(user_id=student.id, card_id=card.id, state=State.Review, step=None,
                                  stability=stability, difficulty=5.0, due=NOW, last_review=NOW - age, reps=1))
            memory = FsrsCard(card_id=card.id, state=State.Review, stability=stability, difficulty=5.0, due=NOW,
                              last_review=NOW - age)
            expected.setdefault(card.id, []).append(scheduler.get_card_retrievability(memory, NOW))
    session.commit()
    assert len(class_student_ids(session, classroom.id)) == 3
    rows = forgotten_cards(session, scheduler, classroom_id=classroom.id, now=NOW, limit=None)
    assert {row.card_id: row.mean_recall for row in rows} == {
        card_id: pytest.approx(sum(values) / 3, rel=1e-12) for card_id, values in expected.items()}
    assert all(row.students == 3 and row.reviews == 3 for row in rows)


@pytest.mark.parametrize("now", [NOW, datetime(2026, 4, 1, 23, 59, 59, 999800, tzinfo=timezone.utc)])
def test_each_states_predicted_recall_is_fsrs_within_a_millisecond_of_whole_days(session, two_decks, now):
    """One student, one state per card: elapsed times a few microseconds to a few milliseconds either side of
    whole days (where SQLite's millisecond reading of a time cannot settle the day), and away from them."""
    teacher = register_user(session, username="mrs-k", password="long enough", password_method=FAST_HASH_METHOD)
    classroom = create_classroom(session, teacher=teacher, name="Recall")
    student = register_user(session, username="s", password="long enough", password_method=FAST_HASH_METHOD)
    join_classroom(session, user=student, code=classroom.join_code)
    session.flush()
    offsets = [0, 1, -1, 400, -400, 999, -999, 1000, -1000, 1001, -1001, 1500, -1500, 43_200_000_000]
    last_reviews = [now - timedelta(days=7, microseconds=offset) for offset in offsets]
    # A time that julianday() rounds up into the next day, and one a whole number of days before it.
    last_reviews += [datetime(2026, 3, 20, 23, 59, 59, 999600, tzinfo=timezone.utc),
                     now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)]
    cards = list(session.scalars(select(Card).order_by(Card.id)))
    scheduler = make_scheduler(enable_fuzzing=False)
    expected = {}
    for card, last_review in zip(cards, last_reviews, strict=False):
        session.add(CardState(user_id=student.id, card_id=card.id, state=State.Review, step=None, stability=3.5,
                              difficulty=5.0, due=now, last_review=last_review, reps=1))
        memory = FsrsCard(card_id=card.id, state=State.Review, stability=3.5, difficulty=5.0, due=now,
                          last_review=last_review)
        expected[card.id] = scheduler.get_card_retrievability(memory, now)
    session.commit()
    assert len(expected) == len(last_reviews)
    rows = forgotten_cards(session, scheduler, classroom_id=classroom.id, now=now, limit=None)
    assert {row.card_id: row.mean_recall for row in rows} == {
        card_id: pytest.approx(recall, rel=1e-12) for card_id, recall in expected.items()}
