"""Every CSV file the app writes, and the zip of a student's own data, as streams of chunks.

Each export is a generator: it reads the database in batches and yields CSV text (or zip
bytes) a few hundred rows at a time, so a download of any size holds one batch in memory
and starts at once. Columns and file names are part of what teachers and students rely on:
change them only on purpose. The web sends these chunks as they come; nothing here needs
a request.

Every CSV goes through one writer, `csv_chunks_of_batches`, which keeps text cells from being
read as formulas by a spreadsheet (see `FORMULA_STARTS`). It tells text from numbers by type:
an export passes its numbers as `int` or `float` (they are written as they are, negative ones
too) and everything else as text.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from itertools import islice
from operator import itemgetter
from typing import Any, TypeAlias

from fsrs import Rating
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Integer,
    Select,
    String,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import InstrumentedAttribute, Session

from .models import Card, CardState, Classroom, Deck, Enrollment, ReviewLog, User
from .prepared import driver_runs
from .scheduling import format_interval, zone
from .stats import REVLOG_COLUMNS, class_deck_ids, class_roster, epoch_microseconds

ROWS_PER_CHUNK = 500
Query: TypeAlias = Select[*tuple[Any, ...]]
# Rows fetched from the database at a time (a server-side cursor on PostgreSQL).
BATCH = 2000

PROGRESS_COLUMNS = ["student", "cards_introduced", "cards_total", "reviews_7d", "retention_30d",
                    "review_answers_30d", "due_now", "last_active_utc", "falling_behind"]
HISTORY_COLUMNS = ["reviewed_at_utc", "reviewed_at_local", "deck", "card_key", "question", "rating",
                   "rating_name", "interval_seconds", "interval", "due_utc", "duration_ms", "done_in"]
ACCOUNT_COLUMNS = ["username", "role", "time_zone", "created_at_utc"]
CLASSES_COLUMNS = ["class", "teacher"]
REVIEWS_COLUMNS = ["reviewed_at_utc", "deck", "card_key", "question", "rating", "state_before", "due_utc",
                   "duration_ms", "done_in"]
CARD_STATES_COLUMNS = ["deck", "card_key", "question", "state", "step", "stability", "difficulty", "due_utc",
                       "last_review_utc"]


# A spreadsheet reads a cell that starts with one of these as a formula (OWASP, "CSV Injection"):
# such a text cell is written with a single quote in front, which a spreadsheet shows as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Separators a spreadsheet may split an unquoted cell on besides the comma (a semicolon in many
# locales, a tab): a text cell holding one is written in double quotes, so a formula after it
# cannot become a cell of its own.
OTHER_SEPARATORS = (";", "\t")


# What a batch's plain CSV text holds when it has a text cell to neutralise: one of these
# characters (a cell starting with a carriage return is always written in double quotes), or a
# minus sign starting a cell (hyphens inside names and dates are common). A first look, as fast
# as memchr, before the cells are looked at.
_FIRST_LOOK = ("=", "+", "@", *OTHER_SEPARATORS, '"', ",-", "\n-")


def _is_risky(value: Any) -> bool:
    return isinstance(value, str) and (value.startswith(FORMULA_STARTS)
                                       or any(separator in value for separator in OTHER_SEPARATORS))


def _has_risky_text(batch: Sequence[Sequence[Any]]) -> bool:
    """Whether a batch of rows holds a text cell to neutralise.

    Looks a column at a time: a column without text is passed over on the types of its cells,
    a text column is checked on its distinct values, so that a batch of numbers and a few
    repeated names (a million-row revlog) costs little.
    """
    try:
        for index in range(max(map(len, batch), default=0)):
            cell = itemgetter(index)
            if not any(issubclass(kind, str) for kind in set(map(type, map(cell, batch)))):
                continue
            if any(_is_risky(value) for value in set(map(cell, batch))):
                return True
    except (IndexError, TypeError):  # rows of different lengths, or a cell that cannot be hashed
        return any(_is_risky(value) for row in batch for value in row)
    return False


def _neutralised(row: Sequence[Any]) -> list[Any]:
    return ["'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value
            for value in row]


def csv_line(row: Sequence[Any]) -> str:
    """One row as a CSV line of `csv_chunks_of_batches`, its CRLF included (neutralised as it is there)."""
    buffer = io.StringIO()
    if any(_is_risky(value) for value in row):
        csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC).writerow(_neutralised(row))
    else:
        csv.writer(buffer).writerow(row)
    return buffer.getvalue()


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[Any]], *,
               rows_per_chunk: int = ROWS_PER_CHUNK) -> Iterator[str]:
    """CSV text for a header and its rows (Python's csv dialect, CRLF lines), a chunk of rows at a time."""
    return csv_chunks_of_batches(header, batched(rows, rows_per_chunk))


def csv_chunks_of_batches(header: Sequence[str], batches: Iterable[Sequence[Sequence[Any]]]) -> Iterator[str]:
    """CSV text for a header and its rows given in batches: one chunk per batch (the header goes with the first).

    A text cell starting with one of `FORMULA_STARTS` gets a single quote in front; a row with
    such a cell, or with a text cell holding one of `OTHER_SEPARATORS`, has every text cell
    written in double quotes (OWASP's advice). Numbers (`int`, `float`) are written as they are.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for batch in batches:
        start = buffer.tell()
        writer.writerows(batch)
        written = buffer.getvalue()[start:]
        if ((written.startswith("-") or any(mark in written for mark in _FIRST_LOOK))
                and _has_risky_text(batch)):
            buffer.seek(start)
            buffer.truncate()
            for row in batch:
                buffer.write(csv_line(row))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def batched(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Rows in lists of `size` (the last one shorter)."""
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _stream(session: Session, query: Query) -> Iterator[Any]:
    for batch in _stream_batches(session, query):
        yield from batch


def _stream_batches(session: Session, query: Query) -> Iterator[Sequence[Any]]:
    # Core rows on the session's connection (and transaction): no ORM work per row.
    result = session.connection().execute(query.execution_options(stream_results=True, yield_per=BATCH))
    return iter(result.partitions())


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _blank_if_none(value: Any) -> Any:
    return "" if value is None else value


# --- The teacher's exports ---------------------------------------------------------------------

def class_progress_csv(session: Session, *, classroom_id: int, now: datetime) -> Iterator[str]:
    """The class roster as CSV (`class-<id>-progress.csv`): one line per student, by name."""
    def rows() -> Iterator[tuple[Any, ...]]:
        for r in class_roster(session, classroom_id=classroom_id, now=now):
            retention = r.retention_30d
            yield (r.username, r.introduced, r.total, r.reviews_7d,
                   "" if retention is None else f"{retention:.3f}", r.review_answers_30d, r.due_now,
                   _iso(r.last_active), "; ".join(r.behind))

    return csv_chunks(PROGRESS_COLUMNS, rows())


# A card_id of the revlog is one student's card: the student's id times this, plus the deck's card id.
REVLOG_CARDS_PER_STUDENT = 1_000_000_000
RevlogRow: TypeAlias = tuple[int, int, int, int, int, str, int, str, int]


def revlog_card_id(*, user_id: int, card_id: int) -> int:
    """The revlog's card_id for one student's card: the optimizers group reviews by it, so no two students share one."""
    return user_id * REVLOG_CARDS_PER_STUDENT + card_id


# A student's answers in the order of the index on (user_id, card_id, reviewed_at, state_before, rating), column
# by column to its end (each entry ends with the answer's id), so nothing is sorted: ordered by id straight after
# the time, SQLite sorted every student's answers again in a temporary tree.
_STUDENT_INDEX_ORDER = (ReviewLog.card_id, ReviewLog.reviewed_at, ReviewLog.state_before, ReviewLog.rating,
                        ReviewLog.id)


def _class_students(session: Session, classroom_id: int) -> Sequence[Any]:
    """The class's students as (id, name, time zone), by name."""
    return session.execute(
        select(User.id, User.username, User.time_zone).join(Enrollment, Enrollment.user_id == User.id)
        .where(Enrollment.classroom_id == classroom_id).order_by(User.username)).all()


def _class_answers(session: Session, classroom_id: int,
                   columns: Sequence[ColumnElement[Any] | InstrumentedAttribute[Any]],
                   ) -> Iterator[tuple[int, str, str, list[Any]]]:
    """The class's students (by name) with their answers to the class's cards, in batches of the driver's rows:
    (user id, name, time zone, rows of `columns`, the first of which is the card's id).

    One student at a time, each read in the order of the index on (user_id, card_id, reviewed_at,
    state_before, rating), so the database never sorts the class's log.
    """
    deck_ids = class_deck_ids(session, classroom_id)
    # The cards of the class's decks (retired ones too: their answers are history), kept here:
    # a join to the card table per review would cost the database more than the rest of the row.
    cards = set(session.scalars(select(Card.id).where(Card.deck_id.in_(deck_ids))))
    students = _class_students(session, classroom_id)
    answers = driver_runs(session.connection(), select(*columns).where(ReviewLog.user_id == bindparam("user_id"))
                          .order_by(*_STUDENT_INDEX_ORDER), batch=BATCH)
    for user_id, username, time_zone in students:
        for batch in answers({"user_id": user_id}):
            yield user_id, username, time_zone, [row for row in batch if row[0] in cards]


def _revlog_line(session: Session) -> ColumnElement[str]:
    """An answer's line of the revlog CSV, written by the database: the numbers of `class_revlog_batches`' row
    around the student's cells (the bound `cells`, written by `csv_line`), then CRLF.

    Its time is worked out with the float arithmetic `class_revlog_batches` uses (a double divided, multiplied,
    then truncated), so the two agree to the millisecond.
    """
    microseconds = cast(epoch_microseconds(session, ReviewLog.reviewed_at), Float)
    milliseconds: ColumnElement[Any] = microseconds / 1_000_000 * 1000
    if session.get_bind().dialect.name == "postgresql":
        milliseconds = func.trunc(milliseconds)  # PostgreSQL's cast to an integer rounds; Python's int() truncates
    numbers = [bindparam("first_id", type_=BigInteger) + ReviewLog.card_id, cast(milliseconds, BigInteger),
               ReviewLog.rating, ReviewLog.state_before, func.coalesce(ReviewLog.duration_ms, 0)]
    if session.get_bind().dialect.name == "sqlite":
        # One printf instead of sixteen concatenations and casts: the export takes about a quarter less time.
        # Every number is a whole one (`%d` writes it as the casts to text did); the cells go in as they are.
        return func.printf(literal("%d,%d,%d,%d,%d,%s%d\r\n"), *numbers, bindparam("cells", type_=String),
                           ReviewLog.card_id, type_=String)
    line: ColumnElement[str] = cast(numbers[0], String)
    for number in numbers[1:]:
        line = line.concat(",").concat(cast(number, String))
    return (line.concat(",").concat(bindparam("cells", type_=String)).concat(cast(ReviewLog.card_id, String))
            .concat("\r\n"))


def class_revlog_batches(session: Session, *, classroom_id: int,
                         day_starts_at_hour: int = 4) -> Iterator[list[RevlogRow]]:
    """The class's answers in the FSRS optimiser's revlog layout (times in ms), in batches.

    card_id is one student's card (`revlog_card_id`), so each id's history is one student's
    and starts with its one first review. review_state is the card's state when it was
    answered: 0 new, 1 learning, 2 review, 3 relearning. Each row carries the student's time
    zone and the hour their study day starts, which the optimizers count elapsed days by,
    then the student's name and the deck's own card id.
    Ordered by student name, card, then time (answers given at the same moment by state, rating
    and id).
    """
    columns = (ReviewLog.card_id, epoch_microseconds(session, ReviewLog.reviewed_at),
               type_coerce(ReviewLog.rating, Integer), type_coerce(ReviewLog.state_before, Integer),
               ReviewLog.duration_ms)
    for user_id, username, time_zone, batch in _class_answers(session, classroom_id, columns):
        first_id = revlog_card_id(user_id=user_id, card_id=0)
        # The very float arithmetic of int(reviewed_at.timestamp() * 1000), without making a datetime.
        yield [(first_id + card_id, int(at_us / 1_000_000 * 1000), rating, state, duration or 0, time_zone,
                day_starts_at_hour, username, card_id)
               for card_id, at_us, rating, state, duration in batch]


def class_revlog_rows(session: Session, *, classroom_id: int, day_starts_at_hour: int = 4) -> Iterator[RevlogRow]:
    """The rows of `class_revlog_batches`, one at a time."""
    for batch in class_revlog_batches(session, classroom_id=classroom_id, day_starts_at_hour=day_starts_at_hour):
        yield from batch


def class_revlog_csv(session: Session, *, classroom_id: int, day_starts_at_hour: int = 4) -> Iterator[str]:
    """The class's review history as CSV (`class-<id>-revlog.csv`): the rows of `class_revlog_batches`, as
    `csv_chunks_of_batches` writes them, one student's lines at a time.

    Only the student's time zone and name are text, the same on all their lines: they are written as CSV
    cells once per student (`csv_line`), and the database writes each line of numbers around them
    (`_revlog_line`) and joins a student's lines into one text (`_student_lines`). Python handles one value
    per student, not one per answer: a large export holds the interpreter lock hardly at all while other
    students' pages are served, where reading each answer's line as a row of its own took the lock back
    from them a million times. Memory follows the student with the most answers (about 45 bytes each).
    """
    yield csv_line(REVLOG_COLUMNS)
    students = _class_students(session, classroom_id)
    lines = _student_lines(session, class_deck_ids(session, classroom_id))
    for user_id, username, time_zone in students:
        # The student's cells as they stand between the answer's numbers and the deck's card id: written in a
        # line of their own that ends with a number, which neither quoting nor neutralising ever changes.
        cells = csv_line([time_zone, day_starts_at_hour, username, 0]).removesuffix("0\r\n")
        text = lines({"user_id": user_id, "first_id": revlog_card_id(user_id=user_id, card_id=0), "cells": cells})
        if text:
            yield text


def _student_lines(session: Session, deck_ids: Sequence[int]) -> Callable[[dict[str, Any]], str | None]:
    """A student's lines of the revlog CSV (`_revlog_line`) to the cards of the decks, joined by the database
    in the order of `class_revlog_batches`: by card, then time (then state, rating and id).

    Read in the order of the index on (user_id, card_id, reviewed_at, state_before, rating), to its end: nothing
    is sorted. PostgreSQL orders the aggregate itself; SQLite joins the rows in the order the subquery gives them,
    as it does for an aggregate over an ordered subquery (`tests/unit/test_exports.py` holds it to that on both
    databases, with answers written out of order). The statement is compiled once for all the class's students.
    """
    if not deck_ids:
        return lambda _values: None
    answers = (ReviewLog.user_id == bindparam("user_id"),
               # The decks' ids written into the statement (whole numbers), which is compiled once for every student.
               ReviewLog.card_id.in_(select(Card.id).where(Card.deck_id.in_(
                   [literal_column(str(int(deck_id))) for deck_id in deck_ids])).scalar_subquery()))
    line = _revlog_line(session)
    query: Select[tuple[str | None]]
    if session.get_bind().dialect.name == "postgresql":
        query = select(func.string_agg(line, aggregate_order_by(literal_column("''"), *_STUDENT_INDEX_ORDER)))
        query = query.where(*answers)
    else:
        ordered = select(line.label("line")).where(*answers).order_by(*_STUDENT_INDEX_ORDER).subquery()
        query = select(func.group_concat(ordered.c.line, literal_column("''")))
    runs = driver_runs(session.connection(), query, batch=BATCH, server_side=False)

    def run(values: dict[str, Any]) -> str | None:
        rows = runs(values)
        try:
            batch = next(rows, None)
        finally:
            rows.close()
        return batch[0][0] if batch else None

    return run


# --- A user's own exports ----------------------------------------------------------------------

def _history_query(user_id: int) -> Query:
    """A user's answers, newest first, with each card's key and question and its deck's slug."""
    return (select(ReviewLog.reviewed_at, ReviewLog.due, ReviewLog.rating, ReviewLog.state_before,
                   ReviewLog.duration_ms, Card.key, Card.question, Deck.slug, ReviewLog.origin)
            .join(Card, Card.id == ReviewLog.card_id).join(Deck, Deck.id == Card.deck_id)
            .where(ReviewLog.user_id == user_id)
            .order_by(ReviewLog.reviewed_at.desc(), ReviewLog.id.desc()))


def history_csv(session: Session, *, user_id: int, time_zone: str) -> Iterator[str]:
    """A user's review history as CSV (`flashapp-history-<username>.csv`), newest first.

    Local times are in `time_zone` (the user's own).
    """
    tz = zone(time_zone)

    def rows() -> Iterator[tuple[Any, ...]]:
        for at, due, rating, _state, duration, key, question, slug, origin in _stream(session,
                                                                                      _history_query(user_id)):
            interval = due - at
            yield (at.isoformat(), at.astimezone(tz).isoformat(), slug, key, question, int(rating),
                   Rating(rating).name, int(interval.total_seconds()), format_interval(interval), due.isoformat(),
                   _blank_if_none(duration), str(origin))

    return csv_chunks(HISTORY_COLUMNS, rows())


def _account_rows(session: Session, user_id: int) -> Iterator[tuple[Any, ...]]:
    user = session.get_one(User, user_id)
    yield user.username, str(user.role), user.time_zone, user.created_at.isoformat()


def _classes_rows(session: Session, user_id: int) -> Iterator[tuple[Any, ...]]:
    teacher = User.__table__.alias("teacher")
    yield from session.execute(
        select(Classroom.name, teacher.c.username).join(Enrollment, Enrollment.classroom_id == Classroom.id)
        .join(teacher, teacher.c.id == Classroom.teacher_id)
        .where(Enrollment.user_id == user_id).order_by(Classroom.name, Classroom.id))


def _reviews_rows(session: Session, user_id: int) -> Iterator[tuple[Any, ...]]:
    for at, due, rating, state_before, duration, key, question, slug, origin in _stream(session,
                                                                                        _history_query(user_id)):
        yield (at.isoformat(), slug, key, question, int(rating), int(state_before), due.isoformat(),
               _blank_if_none(duration), str(origin))


def _card_states_rows(session: Session, user_id: int) -> Iterator[tuple[Any, ...]]:
    query = (select(Deck.slug, Card.key, Card.question, CardState.state, CardState.step, CardState.stability,
                    CardState.difficulty, CardState.due, CardState.last_review)
             .join(Card, Card.id == CardState.card_id).join(Deck, Deck.id == Card.deck_id)
             .where(CardState.user_id == user_id).order_by(Deck.slug, Card.position, Card.id))
    for slug, key, question, state, step, stability, difficulty, due, last_review in _stream(session, query):
        yield (slug, key, question, int(state), _blank_if_none(step), stability, difficulty, due.isoformat(),
               _iso(last_review))


def personal_data_files(session: Session, *, user_id: int) -> Iterator[tuple[str, Iterator[str]]]:
    """The files of a user's `data.zip`, by name, each a stream of CSV text."""
    yield "account.csv", csv_chunks(ACCOUNT_COLUMNS, _account_rows(session, user_id))
    yield "classes.csv", csv_chunks(CLASSES_COLUMNS, _classes_rows(session, user_id))
    yield "reviews.csv", csv_chunks(REVIEWS_COLUMNS, _reviews_rows(session, user_id))
    yield "card_states.csv", csv_chunks(CARD_STATES_COLUMNS, _card_states_rows(session, user_id))


class _Collector:
    """A write-only stream that keeps what is written until it is taken: zipfile writes into it."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def zip_chunks(files: Iterable[tuple[str, Iterable[str]]], *, now: datetime) -> Iterator[bytes]:
    """A deflated zip of text files (UTF-8), written as it goes: bytes are yielded as each chunk is compressed.

    Every member is dated `now` (UTC).
    """
    out = _Collector()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, chunks in files:
            info = zipfile.ZipInfo(name, date_time=now.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as member:
                for chunk in chunks:
                    member.write(chunk.encode("utf-8"))
                    if data := out.take():
                        yield data
            if data := out.take():
                yield data
    if data := out.take():
        yield data


def personal_data_zip(session: Session, *, user_id: int, now: datetime) -> Iterator[bytes]:
    """Everything the app keeps about a user, as CSV files in one zip (`flashapp-<username>-data.zip`).

    account.csv, classes.csv, reviews.csv (newest first) and card_states.csv.
    """
    return zip_chunks(personal_data_files(session, user_id=user_id), now=now)


def class_file_name(class_name: str, kind: str, *, day: date) -> str:
    """A download's file name from the class's name and the day: 'anatomy-1-progress-2026-03-02.csv'.

    Only ASCII letters, digits and hyphens, so that it is safe in a header and on every file system.
    """
    plain = unicodedata.normalize("NFKD", class_name).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:60].strip("-") or "class"
    return f"{slug}-{kind}-{day.isoformat()}.csv"
