"""Stored values: JSON written by orjson, exact for the types components use.

``dumps`` tries plain JSON first (orjson, in C): most values are plain and pay only for two byte
searches. A value plain JSON would change or refuse (a datetime, UUID, Decimal, bytes, set,
NaN/infinity, an integer beyond 64 bits, a non-string key) takes the tagged path in
``rattan.model.exact``; one nothing can keep raises ``UnstorableValueError`` naming where it is.
``loads`` gives back the same values and types (docs/components.md, "What outputs can hold").
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from rattan.errors import UnstorableValueError
from rattan.model.exact import MARK, encode, has_nonfinite, revive

# datetimes and dataclasses go to ``_refuse`` instead of orjson's own text/dict, which would come
# back as a str/dict: the tagged path keeps datetimes and names a dataclass as not storable
_PLAIN = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# orjson writes a uuid.UUID as this text; so may a plain string, and the tagged path tells them apart
_UUID_TEXT = re.compile(rb'"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"')
JSONError = (TypeError, orjson.JSONEncodeError)  # UnstorableValueError is a TypeError too


def _refuse(value: Any) -> Any:
    raise TypeError  # anything orjson does not write natively takes the tagged path


_dumps = orjson.dumps
_SCALARS = (str, int, bool, type(None))


def dumps(value: Any) -> bytes:
    """``value`` as stored bytes; UnstorableValueError when it holds something that cannot be kept."""
    try:
        out = _dumps(value, default=_refuse, option=_PLAIN)
    except orjson.JSONEncodeError:  # a type, key or integer plain JSON cannot hold
        return _exact(value)
    if type(value) in _SCALARS:  # nothing inside it can have been written as something else
        return out
    # orjson writes NaN/inf as null and a uuid.UUID as its text. (A user's own "__rattan__" key
    # needs no check here: an unmarked blob is never revived, so it reads back as it was.)
    if b"null" in out and has_nonfinite(value):
        return _exact(value)
    if b"-" in out and _UUID_TEXT.search(out) is not None:
        return _exact(value)
    return out


def _exact(value: Any) -> bytes:
    try:
        return MARK + orjson.dumps(encode(value))
    except UnstorableValueError:
        raise
    except (orjson.JSONEncodeError, RecursionError) as exc:
        raise UnstorableValueError("", f"what the JSON encoder refused ({exc})") from None


_loads = orjson.loads


def loads(blob: bytes) -> Any:
    """The value ``dumps`` was given. ``blob`` is bytes, as every store returns it."""
    value = _loads(blob)
    if blob[:1] == MARK:  # only dumps' tagged path writes a leading space
        return revive(value)
    return value


# engine-made values (token stacks of ids): plain JSON, no checks; never for user data
plain_dumps = orjson.dumps
plain_loads = orjson.loads

__all__ = ["JSONError", "UnstorableValueError", "dumps", "loads", "plain_dumps", "plain_loads"]
