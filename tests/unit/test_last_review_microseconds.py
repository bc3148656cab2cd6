"""Each card state's last review as whole microseconds, which the database keeps however the row is written.

The class's predicted recall counts study days from `card_state.last_review_us`; a state whose
number disagreed with its `last_review` would be silently misjudged. Every way a state is
written is taken here, on both databases, and the two columns compared after each.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import genanki
from fsrs import Rating
from sqlalchemy import select, text, update

from flashapp.accounts import register_user
from flashapp.anki_import import AnkiExport, AnkiReview, app_cards_by_anki_card, import_anki_reviews
from flashapp.consistency import check_database
from flashapp.models import Card, CardState, Deck, Note
from flashapp.scheduling import answer_card, recompute_memory_states, undo_last_answer
from tests.helpers import FAST_HASH_METHOD, build_numbers_deck

NOW = datetime(2026, 4, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def microseconds(at: datetime | None) -> int | None:
    return None if at is None else (at - EPOCH) // timedelta(microseconds=1)


def assert_kept(session) -> int:
    """Every state's microseconds are its last review's; how many states there are."""
    session.expire_all()
    rows = session.execute(select(CardState.id, CardState.last_review, CardState.last_review_us)).all()
    assert [(state_id, microseconds(last), us) for state_id, last, us in rows] == [
        (state_id, us, us) for state_id, _, us in rows]
    assert all((last is None) == (us is None) for _, last, us in rows)
    return len(rows)


def test_every_way_of_writing_a_state_keeps_its_microseconds(session, scheduler):
    deck = build_numbers_deck(session, count=6, now=NOW - timedelta(days=30))
    ann = register_user(session, username="ann", password="long enough", password_method=FAST_HASH_METHOD)
    session.commit()
    cards = list(session.scalars(select(Card.id).where(Card.deck_id == deck.id).order_by(Card.position)))

    # Answers: a new card's state is inserted, a known card's updated, in the answer's own statements.
    for number, (card_id, minutes) in enumerate([(cards[0], 0), (cards[1], 3), (cards[0], 600), (cards[2], 601)]):
        answer_card(session, scheduler, user_id=ann.id, card_id=card_id, rating=Rating.Good, token=f"t{number}",
                    now=NOW + timedelta(minutes=minutes, microseconds=number))
        session.commit()
        assert_kept(session)
    assert session.scalar(select(CardState.last_review_us).where(CardState.card_id == cards[0])) == \
        microseconds(NOW + timedelta(minutes=600, microseconds=2))

    # Undo: the card's state goes back to its earlier answer (rewritten through the ORM), or away.
    undo_last_answer(session, scheduler, user_id=ann.id, deck_id=deck.id)
    undo_last_answer(session, scheduler, user_id=ann.id, deck_id=deck.id)
    session.commit()
    assert assert_kept(session) == 2
    assert session.scalar(select(CardState.last_review_us).where(CardState.card_id == cards[0])) == microseconds(NOW)

    # Plain SQL, a time without a fraction of a second as SQLite may hold one; and a number written by hand
    # is put right.
    zone = "" if session.get_bind().dialect.name == "sqlite" else "+00"
    session.execute(text("INSERT INTO card_state (user_id, card_id, state, stability, difficulty, due, last_review, "
                         f"reps, lapses, again_count) VALUES (:user, :card, 2, 3.0, 5.0, '2026-04-05 12:00:00{zone}', "
                         f"'2026-03-29 12:00:00{zone}', 1, 0, 0)"), {"user": ann.id, "card": cards[3]})
    session.commit()
    assert assert_kept(session) == 3
    session.execute(update(CardState).where(CardState.card_id == cards[3]).values(last_review=NOW - timedelta(days=2)))
    session.execute(update(CardState).where(CardState.card_id == cards[1]).values(last_review_us=12345))
    session.commit()
    assert_kept(session)
    session.execute(update(CardState).where(CardState.card_id == cards[3]).values(last_review=None))
    session.commit()
    assert_kept(session)

    # `flashapp check --fix` replays the tampered states from the review log (and removes the one without any).
    session.execute(update(CardState).where(CardState.card_id == cards[0]).values(last_review=NOW - timedelta(days=9)))
    session.commit()
    check_database(session, scheduler, fix=True)
    assert assert_kept(session) == 2
    assert session.scalar(select(CardState.last_review_us).where(CardState.card_id == cards[0])) == microseconds(NOW)

    # A new memory model rewrites the states in plain UPDATE statements.
    session.execute(update(CardState).where(CardState.card_id == cards[1]).values(
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
    assert assert_kept(session) == 3
    assert session.scalar(select(CardState.last_review_us).where(CardState.card_id == cards[4])) == \
        reviewed_ms * 1000

    # A deck rebuilt without some of its cards retires them; their states stay as they were.
    build_numbers_deck(session, count=3, now=NOW + timedelta(days=1))
    session.commit()
    assert session.scalar(select(Card.retired).where(Card.id == cards[4]))
    assert assert_kept(session) == 3
    assert genanki.guid_for(session.scalar(select(Note.key).join(Card, Card.note_id == Note.id)
                                           .where(Card.id == cards[4]))) == guid
    assert session.scalar(select(Deck.active_cards).where(Deck.id == deck.id)) == 3
