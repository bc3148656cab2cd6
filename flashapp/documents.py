"""A teacher's document as text: read from a pasted text or an uploaded file, split into sections and sentences.

Pure functions, no database: `read_document` turns what was sent into `Block`s (headings and
paragraphs); `sentences.split_sentences` then cuts each paragraph into sentences. Every refusal
is a `DocumentError` with a message a teacher can act on.

Headings, by kind of file:
- text and Markdown: a line starting with one to six `#` and a space;
- HTML: the text of `h1`, `h2` and `h3` elements (scripts, styles and the like are skipped);
- PDF: a line of at most 8 words and 80 characters that starts with a capital letter or a digit
  and does not end with a sentence's or a clause's punctuation (. , ; : ? ! and the like), standing
  after a blank line or a full stop, as a heading does in a printed page.
Paragraphs end at a blank line (and, in HTML, at the end of a block element).
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser

# The kinds of file a teacher may upload, by their name's ending.
FILE_KINDS = {".txt": "text", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html",
              ".pdf": "pdf"}
ACCEPTED = ", ".join(sorted({".txt", ".md", ".html", ".pdf"}))


class DocumentError(ValueError):
    """A document that cannot be read, with what to do about it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Block:
    """A heading (level 1 to 3) or a paragraph (level 0) of a document, as plain text."""

    level: int
    text: str

    @property
    def is_heading(self) -> bool:
        return self.level > 0


def file_kind(file_name: str) -> str:
    """The kind of an uploaded file by its name ('text', 'markdown', 'html' or 'pdf'); DocumentError otherwise."""
    dot = file_name.rfind(".")
    kind = FILE_KINDS.get(file_name[dot:].lower()) if dot >= 0 else None
    if kind is None:
        raise DocumentError(f"“{file_name}” is not a kind of file this page reads: upload a {ACCEPTED} file, "
                            "or paste the text.")
    return kind


def read_document(*, kind: str, data: bytes, max_bytes: int) -> list[Block]:
    """The headings and paragraphs of a document of this kind, refusing one that is not what it claims.

    Args:
        kind: 'text', 'markdown', 'html' or 'pdf' (see `file_kind`); pasted text is 'markdown'.
        data: the file's bytes (pasted text encoded as UTF-8).
        max_bytes: the largest document accepted (DOCUMENT_MAX_BYTES).
    """
    if len(data) > max_bytes:
        raise DocumentError(f"This document is {len(data):,} bytes; the limit is {max_bytes:,} bytes "
                            "(DOCUMENT_MAX_BYTES). Split it into smaller parts, one deck each.")
    if kind == "pdf":
        blocks = _pdf_blocks(data)
    else:
        text = _decode_text(data, kind)
        blocks = _html_blocks(text) if kind == "html" else _markdown_blocks(text)
    if not any(not block.is_heading for block in blocks):
        raise DocumentError("This document has no text to write facts from: it is empty, or holds headings "
                            "only. Paste or upload a document with sentences in it.")
    return blocks


def _decode_text(data: bytes, kind: str) -> str:
    what = {"text": "text file", "markdown": "Markdown file", "html": "web page"}[kind]
    if data.startswith(b"%PDF-"):
        raise DocumentError(f"This {what} is a PDF: upload it with a name ending in .pdf.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DocumentError(f"This {what} is not UTF-8 text: it looks like a binary file. Save it as plain "
                            "text (UTF-8), or paste its text.") from None
    control = sum(1 for ch in text if unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\r\t\f")
    if control:
        raise DocumentError(f"This {what} holds {control:,} control characters that text never has: it is "
                            "not a text file. Upload the document itself, or paste its text.")
    return text


# --- text and Markdown ------------------------------------------------------------------------------

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1")


def _markdown_inline(text: str) -> str:
    text = _MD_LINK.sub(r"\1", text)
    return _MD_EMPHASIS.sub(r"\2", text)


def _markdown_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines: list[str] = []

    def end_paragraph() -> None:
        if lines:
            blocks.append(Block(0, _clean(" ".join(lines))))
            lines.clear()

    for raw in text.splitlines():
        line = raw.strip()
        heading = _MD_HEADING.match(line)
        if heading:
            end_paragraph()
            title = _clean(_markdown_inline(heading.group(2)))
            if title:
                blocks.append(Block(min(len(heading.group(1)), 3), title))
        elif not line or set(line) <= set("-=*_ "):
            end_paragraph()
        elif _MD_LIST_ITEM.match(line):
            end_paragraph()  # each item of a list is a paragraph of its own
            lines.append(_markdown_inline(_MD_LIST_ITEM.sub("", line)))
        else:
            lines.append(_markdown_inline(line.lstrip("> ")))
    end_paragraph()
    return [block for block in blocks if block.text]


# --- HTML ---------------------------------------------------------------------------------------------

_SKIPPED = {"script", "style", "template", "noscript", "head", "title", "svg", "math", "iframe", "object"}
_BREAKS = {"p", "div", "li", "ul", "ol", "br", "tr", "td", "th", "table", "section", "article", "header",
           "footer", "blockquote", "pre", "dd", "dt", "dl", "figcaption", "figure", "main", "aside", "nav",
           "h4", "h5", "h6", "hr", "body", "html", "form"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3}


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.parts: list[str] = []
        self.skipping: list[str] = []
        self.heading = 0

    def _end_block(self) -> None:
        text = _clean("".join(self.parts))
        self.parts.clear()
        if text:
            self.blocks.append(Block(self.heading, text))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skipping.append(tag)
        elif not self.skipping and (tag in _BREAKS or tag in _HEADINGS):
            self._end_block()
            self.heading = _HEADINGS.get(tag, 0)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
            return
        if tag in _BREAKS or tag in _HEADINGS:
            self._end_block()
            self.heading = 0

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def _html_blocks(text: str) -> list[Block]:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    parser._end_block()
    return parser.blocks


# --- PDF ----------------------------------------------------------------------------------------------

_CLAUSE_END = tuple(".,;:?!…)\"'”’-–—")


def _looks_like_heading(line: str) -> bool:
    words = line.split()
    return (0 < len(words) <= 8 and len(line) <= 80 and (line[0].isupper() or line[0].isdigit())
            and not line.endswith(_CLAUSE_END) and any(ch.isalpha() for ch in line))


def _pdf_blocks(data: bytes) -> list[Block]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if not data.lstrip()[:5] == b"%PDF-":
        raise DocumentError("This file's name ends in .pdf but it is not a PDF. Upload the PDF itself, or "
                            "save the document as text and upload or paste that.")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentError("This PDF is encrypted (password-protected), so its text cannot be read. "
                                "Save an unprotected copy and upload that, or paste the text.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError,
            RecursionError, NotImplementedError):
        raise DocumentError("This PDF is damaged: its text cannot be read. Open it and save or print it "
                            "again as PDF, or paste the text.") from None
    blocks: list[Block] = []
    lines: list[str] = []

    def end_paragraph() -> None:
        if lines:
            blocks.append(Block(0, _clean(_join_pdf_lines(lines))))
            lines.clear()

    for page in pages:
        for raw in page.splitlines():
            line = _clean(raw)
            paragraph_ended = not lines or lines[-1].endswith((".", "?", "!", ":"))
            if not line:
                end_paragraph()
            elif paragraph_ended and _looks_like_heading(line):
                end_paragraph()
                blocks.append(Block(2, line))
            else:
                lines.append(line)
        end_paragraph()
    return [block for block in blocks if block.text]


def _join_pdf_lines(lines: list[str]) -> str:
    """Lines of a PDF paragraph as one text, joining a word hyphenated across a line break."""
    text = lines[0]
    for line in lines[1:]:
        if re.search(r"[a-z]-$", text) and line[:1].islower():
            text = text[:-1] + line
        else:
            text += " " + line
    return text


def _clean(text: str) -> str:
    """Text with its runs of white space as single spaces, and no characters that are invisible or stray."""
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text
                   if unicodedata.category(ch) not in ("Cs", "Co", "Cn") and ch != "\u00ad")
    return re.sub(r"\s+", " ", text).strip()
