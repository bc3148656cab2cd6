"""Each class's card list and roster equal the same numbers worked out one card state at a time.

A small class (a few of the school's students), a large one (most of them, with other students'
states to rule out) and one holding every student (only the teacher, who has no states, outside it)
are read by different plans; each must give what fsrs and plain counting give.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from fsrs import State
from sqlalchemy import select

from flashapp.accounts import register_user
from flashapp.classroom import assign_deck, create_classroom, join_classroom
from flashapp.models import Card, CardState, User
from flashapp.scheduling import make_scheduler, predicted_recall
from flashapp.stats import class_roster, class_scope, forgotten_cards
from tests.helpers import FAST_HASH_METHOD, build_numbers_deck

NOW = datetime(2026, 4, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)


@pytest.fixture
def school(session):
    """Two decks (one card of the second retired), nine students with states drawn at random, three classes."""
    first = build_numbers_deck(session, count=10, now=NOW - timedelta(days=90))
    build_numbers_deck(session, count=6, slug="second", now=NOW - timedelta(days=90))
    cards = list(session.scalars(select(Card).order_by(Card.id)))
    cards[-1].retired = True
    teacher = register_user(session, username="mrs-k", password="long enough", password_method=FAST_HASH_METHOD)
    students = [register_user(session, username=f"s{n}", password="long enough", password_method=FAST_HASH_METHOD)
                for n in range(9)]
    small = create_classroom(session, teacher=teacher, name="Small")
    large = create_classroom(session, teacher=teacher, name="Large")
    everyone = create_classroom(session, teacher=teacher, name="Everyone")
    for student in students[:2]:
        join_classroom(session, user=student, code=small.join_code)
    for student in students[1:8]:
        join_classroom(session, user=student, code=large.join_code)
    for student in students:
        join_classroom(session, user=student, code=everyone.join_code)
    assign_deck(session, classroom=small, deck_id=first.id, target_date=None)
    session.flush()
    rng = random.Random(20260401)
    for student in students:
        for card in rng.sample(cards, 11):
            age = timedelta(seconds=rng.randrange(0, 60 * 86_400), microseconds=rng.randrange(1_000_000))
            reps = rng.randrange(1, 9)
            again = rng.randrange(0, reps + 1)
            session.add(CardState(user_id=student.id, card_id=card.id, state=State.Review, step=None,
                                  stability=rng.choice([0.3, 1.0, 2.5, 7.0, 30.0, 120.0]), difficulty=5.0,
                                  due=NOW + timedelta(days=rng.uniform(-5, 5)), last_review=NOW - age, reps=reps,
                                  again_count=again, lapses=rng.randrange(0, again + 1)))
    session.commit()
    return small, large, everyone


def _states(session, classroom_id):
    scope = class_scope(session, classroom_id=classroom_id)
    states = session.scalars(select(CardState).where(CardState.user_id.in_(scope.student_ids))).all()
    return scope, [state for state in states if state.card_id in scope.card_decks]


@pytest.mark.parametrize(("name", "most_of_the_school"), [("Small", False), ("Large", True), ("Everyone", True)])
def test_the_card_list_is_the_mean_of_each_states_recall_and_the_sum_of_its_counts(session, school, name,
                                                                                    most_of_the_school):
    classroom = next(c for c in school if c.name == name)
    scheduler = make_scheduler(enable_fuzzing=False)
    scope, states = _states(session, classroom.id)
    assert scope.most_of_the_school is most_of_the_school
    # The large class has other students' states to rule out; the teacher, outside every class, has none.
    assert bool(scope.studying_outsiders) is (name == "Large")
    expected: dict[int, list] = {}
    for state in states:
        if state.card_id in scope.retired:
            continue
        numbers = expected.setdefault(state.card_id, [[], 0, 0, 0])
        zone = session.get(User, state.user_id).time_zone
        recall = predicted_recall(state, NOW, time_zone=zone, day_starts_at_hour=4, parameters=scheduler.parameters)
        if recall is not None:
            numbers[0].append(recall)
        numbers[1] += state.reps
        numbers[2] += state.again_count
        numbers[3] += state.lapses
    rows = forgotten_cards(session, scheduler, classroom_id=classroom.id, now=NOW, limit=None)
    assert len(expected) >= 8
    assert {row.card_id: (row.mean_recall, row.students, row.reviews, row.again, row.lapses) for row in rows} == {
        card_id: (pytest.approx(sum(recalls) / len(recalls), rel=1e-12), len(recalls), reps, again, lapses)
        for card_id, (recalls, reps, again, lapses) in expected.items()}
    recalls = [row.mean_recall for row in rows]
    assert recalls == sorted(recalls)
    some_card = rows[len(rows) // 2]
    assert forgotten_cards(session, scheduler, classroom_id=classroom.id, now=NOW,
                           card_id=some_card.card_id) == [some_card]


@pytest.mark.parametrize("name", ["Small", "Large", "Everyone"])
def test_the_roster_counts_each_students_states(session, school, name):
    classroom = next(c for c in school if c.name == name)
    scope, states = _states(session, classroom.id)
    active = set(scope.active_cards())
    roster = {row.user_id: row for row in class_roster(session, classroom_id=classroom.id, now=NOW)}
    assert set(roster) == set(scope.student_ids)
    for user_id, row in roster.items():
        own = [state for state in states if state.user_id == user_id]
        assert row.introduced == sum(state.card_id in active for state in own)
        assert row.due_now == sum(state.card_id in active and state.due <= NOW for state in own)
        assert row.last_active == max(state.last_review for state in own)
        assert row.total == len(active)
