"""Real concurrency on a real database: threads sharing an engine, and separate processes.

SQLite file always; PostgreSQL too when FLASHAPP_TEST_POSTGRES_URL is set. Every writer
goes through `answer_card` and commits per answer, as the answer view does (including its
one retry after an IntegrityError). Fixed UTC datetimes, fuzzing off, no wall-clock checks.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import traceback
from collections import Counter
from datetime import timedelta

from fsrs import Rating
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flashapp.accounts import register_user
from flashapp.database import grouped_write, make_engine, write_gate
from flashapp.models import Card, CardState, Deck, ReviewLog, ReviewState
from flashapp.scheduling import (
    Outcome,
    StateChanged,
    answer_card,
    day_start,
    make_scheduler,
    next_card,
    state_stamp,
)
from tests.helpers import FAST_HASH_METHOD, T0, build_numbers_deck

ANSWERS_EACH = 20
THREADS = 8
PROCESSES = 4
PAIR_ROUNDS = 6
RATINGS = (Rating.Good, Rating.Easy, Rating.Hard, Rating.Good, Rating.Again)
# Generous: a stuck worker fails the test instead of hanging it; nothing here measures time.
WAIT = 120


def answer_once(session: Session, scheduler, **kwargs) -> Outcome:
    """Answer and commit, retrying once after an IntegrityError the way the answer view does."""
    for attempt in range(2):
        try:
            result = answer_card(session, scheduler, **kwargs)
            session.commit()
            return result.outcome
        except IntegrityError:
            session.rollback()
            if attempt:
                raise
    raise AssertionError("unreachable")


def study(session: Session, scheduler, *, user_id: int, deck_id: int, prefix: str, count: int) -> list[str]:
    """Answer `count` cards picked by `next_card`, one minute apart; the tokens that were recorded."""
    recorded = []
    begins = day_start(T0, "UTC")
    ends = begins + timedelta(days=1)
    for i in range(count):
        at = T0 + timedelta(minutes=i)
        picked = next_card(session, user_id=user_id, deck_id=deck_id, now=at, day_begins=begins,
                           day_ends=ends, new_per_day=1000)
        assert picked is not None, "the queue ran dry"
        card, state = picked
        token = f"{prefix}-{i}"
        outcome = answer_once(session, scheduler, user_id=user_id, card_id=card.id,
                              rating=RATINGS[i % len(RATINGS)], token=token, now=at,
                              shown_stamp=state_stamp(state), duration_ms=1500)
        assert outcome is Outcome.RECORDED, (token, outcome)
        recorded.append(token)
    return recorded


def process_worker(url: str, number: int, user_id: int, deck_id: int, shared: dict, barrier, results) -> None:
    """One separate process: its own engine, its own user's answers, then one token every process sends."""
    engine = None
    try:
        engine = make_engine(url)
        scheduler = make_scheduler(enable_fuzzing=False)
        barrier.wait(WAIT)
        with Session(engine) as session:
            recorded = study(session, scheduler, user_id=user_id, deck_id=deck_id, prefix=f"proc{number}",
                             count=ANSWERS_EACH)
        barrier.wait(WAIT)
        with Session(engine) as session:
            outcome = answer_once(session, scheduler, user_id=shared["user_id"], card_id=shared["card_id"],
                                  rating=Rating.Good, token=shared["token"], now=T0, shown_stamp="new")
        results.put((number, recorded, outcome.value, None))
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put((number, [], None, traceback.format_exc()))
    finally:
        if engine is not None:
            engine.dispose()


def setup_class(engine, usernames: list[str]) -> tuple[int, list[int], list[int]]:
    """The deck id, the users' ids and the deck's card ids (in deck order)."""
    with Session(engine) as session:
        build_numbers_deck(session, count=40)
        session.commit()
        users = [register_user(session, username=name, password="long enough password",
                               password_method=FAST_HASH_METHOD) for name in usernames]
        session.commit()
        deck_id = session.scalar(select(Deck.id))
        card_ids = list(session.scalars(select(Card.id).where(Card.deck_id == deck_id).order_by(Card.position)))
        return deck_id, [u.id for u in users], card_ids


def stored_tokens(engine) -> Counter:
    with Session(engine) as session:
        return Counter(session.scalars(select(ReviewLog.token)))


def test_threads_on_a_shared_engine_record_every_answer_once(engine, scheduler):
    students = [f"student{n}" for n in range(THREADS)]
    deck_id, user_ids, card_ids = setup_class(engine, [*students, "twin"])
    *student_ids, twin_id = user_ids
    start = threading.Barrier(THREADS + 2)
    pair_round = threading.Barrier(2)
    errors: list[str] = []
    recorded: dict[str, list[str]] = {}
    pair_outcomes: list[list[Outcome]] = [[] for _ in range(PAIR_ROUNDS)]
    lock = threading.Lock()

    def student(number: int) -> None:
        try:
            start.wait(WAIT)
            with Session(engine) as session:
                tokens = study(session, scheduler, user_id=student_ids[number], deck_id=deck_id,
                               prefix=f"thread{number}", count=ANSWERS_EACH)
            with lock:
                recorded[f"thread{number}"] = tokens
        except BaseException:  # noqa: BLE001 - collected and asserted on below
            with lock:
                errors.append(traceback.format_exc())
            start.abort()

    def twin() -> None:
        # Both twins send the very same answer (same card, token and stamp) at the same moment.
        try:
            start.wait(WAIT)
            with Session(engine) as session:
                for round_ in range(PAIR_ROUNDS):
                    pair_round.wait(WAIT)
                    outcome = answer_once(session, scheduler, user_id=twin_id, card_id=card_ids[round_],
                                          rating=Rating.Good, token=f"twin-{round_}",
                                          now=T0 + timedelta(minutes=round_), shown_stamp="new")
                    with lock:
                        pair_outcomes[round_].append(outcome)
        except BaseException:  # noqa: BLE001
            with lock:
                errors.append(traceback.format_exc())
            start.abort()
            pair_round.abort()

    threads = [threading.Thread(target=student, args=(n,)) for n in range(THREADS)]
    threads += [threading.Thread(target=twin) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads), "a worker thread is stuck"
    assert not errors, "\n".join(errors)

    acknowledged = [token for tokens in recorded.values() for token in tokens]
    assert len(acknowledged) == THREADS * ANSWERS_EACH
    for outcomes in pair_outcomes:
        assert sorted(o.value for o in outcomes) == ["duplicate", "recorded"]
    acknowledged += [f"twin-{round_}" for round_ in range(PAIR_ROUNDS)]

    stored = stored_tokens(engine)
    assert sum(stored.values()) == len(acknowledged)
    assert set(stored) == set(acknowledged)
    assert max(stored.values()) == 1
    with Session(engine) as session:
        per_user = dict(session.execute(select(ReviewLog.user_id, func.count()).group_by(ReviewLog.user_id)).all())
        assert per_user == {**dict.fromkeys(student_ids, ANSWERS_EACH), twin_id: PAIR_ROUNDS}
        twin_states = session.scalar(select(func.count()).select_from(CardState).where(CardState.user_id == twin_id))
        assert twin_states == PAIR_ROUNDS


def test_separate_processes_on_the_same_database_record_every_answer_once(engine, database_url):
    students = [f"proc{n}" for n in range(PROCESSES)]
    deck_id, user_ids, card_ids = setup_class(engine, [*students, "shared"])
    *student_ids, shared_id = user_ids
    shared = {"user_id": shared_id, "card_id": card_ids[0], "token": "shared-token"}
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [context.Process(target=process_worker,
                                 args=(database_url, n, student_ids[n], deck_id, shared, barrier, results))
                 for n in range(PROCESSES)]
    for process in processes:
        process.start()
    try:
        reports = [results.get(timeout=WAIT) for _ in processes]
    finally:
        for process in processes:
            process.join(WAIT)
            if process.is_alive():
                process.kill()
                process.join()
            process.close()
        results.close()
        results.join_thread()

    failures = [report[3] for report in reports if report[3]]
    assert not failures, "\n".join(failures)
    assert sorted(report[0] for report in reports) == list(range(PROCESSES))
    acknowledged = [token for report in reports for token in report[1]]
    assert len(acknowledged) == PROCESSES * ANSWERS_EACH
    assert sorted(report[2] for report in reports) == ["duplicate"] * (PROCESSES - 1) + ["recorded"]
    acknowledged.append(shared["token"])

    stored = stored_tokens(engine)
    assert sum(stored.values()) == len(acknowledged)
    assert set(stored) == set(acknowledged)
    assert max(stored.values()) == 1
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_grouped_writes_share_a_commit_and_a_refused_one_is_undone_alone(engine):
    _deck_id, user_ids, card_ids = setup_class(engine, ["grouped"])
    sqlite = engine.dialect.name == "sqlite"
    group = write_gate(engine).group
    results: dict[int, str] = {}
    lock = threading.Lock()

    def work(number: int):
        def write(session: Session) -> str:
            session.execute(insert(ReviewLog).values(
                user_id=user_ids[0], card_id=card_ids[number], rating=Rating.Good, reviewed_at=T0, duration_ms=1000,
                state_before=ReviewState.NEW, due=T0 + timedelta(days=1), token=f"grouped-{number}"))
            if number == 1:
                raise StateChanged()  # after its write, as an answer whose card moved on
            return f"written {number}"
        return write

    def writer(number: int) -> None:
        with Session(engine) as session:
            try:
                outcome = grouped_write(session, work(number))
            except StateChanged:
                outcome = "refused"
        with lock:
            results[number] = outcome

    if sqlite:
        group._turn.acquire()  # hold the turn until all three have queued: one of them then writes all three
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    if sqlite:
        queued = 0
        for _ in range(WAIT * 100):
            with group._guard:
                queued = len(group._queue)
            if queued == 3:
                break
            time.sleep(0.01)
        group._turn.release()
        assert queued == 3
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads), "a writer is stuck"
    assert results == {0: "written 0", 1: "refused", 2: "written 2"}
    assert stored_tokens(engine) == Counter({"grouped-0": 1, "grouped-2": 1})
