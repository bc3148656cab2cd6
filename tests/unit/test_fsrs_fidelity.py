"""FSRS as Anki schedules it: study days, truthful buttons, ordered buttons, a stability cap, Anki's labels.

The oracles are independent of the app: fsrs-rs-python (the Rust FSRS inside Anki) for memory
states, the `anki` package for labels, and study days worked out here from the local calendar
the way the FSRS optimizer does. Answers go through the app's real answer path on a real
database, at fixed UTC times; fuzz is off where the test is about memory states.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import fsrs_rs_python as oracle
import pytest
from fsrs import Card as FsrsCard
from fsrs import Rating, State
from sqlalchemy import select

from flashapp.accounts import register_user
from flashapp.models import Card, CardState
from flashapp.scheduling import (
    RATINGS,
    StudyDays,
    answer_card,
    button_label,
    card_reviews,
    format_interval,
    make_scheduler,
    preview_intervals,
    replay,
    schedule_answers,
)
from tests.helpers import FAST_HASH_METHOD, build_numbers_deck

ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney", "America/Los_Angeles"]
# Starts a few days before a daylight-saving change in one zone or another, and some plain ones.
# (Local times: year, month, day, hour, minute.)
STARTS = [(2026, 3, 5, 14, 0), (2026, 3, 26, 20, 30), (2026, 10, 22, 6, 15), (2026, 10, 29, 23, 40),
          (2026, 3, 31, 3, 50), (2026, 6, 1, 12, 0), (2026, 9, 30, 17, 5)]
TOLERANCE = 0.005
DAY_STARTS_AT = 4


def study_date(at: datetime, time_zone: str) -> date:
    """The study day `at` falls in, as the optimizer reckons it: the local date, before 4 a.m. the day before."""
    local = at.astimezone(ZoneInfo(time_zone))
    return local.date() - timedelta(days=1) if local.hour < DAY_STARTS_AT else local.date()


def local_midnight_after(at: datetime, time_zone: str, *, days: int, hour: int, minute: int) -> datetime:
    """`hour:minute` local time on the study day `days` after the one `at` falls in (UTC)."""
    day = study_date(at, time_zone) + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(time_zone)).astimezone(timezone.utc)


@dataclass
class Walk:
    """One student's answers to one card, with the timing of each."""

    user_id: int
    time_zone: str
    card_id: int
    answers: list[tuple[Rating, datetime]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)


def next_time(rng: random.Random, now: datetime, state: CardState, time_zone: str) -> tuple[str, datetime]:
    """When the student answers next: on time, early in the due day, the next morning, days late, or soon."""
    due = state.due
    kind = rng.choice(["on time", "early in the day", "next morning", "days late", "soon"])
    if kind == "on time":
        at = due
    elif kind == "early in the day":
        at = local_midnight_after(due, time_zone, days=0, hour=DAY_STARTS_AT, minute=rng.randint(1, 50))
    elif kind == "next morning":
        at = local_midnight_after(now, time_zone, days=1, hour=rng.randint(DAY_STARTS_AT, 7), minute=rng.randint(0, 59))
    elif kind == "days late":
        at = due + timedelta(days=rng.randint(1, 40), minutes=rng.randint(0, 600))
    else:
        at = now + timedelta(minutes=rng.randint(1, 90))
    if at <= now:
        kind, at = "soon", now + timedelta(minutes=rng.randint(1, 30))
    return kind, at


@pytest.fixture
def students(session):
    """A deck of 60 cards and a student in each of six time zones."""
    build_numbers_deck(session, count=60)
    users = [register_user(session, username=f"student{n}", password="long enough", time_zone=zone,
                           password_method=FAST_HASH_METHOD) for n, zone in enumerate(ZONES)]
    session.commit()
    cards = [card.id for card in session.scalars(select(Card).order_by(Card.position))]
    return [(user.id, user.time_zone) for user in users], cards


def walk_cards(session, scheduler, students, *, seed: int, answers_per_card: range, on_showing=None,
               zones=ZONES, starts=STARTS) -> list[Walk]:
    """Every student (in `zones`) answers ten cards in a random walk of ratings and timings; returns the walks."""
    (users, cards), rng, walks, token = students, random.Random(seed), [], 0
    for index, (user_id, time_zone) in enumerate(users):
        if time_zone not in zones:
            continue
        for card_id in cards[index * 10:(index + 1) * 10]:
            walk = Walk(user_id, time_zone, card_id)
            now = datetime(*rng.choice(starts), tzinfo=ZoneInfo(time_zone)).astimezone(timezone.utc)
            now += timedelta(minutes=rng.randint(0, 3000))
            for number in range(rng.choice(answers_per_card)):
                state = session.scalar(select(CardState).where(CardState.user_id == user_id,
                                                               CardState.card_id == card_id))
                if number:
                    kind, now = next_time(rng, now, state, time_zone)
                    walk.kinds.append(kind)
                rating = rng.choices(RATINGS, weights=(15, 15, 55, 15))[0]
                if on_showing is not None:
                    on_showing(walk, state, now, rating)
                token += 1
                answer_card(session, scheduler, user_id=user_id, card_id=card_id, rating=rating,
                            token=f"walk-{seed}-{token}", now=now)
                session.commit()
                walk.answers.append((rating, now))
            walks.append(walk)
    return walks


def relative(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def test_fsrs_rs_reproduces_every_stored_memory_state_from_study_day_elapsed_days(session, students):
    scheduler = make_scheduler(enable_fuzzing=False)
    model = oracle.FSRS(list(oracle.DEFAULT_PARAMETERS))
    compared, worst, dst_crossings = 0, 0.0, 0
    stored: dict[tuple[int, int], list[tuple[float, float]]] = {}

    def remember(walk, state, now, rating):
        if state is not None:
            stored.setdefault((walk.user_id, walk.card_id), []).append((state.stability, state.difficulty))

    walks = walk_cards(session, scheduler, students, seed=7, answers_per_card=range(6, 14), on_showing=remember)
    for walk in walks:
        final = session.scalar(select(CardState).where(CardState.user_id == walk.user_id,
                                                       CardState.card_id == walk.card_id))
        states = [*stored.get((walk.user_id, walk.card_id), []), (final.stability, final.difficulty)]
        reviews, previous = [], None
        for (rating, at), (stability, difficulty) in zip(walk.answers, states, strict=True):
            elapsed = 0 if previous is None else \
                (study_date(at, walk.time_zone) - study_date(previous, walk.time_zone)).days
            if previous is not None and at.astimezone(ZoneInfo(walk.time_zone)).utcoffset() != \
                    previous.astimezone(ZoneInfo(walk.time_zone)).utcoffset():
                dst_crossings += 1
            reviews.append(oracle.FSRSReview(int(rating), elapsed))
            expected = model.memory_state(oracle.FSRSItem(reviews))
            worst = max(worst, relative(stability, expected.stability), relative(difficulty, expected.difficulty))
            compared += 1
            previous = at
    kinds = {kind for walk in walks for kind in walk.kinds}
    assert len(walks) >= 50 and compared >= 500
    assert kinds == {"on time", "early in the day", "next morning", "days late", "soon"}
    assert dst_crossings > 0
    assert worst <= TOLERANCE, f"worst relative difference {worst:.2%} over {compared} memory states"
    print(f"\n{len(walks)} sequences, {compared} memory states, worst relative difference {worst:.3e}")


def test_hard_the_next_morning_counts_one_study_day_not_zero(session, students):
    # A review at 07:47 and Hard at 04:39 the next morning: under 24 hours, but one study day.
    (users, cards) = students
    user_id, time_zone = users[2]  # Berlin
    scheduler = make_scheduler(enable_fuzzing=False)
    first = datetime(2026, 5, 4, 7, 47, tzinfo=ZoneInfo(time_zone)).astimezone(timezone.utc)
    second = datetime(2026, 5, 5, 4, 39, tzinfo=ZoneInfo(time_zone)).astimezone(timezone.utc)
    for token, (rating, at) in enumerate([(Rating.Easy, first), (Rating.Hard, second)]):
        answer_card(session, scheduler, user_id=user_id, card_id=cards[0], rating=rating, token=f"t{token}", now=at)
    state = session.scalar(select(CardState))
    model = oracle.FSRS(list(oracle.DEFAULT_PARAMETERS))
    expected = model.next_states(model.memory_state(oracle.FSRSItem([oracle.FSRSReview(4, 0)])), 0.9, 1).hard
    assert relative(state.stability, expected.memory.stability) < 1e-5
    assert study_date(state.due, time_zone) - study_date(second, time_zone) == \
        timedelta(days=max(1, round(expected.interval)))


def scheduled(walk: Walk, state: CardState, now: datetime) -> timedelta:
    """The interval an answer scheduled: whole study days for a review card, the step for a learning one."""
    if state.state == State.Review:
        return study_date(state.due, walk.time_zone) - study_date(now, walk.time_zone)
    return state.due - now


def test_every_button_shows_the_interval_answering_schedules_with_fuzz_on(session, students):
    scheduler = make_scheduler(enable_fuzzing=True)
    plain = make_scheduler(enable_fuzzing=False)
    shown: list[tuple[Walk, dict[Rating, timedelta], Rating, datetime]] = []
    fuzzed = 0

    def preview(walk, state, now, rating):
        nonlocal fuzzed
        intervals = preview_intervals(scheduler, walk.card_id, state, now, time_zone=walk.time_zone,
                                      user_id=walk.user_id)
        unfuzzed = preview_intervals(plain, walk.card_id, state, now, time_zone=walk.time_zone,
                                     user_id=walk.user_id)
        fuzzed += intervals != unfuzzed
        shown.append((walk, intervals, rating, now))

    walk_cards(session, scheduler, students, seed=11, answers_per_card=range(16, 22), on_showing=preview)
    answered = 0
    for walk in {id(w): w for w, *_ in shown}.values():
        reviews = card_reviews(session, user_id=walk.user_id, card_id=walk.card_id)
        mine = [entry for entry in shown if entry[0] is walk]
        assert len(reviews) == len(mine)
        for review, (_walk, intervals, rating, now) in zip(reviews, mine, strict=True):
            assert review.rating == rating and review.reviewed_at == now
            so_far = [earlier for earlier in reviews if earlier.reviewed_at <= now]
            after = replay(scheduler, walk.card_id, so_far, time_zone=walk.time_zone)
            assert intervals[rating] == scheduled(walk, after, now)
            assert button_label(intervals[rating]) == button_label(scheduled(walk, after, now))
            answered += 1
    assert answered >= 1000
    assert fuzzed >= 100  # the fuzz is really on: many previews differ from the unfuzzed ones
    print(f"\n{answered} fuzzed answers scheduled what their buttons showed; {fuzzed} showings moved by fuzz")


def test_hard_good_and_easy_are_ordered_as_anki_orders_them(session, students):
    scheduler = make_scheduler(enable_fuzzing=True)
    checked = {"review": 0, "learning": 0}

    def check(walk, state, now, rating):
        intervals = preview_intervals(scheduler, walk.card_id, state, now, time_zone=walk.time_zone,
                                      user_id=walk.user_id)
        if state is not None and state.state == State.Review:
            assert timedelta(days=1) <= intervals[Rating.Hard]
            assert intervals[Rating.Hard] + timedelta(days=1) <= intervals[Rating.Good]
            assert intervals[Rating.Good] + timedelta(days=1) <= intervals[Rating.Easy]
            checked["review"] += 1
        else:
            assert intervals[Rating.Easy] > intervals[Rating.Good]
            checked["learning"] += 1

    walk_cards(session, scheduler, students, seed=23, answers_per_card=range(8, 12), on_showing=check)
    assert checked["review"] >= 200 and checked["learning"] >= 60
    print(f"\nordered on {checked['review']} review and {checked['learning']} learning showings")


def test_easy_after_again_on_a_learning_card_is_a_day_longer_than_good(session, students):
    # The case measured against Anki: Again, then Easy a minute later gives 2 days there.
    (users, cards) = students
    user_id, time_zone = users[0]
    scheduler = make_scheduler(enable_fuzzing=False)
    at = datetime(2026, 5, 4, 9, 0, tzinfo=timezone.utc)
    answer_card(session, scheduler, user_id=user_id, card_id=cards[0], rating=Rating.Again, token="a", now=at)
    state = session.scalar(select(CardState))
    intervals = preview_intervals(scheduler, cards[0], state, at + timedelta(minutes=1), time_zone=time_zone,
                                  user_id=user_id)
    assert intervals[Rating.Easy] == timedelta(days=2)


def test_stability_stops_at_the_maximum_interval():
    model = oracle.FSRS(list(oracle.DEFAULT_PARAMETERS))
    last = datetime(2000, 1, 3, 12, 0, tzinfo=timezone.utc)
    now = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)
    card = FsrsCard(card_id=1, state=State.Review, step=None, stability=30000.0, difficulty=1.0, due=now,
                    last_review=last)
    elapsed = (study_date(now, "UTC") - study_date(last, "UTC")).days
    expected = model.next_states(oracle.MemoryState(30000.0, 1.0), 0.9, elapsed).easy.memory.stability
    assert expected == pytest.approx(36500.0)  # the oracle's own ceiling
    for maximum, cap in ((36500, expected), (365, 365.0)):
        scheduler = make_scheduler(enable_fuzzing=False, maximum_interval_days=maximum)
        after = schedule_answers(scheduler, card, now, time_zone="UTC", user_id=1)[Rating.Easy]
        assert after.stability == pytest.approx(cap, rel=1e-6)


def test_a_review_card_falls_due_on_its_study_day_across_daylight_saving_changes():
    rng = random.Random(3)
    for _ in range(2000):
        time_zone = rng.choice(ZONES)
        now = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=rng.randint(0, 525_600))
        days = rng.randint(1, 60)
        due = StudyDays(time_zone).due_after(now, days)
        assert study_date(due, time_zone) - study_date(now, time_zone) == timedelta(days=days)
        assert abs((due - now) - timedelta(days=days)) <= timedelta(hours=1)


# Anki's Rust backend reads the local time zone once per process, so each zone's oracle runs in a
# process of its own, with TZ set before Anki starts. It reads the review logs as JSON on stdin and
# prints its next day start and each card's recomputed memory state.
ANKI_ORACLE = """
import json, sys, tempfile, os
from anki.collection import Collection
logs = json.load(sys.stdin)
with tempfile.TemporaryDirectory() as folder:
    collection = Collection(os.path.join(folder, "oracle.anki2"))
    collection.set_config("rollover", int(sys.argv[1]))
    collection.set_config("fsrs", True)
    states = []
    for log in logs:
        note = collection.newNote()
        note["Front"], note["Back"] = "card %d" % len(states), "answer"
        collection.addNote(note)
        card = note.cards()[0].id
        for id_, ease, spent, kind in log:
            collection.db.execute("insert into revlog (id, cid, usn, ease, ivl, lastIvl, factor, time, type) "
                                  "values (?, ?, -1, ?, 0, 0, 0, ?, ?)", id_, card, ease, spent, kind)
        state = collection._backend.compute_memory_state(card).state
        states.append([state.stability, state.difficulty])
    print(json.dumps({"next_day_starts": collection.sched.day_cutoff, "states": states}))
    collection.close()
"""


def anki_memory_states(time_zone: str, logs: list[list[tuple[int, int, int, int]]]) -> tuple[int, list[list[float]]]:
    """Anki's memory states for review logs (id in ms, ease, time, type), in a time zone, its day starting at 04:00."""
    import json
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", ANKI_ORACLE, str(DAY_STARTS_AT)], input=json.dumps(logs),
                          capture_output=True, text=True, check=True, timeout=300,
                          env={**os.environ, "TZ": time_zone})
    answer = json.loads(done.stdout)
    return answer["next_day_starts"], answer["states"]


# Anki's review log types by the state a card was answered in: learn, review, relearn.
ANKI_TYPES = {0: 0, 1: 0, 2: 1, 3: 2}


def anki_study_day(at: datetime, next_day_starts: int) -> int:
    """The study day Anki gives an answer when it recomputes memory states: whole 86,400-second steps
    back from today's next day start (its `days_elapsed` rule), numbered from that day start."""
    return -((next_day_starts - int(at.timestamp())) // 86_400) - 1


# Past answers in plain months, and ones across a daylight-saving change in New York (2023-03-12, 2023-11-05).
PAST = [(2023, 1, 9, 8, 0), (2023, 4, 3, 22, 30), (2023, 6, 12, 3, 15), (2023, 3, 8, 21, 0), (2023, 10, 30, 5, 0)]


@pytest.mark.parametrize("time_zone", ["UTC", "Asia/Tokyo", "America/New_York"])
def test_anki_recomputes_every_stored_memory_state_from_the_review_log(session, students, time_zone):
    """Anki, in the student's own time zone, replays each card's review log to the app's memory state.

    Where Anki's day count differs from the local calendar's (an answer within an hour of a day's
    start, on the far side of a daylight-saving change: the README says why) the card is left out
    and counted; every other card must agree.
    """
    scheduler = make_scheduler(enable_fuzzing=False)
    walks = walk_cards(session, scheduler, students, seed=31, answers_per_card=range(5, 12), zones=[time_zone],
                       starts=PAST)
    histories = [card_reviews(session, user_id=walk.user_id, card_id=walk.card_id) for walk in walks]
    next_day_starts, anki_states = anki_memory_states(time_zone, [
        [(int(review.reviewed_at.timestamp() * 1000), int(review.rating), review.duration_ms or 0,
          ANKI_TYPES[int(review.state_before)]) for review in reviews] for reviews in histories])
    days = StudyDays(time_zone, DAY_STARTS_AT)
    # Anki's "today" is the real one: its next day start is that of a study day around now, in this zone.
    around_now = {days.number(datetime.now(timezone.utc) + timedelta(minutes=shift)) for shift in (-10, 0)}
    assert next_day_starts in {int(days.begins(number + 1).timestamp()) for number in around_now}
    worst, compared, calendar_differs, anki_disagrees = 0.0, 0, 0, 0
    for walk, reviews, (stability, difficulty) in zip(walks, histories, anki_states, strict=True):
        anki_days = [anki_study_day(review.reviewed_at, next_day_starts) for review in reviews]
        app_days = [days.number(review.reviewed_at) for review in reviews]
        if [b - a for a, b in itertools.pairwise(anki_days)] != [b - a for a, b in itertools.pairwise(app_days)]:
            calendar_differs += 1
            stored = session.scalar(select(CardState).where(CardState.user_id == walk.user_id,
                                                            CardState.card_id == walk.card_id))
            anki_disagrees += relative(stored.stability, stability) > TOLERANCE
            continue
        stored = session.scalar(select(CardState).where(CardState.user_id == walk.user_id,
                                                        CardState.card_id == walk.card_id))
        worst = max(worst, relative(stored.stability, stability), relative(stored.difficulty, difficulty))
        compared += 1
    assert compared + calendar_differs == 10
    if time_zone != "America/New_York":  # no daylight saving: Anki's steps and the calendar always agree
        assert calendar_differs == 0
    assert compared >= 5
    assert worst <= TOLERANCE, f"worst relative difference {worst:.2%}"
    print(f"\nAnki in {time_zone}: {compared} cards, worst relative difference {worst:.3e}; "
          f"{calendar_differs} left out where its day count is not the calendar's "
          f"({anki_disagrees} of them with another stability)")


@pytest.fixture(scope="module")
def anki_labels(tmp_path_factory):
    """Anki's own answer-button wording for a number of seconds (the `anki` package, test-only)."""
    from anki.collection import Collection
    from anki.i18n_pb2 import FormatTimespanRequest

    collection = Collection(str(tmp_path_factory.mktemp("anki") / "labels.anki2"))
    yield lambda seconds: collection.format_timespan(seconds, FormatTimespanRequest.ANSWER_BUTTONS) \
        .replace("\u2068", "").replace("\u2069", "")
    collection.close()


def test_labels_are_written_as_anki_writes_them(anki_labels):
    rng = random.Random(5)
    spans = [rng.randint(1, 59) for _ in range(50)] + [rng.randint(60, 86_399) for _ in range(300)] + \
        [86_400 * rng.randint(1, 36_500) for _ in range(500)] + [86_400 * 30, 86_400 * 31, 86_400 * 77, 330]
    for seconds in spans:
        assert format_interval(timedelta(seconds=seconds)) == anki_labels(seconds), seconds


def test_a_button_under_the_learn_ahead_limit_reads_less_than():
    assert [button_label(timedelta(seconds=s)) for s in (60, 330, 600, 1199, 1200, 86_400)] == \
        ["<1m", "<6m", "<10m", "<20m", "20m", "1d"]
