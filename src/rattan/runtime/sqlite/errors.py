"""SQLite's errors as rattan's, at the backend's boundary: a broken constraint is a ConflictError
(another writer got there first: re-read and retry), a value SQLite cannot hold is a
BadInputError (retrying does not help), and everything else the driver raises (busy, full, I/O,
closed) is a BackendUnavailableError (retry later)."""

from __future__ import annotations

import sqlite3

from rattan.errors import BackendUnavailableError, BadInputError, ConflictError, RattanError


def translate(exc: sqlite3.Error, doing: str = "store error") -> RattanError:
    if isinstance(exc, sqlite3.IntegrityError):
        return ConflictError(f"{doing}: {exc}; re-read and retry")
    if isinstance(exc, sqlite3.DataError):
        return BadInputError(f"{doing}: {exc}: the value is too large or malformed for the store")
    return BackendUnavailableError(f"{doing}: {exc}; retry later")
