"""`flashapp deck facts` writes a facts file that rebuilds the same deck; `deck candidates` reads a document."""

from __future__ import annotations

from sqlalchemy import select

from flashapp import db
from flashapp.models import Card, Note
from tests.helpers import BUNDLED_DECK, PLANETS, with_lines, write_deck


def cards_and_notes(app):
    with app.app_context():
        notes = [(n.key, n.subject, n.object, n.section, n.supplemented, n.explanation, n.retired, n.updated_at)
                 for n in db.session.scalars(select(Note).order_by(Note.key))]
        cards = [(c.key, c.question, c.answer, c.retired, c.updated_at)
                 for c in db.session.scalars(select(Card).order_by(Card.key))]
        db.session.remove()
    return notes, cards


def test_the_facts_file_of_a_built_deck_rebuilds_to_the_same_notes_and_cards(app, runner, tmp_path):
    assert runner.invoke(args=["deck", "build", str(BUNDLED_DECK)]).exit_code == 0
    before = cards_and_notes(app)
    out = tmp_path / "downloaded.yaml"
    result = runner.invoke(args=["deck", "facts", "back-muscles", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output == f"Wrote {out} (70 facts).\n"
    rebuilt = runner.invoke(args=["deck", "build", str(out)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "0 notes added, 0 updated, 0 retired; 0 cards added, 0 updated, 0 retired" in rebuilt.output
    assert cards_and_notes(app) == before


def test_a_deck_whose_file_changed_since_its_build_is_written_as_the_file_is_with_a_note(app, runner, tmp_path):
    source = write_deck(tmp_path)
    assert runner.invoke(args=["deck", "build", str(source)]).exit_code == 0
    write_deck(tmp_path, with_lines(PLANETS, "    subject: Mars", "    subject: Venus"))
    out = tmp_path / "out.yaml"
    result = runner.invoke(args=["deck", "facts", "planets", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "changed since 'planets' was last built" in result.output
    assert "subject: Venus" in out.read_text(encoding="utf-8")


def test_deck_facts_refuses_an_unknown_deck_or_a_missing_source_and_writes_nothing(app, runner, tmp_path):
    source = write_deck(tmp_path)
    assert runner.invoke(args=["deck", "build", str(source)]).exit_code == 0
    out = tmp_path / "out.yaml"
    missing = runner.invoke(args=["deck", "facts", "nope", "-o", str(out)])
    assert missing.exit_code == 1 and "No deck 'nope'. Decks: planets." in missing.output
    source.unlink()
    gone = runner.invoke(args=["deck", "facts", "planets", "-o", str(out)])
    assert gone.exit_code == 1
    assert f"{source}: no such file" in gone.output and "Nothing was written." in gone.output
    write_deck(tmp_path, PLANETS.replace("slug: planets", "slug: moons"))
    other = runner.invoke(args=["deck", "facts", "planets", "-o", str(out)])
    assert other.exit_code == 1 and "now holds the deck 'moons', not 'planets'" in other.output
    assert not out.exists()


DOCUMENT = """# Metals

Copper is a metal that conducts heat well.
Alloys include bronze, brass and steel.

# Safety

Wear gloves when handling hot metal.
"""


def test_deck_candidates_prints_each_candidate_with_its_sentence_under_its_section(runner, tmp_path):
    document = tmp_path / "notes.md"
    document.write_text(DOCUMENT, encoding="utf-8")
    result = runner.invoke(args=["deck", "candidates", str(document)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:3] == ["# Metals", "[term-definition] copper -> a metal that conducts heat well",
                         "    X is a Y: Copper is a metal that conducts heat well."]
    assert "[item-category] brass -> alloys" in lines
    assert lines[-4:] == ["# Safety", "[situation-action] handling hot metal -> wear gloves",
                          "    Do X when doing Y: Wear gloves when handling hot metal.",
                          f"5 candidate facts in {document}."]


def test_deck_candidates_refuses_what_is_not_a_text_document(runner, tmp_path):
    cases = {
        "missing.txt": (None, "does not exist"),
        "folder": ("dir", "is a folder"),
        "picture.txt": (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "is not a text file"),
        "latin.txt": ("Caf\xe9 au lait is a drink.".encode("latin-1"), "is not UTF-8 text"),
        "empty.txt": (b" \n\n", "is empty"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if content == "dir":
            path.mkdir()
        elif content is not None:
            path.write_bytes(content)
        result = runner.invoke(args=["deck", "candidates", str(path)])
        assert result.exit_code == 1, (name, result.output)
        assert message in result.output, (name, result.output)
