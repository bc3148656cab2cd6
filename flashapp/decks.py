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
from .database import write_transaction
from .decksource import DEFAULT_LIMITS, DeckLimits, DeckSourceError, load_deck
from .errors import NotFound
from .facts_io import deck_spec_to_yaml
from .generation import BuildReport, build_deck, plan_notes
from .models import Deck, Note


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
    plans = [plan_notes(spec) for spec in specs]
    with write_transaction(session):
        return [build_deck(session, spec, now=now, plans=spec_plans)
                for spec, spec_plans in zip(specs, plans, strict=True)]


def deck_by_slug(session: Session, slug: str) -> Deck:
    """The deck with this slug; NotFound names the decks there are."""
    deck = session.scalar(select(Deck).where(Deck.slug == slug))
    if deck is None:
        raise no_such_deck(session, slug)
    return deck


def no_such_deck(session: Session, slug: str) -> NotFound:
    """The error for a slug no deck has, naming the decks there are."""
    slugs = ", ".join(session.scalars(select(Deck.slug).order_by(Deck.slug))) or "none yet"
    return NotFound(f"No deck '{slug}'. Decks: {slugs}.")


def all_decks(session: Session) -> list[Deck]:
    """Every deck, by title."""
    return list(session.scalars(select(Deck).order_by(Deck.title)))


def export_deck(session: Session, *, slug: str, out: str | os.PathLike[str] | BinaryIO) -> int:
    """Write the deck with this slug as an Anki package; returns how many notes it holds."""
    deck = deck_by_slug(session, slug)
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

    Raises NotFound for an unknown slug, and DeckSourceError when the deck has no facts file
    on this machine, or its file cannot be read or now holds another deck.
    """
    deck = deck_by_slug(session, slug)
    if not deck.source_path:
        raise DeckSourceError(f"deck '{slug}'", None, "was not built from a facts file, so there is none to write")
    spec = load_deck(deck.source_path, limits=limits)
    if spec.slug != slug:
        raise DeckSourceError(spec.path, None, f"now holds the deck '{spec.slug}', not '{slug}'; "
                                               f"rebuild '{slug}' from its own facts file first")
    built = set(session.scalars(select(Note.key).where(Note.deck_id == deck.id, Note.retired.is_(False))))
    return FactsFile(text=deck_spec_to_yaml(spec), facts=len(spec.facts),
                     matches_build=built == {plan.key for plan in plan_notes(spec)})
