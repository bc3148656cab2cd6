"""A facts file is plain data within limits: each bad file is refused with its line, before anything is built."""

from __future__ import annotations

import os

import pytest

from flashapp.decksource import DEFAULT_LIMITS, DeckLimits, DeckSourceError, load_deck, parse_deck_text
from flashapp.generation import plan_notes
from tests.helpers import PLANETS, with_lines, write_deck


def refused(text: str, *, limits: DeckLimits = DEFAULT_LIMITS) -> DeckSourceError:
    with pytest.raises(DeckSourceError) as caught:
        parse_deck_text(text, "decks/planets.yaml", limits=limits)
    return caught.value


def refused_file(path, *, limits: DeckLimits = DEFAULT_LIMITS) -> DeckSourceError:
    with pytest.raises(DeckSourceError) as caught:
        load_deck(path, limits=limits)
    return caught.value


def test_an_alias_is_refused_at_its_line_before_it_can_expand():
    # The billion-laughs shape: each line doubles the one before it.
    bomb = "\n".join(["laughs:", "  - &a0 lol"] + [f"  - &a{n} [*a{n - 1}, *a{n - 1}]" for n in range(1, 40)])
    error = refused(with_lines(PLANETS, "relations:", bomb + "\nrelations:"))
    assert error.line == 8 and "an anchor (&a0)" in error.message
    error = refused(with_lines(PLANETS, "    subject: Mars", "    subject: *moon"))
    assert error.line == 20 and "an alias (*moon)" in error.message


def test_an_anchor_is_refused_at_its_line():
    error = refused(with_lines(PLANETS, "    subject: Jupiter", "    subject: &planet Jupiter"))
    assert error.line == 16 and "an anchor (&planet)" in error.message and "write the text out" in error.message


@pytest.mark.parametrize("tag", ["!!python/name:os.system", "!!python/object/apply:os.system", "!!str", "!custom"])
def test_a_yaml_tag_is_refused_at_its_line(tag):
    error = refused(with_lines(PLANETS, "    subject: Jupiter", f"    subject: {tag} Jupiter"))
    assert error.line == 16 and "a YAML tag" in error.message and tag.split(" ")[0] in error.message


def test_deep_nesting_is_refused_at_its_line_without_a_recursion_error():
    one_line = refused("deck:\n  slug: " + "[" * 5000 + "]" * 5000 + "\n")
    assert one_line.line == 2 and "nest" in one_line.message
    # One bracket a line: the file's mapping, deck's mapping and eight lists are open when the ninth starts, line 11.
    error = refused("deck:\n  slug:\n" + "    [\n" * 5000 + "    ]\n" * 5000)
    assert error.line == 11 and "nested more than 10 levels deep" in error.message
    assert "DECK_MAX_DEPTH" in error.message
    assert "nested more than 2" in refused(PLANETS, limits=DeckLimits(deck_max_depth=2)).message


def test_a_text_longer_than_the_limit_is_refused_at_its_line():
    limit = DEFAULT_LIMITS.deck_max_text_chars
    assert parse_deck_text(with_lines(PLANETS, "object: Ganymede", "object: " + "g" * limit), "planets.yaml")
    error = refused(with_lines(PLANETS, "object: Ganymede", "object: " + "g" * (limit + 1)))
    assert error.line == 17 and f"a text of {limit + 1:,} characters" in error.message
    assert "DECK_MAX_TEXT_CHARS" in error.message


def test_more_facts_than_the_limit_are_refused_at_the_first_one_over():
    assert len(parse_deck_text(PLANETS, "planets.yaml", limits=DeckLimits(deck_max_facts=2)).facts) == 2
    error = refused(PLANETS, limits=DeckLimits(deck_max_facts=1))
    assert error.line == 19 and "fact number 2 of 2" in error.message and "DECK_MAX_FACTS" in error.message


def test_the_default_fact_limit_is_twenty_thousand():
    head = PLANETS[:PLANETS.index("facts:")] + "facts:\n"
    facts = "".join(f"  - {{relation: kind, subject: 'n{n}', object: rocky, section: orbits}}\n" for n in range(20_001))
    assert len(parse_deck_text(head + facts[:facts.rindex("  - ")], "many.yaml").facts) == 20_000
    error = refused(head + facts)
    assert error.line == head.count("\n") + 20_001 and "fact number 20,001 of 20,001" in error.message


@pytest.mark.parametrize(("old", "new", "line", "message"), [
    ("  slug: planets", "  slug: " + "p" * 81, 2, "the deck's slug is 81 characters long; the limit is 80"),
    ("  title: Planets", "  title: " + "t" * 201, 3, "the deck's title is 201 characters long; the limit is 200"),
    ("    orbits: Orbits", "    " + "o" * 81 + ": Orbits", 6, "a section's name is 81 characters long"),
    ("  moon:", "  " + "m" * 81 + ":", 8, "a relation's name is 81 characters long"),
])
def test_a_name_longer_than_its_column_is_refused_at_its_line(old, new, line, message):
    error = refused(with_lines(PLANETS, old, new))
    assert error.line == line and message in error.message


def test_a_key_longer_than_its_column_is_refused_at_the_facts_line():
    long_id = parse_deck_text(
        with_lines(PLANETS, "    subject: Jupiter", "    id: " + "j" * 300 + "\n    subject: Jupiter"), "planets.yaml")
    with pytest.raises(DeckSourceError) as caught:
        plan_notes(long_id)
    assert caught.value.line == 15 and "give it a shorter 'id'" in caught.value.message
    long_object = parse_deck_text(with_lines(PLANETS, "object: rocky", "object: " + "rocky " * 60), "planets.yaml")
    with pytest.raises(DeckSourceError) as caught:
        plan_notes(long_object)
    assert caught.value.line == 19 and "shorten the object" in caught.value.message


def test_a_file_past_the_size_limit_is_refused_at_the_line_where_it_goes_past(tmp_path):
    padding = "".join(f"# comment line {n:07d} to make the file large\n" for n in range(120_000))
    big = write_deck(tmp_path, PLANETS + padding)
    assert big.stat().st_size > DEFAULT_LIMITS.deck_max_file_bytes
    error = refused_file(big)
    expected_line = big.read_bytes()[:DEFAULT_LIMITS.deck_max_file_bytes].count(b"\n") + 1
    assert error.line == expected_line and "5,000,000 bytes" in error.message
    assert "DECK_MAX_FILE_BYTES" in error.message
    small = refused_file(write_deck(tmp_path, PLANETS), limits=DeckLimits(deck_max_file_bytes=100))
    assert small.line == PLANETS.encode()[:100].count(b"\n") + 1
    assert "goes on past 100 bytes" in refused(PLANETS, limits=DeckLimits(deck_max_file_bytes=100)).message


def test_a_folder_is_refused_with_a_message(tmp_path):
    error = refused_file(tmp_path)
    assert error.line is None and "is a folder, not a facts file" in error.message


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_link_to_a_device_is_refused_before_anything_is_read(tmp_path):
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    assert "is not a regular file" in refused_file(link).message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    pipe = tmp_path / "pipe.yaml"
    os.mkfifo(pipe)
    assert "is not a regular file" in refused_file(pipe).message


def test_limits_come_from_the_apps_settings():
    limits = DeckLimits.from_config({"DECK_MAX_FACTS": 7, "DECK_MAX_FILE_BYTES": "1000", "OTHER": 1})
    assert limits == DeckLimits(deck_max_facts=7, deck_max_file_bytes=1000)
    assert DeckLimits.from_config({}) == DEFAULT_LIMITS == DeckLimits(
        deck_max_file_bytes=5_000_000, deck_max_facts=20_000, deck_max_text_chars=2_000, deck_max_depth=10)
