"""Benchmark: one student's statistics page with 100,000 answers over a simulated year.

Builds a throw-away database with two decks and one student in a class, then simulates a
year of study with the app's own scheduler: every study day the student answers the cards
due and starts new ones, rating each by the recall FSRS predicts, at hours spread over the
day in the student's time zone (Europe/Berlin, so the year crosses two clock changes).
The history is written straight to the database (on PostgreSQL then vacuumed and analysed, as
autovacuum would after such a load), then GET /stats (all decks, a month and a
year) and the teacher's view of the same page are timed through the app (test client, no
network) next to GET /healthz in the same run; each page's median time and its ratio to
/healthz are printed.

    .venv/bin/python bench/stats_page.py [--repeat 9] [--answers 100000]
    .venv/bin/python bench/stats_page.py --postgres postgresql+psycopg://postgres@127.0.0.1/bench

With --postgres the same runs follow on PostgreSQL, in the database the URL names, whose
public schema is dropped and made afresh.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from fsrs import Rating, State
from sqlalchemy import insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flashapp import create_app, db
from flashapp.accounts import register_user
from flashapp.classroom import assign_deck, create_classroom, join_classroom
from flashapp.database import make_engine
from flashapp.decksource import parse_deck_text
from flashapp.generation import build_deck
from flashapp.models import Card, CardState, ReviewLog, ReviewState
from flashapp.scheduling import StudyDays, anki_interval, make_scheduler, schedule_answers, to_fsrs_card

ANSWERS = 100_000
DECK_CARDS = (9_000, 3_000)  # two decks, so that the page can be looked at per deck
TIME_ZONE = "Europe/Berlin"
FAST_HASH = "pbkdf2:sha256:1000"
PASSWORD = "benchmark!"


def deck_text(slug: str, title: str, size: int) -> str:
    facts = "\n".join(f"  - {{relation: square, subject: '{n}', object: '{n * n}', section: main}}"
                      for n in range(1, size + 1))
    return (f"deck:\n  slug: {slug}\n  title: {title}\n  source: generated\n  sections: {{main: Main}}\n"
            "relations:\n  square:\n    forward: 'What is the square of {subject}?'\nfacts:\n" + facts + "\n")


def simulate(card_ids: list[int], *, user_id: int, answers: int, now: datetime,
             rng: random.Random) -> tuple[list[dict], list[dict]]:
    """A year of study ending at `now`, `answers` answers in all: the review log rows and the final states."""
    scheduler = make_scheduler()
    days = StudyDays(TIME_ZONE)
    first_day = days.number(now) - 364
    new_per_day = answers // 3_600 + 1  # a card takes about a dozen answers in its first months
    cards: dict[int, object] = {}
    counts: dict[int, list[int]] = {}
    pending = list(card_ids)
    logs: list[dict] = []
    for number in range(first_day, days.number(now) + 1):
        if len(logs) >= answers:
            break
        if rng.random() < 0.1:  # a day off now and then
            continue
        begins, ends = days.begins(number), min(days.begins(number + 1), now)
        # The day's session starts at a time of its own, mostly in the afternoon and evening.
        at = begins + timedelta(hours=rng.choice((4, 8, 10, 12, 13, 14, 15, 16)), minutes=rng.randint(0, 59))
        queue = [card_id for card_id, card in cards.items() if card.due < ends]  # type: ignore[attr-defined]
        starting = new_per_day
        if number == days.number(now):  # the last day makes up the count with extra new cards (three answers each)
            starting = max(starting, (answers - len(logs) - len(queue)) // 3 + 1)
        queue += [pending.pop(0) for _ in range(min(starting, len(pending)))]
        rng.shuffle(queue)
        while queue and len(logs) < answers and at < ends:
            card_id = queue.pop(0)
            card = cards.get(card_id) or to_fsrs_card(card_id, None, at)
            recall = scheduler.get_card_retrievability(card, at) if card.last_review else 0.0  # type: ignore[attr-defined]
            if card.state == State.Review:  # type: ignore[attr-defined]
                rating = Rating.Again if rng.random() > recall else rng.choice((Rating.Hard, Rating.Good,
                                                                                Rating.Good, Rating.Good, Rating.Easy))
            else:
                rating = rng.choice((Rating.Again, Rating.Hard, Rating.Good, Rating.Good, Rating.Good, Rating.Easy))
            after = schedule_answers(scheduler, card, at, time_zone=TIME_ZONE, user_id=user_id)[rating]
            before = ReviewState.NEW if card.last_review is None else ReviewState(int(card.state))  # type: ignore[attr-defined]
            last = 0 if card.last_review is None else anki_interval(card.last_review, card.due, days)  # type: ignore[attr-defined]
            logs.append({"user_id": user_id, "card_id": card_id, "rating": int(rating), "reviewed_at": at,
                         "duration_ms": rng.randint(2_000, 25_000), "state_before": int(before), "due": after.due,
                         "token": f"bench-{len(logs)}", "last_interval": last})
            tally = counts.setdefault(card_id, [0, 0, 0])
            tally[0] += 1
            tally[1] += rating == Rating.Again and card.state == State.Review  # type: ignore[attr-defined]
            tally[2] += rating == Rating.Again
            cards[card_id] = after
            if after.due < ends:  # a learning step later today
                queue.insert(min(len(queue), rng.randint(3, 12)), card_id)
            at += timedelta(seconds=rng.randint(4, 30))
    states = [{"user_id": user_id, "card_id": card_id, "state": int(card.state), "step": card.step,  # type: ignore[attr-defined]
               "stability": card.stability, "difficulty": card.difficulty, "due": card.due,  # type: ignore[attr-defined]
               "last_review": card.last_review, "reps": counts[card_id][0], "lapses": counts[card_id][1],  # type: ignore[attr-defined]
               "again_count": counts[card_id][2]} for card_id, card in cards.items()]
    return logs, states


def populate(now: datetime, *, answers: int = ANSWERS, seed: int = 7) -> tuple[int, int, int]:
    """Teacher, class, the decks and one student with a simulated year; returns (class id, student id, answers)."""
    teacher = register_user(db.session, username="teacher", password=PASSWORD, role="teacher",
                            password_method=FAST_HASH)
    for slug, title, size in (("squares", "Squares", DECK_CARDS[0]), ("more-squares", "More squares", DECK_CARDS[1])):
        build_deck(db.session, parse_deck_text(deck_text(slug, title, size), f"{slug}.yaml"),
                   now=now - timedelta(days=400))
    classroom = create_classroom(db.session, teacher=teacher, name="Bench")
    assign_deck(db.session, classroom=classroom, deck_id=1)
    assign_deck(db.session, classroom=classroom, deck_id=2)
    student = register_user(db.session, username="sam", password=PASSWORD, role="student", time_zone=TIME_ZONE,
                            password_method=FAST_HASH)
    join_classroom(db.session, user=student, code=classroom.join_code)
    db.session.commit()
    rng = random.Random(seed)
    card_ids = list(db.session.scalars(select(Card.id).order_by(Card.position, Card.id)))
    rng.shuffle(card_ids)
    logs, states = simulate(card_ids, user_id=student.id, answers=answers, now=now, rng=rng)
    for start in range(0, len(logs), 20_000):
        db.session.execute(insert(ReviewLog), logs[start:start + 20_000])
    db.session.execute(insert(CardState), states)
    db.session.commit()
    return classroom.id, student.id, len(logs)


def timed(client, url: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
    return times


def empty_postgres(url: str) -> str:
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def run(label: str, postgres: str | None, *, repeat: int, answers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = empty_postgres(postgres) if postgres else f"sqlite:///{tmp}/bench.sqlite"
        app = create_app({"INSTANCE_PATH": tmp, "SQLALCHEMY_DATABASE_URI": url,
                          "SECRET_KEY": "benchmark-" + "x" * 32, "WTF_CSRF_ENABLED": False})
        now = datetime.now(timezone.utc)
        from flashapp.schema import upgrade_database

        with app.app_context():
            upgrade_database()
            started = time.perf_counter()
            class_id, student_id, written = populate(now, answers=answers)
            made = time.perf_counter() - started
        if postgres:
            # What autovacuum does after a bulk load: the planner's statistics, and the visibility map that
            # lets an index be read without the table.
            engine = make_engine(postgres)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM ANALYZE"))
            engine.dispose()
        print(f"statistics page, {written:,} answers over a simulated year ({label}; history made in {made:.0f} s), "
              f"{repeat} runs each", flush=True)
        student, teacher = app.test_client(), app.test_client()
        student.post("/login", data={"username": "sam", "password": PASSWORD})
        teacher.post("/login", data={"username": "teacher", "password": PASSWORD})
        pages = [(student, "/stats?period=month", "student, all decks, month"),
                 (student, "/stats?period=year", "student, all decks, year"),
                 (student, "/stats?deck=squares&period=year", "student, one deck, year"),
                 (teacher, f"/teach/classes/{class_id}/students/{student_id}/stats?period=year", "teacher, year")]
        for client, page, _ in pages:
            timed(client, page, 1)  # warm up
        health = statistics.median(timed(student, "/healthz", repeat * 4))
        for client, page, what in pages:
            times = timed(client, page, repeat)
            median = statistics.median(times)
            print(f"  {what:<27} median {median * 1000:6.1f} ms, fastest {min(times) * 1000:6.1f} ms; "
                  f"GET /healthz {health * 1000:.2f} ms, ratio {median / health:.0f}x", flush=True)
        with app.app_context():
            db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--answers", type=int, default=ANSWERS)
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL (its public schema is replaced)")
    args = parser.parse_args()
    run("SQLite", None, repeat=args.repeat, answers=args.answers)
    if args.postgres:
        run("PostgreSQL", args.postgres, repeat=args.repeat, answers=args.answers)


if __name__ == "__main__":
    main()
