"""The storage errors: each message is one line a user can act on, and never holds a password."""

from __future__ import annotations


class StorageError(RuntimeError):
    """A database operation that failed; its message never holds the password."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient  # a dropped connection or restart: worth retrying


class MigrationError(ValueError):
    """A migration that cannot be applied: changed after being applied, misnamed, or failing."""


class BulkError(ValueError):
    """A frame that cannot be written: unknown table or column, or an unsafe name."""
