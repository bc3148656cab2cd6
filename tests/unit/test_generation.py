"""Building decks: stable keys, wording fixes in place, retire-not-delete, history kept."""

from __future__ import annotations

from datetime import timedelta

from fsrs import Rating
from sqlalchemy import func, select

from flashapp.accounts import register_user
from flashapp.decksource import load_deck, parse_deck_text
from flashapp.generation import build_deck, plan_notes
from flashapp.models import Card, CardState, Note, ReviewLog
from flashapp.scheduling import answer_card, make_scheduler
from tests.helpers import BUNDLED_DECK, FAST_HASH_METHOD, PLANETS, T0, with_lines


def build(session, text, now=T0):
    report = build_deck(session, parse_deck_text(text, "planets.yaml"), now=now)
    session.commit()
    return report


def cards_by_key(session):
    return {card.key: card for card in session.scalars(select(Card))}


def test_keys_come_from_deck_relation_and_subject():
    plans = plan_notes(parse_deck_text(PLANETS))
    assert [(p.key, [c.key for c in p.cards]) for p in plans] == [
        ("planets/moon/jupiter", ["planets/moon/jupiter/forward", "planets/moon/jupiter/reverse"]),
        ("planets/kind/mars", ["planets/kind/mars/forward"]),
        ("planets/kind/members-of-rocky", ["planets/kind/members-of-rocky/grouped"]),
    ]
    moon = plans[0].cards
    assert (moon[0].question, moon[0].answer) == ("What is the largest moon of Jupiter?", "Ganymede")
    assert (moon[1].question, moon[1].answer) == ("Ganymede orbits which planet?", "Jupiter")


def test_a_grouped_card_lists_every_subject_that_shares_the_object():
    text = PLANETS + "  - relation: kind\n    subject: Venus\n    object: rocky\n    section: orbits\n"
    group = next(p for p in plan_notes(parse_deck_text(text)) if p.key.endswith("members-of-rocky"))
    assert group.cards[0].question == "Which planets are rocky?"
    assert group.cards[0].answer == "Mars and Venus"


def test_building_twice_changes_nothing(session):
    first = build(session, PLANETS)
    assert len(first.cards_added) == 4 and first.changed
    ids = {key: card.id for key, card in cards_by_key(session).items()}
    second = build(session, PLANETS, now=T0 + timedelta(days=1))
    assert not second.changed
    assert {key: card.id for key, card in cards_by_key(session).items()} == ids


def test_a_wording_fix_updates_the_same_card_in_place(session):
    build(session, PLANETS)
    before = cards_by_key(session)["planets/moon/jupiter/forward"].id
    report = build(session, with_lines(PLANETS, "    object: Ganymede", "    object: Ganymede (the largest)"))
    assert report.cards_updated == ["planets/moon/jupiter/forward", "planets/moon/jupiter/reverse"]
    assert report.cards_added == [] and report.cards_retired == []
    card = cards_by_key(session)["planets/moon/jupiter/forward"]
    assert card.id == before
    assert card.answer == "Ganymede (the largest)"


def test_rebuilding_a_deck_keeps_review_history_and_retires_removed_facts(session):
    build(session, PLANETS)
    user = register_user(session, username="ada", password="long enough", password_method=FAST_HASH_METHOD)
    scheduler = make_scheduler(enable_fuzzing=False)
    mars = cards_by_key(session)["planets/kind/mars/forward"]
    answer_card(session, scheduler, user_id=user.id, card_id=mars.id, rating=Rating.Good, token="t-1", now=T0)
    session.commit()

    without_mars = PLANETS[: PLANETS.index("  - relation: kind")]
    report = build(session, without_mars, now=T0 + timedelta(days=1))
    assert sorted(report.cards_retired) == ["planets/kind/mars/forward", "planets/kind/members-of-rocky/grouped"]
    assert session.get(Card, mars.id).retired is True
    assert session.scalar(select(func.count(ReviewLog.id))) == 1
    assert session.scalar(select(func.count(CardState.id))) == 1
    assert session.scalar(select(Note.retired).where(Note.key == "planets/kind/mars")) is True

    back = build(session, PLANETS, now=T0 + timedelta(days=2))
    assert sorted(back.cards_updated) == ["planets/kind/mars/forward", "planets/kind/members-of-rocky/grouped"]
    assert session.get(Card, mars.id).retired is False


def test_the_bundled_deck_builds_every_note_and_card(session):
    spec = load_deck(BUNDLED_DECK)
    report = build_deck(session, spec, now=T0)
    session.commit()
    plans = plan_notes(spec)
    assert len(report.notes_added) == len(plans)
    assert len(report.cards_added) == sum(len(p.cards) for p in plans)
    assert len(set(report.cards_added)) == len(report.cards_added)
    questions = [c.question for c in session.scalars(select(Card))]
    assert len(set(questions)) == len(questions), "two cards ask the same question"


def squares(count: int, *, wording: str = "") -> str:
    """A deck of `count` square facts, written out directly (more facts than one batch of writes)."""
    head = ("deck:\n  slug: squares\n  title: Squares\n  source: test\n  sections: {main: Main}\nrelations:\n"
            "  square:\n    forward: 'What is the square of {subject}?'\n"
            "    reverse: 'Which number squares to {object}?'\nfacts:\n")
    return head + "".join(f"  - {{relation: square, subject: '{n}', object: '{n * n}{wording}', section: main}}\n"
                          for n in range(1, count + 1))


def test_a_large_rebuild_updates_and_retires_in_batches_and_keeps_every_id_and_answer(session):
    first = build_deck(session, parse_deck_text(squares(2_500), "squares.yaml"), now=T0)
    assert len(first.notes_added) == 2_500 and len(first.cards_added) == 5_000
    ids = {key: card.id for key, card in cards_by_key(session).items()}
    user = register_user(session, username="ada", password="long enough", password_method=FAST_HASH_METHOD)
    last = cards_by_key(session)["squares/square/2500/forward"]
    answer_card(session, make_scheduler(enable_fuzzing=False), user_id=user.id, card_id=last.id, rating=Rating.Good,
                token="t-1", now=T0)
    session.commit()
    assert last.answer == "6250000"

    reworded = build_deck(session, parse_deck_text(squares(2_500, wording=" exactly"), "squares.yaml"),
                          now=T0 + timedelta(days=1))
    assert len(reworded.cards_updated) == 5_000 and not reworded.cards_added and not reworded.cards_retired
    assert last.answer == "6250000 exactly"  # the loaded card sees the new wording
    halved = build_deck(session, parse_deck_text(squares(1_250, wording=" exactly"), "squares.yaml"),
                        now=T0 + timedelta(days=2))
    session.commit()
    assert len(halved.notes_retired) == 1_250 and len(halved.cards_retired) == 2_500
    assert {key: card.id for key, card in cards_by_key(session).items()} == ids
    assert session.get(Card, last.id).retired is True
    assert session.scalar(select(func.count(Card.id)).where(Card.retired.is_(False))) == 2_500
    assert session.scalar(select(func.count(ReviewLog.id))) == 1
    assert session.scalar(select(func.count(CardState.id))) == 1
