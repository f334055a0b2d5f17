"""Large values stored once: the flow every store shares (``rattan.model.spill`` says what is
spilled and why). A store's ``ValueTable`` mixin says how its own tables hold the pieces and which
runs refer to them (``_store_pieces``, ``_fetch``, ``_root_of``); ``drop_values`` is its own too,
since deleting a piece safely against concurrent writers differs by database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rattan.model.spill import SPILL_BYTES, load, spill


class SpillingValues:
    """``put_value`` / ``load_value`` over a store's piece table."""

    __slots__ = ()
    # the store's own (annotations only: the ValueTable beside this class defines them)
    _root_of: Callable[[str], str | None]  # the run a node belongs to
    _store_pieces: Callable[[str, dict[str, bytes]], None]  # keep each piece once; the run uses it
    _fetch: Callable[[str], bytes]  # a piece's bytes

    def put_value(self, blob: bytes, whole: bool, root_id: str | None = None, node_id: str = "") -> bytes:
        """The blob to write in place of ``blob``: large values moved to the piece table (one
        length comparison for everything else). ``whole``: see ``rattan.model.spill.spill``."""
        if len(blob) < SPILL_BYTES:
            return blob
        out, pieces = spill(blob, whole)
        if pieces:
            root = root_id if root_id is not None else self._root_of(node_id)
            self._store_pieces(root or "", pieces)
        return out

    def load_value(self, blob: bytes) -> Any:
        return load(blob, self._fetch)
