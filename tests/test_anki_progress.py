"""A student's progress taken to Anki: the export imported with scheduling into a real `anki` collection.

A student in Berlin studies the bundled deck most evenings for 60 days through the app's own
study screen and answer use case (fixed UTC times, fuzz off). Their progress export is then
imported "with scheduling", as Anki's import dialog does when that box is ticked, on a
machine whose clock is in the student's time zone, and Anki's collection is compared with
the app: review-log rows, due days, and memory states Anki recomputes from the review log.
"""

from __future__ import annotations

import html
import json
import time
from datetime import date, datetime, timezone

import pytest
from anki.collection import Collection
from anki.import_export_pb2 import (
    ImportAnkiPackageOptions,
    ImportAnkiPackageRequest,
    ImportAnkiPackageUpdateCondition,
)
from fsrs import State
from sqlalchemy import select

from flashapp.accounts import register_user
from flashapp.anki_export import export_anki_package
from flashapp.anki_progress import export_progress
from flashapp.decksource import load_deck
from flashapp.generation import build_deck
from flashapp.models import Card, CardState, Deck, Note, PersonalParameters, ReviewLog, ReviewState, User
from flashapp.personal import student_scheduler
from flashapp.scheduling import StudyDays, make_scheduler
from tests.helpers import BUNDLED_DECK, FAST_HASH_METHOD, T0, study_every_evening, true_parameters

TIME_ZONE = "Europe/Berlin"  # its clocks go forward on 29 March, inside the simulated history
FIRST_DAY = date(2026, 2, 20)
STUDY_DAYS = 60
EXPORTED_AT = datetime(2026, 4, 20, 19, 30, tzinfo=timezone.utc)
IF_NEWER = ImportAnkiPackageUpdateCondition.IMPORT_ANKI_PACKAGE_UPDATE_CONDITION_IF_NEWER
TOLERANCE = 0.01
ANKI_REVLOG_TYPES = {ReviewState.NEW: 0, ReviewState.LEARNING: 0, ReviewState.REVIEW: 1, ReviewState.RELEARNING: 2}


@pytest.fixture(params=["default parameters", "own parameters"])
def studied(request, session, fill_once):
    """The bundled deck and a student in Berlin with 60 days of answers in it.

    Returns the install's scheduler, the student, the deck, the number of answers and the
    student's own scheduler: the install's, or their own parameters with a desired retention of 0.85.
    """
    install = make_scheduler(enable_fuzzing=False)

    def study() -> tuple[int, int, int]:
        spec = load_deck(BUNDLED_DECK)
        build_deck(session, spec, now=T0)
        student = register_user(session, username="ana", password="long enough", time_zone=TIME_ZONE,
                                password_method=FAST_HASH_METHOD)
        if request.param == "own parameters":
            session.add(PersonalParameters(user_id=student.id, parameters=json.dumps(true_parameters()),
                                           fitted_at=T0, review_count=400, tried_at=T0, tried_review_count=400,
                                           tried_outcome="kept"))
            student.desired_retention = 0.85
        session.commit()
        answers = study_every_evening(session, student_scheduler(install, student), user_id=student.id,
                                      slug=spec.slug, time_zone=TIME_ZONE, first_day=FIRST_DAY, days=STUDY_DAYS,
                                      seed=20, new_per_day=1, leave_last_day_unfinished=True)
        deck_id = session.scalar(select(Deck.id).where(Deck.slug == spec.slug))
        return student.id, deck_id, answers

    student_id, deck_id, answers = fill_once(f"anki progress: {request.param}", session.get_bind(), study)
    student, deck = session.get(User, student_id), session.get(Deck, deck_id)
    return install, student, deck, answers, student_scheduler(install, student)


@pytest.fixture
def anki_in_berlin(tmp_path, monkeypatch):
    """A new, empty Anki collection on a machine whose clock is in the student's time zone."""
    monkeypatch.setenv("TZ", TIME_ZONE)
    time.tzset()
    collection = Collection(str(tmp_path / "collection.anki2"))
    yield collection
    collection.close()
    monkeypatch.undo()
    time.tzset()


def import_with_scheduling(col: Collection, package) -> object:
    request = ImportAnkiPackageRequest(package_path=str(package), options=ImportAnkiPackageOptions(
        merge_notetypes=True, update_notes=IF_NEWER, update_notetypes=IF_NEWER, with_scheduling=True,
        with_deck_configs=False))
    return col.import_anki_package(request).log


def anki_cards_by_key(col: Collection) -> dict[tuple[str, int], object]:
    """Every Anki card by its note's Key and its template ordinal, failing on a card that appears twice."""
    cards = {}
    for card_id in col.find_cards(""):
        card = col.get_card(card_id)
        key = (html.unescape(card.note()["Key"]), card.ord)
        assert key not in cards, f"two Anki cards for {key}"
        cards[key] = card
    return cards


def app_cards(session, deck: Deck, user_id: int) -> dict[tuple[str, int], tuple[Card, CardState | None]]:
    """The deck's active cards and the student's state of each, by note Key and Anki template ordinal."""
    ordinals = {"forward": 0, "grouped": 0, "reverse": 1}
    rows = session.execute(
        select(Card, Note.key, CardState).join(Note, Note.id == Card.note_id)
        .outerjoin(CardState, (CardState.card_id == Card.id) & (CardState.user_id == user_id))
        .where(Card.deck_id == deck.id, Card.retired.is_(False)))
    return {(key, ordinals[card.template]): (card, state) for card, key, state in rows}


def app_reviews(session, deck: Deck, user_id: int) -> list[ReviewLog]:
    return list(session.scalars(select(ReviewLog).join(Card, Card.id == ReviewLog.card_id)
                                .where(ReviewLog.user_id == user_id, Card.deck_id == deck.id)
                                .order_by(ReviewLog.reviewed_at, ReviewLog.id)))


def use_the_apps_fsrs(col: Collection, scheduler, deck_name: str) -> None:
    """FSRS on in Anki, with the app's parameters and desired retention on the deck's preset."""
    col.set_config("fsrs", True)
    config = col.decks.config_dict_for_deck_id(col.decks.id_for_name(deck_name))
    config["fsrsParams6"] = [float(w) for w in scheduler.parameters]
    config["desiredRetention"] = scheduler.desired_retention
    col.decks.update_config(config)


def relative(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def test_progress_round_trip_through_anki(session, studied, anki_in_berlin, tmp_path):
    install, student, deck, answers, scheduler = studied
    col = anki_in_berlin
    reviews = app_reviews(session, deck, student.id)
    expected = app_cards(session, deck, student.id)
    states = {key: state for key, (_card, state) in expected.items() if state is not None}
    assert answers == len(reviews) >= 400
    kinds = {state.state for state in states.values()}
    assert kinds == {State.Learning, State.Review, State.Relearning}, "every kind of card should be exported"

    package = tmp_path / "progress.apkg"
    summary = export_progress(session, install, username="ana", slug=deck.slug, out=package, now=EXPORTED_AT)
    assert (summary.cards, summary.studied_cards, summary.reviews) == (len(expected), len(states), len(reviews))
    log = import_with_scheduling(col, package)
    assert len(log.new) == col.note_count() and not log.duplicate

    # Nothing lost, nothing doubled: one Anki card per app card, one review-log row per answer.
    cards = anki_cards_by_key(col)
    assert set(cards) == set(expected)
    by_anki_id = {card.id: key for key, card in cards.items()}
    revlog = col.db.all("SELECT id, cid, ease, type, time, ivl FROM revlog ORDER BY id")
    assert len(revlog) == len(reviews)
    app_rows = [(int(r.reviewed_at.timestamp() * 1000), int(r.rating), ANKI_REVLOG_TYPES[r.state_before],
                 r.duration_ms) for r in reviews]
    assert [(row_id, ease, kind, taken) for row_id, _cid, ease, kind, taken, _ivl in revlog] == app_rows
    card_of_review = {int(r.reviewed_at.timestamp() * 1000): r.card_id for r in reviews}
    assert all(expected[by_anki_id[cid]][0].id == card_of_review[row_id] for row_id, cid, *_rest in revlog)

    # Every card is due on the app's study day. Anki's days count from its collection's creation;
    # the app's are the student's study days: they differ by one constant, which is how far
    # Anki's "today" is from the app's study day now.
    days = StudyDays(TIME_ZONE)
    offsets, learning_compared, new_compared = set(), 0, 0
    for key, card in cards.items():
        app_card, state = expected[key]
        if state is None:
            assert (card.type, card.queue, card.due) == (0, 0, app_card.position)
            new_compared += 1
        elif state.state == State.Review or card.queue == 3:
            assert card.type == {State.Review: 2, State.Learning: 1, State.Relearning: 3}[state.state]
            offsets.add(card.due - days.number(state.due))
        else:
            assert (card.type, card.queue) == ({State.Learning: 1, State.Relearning: 3}[state.state], 1)
            assert card.due == int(state.due.timestamp())
            learning_compared += 1
        if state is not None:
            assert (card.reps, card.lapses) == (state.reps, state.lapses)
    today = col.sched.today
    app_today = days.number(datetime.now(timezone.utc))
    assert offsets == {today - app_today}, "Anki's due days differ from the app's study days"
    assert learning_compared and new_compared

    # Memory states: as imported, and as Anki recomputes them from the review log with the app's parameters.
    use_the_apps_fsrs(col, scheduler, deck.title)
    worst_imported = worst = 0.0
    within = 0
    for key, state in states.items():
        card = cards[key]
        imported = col.get_card(card.id).memory_state
        worst_imported = max(worst_imported, relative(imported.stability, state.stability),
                             relative(imported.difficulty, state.difficulty))
        recomputed = col.compute_memory_state(card.id)
        assert recomputed.desired_retention == pytest.approx(scheduler.desired_retention)
        difference = max(relative(recomputed.stability, state.stability),
                         relative(recomputed.difficulty, state.difficulty))
        worst = max(worst, difference)
        within += difference <= TOLERANCE
    assert within == len(states), f"{len(states) - within} of {len(states)} memory states differ by more than 1 %"
    assert worst_imported < 1e-3
    # The package carries the student's own desired retention and decay on each card.
    data = json.loads(col.db.scalar("SELECT data FROM cards WHERE id = ?", cards[next(iter(states))].id))
    assert data["dr"] == pytest.approx(scheduler.desired_retention)
    assert data["decay"] == pytest.approx(scheduler.parameters[20], abs=1e-3)
    print(f"\ndesired retention {scheduler.desired_retention}: {len(expected)} cards ({len(states)} studied, "
          f"{learning_compared} learning, "
          f"{new_compared} new), {len(revlog)} review-log rows for {len(reviews)} answers; "
          f"Anki's recomputed memory states: worst relative difference {worst:.3e}; "
          f"as imported: {worst_imported:.3e}")


def test_a_later_progress_export_never_duplicates(session, studied, anki_in_berlin, tmp_path):
    install, student, deck, _answers, scheduler = studied
    col = anki_in_berlin
    first = tmp_path / "progress-1.apkg"
    export_progress(session, install, username="ana", slug=deck.slug, out=first, now=EXPORTED_AT)
    import_with_scheduling(col, first)
    before = {key: (card.type, card.queue, card.due, card.ivl, card.reps)
              for key, card in anki_cards_by_key(col).items()}
    revlog_before = col.db.scalar("SELECT count() FROM revlog")
    notes_before, cards_before = col.note_count(), col.card_count()

    # Five more evenings in the app, then a new export imported into the same collection.
    more = study_every_evening(session, scheduler, user_id=student.id, slug=deck.slug, time_zone=TIME_ZONE,
                               first_day=date(2026, 4, 21), days=5, seed=12)
    assert more > 0
    second = tmp_path / "progress-2.apkg"
    export_progress(session, install, username="ana", slug=deck.slug, out=second,
                    now=datetime(2026, 4, 26, 20, 0, tzinfo=timezone.utc))
    log = import_with_scheduling(col, second)

    # Anki updates the notes (the export is newer) but keeps the cards it has as they are: their
    # scheduling and review log stay Anki's own, and no note, card or review is added twice.
    assert len(log.updated) == notes_before and not log.new
    assert (col.note_count(), col.card_count()) == (notes_before, cards_before)
    after = {key: (card.type, card.queue, card.due, card.ivl, card.reps)
             for key, card in anki_cards_by_key(col).items()}
    assert after == before
    assert col.db.scalar("SELECT count() FROM revlog") == revlog_before


def test_the_plain_deck_export_carries_no_ones_progress(session, studied, anki_in_berlin, tmp_path):
    _install, student, deck, _answers, _scheduler = studied
    col = anki_in_berlin
    package = tmp_path / "plain.apkg"
    export_anki_package(session, deck_id=deck.id, out=package)
    import_with_scheduling(col, package)
    cards = anki_cards_by_key(col)
    assert {(card.type, card.queue) for card in cards.values()} == {(0, 0)}
    assert col.db.scalar("SELECT count() FROM revlog") == 0
    assert all(not card.memory_state for card in cards.values())
    assert student.username == "ana"


def test_a_student_without_answers_gets_the_deck_in_the_apps_order(session, anki_in_berlin, tmp_path):
    spec = load_deck(BUNDLED_DECK)
    build_deck(session, spec, now=T0)
    register_user(session, username="ben", password="long enough", time_zone=TIME_ZONE,
                  password_method=FAST_HASH_METHOD)
    session.commit()
    package = tmp_path / "progress.apkg"
    summary = export_progress(session, make_scheduler(enable_fuzzing=False), username="ben", slug=spec.slug,
                              out=package, now=EXPORTED_AT)
    assert (summary.studied_cards, summary.reviews) == (0, 0)
    import_with_scheduling(anki_in_berlin, package)
    cards = sorted(anki_cards_by_key(anki_in_berlin).values(), key=lambda card: card.due)
    assert [card.type for card in cards] == [0] * summary.cards
    positions = list(session.scalars(select(Card.position).where(Card.deck_id.in_(
        select(Deck.id).where(Deck.slug == spec.slug)), Card.retired.is_(False)).order_by(Card.position)))
    assert [card.due for card in cards] == positions


def test_the_package_carries_the_students_day(session, studied, tmp_path):
    install, _student, deck, _answers, _scheduler = studied
    import sqlite3
    import zipfile

    package = tmp_path / "progress.apkg"
    export_progress(session, install, username="ana", slug=deck.slug, out=package, now=EXPORTED_AT)
    scratch = tmp_path / "inside.anki2"
    scratch.write_bytes(zipfile.ZipFile(package).read("collection.anki2"))
    connection = sqlite3.connect(scratch)
    try:
        crt, conf = connection.execute("SELECT crt, conf FROM col").fetchone()
    finally:
        connection.close()
    conf = json.loads(conf)
    created = datetime.fromtimestamp(crt, timezone.utc)
    # 04:00 in Berlin (UTC+1 in February) on the day of the first answer.
    assert created == datetime(2026, 2, 20, 3, 0, tzinfo=timezone.utc)
    assert (conf["rollover"], conf["creationOffset"], conf["schedVer"]) == (4, -60, 2)


def test_progress_over_the_plain_deck_already_in_anki_keeps_anki_cards(session, studied, anki_in_berlin, tmp_path):
    install, _student, deck, _answers, _scheduler = studied
    col = anki_in_berlin
    plain = tmp_path / "plain.apkg"
    export_anki_package(session, deck_id=deck.id, out=plain, timestamp=EXPORTED_AT.timestamp() - 3600)
    import_with_scheduling(col, plain)
    cards_before = col.card_count()
    progress = tmp_path / "progress.apkg"
    export_progress(session, install, username="ana", slug=deck.slug, out=progress, now=EXPORTED_AT)
    log = import_with_scheduling(col, progress)
    # The notes are updated, but Anki keeps the new cards it already has: the progress does not come
    # in (the README says to delete the plain deck in Anki first), and nothing is doubled.
    assert len(log.updated) == col.note_count() and not log.new
    assert col.card_count() == cards_before
    assert {(card.type, card.queue) for card in anki_cards_by_key(col).values()} == {(0, 0)}
    assert col.db.scalar("SELECT count() FROM revlog") == 0
