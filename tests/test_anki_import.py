"""Reviews back from Anki, proven with the official `anki` package.

The app's plain deck export goes into a fresh Anki collection; the app's own answers go into Anki's
review log as a progress export carries them; Anki then answers the cards over simulated days
through its own scheduler, and exports (a deck package with scheduling or a whole collection, in the
current and the legacy formats). Imported into the app, the review log must be the union of the
app's answers and Anki's, every card state the replay of its reviews, and a second import a no-op.
"""

from __future__ import annotations

import io
import sqlite3
import zipfile
from datetime import datetime, timedelta, timezone

import genanki
import pytest
import zstandard
from fsrs import Rating
from sqlalchemy import func, select

from flashapp.anki_export import export_anki_package
from flashapp.anki_import import ImportLimits, import_anki_file, read_anki_export
from flashapp.consistency import check_database
from flashapp.decksource import parse_deck_text
from flashapp.errors import Invalid
from flashapp.generation import build_deck
from flashapp.models import Card, CardState, Deck, ReviewLog, ReviewOrigin, ReviewState, User
from flashapp.scheduling import MAX_DURATION_MS, StudyDays, answer_card
from tests.anki_study import EXPORT_KINDS, export, import_package, new_collection, other_app_note, revlog, study
from tests.helpers import PLANETS, T0

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
AFTER = T0 + timedelta(days=40)  # "now" when the file is uploaded
ORD = {"forward": 0, "grouped": 0, "reverse": 1}
KIND = {ReviewState.NEW: 0, ReviewState.LEARNING: 0, ReviewState.REVIEW: 1, ReviewState.RELEARNING: 2}
# The app's own answers before the student goes home: (card position, rating, when). The first is
# given 123.999 ms into its second, so an exporter that rounds writes the next millisecond.
APP_ANSWERS = [(0, Rating.Good, T0 + timedelta(microseconds=123_999)), (0, Rating.Good, T0 + timedelta(minutes=11)),
               (1, Rating.Again, T0 + timedelta(minutes=1)), (1, Rating.Good, T0 + timedelta(minutes=3)),
               (0, Rating.Hard, T0 + timedelta(days=1, hours=2))]


def milliseconds(at: datetime) -> int:
    return (at - EPOCH) // timedelta(milliseconds=1)


@pytest.fixture
def planets(session):
    """The planets deck built, and a student in UTC; (deck, the student's id)."""
    build_deck(session, parse_deck_text(PLANETS), now=T0)
    student = User(username="ann", password_hash="x", time_zone="UTC")
    session.add(student)
    session.commit()
    return session.scalar(select(Deck).where(Deck.slug == "planets")), student.id


def cards_in_order(session, deck) -> list[Card]:
    return list(session.scalars(select(Card).where(Card.deck_id == deck.id).order_by(Card.position)))


def answer_in_the_app(session, scheduler, deck, user_id: int) -> list[ReviewLog]:
    cards = cards_in_order(session, deck)
    for number, (position, rating, at) in enumerate(APP_ANSWERS):
        answer_card(session, scheduler, user_id=user_id, card_id=cards[position].id, rating=rating,
                    token=f"app-{number}", now=at, duration_ms=5_000 + number)
    session.commit()
    return list(session.scalars(select(ReviewLog).order_by(ReviewLog.reviewed_at)))


def anki_card_id(col, card: Card) -> int:
    return col.db.scalar("SELECT cards.id FROM cards JOIN notes ON notes.id = cards.nid "
                         "WHERE notes.guid = ? AND cards.ord = ?", genanki.guid_for(card.note.key), ORD[card.template])


def carry_to_anki(col, reviews: list[ReviewLog]) -> None:
    """Write the app's answers into Anki's review log as a progress export carries them (Anki's own layout)."""
    days = StudyDays("UTC", 4)
    for review in reviews:
        exact = (review.reviewed_at - EPOCH) / timedelta(milliseconds=1)
        row_id = round(exact)  # this exporter rounds; the app must still know its own answer
        span = review.due - review.reviewed_at
        interval = days.elapsed(review.reviewed_at, review.due) if span >= timedelta(days=1) \
            else -int(span.total_seconds())
        col.db.execute("INSERT INTO revlog (id, cid, usn, ease, ivl, lastIvl, factor, time, type) "
                       "VALUES (?, ?, -1, ?, ?, 0, 0, ?, ?)", row_id, anki_card_id(col, review.card),
                       int(review.rating), interval, review.duration_ms, KIND[review.state_before])


def app_log(session, user_id: int) -> set[tuple]:
    return {(r.card_id, milliseconds(r.reviewed_at), int(r.rating), r.duration_ms, r.origin)
            for r in session.scalars(select(ReviewLog).where(ReviewLog.user_id == user_id))}


def snapshot(session) -> tuple[list, list]:
    reviews = session.execute(select(ReviewLog.id, ReviewLog.card_id, ReviewLog.reviewed_at, ReviewLog.rating,
                                     ReviewLog.due, ReviewLog.state_before, ReviewLog.origin)
                              .order_by(ReviewLog.id)).all()
    states = session.execute(select(CardState.card_id, CardState.state, CardState.stability, CardState.difficulty,
                                    CardState.due, CardState.last_review, CardState.reps, CardState.lapses)
                             .order_by(CardState.id)).all()
    session.commit()
    return reviews, states


def states_are_replays(session, scheduler) -> None:
    session.commit()
    report = check_database(session, scheduler, fix=False)
    assert report.problems == [], [p.message for p in report.problems]


@pytest.fixture
def collection(tmp_path, session, planets):
    """A fresh Anki collection holding the app's plain deck export."""
    deck, _ = planets
    package = tmp_path / "planets.apkg"
    export_anki_package(session, deck_id=deck.id, out=package, timestamp=T0.timestamp())
    col = new_collection(tmp_path / "anki")
    import_package(col, package)
    yield col
    col.close()


# ---------------------------------------------------------------- the round trip

@pytest.mark.parametrize("kind", EXPORT_KINDS)
def test_reviews_done_in_anki_join_the_log_and_the_cards_replay(session, scheduler, planets, collection, tmp_path,
                                                                 kind):
    deck, user_id = planets
    own = answer_in_the_app(session, scheduler, deck, user_id)
    carry_to_anki(collection, own)
    answered = study(collection, "Planets", start=T0 + timedelta(days=2, hours=6), days=12, seed=7)
    assert answered >= 10
    anki_rows = revlog(collection)
    package, collection = export(collection, tmp_path, kind)
    assert read_anki_export(package).file_format == {
        "apkg": "collection.anki21b", "colpkg": "collection.anki21b", "apkg-legacy": "collection.anki21",
        "colpkg-legacy": "collection.anki21", "apkg-anki2": "collection.anki2"}[kind]

    report = import_anki_file(session, scheduler, user_id=user_id, source=package, now=AFTER)

    by_anki_card = {anki_card_id(collection, card): card.id for card in cards_in_order(session, deck)}
    app_answers = {(r.card_id, milliseconds(r.reviewed_at), int(r.rating), r.duration_ms, ReviewOrigin.APP)
                   for r in own}
    from_anki = {(by_anki_card[row.card_id], row.id, row.ease, min(row.duration_ms, MAX_DURATION_MS),
                  ReviewOrigin.ANKI) for row in anki_rows if row.id > milliseconds(own[-1].reviewed_at) + 1}
    assert len(from_anki) == answered
    assert app_log(session, user_id) == app_answers | from_anki
    assert (report.added, report.already_there, report.other_cards, report.not_answers) == (answered, len(own), 0, 0)
    assert report.cards_updated == len({card for card, *_ in from_anki})
    states_are_replays(session, scheduler)
    # Each card's state is at its latest review, Anki's or the app's.
    for state in session.scalars(select(CardState)):
        latest = session.scalar(select(func.max(ReviewLog.reviewed_at)).where(ReviewLog.card_id == state.card_id))
        assert state.last_review == latest
    before = snapshot(session)

    again = import_anki_file(session, scheduler, user_id=user_id, source=package, now=AFTER)

    assert (again.added, again.already_there, again.cards_updated) == (0, answered + len(own), 0)
    assert snapshot(session) == before


def test_an_imported_review_keeps_what_anki_scheduled(session, scheduler, planets, collection, tmp_path):
    _, user_id = planets
    study(collection, "Planets", start=T0, days=3, seed=3)
    rows = revlog(collection)
    package, collection = export(collection, tmp_path, "apkg")
    import_anki_file(session, scheduler, user_id=user_id, source=package, now=AFTER)
    days = StudyDays("UTC", 4)
    by_time = {milliseconds(r.reviewed_at): r for r in session.scalars(select(ReviewLog))}
    seen_cards: set[int] = set()
    for row in rows:
        review = by_time[row.id]
        assert review.origin == ReviewOrigin.ANKI and review.token.startswith("anki:")
        if row.interval > 0:
            assert days.elapsed(review.reviewed_at, review.due) == row.interval
        else:
            assert review.due - review.reviewed_at == timedelta(seconds=-row.interval)
        first = review.card_id not in seen_cards
        seen_cards.add(review.card_id)
        assert review.state_before == (ReviewState.NEW if first else {0: ReviewState.LEARNING, 1: ReviewState.REVIEW,
                                                                      2: ReviewState.RELEARNING}[row.kind])
        assert review.duration_ms == min(row.duration_ms, MAX_DURATION_MS)


def test_reviews_of_other_cards_and_rows_that_are_no_answer_are_counted_not_taken(session, scheduler, planets,
                                                                                    collection, tmp_path):
    _, user_id = planets
    other_app_note(collection)
    other_app_note(collection, front="Capital of Peru?", back="Lima")
    study(collection, "Other app", start=T0, days=2, seed=5)
    other_rows = len(revlog(collection))
    study(collection, "Planets", start=T0 + timedelta(hours=1), days=2, seed=6)
    ours = len(revlog(collection)) - other_rows
    # A due date set by hand writes a row of its own (kind 4, no button).
    card_ids = collection.db.list("SELECT id FROM cards WHERE did = ?", collection.decks.id_for_name("Planets"))
    collection.sched.set_due_date(card_ids[:1], "5")
    manual = [row for row in revlog(collection) if row.kind == 4]
    assert len(manual) == 1
    package, collection = export(collection, tmp_path, "colpkg")

    report = import_anki_file(session, scheduler, user_id=user_id, source=package, now=AFTER)

    assert (report.added, report.other_cards, report.not_answers) == (ours, other_rows, 1)
    assert session.scalar(select(func.count(ReviewLog.id))) == ours
    assert "Ignored:" in report.summary() and "not in this app's decks" in report.summary()


def test_a_review_dated_in_the_future_is_not_taken(session, scheduler, planets, collection, tmp_path):
    _, user_id = planets
    study(collection, "Planets", start=AFTER + timedelta(hours=2), days=1, seed=2)
    package, collection = export(collection, tmp_path, "apkg")
    report = import_anki_file(session, scheduler, user_id=user_id, source=package, now=AFTER)
    assert report.added == 0 and report.not_answers == len(revlog(collection))


# ---------------------------------------------------------------- refusals: each changes nothing

def review_count(session) -> int:
    count = session.scalar(select(func.count(ReviewLog.id)))
    session.commit()
    return count


def refused(session, scheduler, user_id: int, source, *, limits: ImportLimits | None = None) -> str:
    before = snapshot(session)
    with pytest.raises(Invalid) as refusal:
        import_anki_file(session, scheduler, user_id=user_id, source=source, now=AFTER,
                         limits=limits or ImportLimits())
    assert refusal.value.field == "file"
    assert snapshot(session) == before
    return refusal.value.message


def zipped(members: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    buffer.seek(0)
    return buffer


@pytest.fixture
def studied(session, scheduler, planets, collection, tmp_path):
    """An Anki export with reviews of the planets deck, after one answer in the app; (student id, package)."""
    deck, user_id = planets
    answer_in_the_app(session, scheduler, deck, user_id)
    study(collection, "Planets", start=T0 + timedelta(days=3), days=2, seed=4)
    package, _ = export(collection, tmp_path, "apkg")
    return user_id, package


def test_a_file_that_is_not_a_zip_is_refused(session, scheduler, studied):
    user_id, _ = studied
    message = refused(session, scheduler, user_id, io.BytesIO(b"these are my notes, not a deck\n"))
    assert message.startswith("This file is not an Anki export.") and ".colpkg" in message


def test_a_zip_without_a_collection_is_refused(session, scheduler, studied):
    user_id, _ = studied
    message = refused(session, scheduler, user_id, zipped({"notes.txt": b"hello", "media": b"{}"}))
    assert message.startswith("This file is not an Anki export.")


def test_a_collection_that_is_no_database_is_refused_as_damaged(session, scheduler, studied):
    user_id, _ = studied
    message = refused(session, scheduler, user_id, zipped({"collection.anki2": b"not SQLite at all" * 100}))
    assert "damaged" in message


def test_a_sqlite_file_without_anki_tables_is_not_an_export(session, scheduler, studied, tmp_path):
    user_id, _ = studied
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY)")
    connection.close()
    message = refused(session, scheduler, user_id, zipped({"collection.anki21": path.read_bytes()}))
    assert message.startswith("This file is not an Anki export.")


def test_a_damaged_collection_is_refused(session, scheduler, studied, tmp_path):
    user_id, package = studied
    with zipfile.ZipFile(package) as archive:
        collection = bytearray(zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(archive.read("collection.anki21b")), read_across_frames=True).read())
        meta = archive.read("meta")
    # Scribble over the b-tree pages after the header page.
    collection[4096:4096 * 6] = b"\xa5" * (4096 * 5)
    damaged = zipped({"meta": meta, "collection.anki21b": zstandard.ZstdCompressor().compress(bytes(collection))})
    assert "damaged" in refused(session, scheduler, user_id, damaged)
    cut = zipped({"meta": meta, "collection.anki21b": zstandard.ZstdCompressor().compress(bytes(collection))[:300]})
    assert "damaged" in refused(session, scheduler, user_id, cut)


def test_an_export_of_another_apps_deck_is_refused(session, scheduler, planets, tmp_path):
    _, user_id = planets
    col = new_collection(tmp_path / "elsewhere")
    other_app_note(col)
    study(col, "Other app", start=T0, days=3, seed=1)
    package, col = export(col, tmp_path, "apkg")
    col.close()
    message = refused(session, scheduler, user_id, package)
    assert "none of this app's cards" in message


def test_a_deck_export_without_scheduling_is_refused_as_holding_no_reviews(session, scheduler, planets, tmp_path):
    deck, user_id = planets
    package = tmp_path / "plain.apkg"
    export_anki_package(session, deck_id=deck.id, out=package, timestamp=T0.timestamp())
    message = refused(session, scheduler, user_id, package)
    assert message.startswith("This Anki export holds no reviews.") and "Include scheduling information" in message


def test_an_oversized_upload_is_refused_before_it_is_opened(session, scheduler, studied):
    user_id, package = studied
    size = package.stat().st_size
    message = refused(session, scheduler, user_id, package, limits=ImportLimits(upload_bytes=size - 1))
    assert "an upload from Anki may be at most" in message


@pytest.mark.parametrize("member", ["collection.anki2", "collection.anki21b"])
def test_a_zip_bomb_is_refused_at_the_unpacked_limit(session, scheduler, studied, member):
    user_id, _ = studied
    huge = b"\0" * (8 * 1024 * 1024)
    data = zstandard.ZstdCompressor().compress(huge) if member.endswith("b") else huge
    bomb = zipped({member: data})
    assert len(bomb.getvalue()) < 64 * 1024
    message = refused(session, scheduler, user_id, bomb, limits=ImportLimits(collection_bytes=1024 * 1024))
    assert "unpacks to more than 1.0 MB" in message


def test_a_package_from_a_newer_anki_is_refused(session, scheduler, studied):
    user_id, package = studied
    with zipfile.ZipFile(package) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["meta"] = b"\x08\x07"
    assert "newer version of Anki" in refused(session, scheduler, user_id, zipped(members))


def test_an_upload_for_nobody_is_not_found(session, scheduler, studied):
    from flashapp.errors import NotFound

    _, package = studied
    with pytest.raises(NotFound):
        import_anki_file(session, scheduler, user_id=10_000, source=package, now=AFTER)


def test_the_summary_says_what_was_added_and_ignored():
    from flashapp.anki_import import ImportReport

    report = ImportReport(added=3, already_there=2, other_cards=1, not_answers=2, cards_updated=2)
    assert report.summary() == ("Added 3 reviews from Anki (2 cards brought up to date). 2 reviews were here "
                                "already. Ignored: 1 review of cards that are not in this app's decks and 2 entries "
                                "that are no answer (previews, due dates set by hand, reschedules).")
    assert ImportReport(0, 5, 0, 0, 0).summary().startswith("No new reviews")
    assert ImportReport(0, 0, 4, 0, 0).summary() == ("No reviews of this app's cards to add from this file. Ignored: "
                                                      "4 reviews of cards that are not in this app's decks.")


def test_two_uploads_of_one_file_at_once_add_each_review_once(engine, session, scheduler, planets, collection,
                                                               tmp_path):
    import threading

    from sqlalchemy.orm import Session

    _, user_id = planets
    answered = study(collection, "Planets", start=T0, days=4, seed=8)
    package, collection = export(collection, tmp_path, "apkg")
    session.commit()  # the fixtures' reads end here: the two uploads meet only each other
    reports, errors = [], []
    start = threading.Barrier(2)

    def upload() -> None:
        with Session(engine) as own:
            start.wait()
            try:
                reports.append(import_anki_file(own, scheduler, user_id=user_id, source=package, now=AFTER))
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(report.added for report in reports) == [0, answered]
    assert review_count(session) == answered
    states_are_replays(session, scheduler)


# ---------------------------------------------------------------- the whole round trip, both ways

def test_progress_taken_to_anki_studied_there_and_brought_back_is_the_union(session, scheduler, planets, tmp_path):
    from flashapp.anki_progress import export_progress
    from tests.helpers import study_every_evening

    deck, user_id = planets
    in_the_app = study_every_evening(session, scheduler, user_id=user_id, slug="planets", time_zone="UTC",
                                     first_day=T0.date(), days=10, seed=21, new_per_day=4)
    own = list(session.scalars(select(ReviewLog).order_by(ReviewLog.reviewed_at)))
    assert len(own) == in_the_app >= 10
    exported_at = own[-1].reviewed_at + timedelta(hours=1)
    progress = tmp_path / "progress.apkg"
    summary = export_progress(session, scheduler, username="ann", slug="planets", out=progress, now=exported_at)
    assert summary.reviews == in_the_app
    col = new_collection(tmp_path / "anki")
    import_package(col, progress, with_scheduling=True)
    assert len(revlog(col)) == in_the_app
    answered = study(col, "Planets", start=exported_at + timedelta(hours=1), days=15, seed=22)
    assert answered >= 5
    anki_rows = revlog(col)
    package, col = export(col, tmp_path, "apkg")

    report = import_anki_file(session, scheduler, user_id=user_id, source=package, now=exported_at + timedelta(days=30))

    by_anki_card = {anki_card_id(col, card): card.id for card in cards_in_order(session, deck)}
    col.close()
    app_answers = {(r.card_id, milliseconds(r.reviewed_at), int(r.rating), r.duration_ms, ReviewOrigin.APP)
                   for r in own}
    from_anki = {(by_anki_card[row.card_id], row.id, row.ease, min(row.duration_ms, MAX_DURATION_MS),
                  ReviewOrigin.ANKI) for row in anki_rows if row.id > milliseconds(exported_at)}
    assert len(from_anki) == answered
    assert app_log(session, user_id) == app_answers | from_anki
    assert (report.added, report.already_there, report.other_cards, report.not_answers) == \
        (answered, in_the_app, 0, 0)
    states_are_replays(session, scheduler)
    before = snapshot(session)

    again = import_anki_file(session, scheduler, user_id=user_id, source=package, now=exported_at + timedelta(days=30))

    assert (again.added, again.already_there) == (0, in_the_app + answered)
    assert snapshot(session) == before


def test_undo_takes_back_only_answers_given_in_the_app(session, scheduler, planets, collection, tmp_path):
    from flashapp.scheduling import undo_last_answer

    deck, user_id = planets
    first = cards_in_order(session, deck)[0]
    answer_card(session, scheduler, user_id=user_id, card_id=first.id, rating=Rating.Good, token="app-undo",
                now=T0 - timedelta(days=1))
    session.commit()
    study(collection, "Planets", start=T0, days=2, seed=12)
    package, collection = export(collection, tmp_path, "apkg")
    report = import_anki_file(session, scheduler, user_id=user_id, source=package, now=AFTER)
    assert report.added == review_count(session) - 1

    assert undo_last_answer(session, scheduler, user_id=user_id, deck_id=deck.id) == first.id
    session.commit()
    assert session.scalar(select(func.count(ReviewLog.id)).where(ReviewLog.origin == ReviewOrigin.APP)) == 0
    assert review_count(session) == report.added
    assert undo_last_answer(session, scheduler, user_id=user_id, deck_id=deck.id) is None
    session.commit()
    states_are_replays(session, scheduler)


def test_cards_replay_under_the_students_own_parameters(session, scheduler, planets, collection, tmp_path):
    import json

    from flashapp.models import PersonalParameters
    from tests.helpers import true_parameters

    _, user_id = planets
    session.add(PersonalParameters(user_id=user_id, parameters=json.dumps(true_parameters()), fitted_at=T0,
                                   review_count=400, tried_at=T0, tried_review_count=400, tried_outcome="kept"))
    session.commit()
    study(collection, "Planets", start=T0, days=6, seed=13)
    package, collection = export(collection, tmp_path, "apkg")
    report = import_anki_file(session, scheduler, user_id=user_id, source=package, now=AFTER)
    assert report.added > 0
    states_are_replays(session, scheduler)
    # The defaults would have given other memory states: the student's own parameters were used.
    state = session.scalar(select(CardState).where(CardState.user_id == user_id).limit(1))
    from flashapp.scheduling import card_reviews, replay

    default = replay(scheduler, state.card_id, card_reviews(session, user_id=user_id, card_id=state.card_id),
                     time_zone="UTC")
    assert default.stability != pytest.approx(state.stability)
