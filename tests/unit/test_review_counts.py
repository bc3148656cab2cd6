"""Review counts kept on card states, one count of active cards per deck, and predicted recall in SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from fsrs import Card as FsrsCard
from fsrs import Rating, State
from fsrs.scheduler import DEFAULT_PARAMETERS
from sqlalchemy import select, update

from flashapp.accounts import register_user
from flashapp.classroom import create_classroom, join_classroom
from flashapp.models import Card, CardState, Deck, PersonalParameters, ReviewState
from flashapp.scheduling import ReviewCounts, active_card_counts, count_reviews, make_scheduler, predicted_recall
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


def _recall(state: CardState | FsrsCard, now: datetime, *, time_zone: str = "UTC",
            parameters: Sequence[float] = DEFAULT_PARAMETERS) -> float | None:
    return predicted_recall(state, now, time_zone=time_zone, day_starts_at_hour=4, parameters=parameters)


def test_predicted_recall_counts_study_days_not_24_hour_periods():
    """The reference itself: a review late yesterday is a day old this morning; one this morning is 0 days old."""
    state = FsrsCard(card_id=1, state=State.Review, stability=2.0, difficulty=5.0, due=NOW,
                     last_review=datetime(2026, 3, 31, 22, 0, tzinfo=timezone.utc))
    at_9 = datetime(2026, 4, 1, 9, 0, tzinfo=timezone.utc)  # 11 hours later, the next study day
    assert _recall(state, at_9) == pytest.approx(make_scheduler().get_card_retrievability(
        FsrsCard(card_id=1, state=State.Review, stability=2.0, difficulty=5.0, due=NOW,
                 last_review=at_9 - timedelta(days=1)), at_9), rel=1e-12)
    assert _recall(state, at_9) < 1.0
    this_morning = replace(state, last_review=datetime(2026, 4, 1, 4, 0, tzinfo=timezone.utc))
    assert _recall(this_morning, datetime(2026, 4, 2, 3, 59, tzinfo=timezone.utc)) == 1.0
    # In New York the study day runs to 04:00 local (08:00 UTC): at 07:00 UTC the 22:00 review is still today's.
    assert _recall(state, datetime(2026, 4, 1, 7, 0, tzinfo=timezone.utc), time_zone="America/New_York") == 1.0
    assert _recall(state, at_9, time_zone="America/New_York") == _recall(state, at_9)
    assert _recall(replace(state, last_review=None), at_9) is None
    assert _recall(replace(state, stability=None), at_9) == 0.0


def test_predicted_recall_in_sql_is_the_study_day_reference(session, two_decks):
    """Stabilities and elapsed times around whole days, to the microsecond, against the study-day reference."""
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
            state = CardState(user_id=student.id, card_id=card.id, state=State.Review, step=None,
                              stability=stability, difficulty=5.0, due=NOW, last_review=NOW - age, reps=1)
            session.add(state)
            recall = _recall(state, NOW)
            assert recall is not None
            expected.setdefault(card.id, []).append(recall)
    session.commit()
    assert len(class_student_ids(session, classroom.id)) == 3
    rows = forgotten_cards(session, scheduler, classroom_id=classroom.id, now=NOW, limit=None)
    assert {row.card_id: row.mean_recall for row in rows} == {
        card_id: pytest.approx(sum(values) / 3, rel=1e-12) for card_id, values in expected.items()}
    assert all(row.students == 3 and row.reviews == 3 for row in rows)


@pytest.mark.parametrize("now", [NOW, datetime(2026, 4, 2, 3, 59, 59, 999800, tzinfo=timezone.utc)])
def test_each_states_predicted_recall_is_exact_within_a_millisecond_of_a_day_start(session, two_decks, now):
    """One student, one state per card: last reviews a few microseconds to a few milliseconds either side of
    a study day's start (where SQLite's millisecond reading of a time cannot settle the day), and away from it."""
    teacher = register_user(session, username="mrs-k", password="long enough", password_method=FAST_HASH_METHOD)
    classroom = create_classroom(session, teacher=teacher, name="Recall")
    student = register_user(session, username="s", password="long enough", password_method=FAST_HASH_METHOD)
    join_classroom(session, user=student, code=classroom.join_code)
    session.flush()
    day_began = datetime(2026, 3, 25, 4, tzinfo=timezone.utc)
    offsets = [0, 1, -1, 400, -400, 999, -999, 1000, -1000, 1001, -1001, 1500, -1500, 43_200_000_000]
    last_reviews = [day_began + timedelta(microseconds=offset) for offset in offsets]
    # A time that julianday() rounds up into the next second, and one a whole number of days before now.
    last_reviews += [datetime(2026, 3, 20, 3, 59, 59, 999600, tzinfo=timezone.utc), now - timedelta(days=2)]
    cards = list(session.scalars(select(Card).order_by(Card.id)))
    scheduler = make_scheduler(enable_fuzzing=False)
    expected = {}
    for card, last_review in zip(cards, last_reviews, strict=False):
        state = CardState(user_id=student.id, card_id=card.id, state=State.Review, step=None, stability=3.5,
                          difficulty=5.0, due=now, last_review=last_review, reps=1)
        session.add(state)
        expected[card.id] = _recall(state, now)
    session.commit()
    assert len(expected) == len(last_reviews)
    assert len(set(expected.values())) > 2  # the offsets straddle day starts
    rows = forgotten_cards(session, scheduler, classroom_id=classroom.id, now=now, limit=None)
    assert {row.card_id: row.mean_recall for row in rows} == {
        card_id: pytest.approx(recall, rel=1e-12) for card_id, recall in expected.items()}


def test_predicted_recall_takes_each_students_zone_and_forgetting_curve(session, two_decks):
    """A class mixing time zones and a student with their own parameters: each state by its own student's rule."""
    teacher = register_user(session, username="mrs-k", password="long enough", password_method=FAST_HASH_METHOD)
    classroom = create_classroom(session, teacher=teacher, name="Recall")
    own = list(DEFAULT_PARAMETERS)
    own[20] = 0.5  # a steeper forgetting curve than the default decay
    students = []
    for name, zone_name in (("utc", "UTC"), ("ny", "America/New_York"), ("tokyo", "Asia/Tokyo"), ("own", "UTC")):
        student = register_user(session, username=name, password="long enough", password_method=FAST_HASH_METHOD,
                                time_zone=zone_name)
        join_classroom(session, user=student, code=classroom.join_code)
        students.append(student)
    session.flush()
    now = datetime(2026, 4, 1, 6, 30, tzinfo=timezone.utc)  # Tokyo's afternoon, New York's small hours
    session.add(PersonalParameters(user_id=students[-1].id, parameters=json.dumps(own), tried_at=now,
                                   tried_review_count=500, tried_outcome="kept"))
    cards = list(session.scalars(select(Card).order_by(Card.id)))
    expected: dict[int, list[float]] = {}
    for s, student in enumerate(students):
        for c, card in enumerate(cards[:6]):
            last = now - timedelta(hours=5 + 7 * c + s)
            state = CardState(user_id=student.id, card_id=card.id, state=State.Review, step=None,
                              stability=1.5 + c, difficulty=5.0, due=now, last_review=last, reps=1)
            session.add(state)
            recall = _recall(state, now, time_zone=student.time_zone,
                             parameters=own if student is students[-1] else DEFAULT_PARAMETERS)
            assert recall is not None
            expected.setdefault(card.id, []).append(recall)
    session.commit()
    # The rules differ: the same ages give different recalls by zone and by curve.
    assert len({round(values[0], 9) for values in expected.values()} | {round(values[1], 9) for values in
                                                                        expected.values()}) > 6
    rows = forgotten_cards(session, make_scheduler(enable_fuzzing=False), classroom_id=classroom.id, now=now,
                           limit=None)
    assert {row.card_id: row.mean_recall for row in rows} == {
        card_id: pytest.approx(sum(values) / 4, rel=1e-12) for card_id, values in expected.items()}


def test_the_rare_states_have_the_references_recall_in_sql_too(session, two_decks):
    """No stability, a stability of 0 or below, no review at all, and reviews at or after the end of the
    study day (with and without a stability): each card has one state, so its mean is that state's recall."""
    teacher = register_user(session, username="mrs-k", password="long enough", password_method=FAST_HASH_METHOD)
    classroom = create_classroom(session, teacher=teacher, name="Recall")
    student = register_user(session, username="s", password="long enough", password_method=FAST_HASH_METHOD)
    join_classroom(session, user=student, code=classroom.join_code)
    session.flush()
    day_ends = datetime(2026, 4, 2, 4, tzinfo=timezone.utc)  # NOW's study day ends at 04:00 the next morning
    rare = [(None, NOW - timedelta(days=3)), (0.0, NOW - timedelta(days=3)), (-1.5, NOW - timedelta(days=3)),
            (4.0, None), (None, None), (4.0, day_ends - timedelta(microseconds=1)), (4.0, day_ends),
            (4.0, day_ends + timedelta(days=3)), (None, day_ends + timedelta(days=3)), (2.5, NOW - timedelta(days=9))]
    cards = list(session.scalars(select(Card).order_by(Card.id)))
    expected = {}
    for card, (stability, last_review) in zip(cards, rare, strict=False):
        state = CardState(user_id=student.id, card_id=card.id, state=State.Review, step=None, stability=stability,
                          difficulty=5.0, due=NOW, last_review=last_review, reps=1)
        session.add(state)
        expected[card.id] = _recall(state, NOW)
    session.commit()
    assert set(expected.values()) >= {None, 0.0, 1.0}
    rows = forgotten_cards(session, make_scheduler(enable_fuzzing=False), classroom_id=classroom.id, now=NOW,
                           limit=None)
    assert {row.card_id: row.mean_recall for row in rows} == {
        card_id: None if recall is None else pytest.approx(recall, rel=1e-12) for card_id, recall in expected.items()}
