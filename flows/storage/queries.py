"""Where the SQL texts are: the repository's sql/ folder, shipped in the wheel as package data.

In a checkout, flows/storage/sql is a link to the top-level sql/ folder; a built wheel holds
the files themselves at flows/storage/sql (pyproject.toml's package data), never as a
top-level package of its own. Both are read through importlib.resources under one name.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

#: sql/: postgres/NNNN_name.sql migrations, duckdb/ (the replay schema), queries/ (named).
SQL: Traversable = resources.files("flows.storage") / "sql"
QUERIES: Traversable = SQL / "queries"


def sql_file(*parts: str) -> Traversable:
    """Return the SQL file at sql/<parts…> (a part may hold '/': "queries/extract/users.sql")."""
    return SQL.joinpath(*(piece for part in parts for piece in part.split("/")))


def sql_text(*parts: str) -> str:
    """Return the text of the SQL file at sql/<parts…> (UTF-8)."""
    return sql_file(*parts).read_text(encoding="utf-8")


def sql_files(folder: Traversable, pattern_suffix: str = ".sql") -> list[Traversable]:
    """Return the files of `folder` whose names end with `pattern_suffix`, sorted by name."""
    return sorted(
        (f for f in folder.iterdir() if f.is_file() and f.name.endswith(pattern_suffix)),
        key=lambda f: f.name,
    )
