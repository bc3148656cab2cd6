"""Upgrading is lossless: memory states worked out under the old rules are recomputed from the review log at init.

Before this version the engine counted elapsed time in 24-hour periods; the states it stored
are rebuilt here the way it stored them (py-fsrs alone), then `flashapp init`'s upgrade must
turn every one into the replay under the study-day rules, which `flashapp check` agrees with
and fsrs-rs-python (the oracle) confirms.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import pairwise

import fsrs_rs_python as oracle
import pytest
from flask_migrate import upgrade
from fsrs import Card as FsrsCard
from fsrs import Rating, Scheduler, State
from sqlalchemy import column, insert, select, table

from flashapp import create_app, db
from flashapp.accounts import hash_password
from flashapp.consistency import STATE_MISMATCH, check_database
from flashapp.models import CardState, ReviewState, UTCDateTime
from tests.helpers import FAST_HASH_METHOD, upgrade_database_in

BERLIN = timezone(timedelta(hours=1))  # winter time, the season of these answers
# Evening, the next morning before 24 hours, two days on before the hour, early next day, late.
TIMES = [datetime(2026, 1, 5, 21, 30, tzinfo=BERLIN), datetime(2026, 1, 6, 7, 10, tzinfo=BERLIN),
         datetime(2026, 1, 8, 5, 0, tzinfo=BERLIN), datetime(2026, 1, 9, 4, 20, tzinfo=BERLIN),
         datetime(2026, 1, 25, 22, 0, tzinfo=BERLIN)]
RATINGS = [Rating.Good, Rating.Hard, Rating.Good, Rating.Easy, Rating.Again]


@pytest.fixture
def bare_app(database_url, tmp_path):
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"),
                      "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "test-key-" + "x" * 32,
                      "PASSWORD_HASH_METHOD": FAST_HASH_METHOD})
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def store_the_old_way(session, user_id: int, card_id: int) -> None:
    """Answers and the state py-fsrs alone gave them (elapsed time in 24-hour periods)."""
    old = Scheduler(enable_fuzzing=False)
    card = FsrsCard(card_id=card_id, state=State.Learning, step=0, due=TIMES[0].astimezone(timezone.utc))
    for number, (rating, at) in enumerate(zip(RATINGS, TIMES, strict=True)):
        before = ReviewState.NEW if number == 0 else ReviewState(card.state)
        card, _ = old.review_card(card, rating, at.astimezone(timezone.utc))
        # Written with the columns the review log had then: the current model has more.
        session.execute(insert(table(
            "review_log", column("user_id"), column("card_id"), column("rating"),
            column("reviewed_at", UTCDateTime), column("duration_ms"), column("state_before"),
            column("due", UTCDateTime), column("token"))).values(
            user_id=user_id, card_id=card_id, rating=int(rating), reviewed_at=card.last_review, duration_ms=3000,
            state_before=int(before), due=card.due, token=f"old-{number}"))
    # Written with the columns the card states had then, too.
    session.execute(insert(table(
        "card_state", column("user_id"), column("card_id"), column("state"), column("step"), column("stability"),
        column("difficulty"), column("due", UTCDateTime), column("last_review", UTCDateTime), column("reps"),
        column("lapses"), column("again_count"))).values(
        user_id=user_id, card_id=card_id, state=int(card.state), step=card.step, stability=card.stability,
        difficulty=card.difficulty, due=card.due, last_review=card.last_review, reps=len(RATINGS), lapses=1,
        again_count=1))


def store_a_card_the_old_way(session) -> int:
    """A deck of one card, written with the columns its tables had then (the current models have more); its id."""
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    deck_id = session.execute(insert(table(
        "deck", column("slug"), column("title"), column("source"), column("source_path"), column("built_at"),
        column("active_cards"), column("id"))).values(
        slug="numbers", title="Numbers", source="test", source_path="numbers.yaml", built_at=now, active_cards=1)
        .returning(column("id"))).scalar_one()
    note_id = session.execute(insert(table(
        "note", column("deck_id"), column("key"), column("relation"), column("subject"), column("object"),
        column("section"), column("supplemented"), column("explanation"), column("position"), column("retired"),
        column("updated_at"), column("id"))).values(
        deck_id=deck_id, key="numbers/square/1", relation="square", subject="1", object="1", section="main",
        supplemented=False, explanation="", position=0, retired=False, updated_at=now)
        .returning(column("id"))).scalar_one()
    return session.execute(insert(table(
        "card", column("deck_id"), column("note_id"), column("key"), column("template"), column("question"),
        column("answer"), column("position"), column("retired"), column("updated_at"), column("id"))).values(
        deck_id=deck_id, note_id=note_id, key="numbers/square/1/forward", template="forward",
        question="What is the square of 1?", answer="1", position=0, retired=False, updated_at=now)
        .returning(column("id"))).scalar_one()


def test_init_recomputes_old_memory_states_under_the_study_day_rules(bare_app):
    with bare_app.app_context():
        upgrade(revision="0007_study_active_cards")  # the schema just before the recompute
        session = db.session()
        card_id = store_a_card_the_old_way(session)
        # Written with the columns the user table had then: the current model has more.
        user_id = session.execute(insert(table(
            "user", column("username"), column("password_hash"), column("role"), column("time_zone"),
            column("created_at"), column("session_token"), column("id"))).values(
            username="lena", password_hash=hash_password("long enough", method=FAST_HASH_METHOD), role="student",
            time_zone="Europe/Berlin", created_at=datetime.now(timezone.utc), session_token="lena-session")
            .returning(column("id"))).scalar_one()
        store_the_old_way(session, user_id, card_id)
        session.commit()
        scheduler = bare_app.extensions["flashapp.scheduler"]
        session.close()
        before = check_database(db.session(), scheduler, fix=False)
        assert [problem.kind for problem in before.problems] == [STATE_MISMATCH]
        old_due = db.session.scalar(select(CardState.due))
        db.session.remove()

        upgrade_database_in(bare_app)

        assert check_database(db.session(), scheduler, fix=False).problems == []
        state = db.session.scalar(select(CardState))
        assert state.due == old_due  # the log's due dates are history: only the memory is recomputed
        study_dates = [(at - timedelta(hours=4)).date() for at in TIMES]  # local dates, from 4 a.m.
        days = [0] + [(later - earlier).days for earlier, later in pairwise(study_dates)]
        assert days == [0, 1, 2, 1, 16]
        expected = oracle.FSRS(list(oracle.DEFAULT_PARAMETERS)).memory_state(oracle.FSRSItem(
            [oracle.FSRSReview(int(rating), elapsed) for rating, elapsed in zip(RATINGS, days, strict=True)]))
        assert state.stability == pytest.approx(expected.stability, rel=1e-5)
        assert state.difficulty == pytest.approx(expected.difficulty, rel=1e-5)
