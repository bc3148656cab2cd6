"""Where the study page's walk for the next new card starts, and when it looks for one at all.

The walk starts at the highest position among the new cards a student was given in the app today
(`DeckDue.new_from`): each card below it that they have not started was buried when that card was shown.
These tests pin down which answers set that position, and that the card shown is the one the whole walk
finds even where the position is wrong for a reason the statement cannot see.

No app: a plain Session on a real database, fixed UTC datetimes, fuzzing off.
"""

from __future__ import annotations

from datetime import timedelta

from fsrs import Rating
from sqlalchemy import select

from flashapp import study
from flashapp.decksource import parse_deck_text
from flashapp.generation import build_deck
from flashapp.models import Card, ReviewLog, ReviewOrigin, ReviewState, Role, User
from flashapp.scheduling import StudyDays, deck_due_counts, make_scheduler
from flashapp.showings import ShowingTokens
from tests.helpers import T0, build_numbers_deck, deck_text, numbers_deck

SETTINGS = study.StudySettings(new_cards_per_day=20)
DAYS = StudyDays("UTC", 4)


class Student:
    def __init__(self, session, slug: str) -> None:
        user = User(username="eve", password_hash="x", role=Role.STUDENT, time_zone="UTC")
        session.add(user)
        session.commit()
        self.session, self.user_id, self.slug = session, user.id, slug
        self.scheduler = make_scheduler(enable_fuzzing=False)
        self.showings = ShowingTokens("new-card-walk-test-key-" + "x" * 20)

    def screen(self, at) -> study.StudyScreen:
        return study.study_screen(self.session, self.scheduler, self.showings, user_id=self.user_id, slug=self.slug,
                                  time_zone="UTC", now=at, settings=SETTINGS)

    def shown(self, at) -> str | None:
        showing = self.screen(at).showing
        return None if showing is None else showing.question

    def answer_token(self, token: str, rating: Rating, at) -> None:
        study.answer(self.session, self.scheduler, self.showings, user_id=self.user_id, slug=self.slug, token=token,
                     rating=rating, now=at)

    def answer(self, rating: Rating, at) -> str:
        showing = self.screen(at).showing
        assert showing is not None
        self.answer_token(showing.token, rating, at)
        return showing.question

    def deck_due(self, at):
        days = study.study_day(now=at, time_zone="UTC", settings=SETTINGS)
        deck = deck_due_counts(self.session, user_id=self.user_id, slug=self.slug, now=at, day_begins=days.begins,
                               day_ends=days.ends, new_per_day=SETTINGS.new_cards_per_day)
        assert deck is not None
        return deck


def test_the_walk_starts_at_the_highest_new_card_given_in_the_app_since_the_decks_build_today(session):
    deck = build_numbers_deck(session, count=12)
    student = Student(session, "numbers")
    card_at = dict(session.execute(select(Card.position, Card.id).where(Card.deck_id == deck.id)).all())

    def answered(position: int, at, *, before=ReviewState.NEW, origin=ReviewOrigin.APP) -> None:
        session.add(ReviewLog(user_id=student.user_id, card_id=card_at[position], rating=Rating.Good, reviewed_at=at,
                              duration_ms=3000, state_before=before, due=at + timedelta(days=1),
                              token=f"answer-{position}-{at.isoformat()}", origin=origin))

    answered(10, T0 - timedelta(days=1))  # yesterday
    answered(2, T0)  # today, before the deck's build below
    answered(5, T0 + timedelta(minutes=10))  # before the build too
    deck.built_at = T0 + timedelta(minutes=30)
    answered(3, T0 + timedelta(minutes=40))  # the one that counts
    answered(8, T0 + timedelta(minutes=41), before=ReviewState.REVIEW)  # a review, not a new card
    answered(9, T0 + timedelta(minutes=42), before=ReviewState.LEARNING)  # a learning card
    answered(11, T0 + timedelta(minutes=43), origin=ReviewOrigin.ANKI)  # a new card Anki chose
    session.commit()
    assert student.deck_due(T0 + timedelta(hours=1)).new_from == 3
    # Nothing new given in the app since the build: no bound, the walk starts at the first card.
    deck.built_at = T0 + timedelta(minutes=50)
    session.commit()
    assert student.deck_due(T0 + timedelta(hours=1)).new_from is None
    assert student.deck_due(T0 + timedelta(days=1)).new_from is None  # a new study day


def test_a_new_card_brought_back_from_anki_today_does_not_hide_the_cards_before_it(session):
    deck = build_numbers_deck(session, count=6)
    student = Student(session, "numbers")
    assert student.answer(Rating.Easy, T0) == "What is the square of 1?"
    # Studied in Anki this morning and brought back: the fact about 4 (position 3), new when answered there.
    card = session.scalar(select(Card.id).where(Card.deck_id == deck.id, Card.position == 3))
    session.add(ReviewLog(user_id=student.user_id, card_id=card, rating=Rating.Good, reviewed_at=T0,
                          duration_ms=3000, state_before=ReviewState.NEW, due=T0 + timedelta(days=1),
                          token="from-anki", origin=ReviewOrigin.ANKI))
    session.commit()
    # Card 2's object is card 4's subject: it is buried by that answer. The app's own order goes on at 3.
    assert student.shown(T0 + timedelta(minutes=1)) == "What is the square of 3?"


def test_a_card_put_before_the_day_s_new_cards_by_a_rebuild_today_is_shown_next(session):
    build_numbers_deck(session, count=6)
    student = Student(session, "numbers")
    for n in (1, 2, 3):
        assert student.answer(Rating.Easy, T0 + timedelta(minutes=n)) == f"What is the square of {n}?"
    # The teacher adds a fact at the top of the deck at noon: its card takes position 0, the others move down.
    text = numbers_deck(6).replace("facts:\n", 'facts:\n  - relation: square\n    subject: "10"\n'
                                               '    object: "100"\n    section: main\n', 1)
    build_deck(session, parse_deck_text(text, "numbers.yaml"), now=T0 + timedelta(hours=3))
    session.commit()
    assert student.shown(T0 + timedelta(hours=3, minutes=1)) == "What is the square of 10?"


def test_a_card_unburied_by_an_undo_before_a_stale_answer_is_still_shown(session):
    """A card shown before an undo in another window and answered after it: the card taken back lies below it,
    not buried, and no new card is left after it. The whole walk finds the card taken back."""
    build_numbers_deck(session, count=3)  # no two facts share a term: nothing is buried
    student = Student(session, "numbers")
    assert student.answer(Rating.Easy, T0) == "What is the square of 1?"
    assert student.answer(Rating.Easy, T0 + timedelta(minutes=1)) == "What is the square of 2?"
    stale = student.screen(T0 + timedelta(minutes=2)).showing
    assert stale is not None and stale.question == "What is the square of 3?"
    assert study.undo(session, student.scheduler, user_id=student.user_id, slug="numbers") is not None
    student.answer_token(stale.token, Rating.Easy, T0 + timedelta(minutes=3))
    screen = student.screen(T0 + timedelta(minutes=4))
    assert screen.counts.new == 1
    assert screen.showing is not None and screen.showing.question == "What is the square of 2?"


def test_a_new_card_is_looked_for_when_every_review_left_is_buried(session):
    """The queue leaves new cards out while a review is sure to come before them: here the one review due is
    buried, so the next card is new, not the learning card that would otherwise be shown early."""
    build_deck(session, parse_deck_text(deck_text(
        slug="squares", title="Squares", source="test", sections={"main": "Main"},
        relations={"square": {"forward": "What is the square of {subject}?"}},
        facts=[{"relation": "square", "subject": subject, "object": value, "section": "main"}
               for subject, value in (("2", "4"), ("4", "16"), ("3", "9"), ("5", "25"))]), "squares.yaml"), now=T0)
    session.commit()
    student = Student(session, "squares")
    assert student.answer(Rating.Easy, T0) == "What is the square of 2?"  # a review some days on
    review_due = session.execute(select(ReviewLog.due).where(ReviewLog.user_id == student.user_id)).scalar_one()
    day = DAYS.number(review_due)
    evening = DAYS.begins(day) - timedelta(minutes=5)  # the study day before, its last minutes
    # The fact about 4 (a sibling of 2, through "4") is new again on a later day: answered Again, it is learning.
    assert student.answer(Rating.Again, evening) == "What is the square of 4?"
    morning = DAYS.begins(day) + timedelta(minutes=1)
    assert student.screen(morning).counts.review == 1
    assert student.answer(Rating.Good, morning) == "What is the square of 4?"  # learning, due again in 10 minutes
    screen = student.screen(morning + timedelta(seconds=10))
    assert screen.counts.review == 0  # the review of 2, buried by its sibling's answer
    assert screen.showing is not None and screen.showing.question == "What is the square of 3?"


def test_given_where_to_start_the_walk_skips_the_cards_before_it(session):
    """What makes the page's walk short: with `new_from` the queue does not look at the cards before it."""
    from flashapp.scheduling import buried_cards, buried_notes, unburied_queue

    build_numbers_deck(session, count=6)
    student = Student(session, "numbers")
    assert student.answer(Rating.Easy, T0) == "What is the square of 1?"
    at = T0 + timedelta(minutes=1)
    deck = student.deck_due(at)
    assert deck.new_from == 0
    days = study.study_day(now=at, time_zone="UTC", settings=SETTINGS)
    cards = buried_cards(session, deck_id=deck.deck_id,
                         buried=buried_notes(session, user_id=student.user_id, deck_id=deck.deck_id,
                                             day_begins=days.begins, answered=deck.answered_cards))

    def first_new(new_from: int | None) -> str | None:
        _, card = unburied_queue(session, user_id=student.user_id, deck_id=deck.deck_id, now=at,
                                 day_begins=days.begins, day_ends=days.ends, counts=deck.counts,
                                 buried_card_ids=cards, answered=deck.answered_cards, new_from=new_from)
        return None if card is None else card.question

    assert first_new(deck.new_from) == first_new(None) == "What is the square of 2?"
    assert first_new(4) == "What is the square of 5?"
