"""Text a person typed: what every stored name, code and password must look like."""

from __future__ import annotations

import re

from .errors import Invalid

# Unicode's control characters (category Cc: NUL to US, DEL and the C1 range) and lone surrogates
# (category Cs): nobody types them into a name, PostgreSQL refuses NUL in text, and a newline can hide
# in a name. One character class, searched in C: every form field and address goes through it.
_REFUSED = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def has_control_characters(text: str) -> bool:
    """True when text holds a character that cannot be typed into a one-line field."""
    return _REFUSED.search(text) is not None


def control_characters_message(what: str) -> str:
    """The message for a field that holds a control character; `what` is "A username", "A class name" ..."""
    return f"{what} cannot contain control characters (such as a line break or a tab); type it on one line."


def clean_line(text: str, *, what: str, field: str, min_length: int, max_length: int) -> str:
    """One line of text without its surrounding spaces, or Invalid with a message for `field`.

    Args:
        text: what was typed.
        what: the thing's name at the start of a sentence, e.g. "A class name".
        field: the form field the message belongs beside.
        min_length: the fewest characters left after stripping (at least 1: there must be content).
        max_length: the most characters.
    """
    if has_control_characters(text):
        raise Invalid(control_characters_message(what), field=field)
    cleaned = text.strip()
    if not max(1, min_length) <= len(cleaned) <= max_length:
        raise Invalid(f"{what} has {min_length} to {max_length} characters.", field=field)
    return cleaned
