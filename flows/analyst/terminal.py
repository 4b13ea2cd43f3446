"""Data shown in a terminal: control and format characters (escape sequences, bell, bidi
overrides) replaced by U+FFFD, so that a record title cannot retitle the window or clear it."""

from __future__ import annotations

import unicodedata

REPLACEMENT = "\ufffd"
HIDDEN_CATEGORIES = ("Cc", "Cf")  # Unicode categories: control, format
HIDDEN_PATTERN = r"[\p{Cc}\p{Cf}]"  # the same, for polars' (Rust) regular expressions


def printable(text: str) -> str:
    """Return `text` with every control or format character replaced by U+FFFD."""
    if text.isprintable():
        return text
    return "".join(REPLACEMENT if unicodedata.category(c) in HIDDEN_CATEGORIES else c for c in text)
