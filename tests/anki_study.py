"""Studying in a real Anki collection over simulated days, for the tests that bring reviews back from Anki.

Plain helpers (no fixtures), shared by the domain, web and CLI tests. The official `anki` package
answers every card through its own scheduler (`col.sched`): each simulated day the collection's
creation time moves a day back, so Anki's "today" moves a day on and review cards fall due as
they would; each answer carries the simulated moment it was given (`answered_at_millis`, which
Anki writes as the review log row's id) and how long it took.
"""

from __future__ import annotations

import random
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from anki.collection import Collection
from anki.import_export_pb2 import ExportAnkiPackageOptions, ImportAnkiPackageOptions, ImportAnkiPackageRequest
from anki.scheduler_pb2 import CardAnswer

# The ways Anki can write what it holds: a deck package with scheduling or a whole collection, in the
# current format or the legacy one; "apkg-anki2" is a legacy package whose collection is named as Anki
# 2.0 named it (the same SQLite layout).
EXPORT_KINDS = ("apkg", "apkg-legacy", "colpkg", "colpkg-legacy", "apkg-anki2")
BUTTONS = (CardAnswer.AGAIN, CardAnswer.HARD, CardAnswer.GOOD, CardAnswer.EASY)


@dataclass(frozen=True)
class AnkiRow:
    """One row of Anki's review log, as the tests compare it."""

    id: int
    card_id: int
    ease: int
    interval: int
    duration_ms: int
    kind: int


def new_collection(folder: Path) -> Collection:
    folder.mkdir(parents=True, exist_ok=True)
    return Collection(str(folder / "collection.anki2"))


def import_package(col: Collection, package: Path, *, with_scheduling: bool = False) -> None:
    """Import an .apkg as the desktop app does."""
    col.import_anki_package(ImportAnkiPackageRequest(
        package_path=str(package), options=ImportAnkiPackageOptions(with_scheduling=with_scheduling)))


def study(col: Collection, deck_name: str, *, start: datetime, days: int, seed: int,
          first_day: int = 0) -> int:
    """Answer every card Anki has for the deck on each of `days` simulated days; the number of answers.

    Day d's answers start at `start` + d days, 40 seconds apart. Ratings are drawn from `seed`.
    """
    rng = random.Random(seed)
    col.decks.select(col.decks.id_for_name(deck_name))
    answers = 0
    first_today = col.sched.today
    for day in range(first_day, first_day + days):
        if day > first_day:
            col.crt = col.crt - 86_400  # Anki's today moves one day on...
            # ...once the backend reads it again: it keeps the day it worked out until the real clock
            # passes the next rollover, so without reopening a simulated day could find nothing due.
            col.close()
            col.reopen()
            col.decks.select(col.decks.id_for_name(deck_name))
        assert col.sched.today == first_today + day - first_day, "Anki's day did not move on"
        moment = start + timedelta(days=day)
        while True:
            queued = col.sched.get_queued_cards()
            if not queued.cards:
                break
            top = queued.cards[0]
            card = col.get_card(top.card.id)
            card.start_timer()
            rating = rng.choices(BUTTONS, (15, 10, 60, 15))[0]
            answer = col.sched.build_answer(card=card, states=top.states, rating=rating)
            answer.answered_at_millis = int(moment.timestamp() * 1000) + rng.randint(0, 999)
            answer.milliseconds_taken = rng.randint(1_500, 90_000)  # some beyond the app's cap of 60 s
            col.sched.answer_card(answer)
            answers += 1
            moment += timedelta(seconds=40)
    return answers


def revlog(col: Collection) -> list[AnkiRow]:
    return [AnkiRow(*row) for row in col.db.all("SELECT id, cid, ease, ivl, time, type FROM revlog ORDER BY id")]


def export(col: Collection, folder: Path, kind: str) -> tuple[Path, Collection]:
    """Export the collection as `kind` (one of EXPORT_KINDS); the file, and the collection (reopened if closed)."""
    path = str(col.path)
    if kind in ("apkg", "apkg-legacy", "apkg-anki2"):
        out = folder / f"from-anki-{kind}.apkg"
        col.export_anki_package(out_path=str(out), limit=None, options=ExportAnkiPackageOptions(
            with_scheduling=True, with_deck_configs=True, legacy=kind != "apkg"))
        if kind == "apkg-anki2":
            out = _renamed_collection(out, folder / "from-anki-anki2.apkg")
        return out, col
    out = folder / f"from-anki-{kind}.colpkg"
    col.export_collection_package(str(out), include_media=False, legacy=kind == "colpkg-legacy")
    return out, Collection(path)  # exporting a collection package closes it


def _renamed_collection(package: Path, out: Path) -> Path:
    """The legacy package with its collection.anki21 as the only collection, named collection.anki2."""
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        target.writestr("collection.anki2", source.read("collection.anki21"))
        target.writestr("media", "{}")
    return out


def other_app_note(col: Collection, *, front: str = "Capital of France?", back: str = "Paris") -> int:
    """Add a note of Anki's own Basic type in a deck of its own; its card's id."""
    deck_id = col.decks.id("Other app")
    note = col.new_note(col.models.by_name("Basic"))
    note["Front"], note["Back"] = front, back
    col.add_note(note, deck_id)
    return note.cards()[0].id

