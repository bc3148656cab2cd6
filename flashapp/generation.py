"""Turn a `DeckSpec` into notes and cards with stable keys, and apply it to the database.

Keys come from the fact (deck, relation, id), never from its wording, so a wording
fix updates the same note and cards in place. A fact that disappears retires its
note and cards: hidden from study, its review history untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .decksource import DeckSpec, FactSpec, join_words, slugify
from .models import Card, Deck, Note


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


def note_key(deck_slug: str, relation: str, fact_id: str) -> str:
    """The stable key of a fact's note: `deck/relation/id`."""
    return f"{deck_slug}/{relation}/{fact_id}"


def group_note_key(deck_slug: str, relation: str, object_text: str) -> str:
    """The stable key of the note gathering every fact of a relation that shares an object."""
    return f"{deck_slug}/{relation}/members-of-{slugify(object_text)}"


def plan_notes(spec: DeckSpec) -> list[NotePlan]:
    """Every note and card the deck should have, in deck order."""
    plans: list[NotePlan] = []
    groups: dict[tuple[str, str], list[FactSpec]] = {}
    for fact in spec.facts:
        relation = spec.relations[fact.relation]
        key = note_key(spec.slug, fact.relation, fact.id)
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
                              explanation=fact.explanation, cards=tuple(cards)))
        if "grouped" in relation.templates:
            for obj in fact.objects:
                groups.setdefault((fact.relation, obj.lower()), []).append(fact)

    for (relation_name, _), members in groups.items():
        relation = spec.relations[relation_name]
        obj = next(o for o in members[0].objects if o.lower() == _)
        key = group_note_key(spec.slug, relation_name, obj)
        subjects = join_words([m.subject for m in members])
        plans.append(NotePlan(
            key=key, relation=relation_name, subject=obj, object=subjects,
            section=members[0].section, supplemented=any(m.supplemented for m in members), explanation="",
            cards=(CardPlan(key=f"{key}/grouped", template="grouped",
                            question=relation.templates["grouped"].format(object=obj), answer=subjects),),
        ))
    return plans


def build_deck(session: Session, spec: DeckSpec, *, now: datetime) -> BuildReport:
    """Bring the database's copy of a deck in line with its spec, keeping all history.

    Adds new notes and cards, updates changed wording in place, retires what the
    spec no longer has and revives what comes back. The caller commits.
    """
    report = BuildReport(slug=spec.slug)
    deck = session.scalar(select(Deck).where(Deck.slug == spec.slug))
    if deck is None:
        deck = Deck(slug=spec.slug, title=spec.title, source=spec.source, source_path=spec.path, built_at=now)
        session.add(deck)
        session.flush()
    else:
        if (deck.title, deck.source, deck.source_path) != (spec.title, spec.source, spec.path):
            deck.title, deck.source, deck.source_path = spec.title, spec.source, spec.path
            report.deck_updated = True

    notes = {n.key: n for n in session.scalars(select(Note).where(Note.deck_id == deck.id))}
    cards = {c.key: c for c in session.scalars(select(Card).where(Card.deck_id == deck.id))}
    wanted_notes: set[str] = set()
    wanted_cards: set[str] = set()
    card_position = 0

    for note_position, plan in enumerate(plan_notes(spec)):
        wanted_notes.add(plan.key)
        values: dict[str, object] = {
            "relation": plan.relation, "subject": plan.subject, "object": plan.object, "section": plan.section,
            "supplemented": plan.supplemented, "explanation": plan.explanation, "position": note_position,
            "retired": False,
        }
        note = notes.get(plan.key)
        if note is None:
            note = Note(deck_id=deck.id, key=plan.key, updated_at=now, **values)
            session.add(note)
            session.flush()
            report.notes_added.append(plan.key)
        elif _assign_changes(note, values):
            note.updated_at = now
            report.notes_updated.append(plan.key)

        for card_plan in plan.cards:
            wanted_cards.add(card_plan.key)
            values = {"template": card_plan.template, "question": card_plan.question, "answer": card_plan.answer,
                      "position": card_position, "retired": False, "note_id": note.id}
            card_position += 1
            card = cards.get(card_plan.key)
            if card is None:
                session.add(Card(deck_id=deck.id, key=card_plan.key, updated_at=now, **values))
                report.cards_added.append(card_plan.key)
            elif _assign_changes(card, values):
                card.updated_at = now
                report.cards_updated.append(card_plan.key)

    for key, note in notes.items():
        if key not in wanted_notes and not note.retired:
            note.retired = True
            note.updated_at = now
            report.notes_retired.append(key)
    for key, card in cards.items():
        if key not in wanted_cards and not card.retired:
            card.retired = True
            card.updated_at = now
            report.cards_retired.append(key)
    if report.changed:
        deck.built_at = now
    # Every wanted card is active and every other one retired.
    deck.active_cards = len(wanted_cards)
    session.flush()
    return report


def _assign_changes(row: object, values: dict[str, object]) -> bool:
    """Set the attributes that differ; True when any did."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed
