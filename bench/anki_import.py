"""Benchmark: bringing a large review history back from Anki.

Builds the bundled deck into a throw-away SQLite database, writes its Anki package, adds REVIEWS
review-log rows to the package's collection (Anki's layout, spread over the deck's cards), and
imports it for a student twice: the first import adds every review and replays every card, the
second finds them all there. Prints each step's time and the time per 1,000 reviews; the write
lock is held for the import itself (not for reading the file).

    .venv/bin/python bench/anki_import.py [--reviews 20000]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from flashapp.anki_export import export_anki_package
from flashapp.anki_import import import_anki_file, read_anki_export
from flashapp.database import make_engine
from flashapp.decksource import load_deck
from flashapp.generation import build_deck
from flashapp.models import Base, Deck, User
from flashapp.scheduling import make_scheduler

DECK = Path(__file__).resolve().parent.parent / "decks" / "back-muscles.yaml"
START = datetime(2026, 1, 5, 18, 0, tzinfo=timezone.utc)


def package_with_reviews(session: Session, folder: Path, *, reviews: int) -> Path:
    """The deck's Anki package with `reviews` review-log rows added to its collection."""
    deck = session.scalar(select(Deck))
    plain = folder / "deck.apkg"
    export_anki_package(session, deck_id=deck.id, out=plain, timestamp=START.timestamp())
    session.commit()
    collection = folder / "collection.anki2"
    with zipfile.ZipFile(plain) as archive:
        collection.write_bytes(archive.read("collection.anki2"))
    rng = random.Random(1)
    with sqlite3.connect(collection) as connection:
        cards = [card_id for (card_id,) in connection.execute("SELECT id FROM cards")]
        moment = int(START.timestamp() * 1000)
        rows = []
        for _ in range(reviews):
            moment += rng.randint(5_000, 3_000_000)
            rows.append((moment, rng.choice(cards), rng.randint(1, 4), rng.choice((-600, 1, 3, 10, 30)),
                         rng.randint(1_000, 20_000), rng.choice((0, 1, 2))))
        connection.executemany("INSERT INTO revlog (id, cid, usn, ease, ivl, lastIvl, factor, time, type) "
                               "VALUES (?, ?, -1, ?, ?, 0, 0, ?, ?)", rows)
    connection.close()
    package = folder / "from-anki.apkg"
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(collection, "collection.anki2")
        archive.writestr("media", "{}")
    return package


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=20_000)
    reviews = parser.parse_args().reviews
    folder = Path(tempfile.mkdtemp(prefix="flashapp-bench-anki-import-"))
    engine = make_engine(f"sqlite:///{folder / 'bench.sqlite'}")
    Base.metadata.create_all(engine)
    scheduler = make_scheduler(enable_fuzzing=False)
    now = START + timedelta(days=100 * 365)
    with Session(engine) as session:
        build_deck(session, load_deck(DECK), now=START)
        student = User(username="bench", password_hash="x")
        session.add(student)
        session.commit()
        package = package_with_reviews(session, folder, reviews=reviews)

        began = time.perf_counter()
        read_anki_export(package)
        read = time.perf_counter() - began
        began = time.perf_counter()
        first = import_anki_file(session, scheduler, user_id=student.id, source=package, now=now)
        first_seconds = time.perf_counter() - began
        began = time.perf_counter()
        second = import_anki_file(session, scheduler, user_id=student.id, source=package, now=now)
        second_seconds = time.perf_counter() - began
    engine.dispose()
    per_thousand = 1000 / reviews
    print(f"{reviews} reviews in a {package.stat().st_size / 1e6:.1f} MB package")
    print(f"reading the file:  {read:.2f} s")
    print(f"first import:      {first_seconds:.2f} s ({first_seconds * per_thousand * 1000:.0f} ms per 1,000 "
          f"reviews; added {first.added}, {first.cards_updated} cards replayed)")
    print(f"second import:     {second_seconds:.2f} s (added {second.added})")
    print(f"second / first:    {second_seconds / first_seconds:.2f}")


if __name__ == "__main__":
    main()
