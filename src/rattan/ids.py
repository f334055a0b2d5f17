"""Id generation: one lowercase prefix letter plus 32 hex digits, as bamboo does."""

from __future__ import annotations

import random

MAX_ID_LENGTH = 33


def unique_id(prefix: str) -> str:
    """Return ``prefix`` followed by 32 random hex digits (33 characters), like ``uuid4().hex``.

    Ids are made for every node pass, so they come from ``random.getrandbits`` (the module's
    generator is seeded from the OS and reseeded in forked children) instead of a syscall each.
    Ids only need to be unique, not unpredictable.
    """
    if len(prefix) != 1:
        raise ValueError(f"id prefix must be one character, got {prefix!r}")
    return f"{prefix}{random.getrandbits(128):032x}"
