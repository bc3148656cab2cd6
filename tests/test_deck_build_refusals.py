"""`flashapp deck build` refuses a facts file past its limits with file:line, and the database stays as it was."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select

from flashapp import db
from flashapp.models import Card, Deck, Note
from tests.helpers import PLANETS, numbers_deck, with_lines, write_deck

REWORDED = with_lines(PLANETS, "object: Ganymede", "object: Ganymede, the largest moon")


def snapshot(app) -> list[tuple]:
    """Every deck, note and card row, column by column."""
    with app.app_context():
        rows = []
        for model in (Deck, Note, Card):
            table = model.__table__
            rows += [(table.name, *row) for row in db.session.execute(select(table).order_by(table.c.id))]
        db.session.remove()
        return rows


def alias(folder):
    return write_deck(folder, with_lines(REWORDED, "    subject: Mars", "    subject: *moon")), 20


def tag(folder):
    text = with_lines(REWORDED, "    subject: Mars", "    subject: !!python/name:os.system Mars")
    return write_deck(folder, text), 20


def deep(folder):
    return write_deck(folder, REWORDED + "  - relation:\n" + "      [\n" * 3000 + "      ]\n" * 3000), 32


def long_text(folder):
    return write_deck(folder, with_lines(REWORDED, "object: rocky", "object: " + "rocky " * 400)), 21


def many_facts(folder):  # DECK_MAX_FACTS is 1 in this test's app
    return write_deck(folder, REWORDED), 19


def large(folder):  # DECK_MAX_FILE_BYTES is 300 in this test's app
    return write_deck(folder, REWORDED), REWORDED.encode()[:300].count(b"\n") + 1


def folder_given(folder):
    (folder / "planets.yaml").mkdir()
    return folder / "planets.yaml", None


def device_link(folder):
    link = folder / "planets.yaml"
    link.symlink_to("/dev/zero")
    return link, None


@pytest.mark.parametrize(("make", "message"), [
    (alias, "an alias (*moon)"),
    (tag, "a YAML tag (!!python/name:os.system)"),
    (deep, "nested more than 10 levels deep"),
    (long_text, "the limit is 2,000 (DECK_MAX_TEXT_CHARS)"),
    (many_facts, "the limit is 1 facts a deck (DECK_MAX_FACTS)"),
    (large, "past 300 bytes here, the limit for a facts file (DECK_MAX_FILE_BYTES)"),
    (folder_given, "is a folder, not a facts file"),
    pytest.param(device_link, "is not a regular file",
                 marks=pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")),
])
def test_a_refused_file_changes_nothing_and_says_where(app, runner, tmp_path, make, message):
    first, bad = tmp_path / "first", tmp_path / "bad"
    first.mkdir()
    bad.mkdir()
    assert runner.invoke(args=["deck", "build", str(write_deck(first, PLANETS))]).exit_code == 0
    before = snapshot(app)
    assert len(before) == 1 + 3 + 4  # the deck, its notes (two facts and a group) and cards

    app.config.update(DECK_MAX_FACTS=1) if make is many_facts else None
    app.config.update(DECK_MAX_FILE_BYTES=300) if make is large else None
    path, line = make(bad)
    # A good file (within every limit here) in the same command: it is not built either.
    other = write_deck(bad, numbers_deck(1), name="numbers.yaml")
    result = runner.invoke(args=["deck", "build", str(other), str(path)])

    assert result.exit_code == 1
    where = f"{path}:{line}: " if line else f"{path}: "
    assert where + "" in result.output and message in result.output, result.output
    assert "Nothing was changed." in result.output
    assert "Traceback" not in result.output
    assert snapshot(app) == before
