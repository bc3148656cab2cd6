"""Decks a teacher writes in the browser: a stored document, facts written against its sentences, publishing.

A published document becomes a `DeckSpec` and is built by `generation.build_deck`, the path a
facts file takes, so keys, retire-not-delete and kept progress are the same for both. A fact's
key part (`fact_id`) is chosen when the fact is first written and never changes, so a corrected
wording updates the same cards. Every use case here owns its transaction; each refusal is a
domain error naming the form field it belongs beside, and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from .candidates import Candidate, find_candidates
from .database import write_transaction
from .decksource import (
    MAX_TITLE_CHARS,
    TEMPLATE_FIELDS,
    DeckSourceError,
    DeckSpec,
    FactSpec,
    RelationSpec,
    check_deck_spec,
    slugify,
)
from .documents import Block, DocumentError, read_document
from .errors import Conflict, Invalid, NotFound
from .facts_io import FactDraft
from .generation import BuildReport, NotePlan, build_deck, note_key, plan_notes
from .models import (
    AuthoredFact,
    Deck,
    DeckRevision,
    Document,
    DocumentSection,
    DocumentSentence,
    Note,
)
from .sentences import split_sentences
from .text_input import has_control_characters

# The relations a new document starts with; the teacher may change their questions per deck.
PRESET_RELATIONS: dict[str, dict[str, str]] = {
    "term-definition": {"label": "term → definition", "forward": "What is {subject}?",
                        "reverse": "Which term means: {object}?"},
    "item-category": {"label": "item → category", "forward": "Which category does {subject} belong to?",
                      "grouped": "Which of these belong to {object}?"},
    "item-function": {"label": "item → function", "forward": "What does {subject} do?"},
    "situation-action": {"label": "situation → action", "forward": "What should you do when {subject}?"},
    "cloze": {"label": "cloze: hide words of the sentence", "cloze": "{subject}"},
}
QUESTION_FIELDS = ("forward", "reverse", "grouped", "cloze", "answer")
MAX_FACT_CHARS = 2_000
MAX_ID_CHARS = 60
NO_HEADING_SECTION = ("introduction", "Introduction")


@dataclass(frozen=True)
class DocumentLimits:
    """How large an uploaded or pasted document may be (DOCUMENT_MAX_BYTES)."""

    document_max_bytes: int = 512_000


# --- reading -----------------------------------------------------------------------------------------


def own_document(session: Session, *, teacher_id: int, document_id: int) -> Document:
    """One of this teacher's documents; another teacher's is simply not found (NotFound)."""
    document = session.get(Document, document_id)
    if document is None or document.owner_id != teacher_id:
        raise NotFound("There is no such deck among yours.")
    return document


def teachers_documents(session: Session, teacher_id: int) -> list[Document]:
    """This teacher's documents, newest first."""
    return list(session.scalars(select(Document).where(Document.owner_id == teacher_id)
                                .order_by(Document.created_at.desc(), Document.id.desc())))


def bundled_decks(session: Session) -> list[Deck]:
    """The decks built from facts files (no owner): read-only in the browser."""
    return list(session.scalars(select(Deck).where(Deck.owner_id.is_(None)).order_by(Deck.title)))


def relations_of(document: Document) -> dict[str, dict[str, str]]:
    """The document's relations: name -> label and question templates."""
    value: dict[str, dict[str, str]] = json.loads(document.relations)
    return value


def document_spec(document: Document) -> DeckSpec:
    """The deck the document's facts make, as a facts file would give it."""
    sections = {section.name: section.title for section in document.sections}
    relations = {name: RelationSpec(name=name, line=0,
                                    templates={k: v for k, v in fields.items() if k in TEMPLATE_FIELDS and v},
                                    answer=fields.get("answer") or "{object}")
                 for name, fields in relations_of(document).items()}
    first_section = document.sections[0].name
    # A fact's "line" is its place in the document's list of facts, counted from 1.
    facts = [FactSpec(relation=fact.relation, subject=fact.subject, objects=(fact.object,),
                      section=fact.sentence.section.name if fact.sentence else first_section,
                      supplemented=fact.supplemented, line=number, id=fact.fact_id, explanation=fact.explanation)
             for number, fact in enumerate(document.facts, start=1)]
    return DeckSpec(path=f"documents/{document.id}", slug=document.slug, title=document.title,
                    source=document.citation, sections=sections, relations=relations, facts=facts)


def preview_cards(document: Document) -> list[NotePlan]:
    """Every note and card publishing would make, in deck order; Invalid when the facts cannot make a deck."""
    spec = document_spec(document)
    try:
        check_deck_spec(spec)
        return plan_notes(spec)
    except DeckSourceError as error:
        # Say which fact, in words: a browser-written deck has no lines.
        facts = document.facts
        message = re.sub(r"the fact on line (\d+)",
                         lambda match: f"the fact “{facts[int(match.group(1)) - 1].subject}”", error.message)
        if error.line:
            message = f"The fact “{facts[error.line - 1].subject}”: {message}"
        raise Invalid(message) from None


def fact_keys(document: Document) -> dict[int, str]:
    """Each fact's note key, by the fact's row id."""
    return {fact.id: note_key(document.slug, fact.relation, fact.fact_id) for fact in document.facts}


# --- suggested facts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    """A candidate fact found in one of the document's sentences, with a key to accept or drop it by."""

    key: str
    candidate: Candidate
    sentence: DocumentSentence


def _suggestion_key(sentence: DocumentSentence, candidate: Candidate) -> str:
    text = "\x1f".join((sentence.anchor, candidate.relation, candidate.subject, candidate.object))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def suggested_facts(document: Document) -> list[Suggestion]:
    """The candidate facts of the document's sentences (rules over the text), less those written or dropped.

    A candidate is left out once the deck has a fact of its relation about its subject, or the
    teacher dropped it.
    """
    relations = relations_of(document)
    dropped = set(json.loads(document.dropped_suggestions or "[]"))
    written = {(fact.relation, fact.subject.casefold()) for fact in document.facts}
    by_text: dict[str, DocumentSentence] = {}
    for sentence in document.sentences:
        by_text.setdefault(sentence.text.strip(), sentence)
    found = find_candidates((sentence.section.title, sentence.text) for sentence in document.sentences)
    suggestions = []
    for candidate in found:
        source = by_text.get(candidate.sentence)
        if (source is None or candidate.relation not in relations
                or (candidate.relation, candidate.subject.casefold()) in written):
            continue
        key = _suggestion_key(source, candidate)
        if key not in dropped:
            suggestions.append(Suggestion(key, candidate, source))
    return suggestions


def _suggestion(document: Document, key: str) -> Suggestion:
    for suggestion in suggested_facts(document):
        if suggestion.key == key:
            return suggestion
    raise NotFound("This suggestion is no longer there: it was accepted or dropped already.")


def accept_suggestion(session: Session, *, teacher_id: int, document_id: int, key: str,
                      now: datetime) -> AuthoredFact:
    """Write a suggested fact as it stands, from its sentence."""
    with write_transaction(session):
        document = own_document(session, teacher_id=teacher_id, document_id=document_id)
        suggestion = _suggestion(document, key)
        candidate = suggestion.candidate
        return write_fact(session, teacher_id=teacher_id, document_id=document_id, now=now, fact=FactInput(
            relation=candidate.relation, subject=candidate.subject, object=candidate.object,
            sentence_id=suggestion.sentence.id))


def drop_suggestion(session: Session, *, teacher_id: int, document_id: int, key: str) -> None:
    """Stop suggesting this candidate fact for the document."""
    with write_transaction(session):
        document = own_document(session, teacher_id=teacher_id, document_id=document_id)
        _suggestion(document, key)
        dropped = json.loads(document.dropped_suggestions or "[]")
        document.dropped_suggestions = json.dumps([*dropped, key])


# --- a new document ---------------------------------------------------------------------------------


def _line(text: str | None, *, what: str, field: str, limit: int) -> str:
    value = (text or "").strip()
    if not value:
        raise Invalid(f"Give the {what}.", field=field)
    if has_control_characters(value):
        raise Invalid(f"The {what} cannot contain control characters; type it on one line.", field=field)
    if len(value) > limit:
        raise Invalid(f"The {what} has {len(value):,} characters; the limit is {limit:,}.", field=field)
    return value


def _unique_name(base: str, taken: set[str], limit: int = MAX_ID_CHARS) -> str:
    base = base[:limit].strip("-") or "item"
    name, number = base, 2
    while name in taken:
        name = f"{base}-{number}"
        number += 1
    taken.add(name)
    return name


def create_document(session: Session, *, owner_id: int, title: str | None, citation: str | None, kind: str,
                    data: bytes, file_name: str = "", limits: DocumentLimits = DocumentLimits(),
                    now: datetime) -> Document:
    """Store a teacher's document split into sections and sentences, ready for writing facts.

    Args:
        kind: the document's kind ('text', 'markdown', 'html', 'pdf'); pasted text is 'markdown'.
        data: its bytes. The field for errors about it is 'document'.
    """
    title = _line(title, what="deck's title", field="title", limit=MAX_TITLE_CHARS)
    citation = _line(citation, what="citation of the document", field="citation", limit=MAX_FACT_CHARS)
    try:
        blocks = read_document(kind=kind, data=data, max_bytes=limits.document_max_bytes)
    except DocumentError as error:
        raise Invalid(error.message, field="document") from None
    with write_transaction(session):
        taken = set(session.scalars(select(Deck.slug))) | set(session.scalars(select(Document.slug)))
        document = Document(owner_id=owner_id, slug=_unique_name(slugify(title) or "deck", taken),
                            title=title, citation=citation, file_name=file_name[:200],
                            relations=json.dumps(PRESET_RELATIONS), created_at=now)
        session.add(document)
        session.flush()
        _store_blocks(session, document, blocks)
        return document


def _store_blocks(session: Session, document: Document, blocks: list[Block]) -> None:
    names: set[str] = set()
    section: DocumentSection | None = None
    position = paragraph = 0
    for block in blocks:
        if block.is_heading:
            section = DocumentSection(document_id=document.id, position=len(names),
                                      name=_unique_name(slugify(block.text) or "section", names),
                                      title=block.text[:200])
            session.add(section)
            continue
        if section is None:
            section = DocumentSection(document_id=document.id, position=0,
                                      name=_unique_name(NO_HEADING_SECTION[0], names), title=NO_HEADING_SECTION[1])
            session.add(section)
        session.flush()
        paragraph += 1
        for text in split_sentences(block.text):
            position += 1
            session.add(DocumentSentence(document_id=document.id, section_id=section.id, position=position,
                                         paragraph=paragraph, anchor=f"s{position}", text=text))
    session.flush()


# --- relations --------------------------------------------------------------------------------------


def check_template(text: str, *, template: str) -> None:
    """Refuse a question template with an unknown placeholder or an unmatched brace (Invalid beside it)."""
    allowed = {"object", "subject"} if template == "answer" else TEMPLATE_FIELDS[template]
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError:
        raise Invalid("This question has an unmatched “{” or “}”.", field=template) from None
    unknown = names - allowed
    if unknown:
        raise Invalid(f"This question uses {{{sorted(unknown)[0]}}}; it may only use "
                      + " and ".join("{" + name + "}" for name in sorted(allowed)) + ".", field=template)


def set_relation_questions(session: Session, *, teacher_id: int, document_id: int, relation: str,
                           questions: dict[str, str]) -> None:
    """Change the question templates of one of a document's relations (published at the next publish)."""
    with write_transaction(session):
        document = own_document(session, teacher_id=teacher_id, document_id=document_id)
        relations = relations_of(document)
        if relation not in relations:
            raise NotFound("This deck has no such relation.")
        current = relations[relation]
        changed = {"label": current["label"]}
        is_cloze = "cloze" in current
        for name in QUESTION_FIELDS:
            if (name == "cloze") != is_cloze and name != "answer":
                continue
            text = (questions.get(name) or "").strip()
            if has_control_characters(text):
                raise Invalid("A question cannot contain control characters; type it on one line.", field=name)
            if len(text) > MAX_FACT_CHARS:
                raise Invalid(f"A question has at most {MAX_FACT_CHARS:,} characters.", field=name)
            if text:
                check_template(text, template=name)
                changed[name] = text
        main = "cloze" if is_cloze else "forward"
        if main not in changed:
            raise Invalid("Every relation needs this question: write it, with its placeholder.", field=main)
        relations[relation] = changed
        document.relations = json.dumps(relations)


# --- facts ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactInput:
    """What a teacher typed for a fact."""

    relation: str
    subject: str
    object: str
    explanation: str = ""
    supplemented: bool = False
    sentence_id: int | None = None


def sentence_of(session: Session, document: Document, sentence_id: int | None) -> DocumentSentence | None:
    """A sentence of this document (NotFound for one of another document)."""
    if sentence_id is None:
        return None
    sentence = session.get(DocumentSentence, sentence_id)
    if sentence is None or sentence.document_id != document.id:
        raise NotFound("This document has no such sentence.")
    return sentence


def _checked_fact(session: Session, document: Document, typed: FactInput, editing: AuthoredFact | None,
                  *, imported: bool = False) -> tuple[FactInput, DocumentSentence | None]:
    relations = relations_of(document)
    relation = editing.relation if editing else typed.relation
    if relation not in relations:
        raise Invalid("Choose one of the deck's relations.", field="relation")
    sentence = sentence_of(session, document, typed.sentence_id)
    is_cloze = "cloze" in relations[relation]
    if is_cloze and sentence is not None and not (typed.subject or "").strip():
        typed = FactInput(relation=typed.relation, subject=sentence.text, object=typed.object,
                          explanation=typed.explanation, supplemented=typed.supplemented, sentence_id=sentence.id)
    subject = _line(typed.subject, what="cloze sentence" if is_cloze else "subject", field="subject",
                    limit=MAX_FACT_CHARS)
    obj = _line(typed.object, what="words to hide" if is_cloze else "object", field="object", limit=MAX_FACT_CHARS)
    explanation = (typed.explanation or "").strip()
    if explanation:
        explanation = _line(explanation, what="explanation", field="explanation", limit=MAX_FACT_CHARS)
    if is_cloze:
        if sentence is None and not imported:
            raise Invalid("A cloze fact hides words of a sentence: pick the sentence on the document's page.",
                          field="subject")
        if obj not in subject:
            raise Invalid(f"“{obj}” does not occur in the sentence. Type the words to hide exactly as the "
                          "sentence has them.", field="object")
    elif sentence is None and not typed.supplemented and not imported:
        raise Invalid("Pick the sentence that states this fact on the document's page, or tick “Supplemented” "
                      "if the document does not state it.", field="supplemented")
    reverse = "reverse" in relations[relation]
    for other in document.facts:
        if other is editing or other.relation != relation:
            continue
        if reverse and other.object.casefold() == obj.casefold() and other.subject.casefold() != subject.casefold():
            raise Invalid(f"The fact “{other.subject[:80]}” already has this object, so the reverse question "
                          f"(“{relations[relation]['reverse']}”) would have two answers. Word the object so "
                          "that it fits this subject only.", field="object")
        same = other.subject.casefold() == subject.casefold()
        if same and (not is_cloze or other.object.casefold() == obj.casefold()):
            raise Invalid(f"This deck already has this “{relations[relation]['label']}” fact about "
                          f"“{other.subject[:80]}”. Edit that fact instead of writing it twice.", field="subject")
    return FactInput(relation=relation, subject=subject, object=obj, explanation=explanation,
                     supplemented=typed.supplemented, sentence_id=sentence.id if sentence else None), sentence


def write_fact(session: Session, *, teacher_id: int, document_id: int, fact: FactInput, now: datetime,
               imported: bool = False) -> AuthoredFact:
    """Add a fact to a document; its key part is chosen now, from its words, and kept for good.

    An `imported` fact (from a table) may come without a sentence of the document.
    """
    with write_transaction(session):
        document = own_document(session, teacher_id=teacher_id, document_id=document_id)
        checked, sentence = _checked_fact(session, document, fact, None, imported=imported)
        is_cloze = "cloze" in relations_of(document)[checked.relation]
        base = slugify(checked.object if is_cloze else checked.subject)[:MAX_ID_CHARS].strip("-") or "fact"
        if is_cloze and sentence is not None:
            base = f"{sentence.anchor}-{base}"[:MAX_ID_CHARS].strip("-")
        taken = {f.fact_id for f in document.facts if f.relation == checked.relation}
        authored = AuthoredFact(document_id=document.id, sentence_id=checked.sentence_id, relation=checked.relation,
                                fact_id=_unique_name(base, taken), subject=checked.subject, object=checked.object,
                                explanation=checked.explanation, supplemented=checked.supplemented,
                                created_at=now, updated_at=now)
        session.add(authored)
        session.flush()
        return authored


def own_fact(session: Session, document: Document, fact_id: int) -> AuthoredFact:
    """A fact of this document (NotFound otherwise)."""
    fact = session.get(AuthoredFact, fact_id)
    if fact is None or fact.document_id != document.id:
        raise NotFound("This deck has no such fact.")
    return fact


def edit_fact(session: Session, *, teacher_id: int, document_id: int, fact_row_id: int, fact: FactInput,
              now: datetime) -> AuthoredFact:
    """Change a fact's words; its relation and key stay, so its cards keep everyone's progress."""
    with write_transaction(session):
        document = own_document(session, teacher_id=teacher_id, document_id=document_id)
        authored = own_fact(session, document, fact_row_id)
        checked, _sentence = _checked_fact(session, document, fact, authored)
        authored.subject, authored.object = checked.subject, checked.object
        authored.explanation, authored.supplemented = checked.explanation, checked.supplemented
        authored.sentence_id = checked.sentence_id
        authored.updated_at = now
        return authored


def remove_fact(session: Session, *, teacher_id: int, document_id: int, fact_row_id: int) -> None:
    """Remove a fact; its cards are retired at the next publish (history kept)."""
    with write_transaction(session):
        document = own_document(session, teacher_id=teacher_id, document_id=document_id)
        session.delete(own_fact(session, document, fact_row_id))


def delete_document(session: Session, *, teacher_id: int, document_id: int) -> str:
    """Delete a document that was never published, with its sections, sentences, facts and questions; its title.

    A published one is refused (Conflict): its cards hold students' answers, which are never
    deleted. Its facts can be removed and the deck published again, which retires the cards.
    """
    with write_transaction(session):
        document = own_document(session, teacher_id=teacher_id, document_id=document_id)
        if document.deck_id is not None:
            raise Conflict(PUBLISHED_STAYS)
        title = document.title
        # The database deletes the sections, sentences, facts and revisions with it (ON DELETE CASCADE).
        session.execute(delete(Document).where(Document.id == document.id)
                        .execution_options(synchronize_session=False))
        session.expunge(document)
        return title


PUBLISHED_STAYS = ("A published deck cannot be deleted: its cards hold your students' answers. Unassign it to take "
                   "it off your classes' lists, or remove its facts and publish again to retire its cards.")


# --- publishing -------------------------------------------------------------------------------------


def publish(session: Session, *, teacher_id: int, document_id: int, now: datetime) -> tuple[DeckRevision | None,
                                                                                             BuildReport]:
    """Build the document's facts into its deck through `build_deck`, and record a revision if anything changed.

    Returns the new revision (None when the deck already matched) and the build's report.
    """
    with write_transaction(session):
        document = own_document(session, teacher_id=teacher_id, document_id=document_id)
        if not document.facts:
            raise Invalid("Write at least one fact before publishing.")
        spec = document_spec(document)
        plans = preview_cards(document)
        existing = session.scalar(select(Deck).where(Deck.slug == spec.slug))
        if existing is not None and existing.id != document.deck_id:
            raise Conflict(f"Another deck already uses the slug “{spec.slug}”; nothing was published.")
        report = build_deck(session, spec, now=now, plans=plans)
        deck = session.scalars(select(Deck).where(Deck.slug == spec.slug)).one()
        deck.owner_id = teacher_id
        document.deck_id = deck.id
        by_key = {note_key(spec.slug, fact.relation, fact.fact_id): fact.sentence_id for fact in document.facts}
        for key, sentence_id in by_key.items():
            session.execute(update(Note).where(Note.deck_id == deck.id, Note.key == key)
                            .values(sentence_id=sentence_id))
        revision = None
        if report.changed or not document.revisions:
            number = (session.scalar(select(func.max(DeckRevision.number))
                                     .where(DeckRevision.document_id == document.id)) or 0) + 1
            revision = DeckRevision(document_id=document.id, number=number, published_at=now,
                                    facts=len(document.facts), cards_added=len(report.cards_added),
                                    cards_updated=len(report.cards_updated), cards_retired=len(report.cards_retired))
            session.add(revision)
        session.flush()
        return revision, report


# --- facts imported from a table --------------------------------------------------------------------

def _sentence_stating(document: Document, subject: str, obj: str) -> DocumentSentence | None:
    """The one sentence of the document that holds both the subject and the object (ignoring case), if one does."""
    subject, obj = subject.casefold(), obj.casefold()
    found = [s for s in document.sentences if subject in s.text.casefold() and obj in s.text.casefold()]
    return found[0] if len(found) == 1 else None


def import_facts(session: Session, *, teacher_id: int, document_id: int, drafts: list[FactDraft],
                 now: datetime) -> list[AuthoredFact]:
    """Add facts read from a table (CSV, TSV, Anki notes) to a document: all of them, or none.

    Each is checked as a fact written by hand; one the document's sentence states (the only
    sentence holding both its subject and its object) is linked to it. Anki cloze text
    ("{{c1::...}}") comes as a cloze fact (`facts_io.anki_cloze`). Raises Invalid for the field 'file', naming every row
    that cannot be imported by its line; then nothing is added.
    """
    with write_transaction(session):
        document = own_document(session, teacher_id=teacher_id, document_id=document_id)
        relations = relations_of(document)
        problems: list[str] = []
        written: list[AuthoredFact] = []
        for draft in drafts:
            relation, subject, obj = draft.relation, draft.subject, draft.object
            if relation not in relations:
                problems.append(f"line {draft.source_line}: the relation '{relation}' is not one of this deck's ("
                                + ", ".join(relations) + ")")
                continue
            sentence = _sentence_stating(document, subject, obj)
            try:
                written.append(write_fact(session, teacher_id=teacher_id, document_id=document.id, now=now,
                                          imported=True, fact=FactInput(
                                              relation=relation, subject=subject, object=obj,
                                              explanation=draft.explanation, supplemented=draft.supplemented,
                                              sentence_id=sentence.id if sentence else None)))
            except Invalid as error:
                problems.append(f"line {draft.source_line}: {error.message}")
            session.expire(document, ["facts"])
        if problems:
            shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
            raise Invalid(f"Nothing was imported: {shown}.", field="file")
        return written
