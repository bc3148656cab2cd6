"""Which cards the class is struggling with, on a small fixed history, without the app."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from flashapp.accounts import register_user
from flashapp.classroom import assign_deck, create_classroom, join_classroom
from flashapp.exports import class_file_name
from flashapp.models import Card, CardState, ReviewLog
from flashapp.scheduling import make_scheduler
from flashapp.stats import class_roster
from flashapp.teaching import completion, fact_in_words, studying_now
from flashapp.trouble import cards_in_trouble
from tests.helpers import FAST_HASH_METHOD, build_numbers_deck

NOW = datetime(2026, 4, 1, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
AGAIN, GOOD = 1, 3
NEW, REVIEW = 0, 2


class History:
    """Answers written straight into the review log and card states, as answering would leave them."""

    def __init__(self, session):
        self.session, self.tokens = session, 0

    def answers(self, user, card, ratings, *, stability, last_review):
        for step, rating in enumerate(ratings):
            self.tokens += 1
            at = last_review - (len(ratings) - 1 - step) * DAY
            self.session.add(ReviewLog(user_id=user.id, card_id=card.id, rating=rating, reviewed_at=at,
                                       duration_ms=2000, state_before=NEW if step == 0 else REVIEW, due=at + DAY,
                                       token=f"t{self.tokens}"))
        again = sum(1 for rating in ratings if rating == AGAIN)
        self.session.add(CardState(user_id=user.id, card_id=card.id, state=REVIEW, step=None, stability=stability,
                                   difficulty=5.0, due=last_review + DAY, last_review=last_review,
                                   reps=len(ratings), again_count=again, lapses=max(0, again - 1)))


@pytest.fixture
def school(session):
    build_numbers_deck(session, count=5, now=NOW - 60 * DAY)
    cards = session.scalars(select(Card).order_by(Card.position)).all()
    teacher = register_user(session, username="mrs-k", password="long enough", password_method=FAST_HASH_METHOD)
    students = [register_user(session, username=name, password="long enough", password_method=FAST_HASH_METHOD)
                for name in ("ann", "ben", "cat")]
    classroom = create_classroom(session, teacher=teacher, name="Numbers 1")
    for student in students:
        join_classroom(session, user=student, code=classroom.join_code)
    session.commit()
    return classroom, cards, students


def test_only_cards_with_evidence_of_trouble_are_listed_worst_first_with_who_missed_them(session, school):
    classroom, cards, (ann, ben, cat) = school
    history = History(session)
    # Card 1: Again in 2 of 5 answers, though everyone remembers it now.
    history.answers(ann, cards[0], [AGAIN, GOOD], stability=50.0, last_review=NOW)
    history.answers(ben, cards[0], [AGAIN, GOOD], stability=50.0, last_review=NOW)
    history.answers(cat, cards[0], [GOOD], stability=50.0, last_review=NOW)
    # Card 2: answered well and fresh: no trouble.
    for student in (ann, ben, cat):
        history.answers(student, cards[1], [GOOD], stability=50.0, last_review=NOW)
    # Card 3: one Again, but a single answer is no evidence.
    history.answers(ann, cards[2], [AGAIN], stability=50.0, last_review=NOW)
    # Card 4: never missed, but a month since a half-day stability: recall has faded.
    for student in (ann, ben, cat):
        history.answers(student, cards[3], [GOOD], stability=0.5, last_review=NOW - 30 * DAY)
    session.commit()

    report = cards_in_trouble(session, make_scheduler(enable_fuzzing=False), classroom_id=classroom.id, now=NOW)
    assert report.cards_answered == 4
    assert [t.row.card_id for t in report.cards] == [cards[3].id, cards[0].id]
    faded, missed = report.cards
    assert faded.missed_by == [] and faded.row.mean_recall is not None and faded.row.mean_recall < 0.6
    assert faded.reasons == [f"predicted recall {faded.row.mean_recall:.0%}"]
    assert missed.missed_by == ["ann", "ben"]
    assert missed.reasons == ["Again 40% of 5 answers"]


def test_a_class_doing_well_has_no_cards_in_trouble(session, school):
    classroom, cards, students = school
    history = History(session)
    for student in students:
        history.answers(student, cards[0], [GOOD, GOOD], stability=30.0, last_review=NOW - DAY)
    session.commit()
    report = cards_in_trouble(session, make_scheduler(enable_fuzzing=False), classroom_id=classroom.id, now=NOW)
    assert report.cards == [] and report.cards_answered == 1


def test_completion_counts_who_started_every_card_and_who_is_studying_now(session, school):
    classroom, cards, (ann, ben, _) = school
    assign_deck(session, classroom=classroom, deck_id=cards[0].deck_id, target_date=date(2026, 4, 10))
    history = History(session)
    for card in cards:
        history.answers(ann, card, [GOOD], stability=10.0, last_review=NOW - timedelta(minutes=2))
    history.answers(ben, cards[0], [GOOD], stability=10.0, last_review=NOW - timedelta(minutes=20))
    session.commit()
    session.refresh(classroom)
    roster = class_roster(session, classroom_id=classroom.id, now=NOW)
    [deck] = completion(classroom, roster, {cards[0].deck_id: len(cards)})
    assert (deck.finished, deck.students, deck.total_cards, deck.target_date) == (["ann"], 3, 5, date(2026, 4, 10))
    assert studying_now(roster, now=NOW) == ["ann"]


def test_a_fact_reads_as_a_sentence_and_downloads_are_named_after_the_class_and_day():
    assert fact_in_words(question="How many layers of muscle make up the back?", answer="three") == \
        "How many layers of muscle make up the back? Three."
    assert class_file_name("Anatomy 1 (Tuesday)", "progress", day=date(2026, 3, 2)) == \
        "anatomy-1-tuesday-progress-2026-03-02.csv"
    assert class_file_name("Ünterricht", "revlog", day=date(2026, 3, 2)) == "unterricht-revlog-2026-03-02.csv"
    assert class_file_name("中文", "revlog", day=date(2026, 3, 2)) == "class-revlog-2026-03-02.csv"
