"""The consistency check: card states against their review logs, orphaned rows, repair in one transaction.

Domain tests on a session (SQLite, and PostgreSQL when configured), then `flashapp check` through the CLI.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from itertools import pairwise

import pytest
from fsrs import Rating
from sqlalchemy import delete, event, func, select, text, update
from sqlalchemy.orm import Session

from flashapp import consistency
from flashapp.consistency import (
    ORPHAN_CARD,
    ORPHAN_REVIEWS,
    ORPHAN_STATE,
    REVIEWS_WITHOUT_STATE,
    STATE_MISMATCH,
    STATE_WITHOUT_REVIEWS,
    check_database,
)
from flashapp.database import make_engine, write_transaction
from flashapp.models import DATABASE_KEPT, Card, CardState, Note, ReviewLog, ReviewState, User
from flashapp.scheduling import ReviewCounts, answer_card, card_reviews, count_reviews, replay, without_fuzz
from tests.helpers import T0, build_numbers_deck, study


@pytest.fixture
def studied(session, scheduler):
    build_numbers_deck(session)
    session.commit()
    study(session, scheduler)
    return session


def kinds(report) -> list[str]:
    return sorted(p.kind for p in report.problems)


def state_of(session, username: str, position: int) -> CardState:
    user_id = session.scalar(select(User.id).where(User.username == username))
    card_id = session.scalar(select(Card.id).where(Card.position == position))
    return session.scalar(select(CardState).where(CardState.user_id == user_id, CardState.card_id == card_id))


def without_foreign_keys(session, *statements: str) -> None:
    """Run raw SQL with foreign keys not enforced, as a careless hand edit of the database would."""
    engine = session.get_bind()
    session.commit()
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            connection = raw.driver_connection
            connection.execute("PRAGMA foreign_keys=OFF")
            for statement in statements:
                connection.execute(statement)
            connection.execute("PRAGMA foreign_keys=ON")
        finally:
            raw.close()
        return
    # The replica role leaves out the foreign keys' triggers and, unless told to fire always, the ones the
    # database keeps its numbers with: those stay on, as SQLite's do with its foreign keys off.
    kept = [statement.split()[2] for statement in DATABASE_KEPT["postgresql"] if statement.startswith("CREATE TRIGGER")]
    with engine.connect() as connection:
        try:
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        except Exception:  # noqa: BLE001 - not a superuser: foreign keys cannot be switched off here
            pytest.skip("needs a PostgreSQL superuser to write rows that break foreign keys")
        for name in kept:
            connection.execute(text(f"ALTER TABLE card_state ENABLE ALWAYS TRIGGER {name}"))
        for statement in statements:
            connection.execute(text(statement))
        for name in kept:
            connection.execute(text(f"ALTER TABLE card_state ENABLE TRIGGER {name}"))
        connection.commit()


def test_a_consistent_database_reports_nothing(studied, scheduler):
    report = check_database(studied, scheduler, fix=False)
    assert report.problems == [] and report.ok and not report.fixed
    assert report.states_checked == 8 and report.reviews_checked == 2 * (3 * 3 + 1)
    assert not studied.in_transaction()


def test_the_check_compares_each_field_with_the_replay(studied, scheduler):
    state = state_of(studied, "ada", 0)
    studied.execute(update(CardState).where(CardState.id == state.id).values(stability=state.stability + 1e-12))
    studied.commit()
    assert check_database(studied, scheduler, fix=False).problems == []  # within the float tolerance
    for field, value in [("stability", state.stability + 0.5), ("difficulty", state.difficulty - 0.1),
                         ("step", 7), ("due", state.due + timedelta(seconds=1)),
                         ("last_review", state.last_review - timedelta(days=1)), ("state", state.state % 3 + 1),
                         ("reps", state.reps + 1), ("lapses", state.lapses + 1), ("again_count", 0)]:
        original = getattr(state, field)
        studied.execute(update(CardState).where(CardState.id == state.id).values({field: value}))
        studied.commit()
        report = check_database(studied, scheduler, fix=False)
        assert kinds(report) == [STATE_MISMATCH], field
        assert f"card state {state.id} " in report.problems[0].message
        assert f"{field} " in report.problems[0].message
        studied.execute(update(CardState).where(CardState.id == state.id).values({field: original}))
        studied.commit()
    assert check_database(studied, scheduler, fix=False).problems == []


def test_reviews_stored_at_the_same_moment_are_replayed_in_id_order_as_the_app_replays_them(studied, scheduler):
    # Two answers of one card stored with the same time (as an import could bring them): Good, then Again. The
    # index the check reads the review log through orders them by rating after the time (Again first); the app
    # replays a card's reviews by time, then id (`card_reviews`), and so must the check.
    ada = studied.scalar(select(User.id).where(User.username == "ada"))
    card = studied.scalar(select(Card.id).where(Card.position == 6))
    at = T0 + timedelta(days=3)
    for token, rating in (("same-moment-1", Rating.Good), ("same-moment-2", Rating.Again)):
        studied.add(ReviewLog(user_id=ada, card_id=card, rating=rating, reviewed_at=at, state_before=ReviewState.NEW,
                              due=at + timedelta(minutes=10), token=token))
    studied.commit()
    with write_transaction(studied):
        consistency.replay_into_state(studied, without_fuzz(scheduler), user_id=ada, card_id=card)
    reviews = card_reviews(studied, user_id=ada, card_id=card)
    assert [review.token for review in reviews] == ["same-moment-1", "same-moment-2"]
    in_the_other_order = replay(scheduler, card, reviews[::-1], time_zone="UTC")
    assert in_the_other_order.step != replay(scheduler, card, reviews, time_zone="UTC").step  # the order tells
    assert state_of(studied, "ada", 6).step == replay(scheduler, card, reviews, time_zone="UTC").step
    studied.rollback()
    for workers in (1, 2):
        report = check_database(studied, scheduler, fix=False, workers=workers)
        assert report.problems == [], workers
        assert report.reviews_checked == 2 * (3 * 3 + 1) + 2


def tamper(session) -> dict:
    """Change a stability, delete a card's last review, delete a card's only review, delete a state."""
    changed = state_of(session, "ada", 0)
    session.execute(update(CardState).where(CardState.id == changed.id).values(stability=changed.stability * 2))
    shortened = state_of(session, "ada", 1)
    last = card_reviews(session, user_id=shortened.user_id, card_id=shortened.card_id)[-1]
    session.execute(delete(ReviewLog).where(ReviewLog.id == last.id))
    lonely = state_of(session, "bob", 3)
    session.execute(delete(ReviewLog).where(ReviewLog.user_id == lonely.user_id,
                                            ReviewLog.card_id == lonely.card_id))
    missing = state_of(session, "bob", 2)
    session.execute(delete(CardState).where(CardState.id == missing.id))
    ids = {"changed": changed.id, "shortened": shortened.id, "lonely": lonely.id,
           "missing": (missing.user_id, missing.card_id)}
    session.commit()
    return ids


def test_tampering_is_reported_and_nothing_is_changed_without_fix(studied, scheduler):
    ids = tamper(studied)
    report = check_database(studied, scheduler, fix=False)
    assert kinds(report) == sorted([STATE_MISMATCH, STATE_MISMATCH, STATE_WITHOUT_REVIEWS, REVIEWS_WITHOUT_STATE])
    messages = "\n".join(p.message for p in report.problems)
    assert f"card state {ids['changed']} " in messages and "stability" in messages
    assert f"card state {ids['lonely']} " in messages and "has no reviews" in messages
    user_id, card_id = ids["missing"]
    assert f"user {user_id}, card {card_id} has 3 reviews but no card state" in messages
    assert not report.ok and report.repaired == [] and len(report.unfixed) == 4
    assert check_database(studied, scheduler, fix=False).problems == report.problems  # nothing was changed


def test_orphaned_rows_are_reported(studied, scheduler):
    ada = studied.scalar(select(User.id).where(User.username == "ada"))
    card = studied.scalar(select(Card).where(Card.position == 5))
    without_foreign_keys(
        studied,
        "INSERT INTO review_log (user_id, card_id, rating, reviewed_at, state_before, due, token) "
        "VALUES (999, 1, 3, '2026-03-02 09:00:00', 0, '2026-03-02 09:10:00', 'orphan-1')",
        f"UPDATE card_state SET card_id = 998 WHERE user_id = {ada} AND card_id = "
        f"(SELECT id FROM card WHERE position = 1)",
        f"DELETE FROM note WHERE id = {card.note_id}",
    )
    report = check_database(studied, scheduler, fix=False)
    messages = "\n".join(p.message for p in report.problems)
    assert ORPHAN_REVIEWS in kinds(report) and "belongs to user 999, who does not exist" in messages
    assert ORPHAN_STATE in kinds(report) and "belongs to card 998, which does not exist" in messages
    assert ORPHAN_CARD in kinds(report) and f"card {card.id} ({card.key}) points at a missing note" in messages
    # The moved state leaves its reviews without a state.
    assert REVIEWS_WITHOUT_STATE in kinds(report)


def count_commits(session) -> list:
    commits = []
    event.listen(session.get_bind(), "commit", lambda connection: commits.append(1))
    return commits


def test_fix_repairs_everything_in_short_batches_and_a_second_run_finds_nothing(studied, scheduler):
    tamper(studied)
    without_foreign_keys(
        studied,
        "INSERT INTO review_log (user_id, card_id, rating, reviewed_at, state_before, due, token) "
        "VALUES (999, 1, 3, '2026-03-02 09:00:00', 0, '2026-03-02 09:10:00', 'orphan-1')",
        "INSERT INTO note (deck_id, key, relation, subject, object, section, supplemented, explanation, position, "
        "retired, updated_at) VALUES (999, 'gone/x', 'square', 'x', 'y', 'main', false, '', 0, false, "
        "'2026-03-02 09:00:00')",
    )
    commits = count_commits(studied)
    report = check_database(studied, scheduler, fix=True)
    assert report.fixed and report.ok and len(report.repaired) == len(report.problems) == 6
    assert len(commits) == 3  # the orphaned review, the orphaned note, then the four card states
    assert check_database(studied, scheduler, fix=True).problems == []
    assert len(commits) == 3  # nothing to fix: nothing committed
    # Every state now is the replay of its reviews, and every review has its state.
    states = list(studied.scalars(select(CardState)))
    assert len(states) == studied.scalar(select(func.count()).select_from(
        select(ReviewLog.user_id, ReviewLog.card_id).distinct().subquery()))
    for state in states:
        reviews = card_reviews(studied, user_id=state.user_id, card_id=state.card_id)
        replayed = replay(scheduler, state.card_id, reviews, time_zone=studied.get(User, state.user_id).time_zone)
        assert ReviewCounts.of(state) == count_reviews(reviews)
        assert (state.state, state.step, state.stability, state.difficulty, state.due, state.last_review) == (
            replayed.state.value, replayed.step, replayed.stability, replayed.difficulty, replayed.due,
            replayed.last_review)
    assert studied.scalar(select(func.count()).where(ReviewLog.user_id == 999)) == 0
    assert studied.scalar(select(func.count()).where(Note.key == "gone/x")) == 0


def test_a_fix_that_fails_half_way_leaves_whole_batches_and_a_second_run_finishes(studied, scheduler, monkeypatch):
    tamper(studied)
    before = check_database(studied, scheduler, fix=False).problems
    calls = []

    def failing_store(state, card, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        original(state, card, **kwargs)

    original = consistency.store_state
    monkeypatch.setattr(consistency, "store_state", failing_store)
    with pytest.raises(RuntimeError, match="disk full"):
        check_database(studied, scheduler, fix=True, batch_size=1)
    monkeypatch.undo()
    studied.expire_all()
    # The first card's batch was committed whole; the failing one changed nothing.
    after = check_database(studied, scheduler, fix=False).problems
    assert len(after) == len(before) - 1 and set(after) < set(before)
    assert check_database(studied, scheduler, fix=True).ok
    assert check_database(studied, scheduler, fix=False).problems == []


def test_a_fix_reads_without_the_write_lock_and_keeps_an_answer_given_meanwhile(studied, scheduler, database_url):
    """A fix holds the write lock only for its short batches: an answer given while it reads goes
    through at once, and the batch that repairs that card replays the answer too."""
    tamper(studied)
    engine = studied.get_bind()
    sqlite = engine.dialect.name == "sqlite"
    # Another process's writer that waits for no lock: it fails at once if the fix holds one.
    other = make_engine(database_url, **({} if sqlite else {"connect_args": {"options": "-c lock_timeout=1000"}}))
    if sqlite:
        event.listen(other, "connect", lambda connection, _record: connection.execute("PRAGMA busy_timeout=0"))
    ada = state_of(studied, "ada", 0)
    ada_user, ada_card = ada.user_id, ada.card_id
    studied.rollback()
    answered = []

    def answer_meanwhile(_connection, _cursor, statement, *_args):
        if not answered and "FROM review_log" in statement and "ORDER BY review_log.user_id" in statement:
            answered.append(1)
            with Session(other) as writer, write_transaction(writer):
                answer_card(writer, scheduler, user_id=ada_user, card_id=ada_card, rating=Rating.Good,
                            token="meanwhile", now=T0 + timedelta(days=60))

    begins = []
    event.listen(engine, "before_cursor_execute", answer_meanwhile)
    event.listen(engine, "before_cursor_execute", lambda _c, _cursor, statement, *_a:
                 begins.append(statement) if statement == "BEGIN IMMEDIATE" else None)
    try:
        report = check_database(studied, scheduler, fix=True, batch_size=1)
    finally:
        event.remove(engine, "before_cursor_execute", answer_meanwhile)
        other.dispose()
    assert answered and report.fixed and report.ok
    if sqlite:
        assert len(begins) == 4  # one short write transaction per repaired card
    assert check_database(studied, scheduler, fix=False).problems == []
    reviews = card_reviews(studied, user_id=ada_user, card_id=ada_card)
    assert reviews[-1].token == "meanwhile"
    replayed = replay(scheduler, ada_card, reviews, time_zone=studied.get(User, ada_user).time_zone)
    assert replayed.stability == state_of(studied, "ada", 0).stability


def test_the_check_refuses_a_session_in_the_middle_of_a_transaction(studied, scheduler):
    studied.scalar(select(func.count(User.id)))
    with pytest.raises(RuntimeError, match="no transaction in progress"):
        check_database(studied, scheduler, fix=False)
    studied.rollback()


# --- The check shared among processes ----------------------------------------------------------

def review_streams(session) -> list[str]:
    """Record the statements that stream the review log through this session's engine."""
    streamed: list[str] = []
    event.listen(session.get_bind(), "before_cursor_execute", lambda _c, _cursor, statement, *_a: streamed.append(
        statement) if "FROM review_log" in statement and "ORDER BY review_log.user_id" in statement else None)
    return streamed


def test_processes_sharing_the_check_find_and_fix_what_one_process_does(studied, scheduler):
    tamper(studied)
    ada = studied.scalar(select(User.id).where(User.username == "ada"))
    without_foreign_keys(
        studied,
        "INSERT INTO review_log (user_id, card_id, rating, reviewed_at, state_before, due, token) "
        "VALUES (999, 1, 3, '2026-03-02 09:00:00', 0, '2026-03-02 09:10:00', 'orphan-1')",
        f"UPDATE card_state SET card_id = 998 WHERE user_id = {ada} AND card_id = "
        f"(SELECT id FROM card WHERE position = 2)",
    )
    alone = check_database(studied, scheduler, fix=False, workers=1)
    streamed = review_streams(studied)
    shared = check_database(studied, scheduler, fix=False, workers=2)
    assert streamed == []  # the other processes read the reviews
    assert shared.problems == alone.problems  # the same problems, in the same order
    assert len(alone.problems) == 7 and not studied.in_transaction()
    assert (shared.states_checked, shared.reviews_checked) == (alone.states_checked, alone.reviews_checked)

    fixed = check_database(studied, scheduler, fix=True, workers=2)
    assert fixed.fixed and fixed.ok and fixed.problems == alone.problems
    assert check_database(studied, scheduler, fix=False, workers=1).problems == []
    assert check_database(studied, scheduler, fix=False, workers=3).problems == []


def test_the_checks_processes_start_without_alembic():
    """Each process sharing a check imports flashapp.consistency, and only the app and its commands need Alembic
    (a fifth of a second to import, in every one of those processes)."""
    script = ("import sys, flashapp.consistency\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in {'alembic', 'flask_migrate'}))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_the_ranges_of_cards_hold_each_card_whole_and_cover_every_card_once(studied, scheduler):
    without_foreign_keys(
        studied,
        "INSERT INTO review_log (user_id, card_id, rating, reviewed_at, state_before, due, token) "
        "VALUES (999, 1, 3, '2026-03-02 09:00:00', 0, '2026-03-02 09:10:00', 'orphan-1')",
    )
    every_review = sorted((user_id, card_id, id_) for user_id, card_id, id_ in
                          studied.execute(select(ReviewLog.user_id, ReviewLog.card_id, ReviewLog.id)))
    every_state = sorted(studied.scalars(select(CardState.id)))
    for parts in range(1, 12):
        ranges = consistency._key_ranges(studied, parts)
        assert 1 <= len(ranges) <= parts
        assert ranges[0][0] is None and ranges[-1][1] is None
        assert all(upper == next_lower for (_, upper), (next_lower, _) in pairwise(ranges))
        assert all(lower < upper for lower, upper in ranges[1:-1])
        reviews, states, keys = [], [], []
        for lower, upper in ranges:
            for key, group in consistency._review_groups(studied, lower, upper):
                keys.append(key)
                reviews += [(key[0], key[1], row.id) for row in group]
            states += [state.id for state in consistency._state_stream(studied, lower, upper)]
        # No (user, card) is split between two ranges, and none is left out or read twice.
        assert len(keys) == len(set(keys)) and keys == sorted(keys)
        assert sorted(reviews) == every_review and sorted(states) == every_state
    assert len(consistency._key_ranges(studied, 8)) == 8  # the eight card states, one range each
    studied.rollback()


def test_processes_read_in_the_snapshot_of_the_check(studied, database_url):
    """On PostgreSQL the other processes import the check's snapshot: what is written meanwhile
    is not seen by any of them."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite cannot share a snapshot between connections")
    state = state_of(studied, "ada", 0)
    state_id, stability = state.id, state.stability
    studied.rollback()
    engine = studied.get_bind()
    with Session(engine) as check, consistency._read_transaction(check):
        assert check.scalar(select(CardState.stability).where(CardState.id == state_id)) == stability
        snapshot = consistency._shared_snapshot(check)
        with Session(engine) as writer, write_transaction(writer):
            writer.execute(update(CardState).where(CardState.id == state_id).values(stability=stability + 1))
        with Session(engine) as other, consistency._read_transaction(other, snapshot=snapshot):
            assert other.scalar(select(CardState.stability).where(CardState.id == state_id)) == stability
        with Session(engine) as later, consistency._read_transaction(later):
            assert later.scalar(select(CardState.stability).where(CardState.id == state_id)) == stability + 1


# --- `flashapp check` --------------------------------------------------------------------------

@pytest.fixture
def studied_app(built_app):
    from flashapp import db

    with built_app.app_context():
        study(db.session, built_app.extensions["flashapp.scheduler"], cards=3)
        db.session.remove()
    return built_app


def test_check_command_reports_fixes_and_then_finds_nothing(studied_app):
    from flashapp import db

    runner = studied_app.test_cli_runner()
    clean = runner.invoke(args=["check"])
    assert clean.exit_code == 0, clean.output
    assert clean.output == "Checked 6 card states and 14 reviews.\nNo problems found.\n"
    assert runner.invoke(args=["check", "--workers", "2"]).output == clean.output

    with studied_app.app_context():
        state = db.session.scalar(select(CardState).order_by(CardState.id).limit(1))
        state_id, user_id, card_id = state.id, state.user_id, state.card_id
        db.session.execute(update(CardState).where(CardState.id == state_id).values(stability=42.0))
        db.session.commit()
        db.session.remove()
    found = runner.invoke(args=["check"])
    assert found.exit_code == 1
    assert "Found 1 problem:" in found.output
    assert f"  - card state {state_id} (user {user_id}, card {card_id}) differs from its" in found.output
    assert "stability 42.0 (reviews give" in found.output
    assert "1 problem can be fixed with `flashapp check --fix`." in found.output

    fixed = runner.invoke(args=["check", "--fix"])
    assert fixed.exit_code == 0, fixed.output
    assert "Fixed 1 problem." in fixed.output
    again = runner.invoke(args=["check", "--fix"])
    assert again.exit_code == 0 and "No problems found." in again.output


def test_on_sqlite_only_a_fix_takes_the_write_lock(studied, scheduler):
    engine = studied.get_bind()
    if engine.dialect.name != "sqlite":
        pytest.skip("BEGIN IMMEDIATE is SQLite's")
    begins = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *args: begins.append(statement) if statement.startswith("BEGIN")
                 else None)
    tamper(studied)
    begins.clear()
    check_database(studied, scheduler, fix=False)
    check_database(studied, scheduler, fix=True)
    # The fix reads like the check, then writes its one batch of four card states.
    assert begins == ["BEGIN", "BEGIN", "BEGIN IMMEDIATE"]
