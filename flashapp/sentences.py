"""A document's sections and sentences, found by rules over its text (no trained model, no network).

`split_sections` cuts a markdown or plain-text document at its headings; `split_sentences`
cuts a section's text into sentences. Both keep the document's own words, only trimming
spaces and list markers, so that a fact can point back to the sentence it came from.
"""

from __future__ import annotations

import re

# Words that end with a full stop without ending the sentence (compared in lower case).
ABBREVIATIONS = frozenset({
    "e.g", "i.e", "etc", "cf", "vs", "viz", "al", "approx", "ca", "dr", "mr", "mrs", "ms", "prof", "st",
    "jr", "sr", "no", "nos", "fig", "figs", "vol", "ed", "eds", "p", "pp", "ch", "sec", "dept", "mt", "ft",
    "in", "lb", "lbs", "oz", "min", "max", "a.m", "p.m", "u.s", "u.k", "ph.d", "inc", "ltd", "co", "jan",
    "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
})
# "etc." and "Inc." often do end a sentence; before a capital letter they are taken to.
_MAY_END = frozenset({"etc", "inc", "ltd", "co"})

_ATX_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT_UNDERLINE = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]\s+|\d{1,3}[.)]\s+|>\s?)")
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*")
_CLOSERS = "\"'”’)]"


def _plain_heading(line: str) -> bool:
    """A line of plain text that reads as a heading: short, capitalised, no closing punctuation."""
    line = line.strip()
    return (0 < len(line) <= 80 and len(line.split()) <= 10 and (line[0].isupper() or line[0].isdigit())
            and not re.search(r"[.!?:;,]$", line) and not _LIST_MARKER.match(line))


def _next_text(lines: list[str], number: int) -> str:
    """The first non-blank line after line `number`, trimmed."""
    for later in range(number + 1, len(lines)):
        if lines[later].strip():
            return lines[later].strip()
    return ""


def split_sections(text: str, *, plain_headings: bool = False) -> list[tuple[str, str]]:
    """The sections of a document as (heading, text) pairs, in order.

    Headings are markdown's: `# Title` to `###### Title`, or a line underlined with `===`
    or `---`. With `plain_headings` (for text copied out of a PDF or a web page, which has
    no markdown), a line of at most ten words that starts with a capital and ends without
    punctuation is a heading too, unless the next line goes on in lower case. Text before
    the first heading is a section with an empty heading; sections with no text under them
    are left out.
    """
    sections: list[tuple[str, list[str]]] = [("", [])]
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for number, line in enumerate(lines):
        heading = _ATX_HEADING.match(line)
        if heading:
            sections.append((heading.group(2).strip(), []))
            continue
        if plain_headings and _plain_heading(line) and not _next_text(lines, number)[:1].islower():
            sections.append((line.strip(), []))
            continue
        underline = (_SETEXT_UNDERLINE.match(lines[number + 1]) if number + 1 < len(lines) else None)
        if underline and line.strip() and not _LIST_MARKER.match(line) and (
                underline.group(1)[0] == "=" or len(underline.group(1)) >= 3):
            sections.append((line.strip(), []))
            continue
        if _SETEXT_UNDERLINE.match(line) and number > 0 and sections[-1][0] == lines[number - 1].strip() \
                and not sections[-1][1]:
            continue  # the underline of the heading just taken
        sections[-1][1].append(line)
    return [(title, "\n".join(body).strip()) for title, body in sections if "\n".join(body).strip()]


def _units(text: str) -> list[str]:
    """Runs of text in which sentences flow on: paragraphs, list items and heading-like lines apart.

    A line break ends a run when the line ends a sentence, when the next line is a list item,
    or when a short line (under 50 characters, like a heading) is followed by a capital.
    Otherwise it is taken for a wrapped line and the run goes on.
    """
    units: list[str] = []
    current: list[str] = []
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    for number, line in enumerate(lines):
        if not line:
            if current:
                units.append(" ".join(current))
                current = []
            continue
        marker = _LIST_MARKER.match(line)
        if marker:
            if current:
                units.append(" ".join(current))
                current = []
            line = line[marker.end():].strip()
            if not line:
                continue
        current.append(line)
        following = lines[number + 1] if number + 1 < len(lines) else ""
        ends = bool(re.search(r"[.!?:][\"'”’)\]]*$", line))
        heading_like = len(line) < 50 and following[:1].isupper()
        if ends or heading_like or _LIST_MARKER.match(following):
            units.append(" ".join(current))
            current = []
    if current:
        units.append(" ".join(current))
    return units


def _word_before(text: str, position: int) -> str:
    match = re.search(r"(\S+)$", text[:position])
    return match.group(1).lstrip("(\"'“‘[") if match else ""


def _ends_sentence(unit: str, match: re.Match[str]) -> bool:
    """Whether the stop at `match` ends a sentence: not an abbreviation, an initial or a decimal point."""
    after = unit[match.end():]
    glued = not after[:1].isspace()
    following = after.lstrip()
    if not following:
        return False  # the unit's own end
    stop = match.group(0).rstrip(_CLOSERS)
    word = _word_before(unit, match.start())
    if glued:
        # Text captured from web pages loses spaces ("the spine.These"): a lower-case word, a
        # stop and a capitalised word still make a sentence break; "3.5" and "e.g.x" do not.
        if not (re.search(r"[a-z]{2}$", unit[:match.start()]) and re.match(r"[A-Z][a-z]", after)):
            return False
    elif not re.match(r"[A-Z0-9\"'“‘(\[*_]", following):
        return False
    if stop == ".":
        lowered = word.lower()
        if lowered in ABBREVIATIONS and not (lowered in _MAY_END and following[:1].isupper() and not glued):
            return False
        if re.fullmatch(r"[A-Z]", word):  # an initial, as in "J. Smith"
            return False
        if re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", word):  # "e.g", "U.S"
            return False
    return True


def split_sentences(text: str) -> list[str]:
    """The sentences of a text, in order, each with its spaces trimmed.

    A sentence ends at `.`, `!` or `?` (with any closing quotes or brackets) followed by a
    capital letter, a digit or an opening quote, except after an abbreviation ("e.g.",
    "Dr.", "approx."), an initial or inside a number ("3.5"). A stop with no space after
    it ends a sentence only between a lower-case word and a capitalised one, as in text
    whose spaces were lost. Paragraphs, list items and heading-like lines are never joined
    into one sentence.
    """
    sentences: list[str] = []
    for unit in _units(text):
        start = 0
        for match in _SENTENCE_END.finditer(unit):
            if _ends_sentence(unit, match):
                sentence = unit[start:match.end()].strip()
                if sentence:
                    sentences.append(sentence)
                start = match.end()
        rest = unit[start:].strip()
        if rest:
            sentences.append(rest)
    return [re.sub(r"\s+", " ", sentence) for sentence in sentences]
