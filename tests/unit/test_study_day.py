"""The done screen's domain side: the day's summary, the streak, the next time and more new cards today.

No app: a plain Session on a real database, fixed UTC datetimes, fuzzing off.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from fsrs import Rating
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from flashapp import study
from flashapp.errors import Invalid
from flashapp.models import Card, ReviewLog, ReviewState, Role, User
from flashapp.scheduling import DueCounts, StudyDays, make_scheduler
from flashapp.showings import ShowingTokens
from tests.helpers import T0, build_numbers_deck

SETTINGS = study.StudySettings(new_cards_per_day=1)
DAYS = StudyDays("UTC", 4)


@pytest.fixture
def ann(session) -> int:
    build_numbers_deck(session, count=3)
    user = User(username="ann", password_hash="x", role=Role.STUDENT, time_zone="UTC")
    session.add(user)
    session.commit()
    return user.id


class Student:
    def __init__(self, session, user_id: int) -> None:
        self.session, self.user_id = session, user_id
        self.scheduler = make_scheduler(enable_fuzzing=False)
        self.showings = ShowingTokens("study-day-test-key-" + "x" * 20)

    def screen(self, at) -> study.StudyScreen:
        return study.study_screen(self.session, self.scheduler, self.showings, user_id=self.user_id, slug="numbers",
                                  time_zone="UTC", now=at, settings=SETTINGS)

    def answer(self, rating: Rating, shown_at, answered_at=None) -> None:
        shown = self.screen(shown_at).showing
        assert shown is not None
        study.answer(self.session, self.scheduler, self.showings, user_id=self.user_id, slug="numbers",
                     token=shown.token, rating=rating, now=answered_at or shown_at)


def test_the_done_screen_sums_up_the_days_answers_in_the_deck(session, ann):
    student = Student(session, ann)
    student.answer(Rating.Again, T0, T0 + timedelta(seconds=8))
    student.answer(Rating.Easy, T0 + timedelta(minutes=2), T0 + timedelta(minutes=2, seconds=4))
    screen = student.screen(T0 + timedelta(minutes=3))
    assert screen.showing is None and screen.summary is not None
    summary = screen.summary
    assert (summary.answers, summary.cards, summary.correct, summary.seconds) == (2, 1, 1, 12)
    assert summary.share_correct == 0.5 and summary.streak == 1
    # One time for the next cards: new ones open with the next study day, before the review falls due.
    assert screen.next_due == DAYS.begins(DAYS.number(T0) + 1)


def test_a_review_card_can_be_studied_from_the_start_of_the_day_it_falls_due(session, ann):
    student = Student(session, ann)
    student.answer(Rating.Easy, T0)  # a review due some days later, at 09:00
    screen = student.screen(T0 + timedelta(minutes=1))
    upcoming = study.next_cards(session, user_id=ann, deck_id=screen.deck_id,
                                counts=DueCounts(unseen=0), days=DAYS, next_day=screen.next_day)
    assert upcoming is not None and upcoming.hour == 4 and upcoming > screen.next_day


def test_the_streak_counts_study_days_in_a_row_up_to_today_or_yesterday(session, ann):
    student = Student(session, ann)
    for days_ago in (5, 3, 2, 1):  # a gap four days ago
        at = T0 - timedelta(days=days_ago)
        student.answer(Rating.Good, at)
    streak = study.study_streak(session, user_id=ann, now=T0, days=DAYS)
    assert streak == 3  # yesterday, and the two days before: today is not over yet
    student.answer(Rating.Good, T0)
    assert study.study_streak(session, user_id=ann, now=T0, days=DAYS) == 4
    assert study.study_streak(session, user_id=ann, now=T0 + timedelta(days=2), days=DAYS) == 0


def streak_by_hand(answered: list, now, days: StudyDays) -> int:
    """The streak worked out from every answer's own study day: today's run, or yesterday's while today has none."""
    studied = {days.number(at) for at in answered if at <= now}
    cursor = days.number(now) if days.number(now) in studied else days.number(now) - 1
    streak = 0
    while cursor in studied:
        streak, cursor = streak + 1, cursor - 1
    return streak


# Answers as hours back from now (a few after it): runs of days long enough to span several of the streak's
# queries, gaps, several answers a day, in zones whose clocks change and with days starting at any hour.
HOURS_BACK = st.lists(st.one_of(st.integers(min_value=-30, max_value=24 * 120),
                                st.lists(st.integers(min_value=0, max_value=23), min_size=1, max_size=3).flatmap(
                                    lambda offsets: st.integers(min_value=0, max_value=90).map(
                                        lambda run: [24 * day + offsets[day % len(offsets)]
                                                     for day in range(run)]))), max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=HOURS_BACK, zone=st.sampled_from(["UTC", "Europe/London", "America/New_York",
                                                  "Australia/Lord_Howe", "Pacific/Chatham"]),
       hour=st.integers(min_value=0, max_value=23), minutes=st.integers(min_value=0, max_value=59))
def test_the_streak_is_the_run_of_study_days_the_answers_fall_on(session, ann, answers, zone, hour, minutes):
    session.execute(delete(ReviewLog))
    card_id = session.scalar(select(Card.id))
    now = T0 + timedelta(minutes=minutes)
    times = sorted(now - timedelta(hours=back, minutes=back % 7 * 5)
                   for entry in answers for back in (entry if isinstance(entry, list) else [entry]))
    if times:
        session.execute(insert(ReviewLog), [
            {"user_id": ann, "card_id": card_id, "rating": Rating.Good, "reviewed_at": at, "due": at,
             "state_before": ReviewState.REVIEW, "token": f"answer-{number}"} for number, at in enumerate(times)])
    session.commit()
    days = StudyDays(zone, hour)
    assert study.study_streak(session, user_id=ann, now=now, days=days) == streak_by_hand(times, now, days)


def test_more_new_cards_count_for_today_only(session, ann):
    student = Student(session, ann)
    student.answer(Rating.Easy, T0)
    assert student.screen(T0).counts.new == 0
    assert study.more_new_cards(session, user_id=ann, slug="numbers", now=T0, count=10) == 2
    assert student.screen(T0).counts.new == 2
    assert student.screen(T0 + timedelta(days=1)).counts.new == 1  # the next study day: the daily limit again
    student.answer(Rating.Easy, T0)
    student.answer(Rating.Easy, T0)
    with pytest.raises(Invalid):
        study.more_new_cards(session, user_id=ann, slug="numbers", now=T0)


@pytest.fixture
def planets_student(session) -> Student:
    from flashapp.decksource import parse_deck_text
    from flashapp.generation import build_deck
    from tests.helpers import PLANETS

    build_deck(session, parse_deck_text(PLANETS, "planets.yaml"), now=T0)
    user = User(username="cy", password_hash="x", role=Role.STUDENT, time_zone="UTC")
    session.add(user)
    session.commit()
    return Student(session, user.id)


def planets_screen(student: Student, at) -> study.StudyScreen:
    return study.study_screen(student.session, student.scheduler, student.showings, user_id=student.user_id,
                              slug="planets", time_zone="UTC", now=at, settings=study.StudySettings())


def answer_planet(student: Student, at, rating: Rating = Rating.Easy) -> str:
    shown = planets_screen(student, at).showing
    assert shown is not None
    study.answer(student.session, student.scheduler, student.showings, user_id=student.user_id, slug="planets",
                 token=shown.token, rating=rating, now=at)
    return shown.question


def test_siblings_are_buried_until_the_next_study_day(planets_student):
    student = planets_student
    assert planets_screen(student, T0).counts.new == 4
    assert answer_planet(student, T0) == "What is the largest moon of Jupiter?"
    # Its reverse is buried (the same note); the next card is another fact's.
    assert answer_planet(student, T0) == "What kind of planet is Mars?"
    # 'Which planets are rocky?' lists Mars: a sibling through the fact's object. Nothing else is left today.
    screen = planets_screen(student, T0 + timedelta(minutes=1))
    assert screen.showing is None and screen.counts.new == 0
    tomorrow = planets_screen(student, T0 + timedelta(days=1))
    assert tomorrow.counts.new == 2
    assert tomorrow.showing is not None and tomorrow.showing.question == "Ganymede orbits which planet?"


def test_learning_siblings_are_not_buried(planets_student):
    student = planets_student
    answer_planet(student, T0, Rating.Again)  # Jupiter's moon: learning, due again in a minute
    assert answer_planet(student, T0) == "What kind of planet is Mars?"
    assert answer_planet(student, T0 + timedelta(minutes=2), Rating.Again) == "What is the largest moon of Jupiter?"


def test_a_rebuild_that_makes_facts_siblings_buries_them_at_once(session, ann):
    from flashapp.decksource import parse_deck_text
    from flashapp.generation import build_deck
    from tests.helpers import numbers_deck

    student = Student(session, ann)
    settings = study.StudySettings(new_cards_per_day=10)

    def new_cards() -> int:
        return study.study_screen(session, student.scheduler, student.showings, user_id=ann, slug="numbers",
                                  time_zone="UTC", now=T0, settings=settings).counts.new

    student.answer(Rating.Easy, T0)  # "What is the square of 1?": its subject and object are both "1"
    assert new_cards() == 2
    # The fact about 2 now names "1" too (its key stays): it is buried from the next page on, although
    # the rebuild keeps the same build time.
    build_deck(session, parse_deck_text(numbers_deck(3).replace('object: "4"', 'object: "1"'), "numbers.yaml"),
               now=T0)
    session.commit()
    assert new_cards() == 1


def test_the_next_card_and_the_counts_less_the_buried_come_alike_from_one_query(session):
    """`unburied_queue` is `without_buried` then `next_queued_card`, in one query: day by day, with buried reviews,
    new and learning cards, the two agree at every screen."""
    from flashapp.decksource import parse_deck_text
    from flashapp.generation import build_deck
    from flashapp.scheduling import (
        buried_cards,
        buried_notes,
        deck_due_counts,
        next_queued_card,
        unburied_queue,
        without_buried,
    )
    from tests.helpers import deck_text

    # Four facts in each of three groups, the facts of a group siblings through their object.
    build_deck(session, parse_deck_text(deck_text(
        slug="groups", title="Groups", source="test", sections={"main": "Main"},
        relations={"square": {"forward": "What is the square of {subject}?"}},
        facts=[{"relation": "square", "subject": str(n), "object": f"group {n % 3}", "section": "main"}
               for n in range(1, 13)]), "groups.yaml"), now=T0)
    user = User(username="di", password_hash="x", role=Role.STUDENT, time_zone="UTC")
    session.add(user)
    session.commit()
    student = Student(session, user.id)
    settings = study.StudySettings(new_cards_per_day=5)

    def shown(card):
        if card is None:
            return None
        fields = ("state", "step", "stability", "difficulty", "due", "last_review")
        return card.card_id, None if card.state is None else tuple(getattr(card.state, name) for name in fields)

    compared = with_reviews = bounded = 0
    for day in range(12):
        for step in range(8):
            at = T0 + timedelta(days=day, minutes=3 * step)
            days = study.study_day(now=at, time_zone="UTC", settings=settings)
            deck = deck_due_counts(session, user_id=user.id, slug="groups", now=at, day_begins=days.begins,
                                   day_ends=days.ends, new_per_day=settings.new_cards_per_day)
            assert deck is not None
            buried = buried_notes(session, user_id=user.id, deck_id=deck.deck_id, day_begins=days.begins)
            cards = buried_cards(session, deck_id=deck.deck_id, buried=buried)
            if cards:
                counts = without_buried(session, deck.counts, user_id=user.id, deck_id=deck.deck_id,
                                        day_begins=days.begins, day_ends=days.ends, buried=buried, cards=cards)
                card = next_queued_card(session, user_id=user.id, deck_id=deck.deck_id, now=at, day_ends=days.ends,
                                        counts=counts, buried=buried, buried_card_ids=cards)
                merged_counts, merged_card = unburied_queue(session, user_id=user.id, deck_id=deck.deck_id, now=at,
                                                            day_begins=days.begins, day_ends=days.ends,
                                                            counts=deck.counts, buried_card_ids=cards,
                                                            answered=deck.answered_cards, new_from=deck.new_from)
                assert (merged_counts, shown(merged_card)) == (counts, shown(card)), (day, step)
                # The walk for a new card started past the first card (`new_from`) and found the same one.
                bounded += deck.new_from is not None and card is not None and card.state is None
                # The home page buries as the study page does (from the cards answered today in any deck).
                home = study.deck_list(session, user_id=user.id, time_zone="UTC", now=at, settings=settings)
                assert [entry.counts for entry in home if entry.id == deck.deck_id] == [counts], (day, step)
                compared += 1
                with_reviews += deck.counts.review > counts.review
            screen = study.study_screen(session, student.scheduler, student.showings, user_id=user.id,
                                        slug="groups", time_zone="UTC", now=at, settings=settings)
            if screen.showing is None:
                break
            study.answer(session, student.scheduler, student.showings, user_id=user.id, slug="groups",
                         token=screen.showing.token, rating=(Rating.Good, Rating.Again, Rating.Easy)[step % 3],
                         now=at + timedelta(seconds=5))
    # The days had buried cards, buried reviews among them, and new cards found from a bound.
    assert compared >= 20 and with_reviews >= 3 and bounded >= 5, (compared, with_reviews, bounded)


def test_a_decks_counts_take_its_own_answers_and_leave_out_its_retired_cards(session):
    """The study page's counts, as the home page's: answers given today in another deck count for that deck
    alone, and a card the student started that is then retired no longer counts as started (on SQLite, taken
    from the per-deck count its triggers keep)."""
    from flashapp.models import Card
    from flashapp.scheduling import deck_due_counts, due_counts

    numbers = build_numbers_deck(session, count=6)
    others = build_numbers_deck(session, count=4, slug="others")
    user = User(username="bo", password_hash="x", role=Role.STUDENT, time_zone="UTC")
    session.add(user)
    session.commit()
    scheduler = make_scheduler(enable_fuzzing=False)
    showings = ShowingTokens("study-day-test-key-" + "x" * 20)
    settings = study.StudySettings(new_cards_per_day=5)
    answered: dict[str, list[int]] = {"numbers": [], "others": []}
    for minute, (slug, rating) in enumerate([("numbers", Rating.Easy), ("others", Rating.Again),
                                             ("numbers", Rating.Again), ("numbers", Rating.Good)]):
        at = T0 + timedelta(minutes=minute)
        shown = study.study_screen(session, scheduler, showings, user_id=user.id, slug=slug, time_zone="UTC",
                                   now=at, settings=settings).showing
        assert shown is not None
        study.answer(session, scheduler, showings, user_id=user.id, slug=slug, token=shown.token, rating=rating,
                     now=at)
        answered[slug].append(shown.card_id)
    # The first card answered in `numbers` (a review now) is retired by a later build of the deck.
    session.get(Card, answered["numbers"][0]).retired = True
    numbers.active_cards -= 1  # as the build keeps it
    session.commit()

    at = T0 + timedelta(minutes=30)
    days = study.study_day(now=at, time_zone="UTC", settings=settings)
    deck = deck_due_counts(session, user_id=user.id, slug="numbers", now=at, day_begins=days.begins,
                           day_ends=days.ends, new_per_day=5)
    assert deck is not None
    # Three answers here today: two new cards, the second (Again) answered again; the first since retired.
    assert answered["numbers"][1] == answered["numbers"][2]
    assert (deck.counts.answered_today, deck.counts.started) == (3, 1)
    # Five new a day less the two introduced here; the deck's five active cards less the one started.
    assert (deck.counts.new, deck.counts.unseen) == (3, 4)
    assert sorted(deck.answered_cards) == sorted(set(answered["numbers"]))  # this deck's cards alone
    on_home = due_counts(session, user_id=user.id, deck_ids=[numbers.id, others.id], now=at,
                         day_begins=days.begins, day_ends=days.ends, new_per_day=5)
    assert on_home[numbers.id] == deck.counts
    assert (on_home[others.id].answered_today, on_home[others.id].started, on_home[others.id].new) == (1, 1, 3)



def test_a_review_answered_while_reviewing_ahead_is_buried_though_still_due_first_in_the_window(session, ann):
    """A review card answered today stays buried for the day even when its new due date falls inside the
    review-ahead window, before another card's: the counts leave it out and the queue shows the other card."""
    from sqlalchemy import select

    from flashapp.models import CardState

    student = Student(session, ann)

    def due(card_id):
        return session.scalar(select(CardState.due).where(CardState.user_id == ann, CardState.card_id == card_id))

    student.answer(Rating.Easy, T0)  # day 0: the first card, due in about a week
    day1 = T0 + timedelta(days=1)
    student.answer(Rating.Good, day1)  # day 1: the second, due a few days later
    student.answer(Rating.Good, day1 + timedelta(minutes=11))
    day2 = T0 + timedelta(days=2)
    student.answer(Rating.Easy, day2)  # day 2: the third (buried for the day), then a week's reviews opened
    assert study.review_ahead(session, user_id=ann, slug="numbers", days_ahead=7, now=day2 + timedelta(minutes=1),
                              time_zone="UTC", settings=SETTINGS) == 2
    ahead = student.screen(day2 + timedelta(minutes=2))
    assert ahead.reviewing_ahead and ahead.counts.review == 2 and ahead.showing is not None
    first = ahead.showing.card_id
    student.answer(Rating.Hard, day2 + timedelta(minutes=2))
    after = student.screen(day2 + timedelta(minutes=3))
    assert after.showing is not None and after.showing.card_id != first and after.counts.review == 1
    # Still due within the window and before the card shown: only burying keeps it back today.
    assert due(first) < due(after.showing.card_id) < DAYS.begins(DAYS.number(day2) + 1 + 7)
