"""Decks as the app offers them: building them from facts files, finding one, exporting it to Anki."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .anki_export import export_anki_package
from .authoring import document_spec
from .database import write_transaction
from .decksource import DEFAULT_LIMITS, DeckLimits, DeckSourceError, load_deck
from .errors import NotFound
from .facts_io import deck_spec_to_yaml
from .generation import BuildReport, build_deck, plan_notes
from .models import Deck, Document, Note, deck_visible_to


def build_decks(session: Session, paths: Iterable[str | Path], *, now: datetime,
                limits: DeckLimits = DEFAULT_LIMITS) -> list[BuildReport]:
    """Validate every facts file first, then build them all in one transaction (all or nothing).

    Raises DeckSourceError (with file and line) before anything is written when a file is wrong
    or goes past `limits`.
    """
    specs = [load_deck(path, limits=limits) for path in paths]
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.slug in seen:
            raise DeckSourceError(spec.path, None, f"slug '{spec.slug}' is also used by {seen[spec.slug]}; "
                                                   "give each deck its own slug")
        seen[spec.slug] = str(spec.path)
    written_in_browser = set(session.scalars(select(Deck.slug).where(Deck.slug.in_(list(seen)),
                                                                     Deck.owner_id.is_not(None))))
    for spec in specs:
        if spec.slug in written_in_browser:
            raise DeckSourceError(spec.path, None, f"slug '{spec.slug}' belongs to a deck a teacher writes in the "
                                                   "browser; give this deck its own slug")
    plans = [plan_notes(spec) for spec in specs]
    with write_transaction(session):
        return [build_deck(session, spec, now=now, plans=spec_plans)
                for spec, spec_plans in zip(specs, plans, strict=True)]


def deck_by_slug(session: Session, slug: str, *, visible_to: int | None = None) -> Deck:
    """The deck with this slug (with `visible_to`, one that user may see); NotFound names the decks there are."""
    deck = session.scalar(select(Deck).where(Deck.slug == slug))
    if deck is None or (visible_to is not None and not deck_is_visible(session, deck_id=deck.id, user_id=visible_to)):
        raise no_such_deck(session, slug, visible_to=visible_to)
    return deck


def no_such_deck(session: Session, slug: str, *, visible_to: int | None = None) -> NotFound:
    """The error for a slug no deck has (or none this user may see), naming the decks there are."""
    slugs = ", ".join(sorted(deck.slug for deck in all_decks(session, visible_to=visible_to))) or "none yet"
    return NotFound(f"No deck '{slug}'. Decks: {slugs}.")


def deck_is_visible(session: Session, *, deck_id: int, user_id: int) -> bool:
    """Whether this user may see and study this deck (see `all_decks`)."""
    return session.scalar(select(Deck.id).where(Deck.id == deck_id, deck_visible_to(user_id))) is not None


def all_decks(session: Session, *, visible_to: int | None = None) -> list[Deck]:
    """Every deck, by title; with `visible_to`, only those that user may see.

    A user sees the bundled decks (no owner), the decks a teacher wrote in the browser that
    are theirs, and the decks assigned to a class they are in.
    """
    query = select(Deck).order_by(Deck.title)
    if visible_to is not None:
        query = query.where(deck_visible_to(visible_to))
    return list(session.scalars(query))


def export_deck(session: Session, *, slug: str, out: str | os.PathLike[str] | BinaryIO,
                visible_to: int | None = None) -> int:
    """Write the deck with this slug as an Anki package; returns how many notes it holds.

    With `visible_to`, only a deck that user may see (NotFound otherwise).
    """
    deck = deck_by_slug(session, slug, visible_to=visible_to)
    export_anki_package(session, deck_id=deck.id, out=out)
    return session.scalar(select(func.count(Note.id)).where(Note.deck_id == deck.id, Note.retired.is_(False))) or 0


@dataclass(frozen=True)
class FactsFile:
    """A built deck written as a facts file: its text, how many facts it holds, and whether its
    cards are the ones the database has (False when the source file changed since the last build)."""

    text: str
    facts: int
    matches_build: bool


def deck_facts_file(session: Session, *, slug: str, limits: DeckLimits = DEFAULT_LIMITS) -> FactsFile:
    """The facts file of the deck with this slug, made from the facts file it was built from.

    A deck written in the browser has no file: its document's facts are written instead.

    Raises NotFound for an unknown slug, and DeckSourceError when the deck has no facts file
    on this machine, or its file cannot be read or now holds another deck.
    """
    deck = deck_by_slug(session, slug)
    document = session.scalar(select(Document).where(Document.deck_id == deck.id))
    if document is not None:  # written in the browser: its facts are the document's, as published next
        spec = document_spec(document)
        built = set(session.scalars(select(Note.key).where(Note.deck_id == deck.id, Note.retired.is_(False))))
        return FactsFile(text=deck_spec_to_yaml(spec), facts=len(spec.facts),
                         matches_build=built == {plan.key for plan in plan_notes(spec)})
    if not deck.source_path:
        raise DeckSourceError(f"deck '{slug}'", None, "was not built from a facts file, so there is none to write")
    spec = load_deck(deck.source_path, limits=limits)
    if spec.slug != slug:
        raise DeckSourceError(spec.path, None, f"now holds the deck '{spec.slug}', not '{slug}'; "
                                               f"rebuild '{slug}' from its own facts file first")
    built = set(session.scalars(select(Note.key).where(Note.deck_id == deck.id, Note.retired.is_(False))))
    return FactsFile(text=deck_spec_to_yaml(spec), facts=len(spec.facts),
                     matches_build=built == {plan.key for plan in plan_notes(spec)})
