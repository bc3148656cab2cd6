"""What counts as a control character: Unicode's categories Cc and Cs, every code point of them and no other."""

from __future__ import annotations

import sys
import unicodedata

from flashapp.text_input import has_control_characters


def test_control_characters_are_exactly_unicodes_cc_and_cs():
    refused = [point for point in range(sys.maxunicode + 1) if has_control_characters(chr(point))]
    assert refused == [point for point in range(sys.maxunicode + 1)
                       if unicodedata.category(chr(point)) in {"Cc", "Cs"}]


def test_a_control_character_anywhere_in_the_text_is_found():
    assert not has_control_characters("")
    assert not has_control_characters("Ann-Marie Östlund ✓ 名前")
    for text in ("ann\n", "\tann", "a\x00b", "caf\u0085e", "x\x7f", "lone \ud800 surrogate"):
        assert has_control_characters(text), repr(text)
