"""The `rotation` command line: the parser (parsers.py), the entry point (main.py) and one
handler module per command group. Nothing imports this package but the entry point."""

from __future__ import annotations

from flows.cli.main import main

__all__ = ["main"]
