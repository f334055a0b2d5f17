"""Large values stored once in SQLite (schema migration 7): the ``value_pieces`` table holds each
spilled value by the hash of its bytes, ``value_refs`` which runs use it (``rattan.model.spill``
says what is spilled and why)."""

from __future__ import annotations

import sqlite3

from rattan.errors import BackendUnavailableError
from rattan.runtime.values import SpillingValues


class ValueTable(SpillingValues):
    """Needs ``c`` (the connection), set by the class it is mixed into."""

    __slots__ = ()
    c: sqlite3.Connection

    def _root_of(self, node_id: str) -> str | None:
        row = self.c.execute("SELECT root_id FROM node_index WHERE node_id=?", (node_id,)).fetchone()
        return None if row is None else str(row[0])

    def _store_pieces(self, root_id: str, pieces: dict[str, bytes]) -> None:
        c = self.c
        c.executemany(
            "INSERT INTO value_pieces(hash, data) VALUES (?,?) ON CONFLICT(hash) DO NOTHING",
            list(pieces.items()),
        )
        c.executemany(
            "INSERT INTO value_refs(root_id, hash) VALUES (?,?) ON CONFLICT DO NOTHING",
            [(root_id, key) for key in pieces],
        )

    def _fetch(self, key: str) -> bytes:
        row = self.c.execute("SELECT data FROM value_pieces WHERE hash=?", (key,)).fetchone()
        if row is None:  # only a store edited by hand gets here
            raise BackendUnavailableError(f"stored value {key} is missing from value_pieces")
        return bytes(row[0])

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
