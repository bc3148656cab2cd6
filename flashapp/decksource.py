"""Read and validate a deck's facts file (YAML) into a `DeckSpec`.

Every problem is reported as a `DeckSourceError` naming the file, the line and
what to fix. Nothing here touches the database, so a refused file changes nothing.

A facts file is plain data, read within `DeckLimits`: only regular files, of a bounded
size, without YAML aliases or tags (which would let a small file expand without bound or
ask for Python objects), nested no deeper than the format needs, with bounded texts and
facts. The YAML is parsed by libyaml when PyYAML has it (many times faster) and composed
here, without recursion, keeping every node's line.
"""

from __future__ import annotations

import gc
import os
import re
import stat
import string
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import CollectionNode, MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

TEMPLATE_NAMES = ("forward", "reverse", "grouped", "cloze")
TEMPLATE_FIELDS = {
    "forward": {"subject"},
    "reverse": {"object"},
    "grouped": {"object"},
    # The subject of a cloze fact is a sentence; {subject} is put in with the object hidden.
    "cloze": {"subject"},
}
# What a cloze card shows in place of the hidden words.
CLOZE_GAP = "[...]"
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
KEY_PART_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
# Set by the database's columns (models.py): a longer name could not be stored.
MAX_NAME_CHARS = 80  # the deck's slug, a relation's or a section's name
MAX_TITLE_CHARS = 200
# The format's own nesting: the file, 'facts', a fact, an object's list.
FORMAT_DEPTH = 4

# libyaml's parser when PyYAML was built with it; the pure-Python one otherwise.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class DeckLimits:
    """How large a facts file may be; each limit has a setting of the same name in upper case."""

    deck_max_file_bytes: int = 5_000_000
    deck_max_facts: int = 20_000
    deck_max_text_chars: int = 2_000
    deck_max_depth: int = 10

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DeckLimits:
        """The limits set in the app's configuration (DECK_MAX_FILE_BYTES ...), defaults for the rest."""
        defaults = cls()
        return cls(**{name: int(config.get(name.upper(), getattr(defaults, name)))
                      for name in cls.__dataclass_fields__})


DEFAULT_LIMITS = DeckLimits()


class DeckSourceError(ValueError):
    """A facts file that cannot be built, with where and why."""

    def __init__(self, path: str | Path, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class RelationSpec:
    """A kind of fact and the card templates it teaches with."""

    name: str
    line: int
    templates: dict[str, str]
    answer: str = "{object}"

    @property
    def is_cloze(self) -> bool:
        """A cloze relation's facts hide their object inside their subject (a sentence)."""
        return "cloze" in self.templates


@dataclass(frozen=True)
class FactSpec:
    """One fact of the document: (subject, relation, object) plus where it comes from."""

    relation: str
    subject: str
    objects: tuple[str, ...]
    section: str
    supplemented: bool
    line: int
    id: str
    explanation: str = ""

    @cached_property
    def object_text(self) -> str:
        return join_words(self.objects)


@dataclass(frozen=True)
class DeckSpec:
    """A whole validated deck source."""

    path: str
    slug: str
    title: str
    source: str
    sections: dict[str, str]
    relations: dict[str, RelationSpec]
    facts: list[FactSpec] = field(default_factory=list)


def join_words(items: tuple[str, ...] | list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def cloze_question_text(sentence: str, hidden: str) -> str:
    """The sentence with the first occurrence of the hidden words replaced by the gap."""
    before, found, after = sentence.partition(hidden)
    if not found:
        raise ValueError(f"{hidden!r} does not occur in {sentence!r}")
    return before + CLOZE_GAP + after


def slugify(text: str) -> str:
    """A key part made from text: lower case, words joined by hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class _Reader:
    """Walks the YAML node tree, keeping line numbers for every error."""

    def __init__(self, path: str | Path):
        self.path = path

    def fail(self, node: Node | None, message: str) -> DeckSourceError:
        line = node.start_mark.line + 1 if node is not None else None
        return DeckSourceError(self.path, line, message)

    def mapping(self, node: Node, what: str) -> dict[str, tuple[Node, Node]]:
        if not isinstance(node, MappingNode):
            raise self.fail(node, f"{what} must be a mapping of 'name: value' lines")
        result: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise self.fail(key_node, f"a key in {what} must be a plain word")
            key = key_node.value
            if key in result:
                first = result[key][0].start_mark.line + 1
                raise self.fail(key_node, f"'{key}' appears twice in {what} (first on line {first}); keep one")
            result[key] = (key_node, value_node)
        return result

    def text(self, node: Node, what: str) -> str:
        if not isinstance(node, ScalarNode) or node.tag.endswith(":null"):
            raise self.fail(node, f"{what} must be a piece of text")
        value: str = node.value.strip()  # a scalar node's value is always its text
        if not value:
            raise self.fail(node, f"{what} is empty; write it out")
        return value

    def name(self, node: Node, what: str, *, limit: int = MAX_NAME_CHARS) -> str:
        value = self.text(node, what)
        if len(value) > limit:
            raise self.fail(node, f"{what} is {len(value):,} characters long; the limit is {limit}")
        return value

    def boolean(self, node: Node, what: str) -> bool:
        if isinstance(node, ScalarNode) and node.value.lower() in ("true", "yes"):
            return True
        if isinstance(node, ScalarNode) and node.value.lower() in ("false", "no"):
            return False
        raise self.fail(node, f"{what} must be true or false")

    def texts(self, node: Node, what: str) -> tuple[str, ...]:
        if isinstance(node, SequenceNode):
            items = tuple(self.text(item, what) for item in node.value)
            if not items:
                raise self.fail(node, f"{what} is an empty list; give at least one")
            return items
        return (self.text(node, what),)

    def check_fields(self, fields: dict[str, tuple[Node, Node]], allowed: set[str], required: set[str],
                     node: Node, what: str) -> None:
        for name, (key_node, _value) in fields.items():
            if name not in allowed:
                raise self.fail(key_node, f"unknown field '{name}' in {what}; allowed: {', '.join(sorted(allowed))}")
        for name in sorted(required):
            if name not in fields:
                raise self.fail(node, f"{what} is missing the field '{name}'")


def parse_deck_text(text: str, path: str | Path = "<deck>", *, limits: DeckLimits = DEFAULT_LIMITS) -> DeckSpec:
    """Parse and validate the text of a facts file, within `limits`."""
    with _collector_paused():
        return _parse_deck_text(text, path, limits)


def _parse_deck_text(text: str, path: str | Path, limits: DeckLimits) -> DeckSpec:
    reader = _Reader(path)
    if len(text) > limits.deck_max_file_bytes // 4:  # shorter texts cannot be over the limit in UTF-8
        encoded = text.encode("utf-8")
        if len(encoded) > limits.deck_max_file_bytes:
            raise _too_large(path, encoded, limits)
    root = _compose(text, path, limits)
    if root is None:
        raise DeckSourceError(path, None, "the file is empty; see decks/README.md for the format")

    top = reader.mapping(root, "the file")
    reader.check_fields(top, {"deck", "relations", "facts"}, {"deck", "relations", "facts"}, root, "the file")

    deck_node = top["deck"][1]
    deck = reader.mapping(deck_node, "'deck'")
    reader.check_fields(deck, {"slug", "title", "source", "sections"}, {"slug", "title", "source", "sections"},
                        deck_node, "'deck'")
    slug = reader.name(deck["slug"][1], "the deck's slug")
    if not SLUG_RE.match(slug):
        raise reader.fail(deck["slug"][1], f"slug '{slug}' must be lower-case letters, digits and hyphens, "
                                           "like 'back-muscles'")
    title = reader.name(deck["title"][1], "the deck's title", limit=MAX_TITLE_CHARS)
    source = reader.text(deck["source"][1], "the deck's source")
    sections_node = deck["sections"][1]
    sections: dict[str, str] = {}
    for name, (key_node, value_node) in reader.mapping(sections_node, "'sections'").items():
        reader.name(key_node, "a section's name")
        if not KEY_PART_RE.match(name):
            raise reader.fail(key_node, f"section name '{name}' must be lower-case letters, digits and hyphens")
        sections[name] = reader.text(value_node, f"the title of section '{name}'")

    relations_node = top["relations"][1]
    relations: dict[str, RelationSpec] = {}
    for name, (key_node, value_node) in reader.mapping(relations_node, "'relations'").items():
        reader.name(key_node, "a relation's name")
        if not KEY_PART_RE.match(name):
            raise reader.fail(key_node, f"relation name '{name}' must be lower-case letters, digits and hyphens")
        relations[name] = _parse_relation(reader, name, value_node)

    facts_node = top["facts"][1]
    if not isinstance(facts_node, SequenceNode) or not facts_node.value:
        raise reader.fail(facts_node, "'facts' must be a list of facts, each starting with '- relation: ...'")
    if len(facts_node.value) > limits.deck_max_facts:
        raise reader.fail(facts_node.value[limits.deck_max_facts],
                          f"this is fact number {limits.deck_max_facts + 1:,} of {len(facts_node.value):,}; "
                          f"the limit is {limits.deck_max_facts:,} facts a deck (DECK_MAX_FACTS): "
                          "split the document into several decks")
    facts: list[FactSpec] = []
    seen: dict[tuple[str, str], int] = {}
    for fact_node in facts_node.value:
        fact = _parse_fact(reader, fact_node, relations, sections)
        first = seen.get((fact.relation, fact.id))
        if first is not None:
            raise reader.fail(fact_node, f"a second '{fact.relation}' fact for '{fact.id}' (the first is on line "
                                         f"{first}); merge them, or give one an 'id' of its own")
        seen[(fact.relation, fact.id)] = fact.line
        facts.append(fact)

    _check_reverse_is_unambiguous(reader, relations, facts)
    return DeckSpec(path=str(path), slug=slug, title=title, source=source, sections=sections,
                    relations=relations, facts=facts)


def _parse_relation(reader: _Reader, name: str, node: Node) -> RelationSpec:
    what = f"relation '{name}'"
    fields = reader.mapping(node, what)
    reader.check_fields(fields, set(TEMPLATE_NAMES) | {"answer"}, set() if "cloze" in fields else {"forward"},
                        node, what)
    if "cloze" in fields and len(set(fields) & set(TEMPLATE_NAMES)) > 1:
        raise reader.fail(fields["cloze"][0], f"{what} has a 'cloze' question, which stands alone: move the "
                                              "other questions to a relation of their own")
    templates: dict[str, str] = {}
    for template in TEMPLATE_NAMES:
        if template in fields:
            value_node = fields[template][1]
            text = reader.text(value_node, f"the {template} question of {what}")
            _check_placeholders(reader, value_node, text, TEMPLATE_FIELDS[template], f"the {template} question")
            templates[template] = text
    answer = "{object}"
    if "answer" in fields:
        value_node = fields["answer"][1]
        answer = reader.text(value_node, f"the answer of {what}")
        _check_placeholders(reader, value_node, answer, {"object", "subject"}, "the answer")
    return RelationSpec(name=name, line=node.start_mark.line + 1, templates=templates, answer=answer)


def _check_placeholders(reader: _Reader, node: Node, text: str, allowed: set[str], what: str) -> None:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError:
        raise reader.fail(node, f"{what} has an unmatched '{{' or '}}'") from None
    unknown = names - allowed
    if unknown:
        raise reader.fail(node, f"{what} uses {{{sorted(unknown)[0]}}}; it may only use "
                                + ", ".join("{" + a + "}" for a in sorted(allowed)))


FACT_FIELDS = {"relation", "subject", "object", "section", "supplemented", "id", "explanation"}
FACT_REQUIRED = {"relation", "subject", "object", "section"}


def _parse_fact(reader: _Reader, node: Node, relations: dict[str, RelationSpec],
                sections: dict[str, str]) -> FactSpec:
    what = "this fact"
    fields = reader.mapping(node, what)
    reader.check_fields(fields, FACT_FIELDS, FACT_REQUIRED, node, what)
    relation_node = fields["relation"][1]
    relation = reader.text(relation_node, "the relation")
    if relation not in relations:
        raise reader.fail(relation_node, f"unknown relation '{relation}'; declared relations: "
                                         + ", ".join(sorted(relations)))
    subject = reader.text(fields["subject"][1], "the subject")
    objects = reader.texts(fields["object"][1], "the object")
    section_node = fields["section"][1]
    section = reader.text(section_node, "the section")
    if section not in sections:
        raise reader.fail(section_node, f"unknown section '{section}'; declared sections: "
                                        + ", ".join(sorted(sections)))
    supplemented = False
    if "supplemented" in fields:
        supplemented = reader.boolean(fields["supplemented"][1], "'supplemented'")
    if "id" in fields:
        id_node = fields["id"][1]
        fact_id = reader.text(id_node, "the id")
        if not KEY_PART_RE.match(fact_id):
            raise reader.fail(id_node, f"id '{fact_id}' must be lower-case letters, digits and hyphens")
    else:
        fact_id = slugify(subject)
        if not fact_id:
            raise reader.fail(fields["subject"][1], "the subject has no letters or digits to make a key from; "
                                                    "add an 'id'")
    explanation = ""
    if "explanation" in fields:
        explanation = reader.text(fields["explanation"][1], "the explanation")
    if relations[relation].is_cloze:
        object_node = fields["object"][1]
        if len(objects) != 1:
            raise reader.fail(object_node, "a cloze fact hides one span of its sentence: give one object")
        if objects[0] not in subject:
            raise reader.fail(object_node, f"the words to hide, '{objects[0]}', do not occur in the subject; "
                                           "copy them exactly from the sentence")
    return FactSpec(relation=relation, subject=subject, objects=objects, section=section,
                    supplemented=supplemented, line=node.start_mark.line + 1, id=fact_id,
                    explanation=explanation)


def _check_reverse_is_unambiguous(reader: _Reader, relations: dict[str, RelationSpec],
                                  facts: list[FactSpec]) -> None:
    """A reverse question must have one right answer: no two facts may share its object."""
    owners: dict[tuple[str, str], FactSpec] = {}
    for fact in facts:
        if "reverse" not in relations[fact.relation].templates:
            continue
        key = (fact.relation, fact.object_text.lower())
        if key in owners:
            raise DeckSourceError(
                reader.path, fact.line,
                f"relation '{fact.relation}' asks a reverse question, but '{fact.object_text}' is also the object "
                f"of the fact on line {owners[key].line}, so the question would have two answers; "
                "use a 'grouped' question for this relation instead",
            )
        owners[key] = fact


def check_deck_spec(spec: DeckSpec) -> None:
    """The checks across facts that a parsed file gets, for a spec made some other way (a browser-written deck).

    Raises DeckSourceError naming the spec's path.
    """
    _check_reverse_is_unambiguous(_Reader(spec.path), spec.relations, spec.facts)


def load_deck(path: str | Path, *, limits: DeckLimits = DEFAULT_LIMITS) -> DeckSpec:
    """Read and validate one facts file: a regular file of at most `limits.deck_max_file_bytes`."""
    path = Path(path)
    if path.is_dir():
        raise DeckSourceError(path, None, "is a folder, not a facts file; give the .yaml file inside it")
    try:
        # Never wait on a pipe: a facts file is a regular file, which opens at once.
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise DeckSourceError(path, None, "no such file") from None
    except OSError as error:
        raise DeckSourceError(path, None, f"cannot be read ({error.strerror})") from None
    with os.fdopen(handle, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise DeckSourceError(path, None, "is a folder, not a facts file; give the .yaml file inside it")
        if not stat.S_ISREG(mode):
            raise DeckSourceError(path, None, "is not a regular file (it is a device, a pipe or a socket); "
                                              "give a facts file")
        data = file.read(limits.deck_max_file_bytes + 1)
    if len(data) > limits.deck_max_file_bytes:
        raise _too_large(path, data, limits)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DeckSourceError(path, None, f"not UTF-8 text ({error.reason})") from None
    return parse_deck_text(text, path, limits=limits)


def _too_large(path: str | Path, data: bytes, limits: DeckLimits) -> DeckSourceError:
    line = data[:limits.deck_max_file_bytes].count(b"\n") + 1
    return DeckSourceError(path, line, f"the file goes on past {limits.deck_max_file_bytes:,} bytes here, the limit "
                                       "for a facts file (DECK_MAX_FILE_BYTES): split the document into several decks")


def _compose(text: str, path: str | Path, limits: DeckLimits) -> Node | None:
    """The YAML node tree of a facts file, refusing what a facts file has no use for.

    Built from the parser's events without recursion, so that nesting is refused at the
    limit rather than by Python's stack; every node keeps its line for the errors.
    """
    try:
        return _compose_events(text, path, limits)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        message = f"not valid YAML: {error.problem or error.context}"
        if error.problem and error.context and error.context_mark and error.context_mark.line + 1 != line:
            message += f" ({error.context} that starts on line {error.context_mark.line + 1})"
        raise DeckSourceError(path, line, message) from None
    except yaml.YAMLError as error:
        raise DeckSourceError(path, None, f"not valid YAML: {error}") from None


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector waits: reading a deck makes a tree without cycles, and
    collecting again and again while a hundred thousand nodes pile up takes longer than the parsing."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _compose_events(text: str, path: str | Path, limits: DeckLimits) -> Node | None:
    resolve: Any = Resolver().resolve  # untyped in the stubs
    open_nodes: list[tuple[CollectionNode, list[Node]]] = []
    root: Node | None = None
    documents = 0
    max_text, max_depth = limits.deck_max_text_chars, limits.deck_max_depth

    def fail(event: Any, message: str) -> DeckSourceError:
        return DeckSourceError(path, event.start_mark.line + 1, message)

    event: Any  # libyaml's events carry marks of its own class, with the same line and column
    for event in yaml.parse(text, Loader=_LOADER):
        kind = type(event)
        node: Node
        if kind is ScalarEvent or kind is MappingStartEvent or kind is SequenceStartEvent:
            if event.anchor is not None:
                raise fail(event, f"an anchor (&{event.anchor}); a facts file may not repeat parts of itself: "
                                  "write the text out")
            if event.tag is not None:
                raise fail(event, f"a YAML tag ({_short_tag(event.tag)}); a facts file holds plain text only: "
                                  "remove the tag (quote the text if it needs quoting)")
            if kind is ScalarEvent:
                value = event.value
                if len(value) > max_text:
                    raise fail(event, f"a text of {len(value):,} characters; the limit is {max_text:,} "
                                      "(DECK_MAX_TEXT_CHARS): shorten it")
                node = ScalarNode(resolve(ScalarNode, value, event.implicit), value, event.start_mark,
                                  event.end_mark, style=event.style)
            else:
                if len(open_nodes) >= max_depth:
                    raise fail(event, f"nested more than {max_depth} levels deep, the limit (DECK_MAX_DEPTH); "
                                      f"a facts file needs {FORMAT_DEPTH}")
                node_kind = MappingNode if kind is MappingStartEvent else SequenceNode
                collection = node_kind(resolve(node_kind, None, event.implicit), [], event.start_mark,
                                       event.end_mark, flow_style=event.flow_style)
                open_nodes.append((collection, []))
                if len(open_nodes) == 1:
                    root = collection
                continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            node, items = open_nodes.pop()
            node.end_mark = event.end_mark
            node.value = list(zip(items[::2], items[1::2], strict=True)) if kind is MappingEndEvent else items
        elif kind is AliasEvent:
            raise fail(event, f"an alias (*{event.anchor}); a facts file may not repeat parts of itself: "
                              "write the text out")
        elif kind is DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise fail(event, "a second YAML document ('---'); a facts file holds one: "
                                  "put each deck in a file of its own")
            continue
        else:
            continue
        if open_nodes:
            open_nodes[-1][1].append(node)
        elif root is None:
            root = node
    return root


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def deck_files(directory: str | Path) -> list[Path]:
    """The facts files in a folder, in name order."""
    directory = Path(directory)
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
