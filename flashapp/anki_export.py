"""Export a deck as an Anki package (.apkg) with genanki.

The note type and deck ids are fixed and each note's GUID comes from its note key,
so importing a re-export updates the notes instead of adding copies. Notes are
stamped with the export time: Anki only takes an update that is newer than its copy.
The note type's fields are frozen: add new ones at the end, never rename or reorder.

Each new card's position in Anki's new queue is its position in the app's deck, so Anki
introduces the cards in the app's order. A fact the document does not state (a
supplemented one) says so where a stated fact cites the document.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import os
import sqlite3
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import genanki
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .models import Card, Deck, Note

MODEL_ID = 1_690_412_845
MODEL_NAME = "flashapp fact"
FIELDS = ["Question", "Answer", "Reverse Question", "Reverse Answer", "Explanation", "Section", "Source", "Key"]

CSS = """
.card { font-family: system-ui, sans-serif; font-size: 22px; line-height: 1.4; text-align: center;
        color: #1d2430; background: #fdfcf9; }
.explanation { font-size: 17px; color: #4b5563; margin-top: 1em; }
.source { font-size: 13px; color: #6b7280; margin-top: 2em; }
"""
_BACK_EXTRA = ('{{#Explanation}}<div class="explanation">{{Explanation}}</div>{{/Explanation}}'
               '<div class="source">{{Source}}</div>')

FACT_MODEL = genanki.Model(
    MODEL_ID,
    MODEL_NAME,
    fields=[{"name": name} for name in FIELDS],
    templates=[
        {
            "name": "Question",
            "qfmt": "{{Question}}",
            "afmt": '{{FrontSide}}<hr id="answer">{{Answer}}' + _BACK_EXTRA,
        },
        {
            "name": "Reverse",
            "qfmt": "{{#Reverse Question}}{{Reverse Question}}{{/Reverse Question}}",
            "afmt": '{{FrontSide}}<hr id="answer">{{Reverse Answer}}' + _BACK_EXTRA,
        },
    ],
    css=CSS,
    sort_field_index=0,
)


# What a supplemented fact's card shows where a stated fact cites the document.
SUPPLEMENTED_SOURCE = ("Not from the source: this fact was added to complete the deck, "
                       "and the document does not state it.")

# Which of the note type's templates makes each of the app's cards (Anki numbers templates from 0).
# A cloze card is the first (and only) card of its Cloze note.
TEMPLATE_ORDINALS = {"forward": 0, "grouped": 0, "reverse": 1, "cloze": 0}

# Cloze facts (a sentence with a span hidden) go to Anki as its own kind of note, a Cloze note type,
# with a fixed id of its own; its fields are frozen like the fact note type's.
CLOZE_MODEL_ID = 1_690_412_846
CLOZE_MODEL_NAME = "flashapp cloze"
CLOZE_FIELDS = ["Text", "Back Extra", "Section", "Source", "Key"]

CLOZE_MODEL = genanki.Model(
    CLOZE_MODEL_ID,
    CLOZE_MODEL_NAME,
    fields=[{"name": name} for name in CLOZE_FIELDS],
    templates=[
        {
            "name": "Cloze",
            "qfmt": "{{cloze:Text}}",
            "afmt": ('{{cloze:Text}}{{#Back Extra}}<div class="explanation">{{Back Extra}}</div>{{/Back Extra}}'
                     '<div class="source">{{Source}}</div>'),
        },
    ],
    css=CSS + ".cloze { font-weight: bold; color: #1d4ed8; }\n",
    model_type=genanki.Model.CLOZE,
    sort_field_index=0,
)


def anki_cloze_text(sentence: str, hidden: str) -> str:
    """The sentence as an Anki Cloze field: HTML-escaped, its first occurrence of `hidden` as {{c1::...}}."""
    before, found, after = sentence.partition(hidden)
    if not found:
        raise ValueError(f"{hidden!r} does not occur in {sentence!r}")
    # Braces in the text would read as cloze markup: Anki shows "{" written as an HTML entity.
    def escape(text: str) -> str:
        return html.escape(text, quote=False).replace("{", "&#123;").replace("}", "&#125;")
    return f"{escape(before)}{{{{c1::{escape(hidden)}}}}}{escape(after)}"


def anki_cloze_note_for(note: Note, source: str) -> genanki.Note:
    """The Anki Cloze note for a cloze fact: its subject is the sentence, its object the hidden words."""
    shown_source = SUPPLEMENTED_SOURCE if note.supplemented else source
    fields = [anki_cloze_text(note.subject, note.object)] + [
        html.escape(text, quote=False) for text in (note.explanation, note.section_title or note.section,
                                                    shown_source, note.key)]
    tags = [f"flashapp::relation::{_tag(note.relation)}", f"flashapp::section::{_tag(note.section)}"]
    if note.supplemented:
        tags.append("flashapp::supplemented")
    return genanki.Note(model=CLOZE_MODEL, fields=fields, guid=genanki.guid_for(note.key), tags=tags)


def anki_deck_id(slug: str) -> int:
    """A fixed Anki deck id for a deck slug (the same on every export and every install)."""
    digest = hashlib.sha256(f"flashapp-deck:{slug}".encode()).digest()
    return (1 << 30) | (int.from_bytes(digest[:4], "big") & ((1 << 30) - 1))


def _tag(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


def anki_note_for(note: Note, source: str) -> genanki.Note:
    """The Anki note for one of the deck's notes (its forward or grouped card, and a reverse if any)."""
    cards = {card.template: card for card in note.cards if not card.retired}
    if "cloze" in cards:
        return anki_cloze_note_for(note, source)
    front = cards.get("forward") or cards.get("grouped")
    if front is None:
        # Generation gives every active note one of the two; a note without is a bug, not a user's error.
        raise ValueError(f"note {note.key} has neither a forward nor a grouped card")
    reverse = cards.get("reverse")
    # A note built before section titles were kept has none until its deck is rebuilt: show the name meanwhile.
    section = note.section_title or note.section
    texts = [front.question, front.answer, reverse.question if reverse else "", reverse.answer if reverse else "",
             note.explanation, section, SUPPLEMENTED_SOURCE if note.supplemented else source, note.key]
    # Anki fields hold HTML: card text is plain text, so escape it (quotes need no escaping there).
    fields = [html.escape(text, quote=False) for text in texts]
    tags = [f"flashapp::relation::{_tag(note.relation)}", f"flashapp::section::{_tag(note.section)}"]
    if note.supplemented:
        tags.append("flashapp::supplemented")
    return genanki.Note(model=FACT_MODEL, fields=fields, guid=genanki.guid_for(note.key), tags=tags)


def build_anki_deck(session: Session, *, deck_id: int) -> genanki.Deck:
    """The genanki deck holding every active note of a deck."""
    deck = session.get(Deck, deck_id)
    if deck is None:
        raise LookupError(f"no deck with id {deck_id}")
    anki_deck = genanki.Deck(anki_deck_id(deck.slug), deck.title)
    notes = session.scalars(
        select(Note).where(Note.deck_id == deck.id, Note.retired.is_(False))
        .options(selectinload(Note.cards)).order_by(Note.position)
    )
    for note in notes:
        anki_deck.add_note(anki_note_for(note, deck.source))
    return anki_deck


@dataclass(frozen=True)
class ExportedCard:
    """One of the deck's active cards, and the card that stands for it in the exported collection."""

    card_id: int  # the app's
    anki_card_id: int
    position: int  # in the app's deck order


def exported_cards(session: Session, connection: sqlite3.Connection, *, deck_id: int) -> list[ExportedCard]:
    """The deck's active cards in the app's order, each with its card in a collection written by this module.

    A card is found by its note's GUID and its template's ordinal, as Anki matches cards on import.
    """
    anki_ids = {(guid, ordinal): card_id for card_id, guid, ordinal in connection.execute(
        "SELECT cards.id, notes.guid, cards.ord FROM cards JOIN notes ON notes.id = cards.nid")}
    rows = session.execute(select(Card.id, Card.template, Card.position, Note.key)
                           .join(Note, Note.id == Card.note_id)
                           .where(Card.deck_id == deck_id, Card.retired.is_(False), Note.retired.is_(False))
                           .order_by(Card.position))
    return [ExportedCard(card_id, anki_ids[(genanki.guid_for(key), TEMPLATE_ORDINALS[template])], position)
            for card_id, template, position, key in rows]


def order_new_cards(connection: sqlite3.Connection, cards: list[ExportedCard]) -> None:
    """Give each new card its place in Anki's new queue: its position in the app's deck."""
    connection.executemany("UPDATE cards SET due = ? WHERE id = ? AND type = 0",
                           [(card.position, card.anki_card_id) for card in cards])


# Changes a written collection before it is packed: given the session, the open collection and its cards.
Amendment = Callable[[Session, sqlite3.Connection, list[ExportedCard]], None]


def export_anki_package(session: Session, *, deck_id: int, out: str | os.PathLike[str] | BinaryIO,
                        timestamp: float | None = None, amend: Amendment | None = None) -> None:
    """Write a deck as an .apkg to a path or a binary file object.

    Does what `genanki.Package.write_to_file` does, but removes its scratch
    database afterwards and accepts a file object. New cards are placed in the
    app's order; `amend` may then change the collection further (a student's
    progress, say) before it is packed.
    """
    package = genanki.Package(build_anki_deck(session, deck_id=deck_id))
    timestamp = time.time() if timestamp is None else timestamp
    with tempfile.TemporaryDirectory(prefix="flashapp-apkg-") as scratch:
        collection = os.path.join(scratch, "collection.anki2")
        connection = sqlite3.connect(collection)
        try:
            package.write_to_db(connection.cursor(), timestamp, itertools.count(int(timestamp * 1000)))
            cards = exported_cards(session, connection, deck_id=deck_id)
            order_new_cards(connection, cards)
            if amend is not None:
                amend(session, connection, cards)
            connection.commit()
        finally:
            connection.close()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.write(collection, "collection.anki2")
            archive.writestr("media", "{}")
