"""Reading a teacher's document: headings and paragraphs from text, Markdown, HTML and PDF; sentences by rule."""

from __future__ import annotations

import pytest

from flashapp.documents import Block, DocumentError, file_kind, read_document
from flashapp.sentences import split_sentences
from tests.helpers import PDF_LINES, encrypted_pdf, simple_pdf

LIMIT = 100_000


@pytest.mark.parametrize(("text", "sentences"), [
    ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
    ("Stretch daily, e.g. in the morning. Rest well.", ["Stretch daily, e.g. in the morning.", "Rest well."]),
    ("Use it, i.e. Every day counts. Next.", ["Use it, i.e. Every day counts.", "Next."]),
    ("It weighs 3.5 kg. It is 0.25 m long.", ["It weighs 3.5 kg.", "It is 0.25 m long."]),
    ("Dr. Smith and Mrs. Jones met. See Fig. 3 for more.", ["Dr. Smith and Mrs. Jones met.", "See Fig. 3 for more."]),
    ("J. R. Tolkien wrote it. He was British.", ["J. R. Tolkien wrote it.", "He was British."]),
    ("The U.S. Army marched. Then it rained.", ["The U.S. Army marched.", "Then it rained."]),
    ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
    ("Lists follow: (a) one. (B) two.", ["Lists follow: (a) one.", "(B) two."]),
    ("See the note... It matters.", ["See the note...", "It matters."]),
    ("version 2. then lower case goes on.", ["version 2. then lower case goes on."]),
    ("Line two.  Spaces   collapse.", ["Line two.", "Spaces collapse."]),
    ("", []),
])
def test_sentences_of_a_paragraph_are_split_by_rule(text, sentences):
    assert split_sentences(text) == sentences


def test_markdown_headings_lists_and_inline_marks():
    text = ("# Back muscles\n\nThe **back** has [three](http://x) layers.\nThey work together.\n\n"
            "## Layers\n- Superficial.\n- Deep.\n")
    assert read_document(kind="markdown", data=text.encode(), max_bytes=LIMIT) == [
        Block(1, "Back muscles"), Block(0, "The back has three layers. They work together."), Block(2, "Layers"),
        Block(0, "Superficial."), Block(0, "Deep.")]


def test_html_takes_headings_and_text_and_skips_scripts():
    page = (b"<!doctype html><html><head><title>T</title><style>p{color:red}</style></head><body>"
            b"<h1>Water</h1><p>Water &amp; ice.<br>Steam too.</p><script>alert(1)</script><h3>Ice</h3>"
            b"<ul><li>Cold.</li><li>Hard.</li></ul><h4>Minor</h4><div>Text <b>bold</b> here.</div></body></html>")
    assert read_document(kind="html", data=page, max_bytes=LIMIT) == [
        Block(1, "Water"), Block(0, "Water & ice."), Block(0, "Steam too."), Block(3, "Ice"), Block(0, "Cold."),
        Block(0, "Hard."), Block(0, "Minor"), Block(0, "Text bold here.")]


def test_pdf_lines_that_look_like_headings_start_sections():
    blocks = read_document(kind="pdf", data=simple_pdf(PDF_LINES), max_bytes=LIMIT)
    assert [b.text for b in blocks if b.is_heading] == ["The Water Cycle", "Precipitation"]
    assert blocks[1].text.startswith("Evaporation is the change")


@pytest.mark.parametrize(("kind", "data", "message"), [
    ("pdf", b"plain words, not a pdf", "is not a PDF"),
    ("pdf", b"%PDF-1.4\ngarbage without objects", "damaged"),
    ("text", bytes(range(256)), "not UTF-8 text"),
    ("text", b"abc\x00\x01def", "control characters"),
    ("text", simple_pdf(["x"]), "is a PDF"),
    ("text", b"   \n\n ", "no text to write facts from"),
    ("html", b"<html><script>only()</script></html>", "no text to write facts from"),
    ("markdown", b"x" * (LIMIT + 1), "the limit is 100,000 bytes"),
])
def test_a_document_that_is_not_what_it_claims_is_refused(kind, data, message):
    with pytest.raises(DocumentError, match=message):
        read_document(kind=kind, data=data, max_bytes=LIMIT)


def test_an_encrypted_pdf_is_refused():
    with pytest.raises(DocumentError, match="encrypted"):
        read_document(kind="pdf", data=encrypted_pdf(), max_bytes=LIMIT)


def test_file_kinds_come_from_the_name():
    assert [file_kind(n) for n in ("a.TXT", "b.md", "c.html", "d.htm", "e.pdf")] == \
        ["text", "markdown", "html", "html", "pdf"]
    with pytest.raises(DocumentError, match="upload a"):
        file_kind("slides.pptx")
