"""One student's statistics, checked against numbers worked out by hand on a small fixed history.

The student lives in Europe/Berlin with days starting at 04:00; the history crosses the clock
change of 29 March 2026 (01:00 UTC, from UTC+1 to UTC+2), and one answer falls before 04:00.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from fsrs import Rating, State
from sqlalchemy import select

from flashapp.accounts import register_user
from flashapp.errors import Invalid, NotFound
from flashapp.memory_stats import (
    Period,
    answer_tally,
    day_buckets,
    parse_period,
    percent_buckets,
    statistics_page,
    streaks,
    student_stats,
)
from flashapp.models import Card, CardState, Deck, ReviewLog, ReviewState
from flashapp.scheduling import StudyDays, restore_last_intervals
from flashapp.study import study_streak
from tests.helpers import FAST_HASH_METHOD, build_numbers_deck

NOW = datetime(2026, 4, 1, 12, 0, tzinfo=timezone.utc)  # 14:00 in Berlin: study day 1 April
ZONE = "Europe/Berlin"
MINUTE, DAY = timedelta(minutes=1), timedelta(days=1)
NEW, LEARNING, REVIEW, RELEARNING = ReviewState.NEW, ReviewState.LEARNING, ReviewState.REVIEW, ReviewState.RELEARNING


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def log(session, user, card, *, at, rating, before, due, ms=4000, token):
    session.add(ReviewLog(user_id=user.id, card_id=card.id, rating=rating, reviewed_at=at, duration_ms=ms,
                          state_before=before, due=due, token=token))


def state(session, user, card, *, kind, stability, difficulty, last_review, due):
    session.add(CardState(user_id=user.id, card_id=card.id, state=kind, step=None if kind == State.Review else 0,
                          stability=stability, difficulty=difficulty, due=due, last_review=last_review))


@pytest.fixture
def history(session):
    """Six numbers cards (the sixth retired) and another deck's card; Ada's answers and card states."""
    deck = build_numbers_deck(session, count=6, now=NOW - 90 * DAY)
    card1, card2, card3, card4, _card5, card6 = session.scalars(
        select(Card).where(Card.deck_id == deck.id).order_by(Card.position)).all()
    card6.retired = True
    deck.active_cards = 5
    other = build_numbers_deck(session, count=1, slug="other", now=NOW - 90 * DAY)
    stray = session.scalar(select(Card).where(Card.deck_id == other.id))
    ada = register_user(session, username="ada", password="long enough", time_zone=ZONE,
                        password_method=FAST_HASH_METHOD)

    # Card 1: learnt in February, a young review on 2 March (its previous interval 1 day), then a
    # lapse on 27 March when it was mature (previous interval 25 days), relearnt ten minutes later.
    log(session, ada, card1, at=utc(2026, 2, 20, 12), rating=Rating.Good, before=NEW, due=utc(2026, 2, 21, 12),
        token="c1-1")
    log(session, ada, card1, at=utc(2026, 3, 2, 12), rating=Rating.Good, before=REVIEW, due=utc(2026, 3, 27, 12),
        token="c1-2")
    log(session, ada, card1, at=utc(2026, 3, 27, 12), rating=Rating.Again, before=REVIEW,
        due=utc(2026, 3, 27, 12, 10), token="c1-3")
    log(session, ada, card1, at=utc(2026, 3, 27, 12, 10), rating=Rating.Good, before=RELEARNING,
        due=utc(2026, 4, 17, 12, 10), token="c1-4")
    # Card 4: 02:30 UTC on the day the clocks go forward is 04:30 in Berlin, so study day 29 March, hour 4.
    log(session, ada, card4, at=utc(2026, 3, 29, 2, 30), rating=Rating.Good, before=NEW,
        due=utc(2026, 4, 8, 2, 30), token="c4-1")
    # Card 3: 01:30 UTC on 1 April is 03:30 in Berlin, before the day starts: study day 31 March, hour 3.
    log(session, ada, card3, at=utc(2026, 4, 1, 1, 30), rating=Rating.Easy, before=NEW,
        due=utc(2026, 4, 2, 8), token="c3-1")
    # Card 2, today: Again then Good, 5 s and 7 s.
    log(session, ada, card2, at=NOW - 60 * MINUTE, rating=Rating.Again, before=NEW, due=NOW - 59 * MINUTE,
        ms=5000, token="c2-1")
    log(session, ada, card2, at=NOW - 30 * MINUTE, rating=Rating.Good, before=LEARNING, due=NOW - 20 * MINUTE,
        ms=7000, token="c2-2")
    # Another deck's card, today: counted with every deck, not with the numbers deck alone.
    log(session, ada, stray, at=NOW - 10 * MINUTE, rating=Rating.Hard, before=NEW, due=NOW, ms=9000, token="s-1")

    state(session, ada, card1, kind=State.Review, stability=1.0, difficulty=5.5, last_review=utc(2026, 3, 27, 12, 10),
          due=utc(2026, 4, 17, 12, 10))  # interval 27 March to 17 April: 21 days, mature
    state(session, ada, card2, kind=State.Learning, stability=0.5, difficulty=7.0, last_review=NOW - 30 * MINUTE,
          due=NOW - 20 * MINUTE)  # overdue: due today
    state(session, ada, card3, kind=State.Review, stability=2.0, difficulty=1.0, last_review=utc(2026, 4, 1, 1, 30),
          due=utc(2026, 4, 2, 8))  # study days 31 March to 2 April: 2 days
    state(session, ada, card4, kind=State.Review, stability=10.0, difficulty=10.0, last_review=utc(2026, 3, 29, 2, 30),
          due=utc(2026, 4, 8, 2, 30))  # 29 March to 8 April: 10 days
    state(session, ada, card6, kind=State.Review, stability=40.0, difficulty=3.0, last_review=NOW - 30 * DAY,
          due=NOW + 30 * DAY)  # retired
    state(session, ada, stray, kind=State.Learning, stability=1.0, difficulty=5.0, last_review=NOW - 10 * MINUTE,
          due=NOW)
    # Each answer keeps the interval its card had, as answering writes it.
    session.flush()
    restore_last_intervals(session, day_starts_at_hour=4)
    session.commit()
    return ada, deck, other


def numbers_of(session, scheduler, ada, deck, *, period=Period.MONTH):
    return student_stats(session, scheduler, user_id=ada.id, time_zone=ZONE, day_starts_at_hour=4, now=NOW,
                         deck_ids=[deck.id], period=period)


def test_today_counts_the_study_days_answers_and_time(session, scheduler, history):
    ada, deck, _ = history
    today = numbers_of(session, scheduler, ada, deck).today
    assert (today.answers, today.correct, today.again, today.milliseconds) == (2, 1, 1, 12_000)
    assert today.share_correct == 0.5
    everything = student_stats(session, scheduler, user_id=ada.id, time_zone=ZONE, day_starts_at_hour=4, now=NOW)
    assert (everything.today.answers, everything.today.again, everything.today.milliseconds) == (3, 1, 21_000)


def test_days_follow_the_time_zone_the_clock_change_and_the_day_start(session, scheduler, history):
    ada, deck, _ = history
    stats = numbers_of(session, scheduler, ada, deck, period=Period.YEAR)
    assert stats.calendar == {date(2026, 2, 20): 1, date(2026, 3, 2): 1, date(2026, 3, 27): 2,
                              date(2026, 3, 29): 1, date(2026, 3, 31): 1, date(2026, 4, 1): 2}
    assert (stats.streaks.current, stats.streaks.longest, stats.streaks.days_studied) == (2, 2, 6)
    answered = [(d.day, d.learning, d.review, d.relearning) for d in stats.days if d.total]
    assert answered == [(date(2026, 2, 20), 1, 0, 0), (date(2026, 3, 2), 0, 1, 0), (date(2026, 3, 27), 0, 1, 1),
                        (date(2026, 3, 29), 1, 0, 0), (date(2026, 3, 31), 1, 0, 0), (date(2026, 4, 1), 2, 0, 0)]
    assert len(stats.days) == 365 and stats.days[-1].day == date(2026, 4, 1)


def test_the_period_sets_the_days_the_buttons_and_the_hours(session, scheduler, history):
    ada, deck, _ = history
    month = numbers_of(session, scheduler, ada, deck, period=Period.MONTH)
    assert len(month.days) == 30 and month.days[0].day == date(2026, 3, 3)
    # 3 March to 1 April: the lapse and relearning of card 1, cards 4 and 3, and today's two answers.
    assert month.buttons == {"learning": [1, 0, 3, 1], "young": [0, 0, 0, 0], "mature": [1, 0, 0, 0]}
    hours = {h.hour: (h.answers, h.correct) for h in month.hours if h.answers}
    assert hours == {3: (1, 1), 4: (1, 1), 13: (4, 2)}
    year = numbers_of(session, scheduler, ada, deck, period=Period.YEAR)
    assert year.buttons == {"learning": [1, 0, 4, 1], "young": [0, 0, 1, 0], "mature": [1, 0, 0, 0]}
    today = numbers_of(session, scheduler, ada, deck, period=Period.TODAY)
    assert [(d.day, d.learning) for d in today.days] == [(date(2026, 4, 1), 2)]
    assert today.buttons["learning"] == [1, 0, 1, 0]


def test_true_retention_splits_young_and_mature_by_the_previous_interval(session, scheduler, history):
    ada, deck, _ = history
    table = {row.label: (row.young_passed, row.young_failed, row.mature_passed, row.mature_failed)
             for row in numbers_of(session, scheduler, ada, deck).retention}
    assert table == {"Today": (0, 0, 0, 0), "Yesterday": (0, 0, 0, 0), "Last week": (0, 0, 0, 1),
                     # The month is the last 30 study days: 3 March on, so the review of 2 March is out.
                     "Last month": (0, 0, 0, 1), "Last year": (1, 0, 0, 1)}
    year = numbers_of(session, scheduler, ada, deck).retention[-1]
    assert (year.young, year.mature, year.total) == (1.0, 0.0, 0.5)


def test_card_counts_forecast_and_distributions_come_from_the_states(session, scheduler, history):
    ada, deck, _ = history
    stats = numbers_of(session, scheduler, ada, deck)
    counts = stats.counts
    assert (counts.new, counts.learning, counts.relearning, counts.young, counts.mature, counts.retired) == \
        (1, 1, 0, 2, 1, 1)
    forecast = stats.forecast
    assert (forecast[0], forecast[1], forecast[7], forecast[16], sum(forecast)) == (1, 1, 1, 1, 4)
    assert stats.forecast_weeks[:3] == [2, 1, 1]
    states = stats.states
    assert {b.label: b.count for b in states.intervals if b.count} == {"2": 1, "7–13": 1, "21–44": 1}
    assert {b.label: b.count for b in states.stability if b.count} == {"1": 2, "2": 1, "7–13": 1}
    # Difficulty 5.5, 7, 1 and 10 on FSRS's 1-to-10 scale: 50 %, 67 %, 0 % and 100 %.
    assert {b.label: b.count for b in states.difficulty if b.count} == {"50–59": 1, "60–69": 1, "0–9": 1,
                                                                        "90–100": 1}
    # Card 1: 4 whole days since its last review at stability 1, so recall (1 + 0.9805 * 4) ** -0.1542 = 0.78;
    # the others have had less time than their stability, so above 0.9.
    assert {b.label: b.count for b in states.retrievability if b.count} == {"70–79": 1, "90–100": 3}


def test_a_deck_filter_leaves_the_other_decks_out(session, scheduler, history):
    ada, _, other = history
    only_other = numbers_of(session, scheduler, ada, other)
    assert only_other.calendar == {date(2026, 4, 1): 1}
    assert (only_other.counts.new, only_other.counts.learning, only_other.counts.retired) == (0, 1, 0)
    assert only_other.buttons["learning"] == [0, 1, 0, 0]


def test_a_student_without_answers_gets_empty_numbers(session, scheduler, history):
    _, deck, _ = history
    bob = register_user(session, username="bob", password="long enough", password_method=FAST_HASH_METHOD)
    session.commit()
    stats = student_stats(session, scheduler, user_id=bob.id, time_zone="UTC", day_starts_at_hour=4, now=NOW,
                          deck_ids=[deck.id])
    assert stats.calendar == {} and stats.today.answers == 0 and stats.today.share_correct is None
    assert stats.counts.new == 5 and sum(stats.forecast) == 0
    assert all(row.total is None for row in stats.retention)
    assert (stats.streaks.current, stats.streaks.longest) == (0, 0)


@pytest.mark.parametrize("time_zone", ["America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"])
def test_the_databases_study_days_and_hours_match_study_days(session, time_zone):
    """Answers every 7 h 13 min over a year, across every clock change: the database puts each on the
    study day and local hour that `StudyDays` gives it."""
    deck = build_numbers_deck(session, count=1, now=NOW - 400 * DAY)
    card = session.scalar(select(Card).where(Card.deck_id == deck.id))
    eve = register_user(session, username="eve", password="long enough", time_zone=time_zone,
                        password_method=FAST_HASH_METHOD)
    days = StudyDays(time_zone, 4)
    expected: dict[tuple[int, int], int] = {}
    at = NOW - 365 * DAY + timedelta(seconds=17, microseconds=999_999)
    n = 0
    while at < NOW:
        log(session, eve, card, at=at, rating=Rating.Good, before=REVIEW, due=at + DAY, token=f"e{n}")
        key = (days.number(at), at.astimezone(days.tz).hour)
        expected[key] = expected.get(key, 0) + 1
        at += timedelta(hours=7, minutes=13)
        n += 1
    session.commit()
    tally = answer_tally(session, user_id=eve.id, days=days, now=NOW, decks=lambda column: [])
    found: dict[tuple[int, int], int] = {}
    for (number, hour, _, _, _), count in tally.items():
        found[(number, hour)] = found.get((number, hour), 0) + count
    assert found == expected


def test_streaks_count_runs_of_days():
    assert streaks([], today=10, calendar_from=1) == streaks([], today=10, calendar_from=1)
    result = streaks([1, 2, 3, 5, 9, 10], today=10, calendar_from=2)
    assert (result.current, result.longest, result.days_studied) == (2, 3, 5)
    # Today not studied yet: the run ending yesterday still counts.
    assert streaks([7, 8, 9], today=10, calendar_from=1).current == 3
    assert streaks([7, 8], today=10, calendar_from=1).current == 0


def test_buckets_put_values_on_their_edges():
    assert [b.count for b in day_buckets([0.2, 1, 1.9, 2, 6.9, 7, 20.99, 21, 364, 365, 10_000])] == \
        [3, 1, 1, 1, 1, 1, 0, 0, 1, 2]
    assert [b.count for b in percent_buckets([0.0, 0.0999, 0.1, 0.7, 0.6999, 1.0])] == [2, 1, 0, 0, 0, 0, 1, 1, 0, 1]


def test_an_unknown_period_or_deck_is_refused(session, scheduler, history):
    ada, _, _ = history
    assert parse_period(None) == Period.MONTH and parse_period("year") == Period.YEAR
    with pytest.raises(Invalid, match="today, month or year"):
        parse_period("decade")
    with pytest.raises(NotFound, match="No deck 'nope'"):
        statistics_page(session, scheduler, student=ada, now=NOW, day_starts_at_hour=4, deck_slug="nope")
    page = statistics_page(session, scheduler, student=ada, now=NOW, day_starts_at_hour=4, deck_slug="other",
                           period="today")
    assert page.deck is not None and page.deck.slug == "other" and page.stats.period == Period.TODAY
    assert [d.slug for d in page.decks] == sorted(d.slug for d in session.scalars(select(Deck)))


def test_the_current_streak_is_the_one_the_done_screen_shows(session, scheduler, history):
    ada, _, _ = history
    stats = student_stats(session, scheduler, user_id=ada.id, time_zone=ZONE, day_starts_at_hour=4, now=NOW)
    assert stats.streaks.current == study_streak(session, user_id=ada.id, now=NOW, days=StudyDays(ZONE, 4)) == 2
    later = NOW + 2 * DAY  # a day without answers in between: the run is over
    stats = student_stats(session, scheduler, user_id=ada.id, time_zone=ZONE, day_starts_at_hour=4, now=later)
    assert stats.streaks.current == study_streak(session, user_id=ada.id, now=later, days=StudyDays(ZONE, 4)) == 0
