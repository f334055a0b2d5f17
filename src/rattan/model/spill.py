"""Large values stored once: the dialect-free half of every store's value table.

One 10 MB output used to be written four times: the node's outputs, the context variable it
feeds, the inputs of each node that reads it and each archived pass. A store passes every value
blob through ``spill`` before writing it: a value of at least ``SPILL_BYTES`` (an output key's
value, a context value, a callback's data) moves into the store's table of pieces, keyed by the
SHA-256 of its encoded bytes, and the blob keeps ``{"__rattan__": ["ref", hash]}`` in its place.
The same value written anywhere else has the same bytes, so the same hash: it is stored once.
``load`` reads a blob back, fetching the pieces it refers to.

Only top-level values are spilled (a blob's whole value, or each value of a blob that is a dict),
so references are never nested and the blobs of plain small values are untouched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from rattan.model.codec import loads
from rattan.model.exact import MARK, TAG, Ref

SPILL_BYTES = 64 * 1024
_TAG_TEXT = f'"{TAG}"'.encode()


def _ref(piece: bytes, pieces: dict[str, bytes]) -> dict[str, Any]:
    key = hashlib.sha256(piece).hexdigest()
    pieces[key] = piece
    return {TAG: ["ref", key]}


def spill(blob: bytes, whole: bool) -> tuple[bytes, dict[str, bytes]]:
    """``blob`` with its large values replaced by references, and the pieces by hash. ``whole``:
    the blob is one value (a context value, callback data); else a dict of values (inputs or
    outputs), each spilled on its own."""
    if len(blob) < SPILL_BYTES:
        return blob, {}
    pieces: dict[str, bytes] = {}
    if whole:
        return MARK + orjson.dumps(_ref(blob, pieces)), pieces
    raw = orjson.loads(blob)
    if type(raw) is not dict or (len(raw) == 1 and TAG in raw):
        return blob, {}
    marked = blob[:1] == MARK
    for key, value in raw.items():
        piece = orjson.dumps(value)
        if len(piece) >= SPILL_BYTES:
            # a piece is marked as ``dumps`` would have marked the value alone: if it holds a tag
            if marked and piece.find(_TAG_TEXT) >= 0:
                piece = MARK + piece
            raw[key] = _ref(piece, pieces)
    if not pieces:
        return blob, {}
    return MARK + orjson.dumps(raw), pieces


def load(blob: bytes, fetch: Callable[[str], bytes]) -> Any:
    """The value ``blob`` was written from; ``fetch(hash)`` gives a piece's bytes."""
    value = loads(blob)
    if blob[:1] != MARK:  # only marked blobs can hold references
        return value
    if type(value) is Ref:
        return loads(fetch(value.hash))
    if type(value) is dict:
        for key, item in value.items():
            if type(item) is Ref:
                value[key] = loads(fetch(item.hash))
    return value
