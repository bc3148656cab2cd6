"""The exports stream the same bytes a plain in-memory build gives, and every cell survives a CSV reader."""

from __future__ import annotations

import csv
import io
import random
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from fsrs import Rating
from sqlalchemy import insert, select, update

from flashapp.accounts import register_user
from flashapp.classroom import create_classroom, join_classroom
from flashapp.decksource import parse_deck_text
from flashapp.exports import (
    class_progress_csv,
    class_revlog_batches,
    class_revlog_csv,
    class_revlog_rows,
    csv_chunks,
    csv_chunks_of_batches,
    history_csv,
    personal_data_files,
    personal_data_zip,
    zip_chunks,
)
from flashapp.generation import build_deck
from flashapp.history import history_query
from flashapp.models import Assignment, Card, CardState, Deck, ReviewLog
from flashapp.scheduling import answer_card, format_interval, make_scheduler
from flashapp.stats import REVLOG_COLUMNS, class_roster
from tests.helpers import FAST_HASH_METHOD, deck_text

NOW = datetime(2026, 4, 1, 12, 0, tzinfo=timezone.utc)
# A question with a comma and quotes, so every CSV must quote it.
FACTS = deck_text(slug="numbers", title="Numbers", source="test", sections={"main": "Main"},
                  relations={"square": {"forward": 'What is the square of {subject}, "quoted"?'}},
                  facts=[{"relation": "square", "subject": str(n), "object": str(n * n), "section": "main"}
                         for n in range(1, 7)])


@dataclass(frozen=True)
class HistoryRow:
    review: ReviewLog
    question: str
    card_key: str
    deck_slug: str


def review_history(session, *, user_id: int) -> list[HistoryRow]:
    """A user's answers newest first, read through the history page's own query: the plain build."""
    return [HistoryRow(r, r.card.question, r.card.key, r.card.deck.slug)
            for r in session.scalars(history_query(user_id)).unique()]


AWKWARD = ["plain", "a,b", 'say "hi"', "two\nlines", "=1+2", "", " spaced ", "naïve ☃", "\r\n"]


def in_memory(header, rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


@pytest.fixture
def school(session):
    """Ann and Ben in a class, each with answers at awkward instants (exact milliseconds, microseconds)."""
    build_deck(session, parse_deck_text(FACTS, "numbers.yaml"), now=NOW - timedelta(days=60))
    teacher = register_user(session, username="mrs-k", password="long enough", password_method=FAST_HASH_METHOD)
    ben = register_user(session, username="ben", password="long enough", password_method=FAST_HASH_METHOD,
                        time_zone="America/New_York")
    ann = register_user(session, username="ann", password="long enough", password_method=FAST_HASH_METHOD,
                        time_zone="Asia/Tokyo")
    classroom = create_classroom(session, teacher=teacher, name="Numbers, \"first\" class")
    for student in (ann, ben):
        join_classroom(session, user=student, code=classroom.join_code)
    session.flush()
    scheduler = make_scheduler(enable_fuzzing=False)
    cards = list(session.scalars(select(Card).order_by(Card.position)))
    offsets = [timedelta(microseconds=123000), timedelta(microseconds=999999), timedelta(0),
               timedelta(microseconds=1)]
    for u, student in enumerate((ann, ben)):
        at = NOW - timedelta(days=40) + offsets[u]
        for n in range(12):
            card = cards[(n + u) % len(cards)]
            answer_card(session, scheduler, user_id=student.id, card_id=card.id, rating=Rating(1 + (n * 3 + u) % 4),
                        token=f"{student.username}-{n}", now=at, duration_ms=None if n == 3 else 1000 + n)
            at += timedelta(days=2, hours=n, microseconds=offsets[(n + u) % 4].microseconds)
    session.commit()
    return classroom, ann, ben


def test_csv_chunks_give_the_bytes_of_one_csv_writer_and_every_cell_reads_back(session):
    rows = [[cell, n, n / 3, None] for n, cell in enumerate(AWKWARD * 40)]
    chunks = list(csv_chunks(["text", "number", "float", "none"], rows, rows_per_chunk=7))
    assert len(chunks) > 40
    text = "".join(chunks)
    assert text == "".join(csv_chunks(["text", "number", "float", "none"], rows, rows_per_chunk=len(rows)))
    plain = [row for row in rows if row[0] not in ("=1+2", "\r\n")]
    assert "".join(csv_chunks(["text", "number", "float", "none"], plain, rows_per_chunk=7)) == in_memory(
        ["text", "number", "float", "none"], plain)
    read = list(csv.reader(io.StringIO(text, newline="")))
    assert read[0] == ["text", "number", "float", "none"]
    # Every cell reads back, a formula-like one behind a single quote (see test_formula_like_text_...).
    assert [row[0] for row in read[1:]] == ["'" + row[0] if row[0] in ("=1+2", "\r\n") else row[0] for row in rows]
    assert [row[2] for row in read[1:]] == [repr(row[2]) for row in rows]
    assert all(row[3] == "" for row in read[1:])


def test_formula_like_text_gets_a_single_quote_and_numbers_stay_numbers():
    rows = [[-5, "-5", -1.5, "=1+1", None], [3, "ok", 0.5, "a;b", None], [7, "plain", 2.0, "@x", ""],
            [8, "plain", 0.25, "x-y", "\tx"], [9, "\r=1", 1.0, "+1", "2026-03-02"], [-1, "a", -2.0, "b", "c"]]
    text = "".join(csv_chunks(["n", "text", "x", "formula", "none"], rows, rows_per_chunk=4))
    assert text.split("\r\n") == [
        "n,text,x,formula,none",
        '-5,"\'-5",-1.5,"\'=1+1",""',  # a formula's row quotes its text, never its numbers
        '3,"ok",0.5,"a;b",""',          # a semicolon: quoted, so a spreadsheet splitting on it keeps the cell
        '7,"plain",2.0,"\'@x",""',
        '8,"plain",0.25,"x-y","\'\tx"',
        '9,"\'\r=1",1.0,"\'+1","2026-03-02"',
        "-1,a,-2.0,b,c",                # negative numbers alone are numbers: the row is written as it is
        "",
    ]
    read = list(csv.reader(io.StringIO(text, newline="")))
    assert [row[1] for row in read[1:]] == ["'-5", "ok", "plain", "plain", "'\r=1", "a"]
    assert [float(row[2]) for row in read[1:]] == [row[2] for row in rows]


def test_an_empty_export_is_its_header_alone(session):
    assert list(csv_chunks(["a", "b"], [])) == ["a,b\r\n"]


def test_the_class_revlog_streams_the_optimisers_layout_by_student_then_card_then_time(session, school):
    classroom, ann, ben = school
    expected = []
    for student in (ann, ben):  # by name
        reviews = sorted(review_history(session, user_id=student.id), key=lambda row: (
            row.review.card_id, row.review.reviewed_at, row.review.id))
        expected += [(student.id * 1_000_000_000 + r.review.card_id, int(r.review.reviewed_at.timestamp() * 1000),
                      int(r.review.rating), int(r.review.state_before), r.review.duration_ms or 0, student.time_zone,
                      5, student.username, r.review.card_id) for r in reviews]
    assert list(class_revlog_rows(session, classroom_id=classroom.id, day_starts_at_hour=5)) == expected
    header = ["card_id", "review_time", "review_rating", "review_state", "review_duration", "timezone",
              "next_day_starts_at", "user", "deck_card_id"]
    assert "".join(class_revlog_csv(session, classroom_id=classroom.id, day_starts_at_hour=5)) == \
        in_memory(header, expected)


def test_the_revlog_lines_the_database_writes_have_each_answers_whole_milliseconds(session, school):
    """The CSV's lines are written by the database, the rows' times worked out in Python from microseconds: over
    hundreds of instants, half of them on a whole millisecond, both give the whole milliseconds since 1970."""
    classroom, *_ = school
    rng = random.Random(7)
    ids = list(session.scalars(select(ReviewLog.id).order_by(ReviewLog.id)))
    for _ in range(20):
        milliseconds = []
        for id_ in ids:
            step = rng.choice((1, 1000))
            at = NOW - timedelta(days=rng.randrange(3000), microseconds=rng.randrange(86_400_000_000 // step) * step)
            milliseconds.append((at - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1))
            session.execute(update(ReviewLog).where(ReviewLog.id == id_).values(reviewed_at=at))
        session.commit()
        rows = list(class_revlog_batches(session, classroom_id=classroom.id, day_starts_at_hour=6))
        text = "".join(class_revlog_csv(session, classroom_id=classroom.id, day_starts_at_hour=6))
        assert text == "".join(csv_chunks_of_batches(REVLOG_COLUMNS, rows))
        assert sorted(int(line.split(",")[1]) for line in text.splitlines()[1:]) == sorted(milliseconds)


def test_the_database_joins_a_students_revlog_lines_in_the_order_of_the_rows(session, school):
    """Each student's lines are joined by the database into one text: in the rows' order (by card, time, state,
    rating, id) however the answers were written, 3,000 of them here in a shuffled order, many at the same
    instant; and only the class's decks' cards, though the student answered others."""
    classroom, ann, ben = school
    other = deck_text(slug="other", title="Other", source="test", sections={"main": "Main"},
                      relations={"square": {"forward": "Square of {subject}?"}},
                      facts=[{"relation": "square", "subject": "7", "object": "49", "section": "main"}])
    build_deck(session, parse_deck_text(other, "other.yaml"), now=NOW - timedelta(days=60))
    session.flush()
    numbers = session.scalar(select(Deck.id).where(Deck.slug == "numbers"))
    session.execute(insert(Assignment).values(classroom_id=classroom.id, deck_id=numbers, created_at=NOW))
    cards = list(session.scalars(select(Card.id)))
    rng = random.Random(11)
    answers = [{"user_id": student.id, "card_id": rng.choice(cards), "rating": rng.randint(1, 4),
                "state_before": rng.randint(0, 3), "duration_ms": rng.choice((None, rng.randint(1, 60000))),
                "reviewed_at": NOW - timedelta(days=rng.randrange(30), microseconds=rng.choice((0, 1, 999999))),
                "due": NOW, "token": f"shuffled-{n}"}
               for n, student in enumerate(rng.choice((ann, ben)) for _ in range(3000))]
    session.execute(insert(ReviewLog), answers)
    session.commit()
    rows = list(class_revlog_batches(session, classroom_id=classroom.id, day_starts_at_hour=4))
    assert 1000 < sum(len(batch) for batch in rows) < 3024  # the other deck's answers are left out
    text = "".join(class_revlog_csv(session, classroom_id=classroom.id, day_starts_at_hour=4))
    assert text == "".join(csv_chunks_of_batches(REVLOG_COLUMNS, rows))


def test_each_revlog_card_id_is_one_students_card_with_one_first_review(session, school):
    classroom, *_students = school
    rows = list(class_revlog_rows(session, classroom_id=classroom.id))
    histories: dict[int, list[tuple]] = {}
    for row in rows:
        histories.setdefault(row[0], []).append(row)
    # Both students answered the same deck cards, yet no id mixes them.
    assert {row[8] for row in rows if row[7] == "ann"} & {row[8] for row in rows if row[7] == "ben"}
    for history in histories.values():
        assert len({(row[7], row[8]) for row in history}) == 1
        assert [row[3] for row in history].count(0) == 1 and history[0][3] == 0
        assert [row[1] for row in history] == sorted(row[1] for row in history)


def test_the_progress_csv_is_the_roster(session, school):
    classroom, _, _ = school
    roster = class_roster(session, classroom_id=classroom.id, now=NOW)
    rows = [(r.username, r.introduced, r.total, r.reviews_7d, "" if r.retention_30d is None
             else f"{r.retention_30d:.3f}", r.review_answers_30d, r.due_now,
             r.last_active.isoformat() if r.last_active else "", "; ".join(r.behind)) for r in roster]
    header = ["student", "cards_introduced", "cards_total", "reviews_7d", "retention_30d", "review_answers_30d",
              "due_now", "last_active_utc", "falling_behind"]
    text = "".join(class_progress_csv(session, classroom_id=classroom.id, now=NOW))
    assert text == in_memory(header, rows)
    assert [row["student"] for row in csv.DictReader(io.StringIO(text))] == ["ann", "ben"]


def test_a_students_history_csv_matches_the_history_page(session, school):
    _, ann, _ = school
    tz = ann.time_zone
    from flashapp.scheduling import zone

    expected = []
    for row in review_history(session, user_id=ann.id):
        review = row.review
        expected.append([review.reviewed_at.isoformat(), review.reviewed_at.astimezone(zone(tz)).isoformat(),
                         row.deck_slug, row.card_key, row.question, review.rating, review.rating.name,
                         int(review.interval.total_seconds()), format_interval(review.interval),
                         review.due.isoformat(), "" if review.duration_ms is None else review.duration_ms,
                         review.origin])
    header = ["reviewed_at_utc", "reviewed_at_local", "deck", "card_key", "question", "rating", "rating_name",
              "interval_seconds", "interval", "due_utc", "duration_ms", "done_in"]
    text = "".join(history_csv(session, user_id=ann.id, time_zone=tz))
    assert text == in_memory(header, expected)
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == 12 and table[0]["question"] == 'What is the square of 6, "quoted"?'  # newest first
    assert table[0]["reviewed_at_local"].endswith("+09:00")


def personal_data_in_memory(session, user) -> dict[str, str]:
    """data.zip's files, built the plain way: ORM objects, whole lists."""
    account = [[user.username, user.role, user.time_zone, user.created_at.isoformat()]]
    from flashapp.classroom import students_classrooms

    classes = [[c.name, c.teacher.username] for c in students_classrooms(session, user.id)]
    reviews = [[r.review.reviewed_at.isoformat(), r.deck_slug, r.card_key, r.question, r.review.rating,
                r.review.state_before, r.review.due.isoformat(),
                "" if r.review.duration_ms is None else r.review.duration_ms, r.review.origin]
               for r in review_history(session, user_id=user.id)]
    states = [[slug, key, question, state.state, "" if state.step is None else state.step, state.stability,
               state.difficulty, state.due.isoformat(), state.last_review.isoformat() if state.last_review else ""]
              for state, key, question, slug in session.execute(
                  select(CardState, Card.key, Card.question, Deck.slug).join(Card, Card.id == CardState.card_id)
                  .join(Deck, Deck.id == Card.deck_id).where(CardState.user_id == user.id)
                  .order_by(Deck.slug, Card.position))]
    return {
        "account.csv": in_memory(["username", "role", "time_zone", "created_at_utc"], account),
        "classes.csv": in_memory(["class", "teacher"], classes),
        "reviews.csv": in_memory(["reviewed_at_utc", "deck", "card_key", "question", "rating", "state_before",
                                  "due_utc", "duration_ms", "done_in"], reviews),
        "card_states.csv": in_memory(["deck", "card_key", "question", "state", "step", "stability", "difficulty",
                                      "due_utc", "last_review_utc"], states),
    }


def test_the_personal_data_zip_streams_the_four_files_of_the_plain_build(session, school):
    _, ann, _ = school
    expected = personal_data_in_memory(session, ann)
    streamed = {name: "".join(chunks) for name, chunks in personal_data_files(session, user_id=ann.id)}
    assert streamed == expected
    data = b"".join(personal_data_zip(session, user_id=ann.id, now=NOW))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["account.csv", "classes.csv", "reviews.csv", "card_states.csv"]
        assert {name: archive.read(name).decode() for name in archive.namelist()} == expected
        assert {info.date_time for info in archive.infolist()} == {(2026, 4, 1, 12, 0, 0)}
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in archive.infolist())
    assert list(csv.DictReader(io.StringIO(expected["classes.csv"]))) == [
        {"class": 'Numbers, "first" class', "teacher": "mrs-k"}]


def test_the_zip_is_written_as_it_goes(session):
    big = [[n, "x" * 50, n * 7] for n in range(20_000)]
    chunks = list(zip_chunks([("big.csv", csv_chunks(["n", "text", "seven"], big)),
                              ("small.csv", csv_chunks(["a"], [[1]]))], now=NOW))
    assert len(chunks) > 2 and all(chunks)
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.read("big.csv").decode() == in_memory(["n", "text", "seven"], big)
        assert archive.read("small.csv").decode() == "a\r\n1\r\n"
