"""Dispatcher messages: what one engine process asks a worker (of any process) to do.

A message names work by ids and small values only, so it can cross a broker as JSON
(``encode`` / ``decode``). It is a hint, never the truth: every piece of work it names is also a
row in the store (a ready token, a due poll, a pending callback, a timer), every handler checks
that row before it acts, and a message that is late, duplicated or redelivered finds the row
changed and does nothing.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, ClassVar

from rattan.errors import BadInputError


@dataclass(frozen=True, slots=True)
class Advance:
    """Move a ready token on from its current node."""

    kind: ClassVar[str] = "advance"
    token_id: int


@dataclass(frozen=True, slots=True)
class Execute:
    """Run the ``execute`` of the activity a token entered (node ``node_id`` at ``version``)."""

    kind: ClassVar[str] = "execute"
    token_id: int
    node_id: str
    version: str
    # the engine that owned the token when it sent this ('' for none known): across processes the
    # handler claims the token from it, and drops the message if another engine took it over
    owner: str = ""


@dataclass(frozen=True, slots=True)
class Poll:
    """Run one poll of a schedule."""

    kind: ClassVar[str] = "poll"
    schedule_id: int


@dataclass(frozen=True, slots=True)
class Callback:
    """Apply a stored callback (the schedule's callbacks are applied one at a time, in order)."""

    kind: ClassVar[str] = "callback"
    callback_id: int


@dataclass(frozen=True, slots=True)
class FireTimer:
    """Fire a durable timer."""

    kind: ClassVar[str] = "timer"
    timer_id: int


@dataclass(frozen=True, slots=True)
class Recover:
    """A token whose owner died while its activity's ``execute`` ran: decide as crash recovery
    does (re-execute an idempotent service, fail any other for an operator)."""

    kind: ClassVar[str] = "recover"
    token_id: int
    owner: str = ""  # the engine that claimed the token (see Execute.owner)


@dataclass(frozen=True, slots=True)
class Task:
    """Run a named task registered with the engine (a rollback walk, a timer event's action,
    a custom timeout handler) with JSON arguments."""

    kind: ClassVar[str] = "task"
    name: str
    args: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:  # args is a dict: hash by name, equality stays field-wise
        return hash((self.kind, self.name))


Message = Advance | Execute | Poll | Callback | FireTimer | Recover | Task

_KINDS: dict[str, type[Message]] = {
    cls.kind: cls for cls in (Advance, Execute, Poll, Callback, FireTimer, Recover, Task)
}
# the JSON type of each field, from the annotations: int, str or dict
_FIELDS: dict[type[Message], dict[str, type]] = {
    cls: {f.name: {"int": int, "str": str}.get(str(f.type), dict) for f in fields(cls)}
    for cls in _KINDS.values()
}
# fields a sender of an earlier interface version may leave out (they have defaults)
_OPTIONAL: dict[type[Message], set[str]] = {
    cls: {f.name for f in fields(cls) if f.default is not MISSING or f.default_factory is not MISSING}
    for cls in _KINDS.values()
}


def encode(msg: Message) -> dict[str, Any]:
    """A JSON-able dict: ``{"kind": ..., <fields>}``."""
    return {"kind": msg.kind, **asdict(msg)}


def decode(data: Any) -> Message:
    """The message ``encode`` made; a malformed one raises BadInputError naming what is wrong."""
    if not isinstance(data, dict):
        raise BadInputError(f"a dispatcher message must be a dict, not {type(data).__name__}")
    kind = data.get("kind")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise BadInputError(f"unknown dispatcher message kind {kind!r}: one of {sorted(_KINDS)}")
    expected = _FIELDS[cls]
    given = {k: v for k, v in data.items() if k != "kind"}
    if not set(expected) - _OPTIONAL[cls] <= set(given) <= set(expected):
        raise BadInputError(
            f"dispatcher message {kind!r} needs fields {sorted(expected)}, got {sorted(given)}"
        )
    for name, want in expected.items():
        if name not in given:
            continue
        value = given[name]
        # bool is an int to Python, never an id here
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            got = type(value).__name__
            raise BadInputError(
                f"dispatcher message {kind!r}: field {name} must be {want.__name__}, not {got}"
            )
    return cls(**given)
