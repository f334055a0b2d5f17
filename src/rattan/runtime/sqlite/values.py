"""Large values stored once in SQLite (schema migration 7): the ``value_pieces`` table holds each
spilled value by the hash of its bytes, ``value_refs`` which runs use it (``rattan.model.spill``
says what is spilled and why)."""

from __future__ import annotations

import sqlite3
from typing import Any

from rattan.errors import BackendUnavailableError
from rattan.model.spill import SPILL_BYTES, load, spill


class ValueTable:
    """Needs ``c`` (the connection), set by the class it is mixed into."""

    __slots__ = ()
    c: sqlite3.Connection

    def _root_of(self, node_id: str) -> str | None:
        row = self.c.execute("SELECT root_id FROM node_index WHERE node_id=?", (node_id,)).fetchone()
        return None if row is None else str(row[0])

    def put_value(self, blob: bytes, whole: bool, root_id: str | None = None, node_id: str = "") -> bytes:
        """The blob to write in place of ``blob``: large values moved to ``value_pieces`` (one
        length comparison for everything else)."""
        if len(blob) < SPILL_BYTES:
            return blob
        out, pieces = spill(blob, whole)
        if pieces:
            c = self.c
            c.executemany(
                "INSERT INTO value_pieces(hash, data) VALUES (?,?) ON CONFLICT(hash) DO NOTHING",
                list(pieces.items()),
            )
            root = root_id if root_id is not None else self._root_of(node_id)
            c.executemany(
                "INSERT INTO value_refs(root_id, hash) VALUES (?,?) ON CONFLICT DO NOTHING",
                [(root or "", key) for key in pieces],
            )
        return out

    def _fetch(self, key: str) -> bytes:
        row = self.c.execute("SELECT data FROM value_pieces WHERE hash=?", (key,)).fetchone()
        if row is None:  # only a store edited by hand gets here
            raise BackendUnavailableError(f"stored value {key} is missing from value_pieces")
        return bytes(row[0])

    def load_value(self, blob: bytes) -> Any:
        return load(blob, self._fetch)

    def drop_values(self, root_id: str) -> None:
        """Forget a deleted run's references; delete the pieces no other run refers to."""
        c = self.c
        keys = [r[0] for r in c.execute("SELECT hash FROM value_refs WHERE root_id=?", (root_id,))]
        if not keys:
            return
        c.execute("DELETE FROM value_refs WHERE root_id=?", (root_id,))
        c.executemany(
            "DELETE FROM value_pieces WHERE hash=? AND NOT EXISTS (SELECT 1 FROM value_refs WHERE hash=?)",
            [(k, k) for k in keys],
        )
