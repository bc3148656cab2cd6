"""Candidate facts from sentences: each regular form gives its candidates; forms that would mislead give none."""

from __future__ import annotations

import pytest

from flashapp.candidates import candidates_in_document, document_sentences, find_candidates, same_words, word_set


def found(*sentences: str, section: str = "Notes"):
    return [(c.kind, c.subject, c.object, c.relation) for c in find_candidates((section, s) for s in sentences)]


@pytest.mark.parametrize(("sentence", "subject", "obj"), [
    ("A catalyst is a substance that speeds up a reaction without being used up.",
     "catalyst", "a substance that speeds up a reaction without being used up"),
    ("Photosynthesis is the process by which plants turn light into sugar.",
     "photosynthesis", "the process by which plants turn light into sugar"),
    ("The term 'biome' refers to a large community of plants and animals.",
     "biome", "a large community of plants and animals"),
    ("Erosion means the wearing away of rock by wind and water.",
     "erosion", "the wearing away of rock by wind and water"),
    ("Magma, which is molten rock below the surface, cools into granite.", "magma", "molten rock below the surface"),
    ("The outer layer of the skin is also known as the epidermis.", "outer layer of the skin", "the epidermis"),
])
def test_definitions(sentence, subject, obj):
    assert found(sentence) == [("definition", subject, obj, "term-definition")]


@pytest.mark.parametrize(("sentence", "category", "items"), [
    ("Noble gases include helium, neon and argon.", "noble gases", ["helium", "neon", "argon"]),
    ("The inner planets consist of Mercury, Venus, Earth, and Mars.",
     "inner planets", ["Mercury", "Venus", "Earth", "Mars"]),
    ("A simple circuit is made up of a battery, a wire and a bulb.", "simple circuit", ["battery", "wire", "bulb"]),
    ("The primary colours are red, yellow and blue.", "primary colours", ["red", "yellow", "blue"]),
    ("Sound travels through the middle ear, which includes the hammer, anvil and stirrup.",
     "middle ear", ["hammer", "anvil", "stirrup"]),
])
def test_lists_give_one_item_category_candidate_per_item(sentence, category, items):
    assert found(sentence) == [("category-list", item, category, "item-category") for item in items]


def test_paired_words_in_a_list_name_two_items():
    assert found("The eye's outer group includes the rectus superior and inferior.") == [
        ("category-list", "rectus superior", "eye's outer group", "item-category"),
        ("category-list", "rectus inferior", "eye's outer group", "item-category"),
    ]


@pytest.mark.parametrize(("sentence", "subject", "obj"), [
    ("The cochlea helps you hear high and low sounds.", "cochlea", "hear high and low sounds"),
    ("A lever lets you lift a heavy load with little force.", "lever", "lift a heavy load with little force"),
    ("The spleen is responsible for filtering old red blood cells.", "spleen", "filtering old red blood cells"),
    ("A thermometer is used to measure temperature.", "thermometer", "measure temperature"),
    ("Saliva helps to break down starch.", "saliva", "break down starch"),
    ("The main function of the kidneys is to filter blood.", "kidneys", "filter blood"),
])
def test_functions(sentence, subject, obj):
    assert found(sentence) == [("function", subject, obj, "item-function")]


def test_several_clauses_each_state_a_function():
    assert found("Roots help you anchor a plant, leaves help you catch light, and stems help carry water.") == [
        ("function", "roots", "anchor a plant", "item-function"),
        ("function", "leaves", "catch light", "item-function"),
        ("function", "stems", "carry water", "item-function"),
    ]


@pytest.mark.parametrize(("sentence", "pairs"), [
    ("If you smell gas, leave the building at once.", [("you smell gas", "leave the building at once")]),
    ("When you feel dizzy, you should sit down.", [("you feel dizzy", "sit down")]),
    ("If you cut a finger or if you graze a knee, it is best to rinse the wound.",
     [("you cut a finger", "rinse the wound"), ("you graze a knee", "rinse the wound")]),
    ("To stop a nosebleed, pinch the soft part of the nose.",
     [("to stop a nosebleed", "pinch the soft part of the nose")]),
    ("Wear goggles when cutting metal.", [("cutting metal", "wear goggles")]),
])
def test_situations_and_actions(sentence, pairs):
    assert found(sentence) == [("situation-action", situation, action, "situation-action")
                               for situation, action in pairs]


@pytest.mark.parametrize("sentence", [
    "It is a large organ.",                            # a pronoun: the card would not say what "it" is
    "These cells are a kind of nerve cell.",
    "What is a catalyst?",                             # questions state nothing
    "The results were clear, quick and cheap.",        # 'the X are' needs a list of three things named...
    "The colours are red and blue.",                   # ...and three items at least
    "Plants grow towards light.",
    "When to call a doctor",                           # announces advice without giving it
    "The muscles include:",                            # a list the capture lost
    "Each of the three bones is tiny.",
    "Many rivers are a source of water.",
])
def test_sentences_without_a_regular_form_give_nothing(sentence):
    if sentence.startswith("The results"):
        # Adjectives in a three-item list cannot be told from names by rule; this one does give candidates.
        assert [kind for kind, *_ in found(sentence)] == ["category-list"] * 3
        return
    assert found(sentence) == []


def test_repeated_sentences_give_their_candidates_once_with_section_and_reason():
    candidates = find_candidates([("Metals", "Copper is a metal that conducts heat."),
                                  ("Again", "Copper is a metal that conducts heat.")])
    assert len(candidates) == 1
    [candidate] = candidates
    assert (candidate.section, candidate.sentence, candidate.reason) == (
        "Metals", "Copper is a metal that conducts heat.", "X is a Y")


def test_wordings_are_compared_by_their_words():
    assert word_set("The Upper backs, extending!") == frozenset({"upper", "back", "extend"})
    assert same_words("superficial (extrinsic) back muscles", "superficial")
    assert same_words("extend your shoulder", "extending the shoulder (drawing the arm backward)")
    assert not same_words("upper back", "lower back")
    assert not same_words("", "anything")


def test_a_document_is_cut_at_markdown_headings_or_else_at_heading_like_lines():
    markdown = "# Metals\nCopper is a metal.\n\nNotes On Safety\nWear gloves when handling acid.\n"
    assert document_sentences(markdown) == [
        ("Metals", "Copper is a metal."), ("Metals", "Notes On Safety"),
        ("Metals", "Wear gloves when handling acid.")]
    plain = markdown.removeprefix("# Metals\n")
    assert document_sentences(plain) == [("", "Copper is a metal."),
                                         ("Notes On Safety", "Wear gloves when handling acid.")]
    assert [(c.section, c.subject) for c in candidates_in_document(plain)] == [
        ("", "copper"), ("Notes On Safety", "handling acid")]


def test_markdown_marks_stay_out_of_subjects_and_objects_but_the_sentence_is_kept_as_written():
    [candidate] = find_candidates([("", "**Osmosis** is the movement of `water` across a [membrane](https://x.test).")])
    assert (candidate.subject, candidate.object) == ("osmosis", "the movement of water across a membrane")
    assert candidate.sentence == "**Osmosis** is the movement of `water` across a [membrane](https://x.test)."
