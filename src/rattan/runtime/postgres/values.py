"""Large values stored once in PostgreSQL (schema migration 3): ``value_pieces`` holds each spilled
value by the hash of its bytes, ``value_refs`` which runs use it (``rattan.model.spill`` says what
is spilled and why).

Writers of one piece and the deletion of a run that held the last reference to it may run at
once. A writer locks the piece row it relies on (``ON CONFLICT ... DO UPDATE ... WHERE false``
locks an existing row without writing it) until it commits; ``drop_values`` locks the pieces
before it looks for references left, in a statement of its own, so it sees the reference of any
writer it waited for and keeps that piece.
"""

from __future__ import annotations

from rattan.errors import BackendUnavailableError
from rattan.runtime.postgres.rows import Connected
from rattan.runtime.values import SpillingValues

_PUT_PIECES = (
    "INSERT INTO value_pieces(hash, data) SELECT * FROM unnest(%s::text[], %s::bytea[]) "
    "ON CONFLICT (hash) DO UPDATE SET data = excluded.data WHERE false"
)
_PUT_REFS = (
    "INSERT INTO value_refs(root_id, hash) SELECT %s, h FROM unnest(%s::text[]) AS h ON CONFLICT DO NOTHING"
)


class ValueTable(SpillingValues, Connected):
    """Needs ``c`` (the connection), set by the class it is mixed into."""

    __slots__ = ()

    def _root_of(self, node_id: str) -> str | None:
        row = self.c.execute("SELECT root_id FROM node_index WHERE node_id=%s", (node_id,)).fetchone()
        return None if row is None else str(row[0])

    def _store_pieces(self, root_id: str, pieces: dict[str, bytes]) -> None:
        keys = sorted(pieces)  # one order for every writer: no deadlock between two of them
        self.c.execute(_PUT_PIECES, (keys, [pieces[k] for k in keys]))
        self.c.execute(_PUT_REFS, (root_id, keys))

    def _fetch(self, key: str) -> bytes:
        row = self.c.execute("SELECT data FROM value_pieces WHERE hash=%s", (key,)).fetchone()
        if row is None:  # only a store edited by hand gets here
            raise BackendUnavailableError(f"stored value {key} is missing from value_pieces")
        return bytes(row[0])

    def drop_values(self, root_id: str) -> None:
        """Forget a deleted run's references; delete the pieces no other run refers to."""
        c = self.c
        keys = [r[0] for r in c.execute("DELETE FROM value_refs WHERE root_id=%s RETURNING hash", (root_id,))]
        if not keys:
            return
        keys.sort()
        c.execute("SELECT hash FROM value_pieces WHERE hash = ANY(%s) ORDER BY hash FOR UPDATE", (keys,))
        c.execute(
            "DELETE FROM value_pieces p WHERE hash = ANY(%s) "
            "AND NOT EXISTS (SELECT 1 FROM value_refs r WHERE r.hash = p.hash)",
            (keys,),
        )
