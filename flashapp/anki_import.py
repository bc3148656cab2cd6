"""Reviews back from Anki: read an Anki export and merge its reviews of this app's cards into a student's log.

A student who studies the exported deck in Anki (or AnkiDroid) at home exports it again, with its
scheduling, and uploads it. The review log is the app's source of truth, so the reviews done in
Anki join it, marked as given in Anki, and the cards they touch are replayed from the whole log.

What is read: an `.apkg` exported with scheduling or a `.colpkg` (a whole collection), in Anki's
current format (`collection.anki21b`, an SQLite file compressed with zstd, beside a `meta` file) or
a legacy one (`collection.anki21` or `collection.anki2`, plain SQLite). The file is never trusted:
its size and the size it unpacks to are capped, and the collection is written to a temporary file
that SQLite opens read-only and checks before anything is read.

How a review is matched: its card's note has the GUID the app's export gives that note
(`genanki.guid_for(note.key)`), and the card's template number is the one the export gives the
app's card (0: the forward or grouped question, 1: the reverse). A review the app already has
(the same card at the same millisecond, however an exporter rounded it) is not added again, so
the app's own reviews that travelled to Anki in a progress export come back as nothing new, and
uploading the same file twice adds nothing.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import zipfile
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, BinaryIO

import genanki
import zstandard
from fsrs import Rating, Scheduler
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from .anki_export import TEMPLATE_ORDINALS
from .consistency import replay_into_state
from .database import write_transaction
from .errors import Invalid, NotFound
from .models import Card, Note, ReviewLog, ReviewOrigin, ReviewState, User
from .scheduling import MAX_DURATION_MS, StudyDays, insert_reviews_unless_there, study_scheduler, without_fuzz

MEBIBYTE = 1024 * 1024
# The collections a package can hold, newest format first: a current package also carries an old-format
# collection.anki2 that only tells old versions of Anki to update.
COMPRESSED_COLLECTION = "collection.anki21b"
COLLECTIONS = (COMPRESSED_COLLECTION, "collection.anki21", "collection.anki2")
# The package format versions of Anki's `meta` file this module reads (1 and 2 legacy, 3 current).
NEWEST_PACKAGE_VERSION = 3
CHUNK = MEBIBYTE
ZSTD_STEP = 1024

# Anki's kinds of review log rows that are answers (learning, review, relearning). The others are not:
# a filtered deck's preview (3), a due date set by hand (4), a reschedule of the whole deck (5).
ANSWER_KINDS = {0: ReviewState.LEARNING, 1: ReviewState.REVIEW, 2: ReviewState.RELEARNING}
# A review dated this far after the server's clock is not taken: the device's clock was wrong.
CLOCK_SLACK = timedelta(hours=1)
# The longest learning step a review log row can name, in seconds (Anki keeps steps as negative intervals).
LONGEST_STEP_SECONDS = 366 * 86_400
TOKEN_PREFIX = "anki"
# Reviews written per INSERT statement.
INSERT_BATCH = 1000

ADVICE = ("In Anki, choose Export, then either “Anki Deck Package (.apkg)” with “Include scheduling "
          "information” ticked, or “Anki Collection Package (.colpkg)”, and upload that file.")


@dataclass(frozen=True)
class ImportLimits:
    """How large an upload, and the collection inside it once unpacked, may be."""

    upload_bytes: int = 64 * MEBIBYTE
    collection_bytes: int = 512 * MEBIBYTE


@dataclass(frozen=True)
class AnkiReview:
    """One row of an Anki review log, with the note and template of its card (None: the card is not in the file)."""

    reviewed_ms: int  # when, in milliseconds since 1970 (the row's id)
    ease: int  # the button: 1 Again to 4 Easy; 0 when no button was pressed
    interval: int  # what it scheduled: days when positive, seconds when negative
    duration_ms: int
    kind: int  # 0 learning, 1 review, 2 relearning, 3 filtered, 4 manual, 5 rescheduled
    note_guid: str | None
    template: int | None


@dataclass(frozen=True)
class AnkiExport:
    """What the app reads of an Anki export: every note's GUID and every review."""

    file_format: str  # the collection read: one of COLLECTIONS
    note_guids: frozenset[str]
    reviews: tuple[AnkiReview, ...]


@dataclass(frozen=True)
class ImportReport:
    """What importing an Anki export did."""

    added: int  # reviews added to the student's log
    already_there: int  # reviews the log had (the app's own that went to Anki, or an earlier upload)
    other_cards: int  # reviews of cards that are not this app's (other decks, retired or deleted cards)
    not_answers: int  # rows that are no answer: previews, due dates set by hand, reschedules, bad dates
    cards_updated: int  # cards whose state was replayed with the added reviews

    def summary(self) -> str:
        """The report in a sentence or two, for the page and the command line."""
        def reviews(count: int) -> str:
            return f"{count} review{'' if count == 1 else 's'}"

        if self.added:
            cards = f"{self.cards_updated} card{'' if self.cards_updated == 1 else 's'}"
            parts = [f"Added {reviews(self.added)} from Anki ({cards} brought up to date)."]
        elif self.already_there:
            parts = ["No new reviews: this history already has every review of this app's cards in this file."]
        else:
            parts = ["No reviews of this app's cards to add from this file."]
        if self.already_there and self.added:
            parts.append(f"{reviews(self.already_there)} were here already.")
        ignored = []
        if self.other_cards:
            ignored.append(f"{reviews(self.other_cards)} of cards that are not in this app's decks")
        if self.not_answers:
            ignored.append(f"{self.not_answers} entr{'y' if self.not_answers == 1 else 'ies'} that are no answer "
                           "(previews, due dates set by hand, reschedules)")
        if ignored:
            parts.append("Ignored: " + " and ".join(ignored) + ".")
        return " ".join(parts)


# ---------------------------------------------------------------- reading the file

def read_anki_export(source: str | os.PathLike[str] | BinaryIO, *, limits: ImportLimits = ImportLimits()
                     ) -> AnkiExport:
    """Read an Anki package (.apkg or .colpkg, current or legacy format) from a path or a seekable binary file.

    Raises Invalid, with a message saying what to do, for a file too large, one that is not an
    Anki export, a collection that unpacks too large, and a damaged one.
    """
    size = _size(source)
    if size > limits.upload_bytes:
        raise Invalid(f"This file is {_megabytes(size)}; an upload from Anki may be at most "
                      f"{_megabytes(limits.upload_bytes)}. Export only the deck from this app "
                      "(an .apkg with scheduling) rather than the whole collection.", field="file")
    try:
        with zipfile.ZipFile(source) as archive:
            names = set(archive.namelist())
            member = next((name for name in COLLECTIONS if name in names), None)
            if member is None:
                raise _not_an_export()
            _check_package_version(archive, names)
            with tempfile.TemporaryDirectory(prefix="flashapp-anki-import-") as folder:
                collection = Path(folder) / "collection.sqlite"
                with archive.open(member) as packed, collection.open("xb") as unpacked:
                    if member == COMPRESSED_COLLECTION:
                        _copy_zstd(packed, unpacked, limit=limits.collection_bytes)
                    else:
                        _copy(packed, unpacked, limit=limits.collection_bytes)
                return _read_collection(collection, file_format=member)
    except zipfile.BadZipFile:
        raise _not_an_export() from None
    except (zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, zstandard.ZstdError):
        # Encrypted or unknown compression, a truncated member, a broken zstd frame.
        raise _damaged() from None


def _size(source: str | os.PathLike[str] | BinaryIO) -> int:
    if isinstance(source, (str, os.PathLike)):
        return os.path.getsize(source)
    position = source.tell()
    size = source.seek(0, os.SEEK_END)
    source.seek(position)
    return size


def _megabytes(size: int) -> str:
    return f"{size / MEBIBYTE:.1f} MB" if size < 10 * MEBIBYTE else f"{round(size / MEBIBYTE)} MB"


def _not_an_export() -> Invalid:
    return Invalid("This file is not an Anki export. " + ADVICE, field="file")


def _damaged() -> Invalid:
    return Invalid("This Anki export is damaged and cannot be read. Export it from Anki again and upload "
                   "the new file.", field="file")


def _too_large(limit: int) -> Invalid:
    return Invalid(f"The collection in this file unpacks to more than {_megabytes(limit)}, more than this "
                   "server reads. Export only the deck from this app (an .apkg with scheduling) rather "
                   "than the whole collection.", field="file")


def _check_package_version(archive: zipfile.ZipFile, names: set[str]) -> None:
    """Refuse a package whose `meta` names a format newer than this module reads."""
    if "meta" not in names or archive.getinfo("meta").file_size > 1024:
        return
    meta = archive.read("meta")
    # The message's first field is the version, a varint (field 1, wire type 0: tag byte 0x08).
    if len(meta) >= 2 and meta[0] == 0x08 and meta[1] < 0x80 and meta[1] > NEWEST_PACKAGE_VERSION:
        raise Invalid("This file was made by a newer version of Anki than this app reads. In Anki's export "
                      "dialog, tick “Support older Anki versions” and upload the new file.", field="file")


def _copy(packed: IO[bytes], unpacked: IO[bytes], *, limit: int) -> None:
    written = 0
    while chunk := packed.read(CHUNK):
        written += len(chunk)
        if written > limit:
            raise _too_large(limit)
        unpacked.write(chunk)


def _copy_zstd(packed: IO[bytes], unpacked: IO[bytes], *, limit: int) -> None:
    # Fed a little at a time: a zstd block of 4 bytes can stand for 128 KiB, so each step unpacks at most
    # a few dozen megabytes, whatever the frame claims, and the limit stops the whole long before memory.
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    written = 0
    while chunk := packed.read(ZSTD_STEP):
        data = decompressor.decompress(chunk)
        written += len(data)
        if written > limit:
            raise _too_large(limit)
        unpacked.write(data)
        if decompressor.eof:
            break
    if not decompressor.eof:
        raise _damaged()  # the frame was cut short


_REVIEWS = """
SELECT revlog.id, revlog.ease, revlog.ivl, revlog.time, revlog.type, notes.guid, cards.ord
FROM revlog LEFT JOIN cards ON cards.id = revlog.cid LEFT JOIN notes ON notes.id = cards.nid
ORDER BY revlog.id
"""


def _read_collection(path: Path, *, file_format: str) -> AnkiExport:
    """Read the notes' GUIDs and the review log of an unpacked collection, opened read-only."""
    # Read-only and immutable: nothing is ever written to the file, and no journal is looked for.
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True)
    # Anki's name indexes sort with a case-blind collation of its own; SQLite needs one by that name to
    # check them.
    connection.create_collation("unicase", _unicase)
    try:
        # The file is someone else's: its schema may not run functions, and it must be whole.
        connection.execute("PRAGMA trusted_schema = OFF")
        if connection.execute("PRAGMA quick_check").fetchone() != ("ok",):
            raise _damaged()
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"notes", "cards", "revlog"} <= tables:
            raise _not_an_export()
        guids = frozenset(str(guid) for (guid,) in connection.execute("SELECT guid FROM notes"))
        reviews = tuple(_review(row) for row in connection.execute(_REVIEWS))
    except sqlite3.DatabaseError as error:
        if isinstance(error, sqlite3.OperationalError) and "no such column" in str(error):
            raise _not_an_export() from None
        raise _damaged() from None
    finally:
        connection.close()
    return AnkiExport(file_format=file_format, note_guids=guids, reviews=reviews)


def _unicase(first: str, second: str) -> int:
    first, second = first.casefold(), second.casefold()
    return (first > second) - (first < second)


def _review(row: tuple[object, ...]) -> AnkiReview:
    reviewed, ease, interval, duration, kind, guid, template = row
    try:
        return AnkiReview(reviewed_ms=_integer(reviewed), ease=_integer(ease), interval=_integer(interval),
                          duration_ms=_integer(duration), kind=_integer(kind),
                          note_guid=None if guid is None else str(guid),
                          template=None if template is None else _integer(template))
    except (TypeError, ValueError):
        raise _damaged() from None


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not an integer: {value!r}")
    return value


# ---------------------------------------------------------------- merging into the review log

def app_cards_by_anki_card(session: Session) -> dict[tuple[str, int], int]:
    """Each active card of the app by the (note GUID, template number) its Anki export gives it."""
    cards: dict[tuple[str, int], int] = {}
    rows = session.execute(select(Card.id, Card.template, Note.key).join(Note, Note.id == Card.note_id)
                           .where(Card.retired.is_(False), Note.retired.is_(False),
                                  Card.template.in_(list(TEMPLATE_ORDINALS))))
    for card_id, template, key in rows:
        place = (genanki.guid_for(key), TEMPLATE_ORDINALS[template])
        # A note's forward card takes the first template before a grouped one, as the export writes it.
        if place not in cards or template == "forward":
            cards[place] = card_id
    return cards


def _all_app_guids(session: Session) -> set[str]:
    return {genanki.guid_for(key) for key in session.scalars(select(Note.key))}


def import_anki_reviews(session: Session, scheduler: Scheduler, *, user_id: int, export: AnkiExport,
                        now: datetime) -> ImportReport:
    """Merge the reviews of an Anki export into a student's review log and replay the cards they touch.

    Only reviews of the app's active cards are taken, and only those the log does not have: the
    same card at the same millisecond is the same review (within a millisecond either way, for
    exporters that round). Each added review is marked as given in Anki; its rating is the button,
    its duration Anki's (capped as the app caps), its due date the interval Anki scheduled, counted
    in the student's study days; the last interval of every review of a card it touches is worked
    out again, as a review brought back can fall between two the log had. Rows that are no answer
    (previews in a filtered deck, due dates set by hand, reschedules) are counted, not taken; so
    are reviews dated later than `now` plus an hour. One write transaction: a refusal (Invalid)
    changes nothing, and a second import of the same file adds nothing, even when two run at once.
    """
    with write_transaction(session):
        time_zone = session.scalar(select(User.time_zone).where(User.id == user_id))
        if time_zone is None:
            raise NotFound("There is no such account.")
        if not export.note_guids & _all_app_guids(session):
            raise Invalid("This Anki export holds none of this app's cards: it is a deck of another app or of "
                          "someone else's making. Upload an export of a deck you downloaded here.", field="file")
        if not export.reviews:
            raise Invalid("This Anki export holds no reviews. " + ADVICE, field="file")
        if session.get_bind().dialect.name == "postgresql":
            # As `flashapp check --fix` does: no answer slips in between reading the log and replaying it.
            session.execute(text("LOCK TABLE card_state, review_log IN SHARE ROW EXCLUSIVE MODE"))
        rules = study_scheduler(scheduler)
        days = StudyDays(time_zone, rules.day_starts_at_hour)
        cards = app_cards_by_anki_card(session)
        latest = now + CLOCK_SLACK
        answers: list[tuple[int, AnkiReview]] = []
        other_cards = not_answers = 0
        for review in export.reviews:
            card_id = cards.get((review.note_guid, review.template)) if review.note_guid is not None and \
                review.template is not None else None
            if card_id is None:
                other_cards += 1
            elif (review.kind not in ANSWER_KINDS or review.ease not in (1, 2, 3, 4)
                  or not 0 < review.reviewed_ms <= _milliseconds(latest)):
                not_answers += 1
            else:
                answers.append((card_id, review))
        known = _known_times(session, user_id=user_id, card_ids={card_id for card_id, _ in answers})
        rows: list[dict[str, object]] = []
        touched: set[int] = set()
        already_there = 0
        for card_id, review in answers:
            times = known.setdefault(card_id, [])
            micros = review.reviewed_ms * 1000
            if _has_time(times, micros):
                already_there += 1
                continue
            reviewed_at = _from_milliseconds(review.reviewed_ms)
            # Anki's kind of the answer, unless it is the first the card ever had.
            state_before = ANSWER_KINDS[review.kind] if times and times[0] < micros else ReviewState.NEW
            rows.append({"user_id": user_id, "card_id": card_id, "rating": Rating(review.ease),
                         "reviewed_at": reviewed_at, "duration_ms": max(0, min(review.duration_ms, MAX_DURATION_MS)),
                         "state_before": state_before,
                         "due": _due(review, reviewed_at, days=days, maximum_days=rules.maximum_interval),
                         "token": f"{TOKEN_PREFIX}:{user_id}:{card_id}:{review.reviewed_ms}",
                         # Set by the card's replay below, once the reviews either side of it are in.
                         "last_interval": 0, "origin": ReviewOrigin.ANKI})
            _insert_time(times, micros)
            touched.add(card_id)
        # Each review brought back has its own token: one that an upload at the same moment put in first is
        # left as it is, and counted as already there.
        added = sum(insert_reviews_unless_there(session.connection(), rows[start:start + INSERT_BATCH])
                    for start in range(0, len(rows), INSERT_BATCH))
        already_there += len(rows) - added
        added_cards = touched if added else set()
        plain = without_fuzz(scheduler)
        for card_id in sorted(added_cards):
            replay_into_state(session, plain, user_id=user_id, card_id=card_id)
    return ImportReport(added=added, already_there=already_there, other_cards=other_cards,
                        not_answers=not_answers, cards_updated=len(added_cards))


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# The latest time a review may carry: datetime's own limit, less a year for the interval it scheduled.
LATEST_MS = (datetime(9998, 1, 1, tzinfo=timezone.utc) - EPOCH) // timedelta(milliseconds=1)


def _milliseconds(at: datetime) -> int:
    return min((at - EPOCH) // timedelta(milliseconds=1), LATEST_MS)


def _from_milliseconds(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def _known_times(session: Session, *, user_id: int, card_ids: Iterable[int]) -> dict[int, list[int]]:
    """The times of the user's reviews of these cards, in microseconds since 1970, sorted, by card."""
    known: dict[int, list[int]] = {}
    wanted = sorted(set(card_ids))
    for start in range(0, len(wanted), 500):
        rows = session.execute(select(ReviewLog.card_id, ReviewLog.reviewed_at)
                               .where(ReviewLog.user_id == user_id, ReviewLog.card_id.in_(wanted[start:start + 500])))
        for card_id, reviewed_at in rows:
            known.setdefault(card_id, []).append((reviewed_at - EPOCH) // timedelta(microseconds=1))
    for times in known.values():
        times.sort()
    return known


def _has_time(times: list[int], micros: int) -> bool:
    """Whether a review within a millisecond either side of `micros` is among these sorted times."""
    index = bisect_right(times, micros - 1000)
    return index < len(times) and times[index] < micros + 1000


def _insert_time(times: list[int], micros: int) -> None:
    times.insert(bisect_right(times, micros), micros)


def _due(review: AnkiReview, reviewed_at: datetime, *, days: StudyDays, maximum_days: int) -> datetime:
    """When the review scheduled the card: Anki's interval, in study days or (for a learning step) seconds."""
    if review.interval > 0:
        return days.due_after(reviewed_at, min(review.interval, maximum_days))
    return reviewed_at + timedelta(seconds=min(-review.interval, LONGEST_STEP_SECONDS))


def import_anki_file(session: Session, scheduler: Scheduler, *, user_id: int,
                     source: str | os.PathLike[str] | BinaryIO, now: datetime,
                     limits: ImportLimits = ImportLimits()) -> ImportReport:
    """Read an Anki export and merge its reviews into a student's log (`read_anki_export`, `import_anki_reviews`)."""
    export = read_anki_export(source, limits=limits)
    return import_anki_reviews(session, scheduler, user_id=user_id, export=export, now=now)
