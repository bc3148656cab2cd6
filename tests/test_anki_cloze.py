"""Cloze facts: a facts file declares them, generation makes cloze cards, Anki imports them as Cloze notes.

The export is imported into a real Anki collection; a re-export after a wording fix updates the note.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from anki.collection import Collection
from anki.import_export_pb2 import (
    ImportAnkiPackageOptions,
    ImportAnkiPackageRequest,
    ImportAnkiPackageUpdateCondition,
)
from anki.models import MODEL_CLOZE
from sqlalchemy import select

from flashapp.anki_export import CLOZE_MODEL_ID, CLOZE_MODEL_NAME, MODEL_NAME, export_anki_package
from flashapp.decksource import DeckSourceError, parse_deck_text
from flashapp.generation import build_deck, plan_notes
from flashapp.models import Card, Deck
from tests.helpers import deck_text

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
LATER = datetime(2026, 3, 8, 9, 0, tzinfo=timezone.utc)
IF_NEWER = ImportAnkiPackageUpdateCondition.IMPORT_ANKI_PACKAGE_UPDATE_CONDITION_IF_NEWER
SENTENCE = "Evaporation turns liquid water into vapour when the Sun heats it."


def water(sentence: str = SENTENCE, hidden: str = "vapour") -> str:
    return deck_text(
        slug="water", title="Water", source="Science Hub", sections={"stages": "Stages"},
        relations={"cloze": {"cloze": "Fill the gap: {subject}"}, "stage": {"forward": "What is {subject}?"}},
        facts=[{"relation": "cloze", "id": "s1-vapour", "subject": sentence, "object": hidden, "section": "stages",
                "explanation": "Heat drives it."},
               {"relation": "stage", "subject": "condensation", "object": "vapour cooling", "section": "stages"}])


def test_a_cloze_fact_makes_one_card_with_the_span_hidden():
    plans = plan_notes(parse_deck_text(water()))
    cloze = plans[0]
    assert cloze.key == "water/cloze/s1-vapour"
    assert [(c.key, c.template, c.question, c.answer) for c in cloze.cards] == [
        ("water/cloze/s1-vapour/cloze", "cloze",
         "Fill the gap: Evaporation turns liquid water into [...] when the Sun heats it.", "vapour")]


@pytest.mark.parametrize(("text", "message"), [
    (water(hidden="steam"), "the words to hide, 'steam', do not occur in the subject"),
    (water().replace('cloze: "Fill the gap: {subject}"', 'cloze: "Fill the gap: {object}"')
     .replace("cloze: Fill the gap: {subject}", "cloze: Fill the gap: {object}"), "may only use {subject}"),
    (water().replace("    cloze:", "    forward: x\n    cloze:", 1), "stands alone"),
])
def test_a_wrong_cloze_is_refused_with_its_line(text, message):
    with pytest.raises(DeckSourceError, match=message) as refused:
        parse_deck_text(text, "water.yaml")
    assert refused.value.line


def anki_import(col: Collection, package: Path) -> None:
    request = ImportAnkiPackageRequest(package_path=str(package), options=ImportAnkiPackageOptions(
        merge_notetypes=True, update_notes=IF_NEWER, update_notetypes=IF_NEWER, with_scheduling=False,
        with_deck_configs=False))
    log = col.import_anki_package(request).log
    for problem in ("conflicting", "missing_notetype", "missing_deck", "empty_first_field", "duplicate"):
        assert not getattr(log, problem), f"Anki reported {problem} notes"


def test_a_cloze_fact_imports_into_anki_as_a_cloze_note_and_updates_in_place(session, tmp_path):
    build_deck(session, parse_deck_text(water()), now=NOW)
    session.commit()
    deck = session.scalar(select(Deck).where(Deck.slug == "water"))
    first = tmp_path / "first.apkg"
    export_anki_package(session, deck_id=deck.id, out=first, timestamp=NOW.timestamp())
    col = Collection(str(tmp_path / "collection.anki2"))
    try:
        anki_import(col, first)
        notetype = col.models.get(CLOZE_MODEL_ID)
        assert notetype["name"] == CLOZE_MODEL_NAME and notetype["type"] == MODEL_CLOZE
        assert col.models.by_name(MODEL_NAME) is not None  # the fact note type is there beside it, unchanged
        (note_id,) = col.find_notes(f'"note:{CLOZE_MODEL_NAME}"')
        note = col.get_note(note_id)
        assert note["Text"] == "Evaporation turns liquid water into {{c1::vapour}} when the Sun heats it."
        assert note["Back Extra"] == "Heat drives it." and note["Key"] == "water/cloze/s1-vapour"
        (card,) = note.cards()
        shown = re.sub(r"<[^>]+>", "", card.question().split("</style>")[-1])  # the text, without markup
        assert shown.strip() == "Evaporation turns liquid water into [...] when the Sun heats it."
        assert "vapour" in card.answer()

        # A wording fix keeps the key: Anki updates the same note rather than adding a second one.
        build_deck(session, parse_deck_text(water(sentence=SENTENCE.replace("turns", "changes"))), now=LATER)
        session.commit()
        assert session.scalar(select(Card.question).where(Card.key == "water/cloze/s1-vapour/cloze")).startswith(
            "Fill the gap: Evaporation changes")
        second = tmp_path / "second.apkg"
        export_anki_package(session, deck_id=deck.id, out=second, timestamp=LATER.timestamp())
        anki_import(col, second)
        assert col.find_notes(f'"note:{CLOZE_MODEL_NAME}"') == [note_id]
        assert col.get_note(note_id)["Text"].startswith("Evaporation changes liquid water into {{c1::vapour}}")
    finally:
        col.close()
