"""The teacher's numbers, checked against values worked out by hand on a small fixed history."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select

from flashapp.accounts import register_user
from flashapp.classroom import assign_deck, create_classroom, join_classroom
from flashapp.exports import class_revlog_rows
from flashapp.models import Card, CardState, Deck, ReviewLog
from flashapp.scheduling import make_scheduler
from flashapp.stats import class_roster, deck_progress, expected_share, forgotten_cards
from tests.helpers import FAST_HASH_METHOD, build_numbers_deck

NOW = datetime(2026, 4, 1, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
LEARNING, REVIEW = 1, 2


def review(session, user, card, *, at, rating, before, token):
    session.add(ReviewLog(user_id=user.id, card_id=card.id, rating=rating, reviewed_at=at, duration_ms=3000,
                          state_before=before, due=at + DAY, token=token))


def state(session, user, card, *, kind, stability, last_review, due, reps=1, again=0, lapses=0):
    """A card state; its counts of reviews, Again answers and lapses match the reviews written beside it."""
    session.add(CardState(user_id=user.id, card_id=card.id, state=kind, step=None if kind == REVIEW else 0,
                          stability=stability, difficulty=5.0, due=due, last_review=last_review,
                          reps=reps, again_count=again, lapses=lapses))


@pytest.fixture
def school(session):
    """Ann, Ben and Cat in one class; Dan studies the same deck outside it."""
    build_numbers_deck(session, count=4, now=NOW - 60 * DAY)
    card1, card2, card3, card4 = session.scalars(select(Card).order_by(Card.position)).all()
    teacher = register_user(session, username="mrs-k", password="long enough", password_method=FAST_HASH_METHOD)
    ann, ben, cat, dan = (register_user(session, username=name, password="long enough",
                                        password_method=FAST_HASH_METHOD)
                          for name in ("ann", "ben", "cat", "dan"))
    classroom = create_classroom(session, teacher=teacher, name="Numbers 1")
    for student in (ann, ben, cat):
        join_classroom(session, user=student, code=classroom.join_code)

    review(session, ann, card1, at=NOW - 40 * DAY, rating=3, before=0, token="a1")
    review(session, ann, card1, at=NOW - 20 * DAY, rating=3, before=REVIEW, token="a2")
    review(session, ann, card1, at=NOW - 10 * DAY, rating=1, before=REVIEW, token="a3")
    review(session, ann, card2, at=NOW - 3 * DAY, rating=3, before=0, token="a4")
    # Stability equal to the days elapsed gives a predicted recall of exactly 0.9 (FSRS's definition).
    state(session, ann, card1, kind=REVIEW, stability=10.0, last_review=NOW - 10 * DAY, due=NOW - DAY,
          reps=3, again=1, lapses=1)
    state(session, ann, card2, kind=LEARNING, stability=3.0, last_review=NOW - 3 * DAY, due=NOW + DAY)
    # Reviewed a moment ago: predicted recall 1.0.
    review(session, cat, card1, at=NOW - DAY, rating=4, before=0, token="c1")
    state(session, cat, card1, kind=REVIEW, stability=20.0, last_review=NOW, due=NOW + 20 * DAY)
    # Dan is not in the class: his answers must not count.
    review(session, dan, card3, at=NOW - DAY, rating=1, before=0, token="d1")
    state(session, dan, card3, kind=LEARNING, stability=0.5, last_review=NOW - 5 * DAY, due=NOW - DAY, again=1)
    session.commit()
    return classroom, (card1, card2, card3, card4), (ann, ben, cat)


def test_the_roster_matches_the_hand_computed_numbers(session, school):
    classroom, _, _ = school
    roster = {row.username: row for row in class_roster(session, classroom_id=classroom.id, now=NOW)}
    assert list(roster) == ["ann", "ben", "cat"]
    ann, ben, cat = roster["ann"], roster["ben"], roster["cat"]
    assert (ann.introduced, ann.total, ann.reviews_7d, ann.due_now) == (2, 4, 1, 1)
    assert (ann.review_answers_30d, ann.recalled_30d, ann.retention_30d) == (2, 1, 0.5)
    assert ann.last_active == NOW - 3 * DAY
    assert (ben.introduced, ben.reviews_7d, ben.retention_30d, ben.due_now, ben.last_active) == (0, 0, None, 0, None)
    assert (cat.introduced, cat.reviews_7d, cat.retention_30d, cat.due_now) == (1, 1, None, 0)
    assert ann.behind == [] and cat.behind == []
    assert ben.behind == ["no reviews in 7 days"]


def test_a_target_date_flags_students_behind_the_pace(session, school):
    classroom, _, _ = school
    deck = session.scalar(select(Deck))
    assignment = assign_deck(session, classroom=classroom, deck_id=deck.id, target_date=(NOW + 10 * DAY).date())
    assignment.created_at = NOW - 20 * DAY
    session.commit()
    # 20 of 30 days gone: 2/3 of 4 cards = 2.67 expected; under 80% of that (2.13) is behind.
    assert expected_share(assigned_on=(NOW - 20 * DAY).date(), target=(NOW + 10 * DAY).date(),
                          today=NOW.date()) == pytest.approx(2 / 3)
    roster = {row.username: row for row in class_roster(session, classroom_id=classroom.id, now=NOW)}
    assert roster["ann"].behind == ["behind the pace for Numbers"]
    assert roster["cat"].behind == ["behind the pace for Numbers"]


def test_the_forgotten_facts_come_weakest_first(session, school):
    classroom, (card1, card2, _, _), _ = school
    rows = forgotten_cards(session, make_scheduler(enable_fuzzing=False), classroom_id=classroom.id, now=NOW)
    assert [row.card_id for row in rows] == [card2.id, card1.id]
    weakest, second = rows
    assert weakest.mean_recall == pytest.approx(0.9) and weakest.students == 1
    assert (weakest.reviews, weakest.again, weakest.lapses, weakest.again_rate) == (1, 0, 0, 0.0)
    assert second.mean_recall == pytest.approx((0.9 + 1.0) / 2) and second.students == 2
    assert (second.reviews, second.again, second.lapses, second.again_rate) == (4, 1, 1, 0.25)
    assert second.note_key == "numbers/square/1" and second.question == "What is the square of 1?"


def test_one_students_progress_per_deck(session, school):
    _, _, (ann, _, _) = school
    deck = session.scalar(select(Deck))
    (progress,) = deck_progress(session, user_id=ann.id, deck_ids=[deck.id], now=NOW)
    assert (progress.total, progress.introduced, progress.due_now, progress.reviews_7d) == (4, 2, 1, 1)
    assert progress.retention_30d == 0.5


def test_the_class_revlog_uses_the_optimisers_layout(session, school):
    classroom, (card1, card2, _, _), (ann, _, cat) = school
    rows = list(class_revlog_rows(session, classroom_id=classroom.id))
    ms = lambda at: int(at.timestamp() * 1000)  # noqa: E731
    # card_id is the student's card: the student's id times a billion, plus the deck's card id.
    ann1, ann2, cat1 = (ann.id * 10**9 + card1.id, ann.id * 10**9 + card2.id, cat.id * 10**9 + card1.id)
    assert rows == [
        (ann1, ms(NOW - 40 * DAY), 3, 0, 3000, "UTC", 4, "ann", card1.id),
        (ann1, ms(NOW - 20 * DAY), 3, 2, 3000, "UTC", 4, "ann", card1.id),
        (ann1, ms(NOW - 10 * DAY), 1, 2, 3000, "UTC", 4, "ann", card1.id),
        (ann2, ms(NOW - 3 * DAY), 3, 0, 3000, "UTC", 4, "ann", card2.id),
        (cat1, ms(NOW - DAY), 4, 0, 3000, "UTC", 4, "cat", card1.id),
    ]


def test_the_number_of_queries_does_not_grow_with_the_class(session, school):
    classroom, (card1, card2, card3, card4), _ = school
    scheduler = make_scheduler(enable_fuzzing=False)
    statements = []
    event.listen(session.get_bind(), "before_cursor_execute", lambda *args: statements.append(args[2]))

    def count_queries():
        statements.clear()
        class_roster(session, classroom_id=classroom.id, now=NOW)
        forgotten_cards(session, scheduler, classroom_id=classroom.id, now=NOW)
        return len(statements)

    small = count_queries()
    for i in range(12):
        student = register_user(session, username=f"extra{i}", password="long enough", password_method=FAST_HASH_METHOD)
        join_classroom(session, user=student, code=classroom.join_code)
        for n, card in enumerate((card1, card2, card3, card4)):
            review(session, student, card, at=NOW - DAY, rating=1 + (i + n) % 4, before=0, token=f"x{i}-{n}")
            state(session, student, card, kind=REVIEW, stability=2.0 + n, last_review=NOW - DAY, due=NOW + DAY,
                  again=int((i + n) % 4 == 0))
    session.commit()
    assert count_queries() == small
    assert len(class_roster(session, classroom_id=classroom.id, now=NOW)) == 15


def test_one_cards_row_alone(session, school):
    classroom, (card1, _, card3, _), _ = school
    scheduler = make_scheduler(enable_fuzzing=False)
    (row,) = forgotten_cards(session, scheduler, classroom_id=classroom.id, now=NOW, card_id=card1.id)
    assert (row.card_id, row.students, row.reviews, row.lapses) == (card1.id, 2, 4, 1)
    assert forgotten_cards(session, scheduler, classroom_id=classroom.id, now=NOW, card_id=card3.id) == []
