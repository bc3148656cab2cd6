"""Splitting a document into sections and sentences by rules."""

from __future__ import annotations

import pytest

from flashapp.sentences import split_sections, split_sentences


def test_markdown_headings_cut_a_document_into_sections():
    text = ("Opening words before any heading.\n\n"
            "# Roots\nRoots anchor a plant.\n\n"
            "## Leaves ##\nLeaves catch light.\nThey also lose water.\n\n"
            "# Empty\n\n"
            "Stems\n=====\nStems carry water up.\n\n"
            "Flowers\n---\nFlowers attract bees.\n")
    assert split_sections(text) == [
        ("", "Opening words before any heading."),
        ("Roots", "Roots anchor a plant."),
        ("Leaves", "Leaves catch light.\nThey also lose water."),
        ("Stems", "Stems carry water up."),
        ("Flowers", "Flowers attract bees."),
    ]


def test_a_list_item_is_not_taken_for_a_heading_underline():
    assert split_sections("- one item\n---\nmore") == [("", "- one item\n---\nmore")]


@pytest.mark.parametrize(("text", "sentences"), [
    ("Cells divide. Then they grow! Do they stop? Rarely.",
     ["Cells divide.", "Then they grow!", "Do they stop?", "Rarely."]),
    ("Some metals, e.g. copper, conduct well. Others do not.",
     ["Some metals, e.g. copper, conduct well.", "Others do not."]),
    ("Take water, i.e. Pure water, and boil it.", ["Take water, i.e. Pure water, and boil it."]),
    ("Dr. Lee measured 3.5 litres at approx. noon. The tank held 7.25 litres.",
     ["Dr. Lee measured 3.5 litres at approx. noon.", "The tank held 7.25 litres."]),
    ("The theory came from J. R. Mayer in the U.S. Army. It spread fast.",
     ["The theory came from J. R. Mayer in the U.S. Army.", "It spread fast."]),
    ('She said "stop." Then she left.', ['She said "stop."', "Then she left."]),
    ("Gases expand (when heated.) Solids less so.", ["Gases expand (when heated.)", "Solids less so."]),
    ("Tools, bolts, nuts etc. Each has a place.", ["Tools, bolts, nuts etc.", "Each has a place."]),
    ("Water boils at 100 degrees.Ice melts at 0 degrees.", ["Water boils at 100 degrees.", "Ice melts at 0 degrees."]),
    ("Version 2.0 shipped in 2019. It was late.", ["Version 2.0 shipped in 2019.", "It was late."]),
])
def test_sentences_end_at_stops_but_not_after_abbreviations_initials_or_decimals(text, sentences):
    assert split_sentences(text) == sentences


def test_wrapped_lines_join_but_paragraphs_list_items_and_headings_stay_apart():
    text = ("Plants make sugar from light and\nwater in their leaves.\n\n"
            "Three things matter:\n- light\n- water\n* carbon dioxide from the air\n1. First step here\n"
            "Short heading\nA new sentence starts here.")
    assert split_sentences(text) == [
        "Plants make sugar from light and water in their leaves.",
        "Three things matter:", "light", "water", "carbon dioxide from the air", "First step here",
        "Short heading", "A new sentence starts here.",
    ]


def test_empty_text_has_no_sentences_or_sections():
    assert split_sentences("") == [] and split_sentences("  \n\n ") == []
    assert split_sections("") == [] and split_sections("# Only a heading\n") == []


def test_plain_text_headings_are_short_capitalised_lines_without_punctuation_when_asked():
    text = ("Cell Parts\nThe nucleus holds the DNA.\nIt sits in the middle\nof the cell.\n"
            "Membranes\nA membrane lets some things through.\n- Proteins carry others\nEmpty Heading\n")
    assert split_sections(text) == [("", text.strip())]
    assert split_sections(text, plain_headings=True) == [
        ("Cell Parts", "The nucleus holds the DNA.\nIt sits in the middle\nof the cell."),
        ("Membranes", "A membrane lets some things through.\n- Proteins carry others"),
    ]
