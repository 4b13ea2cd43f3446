"""Data shown in a terminal: control and format characters (escape sequences, bell, bidi
overrides) replaced by U+FFFD, so that a record title cannot retitle the window or clear it."""

from __future__ import annotations

import unicodedata

import polars as pl

REPLACEMENT = "\ufffd"
_HIDDEN = ("Cc", "Cf")  # Unicode categories: control, format
_HIDDEN_PATTERN = r"[\p{Cc}\p{Cf}]"


def printable(text: str) -> str:
    """Return `text` with every control or format character replaced by U+FFFD."""
    if text.isprintable():
        return text
    return "".join(REPLACEMENT if unicodedata.category(c) in _HIDDEN else c for c in text)


def printable_expr(expr: pl.Expr) -> pl.Expr:
    """Return the polars expression of `printable` over a text expression."""
    return expr.str.replace_all(_HIDDEN_PATTERN, REPLACEMENT)
