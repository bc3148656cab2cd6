"""The class revlog is what the optimizers need: fitted on it, FSRS predicts a simulated class better than its defaults.

A class of students in several time zones studies through the app's real answer path; each
answer's rating is drawn from a known "true" FSRS memory model (fsrs-rs-python with
parameters unlike the defaults), with elapsed time in the student's study days. The class's
revlog export is then fitted with fsrs-rs-python and scored on a time-series split.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import fsrs_rs_python as fsrs_rs
from fsrs import Rating, State
from sqlalchemy import select

from flashapp.accounts import register_user
from flashapp.classroom import create_classroom, join_classroom
from flashapp.exports import class_revlog_csv
from flashapp.fitting import fit_parameters, read_revlog
from flashapp.models import Card
from flashapp.scheduling import answer_card, make_scheduler
from tests.helpers import FAST_HASH_METHOD, build_numbers_deck

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC", "Australia/Sydney"]
FIRST_DAY = datetime(2026, 1, 5, tzinfo=timezone.utc)
DAYS = 150
STUDENTS = 16
CARDS = 40
NEW_PER_DAY = 8
# The class's true memory: quicker to forget at first, slower to grow than the defaults say.
TRUE_PARAMETERS = list(fsrs_rs.DEFAULT_PARAMETERS)
TRUE_PARAMETERS[0:4] = [0.1, 0.6, 1.2, 4.0]
TRUE_PARAMETERS[8] = 1.2
TRUE_PARAMETERS[20] = 0.4
RATINGS = (Rating.Again, Rating.Hard, Rating.Good, Rating.Easy)


def study_day(at: datetime, time_zone: str) -> int:
    local = at.astimezone(ZoneInfo(time_zone))
    return (local.date() - timedelta(days=1 if local.hour < 4 else 0)).toordinal()


def recall_probability(memory, elapsed_days: int) -> float:
    decay = -TRUE_PARAMETERS[20]
    factor = 0.9 ** (1 / decay) - 1
    return (1 + factor * elapsed_days / memory.stability) ** decay


def simulate_class(session, rng: random.Random) -> int:
    """Every student studies every day at a local hour of their own; returns the classroom's id."""
    build_numbers_deck(session, count=CARDS)
    teacher = register_user(session, username="teacher", password="long enough", password_method=FAST_HASH_METHOD)
    classroom = create_classroom(session, teacher=teacher, name="Simulated")
    students = []
    for n in range(STUDENTS):
        student = register_user(session, username=f"s{n:02d}", password="long enough",
                                time_zone=ZONES[n % len(ZONES)], password_method=FAST_HASH_METHOD)
        join_classroom(session, user=student, code=classroom.join_code)
        students.append(student)
    session.commit()
    cards = [card.id for card in session.scalars(select(Card).order_by(Card.position))]
    scheduler = make_scheduler()  # the app's defaults, fuzz on
    truth = fsrs_rs.FSRS(TRUE_PARAMETERS)
    tokens = 0
    # Plain values: the student's row would otherwise be read again after every day's commit.
    for student_id, time_zone in [(student.id, student.time_zone) for student in students]:
        zone = ZoneInfo(time_zone)
        memory: dict[int, object] = {}  # card -> true memory state
        last_day: dict[int, int] = {}
        due: dict[int, datetime] = {}
        state: dict[int, State] = {}
        introduced = 0
        for day in range(DAYS):
            local = (FIRST_DAY + timedelta(days=day)).astimezone(zone).replace(hour=rng.randint(7, 21),
                                                                                minute=rng.randint(0, 59))
            if rng.random() < 0.15:
                continue  # a day off: what is due waits
            now = local.astimezone(timezone.utc)
            today = study_day(now, time_zone)
            todays = [card for card in due if state[card] == State.Review and study_day(due[card], time_zone)
                      <= today]
            todays += cards[introduced:introduced + NEW_PER_DAY]
            introduced = min(len(cards), introduced + NEW_PER_DAY)
            queue = list(todays)
            while queue:
                card = queue.pop(0)
                if card in memory:
                    elapsed = today - last_day[card]
                    recalled = rng.random() < recall_probability(memory[card], elapsed)
                    rating = rng.choices((Rating.Hard, Rating.Good, Rating.Easy), (15, 75, 10))[0] if recalled \
                        else Rating.Again
                    memory[card] = getattr(truth.next_states(memory[card], 0.9, elapsed),
                                           rating.name.lower()).memory
                else:
                    rating = rng.choices(RATINGS, (25, 10, 55, 10))[0]
                    memory[card] = getattr(truth.next_states(None, 0.9, 0), rating.name.lower()).memory
                last_day[card] = today
                tokens += 1
                answer = answer_card(session, scheduler, user_id=student_id, card_id=card, rating=rating,
                                     token=f"sim-{tokens}", now=now, duration_ms=rng.randint(2000, 12000))
                due[card] = answer.review.due
                state[card] = State.Review if study_day(due[card], time_zone) > today else State.Learning
                now += timedelta(seconds=rng.randint(5, 30))
                if state[card] == State.Learning:
                    now = max(now, due[card])
                    queue.append(card)
        session.commit()  # each student's days at once: the answers are the same, the commits fewer
    return classroom.id


def test_fitted_on_the_class_revlog_fsrs_beats_its_defaults_on_a_time_series_split(session, capsys):
    classroom_id = simulate_class(session, random.Random(2026))
    text = "".join(class_revlog_csv(session, classroom_id=classroom_id, day_starts_at_hour=4))
    reviews = read_revlog(text.splitlines())
    rows = list(csv.DictReader(io.StringIO(text)))
    firsts: dict[str, int] = {}
    for row in rows:
        firsts[row["card_id"]] = firsts.get(row["card_id"], 0) + (row["review_state"] == "0")
    assert len(firsts) == STUDENTS * CARDS and set(firsts.values()) == {1}
    fit = fit_parameters(reviews)
    with capsys.disabled():
        print(f"\n{len(reviews)} reviews; trained on {fit.trained_on} answers, tested on {fit.tested_on}")
        print(f"defaults: log loss {fit.default.log_loss:.4f}, RMSE(bins) {fit.default.rmse_bins:.4f}")
        print(f"fitted:   log loss {fit.fitted.log_loss:.4f}, RMSE(bins) {fit.fitted.rmse_bins:.4f}")
        print(f"fitted parameters: {[round(w, 4) for w in fit.parameters]}")
        print(f"true parameters:   {[round(w, 4) for w in TRUE_PARAMETERS]}")
    assert fit.fitted.log_loss < fit.default.log_loss
    assert fit.fitted.rmse_bins < fit.default.rmse_bins
    # The first-day stabilities it finds are nearer the truth than the defaults are.
    for index in (0, 2):
        assert abs(fit.parameters[index] - TRUE_PARAMETERS[index]) < \
            abs(fsrs_rs.DEFAULT_PARAMETERS[index] - TRUE_PARAMETERS[index])
