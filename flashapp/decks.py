"""Decks as the app offers them: building them from facts files, finding one, exporting it to Anki."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from .anki_export import export_anki_package
from .database import write_transaction
from .decksource import DEFAULT_LIMITS, DeckLimits, DeckSourceError, load_deck
from .errors import NotFound
from .generation import BuildReport, build_deck, plan_notes
from .models import Assignment, Deck, Enrollment, Note


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


def all_decks(session: Session, *, visible_to: int | None = None) -> list[Deck]:
    """Every deck, by title; with `visible_to`, only those that user may see.

    A user sees the bundled decks (no owner), the decks they wrote, and the decks assigned
    to a class they are in.
    """
    query = select(Deck).order_by(Deck.title)
    if visible_to is not None:
        assigned = (select(Assignment.deck_id).join(Enrollment, Enrollment.classroom_id == Assignment.classroom_id)
                    .where(Enrollment.user_id == visible_to))
        query = query.where(or_(Deck.owner_id.is_(None), Deck.owner_id == visible_to, Deck.id.in_(assigned)))
    return list(session.scalars(query))


def export_deck(session: Session, *, slug: str, out: str | os.PathLike[str] | BinaryIO) -> int:
    """Write the deck with this slug as an Anki package; returns how many notes it holds."""
    deck = deck_by_slug(session, slug)
    export_anki_package(session, deck_id=deck.id, out=out)
    return session.scalar(select(func.count(Note.id)).where(Note.deck_id == deck.id, Note.retired.is_(False))) or 0
