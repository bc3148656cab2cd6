"""Candidate facts found in a document's sentences, for a teacher to accept, edit or drop.

Rules over the text, no network and no trained model: a sentence gives a candidate only
when it has one of a few regular forms, and a form that could mislead gives nothing. Each
candidate names the relation preset it fits:

| kind               | preset             | forms                                                         |
|--------------------|--------------------|---------------------------------------------------------------|
| `definition`       | `term-definition`  | X is a/an/the Y; X, which is Y, ...; X refers to / means /    |
|                    |                    | is defined as Y; X is also known as / also called Y           |
| `category-list`    | `item-category`    | X include(s) A, B and C; X consists of / is made up of /      |
|                    |                    | contains / comprises A, B and C; ..., which (also) includes   |
|                    |                    | A and B; the X are A, B and C (three or more) -- one          |
|                    |                    | candidate per item, the item as subject, X as object          |
| `function`         | `item-function`    | X helps (you) (to) Y; X allows / lets / enables you (to) Y;   |
|                    |                    | X is responsible for Y; X is used to / for Y; X aids in /     |
|                    |                    | assists in Y; the function / job / role of X is to Y          |
| `situation-action` | `situation-action` | If / When you Y, X ("If A or if B, X" gives two); To Y, X;    |
|                    |                    | Do X when doing Y                                             |

Questions are skipped, as are subjects that are pronouns ("it", "these muscles"): the
card would not say what they stand for. Candidates repeating an earlier one (same preset,
subject and object, ignoring case) are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .sentences import split_sections, split_sentences

PRESET_OF_KIND = {
    "definition": "term-definition",
    "category-list": "item-category",
    "function": "item-function",
    "situation-action": "situation-action",
}


@dataclass(frozen=True)
class Candidate:
    """A fact a sentence seems to state: its kind, subject, object and relation preset, and why.

    `section` and `sentence` are the document's own, as given to `find_candidates`;
    `reason` names the form that matched, in a few words a teacher can read.
    """

    kind: str
    subject: str
    object: str
    relation: str
    section: str
    sentence: str
    reason: str


# Words that stand for something said before: a card built on them would not make sense alone.
_PRONOUN_START = re.compile(
    r"^(?:it|its|this|that|these|those|they|them|there|here|he|she|we|i|which|what|who|whom|whose|such|"
    r"each|every|many|most|some|all|both|either|neither|one|another|other|others|something|anything)\b",
    re.IGNORECASE)
_DETERMINER = re.compile(r"^(?:the|a|an|your|our|their|its|his|her|my)\s+", re.IGNORECASE)
# A noun phrase at the start of a sentence: up to seven words, no clause punctuation.
_NP = r"(?P<subject>[A-Za-z][^,;:.!?]{0,80}?)"
_OPENERS = re.compile(r"^(?:for example|for instance|in fact|in general|as stated earlier|in short|however|"
                      r"also|so|thus|therefore|generally|usually|typically),\s+", re.IGNORECASE)


def _clean(text: str, *, determiner: bool = True) -> str:
    """Text trimmed of spaces, closing punctuation and (for a subject or item) a leading article."""
    text = re.sub(r"\s+", " ", text).strip().strip(",;:").strip()
    text = re.sub(r"[.!?]+$", "", text).strip()
    if determiner:
        text = _DETERMINER.sub("", text)
    return text


def _usable_subject(text: str) -> bool:
    words = text.split()
    return 0 < len(words) <= 7 and not _PRONOUN_START.match(text) and bool(re.search(r"[A-Za-z]", text))


def _sentence_start(text: str) -> str:
    """A sentence without markdown (emphasis, code marks, links) or a leading 'For example,'."""
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\*\*|__|\*|`", "", text)
    return _OPENERS.sub("", text.strip())


def _list_items(text: str) -> list[str]:
    """'A, B(,) and C' as [A, B, C]; empty when the text is not such a list of 2 to 12 short items."""
    text = _clean(text, determiner=False)
    text = re.split(r"\s+(?:—|–|--)\s*|\s*\((?:see|e\.g\.)", text)[0]
    parts = re.split(r",\s*(?:and\s+|or\s+)?|\s+and\s+", text)
    items = _complete_pairs([_clean(part) for part in parts])
    if not 2 <= len(items) <= 12 or any(not item or len(item.split()) > 5 for item in items):
        return []
    return items


# Words that come in pairs, so that "the serratus posterior superior and inferior" names two muscles.
_PAIRED = [{"superior", "inferior"}, {"upper", "lower"}, {"left", "right"}, {"anterior", "posterior"},
           {"major", "minor"}, {"internal", "external"}, {"medial", "lateral"}, {"greater", "lesser"},
           {"longus", "brevis"}, {"front", "back"}]


def _complete_pairs(items: list[str]) -> list[str]:
    """A list item of one paired word after an item ending in its partner: 'A superior', 'inferior' -> 'A inferior'."""
    completed: list[str] = []
    for item in items:
        previous = completed[-1].split() if completed else []
        if (len(previous) >= 2 and " " not in item
                and any({item.lower(), previous[-1].lower()} == pair for pair in _PAIRED)):
            item = " ".join([*previous[:-1], item])
        completed.append(item)
    return completed


def _definitions(sentence: str) -> list[tuple[str, str, str]]:
    text = _sentence_start(sentence)
    found: list[tuple[str, str, str]] = []
    patterns = [
        (rf"^{_NP}\s*,\s*which\s+(?:is|are)\s+(?P<object>[^,]+),", "X, which is Y"),
        (rf"^{_NP}\s+(?:is|are)\s+(?:also\s+)?(?:known as|called)\s+(?P<object>.+?)(?:\s+and\s+\w+s?\b.*)?$",
         "X is also known as Y"),
        (rf"^{_NP}\s+(?:refers|refer)\s+to\s+(?P<object>.+)$", "X refers to Y"),
        (rf"^{_NP}\s+(?:means|mean|is defined as|are defined as)\s+(?P<object>.+)$", "X means Y"),
        (rf"^{_NP}\s+(?:is|are)\s+(?P<object>(?:a|an|the)\s+.+)$", "X is a Y"),
    ]
    for pattern, reason in patterns:
        match = re.match(pattern, text, re.IGNORECASE)
        if match:
            subject = re.sub(r"^(?:the\s+)?(?:term|word|phrase)\s+", "", _clean(match.group("subject")),
                             flags=re.IGNORECASE).strip("\"'“”‘’")
            obj = _clean(match.group("object"), determiner=False)
            if len(_list_items(obj)) >= 3:
                break  # "the X are A, B and C" names members; it is no definition
            if _usable_subject(subject) and obj and not re.match(r"(?:a|an|the)\s*$", obj, re.IGNORECASE):
                found.append((subject, obj, reason))
            break
    return found


_LIST_VERBS = (r"include|includes|consist of|consists of|is made up of|are made up of|contain|contains|"
               r"comprise|comprises|is composed of|are composed of")


def _category_lists(sentence: str) -> list[tuple[str, str, str]]:
    text = _sentence_start(sentence)
    found: list[tuple[str, str, str]] = []
    match = re.match(rf"^{_NP}\s+(?P<verb>{_LIST_VERBS})\s*:?\s+(?P<items>.+)$", text, re.IGNORECASE)
    if match:
        category = _clean(match.group("subject"))
        items = _list_items(match.group("items"))
        if len(items) == 1:
            items = []
        if _usable_subject(category):
            found += [(item, category, f"X {match.group('verb').lower()} A, B and C") for item in items]
    which = re.search(r"\b(?:the|a|an|your|their)\s+(?P<category>[a-z][a-z' -]{0,40}?)\s*,\s*which\s+(?:also\s+)?"
                      r"(?:includes?|contains?)\s+(?P<items>.+)$", text, re.IGNORECASE)
    if which and not match:
        category = _clean(which.group("category"))
        if _usable_subject(category) and len(category.split()) <= 4:
            found += [(item, category, "..., which includes A, B and C")
                      for item in _list_items(which.group("items"))]
    are = re.match(rf"^the\s+{_NP}\s+(?:are|were)\s+(?P<items>.+)$", text, re.IGNORECASE)
    if are and not match:
        category = _clean(are.group("subject"))
        items = _list_items(are.group("items"))
        if _usable_subject(category) and len(items) >= 3:
            found += [(item, category, "the X are A, B and C") for item in items]
    return found


_FUNCTION_VERBS = [
    (r"(?:can\s+|may\s+|will\s+)?helps?\s+(?:you\s+)?(?:to\s+)?", "X helps you Y"),
    (r"(?:allows?|lets?|enables?)\s+(?:you|us|people|the body)\s+(?:to\s+)?", "X allows you to Y"),
    (r"(?:is|are)\s+responsible\s+for\s+", "X is responsible for Y"),
    (r"(?:is|are)\s+used\s+(?:to|for)\s+", "X is used to Y"),
    (r"(?:aids?|assists?)\s+(?:in|with)\s+", "X aids in Y"),
]


def _functions(sentence: str) -> list[tuple[str, str, str]]:
    text = _sentence_start(sentence)
    found: list[tuple[str, str, str]] = []
    role = re.match(r"^the\s+(?:main\s+|chief\s+|primary\s+)?(?:function|job|role|purpose)\s+of\s+"
                    r"(?P<subject>[^,;]{1,60}?)\s+is\s+to\s+(?P<object>[^,;]+)", text, re.IGNORECASE)
    if role:
        subject = _clean(role.group("subject"))
        if _usable_subject(subject):
            found.append((subject, _clean(role.group("object"), determiner=False), "the function of X is to Y"))
        return found
    # Several clauses may each state one: "A helps you B, C helps you D, and E helps F."
    for verb, reason in _FUNCTION_VERBS:
        for match in re.finditer(rf"(?:^|[,;]\s+(?:and\s+|but\s+|while\s+)?){_NP}\s+{verb}(?P<object>[^,;]+)",
                                 text, re.IGNORECASE):
            subject = _clean(match.group("subject"))
            obj = _clean(match.group("object"), determiner=False)
            if _usable_subject(subject) and obj and len(obj.split()) <= 12:
                found.append((subject, obj, reason))
    return found


_ADVICE = re.compile(
    r"^(?:(?:it\s+is|it's)\s+(?:recommended|best|important|advisable|wise)\s+(?:that\s+)?(?:to\s+)?(?:you\s+)?|"
    r"you\s+(?:should|must|may need to|need to|might need to|can|may)\s+)", re.IGNORECASE)
_CLAUSE_SUBJECT = re.compile(r"^(?:you|it|they|we|your|this|these|there|most|it's)\b", re.IGNORECASE)


def _split_main_clause(text: str) -> tuple[str, str] | None:
    """An 'If A, B' sentence's condition and main clause: cut at the first comma before a clause's subject."""
    commas = [m.start() for m in re.finditer(r",\s+", text)]
    for position in commas:
        rest = text[position + 1:].lstrip()
        if _CLAUSE_SUBJECT.match(rest):
            return text[:position], rest
    for position in commas:
        rest = text[position + 1:].lstrip()
        if not re.match(r"(?:and|or|but|nor)\b", rest, re.IGNORECASE):
            return text[:position], rest
    return None


def _situations(sentence: str) -> list[tuple[str, str, str]]:
    text = _sentence_start(sentence)
    found: list[tuple[str, str, str]] = []
    # "When to see a doctor" and "If so, ..." announce advice rather than give it.
    opener = re.match(r"^(?P<word>if|when|whenever|to)\s+(?!to\b|so\b|not\b)(?P<rest>.+)$", text, re.IGNORECASE)
    if opener:
        parts = _split_main_clause(opener.group("rest"))
        if parts is None:
            return found
        condition, main = parts
        action = _clean(_ADVICE.sub("", _clean(main, determiner=False)), determiner=False)
        action = re.split(r"\s*(?:—|–|--)\s*", action)[0]
        word = opener.group("word").lower()
        if word == "to":
            situations = [f"to {_clean(condition, determiner=False)}"]
            reason = "To Y, X"
        else:
            situations = [_clean(part, determiner=False)
                          for part in re.split(r"\s+or\s+(?:if|when)\s+", condition, flags=re.IGNORECASE)]
            reason = f"{word.capitalize()} Y, X"
        if action and len(action.split()) <= 25:
            found += [(situation, action, reason) for situation in situations
                      if situation and len(situation.split()) <= 20]
        return found
    when = re.match(r"^(?P<action>[A-Z][a-z]+\s[^,;]{2,80}?)\s+(?:when|whenever|while)\s+"
                    r"(?P<situation>[a-z]+ing\b[^,;—–]*)", text)
    if when and not _PRONOUN_START.match(when.group("action")) and not _DETERMINER.match(when.group("action") + " "):
        found.append((_clean(when.group("situation"), determiner=False),
                      _clean(when.group("action"), determiner=False), "Do X when doing Y"))
    return found


def _lower_first_word(text: str, sentence: str) -> str:
    """Lower the first letter of a text that only has it because it opens the sentence ("Use" -> "use")."""
    first = text.split(" ", 1)[0]
    opening = _sentence_start(sentence)
    if opening.startswith(first) and len(first) > 1 and first[0].isupper() and first[1:].islower():
        return first[0].lower() + text[1:]
    return text


# Words that carry no meaning of their own when two wordings of a fact are compared.
_FILLER_WORDS = frozenset({"the", "a", "an", "your", "you", "my", "our", "their", "its", "his", "her", "of", "to",
                           "in", "on", "for", "and", "or", "with", "from", "at", "by", "into", "as", "is", "are"})


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for ending in ("ing", "ed"):
        if len(word) > len(ending) + 3 and word.endswith(ending):
            word = word[:-len(ending)]
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def word_set(text: str) -> frozenset[str]:
    """The words of a text as compared between wordings: lower case, no punctuation, no filler words
    (articles, possessives, common prepositions), plurals and -ing/-ed endings removed."""
    words = re.sub(r"[^0-9a-z]+", " ", text.lower()).split()
    return frozenset(_stem(word) for word in words if word not in _FILLER_WORDS)


def same_words(first: str, second: str) -> bool:
    """Whether two texts name the same thing: the word set of one holds every word of the other's.

    "Superficial (extrinsic) back muscles" matches "superficial"; "extend your shoulder"
    matches "extending the shoulder (drawing the arm backward)"; "upper back" does not
    match "lower back".
    """
    a, b = word_set(first), word_set(second)
    return bool(a) and bool(b) and (a <= b or b <= a)


_RULES = [("definition", _definitions), ("category-list", _category_lists), ("function", _functions),
          ("situation-action", _situations)]


def find_candidates(sentences: Iterable[tuple[str, str]]) -> list[Candidate]:
    """Candidate facts in (section title, sentence) pairs, in the document's order.

    A sentence may give several candidates (a list gives one per item, a sentence may hold
    a definition and a function). Questions give none; a candidate that repeats an earlier
    one's preset, subject and object (ignoring case) is left out.
    """
    found: list[Candidate] = []
    seen: set[tuple[str, str, str]] = set()
    for section, sentence in sentences:
        sentence = sentence.strip()
        if not sentence or sentence.endswith("?"):
            continue
        for kind, rule in _RULES:
            for subject, obj, reason in rule(sentence):
                subject, obj = _lower_first_word(subject, sentence), _lower_first_word(obj, sentence)
                relation = PRESET_OF_KIND[kind]
                key = (relation, subject.lower(), obj.lower())
                if key in seen:
                    continue
                seen.add(key)
                found.append(Candidate(kind=kind, subject=subject, object=obj, relation=relation,
                                       section=section, sentence=sentence, reason=reason))
    return found


def document_sentences(text: str) -> list[tuple[str, str]]:
    """A document's (section heading, sentence) pairs, in order.

    Sections are cut at markdown headings; a document with none (text copied from a PDF or
    a web page) is cut at its heading-like lines instead (`split_sections(plain_headings=True)`).
    """
    sections = split_sections(text)
    if not any(title for title, _ in sections):
        sections = split_sections(text, plain_headings=True)
    return [(title, sentence) for title, body in sections for sentence in split_sentences(body)]


def candidates_in_document(text: str) -> list[Candidate]:
    """The candidates of a whole document: `find_candidates` over its `document_sentences`."""
    return find_candidates(document_sentences(text))
