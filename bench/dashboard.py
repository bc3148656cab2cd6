"""Benchmark: the teacher's dashboard with 10, 100 and 300 students (300 cards, 100,000 reviews).

Builds a throw-away database for each class size, with a 300-card deck, a class, and a synthetic
history of 100,000 reviews spread over the students, then times GET /teach/classes/<id> through
the app (test client, no network) next to GET /healthz in the same run, and prints each size's
time (the median and the fastest of the runs) as a multiple of the time at 10 students, and the
CPU time one page costs: this process's, plus on PostgreSQL that of the server processes serving
its database (read from /proc). The sizes are timed in turns, one page of each in every round, so
that a machine growing busier or quieter during the run moves every size alike and the ratios
hold; on a machine shared with other work the CPU time moves less than the time on the clock.

    .venv/bin/python bench/dashboard.py [--repeat 9]
    .venv/bin/python bench/dashboard.py --postgres postgresql+psycopg://postgres@127.0.0.1/bench

With --postgres the same runs follow on PostgreSQL, each class size in a database of its own named
after the URL's (`bench_10`, `bench_100`, `bench_300`; made if missing, their public schema dropped and
made afresh, vacuumed and analysed after the load as autovacuum would be, and dropped at the end).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, make_url, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flashapp import create_app, db
from flashapp.accounts import register_user
from flashapp.classroom import assign_deck, create_classroom, join_classroom
from flashapp.database import make_engine
from flashapp.decksource import parse_deck_text
from flashapp.generation import build_deck
from flashapp.models import Card, CardState, ReviewLog
from flashapp.schema import upgrade_database

if TYPE_CHECKING:
    import psycopg

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


def _admin(url: str) -> psycopg.Connection:
    import psycopg

    admin = make_url(url).set(drivername="postgresql", database="postgres")
    return psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True)


def postgres_for(base: str, students: int) -> str:
    """The URL of the class size's own database beside the one `base` names, made if missing and emptied."""
    url = make_url(base)
    name = f"{url.database}_{students}"
    with _admin(base) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')
    return empty_postgres(url.set(database=name).render_as_string(hide_password=False))


def drop_postgres(url: str) -> None:
    with _admin(url) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}"')


@dataclass
class Prepared:
    """One class size's database, its app logged in as the teacher, and its dashboard's address."""

    app: Flask
    client: FlaskClient
    page: str
    url: str
    reviews: int


def prepare(students: int, postgres: str | None, folder: Path) -> Prepared:
    instance = folder / str(students)
    instance.mkdir()
    url = postgres_for(postgres, students) if postgres else f"sqlite:///{instance}/bench.sqlite"
    app = create_app({"INSTANCE_PATH": str(instance), "SQLALCHEMY_DATABASE_URI": url,
                      "SECRET_KEY": "benchmark-" + "x" * 32, "WTF_CSRF_ENABLED": False})
    now = datetime.now(timezone.utc)
    with app.app_context():
        upgrade_database()
        class_id = populate(students, now, random.Random(7))
        reviews = db.session.query(ReviewLog).count()
        db.session.remove()
    if postgres:
        # What autovacuum does within a minute of such a load: the planner's statistics, and the visibility
        # map that lets an index be read without the table.
        engine = make_engine(url)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
        engine.dispose()
    client = app.test_client()
    client.post("/login", data={"username": "teacher", "password": "benchmark!"})
    page = f"/teach/classes/{class_id}"
    timed(client, page, 2)  # warm up
    return Prepared(app, client, page, url, reviews)


def close(prepared: Prepared, postgres: str | None) -> None:
    with prepared.app.app_context():
        db.session.remove()
        db.engine.dispose()
    if postgres:
        drop_postgres(prepared.url)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL, in databases beside this one")
    args = parser.parse_args()
    for label, postgres in [("SQLite", None)] + ([("PostgreSQL", args.postgres)] if args.postgres else []):
        print(f"dashboard render, {CARDS} cards, {REVIEWS:,} reviews, {args.repeat} runs each, the sizes in "
              f"turns ({label})", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            sizes = {students: prepare(students, postgres, Path(tmp)) for students in CLASS_SIZES}
            try:
                pages: dict[int, list[float]] = {students: [] for students in CLASS_SIZES}
                health: list[float] = []
                for _ in range(args.repeat):
                    for students, prepared in sizes.items():
                        pages[students] += timed(prepared.client, prepared.page, 1)
                    health += timed(sizes[CLASS_SIZES[0]].client, "/healthz", 4)
                # Clock ticks are 10 ms: enough pages that the count means something.
                cpu = {students: cpu_per_page(prepared.client, prepared.page, max(args.repeat, 20),
                                              prepared.url if postgres else None)
                       for students, prepared in sizes.items()}
            finally:
                for prepared in sizes.values():
                    close(prepared, postgres)
        healthz = statistics.median(health)
        first = CLASS_SIZES[0]
        base = (statistics.median(pages[first]), min(pages[first]), cpu[first])
        for students in CLASS_SIZES:
            # The fastest of the runs as well as the median: on a machine shared with other work, the
            # fastest is the one least disturbed.
            page, fastest = statistics.median(pages[students]), min(pages[students])
            print(f"  {students:>3} students: median {page * 1000:6.1f} ms ({page / base[0]:.2f}x the time at "
                  f"{first}), fastest {fastest * 1000:6.1f} ms ({fastest / base[1]:.2f}x); GET /healthz "
                  f"{healthz * 1000:.2f} ms, ratio {page / healthz:.0f}x; CPU {cpu[students] * 1000:.1f} ms a page "
                  f"({cpu[students] / base[2]:.2f}x); {sizes[students].reviews:,} reviews", flush=True)


if __name__ == "__main__":
    main()
