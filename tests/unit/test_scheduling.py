"""Scheduling with FSRS: queue order, daily new-card limit, previews, one answer per showing, undo, replay.

Fixed UTC datetimes; fuzzing off unless a test says why.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from fsrs import Card as FsrsCard
from fsrs import Rating, State
from sqlalchemy import func, select

from flashapp import scheduling
from flashapp.accounts import register_user
from flashapp.models import Card, CardState, ReviewLog, ReviewState
from flashapp.scheduling import (
    Outcome,
    StudyDays,
    answer_card,
    button_label,
    card_reviews,
    day_start,
    due_counts,
    format_interval,
    last_intervals,
    make_scheduler,
    memory_step,
    next_card,
    next_day_start,
    preview_intervals,
    replay,
    schedule_answers,
    state_stamp,
    undo_last_answer,
)
from tests.helpers import FAST_HASH_METHOD, T0, build_numbers_deck


@pytest.fixture
def deck(session):
    deck = build_numbers_deck(session)
    session.commit()
    return deck


@pytest.fixture
def user(session):
    user = register_user(session, username="ada", password="long enough", time_zone="Asia/Tokyo",
                         password_method=FAST_HASH_METHOD)
    session.commit()
    return user


def cards(session):
    return list(session.scalars(select(Card).order_by(Card.position)))


class Study:
    """Answers cards for one user the way the web view does, with explicit times."""

    def __init__(self, session, scheduler, user, deck, new_per_day=20):
        self.session, self.scheduler, self.user, self.deck = session, scheduler, user, deck
        self.new_per_day = new_per_day
        self.tokens = 0

    def next(self, at):
        return next_card(self.session, user_id=self.user.id, deck_id=self.deck.id, now=at,
                         day_begins=day_start(at, self.user.time_zone),
                         day_ends=next_day_start(at, self.user.time_zone), new_per_day=self.new_per_day)

    def counts(self, at):
        return due_counts(self.session, user_id=self.user.id, deck_ids=[self.deck.id], now=at,
                          day_begins=day_start(at, self.user.time_zone),
                          day_ends=next_day_start(at, self.user.time_zone), new_per_day=self.new_per_day)[self.deck.id]

    def answer(self, card, rating, at, token=None):
        self.tokens += 1
        result = answer_card(self.session, self.scheduler, user_id=self.user.id, card_id=card.id, rating=rating,
                             token=token or f"token-{self.tokens}", now=at)
        self.session.commit()
        return result


@pytest.fixture
def study(session, scheduler, user, deck):
    return Study(session, scheduler, user, deck)


def test_the_day_starts_at_four_in_the_morning_local_time():
    # 03:30 in New York (EST, UTC-5) still belongs to the previous day.
    assert day_start(datetime(2026, 3, 2, 8, 30, tzinfo=timezone.utc), "America/New_York") == \
        datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
    assert day_start(datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc), "America/New_York") == \
        datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    # Across the spring-forward change (8 March 2026) the next day starts 23 hours later.
    assert next_day_start(datetime(2026, 3, 7, 12, 0, tzinfo=timezone.utc), "America/New_York") == \
        datetime(2026, 3, 8, 8, 0, tzinfo=timezone.utc)


def test_new_cards_are_shown_in_deck_order(study, session):
    first, second = cards(session)[:2]
    assert study.next(T0) == (first, None)
    study.answer(first, Rating.Easy, T0)
    assert study.next(T0) == (second, None)


def test_queue_order_is_learning_then_reviews_then_new(study, session):
    a, b, c = cards(session)[:3]
    study.answer(b, Rating.Easy, T0 - timedelta(days=20))  # a review, due since about 8 days later
    study.answer(a, Rating.Again, T0)  # learning, due a minute later
    at = T0 + timedelta(minutes=2)
    card, state = study.next(at)
    assert card == a and state.state == State.Learning.value
    study.answer(a, Rating.Easy, at)
    card, state = study.next(at)
    assert card == b and state.state == State.Review.value
    study.answer(b, Rating.Good, at)
    assert study.next(at) == (c, None)
    assert study.counts(at).learning == 0 and study.counts(at).review == 0


def test_a_learning_card_is_shown_early_only_when_nothing_else_is_left(session, scheduler, user, deck):
    study = Study(session, scheduler, user, deck, new_per_day=1)
    first = cards(session)[0]
    study.answer(first, Rating.Good, T0)  # learning, due in 10 minutes
    card, state = study.next(T0 + timedelta(minutes=1))
    assert card == first and state.due == T0 + timedelta(minutes=10)
    study.answer(first, Rating.Easy, T0 + timedelta(minutes=1))
    assert study.next(T0 + timedelta(minutes=2)) is None


def test_the_daily_new_card_limit_resets_at_four_in_the_users_time_zone(session, scheduler, user, deck):
    # Tokyo is UTC+9: its study day begins at 19:00 UTC.
    study = Study(session, scheduler, user, deck, new_per_day=3)
    evening = datetime(2026, 3, 2, 18, 0, tzinfo=timezone.utc)  # 03:00 in Tokyo
    for card in cards(session)[:3]:
        assert study.next(evening) == (card, None)
        study.answer(card, Rating.Easy, evening)
    assert study.counts(evening).new == 0
    assert study.next(evening + timedelta(minutes=50)) is None  # 03:50 in Tokyo: same day
    after_four = datetime(2026, 3, 2, 19, 5, tzinfo=timezone.utc)  # 04:05 in Tokyo: a new day
    assert study.counts(after_four).new == 3
    assert study.next(after_four) == (cards(session)[3], None)


def test_undoing_a_first_answer_gives_the_new_card_back_to_todays_allowance(session, scheduler, user, deck):
    study = Study(session, scheduler, user, deck, new_per_day=1)
    first = cards(session)[0]
    study.answer(first, Rating.Easy, T0)
    assert study.counts(T0).new == 0
    undo_last_answer(session, scheduler, user_id=user.id, deck_id=deck.id)
    session.commit()
    assert study.counts(T0).new == 1
    assert study.next(T0) == (first, None)


def test_preview_intervals_for_a_new_card(scheduler):
    intervals = preview_intervals(scheduler, 1, None, T0, time_zone="UTC", user_id=1)
    assert intervals[Rating.Again] == timedelta(minutes=1)
    assert intervals[Rating.Hard] == timedelta(minutes=5, seconds=30)  # between the two learning steps
    assert intervals[Rating.Good] == timedelta(minutes=10)
    assert intervals[Rating.Easy] >= timedelta(days=1)
    labels = [button_label(intervals[r]) for r in (Rating.Again, Rating.Hard, Rating.Good, Rating.Easy)]
    assert labels[:3] == ["<1m", "<6m", "<10m"] and labels[3].endswith("d")


def test_preview_matches_what_answering_schedules(study, session, scheduler):
    card = cards(session)[0]
    study.answer(card, Rating.Easy, T0)
    later = T0 + timedelta(days=9)
    state = session.scalar(select(CardState))
    expected = preview_intervals(scheduler, card.id, state, later, time_zone="Asia/Tokyo", user_id=study.user.id)
    result = study.answer(card, Rating.Good, later)
    assert result.review.interval == expected[Rating.Good]


@pytest.mark.parametrize("scheduler", [make_scheduler(enable_fuzzing=False), make_scheduler(),
                                       make_scheduler(relearning_steps_minutes=(), maximum_interval_days=30)])
def test_one_answer_worked_out_alone_is_the_one_the_buttons_show(scheduler):
    """An answer works out only its own rating (and those its interval keeps above): the same card as all four."""
    now = T0 + timedelta(days=40, hours=5)
    shown = [FsrsCard(card_id=1, state=State.Learning, step=0, due=now)]
    for number, (state, step, stability, days_ago) in enumerate([
            (State.Learning, 1, 2.3, 0), (State.Learning, 0, 0.4, 2), (State.Review, None, 0.8, 1),
            (State.Review, None, 3.2, 3), (State.Review, None, 15.0, 20), (State.Review, None, 90.0, 39),
            (State.Review, None, 400.0, 12), (State.Relearning, 0, 1.5, 0)], start=2):
        shown.append(FsrsCard(card_id=number, state=state, step=step, stability=stability, difficulty=5.5,
                              due=now - timedelta(hours=1), last_review=now - timedelta(days=days_ago, hours=2)))
    for card in shown:
        every = schedule_answers(scheduler, card, now, time_zone="Asia/Tokyo", user_id=7)
        assert len(every) == 4
        for rating in every:
            alone = schedule_answers(scheduler, card, now, time_zone="Asia/Tokyo", user_id=7, rating=rating)
            assert alone[rating] == every[rating], (card, rating)
            assert alone[rating].due == every[rating].due


@pytest.mark.parametrize(("interval", "label"), [
    (timedelta(seconds=20), "20s"), (timedelta(minutes=1), "1m"), (timedelta(minutes=10), "10m"),
    (timedelta(hours=3), "3h"), (timedelta(hours=1, minutes=30), "1.5h"), (timedelta(days=1), "1d"),
    (timedelta(days=30), "30d"), (timedelta(days=45), "1.5mo"), (timedelta(days=77), "2.5mo"),
    (timedelta(days=365), "1y"), (timedelta(days=912), "2.5y"),
])
def test_intervals_are_written_the_way_anki_writes_them(interval, label):
    assert format_interval(interval) == label


def test_the_same_showing_answered_twice_records_one_review(study, session):
    card = cards(session)[0]
    assert study.answer(card, Rating.Good, T0, token="same").outcome is Outcome.RECORDED
    assert study.answer(card, Rating.Good, T0 + timedelta(seconds=1), token="same").outcome is Outcome.DUPLICATE
    assert session.scalar(select(func.count(ReviewLog.id))) == 1


def test_an_outdated_showing_is_not_recorded(session, scheduler, user, deck):
    card = cards(session)[0]
    stamp = state_stamp(None)
    answer_card(session, scheduler, user_id=user.id, card_id=card.id, rating=Rating.Good, token="tab-1",
                now=T0, shown_stamp=stamp)
    second = answer_card(session, scheduler, user_id=user.id, card_id=card.id, rating=Rating.Again, token="tab-2",
                         now=T0, shown_stamp=stamp)
    assert second.outcome is Outcome.STALE
    assert session.scalar(select(func.count(ReviewLog.id))) == 1


def test_a_retired_card_cannot_be_answered(study, session):
    card = cards(session)[0]
    card.retired = True
    session.commit()
    assert study.answer(card, Rating.Good, T0).outcome is Outcome.UNAVAILABLE
    assert session.scalar(select(func.count(ReviewLog.id))) == 0


def snapshot(state):
    return (state.state, state.step, state.stability, state.difficulty, state.due, state.last_review)


def test_undo_restores_the_previous_state_and_removes_the_review(study, session, scheduler, user, deck):
    card = cards(session)[0]
    study.answer(card, Rating.Good, T0)
    study.answer(card, Rating.Good, T0 + timedelta(minutes=10))
    state = session.scalar(select(CardState))
    before = snapshot(state)
    study.answer(card, Rating.Again, T0 + timedelta(days=3))
    assert snapshot(state) != before

    assert undo_last_answer(session, scheduler, user_id=user.id, deck_id=deck.id) == card.id
    session.commit()
    assert snapshot(session.scalar(select(CardState))) == before
    assert session.scalar(select(func.count(ReviewLog.id))) == 2

    undo_last_answer(session, scheduler, user_id=user.id, deck_id=deck.id)
    undo_last_answer(session, scheduler, user_id=user.id, deck_id=deck.id)
    session.commit()
    assert session.scalar(select(func.count(CardState.id))) == 0
    assert undo_last_answer(session, scheduler, user_id=user.id, deck_id=deck.id) is None


def test_replaying_the_review_log_reproduces_the_stored_state(session, user, deck):
    # Fuzzing is on here on purpose: fuzz moves only the due date, which the log keeps,
    # so the replay must match whatever random fuzz the answers got.
    fuzzy = make_scheduler(enable_fuzzing=True)
    study = Study(session, fuzzy, user, deck)
    card = cards(session)[0]
    at = T0
    for rating in (Rating.Good, Rating.Good, Rating.Easy, Rating.Again, Rating.Good, Rating.Hard, Rating.Good):
        study.answer(card, rating, at)
        at = session.scalar(select(CardState)).due + timedelta(hours=1)
    stored = session.scalar(select(CardState))
    replayed = replay(fuzzy, card.id, card_reviews(session, user_id=user.id, card_id=card.id), time_zone=user.time_zone)
    assert (replayed.state.value, replayed.step, replayed.stability, replayed.difficulty, replayed.due,
            replayed.last_review) == snapshot(stored)


def test_learning_cards_shown_early_are_counted_as_learning(session, scheduler, user, deck):
    study = Study(session, scheduler, user, deck, new_per_day=1)
    first = cards(session)[0]
    study.answer(first, Rating.Again, T0)  # learning, due a minute later
    assert study.counts(T0).learning == 1 and study.counts(T0).new == 0
    study.answer(first, Rating.Good, T0 + timedelta(minutes=1))  # due ten minutes later: within the learn-ahead
    counts = study.counts(T0 + timedelta(minutes=1))
    assert counts.learning == 1 and counts.answered_today == 2
    assert study.counts(T0 + timedelta(minutes=1)).total == 1
    # Once it graduates it is a review due on a later day, and no longer counted.
    study.answer(first, Rating.Good, T0 + timedelta(minutes=11))
    assert study.counts(T0 + timedelta(minutes=11)).learning == 0


def _engine_answer(rules, card: FsrsCard, rating: Rating, now: datetime, elapsed_days: int | None) -> FsrsCard:
    """py-fsrs's own answer, `elapsed_days` whole days after the last review (None: never answered), capped."""
    shown = FsrsCard(card_id=1, state=card.state, step=card.step, stability=card.stability,
                     difficulty=card.difficulty, due=now,
                     last_review=None if elapsed_days is None else now - timedelta(days=elapsed_days))
    after, _log = rules.engine.review_card(shown, rating, now)
    if after.stability is not None:
        after.stability = min(after.stability, rules.stability_cap)
    return after


def _walks(count: int, seed: int) -> list[list[tuple[Rating, int]]]:
    """Answer sequences with the study days between answers: a learning day, then days apart (fixed seed)."""
    chooser = random.Random(seed)
    walks = []
    for _ in range(count):
        gaps = [0, 0] + [chooser.choice([0, 1, 1, 2, 3, 5, 8, 13, 30, 90]) for _ in range(chooser.randint(0, 10))]
        walks.append([(chooser.choice(list(Rating)), gap) for gap in gaps[:chooser.randint(1, len(gaps))]])
    return walks


@pytest.mark.parametrize("kept", [1 << 16, 3], ids=["plenty kept", "cleared every third"])
def test_a_memory_step_answers_as_the_engine_does_whether_worked_out_or_kept(monkeypatch, kept):
    """`memory_step` keeps the engine's answers: asked again, or after what it kept was cleared, it answers
    the same as py-fsrs asked afresh, field for field, exactly; two schedulers never share an answer."""
    monkeypatch.setattr(scheduling, "MEMORY_STEPS_KEPT", kept)
    monkeypatch.setattr(scheduling, "_MEMORY_STEPS", {})
    rules = make_scheduler(enable_fuzzing=False, maximum_interval_days=400)
    other = make_scheduler(enable_fuzzing=False, desired_retention=0.8)
    reference = make_scheduler(enable_fuzzing=False, maximum_interval_days=400)
    other_reference = make_scheduler(enable_fuzzing=False, desired_retention=0.8)
    asked = 0
    pairs = ((rules, reference), (other, other_reference))
    for walk in _walks(300, seed=7) * 2:  # the second time round, mostly kept answers
        cards = [FsrsCard(card_id=1, state=State.Learning, step=0, due=T0) for _pair in pairs]
        memories = [(State.Learning, 0, None, None) for _pair in pairs]
        now = T0
        for number, (rating, gap) in enumerate(walk):
            now += timedelta(days=gap, minutes=10)
            elapsed = None if number == 0 else gap
            for index, (scheduler, oracle) in enumerate(pairs):
                card = cards[index] = _engine_answer(oracle, cards[index], rating, now, elapsed)
                memories[index] = memory_step(scheduler, *memories[index], rating, elapsed)
                assert memories[index] == (card.state, card.step, card.stability, card.difficulty)
                asked += 1
        assert len(scheduling._MEMORY_STEPS) <= kept
        assert all((owner is rules or owner is other) and key[0] == id(owner)
                   for key, (owner, _memory) in scheduling._MEMORY_STEPS.items())
    assert asked > 2000


@pytest.mark.parametrize("settings", [
    {}, {"relearning_steps_minutes": ()}, {"relearning_steps_minutes": (5, 30)}, {"maximum_interval_days": 60},
    {"desired_retention": 0.8, "parameters": (0.5, 1.5, 4.0, 12.0, 6.8, 0.6, 2.2, 0.01, 1.6, 0.15, 1.0, 1.8, 0.1,
                                             0.3, 2.0, 0.3, 2.5, 0.5, 0.4, 0.1, 0.3)},
], ids=["defaults", "no relearning steps", "two relearning steps", "capped at 60 days", "own parameters"])
def test_a_review_cards_memory_step_is_the_engines_review_card_exactly(monkeypatch, settings):
    """A review card's answer is worked out from the engine's formulas without `review_card` (the quick path of
    `memory_step`): state, step, stability and difficulty equal `review_card`'s, bit for bit, for every rating,
    on the same day and after days or years, with a stability at, below and above the cap, under other settings."""
    monkeypatch.setattr(scheduling, "_MEMORY_STEPS", {})
    rules = make_scheduler(enable_fuzzing=False, **settings)
    oracle = make_scheduler(enable_fuzzing=False, **settings)
    chooser = random.Random(11)
    stabilities = [0.001, 0.1, 1.0, 3.7, 45.0, 59.999, 60.0, 60.001, 400.0, 36500.0, 99999.0]
    difficulties = [1.0, 1.0001, 5.5, 9.9999, 10.0]
    gaps = [0, 1, 2, 7, 30, 365, 3650]
    cases = [(s, d, gap) for s in stabilities for d in difficulties for gap in gaps]
    cases += [(chooser.uniform(0.01, 500), chooser.uniform(1, 10), chooser.randint(0, 400)) for _ in range(1500)]

    def not_asked(*_args, **_kwargs):
        raise AssertionError("review_card was asked")

    # The quick path alone answers: the engine's `review_card` is not asked.
    monkeypatch.setattr(rules.engine, "review_card", not_asked)
    for stability, difficulty, gap in cases:
        for rating in Rating:
            shown = FsrsCard(card_id=1, state=State.Review, step=None, stability=stability, difficulty=difficulty,
                             due=T0, last_review=T0 - timedelta(days=gap))
            expected = _engine_answer(oracle, shown, rating, T0, gap)
            got = memory_step(rules, State.Review, None, stability, difficulty, rating, gap)
            assert got == (expected.state, expected.step, expected.stability, expected.difficulty), \
                (stability, difficulty, gap, rating)
            assert all(type(a) is type(b) for a, b in zip(got, (expected.state, expected.step, expected.stability,
                                                                expected.difficulty), strict=True))


def test_a_replay_gives_the_same_states_from_a_fresh_scheduler_and_from_one_that_kept_its_answers():
    """Replays share kept answers between cards: a card replayed by a scheduler that has replayed
    200 others ends where it ends replayed first by a new one."""
    warm = make_scheduler(enable_fuzzing=False)
    histories = []
    for card_id, walk in enumerate(_walks(200, seed=11), start=1):
        now, reviews = T0 + timedelta(hours=card_id), []
        for rating, gap in walk:
            now += timedelta(days=gap, minutes=10)
            reviews.append(ReviewLog(card_id=card_id, rating=rating, reviewed_at=now, due=now + timedelta(days=1)))
        histories.append((card_id, reviews))
    for card_id, reviews in histories:
        replay(warm, card_id, reviews, time_zone="Asia/Tokyo")
    for card_id, reviews in reversed(histories):
        cold = make_scheduler(enable_fuzzing=False)
        assert (replay(warm, card_id, reviews, time_zone="Asia/Tokyo")
                == replay(cold, card_id, reviews, time_zone="Asia/Tokyo"))


@pytest.mark.parametrize("name", sorted(scheduling.UTC_NAMES | {"no such zone"}))
@pytest.mark.parametrize("hour", [0, 4, 23])
def test_utcs_study_days_are_those_its_zoneinfo_gives(name, hour):
    """A student in UTC (or in a zone nobody knows, read as UTC) has their study days worked out with Python's fixed
    UTC, which converts quicker: every day number, day start and due date is the one `ZoneInfo("UTC")` gives."""
    days = StudyDays(name, hour)
    assert days.tz is timezone.utc
    utc = ZoneInfo("UTC")
    chooser = random.Random(hour)
    instants = [T0 + timedelta(microseconds=chooser.randrange(-10**15, 10**15)) for _ in range(2000)]
    instants += [datetime(2026, 3, 29, hour, tzinfo=timezone.utc) + timedelta(microseconds=step)
                 for step in (-1, 0, 1)]
    for at in instants:
        number = (at.astimezone(utc) - timedelta(hours=hour)).toordinal()
        assert days.number(at) == number
        begins = datetime.combine(date.fromordinal(number), time(hour), tzinfo=utc).astimezone(timezone.utc)
        assert days.begins(number) == begins
        assert days.begins(number) <= at < days.begins(number + 1)
        for interval in (1, 3, 400):
            assert days.due_after(at, interval) == at + timedelta(days=interval)
    assert StudyDays("Europe/Berlin", hour).tz == ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/New_York", "Pacific/Chatham"])
def test_the_study_days_a_replay_hands_back_give_the_last_intervals_worked_out_without_them(name):
    """`flashapp check` takes each review's study day from the replay instead of working it out again: the
    days are the reviews' own, and the last intervals from them equal those `last_intervals` works out alone,
    across daylight-saving changes and learning steps that run past the day's end."""
    rules = make_scheduler(enable_fuzzing=False, day_starts_at_hour=4)
    days = StudyDays(name, 4)
    chooser = random.Random(name)
    for _card in range(200):
        at = datetime(2026, 3, 1, tzinfo=timezone.utc) + timedelta(minutes=chooser.randrange(60 * 24 * 60))
        reviews = []
        for _answer in range(chooser.randint(1, 12)):
            due = at + timedelta(minutes=chooser.choice([1, 10, 300, 60 * 24, 60 * 24 * 9]))
            reviews.append(ReviewLog(rating=chooser.choice(list(Rating)), reviewed_at=at, due=due, duration_ms=None,
                                     state_before=ReviewState.LEARNING))
            at = due + timedelta(minutes=chooser.randrange(0, 60 * 24 * 3))
        answered: list[int] = []
        replay(rules, 1, reviews, time_zone=name, day_numbers=answered)
        assert answered == [days.number(review.reviewed_at) for review in reviews]
        assert last_intervals(reviews, days, answered) == last_intervals(reviews, days)
