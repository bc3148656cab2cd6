"""Migrations: an old database is brought up to date in place, losing nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from fsrs import Rating
from fsrs.scheduler import DEFAULT_PARAMETERS
from sqlalchemy import delete, func, inspect, select, text, update

from flashapp import MIGRATIONS, create_app, db
from flashapp.database import make_engine
from flashapp.models import Base, Card, CardReviewCounts, CardState, Deck, DeckStateCounts, Note, ReviewLog, User
from tests.helpers import T0, upgrade_database_in


@pytest.fixture
def bare_app(database_url, tmp_path):
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"),
                      "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "test-key-" + "x" * 32})
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def fill_first_schema(connection) -> None:
    """Users, a deck, cards and reviews, written the way revision 0001 stored them."""
    when = T0.replace(tzinfo=None) if connection.dialect.name == "sqlite" else T0
    connection.execute(text(
        "INSERT INTO \"user\" (id, username, password_hash, role, time_zone, created_at) VALUES "
        "(1, 'teach', 'scrypt:x', 'teacher', 'UTC', :t), (2, 'pupil', 'scrypt:y', 'student', 'Asia/Tokyo', :t)"),
        {"t": when})
    connection.execute(text("INSERT INTO deck (id, slug, title, source, source_path, built_at) "
                            "VALUES (1, 'planets', 'Planets', 'src', 'planets.yaml', :t)"), {"t": when})
    connection.execute(text(
        "INSERT INTO note (id, deck_id, key, relation, subject, object, section, supplemented, explanation, "
        "position, retired, updated_at) VALUES (1, 1, 'planets/moon/jupiter', 'moon', 'Jupiter', 'Ganymede', "
        "'orbits', false, '', 0, false, :t)"), {"t": when})
    connection.execute(text(
        "INSERT INTO card (id, deck_id, note_id, key, template, question, answer, position, retired, updated_at) "
        "VALUES (1, 1, 1, 'planets/moon/jupiter/forward', 'forward', 'Largest moon of Jupiter?', 'Ganymede', 0, "
        "false, :t)"), {"t": when})
    connection.execute(text(
        "INSERT INTO card_state (id, user_id, card_id, state, step, stability, difficulty, due, last_review) "
        "VALUES (1, 2, 1, 1, 1, 2.3, 2.1, :t, :t)"), {"t": when})
    connection.execute(text(
        "INSERT INTO review_log (id, user_id, card_id, rating, reviewed_at, duration_ms, state_before, due, token) "
        "VALUES (1, 2, 1, 3, :t, 4000, 0, :t, 'token-1')"), {"t": when})


def test_an_old_database_is_upgraded_in_place_and_loses_nothing(bare_app):
    with bare_app.app_context():
        upgrade(revision="0001")
        with db.engine.begin() as connection:
            fill_first_schema(connection)
        assert "login_attempt" not in inspect(db.engine).get_table_names()

        upgrade_database_in(bare_app)

        tables = inspect(db.engine).get_table_names()
        assert "failed_attempt" in tables and "login_attempt" not in tables
        users = db.session.scalars(select(User).order_by(User.id)).all()
        assert [(u.username, u.role, u.time_zone) for u in users] == [
            ("teach", "teacher", "UTC"), ("pupil", "student", "Asia/Tokyo")]
        assert all(len(u.session_token) >= 20 for u in users)
        assert users[0].session_token != users[1].session_token
        assert db.session.scalar(select(Deck.slug)) == "planets"
        assert db.session.scalar(select(Note.key)) == "planets/moon/jupiter"
        assert db.session.scalar(select(Card.answer)) == "Ganymede"
        state = db.session.scalar(select(CardState))
        # Its memory is recomputed from the review log: one Good answer gives FSRS's initial stability for Good.
        assert (state.user_id, state.due) == (2, T0)
        assert state.stability == pytest.approx(DEFAULT_PARAMETERS[Rating.Good - 1])
        review = db.session.scalar(select(ReviewLog))
        assert (review.token, review.rating, review.reviewed_at) == ("token-1", 3, T0)
        assert db.session.scalar(select(func.count(ReviewLog.id))) == 1


def test_the_migrations_arrive_at_the_models_schema(bare_app):
    with bare_app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
        assert differences == []


def test_upgrading_twice_changes_nothing(bare_app):
    with bare_app.app_context():
        upgrade_database_in(bare_app)
        upgrade_database_in(bare_app)
        version = db.session.scalar(text("SELECT version_num FROM alembic_version"))
    assert version == ScriptDirectory(str(MIGRATIONS)).get_current_head()


def test_card_states_get_their_review_counts_from_the_review_log(bare_app):
    with bare_app.app_context():
        upgrade(revision="0001")
        with db.engine.begin() as connection:
            fill_first_schema(connection)
            later = (T0.replace(tzinfo=None) if connection.dialect.name == "sqlite" else T0) + timedelta(days=3)
            # Again on a review-state card (a lapse), Again while learning, and Good.
            for number, (rating, state_before) in enumerate([(1, 2), (1, 1), (3, 3)], start=2):
                connection.execute(text(
                    "INSERT INTO review_log (id, user_id, card_id, rating, reviewed_at, duration_ms, state_before, "
                    "due, token) VALUES (:id, 2, 1, :rating, :t, 4000, :before, :t, :token)"),
                    {"id": number, "rating": rating, "t": later + timedelta(hours=number), "before": state_before,
                     "token": f"token-{number}"})

        upgrade()

        state = db.session.scalar(select(CardState))
        assert (state.reps, state.again_count, state.lapses) == (4, 2, 1)


def test_each_review_gets_the_interval_its_card_had_from_the_log(bare_app):
    with bare_app.app_context():
        upgrade(revision="0001")
        with db.engine.begin() as connection:
            fill_first_schema(connection)  # review 1: the pupil (Tokyo, UTC+9) at T0, due at once
            start = T0.replace(tzinfo=None) if connection.dialect.name == "sqlite" else T0
            minute, hour, day = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
            # (id, user, when, due): T0 is 18:00 in Tokyo; the teacher keeps UTC. Days start at 04:00.
            for number, user_id, at, due in [
                    (2, 2, start + hour, start + hour + 10 * minute),  # 19:00 Tokyo, a 10-minute step
                    (3, 2, start + hour + 10 * minute, start + hour + 10 * minute + 3 * day),  # three days
                    (4, 2, start + 3 * day + hour + 10 * minute, start + 18 * day),
                    (5, 1, start + 14 * hour, start + 19 * hour),  # 23:00 UTC, due at 04:00: the next study day
                    (6, 1, start + 20 * hour, start + 21 * hour)]:
                connection.execute(text(
                    "INSERT INTO review_log (id, user_id, card_id, rating, reviewed_at, duration_ms, state_before, "
                    "due, token) VALUES (:id, :user, 1, 3, :at, 4000, 1, :due, :token)"),
                    {"id": number, "user": user_id, "at": at, "due": due, "token": f"token-{number}"})

        upgrade()

        kept = dict(db.session.execute(select(ReviewLog.id, ReviewLog.last_interval)).all())
        # Each user's first review 0; then minus the seconds of a step within the day (at least one), or
        # the study days to a later day's due.
        assert kept == {1: 0, 2: -1, 3: -600, 4: 3, 5: 0, 6: 1}
        db.session.remove()
        index = {ix["name"]: ix["column_names"] for ix in inspect(db.engine).get_indexes("review_log")}
        # 0019 added the last interval to the student's index in time; 0022 the origin after it.
        assert index["ix_review_log_user_time"] == ["user_id", "reviewed_at", "card_id", "state_before", "rating",
                                                    "last_interval", "origin"]


def test_the_database_keeps_the_class_numbers_of_a_migrated_database_too(bare_app):
    """Each state's last review in microseconds, each account's states per deck, and on SQLite each card's
    summed review counts: filled in for the states there are, and kept by the migrated database (a migration
    that rebuilds card_state on SQLite drops its triggers, and would have to make them again)."""
    with bare_app.app_context():
        upgrade(revision="0001")
        with db.engine.begin() as connection:
            fill_first_schema(connection)

        upgrade()

        sqlite = db.engine.dialect.name == "sqlite"
        micros = (T0 - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
        assert db.session.execute(select(CardState.last_review, CardState.last_review_us)).one() == (T0, micros)
        counts = select(CardReviewCounts.card_id, CardReviewCounts.reps, CardReviewCounts.again_count,
                        CardReviewCounts.lapses)
        assert db.session.execute(counts).all() == ([(1, 1, 0, 0)] if sqlite else [])
        decks = select(DeckStateCounts.user_id, DeckStateCounts.deck_id, DeckStateCounts.states,
                       DeckStateCounts.last_review_us)
        user_id, card_id = db.session.execute(select(CardState.user_id, CardState.card_id)).one()
        deck_id = db.session.scalar(select(Card.deck_id).where(Card.id == card_id))
        assert db.session.execute(decks).all() == [(user_id, deck_id, 1, micros)]
        later = T0 + timedelta(days=2, microseconds=7)
        db.session.execute(update(CardState).values(last_review=later, reps=3, again_count=1))
        db.session.commit()
        assert db.session.scalar(select(CardState.last_review_us)) == micros + 2 * 86_400_000_000 + 7
        assert db.session.execute(counts).all() == ([(1, 3, 1, 0)] if sqlite else [])
        assert db.session.execute(decks).all() == [(user_id, deck_id, 1, micros + 2 * 86_400_000_000 + 7)]
        db.session.execute(delete(CardState))
        db.session.commit()
        assert db.session.execute(decks).all() == [(user_id, deck_id, 0, None)]


def _triggers(connection) -> set[tuple[str, str]]:
    """Every trigger (and, on PostgreSQL, trigger function) of the database, with its definition."""
    if connection.dialect.name == "sqlite":
        return set(connection.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all())
    return set(connection.execute(text(
        "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal "
        "UNION SELECT proname, pg_get_functiondef(oid) FROM pg_proc "
        "WHERE pronamespace = 'public'::regnamespace")).all())


def test_the_migrations_make_the_triggers_a_new_database_gets(bare_app, database_url, tmp_path):
    with bare_app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            migrated = _triggers(connection)
        db.session.remove()
        db.engine.dispose()
    if database_url.startswith("sqlite"):
        database_url = f"sqlite:///{tmp_path / 'new.sqlite'}"
    engine = make_engine(database_url)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    Base.metadata.create_all(engine)
    with engine.connect() as connection:
        created = _triggers(connection)
    engine.dispose()
    assert migrated == created
    # SQLite: two triggers for last_review_us, four for each card's sums, four for each account's decks;
    # PostgreSQL: a function and a trigger for last_review_us, a function and three triggers for the decks.
    assert len(created) == (10 if database_url.startswith("sqlite") else 6)
