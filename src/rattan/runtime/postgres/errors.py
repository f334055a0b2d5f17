"""psycopg's errors as rattan's, at the backend's boundary.

A broken integrity rule (a duplicate key), a serialization failure or a deadlock is a ConflictError (another
writer got there first: re-read and retry); a value PostgreSQL cannot hold is a BadInputError;
everything else (the server unreachable, a dropped connection, a full pool) is a
BackendUnavailableError (retry later). Messages name the store by its URL without the password.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import psycopg

from rattan.errors import BackendUnavailableError, BadInputError, ConflictError, IdInUseError, RattanError


def redact(url: str) -> str:
    """``url`` without its password (the only secret a store URL holds)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable store URL>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def translate(exc: Exception, url: str, doing: str = "store error") -> RattanError:
    # by SQLSTATE class: psycopg's exception classes do not nest as the classes of codes do
    # (SerializationFailure is not a TransactionRollback subclass)
    state = getattr(exc, "sqlstate", None) or ""
    used = _id_in_use(exc)
    if used is not None:
        return used
    if state.startswith(("23", "40")):
        # 23: a broken integrity rule (a duplicate key); 40: a serialization failure or deadlock
        return ConflictError(f"{doing}: {exc}; re-read and retry")
    if state.startswith("22") or isinstance(exc, psycopg.DataError):
        return BadInputError(f"{doing}: {exc}: the value is too large or malformed for the store")
    return BackendUnavailableError(f"{doing} on {redact(url)}: {exc}; retry later")


# a new run's ids clash with another run's: which key says which id
_KEY = re.compile(r"\(([^)]*)\)=\((.*)\) already exists")


def _id_in_use(exc: Exception) -> IdInUseError | None:
    """The primary key of ``runs`` or ``node_index`` broken by a new run (``create_run``)."""
    diag = getattr(exc, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    if constraint not in ("runs_pkey", "node_index_pkey"):
        return None
    found = _KEY.search(getattr(diag, "message_detail", None) or "")
    key = found.group(2) if found else "?"
    if constraint == "runs_pkey":
        return IdInUseError(f"pipeline id {key} is already used by another run; build a new tree")
    return IdInUseError(f"node ids already used by another run: {key}; build a new tree")
