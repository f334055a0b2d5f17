"""Tagged JSON for the values plain JSON would change: the slow path of ``rattan.model.codec``.

bamboo-engine pickles what components output, so its components get a ``datetime`` back as
a ``datetime``. rattan never unpickles stored data (a stored blob must not be able to run code), so
the types worth keeping are written as a one-key object ``{"__rattan__": [kind, data]}`` and
rebuilt on read. The table of what is kept, converted or refused is in docs/components.md ("What
outputs can hold"); ``KINDS`` below is its code.

A blob holding a tag starts with one space (JSON allows it), so a read checks one byte to know
whether the walk that rebuilds tags is needed at all: most blobs never pay for it.
"""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from rattan.errors import UnstorableValueError

TAG = "__rattan__"
MARK = b" "  # first byte of a blob holding tags
INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # what orjson writes and reads as a JSON integer
MAX_DEPTH = 200  # below orjson's own limit (254), so the refusal names the path


def _datetime(v: datetime) -> Any:
    if isinstance(v.tzinfo, ZoneInfo):  # the wall time, zone and fold: exact even in a DST gap
        return ["datetime", [v.replace(tzinfo=None).isoformat(), v.tzinfo.key, v.fold]]
    return ["datetime", v.isoformat()]


def _tagged(kind: str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: [kind, fn(v)]


# exact type -> how it is written (subclasses are looked up by isinstance in _other)
_WRITERS: dict[type, Callable[[Any], Any]] = {
    datetime: _datetime,
    date: _tagged("date", date.isoformat),
    time: _tagged("time", time.isoformat),
    timedelta: _tagged("timedelta", lambda v: [v.days, v.seconds, v.microseconds]),
    uuid.UUID: _tagged("uuid", str),
    Decimal: _tagged("decimal", str),
    bytes: _tagged("bytes", lambda v: base64.b64encode(v).decode("ascii")),
}


@dataclass(frozen=True, slots=True)
class Ref:
    """A value a store keeps elsewhere (``rattan.model.spill``), not fetched yet: only the stores
    ever see one, and they fetch it before handing the value on."""

    hash: str


def _read_datetime(data: Any) -> datetime:
    if isinstance(data, list):
        return datetime.fromisoformat(data[0]).replace(tzinfo=ZoneInfo(data[1]), fold=data[2])
    return datetime.fromisoformat(data)


def _read_timedelta(data: Any) -> timedelta:
    return timedelta(days=data[0], seconds=data[1], microseconds=data[2])


_READERS: dict[str, Callable[[Any], Any]] = {
    "datetime": _read_datetime,
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "timedelta": _read_timedelta,
    "uuid": uuid.UUID,
    "decimal": Decimal,
    "bytes": base64.b64decode,
    "int": int,
    "ref": Ref,
    "float": float,
    "set": lambda data: {_key(x) for x in map(revive, data)},
    "frozenset": lambda data: frozenset(_key(x) for x in map(revive, data)),
    "dict": lambda data: {_key(revive(k)): revive(v) for k, v in data},
}
KINDS = tuple(_READERS)


def _key(value: Any) -> Any:
    """A revived dict key or set member: a tuple came back as a list, which cannot be hashed."""
    return tuple(_key(x) for x in value) if isinstance(value, list) else value


def encode(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON types with tags; UnstorableValueError names what cannot be kept."""
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is int:
        return value if INT_MIN <= value <= INT_MAX else {TAG: ["int", str(value)]}
    if t is float:
        return value if math.isfinite(value) else {TAG: ["float", repr(value)]}
    if depth >= MAX_DEPTH:
        raise UnstorableValueError("", f"values nested deeper than {MAX_DEPTH} levels")
    if t is dict:
        return _dict(value, depth + 1)
    if t is list or t is tuple:  # a tuple is stored as a list, as plain JSON does (docs/components.md)
        return _items(value, depth + 1)
    writer = _WRITERS.get(t)
    if writer is not None:
        return {TAG: writer(value)}
    if t is set or t is frozenset:
        return {TAG: ["set" if t is set else "frozenset", _items(value, depth + 1)]}
    return _other(value, depth)


def _other(value: Any, depth: int) -> Any:
    """Subclasses and enums, written as their base type as orjson writes them; the rest refused."""
    if isinstance(value, Enum):
        return encode(value.value, depth)
    bases: tuple[Any, ...] = (str, int, float, dict, list, tuple)
    for base in bases:
        if isinstance(value, base):
            return encode(base(value), depth)
    for kind_of, writer in _WRITERS.items():
        if isinstance(value, kind_of):
            return {TAG: writer(value)}
    kind = type(value)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    raise UnstorableValueError("", f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name} value")


def _items(values: Any, depth: int) -> list[Any]:
    out = []
    for index, item in enumerate(values):
        try:
            out.append(encode(item, depth))
        except UnstorableValueError as exc:
            raise exc.inside(f"[{index}]") from None
    return out


def _dict(value: dict[Any, Any], depth: int) -> Any:
    if TAG not in value and all(type(k) is str for k in value):
        out = {}
        for k, item in value.items():
            try:
                out[k] = encode(item, depth)
            except UnstorableValueError as exc:
                raise exc.inside(f"[{k!r}]") from None
        return out
    # keys JSON cannot hold as they are (or the tag key itself): a list of [key, value] pairs
    pairs = []
    for k, item in value.items():
        try:
            pairs.append([encode(k, depth), encode(item, depth)])
        except UnstorableValueError as exc:
            raise exc.inside(f"[{k!r}]") from None
    return {TAG: ["dict", pairs]}


def revive(value: Any) -> Any:
    """The value ``encode`` was given, from what it wrote (after a JSON round trip)."""
    t = type(value)
    if t is list:
        return [revive(x) for x in value]
    if t is not dict:
        return value
    if len(value) == 1 and TAG in value:
        kind, data = value[TAG]
        return _READERS[kind](data)
    return {k: revive(v) for k, v in value.items()}


def has_nonfinite(value: Any) -> bool:
    """True when a float NaN or infinity is somewhere in ``value`` (plain JSON writes them as
    null, which would read back as None). Written as loops: it runs on every value with a null."""
    t = type(value)
    if t is dict:
        items: Any = value.values()
    elif t is list or t is tuple:
        items = value
    elif isinstance(value, float):
        return not math.isfinite(value)
    elif isinstance(value, dict):
        items = value.values()
    elif isinstance(value, list | tuple):
        items = value
    else:
        return False
    for item in items:
        k = type(item)
        if k is str or k is int or k is bool or item is None:
            continue
        if k is float:
            if not math.isfinite(item):
                return True
        elif has_nonfinite(item):
            return True
    return False
