"""`flashapp check` against the numbers the database keeps from the card states, and `--fix` rebuilding them.

Each kept number is tampered with in plain SQL, past the triggers that would otherwise put it right
(a hand edit, or a write made while a migration had left the triggers out): each state's
`last_review_us` and the `deck_state_counts` rows on both databases, and on SQLite the
`card_review_counts` rows. The check must name exactly what differs, a fix must rebuild it from the card states, and a
second check must find nothing. Real databases throughout, SQLite and PostgreSQL when configured.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from fsrs import Rating
from sqlalchemy import event, func, select, text, update

from flashapp import consistency
from flashapp.accounts import register_user
from flashapp.consistency import (
    CARD_REVIEW_COUNTS_MISMATCH,
    DECK_STATE_COUNTS_MISMATCH,
    KEPT_SHOWN,
    LAST_REVIEW_US_MISMATCH,
    STATE_MISMATCH,
    check_database,
)
from flashapp.models import DATABASE_KEPT, Card, CardReviewCounts, CardState, Deck, DeckStateCounts, User
from flashapp.scheduling import answer_card, undo_last_answer
from tests.helpers import FAST_HASH_METHOD, T0, build_numbers_deck, study

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
KEPT_KINDS = {LAST_REVIEW_US_MISMATCH, CARD_REVIEW_COUNTS_MISMATCH, DECK_STATE_COUNTS_MISMATCH}


@pytest.fixture
def studied(session, scheduler):
    """Two students who studied four cards of a deck, one of them a card of a second deck too."""
    build_numbers_deck(session)
    session.commit()
    study(session, scheduler)
    other = build_numbers_deck(session, count=2, slug="other")
    session.commit()
    ada = session.scalar(select(User.id).where(User.username == "ada"))
    card = session.scalar(select(Card.id).where(Card.deck_id == other.id).order_by(Card.position).limit(1))
    answer_card(session, scheduler, user_id=ada, card_id=card, rating=Rating.Good, token="other-deck",
                now=T0 + timedelta(days=3, microseconds=123456))
    session.commit()
    return session


def state_of(session, username: str, position: int) -> CardState:
    """A student's state of a card of the numbers deck."""
    return session.scalar(select(CardState).join(User, User.id == CardState.user_id)
                          .join(Card, Card.id == CardState.card_id).join(Deck, Deck.id == Card.deck_id)
                          .where(User.username == username, Card.position == position, Deck.slug == "numbers"))


def sqlite_only(session) -> None:
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("PostgreSQL keeps no review counts per card: it sums a class's states in its own plans")


def kinds(report) -> list[str]:
    return sorted(p.kind for p in report.problems)


def microseconds(at: datetime | None) -> int | None:
    return None if at is None else (at - EPOCH) // timedelta(microseconds=1)


@contextmanager
def triggers_off(session, *names: str) -> Iterator[None]:
    """Write with the named triggers on card_state left out, then put them back as the schema has them."""
    session.commit()
    if session.get_bind().dialect.name == "sqlite":
        for name in names:
            session.execute(text(f"DROP TRIGGER {name}"))
        yield
        for name in names:
            [statement] = [s for s in DATABASE_KEPT["sqlite"] if s.startswith(f"CREATE TRIGGER {name} ")]
            session.execute(text(statement))
    else:
        for name in names:
            session.execute(text(f"ALTER TABLE card_state DISABLE TRIGGER {name}"))
        yield
        for name in names:
            session.execute(text(f"ALTER TABLE card_state ENABLE TRIGGER {name}"))
    session.commit()


def every_trigger(session) -> tuple[str, ...]:
    """The names of the triggers the database keeps its numbers with."""
    dialect = session.get_bind().dialect.name
    return tuple(statement.split()[2] for statement in DATABASE_KEPT[dialect]
                 if statement.startswith("CREATE TRIGGER "))


def last_review_us_written(session) -> tuple[str, ...]:
    """The triggers a write to `card_state.last_review_us` runs."""
    if session.get_bind().dialect.name == "sqlite":
        return ("card_state_last_review_us_update", "deck_state_counts_review")
    return ("card_state_last_review_us", "deck_state_counts_update")


def kept_review_counts(session) -> dict[int, tuple[int, int, int]]:
    return {card: (reps, again, lapses) for card, reps, again, lapses in session.execute(
        select(CardReviewCounts.card_id, CardReviewCounts.reps, CardReviewCounts.again_count,
               CardReviewCounts.lapses)) if (reps, again, lapses) != (0, 0, 0)}


def summed_review_counts(session) -> dict[int, tuple[int, int, int]]:
    return {card: (reps, again, lapses) for card, reps, again, lapses in session.execute(
        select(CardState.card_id, func.sum(CardState.reps), func.sum(CardState.again_count),
               func.sum(CardState.lapses)).group_by(CardState.card_id))}


def kept_deck_counts(session) -> dict[tuple[int, int], tuple[int, int | None]]:
    return {(user, deck): (states, latest) for user, deck, states, latest in session.execute(
        select(DeckStateCounts.user_id, DeckStateCounts.deck_id, DeckStateCounts.states,
               DeckStateCounts.last_review_us)) if (states, latest) != (0, None)}


def counted_deck_states(session) -> dict[tuple[int, int], tuple[int, int | None]]:
    return {(user, deck): (states, microseconds(latest)) for user, deck, states, latest in session.execute(
        select(CardState.user_id, Card.deck_id, func.count(), func.max(CardState.last_review))
        .join(Card, Card.id == CardState.card_id).group_by(CardState.user_id, Card.deck_id))}


def assert_kept_agree(session) -> None:
    """Every kept number is what the card states give, read back independently of the check."""
    session.expire_all()
    for state_id, last_review, kept in session.execute(select(CardState.id, CardState.last_review,
                                                              CardState.last_review_us)):
        assert kept == microseconds(last_review), state_id
    assert kept_deck_counts(session) == counted_deck_states(session)
    if session.get_bind().dialect.name == "sqlite":
        assert kept_review_counts(session) == summed_review_counts(session)
    session.rollback()


def fixed_then_clean(session, scheduler, expected_kinds: list[str]) -> None:
    report = check_database(session, scheduler, fix=True)
    assert kinds(report) == expected_kinds
    assert report.fixed and report.ok and len(report.repaired) == len(expected_kinds)
    assert check_database(session, scheduler, fix=False).problems == []
    assert_kept_agree(session)


def test_an_untouched_database_keeps_what_its_states_give(studied, scheduler):
    assert_kept_agree(studied)
    assert kept_deck_counts(studied)  # the comparison has rows to compare
    if studied.get_bind().dialect.name == "sqlite":
        assert kept_review_counts(studied)
    studied.rollback()
    report = check_database(studied, scheduler, fix=False)
    assert report.problems == []


def test_a_state_keeping_another_last_review_in_microseconds(studied, scheduler):
    state = state_of(studied, "ada", 1)
    state_id, user_id, card_id, last_review = state.id, state.user_id, state.card_id, state.last_review
    right = microseconds(last_review)
    cleared = state_of(studied, "bob", 0)
    cleared_id, cleared_user, cleared_card = cleared.id, cleared.user_id, cleared.card_id
    with triggers_off(studied, *last_review_us_written(studied)):
        studied.execute(update(CardState).where(CardState.id == state_id).values(last_review_us=12345))
        studied.execute(update(CardState).where(CardState.id == cleared_id).values(last_review_us=None))
    report = check_database(studied, scheduler, fix=False)
    assert kinds(report) == [LAST_REVIEW_US_MISMATCH]
    [problem] = report.problems
    assert problem.fixable and problem.message.startswith("2 card states keep a last review in microseconds")
    assert f"card state {state_id} (user {user_id}, card {card_id}) keeps 12345, its last review " \
           f"{last_review:%Y-%m-%d %H:%M:%S.%f} UTC gives {right}" in problem.message
    assert f"card state {cleared_id} (user {cleared_user}, card {cleared_card}) keeps None" in problem.message
    assert check_database(studied, scheduler, fix=False).problems == report.problems  # nothing changed

    fixed_then_clean(studied, scheduler, [LAST_REVIEW_US_MISMATCH])
    assert studied.scalar(select(CardState.last_review_us).where(CardState.id == state_id)) == right


def test_a_card_keeping_other_review_counts(studied, scheduler):
    sqlite_only(studied)
    raised, dropped = state_of(studied, "ada", 0).card_id, state_of(studied, "ada", 2).card_id
    unstudied = studied.scalar(select(Card.id).where(Card.position == 5, Card.deck_id == select(Deck.id)
                                                     .where(Deck.slug == "numbers").scalar_subquery()))
    summed = summed_review_counts(studied)
    assert unstudied not in summed
    # No trigger writes this table on its own: plain SQL, as a hand edit would.
    studied.execute(text("UPDATE card_review_counts SET reps = reps + 5, lapses = 7 WHERE card_id = :card"),
                    {"card": raised})
    studied.execute(text("DELETE FROM card_review_counts WHERE card_id = :card"), {"card": dropped})
    studied.execute(text("INSERT INTO card_review_counts (card_id, reps, again_count, lapses) VALUES (:card, 2, 1, 0)"),
                    {"card": unstudied})
    studied.commit()
    report = check_database(studied, scheduler, fix=False)
    assert kinds(report) == [CARD_REVIEW_COUNTS_MISMATCH]
    message = report.problems[0].message
    assert message.startswith("3 cards keep review counts (card_review_counts) other than the sums of the card states")
    reps, again, lapses = summed[raised]
    assert (f"card {raised} keeps reps {reps + 5}, again_count {again}, lapses 7 (its card states give reps {reps}, "
            f"again_count {again}, lapses {lapses})") in message
    reps, again, lapses = summed[dropped]
    assert (f"card {dropped} keeps no row (its card states give reps {reps}, again_count {again}, "
            f"lapses {lapses})") in message
    assert f"card {unstudied} keeps reps 2, again_count 1, lapses 0 (its card states give reps 0, " in message

    fixed_then_clean(studied, scheduler, [CARD_REVIEW_COUNTS_MISMATCH])
    assert kept_review_counts(studied) == summed


def test_an_account_keeping_other_counts_of_a_deck(studied, scheduler):
    counted = counted_deck_states(studied)
    ada = studied.scalar(select(User.id).where(User.username == "ada"))
    bob = studied.scalar(select(User.id).where(User.username == "bob"))
    numbers = studied.scalar(select(Deck.id).where(Deck.slug == "numbers"))
    other = studied.scalar(select(Deck.id).where(Deck.slug == "other"))
    assert (bob, other) not in counted
    studied.execute(text("UPDATE deck_state_counts SET states = states + 1 WHERE user_id = :user AND deck_id = :deck"),
                    {"user": ada, "deck": numbers})
    studied.execute(text("UPDATE deck_state_counts SET last_review_us = last_review_us - 1 "
                         "WHERE user_id = :user AND deck_id = :deck"), {"user": bob, "deck": numbers})
    studied.execute(text("DELETE FROM deck_state_counts WHERE user_id = :user AND deck_id = :deck"),
                    {"user": ada, "deck": other})
    studied.execute(text("INSERT INTO deck_state_counts (user_id, deck_id, states, last_review_us) "
                         "VALUES (:user, :deck, 1, NULL)"), {"user": bob, "deck": other})
    studied.commit()
    report = check_database(studied, scheduler, fix=False)
    assert kinds(report) == [DECK_STATE_COUNTS_MISMATCH]
    message = report.problems[0].message
    assert message.startswith("4 accounts keep counts of card states per deck (deck_state_counts) other than")

    def at(us: int | None) -> str:
        return "none" if us is None else f"{EPOCH + timedelta(microseconds=us):%Y-%m-%d %H:%M:%S.%f} UTC"

    states, latest = counted[(ada, numbers)]
    assert (f"user {ada}, deck {numbers} keeps {states + 1} states, latest review {at(latest)} (the card states "
            f"give {states} states, latest review {at(latest)})") in message
    states, latest = counted[(bob, numbers)]
    assert f"user {bob}, deck {numbers} keeps {states} states, latest review {at(latest - 1)} (" in message
    states, latest = counted[(ada, other)]
    assert (f"user {ada}, deck {other} keeps no row (the card states give 1 state, latest review "
            f"{at(latest)})") in message
    assert (f"user {bob}, deck {other} keeps 1 state, latest review none (the card states give 0 states, "
            "latest review none)") in message

    fixed_then_clean(studied, scheduler, [DECK_STATE_COUNTS_MISMATCH])
    assert kept_deck_counts(studied) == counted


def test_many_differences_name_a_few_and_count_the_rest(studied, scheduler):
    states = list(studied.scalars(select(CardState.id).order_by(CardState.id)))
    assert len(states) > KEPT_SHOWN
    with triggers_off(studied, *last_review_us_written(studied)):
        studied.execute(update(CardState).values(last_review_us=CardState.last_review_us + 1))
    [problem] = check_database(studied, scheduler, fix=False).problems
    assert problem.message.startswith(f"{len(states)} card states keep")
    assert problem.message.count("card state ") == KEPT_SHOWN
    assert f"card state {states[KEPT_SHOWN - 1]} " in problem.message
    assert f"card state {states[KEPT_SHOWN]} " not in problem.message
    assert f"; and {len(states) - KEPT_SHOWN} more; fixing rewrites it" in problem.message
    fixed_then_clean(studied, scheduler, [LAST_REVIEW_US_MISMATCH])


def test_a_fix_rebuilds_the_kept_numbers_from_the_repaired_states(studied, scheduler):
    """A card whose state and kept sums are both wrong: the sums come from the state the fix replays."""
    sqlite_only(studied)
    state = state_of(studied, "ada", 0)
    state_id, card_id, reps = state.id, state.card_id, state.reps
    # The state's counts changed with the triggers on (the sums follow them), then the sums by hand.
    studied.execute(update(CardState).where(CardState.id == state_id).values(reps=reps + 4))
    studied.execute(text("UPDATE card_review_counts SET again_count = again_count + 3 WHERE card_id = :card"),
                    {"card": card_id})
    studied.commit()
    report = check_database(studied, scheduler, fix=False)
    assert kinds(report) == [CARD_REVIEW_COUNTS_MISMATCH, STATE_MISMATCH]
    fixed_then_clean(studied, scheduler, [CARD_REVIEW_COUNTS_MISMATCH, STATE_MISMATCH])
    assert studied.scalar(select(CardState.reps).where(CardState.id == state_id)) == reps


def test_writes_made_without_the_triggers_are_found_and_rebuilt(studied, scheduler):
    """Answers, an undo and a state changed by hand while the database keeps nothing (as after a
    migration that forgot the triggers), and the fix made while they are still missing: the kept
    numbers are rebuilt from the states as the fix leaves them, not as they were found."""
    sqlite = studied.get_bind().dialect.name == "sqlite"
    names = every_trigger(studied)
    ada = studied.scalar(select(User.id).where(User.username == "ada"))
    numbers = studied.scalar(select(Deck.id).where(Deck.slug == "numbers"))
    new, known = (studied.scalar(select(Card.id).where(Card.deck_id == numbers, Card.position == n)) for n in (5, 0))
    changed = state_of(studied, "bob", 1)
    changed_id, last_review, reps = changed.id, changed.last_review, changed.reps
    studied.commit()
    with triggers_off(studied, *names):
        studied.execute(update(CardState).where(CardState.id == changed_id).values(
            last_review=last_review - timedelta(hours=5), reps=reps + 4))
        for number, card in enumerate([new, known, known]):
            answer_card(studied, scheduler, user_id=ada, card_id=card, rating=Rating.Again, token=f"off-{number}",
                        now=T0 + timedelta(days=40, minutes=number, microseconds=7))
            studied.commit()
        assert undo_last_answer(studied, scheduler, user_id=ada, deck_id=numbers) == known
        studied.commit()
        report = check_database(studied, scheduler, fix=False)
        expected = [CARD_REVIEW_COUNTS_MISMATCH, DECK_STATE_COUNTS_MISMATCH, LAST_REVIEW_US_MISMATCH, STATE_MISMATCH] \
            if sqlite else [DECK_STATE_COUNTS_MISMATCH, LAST_REVIEW_US_MISMATCH, STATE_MISMATCH]
        assert kinds(report) == expected
        kept = [p.message for p in report.problems if p.kind == LAST_REVIEW_US_MISMATCH]
        # Answers write the microseconds with the state themselves; the state changed by hand and the one
        # the undo put back are left for the missing triggers to have set.
        assert kept[0].startswith("2 card states keep")
        fixed_then_clean(studied, scheduler, expected)
        assert studied.scalar(select(CardState.last_review_us).where(CardState.id == changed_id)) == microseconds(
            last_review)


def test_the_kept_numbers_agree_after_the_app_writes(studied, scheduler):
    """No false alarm: answers (new cards, known cards, fractions of a second and none), undo, a
    removed account, each compared as the check compares."""
    def compared() -> list:
        with consistency._read_transaction(studied):
            return consistency._kept_numbers(studied, consistency._Plan())

    assert compared() == []
    numbers = studied.scalar(select(Deck.id).where(Deck.slug == "numbers"))
    cards = list(studied.scalars(select(Card.id).where(Card.deck_id == numbers).order_by(Card.position)))
    eve = register_user(studied, username="eve", password="long enough", password_method=FAST_HASH_METHOD)
    studied.commit()
    for number, (card, rating, micro) in enumerate([(cards[0], Rating.Good, 0), (cards[5], Rating.Again, 999999),
                                                     (cards[0], Rating.Again, 1), (cards[5], Rating.Easy, 0)]):
        answer_card(studied, scheduler, user_id=eve.id, card_id=card, rating=rating, token=f"eve-{number}",
                    now=T0 + timedelta(days=number, microseconds=micro))
        studied.commit()
        assert compared() == []
    for _ in range(3):
        assert undo_last_answer(studied, scheduler, user_id=eve.id, deck_id=numbers) is not None
        studied.commit()
        assert compared() == []
    studied.delete(studied.get(User, eve.id))
    studied.commit()
    assert compared() == []
    assert check_database(studied, scheduler, fix=False).problems == []
    assert_kept_agree(studied)


def test_the_check_in_several_processes_finds_and_fixes_the_same(studied, scheduler):
    state_id = state_of(studied, "bob", 1).id
    with triggers_off(studied, *last_review_us_written(studied)):
        studied.execute(update(CardState).where(CardState.id == state_id).values(last_review_us=1))
    if studied.get_bind().dialect.name == "sqlite":
        studied.execute(text("UPDATE card_review_counts SET lapses = lapses + 1"))
        studied.commit()
    alone = check_database(studied, scheduler, fix=False, workers=1)
    shared = check_database(studied, scheduler, fix=False, workers=2)
    assert shared.problems == alone.problems and {p.kind for p in alone.problems} <= KEPT_KINDS
    assert LAST_REVIEW_US_MISMATCH in kinds(alone)
    fixed = check_database(studied, scheduler, fix=True, workers=2)
    assert fixed.fixed and fixed.ok and fixed.problems == alone.problems
    assert check_database(studied, scheduler, fix=False, workers=2).problems == []
    assert_kept_agree(studied)


def test_the_fix_rebuilds_in_its_short_write_transactions(studied, scheduler):
    """On SQLite each kind of kept number is rebuilt in write transactions of at most a batch of rows."""
    sqlite_only(studied)
    engine = studied.get_bind()
    with triggers_off(studied, *last_review_us_written(studied)):
        studied.execute(update(CardState).values(last_review_us=CardState.last_review_us - 1))
    studied.execute(text("UPDATE card_review_counts SET reps = reps + 1"))
    studied.execute(text("UPDATE deck_state_counts SET states = states + 1"))
    studied.commit()
    states = studied.scalar(select(func.count()).select_from(CardState))
    cards = len(kept_review_counts(studied))
    decks = len(kept_deck_counts(studied))
    studied.rollback()
    begins: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cursor, statement, *_a:
                 begins.append(statement) if statement.startswith("BEGIN") else None)
    report = check_database(studied, scheduler, fix=True, batch_size=2, pause_seconds=0)
    assert kinds(report) == sorted(KEPT_KINDS) and report.ok
    # One read, then batches of two: every state's microseconds, every card's sums, every account's decks.
    writes = -(-states // 2) + -(-cards // 2) + -(-decks // 2)
    assert begins == ["BEGIN"] + ["BEGIN IMMEDIATE"] * writes
    assert check_database(studied, scheduler, fix=False).problems == []
    assert_kept_agree(studied)


# --- `flashapp check` --------------------------------------------------------------------------

def test_check_command_prints_the_kept_numbers_and_fixes_them(built_app):
    from flashapp import db

    with built_app.app_context():
        study(db.session, built_app.extensions["flashapp.scheduler"], cards=3)
        state = db.session.scalar(select(CardState).order_by(CardState.id).limit(1))
        state_id, user_id, card_id, right = state.id, state.user_id, state.card_id, microseconds(state.last_review)
        with triggers_off(db.session, *last_review_us_written(db.session)):
            db.session.execute(update(CardState).where(CardState.id == state_id).values(last_review_us=right + 1))
        sqlite = db.engine.dialect.name == "sqlite"
        if sqlite:
            db.session.execute(text("UPDATE card_review_counts SET reps = reps + 2 WHERE card_id = :card"),
                               {"card": card_id})
            db.session.commit()
        db.session.remove()
    runner = built_app.test_cli_runner()
    found = runner.invoke(args=["check"])
    assert found.exit_code == 1
    problems = 2 if sqlite else 1
    assert f"Found {problems} problem{'s' if sqlite else ''}:" in found.output
    assert ("  - 1 card state keeps a last review in microseconds (last_review_us) other than the last review's: "
            f"card state {state_id} (user {user_id}, card {card_id}) keeps {right + 1}, its last review "
            f"{EPOCH + timedelta(microseconds=right):%Y-%m-%d %H:%M:%S.%f} UTC gives {right}; fixing rewrites it "
            "from the last review\n") in found.output
    if sqlite:
        assert (f"  - 1 card keeps review counts (card_review_counts) other than the sums of the card states: "
                f"card {card_id} keeps reps ") in found.output
    assert f"{problems} problem{'s' if sqlite else ''} can be fixed with `flashapp check --fix`." in found.output

    fixed = runner.invoke(args=["check", "--fix"])
    assert fixed.exit_code == 0, fixed.output
    assert f"Fixed {problems} problem{'s' if sqlite else ''}." in fixed.output
    again = runner.invoke(args=["check"])
    assert again.exit_code == 0 and again.output.endswith("No problems found.\n")
