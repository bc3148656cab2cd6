"""Benchmark: the teacher's dashboard with 10, 100 and 300 students (300 cards, 100,000 reviews).

Builds a throw-away database with a 300-card deck, a class, and a synthetic history of
100,000 reviews spread over the students, then times GET /teach/classes/<id> through the
app (test client, no network) next to GET /healthz in the same run, and prints each size's
time (the median and the fastest of the runs) as a multiple of the time at 10 students, and the
CPU time one page costs: this process's, plus on PostgreSQL that of the server processes serving
its database (read from /proc). On a machine shared with other work the CPU time moves less
than the time on the clock.

    .venv/bin/python bench/dashboard.py [--repeat 9]
    .venv/bin/python bench/dashboard.py --postgres postgresql+psycopg://postgres@127.0.0.1/bench

With --postgres the same runs follow on PostgreSQL, in the database the URL names, whose
public schema is dropped and made afresh for each class size, and vacuumed and analysed after the load
as autovacuum would be.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flashapp import create_app, db
from flashapp.accounts import register_user
from flashapp.classroom import assign_deck, create_classroom, join_classroom
from flashapp.database import make_engine
from flashapp.decksource import parse_deck_text
from flashapp.generation import build_deck
from flashapp.models import Card, CardState, ReviewLog
from flashapp.schema import upgrade_database

CARDS, REVIEWS = 300, 100_000
CLASS_SIZES = (10, 100, 300)
FAST_HASH = "pbkdf2:sha256:1000"  # the students never log in; scrypt for 300 of them would take longer than the run


def deck_text() -> str:
    facts = "\n".join(f"  - {{relation: square, subject: '{n}', object: '{n * n}', section: main}}"
                      for n in range(1, CARDS + 1))
    return ("deck:\n  slug: bench\n  title: Bench\n  source: generated\n  sections: {main: Main}\n"
            "relations:\n  square:\n    forward: 'What is the square of {subject}?'\nfacts:\n" + facts + "\n")


def populate(students: int, now: datetime, rng: random.Random) -> int:
    """Teacher, class, students and their history; returns the class id."""
    teacher = register_user(db.session, username="teacher", password="benchmark!", role="teacher")
    build_deck(db.session, parse_deck_text(deck_text(), "bench.yaml"), now=now - timedelta(days=90))
    classroom = create_classroom(db.session, teacher=teacher, name="Bench")
    card_ids = list(db.session.scalars(select(Card.id)))
    assign_deck(db.session, classroom=classroom, deck_id=1, target_date=(now + timedelta(days=30)).date())
    users = []
    for i in range(students):
        user = register_user(db.session, username=f"s{i:03d}", password="benchmark!", role="student",
                             password_method=FAST_HASH)
        join_classroom(db.session, user=user, code=classroom.join_code)
        users.append(user.id)
    db.session.commit()
    per_user = REVIEWS // students
    logs, states = [], []
    for user_id in users:
        seen = rng.sample(card_ids, min(len(card_ids), max(1, per_user // 4)))
        for n in range(per_user):
            card_id = seen[n % len(seen)]
            at = now - timedelta(minutes=rng.randint(1, 60 * 24 * 80))
            logs.append({"user_id": user_id, "card_id": card_id, "rating": rng.choice((1, 3, 3, 3, 4)),
                         "reviewed_at": at, "duration_ms": rng.randint(1000, 20000),
                         "state_before": rng.choice((0, 1, 2, 2, 3)), "due": at + timedelta(days=3),
                         "token": f"{user_id}-{n}"})
        for card_id in seen:
            last = now - timedelta(days=rng.randint(0, 40))
            states.append({"user_id": user_id, "card_id": card_id, "state": 2, "step": None,
                               "stability": rng.uniform(0.5, 60), "difficulty": rng.uniform(1, 10),
                               "due": last + timedelta(days=rng.randint(1, 30)), "last_review": last})
    db.session.execute(insert(ReviewLog), logs)
    db.session.execute(insert(CardState), states)
    db.session.commit()
    return classroom.id


def database_cpu_seconds(postgres: str | None) -> float:
    """CPU seconds the PostgreSQL processes serving the URL's database have used (0: SQLite, or no /proc)."""
    if not postgres or not os.path.isdir("/proc"):
        return 0.0
    name = postgres.rsplit("/", 1)[-1].split("?")[0].encode()
    ticks = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            if command.startswith(b"postgres: ") and name in command.split(b" "):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime and stime
        except OSError:  # a process that ended meanwhile
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_per_page(client, url: str, repeat: int, postgres: str | None) -> float:
    """CPU seconds one GET of `url` costs, this process and the database's server processes together."""
    started, database = time.process_time(), database_cpu_seconds(postgres)
    timed(client, url, repeat)
    return (time.process_time() - started + database_cpu_seconds(postgres) - database) / repeat


def timed(client, url: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    return times


def empty_postgres(url: str) -> str:
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def run(students: int, repeat: int, postgres: str | None) -> tuple[list[float], float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        url = empty_postgres(postgres) if postgres else f"sqlite:///{tmp}/bench.sqlite"
        app = create_app({"INSTANCE_PATH": tmp, "SQLALCHEMY_DATABASE_URI": url,
                          "SECRET_KEY": "benchmark-" + "x" * 32, "WTF_CSRF_ENABLED": False})
        now = datetime.now(timezone.utc)
        with app.app_context():
            upgrade_database()
            class_id = populate(students, now, random.Random(7))
            reviews = db.session.query(ReviewLog).count()
        if postgres:
            # What autovacuum does within a minute of such a load: the planner's statistics, and the visibility
            # map that lets an index be read without the table.
            engine = make_engine(postgres)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM ANALYZE"))
            engine.dispose()
        client = app.test_client()
        client.post("/login", data={"username": "teacher", "password": "benchmark!"})
        timed(client, f"/teach/classes/{class_id}", 1)  # warm up
        page = timed(client, f"/teach/classes/{class_id}", repeat)
        health = statistics.median(timed(client, "/healthz", repeat * 4))
        # Clock ticks are 10 ms: enough pages that the count means something.
        cpu = cpu_per_page(client, f"/teach/classes/{class_id}", max(repeat, 20), postgres)
        with app.app_context():
            db.engine.dispose()
    return page, health, cpu, reviews


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL (its public schema is replaced)")
    args = parser.parse_args()
    for label, postgres in [("SQLite", None)] + ([("PostgreSQL", args.postgres)] if args.postgres else []):
        print(f"dashboard render, {CARDS} cards, {REVIEWS:,} reviews, {args.repeat} runs each ({label})")
        first: tuple[float, float, float] | None = None
        for students in CLASS_SIZES:
            times, health, cpu, reviews = run(students, args.repeat, postgres)
            # The fastest of the runs as well as the median: on a machine shared with other work, the
            # fastest is the one least disturbed.
            page, fastest = statistics.median(times), min(times)
            first = first or (page, fastest, cpu)
            print(f"  {students:>3} students: median {page * 1000:6.1f} ms ({page / first[0]:.2f}x the time at "
                  f"{CLASS_SIZES[0]}), fastest {fastest * 1000:6.1f} ms ({fastest / first[1]:.2f}x); GET /healthz "
                  f"{health * 1000:.2f} ms, ratio {page / health:.0f}x; CPU {cpu * 1000:.1f} ms a page "
                  f"({cpu / first[2]:.2f}x); {reviews:,} reviews", flush=True)


if __name__ == "__main__":
    main()
