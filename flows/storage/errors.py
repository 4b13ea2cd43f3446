"""The storage errors: each message is one line a user can act on, and never holds a password."""

from __future__ import annotations

from flows.storage.database import redact

#: Errors of a connection that may heal (a dropped link, a server restarting)…
TRANSIENT_ERRORS = {"OperationalError", "InterfaceError", "AdminShutdown", "ConnectionFailure"}
TRANSIENT_MARKERS = ("connection", "server closed", "terminating", "shutting down", "timeout")
#: …unless the server said why it refused, for good: no such database or role, a wrong
#: password, no pg_hba.conf entry, or a host name that does not resolve.
PERMANENT_MARKERS = (
    "does not exist",
    "authentication failed",
    "no pg_hba.conf entry",
    "could not translate host name",
    "name or service not known",
    "permission denied",
)


class StorageError(RuntimeError):
    """A database operation that failed; its message never holds the password."""

    def __init__(
        self, message: str, *, transient: bool = False, sqlstate: str | None = None
    ) -> None:
        super().__init__(message)
        self.transient = transient  # a dropped connection or restart: worth retrying
        self.sqlstate = sqlstate  # the server's error code (55P03: a lock not had in time)


class MigrationError(ValueError):
    """A migration that cannot be applied: changed after being applied, misnamed, or failing."""


class BulkError(ValueError):
    """A frame that cannot be written: unknown table or column, or an unsafe name."""


def storage_error(exc: BaseException, display: str) -> StorageError:
    """Return a StorageError (one line, redacted, transient or not) for a driver's error."""
    if isinstance(exc, StorageError):
        return exc
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = message.lower()
    transient = not any(m in lowered for m in PERMANENT_MARKERS) and (
        type(exc).__name__ in TRANSIENT_ERRORS or any(m in lowered for m in TRANSIENT_MARKERS)
    )
    sqlstate = getattr(exc, "sqlstate", None)
    return StorageError(f"{display}: {redact(message)}", transient=transient, sqlstate=sqlstate)
