"""SQLite's errors as rattan's: the seam promises ConflictError for a broken constraint and
BackendUnavailableError for everything else the driver raises (busy, full, I/O, closed)."""

from __future__ import annotations

import sqlite3

from rattan.errors import BackendUnavailableError, ConflictError, RattanError


def translate(exc: sqlite3.Error, doing: str = "store error") -> RattanError:
    if isinstance(exc, sqlite3.IntegrityError):
        return ConflictError(f"{doing}: {exc}; re-read and retry")
    return BackendUnavailableError(f"{doing}: {exc}")
