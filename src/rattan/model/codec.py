"""JSON for stored values: orjson, strict about what it serialises (a non-JSON value raises
instead of being stored as something else)."""

from __future__ import annotations

from typing import Any

import orjson

JSON_OPTS = orjson.OPT_NON_STR_KEYS
JSONError = (TypeError, orjson.JSONEncodeError)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=JSON_OPTS)


loads = orjson.loads
