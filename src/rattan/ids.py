"""Id generation: one lowercase prefix letter plus 32 hex digits, as the peer does."""

from __future__ import annotations

import os

MAX_ID_LENGTH = 33


def unique_id(prefix: str) -> str:
    """Return ``prefix`` followed by 32 random hex digits (33 characters), as ``uuid4().hex`` gives.

    128 random bits from the OS, without building a UUID object: ids are made for every node pass.
    """
    if len(prefix) != 1:
        raise ValueError(f"id prefix must be one character, got {prefix!r}")
    return prefix + os.urandom(16).hex()
