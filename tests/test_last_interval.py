"""Each answer keeps the interval its card had (Anki's lastIvl), on every path that writes the review log.

A student in Berlin (days from 04:00; the clocks go forward on 29 March 2026 at 01:00 UTC)
answers in the app, undoes, brings reviews back from Anki; each review's `last_interval` must
be what the card's previous answer scheduled: whole study days when it fell due on a later
study day, minus its seconds for a step within the day, 0 for a card's first answer.
`flashapp check` compares the column with the log, and `--fix` rewrites it.
"""

from __future__ import annotations

import sqlite3
import zipfile
from datetime import datetime, timedelta, timezone

import genanki
import pytest
from fsrs import Rating
from sqlalchemy import select, update

from flashapp.accounts import register_user
from flashapp.anki_import import AnkiExport, AnkiReview, import_anki_reviews
from flashapp.anki_progress import export_user_progress
from flashapp.consistency import LAST_INTERVAL_MISMATCH, check_database
from flashapp.models import Card, ReviewLog, ReviewOrigin, User
from flashapp.scheduling import StudyDays, answer_card, undo_last_answer
from tests.helpers import FAST_HASH_METHOD, build_numbers_deck

ZONE = "Europe/Berlin"
MINUTE, DAY = timedelta(minutes=1), timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture
def student(session):
    """The numbers deck and Ada in Berlin: (deck, her id, the deck's cards in order)."""
    deck = build_numbers_deck(session, count=3, now=utc(2026, 1, 1))
    ada = register_user(session, username="ada", password="long enough", time_zone=ZONE,
                        password_method=FAST_HASH_METHOD)
    session.commit()
    cards = list(session.scalars(select(Card).where(Card.deck_id == deck.id).order_by(Card.position)))
    return deck, ada.id, cards


def answer(session, scheduler, user_id: int, card: Card, rating: Rating, at: datetime, token: str) -> None:
    answer_card(session, scheduler, user_id=user_id, card_id=card.id, rating=rating, token=token, now=at)
    session.commit()


def kept(session, card: Card) -> list[tuple[datetime, int]]:
    """The card's reviews, oldest first: when, and the last interval each keeps."""
    return [(at, last) for at, last in session.execute(
        select(ReviewLog.reviewed_at, ReviewLog.last_interval).where(ReviewLog.card_id == card.id)
        .order_by(ReviewLog.reviewed_at, ReviewLog.id))]


def no_problems(session, scheduler) -> None:
    session.commit()
    report = check_database(session, scheduler, fix=False)
    assert report.problems == [], [problem.message for problem in report.problems]


def test_answers_keep_the_interval_their_card_had(session, scheduler, student):
    _, user_id, (card, early, _) = student
    # 20:00 in Berlin, study day 27 March: new, Good (the 10-minute step), Good (graduates).
    first = utc(2026, 3, 27, 19)
    answer(session, scheduler, user_id, card, Rating.Good, first, "a1")
    answer(session, scheduler, user_id, card, Rating.Good, first + 10 * MINUTE, "a2")
    graduated = session.scalar(select(ReviewLog).where(ReviewLog.token == "a2"))
    # Two study days, due at 20:10 in Berlin on 29 March: across the clock change, an hour short of 48.
    assert graduated.due == utc(2026, 3, 29, 18, 10)
    # Due, forgotten: Again (the 10-minute relearning step), then Good.
    answer(session, scheduler, user_id, card, Rating.Again, graduated.due, "a3")
    answer(session, scheduler, user_id, card, Rating.Good, graduated.due + 10 * MINUTE, "a4")
    assert [last for _, last in kept(session, card)] == [0, -600, 2, -600]

    # 03:55 in Berlin, before the day starts at 04:00: the 10-minute step falls due on the next study day.
    answer(session, scheduler, user_id, early, Rating.Good, utc(2026, 3, 10, 2, 55), "b1")
    answer(session, scheduler, user_id, early, Rating.Again, utc(2026, 3, 10, 3, 5), "b2")
    answer(session, scheduler, user_id, early, Rating.Good, utc(2026, 3, 10, 3, 6), "b3")
    assert [last for _, last in kept(session, early)] == [0, 1, -60]
    no_problems(session, scheduler)


def test_undo_leaves_the_answers_before_as_they_were_and_the_next_answer_sees_the_card_undone(
        session, scheduler, student):
    deck, user_id, (card, _, _) = student
    first = utc(2026, 3, 2, 12)
    answer(session, scheduler, user_id, card, Rating.Good, first, "a1")
    answer(session, scheduler, user_id, card, Rating.Again, first + 10 * MINUTE, "a2")
    assert [last for _, last in kept(session, card)] == [0, -600]

    assert undo_last_answer(session, scheduler, user_id=user_id, deck_id=deck.id) == card.id
    session.commit()
    assert [last for _, last in kept(session, card)] == [0]
    # Answered again, the card has the interval the first answer gave it.
    answer(session, scheduler, user_id, card, Rating.Good, first + 12 * MINUTE, "a2-again")
    assert [last for _, last in kept(session, card)] == [0, -600]
    no_problems(session, scheduler)


def anki_export(card: Card, *reviews: tuple[datetime, int, int, int]) -> AnkiExport:
    """An Anki export holding reviews of the card: (when, button, interval Anki scheduled, Anki's kind of row)."""
    guid = genanki.guid_for(card.note.key)
    return AnkiExport(file_format="collection.anki21", note_guids=frozenset({guid}), reviews=tuple(
        AnkiReview(reviewed_ms=(at - EPOCH) // timedelta(milliseconds=1), ease=ease, interval=interval,
                   duration_ms=4000, kind=kind, note_guid=guid, template=0)
        for at, ease, interval, kind in reviews))


def test_reviews_brought_back_from_anki_take_their_place_between_the_apps(session, scheduler, student):
    deck, user_id, (card, _, _) = student
    first = utc(2026, 3, 10, 12)  # 13:00 in Berlin
    answer(session, scheduler, user_id, card, Rating.Good, first, "app-1")
    answer(session, scheduler, user_id, card, Rating.Good, first + 10 * MINUTE, "app-2")
    graduated = session.scalar(select(ReviewLog).where(ReviewLog.token == "app-2"))
    ahead = StudyDays(ZONE).number(graduated.due) - StudyDays(ZONE).number(graduated.reviewed_at)
    assert ahead == 2 and [last for _, last in kept(session, card)] == [0, -600]

    # In Anki: a first answer the day before (a 10-minute step), one between the app's two (one day), and
    # one after both (five days).
    export = anki_export(card, (first - DAY, 3, -600, 0), (first + 5 * MINUTE, 3, 1, 0),
                         (first + 10 * MINUTE + ahead * DAY, 3, 5, 1))
    report = import_anki_reviews(session, scheduler, user_id=user_id, export=export, now=first + 30 * DAY)
    session.commit()
    assert report.added == 3
    # Anki's first, the app's first (after a 10-minute step), Anki's (the app's step), the app's graduation
    # (Anki's day), Anki's last (the app's graduation).
    assert [last for _, last in kept(session, card)] == [0, -600, -600, 1, ahead]
    no_problems(session, scheduler)

    # Undoing the app's last answer leaves Anki's last answer after the one Anki gave a day.
    assert undo_last_answer(session, scheduler, user_id=user_id, deck_id=deck.id) == card.id
    session.commit()
    assert [last for _, last in kept(session, card)] == [0, -600, -600, 1]
    assert session.scalar(select(ReviewLog.origin).order_by(ReviewLog.reviewed_at.desc())) == ReviewOrigin.ANKI
    no_problems(session, scheduler)


def test_check_finds_a_wrong_last_interval_and_fix_rewrites_it(session, scheduler, student):
    _, user_id, (card, _, _) = student
    first = utc(2026, 3, 2, 12)
    for number, (rating, at) in enumerate([(Rating.Good, first), (Rating.Good, first + 10 * MINUTE),
                                           (Rating.Good, first + 3 * DAY)]):
        answer(session, scheduler, user_id, card, rating, at, f"a{number}")
    right = [last for _, last in kept(session, card)]
    wrong = session.scalar(select(ReviewLog.id).where(ReviewLog.token == "a2"))
    session.execute(update(ReviewLog).where(ReviewLog.id == wrong).values(last_interval=99))
    session.commit()

    report = check_database(session, scheduler, fix=True)
    assert [(problem.kind, problem.fixable) for problem in report.problems] == [(LAST_INTERVAL_MISMATCH, True)]
    assert f"review {wrong} (user {user_id}, card {card.id})" in report.problems[0].message
    assert [last for _, last in kept(session, card)] == right
    no_problems(session, scheduler)


def test_the_progress_export_writes_the_kept_interval_as_ankis_last_interval(session, scheduler, student, tmp_path):
    deck, user_id, (card, _, _) = student
    first = utc(2026, 3, 27, 19)
    for number, (rating, at) in enumerate([(Rating.Good, first), (Rating.Good, first + 10 * MINUTE),
                                           (Rating.Again, utc(2026, 3, 29, 18, 10)),
                                           (Rating.Good, utc(2026, 3, 29, 18, 20))]):
        answer(session, scheduler, user_id, card, rating, at, f"a{number}")
    user = session.get(User, user_id)
    package = tmp_path / "progress.apkg"
    export_user_progress(session, scheduler, user=user, slug=deck.slug, out=package, now=utc(2026, 4, 1))
    with zipfile.ZipFile(package) as archive:
        (tmp_path / "collection.anki2").write_bytes(archive.read("collection.anki2"))
    with sqlite3.connect(tmp_path / "collection.anki2") as collection:
        rows = collection.execute("SELECT ivl, lastIvl FROM revlog ORDER BY id").fetchall()
    kept_intervals = [last for _, last in kept(session, card)]
    assert [last for _, last in rows] == kept_intervals == [0, -600, 2, -600]
    # Each row's lastIvl is the interval the row before scheduled.
    assert [ivl for ivl, _ in rows[:-1]] == kept_intervals[1:]
