"""Benchmark: the teacher's pages, the exports and `flashapp check` on a school of growing size.

Three generated schools (students x cards x reviews):

    small   30 students,    300 cards,    50,000 reviews
    medium  300 students, 1,000 cards, 1,000,000 reviews
    large   1,000 students, 3,000 cards, 5,000,000 reviews

Every school has the class "Class 30": the same 30 students with the same 1,666 reviews each
on its three assigned decks (300 cards) at every size, so its pages can be compared as the
rest of the school grows; and the class "Everyone" (every student, no deck assigned). Every
history is a real FSRS walk, so each card state is the replay of its reviews (with its
counts) and `flashapp check` finds nothing.

A school is generated once into an SQLite file (Core executemany inserts) kept in
$TMPDIR/flashapp-bench/, and copied into PostgreSQL with COPY when asked:

    .venv/bin/python bench/scale.py --size small --size medium
    .venv/bin/python bench/scale.py --size medium --postgres postgresql+psycopg://postgres@127.0.0.1/bench
    .venv/bin/python bench/scale.py --size medium --only check
    .venv/bin/python bench/scale.py --size medium --only fix     # check --fix while a writer writes
    .venv/bin/python bench/scale.py --size small --size medium --only growth --repeat 40  # in turns
    .venv/bin/python bench/scale.py --size medium --only during --teacher revlog   # a class beside an export
    .venv/bin/python bench/scale.py --size medium --only during --teacher busy-core  # ... beside a busy core

The PostgreSQL database is named after the URL's database and the size (e.g. bench_medium)
and made with createdb's equivalent when missing. Times are medians through the Flask test
client (the template included), next to GET /healthz in the same run; export times read the
whole stream, and they and the check's time are also given as multiples of GET /healthz in
process; peak memory is the Python heap's peak (tracemalloc) while streaming, and for `check`
the peak RSS of a separate `flask check` process: of all its processes together
(sampled) and of the largest one.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from fsrs import Card as FsrsCard
from fsrs import Rating, State
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

from flashapp import create_app, db
from flashapp.accounts import hash_password
from flashapp.models import (
    Assignment,
    Card,
    CardState,
    Classroom,
    Deck,
    Enrollment,
    Note,
    ReviewLog,
    ReviewState,
    User,
)
from flashapp.scheduling import StudyDays, anki_interval, make_scheduler, schedule_answers
from flashapp.schema import upgrade_database

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Size:
    name: str
    students: int
    cards: int
    reviews: int


SIZES = {s.name: s for s in (Size("small", 30, 300, 50_000), Size("medium", 300, 1_000, 1_000_000),
                             Size("large", 1_000, 3_000, 5_000_000))}
CARDS_PER_DECK = 100
CLASS_30, CLASS_30_DECKS, CLASS_30_REVIEWS = 30, 3, 1_666
SPAN = timedelta(days=80)
RATINGS, WEIGHTS = (Rating.Again, Rating.Hard, Rating.Good, Rating.Easy), (12, 10, 65, 13)
BATCH = 50_000
CACHE = Path(os.environ.get("FLASHAPP_BENCH_CACHE", Path(tempfile.gettempdir()) / "flashapp-bench"))
PASSWORD = "benchmark!"
# Today at midnight UTC: the generated history ends here, so a day's cache keeps its 7- and 30-day windows.
NOW = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


# --- Generating a school -----------------------------------------------------------------------

def _app(url: str, instance: str):
    return create_app({"INSTANCE_PATH": instance, "SQLALCHEMY_DATABASE_URI": url,
                       "SECRET_KEY": "benchmark-" + "x" * 32, "WTF_CSRF_ENABLED": False})


def _history(rng: random.Random, plain, user_id: int, card_ids: list[int], quota: int, first_token: int):
    """A student's reviews (FSRS walks over some of `card_ids`) and the card states they leave."""
    chosen = rng.sample(card_ids, min(len(card_ids), max(1, quota // 6)))
    base, extra = divmod(quota, len(chosen))
    logs, states, token = [], [], first_token
    days = StudyDays("UTC", plain.day_starts_at_hour)
    for index, card_id in enumerate(chosen):
        count = base + (index < extra)
        if count <= 0:
            break
        # Spread evenly over the term, as a class studying every day gives.
        times = sorted(NOW - SPAN + timedelta(seconds=int(rng.random() * SPAN.total_seconds()))
                       for _ in range(count))
        card = FsrsCard(card_id=card_id, state=State.Learning, step=0, due=times[0])
        before, reps, lapses, again = ReviewState.NEW, 0, 0, 0
        for at in times:
            rating = rng.choices(RATINGS, WEIGHTS)[0]
            duration = rng.randint(1_000, 20_000)
            last = 0 if card.last_review is None else anki_interval(card.last_review, card.due, days)
            # The app's own rules (study days in the student's zone, UTC here), so each state is its replay.
            card = schedule_answers(plain, card, at, time_zone="UTC", user_id=user_id)[rating]
            logs.append({"user_id": user_id, "card_id": card_id, "rating": rating, "reviewed_at": at,
                         "duration_ms": duration, "state_before": before, "due": card.due,
                         "token": f"{user_id}-{token}", "last_interval": last})
            token += 1
            reps += 1
            again += rating == Rating.Again
            lapses += rating == Rating.Again and before == ReviewState.REVIEW
            before = ReviewState(card.state)
        states.append({"user_id": user_id, "card_id": card_id, "state": card.state, "step": card.step,
                           "stability": card.stability, "difficulty": card.difficulty, "due": card.due,
                           "last_review": card.last_review, "reps": reps, "lapses": lapses, "again_count": again})
    return logs, states


def _flush(logs: list, states: list) -> None:
    if logs:
        db.session.execute(insert(ReviewLog), logs)
    if states:
        db.session.execute(insert(CardState), states)
    db.session.commit()
    logs.clear()
    states.clear()


def generate(size: Size, path: Path) -> None:
    started = time.perf_counter()
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as instance:
        app = _app(f"sqlite:///{partial}", instance)
        with app.app_context():
            upgrade_database()
            password_hash = hash_password(PASSWORD, method="pbkdf2:sha256:1000")
            users = [{"id": 1, "username": "teacher", "password_hash": password_hash, "role": "teacher"}]
            users += [{"id": 2 + i, "username": f"s{i:04d}", "password_hash": password_hash, "role": "student"}
                      for i in range(size.students)]
            db.session.execute(insert(User), users)
            decks = size.cards // CARDS_PER_DECK
            db.session.execute(insert(Deck), [{"id": d, "slug": f"deck-{d:02d}", "title": f"Deck {d:02d}"}
                                              for d in range(1, decks + 1)])
            notes, cards = [], []
            for n in range(1, size.cards + 1):
                deck = (n - 1) // CARDS_PER_DECK + 1
                notes.append({"id": n, "deck_id": deck, "key": f"deck-{deck:02d}/square/{n}", "relation": "square",
                                  "subject": str(n), "object": str(n * n), "section": "main", "position": n})
                cards.append({"id": n, "deck_id": deck, "note_id": n,
                              "key": f"deck-{deck:02d}/square/{n}/forward", "template": "forward",
                              "question": f"What is the square of {n}?", "answer": str(n * n), "position": n})
            db.session.execute(insert(Note), notes)
            db.session.execute(insert(Card), cards)
            db.session.execute(insert(Classroom), [
                {"id": 1, "name": "Class 30", "teacher_id": 1, "join_code": "CLASS30"},
                {"id": 2, "name": "Everyone", "teacher_id": 1, "join_code": "EVERYONE"}])
            db.session.execute(insert(Assignment), [
                {"classroom_id": 1, "deck_id": d, "target_date": (NOW + timedelta(days=30)).date(),
                     "created_at": NOW - SPAN} for d in range(1, CLASS_30_DECKS + 1)])
            db.session.execute(insert(Enrollment), [{"classroom_id": 1, "user_id": 2 + i} for i in range(CLASS_30)]
                               + [{"classroom_id": 2, "user_id": 2 + i} for i in range(size.students)])
            db.session.commit()

            plain = make_scheduler(enable_fuzzing=False)
            class_cards = list(range(1, CLASS_30_DECKS * CARDS_PER_DECK + 1))
            others = size.students - CLASS_30
            other_quota = (size.reviews - CLASS_30 * CLASS_30_REVIEWS) // others if others else 0
            logs: list = []
            states: list = []
            for i in range(size.students):
                user_id = 2 + i
                # Seeded by the student alone: Class 30's history is the same at every size.
                rng = random.Random(f"student-{i}")
                if i < CLASS_30:
                    more_logs, more_states = _history(rng, plain, user_id, class_cards, CLASS_30_REVIEWS, 0)
                else:
                    first = rng.randrange(decks)
                    studied = sorted({(first + k) % decks for k in range(max(1, decks // 3))})
                    pool = [c for d in studied for c in range(d * CARDS_PER_DECK + 1, (d + 1) * CARDS_PER_DECK + 1)]
                    more_logs, more_states = _history(rng, plain, user_id, pool, other_quota, 0)
                logs += more_logs
                states += more_states
                if len(logs) >= BATCH:
                    _flush(logs, states)
                    print(f"    {size.name}: {i + 1}/{size.students} students, "
                          f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            _flush(logs, states)
            db.session.execute(text("ANALYZE"))
            db.session.commit()
            db.session.remove()
            db.engine.dispose()
    partial.rename(path)
    print(f"  generated {size.name} in {time.perf_counter() - started:.0f} s: {path}", file=sys.stderr)


def sqlite_school(size: Size) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"school-v4-{size.name}-{NOW:%Y%m%d}.sqlite"
    if not path.exists():
        generate(size, path)
    return path


COPIED_TABLES = ("user", "deck", "note", "card", "classroom", "enrollment", "assignment", "card_state",
                 "review_log")


def postgres_school(size: Size, base_url: str, source: Path) -> str:
    """The school copied from its SQLite file into its own PostgreSQL database (once per day's cache)."""
    import psycopg

    url = make_url(base_url)
    name = f"{url.database}_{size.name}"
    target = url.set(database=name)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')
    libpq = target.set(drivername="postgresql").render_as_string(hide_password=False)
    stamp = f"{source.name}"
    with psycopg.connect(libpq, autocommit=True) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS bench_source (name text)")
        if connection.execute("SELECT 1 FROM bench_source WHERE name = %s", (stamp,)).fetchone():
            return target.render_as_string(hide_password=False)
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as instance:
        app = _app(target.render_as_string(hide_password=False), instance)
        with app.app_context():
            upgrade_database()
            db.session.remove()
            db.engine.dispose()
    lite = sqlite3.connect(source)
    with psycopg.connect(libpq) as connection:
        connection.execute("SET TIME ZONE 'UTC'")
        for table in COPIED_TABLES:
            columns = [row[1] for row in lite.execute(f'PRAGMA table_info("{table}")')]
            names = ", ".join(f'"{c}"' for c in columns)
            with connection.cursor().copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                for row in lite.execute(f'SELECT {names} FROM "{table}"'):
                    copy.write_row(row)
            connection.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                               f"(SELECT coalesce(max(id), 1) FROM \"{table}\"))")
        connection.commit()
    with psycopg.connect(libpq, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        connection.execute("CREATE TABLE bench_source (name text)")
        connection.execute("INSERT INTO bench_source VALUES (%s)", (stamp,))
    print(f"  copied {size.name} into PostgreSQL {name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return target.render_as_string(hide_password=False)


# --- Measuring ---------------------------------------------------------------------------------

def timed(client, url: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times)


def consume(stream: Iterable) -> int:
    return sum(len(chunk) for chunk in stream)


def measured(make: Callable[[], Iterable]) -> tuple[float, int, float]:
    """Seconds to read a whole export, its size, and the Python heap's peak while streaming it (MB)."""
    started = time.perf_counter()
    size = consume(make())
    seconds = time.perf_counter() - started
    db.session.remove()
    tracemalloc.start()
    consume(make())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    db.session.remove()
    return seconds, size, peak / 1e6


def pages(app, size: Size, label: str, repeat: int) -> None:
    client = app.test_client()
    client.post("/login", data={"username": "teacher", "password": PASSWORD})
    with app.app_context():
        reviews = db.session.scalar(select(func.count(ReviewLog.id)))
        states = db.session.scalar(select(func.count(CardState.id)))
    health = timed(client, "/healthz", repeat * 4)
    print(f"[{label}] {size.name}: {size.students} students, {size.cards} cards, {reviews:,} reviews, "
          f"{states:,} card states; GET /healthz {health * 1000:.2f} ms")
    for class_id, name, students in ((1, "Class 30", CLASS_30), (2, "Everyone", size.students)):
        timed(client, f"/teach/classes/{class_id}", 1)  # warm up
        page = timed(client, f"/teach/classes/{class_id}", repeat)
        student = timed(client, f"/teach/classes/{class_id}/students/2", repeat)
        print(f"[{label}] {size.name}: dashboard of {name} ({students} students) {page * 1000:7.1f} ms "
              f"(ratio to /healthz {page / health:.0f}x); a student's page {student * 1000:.1f} ms")


def growth(schools: list[tuple[Size, str]], label: str, repeat: int) -> None:
    """Class 30's pages in each school, timed in turns (one request in each school, then the next), so that
    the machine's ups and downs fall on every size alike; medians, and each size's ratio to the first."""
    clients = []
    with tempfile.TemporaryDirectory() as folder:
        for size, url in schools:
            instance = Path(folder) / size.name
            instance.mkdir()
            client = _app(url, str(instance)).test_client()
            client.post("/login", data={"username": "teacher", "password": PASSWORD})
            clients.append((size, client))
        pages = {"dashboard": "/teach/classes/1", "a student's page": "/teach/classes/1/students/2",
                 "GET /healthz": "/healthz"}
        times: dict[tuple[str, str], list[float]] = {}
        for turn in range(repeat + 2):
            for size, client in clients:
                for what, url in pages.items():
                    started = time.perf_counter()
                    response = client.get(url)
                    if turn >= 2:  # the first two turns warm up
                        times.setdefault((size.name, what), []).append(time.perf_counter() - started)
                    assert response.status_code == 200, (url, response.status_code)
    first = clients[0][0].name
    for what in pages:
        base = statistics.median(times[(first, what)])
        line = ", ".join(f"{size.name} {statistics.median(times[(size.name, what)]) * 1000:.1f} ms"
                         f" ({statistics.median(times[(size.name, what)]) / base:.2f}x)" for size, _ in clients)
        print(f"[{label}] Class 30, {what}, in turns ({repeat} each): {line}")


def healthz_seconds(app) -> float:
    """GET /healthz's median in process on this school: the machine's pace in the same run, which the exports' and
    the check's times are given against."""
    return timed(app.test_client(), "/healthz", 40)


def exports(app, size: Size, label: str) -> None:
    from flashapp import exports as ex

    health = healthz_seconds(app)
    print(f"[{label}] {size.name}: GET /healthz {health * 1000:.2f} ms in process (the exports' ratios below)")
    with app.app_context():
        for class_id, name in ((1, "Class 30"), (2, "Everyone")):
            for what, make in (
                ("revlog CSV", lambda class_id=class_id: ex.class_revlog_csv(db.session, classroom_id=class_id)),
                ("progress CSV", lambda class_id=class_id: ex.class_progress_csv(db.session, classroom_id=class_id,
                                                                               now=NOW)),
            ):
                seconds, length, peak = measured(make)
                print(f"[{label}] {size.name}: {what} of {name}: {seconds:6.2f} s ({seconds / health:,.0f}x "
                      f"/healthz), {length / 1e6:6.1f} MB, peak heap {peak:5.1f} MB")
        for what, make in (
            ("history CSV", lambda: ex.history_csv(db.session, user_id=2, time_zone="Europe/Paris")),
            ("data.zip", lambda: ex.personal_data_zip(db.session, user_id=2, now=NOW)),
        ):
            seconds, length, peak = measured(make)
            print(f"[{label}] {size.name}: a student's {what}: {seconds * 1000:6.0f} ms ({seconds / health:,.0f}x "
                  f"/healthz), {length / 1e6:5.2f} MB, peak heap {peak:5.1f} MB")


def tree_usage(root: int) -> tuple[int, dict[int, float]]:
    """Bytes resident in a process and all its descendants, now, and the CPU seconds each has used so far
    (Linux's /proc; nothing elsewhere)."""
    parents: dict[int, int] = {}
    resident: dict[int, int] = {}
    cpu: dict[int, float] = {}
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            pages = int((entry / "statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        resident[pid] = pages * page
        cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
    total, seen, pending = 0, {}, [root]
    while pending:
        pid = pending.pop()
        total += resident.get(pid, 0)
        seen[pid] = cpu.get(pid, 0.0)
        pending += [child for child, parent in parents.items() if parent == pid]
    return total, seen


def check(url: str, size: Size, label: str) -> None:
    env = dict(os.environ, FLASHAPP_DATABASE_URL=url, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory() as instance:
        app = _app(url, instance)
        health = healthz_seconds(app)
        with app.app_context():
            db.engine.dispose()
    with tempfile.TemporaryDirectory() as instance:
        env["FLASHAPP_INSTANCE_PATH"] = instance
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "flashapp", "check"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        # The check may share its work among processes: their memory together, sampled 4 times a second, and
        # the CPU time each was last seen to have used (the processes it shares its work with are not all its own
        # children, whose times the operating system would add up).
        together, used = 0, {}
        while process.poll() is None:
            resident, cpu_now = tree_usage(process.pid)
            together = max(together, resident)
            used.update(cpu_now)
            time.sleep(0.25)
        stdout, _ = process.communicate()
        seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of the check's processes: on a shared machine they vary less than the wall time.
    cpu = max(sum(used.values()), (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))
    peak = after.ru_maxrss / 1024
    summary = stdout.strip().splitlines()
    print(f"[{label}] {size.name}: flask check {seconds:6.1f} s ({cpu:5.1f} s CPU), peak RSS of its processes "
          f"together {together / 2**20:5.0f} MB, of the largest process so far {peak:5.0f} MB, "
          f"exit {process.returncode}: {' / '.join(summary[:2])}; GET /healthz {health * 1000:.2f} ms in process "
          f"just before ({seconds / health:,.0f}x)")


def fix(url: str, size: Size, label: str) -> None:
    """`check --fix` after every 10th card state was tampered with, while another writer writes.

    Prints the fix's time, its write transactions and the longest one, and the longest wait of
    a writer (a stand-in for an answer) that writes every 50 ms meanwhile. The fix puts the
    states back, so the cached school stays consistent.
    """
    import threading

    from sqlalchemy import event, update
    from sqlalchemy.orm import Session

    from flashapp.consistency import check_database
    from flashapp.database import make_engine, write_transaction

    engine = make_engine(url)
    with Session(engine) as session, write_transaction(session):
        tampered = session.execute(update(CardState).where(CardState.id % 10 == 0)
                                   .values(stability=CardState.stability * 2)).rowcount
    held: list[float] = []
    began: list[float] = []

    def on_begin(_connection, _cursor, statement, *_args):
        if statement == "BEGIN IMMEDIATE" or statement.startswith("LOCK TABLE"):
            began.append(time.perf_counter())

    def on_commit(_connection):
        if began:
            held.append(time.perf_counter() - began.pop())

    event.listen(engine, "before_cursor_execute", on_begin)
    event.listen(engine, "commit", on_commit)
    stop, waits, failed = threading.Event(), [], []
    other = make_engine(url)

    def writer() -> None:
        from sqlalchemy.exc import OperationalError

        while not stop.wait(0.05):
            started = time.perf_counter()
            try:
                with Session(other) as session, write_transaction(session):
                    session.execute(update(CardState).where(CardState.id == 1).values(reps=CardState.reps))
            except OperationalError:  # gave up waiting for the lock (SQLite's 30 s busy timeout)
                failed.append(time.perf_counter() - started)
                continue
            waits.append(time.perf_counter() - started)

    thread = threading.Thread(target=writer)
    thread.start()
    started = time.perf_counter()
    with Session(engine) as session:
        report = check_database(session, make_scheduler(), fix=True)
    seconds = time.perf_counter() - started
    stop.set()
    thread.join()
    engine.dispose()
    other.dispose()
    print(f"[{label}] {size.name}: check --fix of {tampered:,} tampered states {seconds:6.1f} s, "
          f"fixed {len(report.repaired):,}; {len(held)} write transactions, the longest {max(held, default=0):.2f} s; "
          f"a writer every 50 ms ({len(waits)} writes) waited at most {max(waits, default=0):.2f} s, "
          f"{len(failed)} gave up waiting")


def _copy_of_school(url: str, folder: Path) -> tuple[str, Callable[[], None]]:
    """A copy of the school to write to (students answer), and how to remove it."""
    target = make_url(url)
    if target.get_backend_name() == "sqlite":
        copy = folder / "school.sqlite"
        with sqlite3.connect(str(target.database)) as source, sqlite3.connect(copy) as into:
            source.backup(into)
        return f"sqlite:///{copy}", lambda: None
    from sqlalchemy import create_engine

    name = f"{target.database}_during"
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{target.database}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    return target.set(database=name).render_as_string(hide_password=False), drop


def done_page(url: str, size: Size, label: str, repeat: int) -> None:
    """A student's page saying a deck is done for today and GET /healthz, timed in turns on a copy of the school
    (in process, CPU time too): the page shows the student's streak, which runs back over the school's term.

    The student (s0001, of Class 30) first answers Deck 01 Good until nothing is left of it today.
    """
    import re

    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        copy, remove = _copy_of_school(url, folder)
        app = _app(copy, folder_name)
        try:
            client = app.test_client()
            assert client.post("/login", data={"username": "s0001", "password": PASSWORD}).status_code == 302
            answered = 0
            while token := re.search(r'name="token" value="([^"]+)"', client.get("/study/deck-01").text):
                client.post("/study/deck-01/answer", data={"token": token.group(1), "rating": "3"})
                answered += 1
            with app.app_context():
                answers = db.session.scalar(select(func.count()).select_from(ReviewLog)
                                            .join(User, User.id == ReviewLog.user_id).where(User.username == "s0001"))
            times: dict[str, list[float]] = {"done page": [], "GET /healthz": []}
            cpu: dict[str, list[float]] = {"done page": [], "GET /healthz": []}
            streak = ""
            for turn in range(repeat + 2):
                for what, path in (("done page", "/study/deck-01"), ("GET /healthz", "/healthz")):
                    started, started_cpu = time.perf_counter(), time.process_time()
                    response = client.get(path)
                    took, took_cpu = time.perf_counter() - started, time.process_time() - started_cpu
                    assert response.status_code == 200, (path, response.status_code)
                    if what == "done page":
                        assert "All caught up" in response.text
                        found = re.search(r"<dt>Streak</dt><dd>([^<]+)</dd>", response.text)
                        streak = found.group(1) if found else "none"
                    if turn >= 2:  # the first two warm the caches
                        times[what].append(took)
                        cpu[what].append(took_cpu)
            page, health = (statistics.median(times[what]) for what in ("done page", "GET /healthz"))
            print(f"[{label}] {size.name}: done page of a student with {answers} answers (streak {streak}; "
                  f"{answered} answered first), in turns ({repeat} each): {page * 1000:.2f} ms "
                  f"(CPU {statistics.median(cpu['done page']) * 1000:.2f} ms), GET /healthz {health * 1000:.2f} ms "
                  f"(CPU {statistics.median(cpu['GET /healthz']) * 1000:.2f} ms), ratio {page / health:.1f}x")
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
            remove()


# Stand-ins for the teacher of `during`, to compare with: a process that keeps one core busy (the machine
# shared with any work at all), and the revlog CSV of Everyone written by a process of its own, on the same
# database, not through the server (the same reading, none of it in the server's process). Each runs until the
# time is up; the second prints a line for each export as the teacher does.
_BUSY_CORE = """
import sys, time
until = time.monotonic() + float(sys.argv[1])
while time.monotonic() < until:
    pass
"""
_EXPORT_ELSEWHERE = """
import sys, time
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from flashapp.exports import class_revlog_csv
engine = create_engine(sys.argv[1])
until = time.monotonic() + float(sys.argv[2])
while time.monotonic() < until:
    started = time.perf_counter()
    with Session(engine) as session:
        for _chunk in class_revlog_csv(session, classroom_id=int(sys.argv[3])):
            pass
    print(0, 200, time.perf_counter() - started, flush=True)
"""

# The teacher of `during`: asks for each path in turn until the time is up, reading every body in full,
# and prints, for each, its index, status and seconds.
_TEACHER = """
import http.client, sys, time
port, cookie, seconds, paths = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4:]
until = time.monotonic() + seconds
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
while time.monotonic() < until:
    for index, path in enumerate(paths):
        started = time.perf_counter()
        connection.request("GET", path, headers={"Cookie": cookie})
        response = connection.getresponse()
        response.read()
        print(index, response.status, time.perf_counter() - started, flush=True)
"""


def during(url: str, size: Size, label: str, seconds: float, teacher_asks: str = "both") -> None:
    """Class 30's study pages on a real `flashapp serve`, at a class's pace, alone and while a teacher
    downloads the revlog CSV of Everyone and opens its dashboard, one after the other without a pause.

    Each of the 30 students loads a study page and answers it once a second (a deck of the three
    in turn); the study page, the answer and the page saying a deck is done for today are timed apart.
    Both phases last `seconds` in all, run in turns of about five seconds; the second prints how many
    exports and dashboards were served meanwhile and how long they took.
    `teacher_asks` "revlog" or "dashboard" has the teacher ask for that alone; "busy-core" and
    "export-elsewhere" put a stand-in in the teacher's place (see `_BUSY_CORE`), to tell what sharing the
    machine costs the class from what the server's own work does.
    The server runs on a copy of the school, after its start-up work (the day's backup, the
    round of personal fits) is over.
    """
    import threading

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from load import RATING_WEIGHTS, Connection, field_value, free_port, percentile, process_cpu

    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        copy, remove = _copy_of_school(url, folder)
        (folder / "instance").mkdir()
        (folder / "decks").mkdir()
        (folder / "instance" / "config.py").write_text(
            f"NEW_CARDS_PER_DAY = 1000000\nDECKS_DIR = {str(folder / 'decks')!r}\n")
        env = {**os.environ, "FLASHAPP_INSTANCE_PATH": str(folder / "instance"), "FLASHAPP_DATABASE_URL": copy,
               "PYTHONPATH": str(ROOT)}
        env.pop("FLASHAPP_SECRET_KEY", None)
        port = free_port()
        log = open(folder / "server.log", "wb")  # noqa: SIM115 -- open for the server's whole life
        server = subprocess.Popen([sys.executable, "-m", "flashapp", "serve", "--host", "127.0.0.1",
                                   "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while True:  # up, then idle: its start-up work done
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not settle:\n{(folder / 'server.log').read_text()[-2000:]}")
                used = process_cpu(server.pid)
                time.sleep(2)
                if process_cpu(server.pid) - used < 0.05:
                    try:
                        if Connection(port, {}).call("GET", "/healthz")[0] == 200:
                            break
                    except OSError:
                        pass

            def logged_in(username: str) -> Connection:
                connection = Connection(port, {})
                page = connection.call("GET", "/login")[1]
                status = connection.call("POST", "/login", {"csrf_token": field_value(page, "csrf_token"),
                                                            "username": username, "password": PASSWORD})[0]
                assert status == 302, (username, status)
                return connection

            students = [logged_in(f"s{i:04d}") for i in range(CLASS_30)]
            teacher = logged_in("teacher")
            phase: dict[str, object] = {"name": "warm-up"}
            timings: dict[str, dict[str, list[float]]] = {}
            failures: list[str] = []
            stop = threading.Event()

            def study(number: int, connection: Connection) -> None:
                rng = random.Random(number)
                turn = number
                next_at = time.monotonic() + rng.random()
                while not stop.is_set():
                    time.sleep(max(0.0, next_at - time.monotonic()))
                    next_at += 1.0
                    slug = f"deck-{turn % CLASS_30_DECKS + 1:02d}"
                    turn += 1
                    name = str(phase["name"])
                    started = time.perf_counter()
                    status, page = connection.call("GET", f"/study/{slug}")
                    took = time.perf_counter() - started
                    token = field_value(page, "token")
                    # A page showing a card, or the one saying the deck is done for today: timed apart.
                    kind = "study page" if token is not None or status != 200 else "done page"
                    timings.setdefault(name, {}).setdefault(kind, []).append(took)
                    if status != 200:
                        failures.append(f"study page {status}")
                    if status != 200 or token is None:
                        continue
                    form = {"csrf_token": field_value(page, "csrf_token"), "token": token,
                            "rating": str(rng.choices((1, 2, 3, 4), RATING_WEIGHTS)[0])}
                    started = time.perf_counter()
                    status = connection.call("POST", f"/study/{slug}/answer", form)[0]
                    timings[name].setdefault("answer", []).append(time.perf_counter() - started)
                    if status != 303:
                        failures.append(f"answer {status}")

            asked = [(what, path) for what, path in (("revlog CSV of Everyone", "/teach/classes/2/revlog.csv"),
                                                      ("dashboard of Everyone", "/teach/classes/2"))
                     if teacher_asks in ("both", what.split()[0])
                     or (teacher_asks == "export-elsewhere" and what.startswith("revlog"))]
            served: dict[str, list[float]] = {what: [] for what, _ in asked}

            def teach(until: float) -> None:
                # In a process of its own: reading tens of megabytes here would take this process's interpreter
                # lock from the students' threads, whose timings would then tell of the client, not the server.
                left = str(until - time.monotonic())
                if teacher_asks == "busy-core":
                    subprocess.run([sys.executable, "-c", _BUSY_CORE, left], check=True)
                    return
                if teacher_asks == "export-elsewhere":
                    result = subprocess.run([sys.executable, "-c", _EXPORT_ELSEWHERE, copy, left, "2"], env=env,
                                            capture_output=True, text=True, check=True)
                else:
                    cookie = "; ".join(f"{name}={value}" for name, value in teacher.jar.items())
                    result = subprocess.run(
                        [sys.executable, "-c", _TEACHER, str(port), cookie, left, *(path for _, path in asked)],
                        capture_output=True, text=True, check=True)
                for line in result.stdout.splitlines():
                    index, status, seconds_taken = line.split()
                    served[asked[int(index)][0]].append(float(seconds_taken))
                    if status != "200":
                        failures.append(f"{asked[int(index)][0]} {status}")

            threads = [threading.Thread(target=study, args=(n, c), daemon=True) for n, c in enumerate(students)]
            for thread in threads:
                thread.start()
            time.sleep(5)  # every student has loaded a page or two
            # The two phases in turns of about five seconds: as the class studies, more of its decks run out of
            # cards for today. Run one after the other, the second phase had more of the pages saying so than
            # the first, whatever the teacher did.
            turns = max(1, round(seconds / 5))
            for _turn in range(turns):
                phase["name"] = "alone"
                time.sleep(seconds / turns)
                phase["name"] = "beside the teacher"
                teach(time.monotonic() + seconds / turns)
            stop.set()
            for thread in threads:
                thread.join()
            for name in ("alone", "beside the teacher"):
                parts = ", ".join(f"{what} p50 {percentile(values, 0.5) * 1000:.1f} ms, "
                                  f"p95 {percentile(values, 0.95) * 1000:.1f} ms ({len(values)})"
                                  for what, values in timings.get(name, {}).items())
                print(f"[{label}] {size.name}: Class 30 studying, {name}: {parts}")
            for what, values in served.items():
                served_line = (f"meanwhile {len(values)} x {what}, median {statistics.median(values):.2f} s"
                               if values else f"no {what} served")
                print(f"[{label}] {size.name}:   {served_line}")
            alone, beside = timings.get("alone", {}), timings.get("beside the teacher", {})
            for what in ("study page", "answer", "done page"):
                if len(alone.get(what, ())) >= 20 and len(beside.get(what, ())) >= 20:
                    print(f"[{label}] {size.name}:   {what} p95 beside the teacher / alone = "
                          f"{percentile(beside[what], 0.95) / percentile(alone[what], 0.95):.2f}")
            print(f"[{label}] {size.name}:   failures: {len(failures)} {sorted(set(failures))[:5]}")
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
            remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", action="append", choices=list(SIZES), help="repeatable; default small")
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL (a database per size)")
    parser.add_argument("--only", action="append",
                        choices=["pages", "growth", "exports", "check", "fix", "during", "done"])
    parser.add_argument("--seconds", type=float, default=20, help="during: each phase's length")
    parser.add_argument("--teacher", choices=["both", "revlog", "dashboard", "busy-core", "export-elsewhere"],
                        default="both", help="during: what the teacher asks for, one after the other; or a "
                                             "stand-in: a process keeping a core busy, or the revlog CSV written "
                                             "by a process of its own")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    parts = args.only or ["pages", "exports", "check"]
    sizes = [SIZES[name] for name in (args.size or ["small"])]
    if "growth" in parts:
        paths = [(size, sqlite_school(size)) for size in sizes]
        if not args.no_sqlite:
            growth([(size, f"sqlite:///{path}") for size, path in paths], "SQLite", args.repeat)
        if args.postgres:
            growth([(size, postgres_school(size, args.postgres, path)) for size, path in paths], "PostgreSQL",
                   args.repeat)
    for size in sizes if set(parts) - {"growth"} else []:
        path = sqlite_school(size)
        targets = [] if args.no_sqlite else [("SQLite", f"sqlite:///{path}")]
        if args.postgres:
            targets.append(("PostgreSQL", postgres_school(size, args.postgres, path)))
        for label, url in targets:
            with tempfile.TemporaryDirectory() as instance:
                app = _app(url, instance)
                if "pages" in parts:
                    pages(app, size, label, args.repeat)
                if "exports" in parts:
                    exports(app, size, label)
                with app.app_context():
                    db.session.remove()
                    db.engine.dispose()
            if "check" in parts:
                check(url, size, label)
            if "fix" in parts:
                fix(url, size, label)
            if "during" in parts:
                during(url, size, label, args.seconds, args.teacher)
            if "done" in parts:
                done_page(url, size, label, args.repeat)


if __name__ == "__main__":
    main()
