"""Benchmark: reading and building a large facts file into a fresh SQLite database.

Writes a generated deck of N facts (half with forward and reverse cards, half grouped into
50 groups) into a temporary folder, then times, for each N:

- parse: reading and validating the file (`load_deck`), best of --repeat runs;
- build: `build_decks` into a fresh SQLite database (file, WAL, synchronous=FULL), which
  reads the file again and writes every note and card in one transaction;
- rebuild, unchanged: the same file again (nothing to write);
- rebuild, reworded: every fact's object changed (every note and forward card updated).

    .venv/bin/python bench/deck_build.py                         # 10,000 facts
    .venv/bin/python bench/deck_build.py --facts 10000 --facts 100000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flashapp.database import make_engine
from flashapp.decks import build_decks
from flashapp.decksource import DeckLimits, load_deck
from flashapp.models import Base, Card, Note

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def deck_text(facts: int, *, wording: str = "") -> str:
    """A facts file of `facts` facts laid out as decks/README.md shows it."""
    lines = ["deck:", "  slug: bench", "  title: Bench deck", "  source: generated for the benchmark",
             "  sections:", "    main: Main", "relations:",
             "  code:", '    forward: "What is the code of {subject}?"',
             '    reverse: "Which item has the code {object}?"',
             "  kind:", '    forward: "Which group is {subject} in?"', '    grouped: "Which items are in {object}?"',
             "facts:"]
    for n in range(facts):
        if n % 2 == 0:
            lines += ["  - relation: code", f"    subject: item number {n}", f"    object: code {n}{wording}",
                      "    section: main", f"    explanation: the code of item {n} is written on its label"]
        else:
            lines += ["  - relation: kind", f"    subject: item number {n}", f"    object: group {n % 50}",
                      "    section: main"]
    return "\n".join(lines) + "\n"


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def run(facts: int, repeat: int, folder: Path) -> None:
    path = folder / f"bench-{facts}.yaml"
    path.write_text(deck_text(facts), encoding="utf-8")
    size_mb = path.stat().st_size / 1e6
    # Limits wide enough for the size being measured (the defaults stop at 20,000 facts and 5 MB).
    limits = DeckLimits(deck_max_facts=max(facts, DeckLimits().deck_max_facts),
                        deck_max_file_bytes=max(2 * path.stat().st_size, DeckLimits().deck_max_file_bytes))
    parse = min(timed(lambda: load_deck(path, limits=limits))[0] for _ in range(repeat))

    database = folder / f"bench-{facts}.sqlite"
    engine = make_engine(f"sqlite:///{database}")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        build, _ = timed(lambda: build_decks(session, [path], now=NOW, limits=limits))
        notes = session.scalar(select(func.count(Note.id)))
        cards = session.scalar(select(func.count(Card.id)))
        unchanged, _ = timed(lambda: build_decks(session, [path], now=NOW + timedelta(days=1), limits=limits))
        path.write_text(deck_text(facts, wording=" (revised)"), encoding="utf-8")
        reworded, _ = timed(lambda: build_decks(session, [path], now=NOW + timedelta(days=2), limits=limits))
    engine.dispose()
    print(f"{facts:>7,} facts ({size_mb:.1f} MB, {notes:,} notes, {cards:,} cards): "
          f"parse {parse:.2f} s ({parse / facts * 1e6:.0f} us a fact), build {build:.2f} s "
          f"({build / facts * 1e6:.0f} us a fact), rebuild unchanged {unchanged:.2f} s, "
          f"rebuild reworded {reworded:.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, action="append", help="facts in the deck (repeatable); default 10000")
    parser.add_argument("--repeat", type=int, default=3, help="parse runs per size; the best is shown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for facts in args.facts or [10_000]:
            run(facts, args.repeat, Path(folder))


if __name__ == "__main__":
    main()
