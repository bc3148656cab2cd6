"""Facts in and out: a deck as a facts file, and facts read from tables (CSV, TSV, Anki's plain-text notes).

Going out, `deck_spec_to_yaml` writes a `DeckSpec` in the `decks/` format, so that
`flashapp deck build` reads it back to the same notes, cards and keys.

Coming in, a file becomes a `Table` (named columns, rows with their line numbers):
`read_table` for CSV and TSV, `read_anki_notes_text` for Anki's "Notes in Plain Text"
export. A `ColumnMapping` then says which column holds what, and `facts_from_table` turns
rows into `FactDraft`s, reporting each row it cannot use by its line. `preview_import`
does the same for the first few rows, for a mapping screen. Nothing here touches the
database: a caller decides what to keep.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import yaml

from .decksource import DEFAULT_LIMITS, KEY_PART_RE, DeckSpec, FactSpec, slugify

# ---------------------------------------------------------------- a deck as a facts file


class _PlainDumper(yaml.SafeDumper):
    """Writes every value out in full: a facts file refuses anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def deck_spec_to_yaml(spec: DeckSpec) -> str:
    """The text of a facts file for `spec`, in the `decks/` format.

    `parse_deck_text` reads it back to an equal spec (but for line numbers and path),
    so building it gives the same notes, cards and keys. An `id` is written only where
    it differs from the one the subject gives; optional fields only when set.

    Texts are expected as `parse_deck_text` leaves them: trimmed and not empty.
    Raises ValueError for a spec without facts, which no facts file can hold.
    """
    if not spec.facts:
        raise ValueError("a deck without facts cannot be written as a facts file: add a fact first")
    relations: dict[str, dict[str, str]] = {}
    for name, relation in spec.relations.items():
        templates = dict(relation.templates)
        ordered = {"forward": templates.pop("forward")} if "forward" in templates else {}
        ordered.update(templates)
        if relation.answer != "{object}":
            ordered["answer"] = relation.answer
        relations[name] = ordered
    document = {
        "deck": {"slug": spec.slug, "title": spec.title, "source": spec.source,
                 "sections": dict(spec.sections)},
        "relations": relations,
        "facts": [_fact_mapping(fact) for fact in spec.facts],
    }
    body = yaml.dump(document, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=100)
    title = " ".join(spec.title.split())  # on one line: a line break would end the comment
    header = (f"# {title}: the facts of the deck '{spec.slug}'.\n"
              "# Build it with `flashapp deck build FILE.yaml`; the format is described in decks/README.md.\n\n")
    return header + body


def _fact_mapping(fact: FactSpec) -> dict[str, object]:
    mapping: dict[str, object] = {"relation": fact.relation}
    if fact.id != slugify(fact.subject):
        mapping["id"] = fact.id
    mapping["subject"] = fact.subject
    mapping["object"] = fact.objects[0] if len(fact.objects) == 1 else list(fact.objects)
    mapping["section"] = fact.section
    if fact.supplemented:
        mapping["supplemented"] = True
    if fact.explanation:
        mapping["explanation"] = fact.explanation
    return mapping


# ---------------------------------------------------------------- tables


class FactsImportError(ValueError):
    """A file or a mapping that cannot be imported at all, with what to do (and the line, when there is one)."""

    def __init__(self, message: str, *, line: int | None = None):
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line else message)


@dataclass(frozen=True)
class TableRow:
    """One row of a table: its cells (one per column, padded with empty text) and the line it starts on."""

    line: int
    cells: tuple[str, ...]
    extra_cells: int = 0  # cells past the last column, which belong to no column


@dataclass(frozen=True)
class Table:
    """A file read as named columns and rows, before anyone has said which column means what.

    `columns` are the header row's names (for Anki's export: guid, notetype, deck, tags
    and field 1, field 2, ... as its header lines place them); `delimiter` is the
    separator found.
    """

    filename: str
    columns: tuple[str, ...]
    rows: tuple[TableRow, ...]
    delimiter: str

    def cell(self, row: TableRow, column: str) -> str:
        """The text of `row` in the column named `column`."""
        return row.cells[self.columns.index(column)]


# The most a table may hold, in line with the limits of a facts file.
MAX_TABLE_BYTES = DEFAULT_LIMITS.deck_max_file_bytes
MAX_TABLE_ROWS = DEFAULT_LIMITS.deck_max_facts
_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}


def _decode(data: bytes, *, what: str, max_bytes: int) -> str:
    """UTF-8 text from an uploaded file (a byte order mark is dropped), or a FactsImportError saying why not."""
    if len(data) > max_bytes:
        raise FactsImportError(f"{what} is {len(data):,} bytes; the limit is {max_bytes:,}: "
                               "split it into smaller files")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FactsImportError(f"{what} is saved as UTF-16 text; save it again as UTF-8 "
                               "(in a spreadsheet: 'CSV UTF-8')")
    data = data.removeprefix(b"\xef\xbb\xbf")
    if b"\x00" in data[:65536]:
        raise FactsImportError(f"{what} is not a text file (it holds binary data); "
                               "give a table saved as CSV or tab-separated text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise FactsImportError(f"{what} is not UTF-8 text (it may be saved as Windows-1252 or Latin-1); "
                               "save it again as UTF-8 (in a spreadsheet: 'CSV UTF-8')", line=line) from None
    if not text.strip():
        raise FactsImportError(f"{what} is empty; give a table with a header row and one fact a row")
    return text


def _sniff_delimiter(first_line: str, filename: str) -> str:
    """Tab, semicolon or comma: whichever the header row holds most of (tab for a .tsv file that has one)."""
    if filename.lower().endswith((".tsv", ".tab")) and "\t" in first_line:
        return "\t"
    unquoted = re.sub(r'"[^"]*"', "", first_line)
    counts = {delimiter: unquoted.count(delimiter) for delimiter in ("\t", ";", ",")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_rows(text: str, *, delimiter: str, first_line: int = 1) -> Iterator[tuple[int, list[str]]]:
    """Each non-blank row with the line it starts on; a broken row raises FactsImportError with its line."""
    lines = io.StringIO(text, newline="")
    reader = csv.reader(lines, delimiter=delimiter, strict=False)
    start = first_line
    try:
        for cells in reader:
            line = start
            start = first_line + reader.line_num
            if any(cell.strip() for cell in cells):
                yield line, cells
    except csv.Error as error:
        raise FactsImportError(f"this row cannot be read ({error}); check its quotes", line=start) from None


def read_table(data: bytes, *, filename: str, max_bytes: int = MAX_TABLE_BYTES,
               max_rows: int = MAX_TABLE_ROWS) -> Table:
    """Read a CSV or TSV file whose first row names the columns.

    The separator (comma, semicolon or tab) is found from the header row, or taken from a
    spreadsheet's `sep=;` line before it; the text must be
    UTF-8, with or without a byte order mark. Blank rows are skipped; short rows are padded
    with empty cells. Raises FactsImportError for a file that is not such a table.
    """
    what = f"'{filename}'"
    text = _decode(data, what=what, max_bytes=max_bytes)
    first_line = 1
    # Spreadsheets may name the separator on a line of its own before the header: "sep=;".
    declared = re.match(r"\s*sep=(.)\r?\n", text)
    if declared:
        delimiter = declared.group(1)
        text = text[declared.end():]
        first_line = 2
    else:
        delimiter = _sniff_delimiter(text.lstrip("\r\n").split("\n", 1)[0], filename)
    rows = _csv_rows(text, delimiter=delimiter, first_line=first_line)
    header_line, header = next(rows, (first_line, []))
    columns = tuple(name.strip() for name in header)
    while columns and not columns[-1]:
        columns = columns[:-1]
    for number, name in enumerate(columns, start=1):
        if not name:
            raise FactsImportError(f"column {number} has no name in the header row; name every column",
                                   line=header_line)
        if columns.index(name) != number - 1:
            raise FactsImportError(f"two columns are named '{name}'; give each column its own name",
                                   line=header_line)
    if len(columns) < 2:
        raise FactsImportError(f"the header row names {len(columns)} column; a fact needs at least a subject and "
                               f"an object column (separators tried: {', '.join(_DELIMITERS.values())})",
                               line=header_line)
    table_rows = _rows_of(rows, width=len(columns), max_rows=max_rows)
    if not table_rows:
        raise FactsImportError(f"{what} has a header row but no rows of facts under it")
    return Table(filename=filename, columns=columns, rows=tuple(table_rows), delimiter=delimiter)


def _rows_of(rows: Iterator[tuple[int, list[str]]], *, width: int, max_rows: int) -> list[TableRow]:
    result: list[TableRow] = []
    for line, cells in rows:
        if len(result) >= max_rows:
            raise FactsImportError(f"more than {max_rows:,} rows; the limit is {max_rows:,} facts a deck: "
                                   "split the table", line=line)
        extra = sum(1 for cell in cells[width:] if cell.strip())
        padded = tuple(cell.strip() for cell in cells[:width]) + ("",) * max(0, width - len(cells))
        result.append(TableRow(line=line, cells=padded, extra_cells=extra))
    return result


# ---------------------------------------------------------------- Anki's "Notes in Plain Text"

# The separators Anki names in a `#separator:` line.
_ANKI_SEPARATORS = {"tab": "\t", "comma": ",", "semicolon": ";", "space": " ", "pipe": "|", "colon": ":"}
_ANKI_COLUMN_HEADERS = {"guid column": "guid", "notetype column": "notetype", "deck column": "deck",
                        "tags column": "tags"}


class _TextOfHtml(HTMLParser):
    """The text of an HTML fragment: tags dropped (line breaks and blocks become spaces), entities unescaped."""

    _BREAKS = frozenset({"br", "div", "p", "li", "tr", "td", "th", "ul", "ol", "h1", "h2", "h3", "h4", "hr"})
    _HIDDEN = frozenset({"script", "style"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self.hidden += 1
        elif tag in self._BREAKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self._BREAKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """The plain text of an HTML field: tags removed, entities unescaped, spaces collapsed.

    Cloze markers such as `{{c1::rhomboids}}` are text, so they come through as written.
    """
    parser = _TextOfHtml()
    parser.feed(fragment)
    parser.close()
    return re.sub(r"\s+", " ", "".join(parser.parts).replace("\xa0", " ")).strip()


def read_anki_notes_text(data: bytes, *, filename: str = "notes.txt", max_bytes: int = MAX_TABLE_BYTES,
                         max_rows: int = MAX_TABLE_ROWS) -> Table:
    """Read Anki's "Notes in Plain Text" export as a `Table`.

    Anki starts the file with header lines such as `#separator:tab`, `#html:true` and
    `#guid column:1` (columns count from 1), then writes one note a line, quoting fields
    as CSV does. The guid, notetype, deck and tags columns take those names; the note's
    own fields are named `field 1`, `field 2`, ... in order, or as a `#columns:` line
    names them. With `#html:true` each field's HTML becomes plain text (cloze markers
    kept). Raises FactsImportError for a file that is not such an export.
    """
    what = f"'{filename}'"
    text = _decode(data, what=what, max_bytes=max_bytes)
    lines = text.splitlines(keepends=True)
    headers: dict[str, str] = {}
    skipped = 0
    for line in lines:
        if not line.startswith("#"):
            break
        skipped += 1
        key, colon, value = line[1:].strip().partition(":")
        if colon:
            headers[key.strip().lower()] = value.strip()
    separator_name = headers.get("separator", "tab")
    delimiter = _ANKI_SEPARATORS.get(separator_name.lower(), separator_name if len(separator_name) == 1 else "")
    if not delimiter:
        raise FactsImportError(f"the separator '{separator_name}' is not one Anki writes; export again with "
                               "'Notes in Plain Text'", line=1)
    special: dict[int, str] = {}
    for header, name in _ANKI_COLUMN_HEADERS.items():
        if header in headers:
            try:
                number = int(headers[header])
            except ValueError:
                raise FactsImportError(f"'#{header}:' should give a column number, not "
                                       f"'{headers[header]}'") from None
            if number < 1:
                raise FactsImportError(f"'#{header}:' should give a column number from 1")
            special[number] = name
    rows = list(_csv_rows("".join(lines[skipped:]), delimiter=delimiter, first_line=skipped + 1))
    if not rows:
        raise FactsImportError(f"{what} holds no notes under its header lines")
    width = max(max(len(cells) for _, cells in rows), max(special, default=0))
    named = [name.strip() for name in headers["columns"].split(delimiter)] if "columns" in headers else []
    columns: list[str] = []
    field_number = 0
    for number in range(1, width + 1):
        if number in special:
            columns.append(special[number])
            continue
        field_number += 1
        given = named[number - 1] if number - 1 < len(named) and named[number - 1] else ""
        columns.append(given if given and given not in columns else f"field {field_number}")
    is_html = headers.get("html", "false").lower() == "true"
    table_rows = _rows_of(iter(rows), width=width, max_rows=max_rows)
    if is_html:
        table_rows = [TableRow(line=row.line, extra_cells=row.extra_cells,
                               cells=tuple(cell if columns[i] in ("guid", "tags") else html_to_text(cell)
                                           for i, cell in enumerate(row.cells)))
                      for row in table_rows]
    return Table(filename=filename, columns=tuple(columns), rows=tuple(table_rows), delimiter=delimiter)


# ---------------------------------------------------------------- from rows to facts


@dataclass(frozen=True)
class ColumnMapping:
    """Which column of a table holds which part of a fact.

    Each field names a column of the table. The relation comes either from a column
    (`relation`) or is the same for every row (`fixed_relation`); give exactly one.
    `section`, `explanation` and `supplemented` are optional; without a section column,
    every fact goes to `fixed_section` (may be empty, for the caller to fill in).
    A supplemented cell reads true for yes, y, true, 1 or x, and false for no, n, false,
    0 or an empty cell.
    """

    subject: str
    object: str
    relation: str | None = None
    fixed_relation: str | None = None
    section: str | None = None
    fixed_section: str = ""
    explanation: str | None = None
    supplemented: str | None = None

    def columns_used(self) -> dict[str, str]:
        """The fact's parts that come from a column, with that column's name."""
        named = {"subject": self.subject, "object": self.object, "relation": self.relation,
                 "section": self.section, "explanation": self.explanation, "supplemented": self.supplemented}
        return {part: column for part, column in named.items() if column}


@dataclass(frozen=True)
class FactDraft:
    """A fact read from one row of a table, not yet checked against any deck.

    `relation` is a relation's name (such as a preset's, `term-definition`), `section`
    a section's name or title as the table gives it (may be empty), `source_line` the
    line of the file the row starts on. `key_part` is the id the subject gives, which
    `decksource` would use.
    """

    subject: str
    relation: str
    object: str
    section: str
    explanation: str
    supplemented: bool
    source_line: int

    @property
    def key_part(self) -> str:
        return slugify(self.subject)


@dataclass(frozen=True)
class RowProblem:
    """Why the row starting on `line` gives no fact."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ImportResult:
    """The facts a table gives, and the rows it could not use (each with its line and reason)."""

    facts: list[FactDraft] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


@dataclass(frozen=True)
class PreviewRow:
    """One row as the mapping reads it: its cells, the fact it gives (None if it gives none) and its problems."""

    line: int
    cells: tuple[str, ...]
    fact: FactDraft | None
    problems: tuple[str, ...]


_TRUE = frozenset({"true", "yes", "y", "1", "x"})
_FALSE = frozenset({"false", "no", "n", "0", ""})


def check_mapping(table: Table, mapping: ColumnMapping) -> None:
    """Raise FactsImportError for a mapping that names a missing column, or gives the relation twice or not at all."""
    for part, column in mapping.columns_used().items():
        if column not in table.columns:
            raise FactsImportError(f"the {part} column '{column}' is not in the table; its columns are "
                                   + ", ".join(f"'{name}'" for name in table.columns))
    if (mapping.relation is None) == (mapping.fixed_relation is None):
        raise FactsImportError("choose either a relation column or one relation for every row")
    if mapping.fixed_relation is not None and not KEY_PART_RE.match(mapping.fixed_relation):
        raise FactsImportError(f"relation '{mapping.fixed_relation}' must be lower-case letters, digits and hyphens")
    if mapping.subject == mapping.object:
        raise FactsImportError(f"the subject and the object both come from '{mapping.subject}'; "
                               "choose two different columns")


_ANKI_CLOZE = re.compile(r"\{\{c\d+::(.*?)(?:::[^}]*)?\}\}")


def anki_cloze(text: str) -> tuple[str, str] | None:
    """(sentence, hidden words) of Anki cloze text such as "The {{c1::heart}} pumps blood"; None without markers.

    The sentence is the text with every marker replaced by its words; the hidden words are the first marker's.
    """
    first = _ANKI_CLOZE.search(text)
    if first is None:
        return None
    return _ANKI_CLOZE.sub(lambda match: match.group(1), text), first.group(1)


def _draft(table: Table, row: TableRow, mapping: ColumnMapping, max_chars: int) -> tuple[FactDraft | None, list[str]]:
    problems: list[str] = []
    if row.extra_cells:
        problems.append(f"this row has {row.extra_cells} more cell(s) than the header row has columns; "
                        "check for a stray separator or quote")

    def text(column: str | None, default: str = "") -> str:
        return table.cell(row, column) if column else default

    subject, obj = text(mapping.subject), text(mapping.object)
    relation = text(mapping.relation, mapping.fixed_relation or "")
    explanation, section = text(mapping.explanation), text(mapping.section, mapping.fixed_section)
    cloze = anki_cloze(subject)
    if cloze is not None:
        # Anki's cloze text names its hidden words itself; the note's other field (Anki's "Back
        # Extra", most often empty) is extra text for the answer side.
        relation, (subject, hidden) = "cloze", cloze
        if not explanation:
            explanation = obj
        obj = hidden
    if not subject:
        problems.append(f"the subject ('{mapping.subject}') is empty")
    elif not slugify(subject):
        problems.append(f"the subject '{subject}' has no letters or digits to make a key from")
    if not obj:
        problems.append(f"the object ('{mapping.object}') is empty")
    if not relation:
        problems.append(f"the relation ('{mapping.relation}') is empty")
    elif not KEY_PART_RE.match(relation):
        problems.append(f"the relation '{relation}' must be lower-case letters, digits and hyphens, "
                        "like 'term-definition'")
    supplemented = False
    flag = text(mapping.supplemented).lower()
    if flag in _TRUE:
        supplemented = True
    elif flag not in _FALSE:
        problems.append(f"supplemented is '{text(mapping.supplemented)}'; write yes or no")
    for part, value in (("subject", subject), ("object", obj), ("explanation", explanation)):
        if len(value) > max_chars:
            problems.append(f"the {part} is {len(value):,} characters long; the limit is {max_chars:,}")
    if problems:
        return None, problems
    return FactDraft(subject=subject, relation=relation, object=obj, section=section, explanation=explanation,
                     supplemented=supplemented, source_line=row.line), []


def _mapped_rows(table: Table, mapping: ColumnMapping, rows: tuple[TableRow, ...],
                 max_chars: int) -> Iterator[tuple[TableRow, FactDraft | None, list[str]]]:
    """Each row with its fact and problems; a second fact with the same relation and subject key is a problem."""
    check_mapping(table, mapping)
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        draft, problems = _draft(table, row, mapping, max_chars)
        if draft is not None:
            first = seen.get((draft.relation, draft.key_part))
            if first is not None:
                problems.append(f"a second '{draft.relation}' fact for '{draft.subject}' (the first is on line "
                                f"{first}); keep one, or change one's subject")
                draft = None
            else:
                seen[(draft.relation, draft.key_part)] = row.line
        yield row, draft, problems


def facts_from_table(table: Table, mapping: ColumnMapping, *,
                     max_chars: int = DEFAULT_LIMITS.deck_max_text_chars) -> ImportResult:
    """The facts the rows of `table` give under `mapping`, and each row's problems by line.

    A row gives no fact when its subject, object or relation is empty or malformed, a text
    is longer than `max_chars`, its supplemented cell is neither yes nor no, or it repeats
    the relation and subject of an earlier row (the key would clash). Raises
    FactsImportError when the mapping itself does not fit the table.
    """
    result = ImportResult()
    for row, draft, problems in _mapped_rows(table, mapping, table.rows, max_chars):
        if draft is not None:
            result.facts.append(draft)
        result.problems.extend(RowProblem(line=row.line, message=message) for message in problems)
    return result


def preview_import(table: Table, mapping: ColumnMapping, *, rows: int = 10,
                   max_chars: int = DEFAULT_LIMITS.deck_max_text_chars) -> list[PreviewRow]:
    """The first `rows` rows as `facts_from_table` reads them, each with its fact or its problems."""
    return [PreviewRow(line=row.line, cells=row.cells, fact=draft, problems=tuple(problems))
            for row, draft, problems in _mapped_rows(table, mapping, table.rows[:rows], max_chars)]


# Header names that say which part of a fact a column holds, for a first guess at the mapping.
_GUESSES = {
    "subject": ("subject", "term", "word", "front", "question", "item", "field 1", "name", "concept"),
    "object": ("object", "definition", "meaning", "back", "answer", "field 2", "value", "description"),
    "relation": ("relation", "relation name", "kind", "type"),
    "section": ("section", "chapter", "topic", "deck"),
    "explanation": ("explanation", "notes", "note", "extra", "comment", "comments", "field 3"),
    "supplemented": ("supplemented", "supplementary", "added"),
}


def guess_mapping(table: Table, *, fixed_relation: str = "term-definition") -> ColumnMapping:
    """A first mapping for `table` from its column names (term/definition, front/back, subject/object ...).

    Columns no name points to are left unmapped; without such names the first two columns
    are the subject and the object. Without a relation column every row gets `fixed_relation`.
    A person should check it in the preview before importing. Raises FactsImportError for a
    table of fewer than two columns.
    """
    lowered = {name.lower(): name for name in reversed(table.columns)}
    chosen: dict[str, str] = {}
    for part, names in _GUESSES.items():
        for name in names:
            if name in lowered and lowered[name] not in chosen.values():
                chosen[part] = lowered[name]
                break
    for part in ("subject", "object"):
        if part not in chosen:
            free = [name for name in table.columns if name not in chosen.values()]
            if not free:
                raise FactsImportError(f"the table has {len(table.columns)} column(s); a fact needs a subject "
                                       "and an object column")
            chosen[part] = free[0]
    return ColumnMapping(subject=chosen["subject"], object=chosen["object"], relation=chosen.get("relation"),
                         fixed_relation=None if "relation" in chosen else fixed_relation,
                         section=chosen.get("section"), explanation=chosen.get("explanation"),
                         supplemented=chosen.get("supplemented"))
