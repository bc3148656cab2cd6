"""A class's numbers name its cards instead of joining to them: other decks and retired cards stay out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from flashapp.accounts import register_user
from flashapp.classroom import assign_deck, create_classroom, join_classroom
from flashapp.models import Card, CardState, ReviewLog
from flashapp.scheduling import make_scheduler
from flashapp.stats import class_roster, class_scope, forgotten_cards
from tests.helpers import FAST_HASH_METHOD, build_numbers_deck

NOW = datetime(2026, 4, 1, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
REVIEW = 2


def answer(session, user, card, *, days_ago, rating, token, stability=5.0, due_in=1.0):
    """One answer to a review-state card and the state it leaves (counted as its only review)."""
    at = NOW - days_ago * DAY
    session.add(ReviewLog(user_id=user.id, card_id=card.id, rating=rating, reviewed_at=at, duration_ms=3000,
                          state_before=REVIEW, due=at + DAY, token=token))
    session.add(CardState(user_id=user.id, card_id=card.id, state=REVIEW, step=None, stability=stability,
                          difficulty=5.0, due=NOW + due_in * DAY, last_review=at, reps=1,
                          again_count=int(rating == 1), lapses=int(rating == 1)))


@pytest.fixture
def school(session):
    """Two decks; Ann and Ben in one class; a retired card of the first deck that Ann answered last."""
    numbers = build_numbers_deck(session, count=4, now=NOW - 60 * DAY)
    others = build_numbers_deck(session, count=3, slug="others", now=NOW - 60 * DAY)
    n1, n2, n3, retired = session.scalars(select(Card).where(Card.deck_id == numbers.id).order_by(Card.position))
    o1, o2, _ = session.scalars(select(Card).where(Card.deck_id == others.id).order_by(Card.position))
    retired.retired = True
    teacher = register_user(session, username="mrs-k", password="long enough", password_method=FAST_HASH_METHOD)
    ann, ben = (register_user(session, username=name, password="long enough", password_method=FAST_HASH_METHOD)
                for name in ("ann", "ben"))
    classroom = create_classroom(session, teacher=teacher, name="Numbers 1")
    for student in (ann, ben):
        join_classroom(session, user=student, code=classroom.join_code)
    answer(session, ann, n1, days_ago=10, rating=3, token="a1", due_in=-1)
    answer(session, ann, n2, days_ago=5, rating=1, token="a2")
    answer(session, ann, retired, days_ago=2, rating=1, token="a3", due_in=-1)
    answer(session, ann, o1, days_ago=1, rating=3, token="a4", due_in=-1)
    answer(session, ben, o1, days_ago=3, rating=1, token="b1", due_in=-1)
    answer(session, ben, o2, days_ago=4, rating=3, token="b2")
    answer(session, ben, n3, days_ago=40, rating=3, token="b3")
    session.commit()
    return classroom, numbers, others, (n1, n2, n3, retired, o1, o2)


def test_a_class_with_one_of_two_decks_counts_that_deck_alone(session, school):
    classroom, numbers, _, (n1, n2, n3, _, _, _) = school
    assign_deck(session, classroom=classroom, deck_id=numbers.id, target_date=(NOW + 10 * DAY).date())
    session.commit()
    scope = class_scope(session, classroom_id=classroom.id)
    assert not scope.every_deck and scope.deck_ids == [numbers.id]
    assert sorted(scope.active_cards()) == sorted(card.id for card in (n1, n2, n3))
    assert scope.deck_totals() == {numbers.id: 3}

    roster = {row.username: row for row in class_roster(session, classroom_id=classroom.id, now=NOW)}
    ann, ben = roster["ann"], roster["ben"]
    # The retired card is not introduced nor due, but its answer is Ann's latest and is in her window.
    assert (ann.introduced, ann.total, ann.due_now, ann.last_active) == (2, 3, 1, NOW - 2 * DAY)
    assert (ann.reviews_7d, ann.review_answers_30d, ann.recalled_30d) == (2, 3, 1)
    assert ann.introduced_by_deck == {numbers.id: 2}
    # Ben's work on the other deck is not this class's.
    assert (ben.introduced, ben.due_now, ben.last_active, ben.reviews_7d, ben.review_answers_30d) == (
        1, 0, NOW - 40 * DAY, 0, 0)

    rows = forgotten_cards(session, make_scheduler(enable_fuzzing=False), classroom_id=classroom.id, now=NOW,
                           limit=None)
    assert sorted(row.card_id for row in rows) == sorted(card.id for card in (n1, n2, n3))


def test_a_class_without_assignments_counts_every_deck_but_retired_cards(session, school):
    classroom, _, _, (n1, n2, n3, retired, o1, o2) = school
    scope = class_scope(session, classroom_id=classroom.id)
    assert scope.every_deck and scope.retired == frozenset({retired.id})
    roster = {row.username: row for row in class_roster(session, classroom_id=classroom.id, now=NOW, scope=scope)}
    ann, ben = roster["ann"], roster["ben"]
    assert (ann.introduced, ann.total, ann.due_now, ann.last_active) == (3, 6, 2, NOW - DAY)
    assert (ann.reviews_7d, ann.review_answers_30d, ann.recalled_30d) == (3, 4, 2)
    assert (ben.introduced, ben.due_now, ben.reviews_7d, ben.review_answers_30d, ben.recalled_30d) == (3, 1, 2, 2, 1)
    scheduler = make_scheduler(enable_fuzzing=False)
    rows = forgotten_cards(session, scheduler, classroom_id=classroom.id, now=NOW, limit=None, scope=scope)
    assert sorted(row.card_id for row in rows) == sorted(card.id for card in (n1, n2, n3, o1, o2))
    (row,) = forgotten_cards(session, scheduler, classroom_id=classroom.id, now=NOW, card_id=o1.id)
    assert (row.students, row.reviews, row.again) == (2, 2, 1)
    assert forgotten_cards(session, scheduler, classroom_id=classroom.id, now=NOW, card_id=retired.id) == []


def test_each_deck_with_a_target_date_is_paced_on_its_own_cards(session, school):
    classroom, numbers, others, _ = school
    for deck in (numbers, others):
        assignment = assign_deck(session, classroom=classroom, deck_id=deck.id, target_date=(NOW + 10 * DAY).date())
        assignment.created_at = NOW - 20 * DAY
    session.commit()
    assert class_scope(session, classroom_id=classroom.id).every_deck
    roster = {row.username: row for row in class_roster(session, classroom_id=classroom.id, now=NOW)}
    ann, ben = roster["ann"], roster["ben"]
    assert ann.introduced_by_deck == {numbers.id: 2, others.id: 1}
    assert ben.introduced_by_deck == {numbers.id: 1, others.id: 2}
    # 2/3 of the way: 2 of 3 numbers cards and 2 of 3 others expected; under 80% of that is behind.
    assert ann.behind == [f"behind the pace for {others.title}"]
    assert ben.behind == [f"behind the pace for {numbers.title}"]


def test_a_class_holding_most_of_the_school_leaves_out_the_other_accounts_states(session, school):
    classroom, _, _, (n1, _, _, _, o1, _) = school
    carl = register_user(session, username="carl", password="long enough", password_method=FAST_HASH_METHOD)
    answer(session, carl, o1, days_ago=1, rating=1, token="c1", stability=0.5)
    answer(session, carl, n1, days_ago=1, rating=1, token="c2", stability=0.5)
    session.commit()
    scope = class_scope(session, classroom_id=classroom.id)
    # Two students of four accounts: the class's card states are every state but the teacher's and Carl's.
    assert scope.most_of_the_school
    assert scope.outsiders == (classroom.teacher_id, carl.id)
    assert scope.studying_outsiders == (carl.id,)  # the teacher has no states to rule out
    scheduler = make_scheduler(enable_fuzzing=False)
    rows = {row.card_id: row for row in forgotten_cards(session, scheduler, classroom_id=classroom.id, now=NOW,
                                                        limit=None, scope=scope)}
    assert (rows[o1.id].students, rows[o1.id].reviews, rows[o1.id].again) == (2, 2, 1)
    assert (rows[n1.id].students, rows[n1.id].reviews, rows[n1.id].again) == (1, 1, 0)
    (alone,) = forgotten_cards(session, scheduler, classroom_id=classroom.id, now=NOW, card_id=n1.id, scope=scope)
    assert alone.mean_recall == rows[n1.id].mean_recall
