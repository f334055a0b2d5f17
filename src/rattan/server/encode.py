"""Turning what the engine returns into JSON text.

Reads hand back the exact values a run stored (docs/components.md, "What outputs can hold"):
datetimes, UUIDs, Decimals, bytes, sets, non-str dict keys, NaN... ``json.dumps`` refuses most of
them, and a refusal in a response would be a 500 for a perfectly good run. So every value is
walked once and given a JSON form; anything unknown falls back to ``str`` rather than failing.
"""

from __future__ import annotations

import base64
import enum
import json
import math
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

_MAX_DEPTH = 400  # deeper than the store accepts (200): a guard, never hit by stored values


def to_json(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of ``value``: datetimes, dates and times as ISO 8601 text, timedeltas as
    seconds, UUIDs and Decimals as text (exact), bytes as base64, sets as lists (sorted when
    their members compare), NaN and infinities as ``"nan"``/``"inf"``/``"-inf"``, dict keys as
    text."""
    if depth > _MAX_DEPTH:
        return "..."
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, enum.Enum):
        return to_json(value.value, depth + 1)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        # JSON has no NaN or infinity; the store itself writes these spellings
        return repr(value) if math.isinf(value) or math.isnan(value) else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {_key(k): to_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        members = [to_json(m, depth + 1) for m in value]
        try:
            return sorted(members)
        except TypeError:  # mixed kinds: keep them, in a stable order
            return sorted(members, key=lambda m: json.dumps(m, sort_keys=True))
    if isinstance(value, list | tuple):
        return [to_json(v, depth + 1) for v in value]
    return str(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    converted = to_json(key)
    return converted if isinstance(converted, str) else json.dumps(converted)


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON (after ``to_json``)."""
    return json.dumps(to_json(value), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
