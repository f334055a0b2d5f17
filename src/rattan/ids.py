"""Id generation: one lowercase prefix letter plus 32 hex digits, as the peer does."""

from __future__ import annotations

import uuid

MAX_ID_LENGTH = 33


def unique_id(prefix: str) -> str:
    """Return ``prefix`` followed by a random uuid4 in hex (33 characters for a one-letter prefix)."""
    if len(prefix) != 1:
        raise ValueError(f"id prefix must be one character, got {prefix!r}")
    return prefix + uuid.uuid4().hex
