"""Turn a `DeckSpec` into notes and cards with stable keys, and apply it to the database.

Keys come from the fact (deck, relation, id), never from its wording, so a wording
fix updates the same note and cards in place. A fact that disappears retires its
note and cards: hidden from study, its review history untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from .database import refresh_statistics
from .decksource import DeckSourceError, DeckSpec, FactSpec, cloze_question_text, join_words, slugify
from .models import Card, Deck, Note
from .scheduling import forget_siblings


@dataclass(frozen=True)
class CardPlan:
    key: str
    template: str
    question: str
    answer: str


@dataclass(frozen=True)
class NotePlan:
    key: str
    relation: str
    subject: str
    object: str
    section: str
    supplemented: bool
    explanation: str
    cards: tuple[CardPlan, ...]
    section_title: str = ""


@dataclass
class BuildReport:
    """What a build changed, by note and card keys."""

    slug: str
    notes_added: list[str] = field(default_factory=list)
    notes_updated: list[str] = field(default_factory=list)
    notes_retired: list[str] = field(default_factory=list)
    cards_added: list[str] = field(default_factory=list)
    cards_updated: list[str] = field(default_factory=list)
    cards_retired: list[str] = field(default_factory=list)
    deck_updated: bool = False

    @property
    def changed(self) -> bool:
        return self.deck_updated or any((self.notes_added, self.notes_updated, self.notes_retired,
                    self.cards_added, self.cards_updated, self.cards_retired))

    def summary(self) -> str:
        return (f"{self.slug}: {len(self.notes_added)} notes added, {len(self.notes_updated)} updated, "
                f"{len(self.notes_retired)} retired; {len(self.cards_added)} cards added, "
                f"{len(self.cards_updated)} updated, {len(self.cards_retired)} retired")


# The longest note key the database stores (models.Note.key); a card's key adds its template.
MAX_KEY_CHARS = 300


def note_key(deck_slug: str, relation: str, fact_id: str) -> str:
    """The stable key of a fact's note: `deck/relation/id`."""
    return f"{deck_slug}/{relation}/{fact_id}"


def group_note_key(deck_slug: str, relation: str, object_text: str) -> str:
    """The stable key of the note gathering every fact of a relation that shares an object."""
    return f"{deck_slug}/{relation}/members-of-{slugify(object_text)}"


def plan_notes(spec: DeckSpec) -> list[NotePlan]:
    """Every note and card the deck should have, in deck order.

    Raises DeckSourceError (with the fact's line) for a key longer than the database stores.
    """
    plans: list[NotePlan] = []
    groups: dict[tuple[str, str], list[FactSpec]] = {}
    for fact in spec.facts:
        relation = spec.relations[fact.relation]
        key = note_key(spec.slug, fact.relation, fact.id)
        if len(key) > MAX_KEY_CHARS:
            raise DeckSourceError(spec.path, fact.line, f"this fact's key, {key[:40]}..., is {len(key)} characters "
                                                        f"long; the limit is {MAX_KEY_CHARS}: give it a shorter 'id'")
        if relation.is_cloze:
            plans.append(NotePlan(key=key, relation=fact.relation, subject=fact.subject, object=fact.object_text,
                                  section=fact.section, supplemented=fact.supplemented,
                                  explanation=fact.explanation, cards=(CardPlan(
                                      key=f"{key}/cloze", template="cloze",
                                      question=relation.templates["cloze"].format(
                                          subject=cloze_question_text(fact.subject, fact.object_text)),
                                      answer=relation.answer.format(subject=fact.subject, object=fact.object_text),
                                  ),), section_title=spec.sections[fact.section]))
            continue
        cards = [CardPlan(
            key=f"{key}/forward",
            template="forward",
            question=relation.templates["forward"].format(subject=fact.subject),
            answer=relation.answer.format(subject=fact.subject, object=fact.object_text),
        )]
        if "reverse" in relation.templates:
            cards.append(CardPlan(
                key=f"{key}/reverse",
                template="reverse",
                question=relation.templates["reverse"].format(object=fact.object_text),
                answer=fact.subject,
            ))
        plans.append(NotePlan(key=key, relation=fact.relation, subject=fact.subject, object=fact.object_text,
                              section=fact.section, supplemented=fact.supplemented,
                              explanation=fact.explanation, cards=tuple(cards),
                              section_title=spec.sections[fact.section]))
        if "grouped" in relation.templates:
            for obj in fact.objects:
                groups.setdefault((fact.relation, obj.lower()), []).append(fact)

    for (relation_name, _), members in groups.items():
        relation = spec.relations[relation_name]
        obj = next(o for o in members[0].objects if o.lower() == _)
        key = group_note_key(spec.slug, relation_name, obj)
        if len(key) > MAX_KEY_CHARS:
            raise DeckSourceError(spec.path, members[0].line, f"the grouped question's key for the object "
                                  f"'{obj[:40]}...' is {len(key)} characters long; the limit is {MAX_KEY_CHARS}: "
                                  "shorten the object")
        subjects = join_words([m.subject for m in members])
        plans.append(NotePlan(
            key=key, relation=relation_name, subject=obj, object=subjects,
            section=members[0].section, supplemented=any(m.supplemented for m in members), explanation="",
            cards=(CardPlan(key=f"{key}/grouped", template="grouped",
                            question=relation.templates["grouped"].format(object=obj), answer=subjects),),
            section_title=spec.sections[members[0].section],
        ))
    return plans


def build_deck(session: Session, spec: DeckSpec, *, now: datetime,
               plans: list[NotePlan] | None = None) -> BuildReport:
    """Bring the database's copy of a deck in line with its spec, keeping all history.

    Adds new notes and cards, updates changed wording in place, retires what the
    spec no longer has and revives what comes back. The caller commits.

    Notes and cards are read as plain rows and written in bulk (a few statements for
    the whole deck, not one a card); loaded Note and Card objects are expired after.
    `plans` are the spec's `plan_notes`, when the caller made them already.
    """
    report = BuildReport(slug=spec.slug)
    if plans is None:
        plans = plan_notes(spec)
    deck = session.scalar(select(Deck).where(Deck.slug == spec.slug))
    if deck is None:
        deck = Deck(slug=spec.slug, title=spec.title, source=spec.source, source_path=spec.path, built_at=now)
        session.add(deck)
    else:
        if (deck.title, deck.source, deck.source_path) != (spec.title, spec.source, spec.path):
            deck.title, deck.source, deck.source_path = spec.title, spec.source, spec.path
            report.deck_updated = True
    session.flush()

    notes = {row.key: row for row in session.execute(
        select(Note.id, Note.key, *(getattr(Note, name) for name in _NOTE_FIELDS)).where(Note.deck_id == deck.id))}
    cards = {row.key: row for row in session.execute(
        select(Card.id, Card.key, *(getattr(Card, name) for name in _CARD_FIELDS)).where(Card.deck_id == deck.id))}

    new_notes: list[dict[str, object]] = []
    changed_notes: list[dict[str, object]] = []
    for position, plan in enumerate(plans):
        values: dict[str, object] = {
            "relation": plan.relation, "subject": plan.subject, "object": plan.object, "section": plan.section,
            "section_title": plan.section_title, "supplemented": plan.supplemented, "explanation": plan.explanation,
            "position": position,
            "retired": False,
        }
        note = notes.get(plan.key)
        if note is None:
            new_notes.append({"deck_id": deck.id, "key": plan.key, "updated_at": now, **values})
            report.notes_added.append(plan.key)
        elif _differs(note, values):
            changed_notes.append({"id": note.id, "updated_at": now, **values})
            report.notes_updated.append(plan.key)
    note_ids = {key: note.id for key, note in notes.items()}
    note_table, card_table = cast(Table, Note.__table__), cast(Table, Card.__table__)
    for batch in _batches(new_notes):
        note_ids.update((key, note_id) for key, note_id in session.execute(
            insert(note_table).returning(note_table.c.key, note_table.c.id), batch))

    new_cards: list[dict[str, object]] = []
    changed_cards: list[dict[str, object]] = []
    wanted_cards: set[str] = set()
    position = 0
    for plan in plans:
        for card_plan in plan.cards:
            wanted_cards.add(card_plan.key)
            values = {"template": card_plan.template, "question": card_plan.question, "answer": card_plan.answer,
                      "position": position, "retired": False, "note_id": note_ids[plan.key]}
            position += 1
            card = cards.get(card_plan.key)
            if card is None:
                new_cards.append({"deck_id": deck.id, "key": card_plan.key, "updated_at": now, **values})
                report.cards_added.append(card_plan.key)
            elif _differs(card, values):
                changed_cards.append({"id": card.id, "updated_at": now, **values})
                report.cards_updated.append(card_plan.key)

    wanted_notes = {plan.key for plan in plans}
    for key, note in notes.items():
        if key not in wanted_notes and not note.retired:
            changed_notes.append({"id": note.id, "retired": True, "updated_at": now})
            report.notes_retired.append(key)
    for key, card in cards.items():
        if key not in wanted_cards and not card.retired:
            changed_cards.append({"id": card.id, "retired": True, "updated_at": now})
            report.cards_retired.append(key)

    for batch in _batches(new_cards):
        session.execute(insert(card_table), batch)
    _update_rows(session, note_table, changed_notes)
    _update_rows(session, card_table, changed_cards)
    if report.changed:
        deck.built_at = now
    # Every wanted card is active and every other one retired.
    deck.active_cards = len(wanted_cards)
    session.flush()
    forget_siblings(deck.id)  # this process's map of the deck's siblings, should its notes have changed
    if report.changed:
        refresh_statistics(session, ("note", "card"))
    for loaded in list(session.identity_map.values()):
        if isinstance(loaded, (Note, Card)):
            session.expire(loaded)
    return report


_NOTE_FIELDS = ("relation", "subject", "object", "section", "section_title", "supplemented", "explanation", "position",
                "retired")
_CARD_FIELDS = ("template", "question", "answer", "position", "retired", "note_id")
_BATCH = 1000


def _update_rows(session: Session, table: Table, rows: list[dict[str, object]]) -> None:
    """Update rows by id, each to its values: one executemany per batch of rows that set the same columns."""
    for shape in {tuple(row) for row in rows}:
        columns = [name for name in shape if name != "id"]
        statement = (update(table).where(table.c.id == bindparam("row_id"))
                     .values({name: bindparam(f"new_{name}") for name in columns}))
        matching = [{"row_id": row["id"], **{f"new_{name}": row[name] for name in columns}}
                    for row in rows if tuple(row) == shape]
        for batch in _batches(matching):
            session.execute(statement, batch)


def _batches(rows: list[dict[str, object]]) -> Iterator[list[dict[str, object]]]:
    for start in range(0, len(rows), _BATCH):
        yield rows[start:start + _BATCH]


def _differs(row: Row[Any], values: dict[str, object]) -> bool:
    """Whether a stored row differs from the values it should have."""
    mapping = row._mapping
    return any(mapping[name] != value for name, value in values.items())
