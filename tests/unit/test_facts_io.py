"""Facts in and out: a deck written as a facts file reads back the same; tables and Anki's notes become facts."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flashapp.decksource import DeckSpec, FactSpec, RelationSpec, load_deck, parse_deck_text, slugify
from flashapp.facts_io import (
    ColumnMapping,
    FactsImportError,
    anki_cloze,
    deck_spec_to_yaml,
    facts_from_table,
    guess_mapping,
    html_to_text,
    preview_import,
    read_anki_notes_text,
    read_table,
)
from flashapp.generation import plan_notes
from tests.helpers import BUNDLED_DECK


def content(spec: DeckSpec):
    """A spec's content, without the lines and path that say where it was read from."""
    return (spec.slug, spec.title, spec.source, spec.sections,
            {name: (r.templates, r.answer) for name, r in spec.relations.items()},
            [dataclasses.replace(fact, line=0) for fact in spec.facts])


def cards(spec: DeckSpec):
    return [(p.key, p.relation, p.subject, p.object, p.section, p.supplemented, p.explanation,
             [(c.key, c.question, c.answer) for c in p.cards]) for p in plan_notes(spec)]


def test_the_bundled_deck_written_as_a_facts_file_reads_back_to_the_same_cards_and_keys():
    spec = load_deck(BUNDLED_DECK)
    text = deck_spec_to_yaml(spec)
    again = parse_deck_text(text, "downloaded.yaml")
    assert content(again) == content(spec)
    assert cards(again) == cards(spec)
    # Written once more, the text is the same: nothing drifts on a second round.
    assert deck_spec_to_yaml(again) == text


def test_a_facts_file_writes_ids_and_optional_fields_only_when_they_matter():
    spec = parse_deck_text(
        "deck: {slug: d, title: T, source: S, sections: {s: S}}\n"
        "relations: {r: {forward: 'Q {subject}?'}}\n"
        "facts:\n"
        "  - {relation: r, subject: Alpha Beta, object: x, section: s}\n"
        "  - {relation: r, id: old-name, subject: 'yes', object: [a, b], section: s, supplemented: true,"
        " explanation: 'because: reasons'}\n")
    text = deck_spec_to_yaml(spec)
    assert "id: alpha-beta" not in text and "id: old-name" in text
    assert text.count("supplemented") == 1 and text.count("explanation") == 1
    assert "&" not in text and "*" not in text and "!!" not in text
    assert content(parse_deck_text(text)) == content(spec)


def test_a_deck_without_facts_cannot_be_written():
    spec = DeckSpec(path="x", slug="d", title="T", source="S", sections={"s": "S"},
                    relations={"r": RelationSpec(name="r", line=1, templates={"forward": "{subject}"})})
    with pytest.raises(ValueError, match="without facts"):
        deck_spec_to_yaml(spec)


# Texts as a teacher might type them: letters, digits, punctuation, symbols, spaces and YAML's
# own special characters, sometimes over several lines.
_TEXT = st.text(st.one_of(st.characters(categories=("L", "N", "P", "S", "Zs")),
                          st.sampled_from(":#'\"-[]{}&*!|>%@`\n")), min_size=1, max_size=30).map(str.strip).filter(bool)
# The names [a-z0-9]{1,6}(-[a-z0-9]{1,6}){0,2}, built from their parts: drawn from the regular expression itself,
# hypothesis took two thirds of the round trip's time making them.
_NAME_PART = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_NAME = st.builds(lambda first, rest: "-".join([first, *rest]), _NAME_PART, st.lists(_NAME_PART, max_size=2))
_TEMPLATE_TEXT = _TEXT.filter(lambda t: "{" not in t and "}" not in t)


@st.composite
def deck_specs(draw) -> DeckSpec:
    sections = draw(st.dictionaries(_NAME, _TEXT, min_size=1, max_size=3))
    relations: dict[str, RelationSpec] = {}
    for name in draw(st.lists(_NAME, min_size=1, max_size=3, unique=True)):
        templates = {"forward": draw(_TEMPLATE_TEXT) + " {subject}"}
        for template in ("reverse", "grouped"):
            if draw(st.booleans()):
                templates[template] = "{object} " + draw(_TEMPLATE_TEXT)
        answer = draw(st.sampled_from(["{object}", "the {object} of {subject}"]))
        relations[name] = RelationSpec(name=name, line=0, templates=templates, answer=answer)
    facts: list[FactSpec] = []
    keys: set[tuple[str, str]] = set()
    reverse_objects: set[tuple[str, str]] = set()
    for _ in range(draw(st.integers(1, 8))):
        relation = draw(st.sampled_from(sorted(relations)))
        subject = draw(_TEXT)
        objects = tuple(draw(st.lists(_TEXT, min_size=1, max_size=3)))
        fact_id = draw(_NAME) if draw(st.booleans()) or not slugify(subject) else slugify(subject)
        object_key = (relation, FactSpec(relation, subject, objects, "", False, 0, "").object_text.lower())
        if (relation, fact_id) in keys or ("reverse" in relations[relation].templates
                                           and object_key in reverse_objects):
            continue
        keys.add((relation, fact_id))
        reverse_objects.add(object_key)
        facts.append(FactSpec(relation=relation, subject=subject, objects=objects,
                              section=draw(st.sampled_from(sorted(sections))), supplemented=draw(st.booleans()),
                              line=0, id=fact_id, explanation=draw(st.one_of(st.just(""), _TEXT))))
    return DeckSpec(path="generated", slug=draw(_NAME), title=draw(_TEXT), source=draw(_TEXT),
                    sections=sections, relations=relations, facts=facts)


@settings(max_examples=150, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(deck_specs())
def test_any_deck_written_as_a_facts_file_reads_back_to_the_same_cards_and_keys(spec):
    again = parse_deck_text(deck_spec_to_yaml(spec), "downloaded.yaml")
    assert content(again) == content(spec)
    assert cards(again) == cards(spec)


# ---------------------------------------------------------------- tables

def test_a_comma_separated_table_with_a_byte_order_mark_becomes_facts():
    data = "\ufeffTerm,Definition,Notes\nosmosis,water moving across a membrane,\"moves, slowly\"\n".encode()
    table = read_table(data, filename="facts.csv")
    assert table.columns == ("Term", "Definition", "Notes")
    assert table.delimiter == ","
    result = facts_from_table(table, ColumnMapping(subject="Term", object="Definition", explanation="Notes",
                                                   fixed_relation="term-definition", fixed_section="cells"))
    assert result.problems == []
    [fact] = result.facts
    assert (fact.subject, fact.relation, fact.object, fact.section, fact.explanation, fact.source_line) == (
        "osmosis", "term-definition", "water moving across a membrane", "cells", "moves, slowly", 2)


@pytest.mark.parametrize(("filename", "separator"), [("f.tsv", "\t"), ("f.txt", "\t"), ("f.csv", ";")])
def test_tab_and_semicolon_separated_tables_are_recognised(filename, separator):
    data = separator.join(["subject", "object", "kind"]).encode() + b"\n" + \
        separator.join(["mitochondria", "makes energy, mostly", "item-function"]).encode() + b"\n"
    table = read_table(data, filename=filename)
    assert table.delimiter == separator
    assert table.rows[0].cells == ("mitochondria", "makes energy, mostly", "item-function")


def test_rows_are_reported_by_the_line_they_start_on_and_duplicates_are_refused():
    data = (b"subject,object,relation,supplemented\n"
            b"cell,\"the unit\nof life\",term-definition,no\n"       # lines 2-3
            b"\n"                                                      # blank: skipped
            b"nucleus,,term-definition,\n"                            # line 5: no object
            b"Cell,a room,term-definition,yes\n"                      # line 6: same key as line 2
            b"ribosome,makes proteins,Item Function,\n"               # line 7: bad relation name
            b"golgi,packs proteins,item-function,maybe\n"             # line 8: bad flag
            b"vacuole,stores water,item-function,x,extra\n"           # line 9: a stray cell
            b"lysosome,breaks things down,item-function,Y\n")         # line 10: fine
    table = read_table(data, filename="cells.csv")
    result = facts_from_table(table, ColumnMapping(subject="subject", object="object", relation="relation",
                                                   supplemented="supplemented"))
    assert [(f.subject, f.source_line, f.supplemented) for f in result.facts] == [
        ("cell", 2, False), ("lysosome", 10, True)]
    assert result.facts[0].object == "the unit\nof life"
    messages = {problem.line: problem.message for problem in result.problems}
    assert sorted(messages) == [5, 6, 7, 8, 9]
    assert "object ('object') is empty" in messages[5]
    assert "second 'term-definition' fact for 'Cell' (the first is on line 2)" in messages[6]
    assert "lower-case letters" in messages[7]
    assert "write yes or no" in messages[8]
    assert "more cell(s) than the header row" in messages[9]


def test_the_preview_maps_only_the_first_rows_each_with_its_problems():
    rows = "".join(f"term {n},meaning {n}\n" for n in range(30)) + ",no subject\n"
    table = read_table(("a,b\n" + ",no subject\n" + rows).encode(), filename="t.csv")
    preview = preview_import(table, ColumnMapping(subject="a", object="b", fixed_relation="term-definition"), rows=3)
    assert [(row.line, row.fact is None, row.problems) for row in preview] == [
        (2, True, ("the subject ('a') is empty",)), (3, False, ()), (4, False, ())]
    assert preview[1].fact is not None and preview[1].fact.subject == "term 0"


def test_a_text_longer_than_a_facts_file_allows_is_a_row_problem():
    table = read_table(b"a,b\nshort," + b"x" * 2001 + b"\n", filename="t.csv")
    result = facts_from_table(table, ColumnMapping(subject="a", object="b", fixed_relation="r"))
    assert result.facts == [] and "2,001 characters long; the limit is 2,000" in result.problems[0].message


@pytest.mark.parametrize(("mapping", "message"), [
    (ColumnMapping(subject="a", object="c", fixed_relation="r"), "the object column 'c' is not in the table"),
    (ColumnMapping(subject="a", object="b"), "either a relation column or one relation"),
    (ColumnMapping(subject="a", object="b", relation="a", fixed_relation="r"), "either a relation column"),
    (ColumnMapping(subject="a", object="b", fixed_relation="Not A Name"), "lower-case letters"),
    (ColumnMapping(subject="a", object="a", fixed_relation="r"), "two different columns"),
])
def test_a_mapping_that_does_not_fit_the_table_is_refused(mapping, message):
    table = read_table(b"a,b\nx,y\n", filename="t.csv")
    with pytest.raises(FactsImportError, match=message):
        facts_from_table(table, mapping)


@pytest.mark.parametrize(("data", "message"), [
    (b"", "is empty"),
    (b"  \n\n", "is empty"),
    ("a,b\n".encode("utf-16"), "UTF-16"),
    (b"a,b\nx,y\ncaf\xe9,z\n", "line 3: 't.csv' is not UTF-8 text"),
    (b"PK\x03\x04\x00\x00binary", "not a text file"),
    (b"a,b\n", "no rows of facts"),
    (b"a,,b\nx,y,z\n", "column 2 has no name"),
    (b"a,b,a\nx,y,z\n", "two columns are named 'a'"),
    (b"just one column\nx\n", "at least a subject and an object column"),
])
def test_a_file_that_is_not_a_table_is_refused_with_a_reason(data, message):
    with pytest.raises(FactsImportError, match=message):
        read_table(data, filename="t.csv")


def test_a_table_past_the_limits_is_refused():
    with pytest.raises(FactsImportError, match="the limit is 100"):
        read_table(b"a,b\n" + b"x,y\n" * 40, filename="t.csv", max_bytes=100)
    with pytest.raises(FactsImportError, match="line 5: more than 3 rows"):
        read_table(b"a,b\n" + b"x,y\n" * 5, filename="t.csv", max_rows=3)


# ---------------------------------------------------------------- Anki's "Notes in Plain Text"

def test_html_becomes_text_with_cloze_markers_kept():
    assert html_to_text("The <b>{{c1::rhomboids}}</b> pull&nbsp;the<br>shoulder blades &amp; more"
                        "<script>x()</script>") == "The {{c1::rhomboids}} pull the shoulder blades & more"


def _anki_export(tmp_path, *, with_html: bool) -> bytes:
    """Notes written by the real Anki, exported as 'Notes in Plain Text'."""
    from anki.collection import Collection

    collection = Collection(str(tmp_path / "collection.anki2"))
    try:
        basic = collection.models.by_name("Basic")
        assert basic is not None
        for front, back, tags in [("<b>trapezius</b> &amp; friends", "upper back<br>and neck", ["anatomy"]),
                                  ("a tab\there", 'say "yes"', [])]:
            note = collection.new_note(basic)
            note["Front"], note["Back"], note.tags = front, back, tags
            collection.add_note(note, 1)
        cloze = collection.models.by_name("Cloze")
        assert cloze is not None
        note = collection.new_note(cloze)
        note["Text"] = "The {{c1::rhomboids}} pull the <i>shoulder blades</i> in"
        collection.add_note(note, 1)
        out = tmp_path / f"notes-{with_html}.txt"
        collection.export_note_csv(out_path=str(out), limit=None, with_html=with_html, with_tags=True,
                                   with_deck=True, with_notetype=True, with_guid=True)
    finally:
        collection.close()
    return out.read_bytes()


@pytest.mark.parametrize("with_html", [True, False])
def test_notes_exported_by_anki_as_plain_text_become_facts(tmp_path, with_html):
    data = _anki_export(tmp_path, with_html=with_html)
    assert data.startswith(b"#separator:tab\n")
    table = read_anki_notes_text(data, filename="notes.txt")
    assert table.columns == ("guid", "notetype", "deck", "field 1", "field 2", "tags")
    rows = [dict(zip(table.columns, row.cells, strict=True)) for row in table.rows]
    assert [(r["notetype"], r["field 1"], r["field 2"], r["tags"]) for r in rows] == [
        ("Basic", "trapezius & friends", "upper back and neck", "anatomy"),
        ("Basic", "a tab here" if with_html else "a tab\there", 'say "yes"', ""),
        ("Cloze", "The {{c1::rhomboids}} pull the shoulder blades in", "", ""),
    ]
    assert [row.line for row in table.rows] == [7, 8, 9]
    result = facts_from_table(table, ColumnMapping(subject="field 1", object="field 2", section="deck",
                                                   fixed_relation="term-definition"))
    # The cloze note's own markers say what it hides: its empty second field (Anki's "Back Extra") is no problem.
    assert [(f.relation, f.subject, f.object) for f in result.facts] == [
        ("term-definition", "trapezius & friends", "upper back and neck"),
        ("term-definition", rows[1]["field 1"], 'say "yes"'),
        ("cloze", "The rhomboids pull the shoulder blades in", "rhomboids"),
    ]
    assert result.problems == []


def test_anki_cloze_text_gives_its_sentence_and_first_hidden_words():
    assert anki_cloze("The {{c1::heart}} pumps {{c2::blood::fluid}}") == ("The heart pumps blood", "heart")
    assert anki_cloze("no markers here") is None
    table = read_table(b"front,back\n{{c1::osmosis}} moves water,\nplain,\n", filename="t.csv")
    result = facts_from_table(table, ColumnMapping(subject="front", object="back", fixed_relation="term-definition"))
    assert [(f.relation, f.subject, f.object) for f in result.facts] == [("cloze", "osmosis moves water", "osmosis")]
    # A row without markers still needs its object.
    assert [(p.line, p.message) for p in result.problems] == [(3, "the object ('back') is empty")]


def test_anki_notes_with_named_columns_and_another_separator():
    data = b"#separator:Semicolon\n#html:false\n#columns:Front;Back\nosmosis;water crossing a membrane\n"
    table = read_anki_notes_text(data)
    assert table.columns == ("Front", "Back")
    assert table.rows[0].cells == ("osmosis", "water crossing a membrane") and table.rows[0].line == 4


@pytest.mark.parametrize(("data", "message"), [
    (b"#separator:Backslash\na\\b\n", "not one Anki writes"),
    (b"#separator:tab\n#guid column:first\nx\ty\n", "should give a column number"),
    (b"#separator:tab\n#html:true\n", "holds no notes"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not a text file"),
])
def test_a_file_that_is_not_an_anki_notes_export_is_refused(data, message):
    with pytest.raises(FactsImportError, match=message):
        read_anki_notes_text(data)


def test_a_spreadsheets_separator_line_and_windows_line_ends_are_understood():
    data = b"sep=;\r\nword;meaning\r\nlens;bends light, a little\r\nprism;\"splits\r\nlight\"\r\n"
    table = read_table(data, filename="export.csv")
    assert table.delimiter == ";" and table.columns == ("word", "meaning")
    assert [(row.line, row.cells) for row in table.rows] == [
        (3, ("lens", "bends light, a little")), (4, ("prism", "splits\r\nlight"))]


@pytest.mark.parametrize(("header", "expected"), [
    ("Term,Definition,Notes", ColumnMapping(subject="Term", object="Definition", explanation="Notes",
                                            fixed_relation="term-definition")),
    ("front,back,relation,section,supplemented",
     ColumnMapping(subject="front", object="back", relation="relation", section="section",
                   supplemented="supplemented")),
    ("Kolumne A,Kolumne B,Kolumne C", ColumnMapping(subject="Kolumne A", object="Kolumne B",
                                                    fixed_relation="term-definition")),
])
def test_a_first_mapping_is_guessed_from_the_column_names(header, expected):
    table = read_table(f"{header}\nx,y,z,s,no\n".encode(), filename="t.csv")
    assert guess_mapping(table) == expected


def test_a_guessed_mapping_for_anki_notes_takes_the_first_two_fields(tmp_path):
    table = read_anki_notes_text(_anki_export(tmp_path, with_html=True))
    mapping = guess_mapping(table, fixed_relation="item-function")
    assert (mapping.subject, mapping.object, mapping.section, mapping.fixed_relation) == (
        "field 1", "field 2", "deck", "item-function")
    single = read_anki_notes_text(b"#separator:tab\nonly one field\n")
    with pytest.raises(FactsImportError, match="a fact needs a subject and an object column"):
        guess_mapping(single)


def test_a_title_over_several_lines_stays_inside_the_header_comment():
    spec = parse_deck_text('deck: {slug: d, title: "Two\\nlines: 0", source: S, sections: {s: S}}\n'
                           "relations: {r: {forward: '{subject}'}}\n"
                           "facts: [{relation: r, subject: x, object: y, section: s}]\n")
    assert content(parse_deck_text(deck_spec_to_yaml(spec))) == content(spec)
