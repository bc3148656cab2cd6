"""A class's numbers name its cards instead of joining to them: other decks and retired cards stay out."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from flashapp.accounts import register_user
from flashapp.classroom import assign_deck, create_classroom, join_classroom
from flashapp.models import Card, CardState, ReviewLog, User
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


def test_a_class_whose_students_studied_only_its_decks_counts_without_looking_at_decks(session, school):
    """The per-deck counts the database keeps show that no student has states elsewhere; the numbers are the same."""
    classroom, numbers, _, (n1, n2, n3, retired, o1, _) = school
    teacher_id = classroom.teacher_id
    dee, eve = (register_user(session, username=name, password="long enough", password_method=FAST_HASH_METHOD)
                for name in ("dee", "eve"))
    only_numbers = create_classroom(session, teacher=session.get(User, teacher_id), name="Numbers 2")
    for student in (dee, eve):
        join_classroom(session, user=student, code=only_numbers.join_code)
    answer(session, dee, n1, days_ago=3, rating=1, token="d1", due_in=-1)
    answer(session, dee, retired, days_ago=2, rating=3, token="d2")
    answer(session, eve, n2, days_ago=6, rating=3, token="e1", stability=2.0)
    answer(session, eve, n3, days_ago=20, rating=3, token="e2", due_in=-2)
    for classroom_with_decks in (classroom, only_numbers):
        assign_deck(session, classroom=classroom_with_decks, deck_id=numbers.id)
    session.commit()

    # Ann and Ben studied the other deck too: their class keeps its condition on the decks.
    assert not class_scope(session, classroom_id=classroom.id).only_its_decks
    scope = class_scope(session, classroom_id=only_numbers.id)
    assert not scope.every_deck and scope.only_its_decks
    looked_up = replace(scope, only_its_decks=False)
    scheduler = make_scheduler(enable_fuzzing=False)

    def numbers_of(scope):
        roster = [(row.username, row.introduced, row.due_now, row.last_active, row.reviews_7d,
                   row.review_answers_30d, row.recalled_30d, row.introduced_by_deck)
                  for row in class_roster(session, classroom_id=only_numbers.id, now=NOW, scope=scope)]
        cards = [(row.card_id, row.mean_recall, row.students, row.reviews, row.again)
                 for row in forgotten_cards(session, scheduler, classroom_id=only_numbers.id, now=NOW, limit=None,
                                            scope=scope)]
        return roster, cards

    roster, cards = numbers_of(scope)
    assert (roster, cards) == numbers_of(looked_up)
    # The retired card is left out of what Dee started and of the cards, but its answer is her latest.
    assert roster[0][:4] == ("dee", 1, 1, NOW - 2 * DAY)
    assert roster[1][:4] == ("eve", 2, 1, NOW - 6 * DAY)
    assert sorted(card_id for card_id, *_ in cards) == sorted([n1.id, n2.id, n3.id])

    # Once Eve answers a card of another deck, the class's numbers look at the decks again, and stay the same.
    answer(session, eve, o1, days_ago=1, rating=1, token="e3")
    session.commit()
    again = class_scope(session, classroom_id=only_numbers.id)
    assert not again.only_its_decks
    assert numbers_of(again) == (roster, cards)
