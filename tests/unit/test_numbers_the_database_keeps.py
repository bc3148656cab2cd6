"""What the database keeps for the class's numbers, however a card state is written.

Each state's last review as whole microseconds and each account's states of each deck counted with
the latest review among them (both databases); on SQLite, each card's review counts summed over
every account. The class's predicted recall counts study days from the first, the roster its cards
started and last answers from the second, a class holding most of the school takes its review counts
from the third: a number that disagreed with the states would be silently wrong. Every way a state is
written is taken here, on both databases, and the numbers compared with the states after each.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fsrs import Rating
from sqlalchemy import delete, func, select, text, update

from flashapp import consistency
from flashapp.accounts import register_user
from flashapp.anki_import import AnkiExport, AnkiReview, app_cards_by_anki_card, import_anki_reviews
from flashapp.consistency import check_database
from flashapp.models import Card, CardReviewCounts, CardState, DeckStateCounts, User
from flashapp.scheduling import answer_card, recompute_memory_states, undo_last_answer
from tests.helpers import FAST_HASH_METHOD, build_numbers_deck

NOW = datetime(2026, 4, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def microseconds(at: datetime | None) -> int | None:
    return None if at is None else (at - EPOCH) // timedelta(microseconds=1)


def kept_us(session, user_id: int, card_id: int) -> int | None:
    return session.scalar(select(CardState.last_review_us).where(CardState.user_id == user_id,
                                                                 CardState.card_id == card_id))


def assert_kept(session) -> int:
    """Every state's microseconds are its last review's, every account's deck counts its states', and (SQLite)
    every card's sums its states'; the number of states."""
    session.expire_all()
    rows = session.execute(select(CardState.id, CardState.last_review, CardState.last_review_us)).all()
    assert [(state_id, microseconds(last), us) for state_id, last, us in rows] == [
        (state_id, us, us) for state_id, _, us in rows]
    assert all((last is None) == (us is None) for _, last, us in rows)
    kept = {card_id: (reps, again, lapses) for card_id, reps, again, lapses in session.execute(
        select(CardReviewCounts.card_id, CardReviewCounts.reps, CardReviewCounts.again_count,
               CardReviewCounts.lapses)) if (reps, again, lapses) != (0, 0, 0)}
    counted = {(user_id, deck_id): (states, latest) for user_id, deck_id, states, latest in session.execute(
        select(DeckStateCounts.user_id, DeckStateCounts.deck_id, DeckStateCounts.states,
               DeckStateCounts.last_review_us)) if (states, latest) != (0, None)}
    assert counted == {(user_id, deck_id): (states, latest) for user_id, deck_id, states, latest in session.execute(
        select(CardState.user_id, Card.deck_id, func.count(), func.max(CardState.last_review_us))
        .join(Card, Card.id == CardState.card_id).group_by(CardState.user_id, Card.deck_id))}
    if session.get_bind().dialect.name == "sqlite":
        assert kept == {card_id: (reps, again, lapses) for card_id, reps, again, lapses in session.execute(
            select(CardState.card_id, func.sum(CardState.reps), func.sum(CardState.again_count),
                   func.sum(CardState.lapses)).group_by(CardState.card_id)) if (reps, again, lapses) != (0, 0, 0)}
    else:
        assert kept == {}  # PostgreSQL sums a class's states per card in its own plans
    # `flashapp check` compares them in its own way (in SQL): it must agree, with no false alarm.
    session.rollback()
    with consistency._read_transaction(session):
        assert consistency._kept_numbers(session, consistency._Plan()) == []
    return len(rows)


def test_every_way_of_writing_a_state_keeps_the_numbers(session, scheduler):
    deck = build_numbers_deck(session, count=6, now=NOW - timedelta(days=30))
    ann = register_user(session, username="ann", password="long enough", password_method=FAST_HASH_METHOD)
    bob = register_user(session, username="bob", password="long enough", password_method=FAST_HASH_METHOD)
    session.commit()
    other = build_numbers_deck(session, count=2, slug="other", now=NOW - timedelta(days=30))
    session.commit()
    cards = list(session.scalars(select(Card.id).where(Card.deck_id == deck.id).order_by(Card.position)))
    elsewhere = session.scalar(select(Card.id).where(Card.deck_id == other.id).order_by(Card.position))

    # Answers: a new card's state is inserted, a known card's updated, in the answer's own statements.
    for number, (card_id, minutes) in enumerate([(cards[0], 0), (cards[1], 3), (cards[0], 600), (cards[2], 601)]):
        answer_card(session, scheduler, user_id=ann.id, card_id=card_id, rating=Rating.Good, token=f"t{number}",
                    now=NOW + timedelta(minutes=minutes, microseconds=number))
        session.commit()
        assert_kept(session)
    for number, (card_id, rating) in enumerate([(cards[0], Rating.Again), (cards[5], Rating.Good),
                                                (elsewhere, Rating.Hard), (cards[0], Rating.Again)]):
        answer_card(session, scheduler, user_id=bob.id, card_id=card_id, rating=rating, token=f"b{number}",
                    now=NOW + timedelta(days=1, minutes=number))
        session.commit()
        assert_kept(session)
    assert kept_us(session, ann.id, cards[0]) == microseconds(NOW + timedelta(minutes=600, microseconds=2))

    # Undo: the card's state goes back to its earlier answer (rewritten through the ORM), or away.
    undo_last_answer(session, scheduler, user_id=ann.id, deck_id=deck.id)
    undo_last_answer(session, scheduler, user_id=ann.id, deck_id=deck.id)
    session.commit()
    assert assert_kept(session) == 5
    assert kept_us(session, ann.id, cards[0]) == microseconds(NOW)

    # Plain SQL, a time without a fraction of a second as SQLite may hold one; and a number written by hand
    # is put right.
    zone = "" if session.get_bind().dialect.name == "sqlite" else "+00"
    session.execute(text("INSERT INTO card_state (user_id, card_id, state, stability, difficulty, due, last_review, "
                         f"reps, lapses, again_count) VALUES (:user, :card, 2, 3.0, 5.0, '2026-04-05 12:00:00{zone}', "
                         f"'2026-03-29 12:00:00{zone}', 1, 0, 0)"), {"user": ann.id, "card": cards[3]})
    session.commit()
    assert assert_kept(session) == 6
    session.execute(update(CardState).where(CardState.card_id == cards[3]).values(last_review=NOW - timedelta(days=2)))
    session.execute(update(CardState).where(CardState.user_id == ann.id, CardState.card_id == cards[1])
                    .values(last_review_us=12345))
    session.commit()
    assert_kept(session)
    session.execute(update(CardState).where(CardState.card_id == cards[3]).values(last_review=None))
    session.commit()
    assert_kept(session)

    # A state moved to another card, as a damaged database might have it, and counts written by hand.
    session.execute(update(CardState).where(CardState.user_id == bob.id, CardState.card_id == cards[5]).values(
        card_id=cards[1], reps=9, again_count=4, lapses=2))
    session.execute(update(CardState).where(CardState.user_id == bob.id, CardState.card_id == cards[0]).values(
        reps=1, again_count=0, lapses=0))
    session.commit()
    assert_kept(session)

    # `flashapp check --fix` replays the tampered states from the review log (and removes the one without any).
    session.execute(update(CardState).where(CardState.user_id == ann.id, CardState.card_id == cards[0])
                    .values(last_review=NOW - timedelta(days=9)))
    session.commit()
    check_database(session, scheduler, fix=True)
    assert assert_kept(session) == 5
    assert kept_us(session, ann.id, cards[0]) == microseconds(NOW)

    # A new memory model rewrites the states in plain UPDATE statements.
    session.execute(update(CardState).where(CardState.user_id == ann.id, CardState.card_id == cards[1]).values(
        last_review=NOW + timedelta(days=1), last_review_us=None))
    session.commit()
    recompute_memory_states(session, scheduler, user_id=ann.id)
    session.commit()
    assert_kept(session)

    # Reviews brought back from Anki are replayed into the states of the cards they touch.
    guids = {card_id: place for place, card_id in app_cards_by_anki_card(session).items()}
    guid, template = guids[cards[4]]
    reviewed_ms = microseconds(NOW + timedelta(hours=2)) // 1000 + 7
    import_anki_reviews(session, scheduler, user_id=ann.id, now=NOW + timedelta(hours=3), export=AnkiExport(
        file_format="collection.anki21", note_guids=frozenset({guid}),
        reviews=(AnkiReview(reviewed_ms=reviewed_ms, ease=3, interval=-600, duration_ms=4000, kind=0,
                            note_guid=guid, template=template),)))
    assert assert_kept(session) == 6
    assert kept_us(session, ann.id, cards[4]) == reviewed_ms * 1000

    # A deck rebuilt without some of its cards retires them; their states stay as they were.
    build_numbers_deck(session, count=3, now=NOW + timedelta(days=1))
    session.commit()
    assert session.scalar(select(Card.retired).where(Card.id == cards[4]))
    assert assert_kept(session) == 6

    # An account removed takes its states with it.
    session.execute(delete(User).where(User.id == bob.id))
    session.commit()
    assert assert_kept(session) == 3


def test_an_answer_writes_its_states_microseconds_itself(session, scheduler):
    """The answer gives `last_review_us` with the state, so SQLite's trigger finds it right and writes nothing more.

    With the database's own keeping taken away, an answer still leaves the number right: inserting a new
    card's state and updating a known one.
    """
    deck = build_numbers_deck(session, count=2, now=NOW - timedelta(days=30))
    ann = register_user(session, username="ann", password="long enough", password_method=FAST_HASH_METHOD)
    session.commit()
    card_id = session.scalar(select(Card.id).where(Card.deck_id == deck.id).order_by(Card.position))
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("DROP TRIGGER card_state_last_review_us_insert"))
        session.execute(text("DROP TRIGGER card_state_last_review_us_update"))
    else:
        session.execute(text("DROP TRIGGER card_state_last_review_us ON card_state"))
    session.commit()
    for number, (rating, at) in enumerate([(Rating.Good, NOW), (Rating.Again, NOW + timedelta(minutes=11, seconds=1)),
                                           (Rating.Good, NOW + timedelta(days=2, microseconds=7))]):
        answer_card(session, scheduler, user_id=ann.id, card_id=card_id, rating=rating, token=f"t{number}", now=at)
        session.commit()
        assert kept_us(session, ann.id, card_id) == microseconds(at)
        assert assert_kept(session) == 1
