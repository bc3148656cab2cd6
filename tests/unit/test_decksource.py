"""Reading facts files: the bundled deck is valid; every malformed file is refused with its line."""

from __future__ import annotations

import pytest

from flashapp.decksource import DeckSourceError, load_deck, parse_deck_text
from tests.helpers import BUNDLED_DECK, PLANETS, with_lines


def test_a_valid_file_gives_its_facts_in_order():
    spec = parse_deck_text(PLANETS, "planets.yaml")
    assert spec.slug == "planets"
    assert [(f.relation, f.subject, f.objects, f.supplemented, f.line) for f in spec.facts] == [
        ("moon", "Jupiter", ("Ganymede",), False, 15),
        ("kind", "Mars", ("rocky",), True, 19),
    ]
    assert spec.relations["kind"].templates == {"forward": "What kind of planet is {subject}?",
                                                "grouped": "Which planets are {object}?"}


def test_the_bundled_deck_is_valid_and_has_the_required_relations():
    spec = load_deck(BUNDLED_DECK)
    assert spec.slug == "back-muscles"
    used = {fact.relation for fact in spec.facts}
    assert {"layer", "function", "action", "region", "prevention", "general"} <= used
    assert any(f.supplemented for f in spec.facts) and any(not f.supplemented for f in spec.facts)
    assert "grouped" in spec.relations["layer"].templates


MALFORMED = [
    pytest.param(with_lines(PLANETS, "    object: Ganymede", "    object: [Ganymede"), 18,
                 "expected ',' or ']'",
                 id="bad-syntax"),
    pytest.param(with_lines(PLANETS, "  - relation: kind", "  - relation: colour"), 19,
                 "unknown relation 'colour'", id="unknown-relation"),
    pytest.param(with_lines(PLANETS, "    object: rocky\n", ""), 19,
                 "missing the field 'object'", id="missing-field"),
    pytest.param(PLANETS + "  - relation: moon\n    subject: Jupiter\n    object: Io\n    section: orbits\n", 24,
                 "a second 'moon' fact for 'jupiter' (the first is on line 15)", id="duplicate-key"),
    pytest.param(with_lines(PLANETS, "    section: orbits\n  - relation: kind",
                            "    section: orbits\n    section: orbits\n  - relation: kind"), 19,
                 "'section' appears twice", id="duplicate-field"),
    pytest.param(with_lines(PLANETS, "    supplemented: true", "    supplemnted: true"), 23,
                 "unknown field 'supplemnted'", id="unknown-field"),
    pytest.param(with_lines(PLANETS, "    supplemented: true", "    supplemented: maybe"), 23,
                 "'supplemented' must be true or false", id="bad-boolean"),
    pytest.param(with_lines(PLANETS, "    section: orbits\n  - relation: kind",
                            "    section: rings\n  - relation: kind"), 18,
                 "unknown section 'rings'", id="unknown-section"),
    pytest.param(with_lines(PLANETS, "{subject}?\"\n    reverse", "{subjet}?\"\n    reverse"), 9,
                 "uses {subjet}", id="unknown-placeholder"),
    pytest.param(PLANETS + "  - relation: moon\n    subject: Saturn\n    object: Ganymede\n    section: orbits\n", 24,
                 "would have two answers", id="ambiguous-reverse"),
    pytest.param(with_lines(PLANETS, "  slug: planets", "  slug: Planets!"), 2,
                 "slug 'Planets!'", id="bad-slug"),
    pytest.param(with_lines(PLANETS, "    subject: Jupiter", "    subject: \"\""), 16,
                 "the subject is empty", id="empty-subject"),
    pytest.param(with_lines(PLANETS, "    forward: \"What kind", "    backward: \"What kind"), 12,
                 "unknown field 'backward'", id="unknown-template"),
    pytest.param("deck: [1, 2]\nrelations: {}\nfacts: []\n", 1, "'deck' must be a mapping", id="wrong-shape"),
]


@pytest.mark.parametrize(("text", "line", "message"), MALFORMED)
def test_a_malformed_file_is_refused_with_its_line(text, line, message):
    with pytest.raises(DeckSourceError) as caught:
        parse_deck_text(text, "decks/planets.yaml")
    error = caught.value
    assert message in error.message
    assert error.line == line
    assert str(error).startswith(f"decks/planets.yaml:{line}: ")


def test_an_empty_file_is_refused():
    with pytest.raises(DeckSourceError, match="the file is empty"):
        parse_deck_text("", "empty.yaml")


def test_a_missing_or_binary_file_is_refused(tmp_path):
    with pytest.raises(DeckSourceError, match="no such file"):
        load_deck(tmp_path / "nope.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00deck")
    with pytest.raises(DeckSourceError, match="not UTF-8"):
        load_deck(binary)


def test_an_explicit_id_keeps_the_key_when_the_subject_is_reworded():
    first = parse_deck_text(with_lines(PLANETS, "    subject: Jupiter", "    subject: Jupiter\n    id: jupiter"))
    renamed = parse_deck_text(with_lines(PLANETS, "    subject: Jupiter",
                                         "    subject: the planet Jupiter\n    id: jupiter"))
    assert first.facts[0].id == renamed.facts[0].id == "jupiter"
