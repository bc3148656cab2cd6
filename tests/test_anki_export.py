"""The Anki export, imported into a real Anki collection with the importer the desktop app uses.

Each test builds a deck into the database, writes an .apkg with `export_anki_package`
and imports it with `Collection.import_anki_package`, then checks what Anki holds.
"""

from __future__ import annotations

import html
import json
import sqlite3
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import genanki
import pytest
from anki.collection import Collection
from anki.import_export_pb2 import (
    ImportAnkiPackageOptions,
    ImportAnkiPackageRequest,
    ImportAnkiPackageUpdateCondition,
)
from sqlalchemy import func, select

from flashapp.anki_export import MODEL_ID, MODEL_NAME, SUPPLEMENTED_SOURCE, anki_deck_id, export_anki_package
from flashapp.decksource import load_deck, parse_deck_text
from flashapp.generation import build_deck
from flashapp.models import Card, Deck, Note
from tests.helpers import BUNDLED_DECK, deck_text

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
LATER = datetime(2026, 3, 8, 9, 0, tzinfo=timezone.utc)

# Frozen: Anki matches the note type by id and fields by position, so these never change.
EXPECTED_FIELDS = ["Question", "Answer", "Reverse Question", "Reverse Answer", "Explanation", "Section",
                   "Source", "Key"]
EXPECTED_TEMPLATES = ["Question", "Reverse"]
IF_NEWER = ImportAnkiPackageUpdateCondition.IMPORT_ANKI_PACKAGE_UPDATE_CONDITION_IF_NEWER

# Richer than the shared planets deck: two sections, a question-only relation, an answer
# template, an explanation and an explicit id, so every field of the note type is filled.
ANKI_PLANETS = deck_text(
    slug="planets", title="The planets", source='Space Agency, "Our solar system"',
    sections={"inner": "Inner planets", "outer": "Outer planets"},
    relations={
        "moon": {"forward": "What is the largest moon of {subject}?", "reverse": "Which planet has the moon {object}?"},
        "kind": {"forward": "What kind of planet is {subject}?",
                 "grouped": "Which planets in this deck share the kind {object}?", "answer": "a {object} planet"},
        "general": {"forward": "{subject}"},
    },
    facts=[
        {"relation": "general", "id": "planet-count", "subject": "How many planets orbit the Sun?", "object": "eight",
         "section": "inner"},
        {"relation": "moon", "subject": "Earth", "object": "the Moon", "section": "inner"},
        {"relation": "moon", "subject": "Jupiter", "object": "Ganymede", "section": "outer",
         "explanation": "It is larger than the planet Mercury."},
        {"relation": "kind", "subject": "Earth", "object": "rocky", "section": "inner"},
        {"relation": "kind", "subject": "Mars", "object": "rocky", "section": "inner"},
        {"relation": "kind", "subject": "Jupiter", "object": "gas giant", "section": "outer", "supplemented": True},
    ],
)


# ---------------------------------------------------------------- helpers

def build(session, text: str, now: datetime) -> Deck:
    spec = parse_deck_text(text)
    build_deck(session, spec, now=now)
    session.commit()
    return session.scalar(select(Deck).where(Deck.slug == spec.slug))


def export(session, deck: Deck, path: Path, timestamp: float | None = None) -> Path:
    export_anki_package(session, deck_id=deck.id, out=path, timestamp=timestamp)
    return path


def open_collection(tmp_path: Path) -> Collection:
    return Collection(str(tmp_path / "collection.anki2"))


def import_package(col: Collection, package: Path, *, merge_notetypes: bool = True,
                   expect_unchanged: bool = False):
    """Import like the desktop's package importer: update notes when the package's copy is newer.

    Anki logs a note it finds but does not update as a duplicate; that is only expected
    when the same package is imported again (`expect_unchanged`).
    """
    request = ImportAnkiPackageRequest(
        package_path=str(package),
        options=ImportAnkiPackageOptions(
            merge_notetypes=merge_notetypes,
            update_notes=IF_NEWER,
            update_notetypes=IF_NEWER,
            with_scheduling=False,
            with_deck_configs=False,
        ),
    )
    log = col.import_anki_package(request).log
    problems = ["conflicting", "missing_notetype", "missing_deck", "empty_first_field"]
    if not expect_unchanged:
        problems.append("duplicate")
    for problem in problems:
        assert not getattr(log, problem), f"Anki reported {problem} notes: {getattr(log, problem)}"
    return log


def anki_notes_by_key(col: Collection) -> dict:
    """Every note of our note type by its Key field, failing on any Key that appears twice."""
    keys: dict = {}
    for note_id in col.find_notes(f'"note:{MODEL_NAME}"'):
        note = col.get_note(note_id)
        assert note["Key"] not in keys, f"two Anki notes for {note['Key']}"
        keys[note["Key"]] = note
    return keys


def flashapp_notetypes(col: Collection) -> list:
    return [entry for entry in col.models.all_names_and_ids() if entry.name.startswith("flashapp")]


def active_keys(session, deck: Deck) -> set[str]:
    return set(session.scalars(select(Note.key).where(Note.deck_id == deck.id, Note.retired.is_(False))))


def active_card_count(session, deck: Deck) -> int:
    return session.scalar(select(func.count()).select_from(Card)
                          .where(Card.deck_id == deck.id, Card.retired.is_(False)))


def package_ids(package: Path) -> tuple[dict[str, int], set[int]]:
    """Deck ids by name and note type ids, as written inside the .apkg."""
    with zipfile.ZipFile(package) as archive:
        data = archive.read("collection.anki2")
    scratch = package.with_suffix(".inspect.anki2")
    scratch.write_bytes(data)
    connection = sqlite3.connect(scratch)
    try:
        decks_json, models_json = connection.execute("SELECT decks, models FROM col").fetchone()
    finally:
        connection.close()
    decks = {deck["name"]: int(deck["id"]) for deck in json.loads(decks_json).values()}
    return decks, {int(model_id) for model_id in json.loads(models_json)}


# ---------------------------------------------------------------- tests

def test_bundled_deck_imports_into_anki(session, tmp_path):
    spec = load_deck(BUNDLED_DECK)
    build_deck(session, spec, now=NOW)
    session.commit()
    deck = session.scalar(select(Deck).where(Deck.slug == spec.slug))
    keys = active_keys(session, deck)
    card_count = active_card_count(session, deck)
    templates = set(session.scalars(select(Card.template).where(Card.deck_id == deck.id)))
    assert templates == {"forward", "reverse", "grouped"}, "the bundled deck should use all three templates"

    package = export(session, deck, tmp_path / "back-muscles.apkg")
    col = open_collection(tmp_path)
    try:
        log = import_package(col, package)
        assert len(log.new) == len(keys)
        assert col.note_count() == len(keys)
        assert col.card_count() == card_count

        notetype = col.models.by_name(MODEL_NAME)
        assert notetype is not None and notetype["id"] == MODEL_ID
        assert col.models.field_names(notetype) == EXPECTED_FIELDS
        assert [template["name"] for template in notetype["tmpls"]] == EXPECTED_TEMPLATES
        assert len(flashapp_notetypes(col)) == 1

        notes = anki_notes_by_key(col)
        assert set(notes) == keys

        # A fact with a reverse question: one note, two cards.
        note = notes["back-muscles/layer-role/deep"]
        assert note["Question"] == "What does the deep layer of back muscles mainly help you do?"
        assert note["Answer"] == "control your vertebrae and posture"
        assert note["Reverse Question"] == \
            "Which layer of back muscles mainly helps you control your vertebrae and posture?"
        assert note["Reverse Answer"] == "deep"
        assert note["Section"] == spec.sections["anatomy"] == "Anatomy"
        assert html.unescape(note["Source"]) == spec.source
        assert note["Key"] == "back-muscles/layer-role/deep"
        assert note.guid == genanki.guid_for("back-muscles/layer-role/deep")
        assert "flashapp::relation::layer-role" in note.tags
        assert "flashapp::section::anatomy" in note.tags
        assert "flashapp::supplemented" not in note.tags
        assert len(note.cards()) == 2

        # A supplemented fact with an explanation, and a grouped note (one card, no reverse).
        trapezius = notes["back-muscles/layer/trapezius"]
        assert "flashapp::supplemented" in trapezius.tags
        assert html.unescape(trapezius["Source"]) == SUPPLEMENTED_SOURCE
        assert html.unescape(trapezius["Explanation"]).startswith("A large, flat, diamond-shaped sheet")
        grouped = notes["back-muscles/layer/members-of-superficial"]
        assert grouped["Question"] == "Which muscles in this deck belong to the superficial layer of the back?"
        assert grouped["Answer"] == "trapezius, latissimus dorsi, levator scapulae and rhomboids"
        assert grouped["Reverse Question"] == ""
        assert len(grouped.cards()) == 1

        # Every card lands in the deck named after the deck title and asks the question the app asks.
        anki_deck = col.decks.by_name(spec.title)
        assert anki_deck is not None
        assert {col.decks.name(col.get_card(card_id).did) for card_id in col.find_cards("")} == {spec.title}
        rendered = sorted(html.unescape(col.get_card(card_id).render_output().question_text)
                          for card_id in col.find_cards(""))
        expected = sorted(session.scalars(select(Card.question)
                                          .where(Card.deck_id == deck.id, Card.retired.is_(False))))
        assert rendered == expected
    finally:
        col.close()


@pytest.mark.parametrize("merge_notetypes", [True, False], ids=["merge-notetypes", "keep-notetypes"])
def test_reexport_updates_notes_in_place(session, tmp_path, merge_notetypes):
    deck = build(session, ANKI_PLANETS, NOW)
    first_stamp = time.time()
    first = export(session, deck, tmp_path / "planets-1.apkg", timestamp=first_stamp)
    col = open_collection(tmp_path)
    try:
        log = import_package(col, first, merge_notetypes=merge_notetypes)
        first_notes = col.note_count()
        assert len(log.new) == first_notes == len(active_keys(session, deck))
        assert col.card_count() == active_card_count(session, deck)
        assert {note.mod for note in anki_notes_by_key(col).values()} == {int(first_stamp)}

        # Reword one fact's object (its key is unchanged) and add a fact to an existing group.
        edited = ANKI_PLANETS.replace("object: the Moon", "object: Luna")
        edited += ("  - relation: moon\n    subject: Mars\n    object: Phobos\n    section: inner\n")
        deck = build(session, edited, LATER)
        second_stamp = first_stamp + 10
        second = export(session, deck, tmp_path / "planets-2.apkg", timestamp=second_stamp)
        log = import_package(col, second, merge_notetypes=merge_notetypes)

        assert [html.unescape(n.fields[-1]) for n in log.new] == ["planets/moon/mars"]
        assert col.note_count() == first_notes + 1
        assert col.card_count() == active_card_count(session, deck)

        notes = anki_notes_by_key(col)
        assert set(notes) == active_keys(session, deck)
        earth = notes["planets/moon/earth"]
        assert earth["Answer"] == "Luna"
        assert earth["Reverse Question"] == "Which planet has the moon Luna?"
        assert earth.mod == int(second_stamp)
        assert not col.find_notes('"Answer:the Moon"')
        assert notes["planets/moon/mars"]["Reverse Answer"] == "Mars"
        assert len({note.guid for note in notes.values()}) == len(notes)

        names = flashapp_notetypes(col)
        assert [(entry.name, entry.id) for entry in names] == [(MODEL_NAME, MODEL_ID)]
        assert [d.name for d in col.decks.all_names_and_ids()].count("The planets") == 1
    finally:
        col.close()


def test_same_export_imported_twice_changes_nothing(session, tmp_path):
    deck = build(session, ANKI_PLANETS, NOW)
    package = export(session, deck, tmp_path / "planets.apkg", timestamp=time.time())
    col = open_collection(tmp_path)
    try:
        import_package(col, package)
        before = (col.note_count(), col.card_count())
        log = import_package(col, package, expect_unchanged=True)
        assert not log.new
        assert not log.updated, "a package no newer than the collection's copy must not update notes"
        assert len(log.duplicate) == log.found_notes == before[0]
        assert (col.note_count(), col.card_count()) == before
    finally:
        col.close()


def test_retired_fact_is_left_out_of_a_fresh_export(session, tmp_path):
    deck = build(session, ANKI_PLANETS, NOW)
    # Jupiter's "kind" fact is the only gas giant, so its grouped note goes too.
    without_jupiter_kind = ANKI_PLANETS.replace(
        "  - relation: kind\n    subject: Jupiter\n    object: gas giant\n    section: outer\n"
        "    supplemented: true\n", "")
    assert without_jupiter_kind != ANKI_PLANETS
    deck = build(session, without_jupiter_kind, LATER)
    retired = set(session.scalars(select(Note.key).where(Note.deck_id == deck.id, Note.retired.is_(True))))
    assert retired == {"planets/kind/jupiter", "planets/kind/members-of-gas-giant"}

    package = export(session, deck, tmp_path / "planets.apkg")
    col = open_collection(tmp_path)
    try:
        import_package(col, package)
        notes = anki_notes_by_key(col)
        assert set(notes) == active_keys(session, deck)
        assert not retired & set(notes)
        guids = {note.guid for note in notes.values()}
        assert not {genanki.guid_for(key) for key in retired} & guids
        assert col.card_count() == active_card_count(session, deck)
        assert not col.find_notes('"Question:What kind of planet is Jupiter?"')
        assert "flashapp::supplemented" not in col.tags.all()
    finally:
        col.close()


def test_ids_and_guids_are_stable_across_exports(session, tmp_path):
    build(session, ANKI_PLANETS.replace("slug: planets", "slug: other-planets")
          .replace("title: The planets", "title: Other planets"), NOW)
    deck = build(session, ANKI_PLANETS, NOW)
    first = export(session, deck, tmp_path / "planets-1.apkg", timestamp=time.time())
    deck = build(session, ANKI_PLANETS.replace("object: eight", "object: eight (since 2006)"), LATER)
    second = export(session, deck, tmp_path / "planets-2.apkg", timestamp=time.time() + 10)

    first_decks, first_models = package_ids(first)
    second_decks, second_models = package_ids(second)
    # Pinned: changing either id would split every student's existing Anki deck or note type.
    assert first_decks["The planets"] == second_decks["The planets"] == anki_deck_id("planets") == 2068245173
    assert first_models == second_models == {MODEL_ID} == {1_690_412_845}
    assert anki_deck_id("other-planets") != anki_deck_id("planets")

    col = open_collection(tmp_path)
    try:
        import_package(col, first)
        deck_id = col.decks.id_for_name("The planets")
        notes = anki_notes_by_key(col)
        note_ids = {key: note.id for key, note in notes.items()}
        import_package(col, second)
        assert col.decks.id_for_name("The planets") == deck_id
        assert [(entry.name, entry.id) for entry in flashapp_notetypes(col)] == [(MODEL_NAME, MODEL_ID)]

        notes = anki_notes_by_key(col)
        assert {key: note.id for key, note in notes.items()} == note_ids
        assert set(notes) == active_keys(session, deck)
        for key, note in notes.items():
            assert note.guid == genanki.guid_for(key)
            assert note.mid == MODEL_ID
        assert notes["planets/general/planet-count"]["Answer"] == "eight (since 2006)"
    finally:
        col.close()


# ---------------------------------------------------------------- the corrected deck (issue 11, part 4)

def rendered_backs(col: Collection) -> dict[tuple[str, int], tuple[str, str]]:
    """Every card's question and answer HTML as Anki renders them, by note Key and template ordinal."""
    backs = {}
    for card_id in col.find_cards(""):
        card = col.get_card(card_id)
        output = card.render_output()
        backs[(html.unescape(card.note()["Key"]), card.ord)] = (output.question_text, output.answer_text)
    return backs


def test_supplemented_facts_say_they_are_not_from_the_source(session, tmp_path):
    deck = build(session, ANKI_PLANETS, NOW)
    source = html.escape(deck.source, quote=False)
    supplemented = set(session.scalars(select(Note.key).where(Note.deck_id == deck.id, Note.supplemented.is_(True))))
    # Jupiter's kind, and the grouped question listing the gas giants (one of its facts is supplemented).
    assert supplemented == {"planets/kind/jupiter", "planets/kind/members-of-gas-giant"}

    col = open_collection(tmp_path)
    try:
        import_package(col, export(session, deck, tmp_path / "planets.apkg"))
        backs = rendered_backs(col)
        assert len(backs) == active_card_count(session, deck)
        for (key, _ordinal), (_question, answer) in backs.items():
            if key in supplemented:
                assert source not in answer and "Space Agency" not in answer, answer
                assert html.escape(SUPPLEMENTED_SOURCE, quote=False) in answer
            else:
                assert f'<div class="source">{source}</div>' in answer
                assert "Not from the source" not in answer
        print("\nsupplemented:", backs[("planets/kind/jupiter", 0)], "\nstated:", backs[("planets/moon/earth", 1)])
    finally:
        col.close()


def test_the_section_field_holds_the_sections_title(session, tmp_path):
    deck = build(session, ANKI_PLANETS, NOW)
    col = open_collection(tmp_path)
    try:
        import_package(col, export(session, deck, tmp_path / "planets.apkg"))
        notes = anki_notes_by_key(col)
        assert notes["planets/moon/jupiter"]["Section"] == "Outer planets"
        assert notes["planets/moon/earth"]["Section"] == "Inner planets"
        assert notes["planets/kind/members-of-rocky"]["Section"] == "Inner planets"
        # The tag keeps the section's name, which never changes with the wording.
        assert "flashapp::section::outer" in notes["planets/moon/jupiter"].tags

        # Retitling a section updates the notes in place on the next export.
        deck = build(session, ANKI_PLANETS.replace("Outer planets", "The giant planets"), LATER)
        import_package(col, export(session, deck, tmp_path / "planets-2.apkg", timestamp=time.time() + 10))
        notes = anki_notes_by_key(col)
        assert notes["planets/moon/jupiter"]["Section"] == "The giant planets"
        assert col.note_count() == len(active_keys(session, deck))
    finally:
        col.close()


def app_order(session, deck: Deck) -> list[tuple[str, int]]:
    """The deck's active cards in the app's order, as (note key, Anki template ordinal)."""
    ordinals = {"forward": 0, "grouped": 0, "reverse": 1}
    rows = session.execute(select(Note.key, Card.template).join(Note, Note.id == Card.note_id)
                           .where(Card.deck_id == deck.id, Card.retired.is_(False)).order_by(Card.position))
    return [(key, ordinals[template]) for key, template in rows]


def anki_key(col: Collection, card_id: int) -> tuple[str, int]:
    card = col.get_card(card_id)
    return html.unescape(card.note()["Key"]), card.ord


def test_new_cards_keep_the_apps_order_in_anki(session, tmp_path):
    spec = load_deck(BUNDLED_DECK)
    build_deck(session, spec, now=NOW)
    session.commit()
    deck = session.scalar(select(Deck).where(Deck.slug == spec.slug))
    expected = app_order(session, deck)
    assert {ordinal for _key, ordinal in expected[:10]} == {0, 1}, "reverse cards interleave in the app's order"

    col = open_collection(tmp_path)
    try:
        import_package(col, export(session, deck, tmp_path / "back-muscles.apkg"))
        # The new queue's positions (a new card's due) put the cards in the app's order, each its own place.
        cards = [col.get_card(card_id) for card_id in col.find_cards("is:new")]
        assert len(cards) == len(expected)
        assert len({card.due for card in cards}) == len(cards)
        assert [anki_key(col, card.id) for card in sorted(cards, key=lambda card: card.due)] == expected

        # What Anki's scheduler hands out: with "New card sort order: order gathered" exactly the app's
        # order; with Anki's default sort (card type first) the same cards each day, questions first.
        anki_deck = col.decks.id_for_name(spec.title)
        col.decks.select(anki_deck)
        config = col.decks.config_dict_for_deck_id(anki_deck)
        config["new"]["perDay"] = 20
        col.decks.update_config(config)
        queued = [anki_key(col, queued.card.id) for queued in col.sched.get_queued_cards(fetch_limit=20).cards]
        assert queued[:10] == [key for key in expected[:20] if key[1] == 0][:10]
        assert sorted(queued) == sorted(expected[:20])
        config["newSortOrder"] = 1  # NEW_CARD_SORT_ORDER_NO_SORT: the order gathered, i.e. deck order
        config["new"]["perDay"] = 9999
        col.decks.update_config(config)
        queued = [anki_key(col, queued.card.id)
                  for queued in col.sched.get_queued_cards(fetch_limit=len(expected)).cards]
        assert queued == expected
    finally:
        col.close()
