"""Shared pieces of the validator: node type tables, the sink registry and the problem collector."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rattan.errors import BadInputError, Problem

START_EVENT = "EmptyStartEvent"
END_EVENT = "EmptyEndEvent"
SERVICE_ACTIVITY = "ServiceActivity"
SUBPROCESS = "SubProcess"
PARALLEL = "ParallelGateway"
EXCLUSIVE = "ExclusiveGateway"
CONDITIONAL_PARALLEL = "ConditionalParallelGateway"
CONVERGE = "ConvergeGateway"

ACTIVITY_TYPES = frozenset({SERVICE_ACTIVITY, SUBPROCESS})
GATEWAY_TYPES = frozenset({PARALLEL, EXCLUSIVE, CONDITIONAL_PARALLEL, CONVERGE})
PARALLEL_TYPES = frozenset({PARALLEL, CONDITIONAL_PARALLEL})
CONDITIONAL_TYPES = frozenset({EXCLUSIVE, CONDITIONAL_PARALLEL})
RESERVED_TYPES = frozenset({START_EVENT, *ACTIVITY_TYPES, *GATEWAY_TYPES})

MAX_IN = 1000
MAX_OUT = 1000
DEFAULT_MAX_NODES = 100_000
# Subprocess nesting levels a run may use (``Settings.max_subprocess_depth``). Every stage walks nested
# pipelines without recursion; the bound is the stored tree snapshot: orjson refuses more than 255
# nested containers and each level adds three (pipeline -> activities -> node), so 83 levels is the
# hard ceiling; 50 leaves about 100 levels of nesting for the input values of the deepest pipeline.
DEFAULT_MAX_DEPTH = 50

_GLOBAL_SINK_TYPES: set[str] = set()


def add_sink_type(node_type: str) -> None:
    """Register ``node_type`` as a valid end-event type for every later validation (as in bamboo).

    Engines should prefer the per-call ``sink_types`` argument of ``validate_and_process_pipeline``.
    """
    if not isinstance(node_type, str) or not node_type:
        raise BadInputError(f"sink type must be a non-empty string, got {node_type!r}")
    if node_type in RESERVED_TYPES:
        raise BadInputError(f"{node_type!r} is a built-in node type and cannot be registered as a sink type")
    _GLOBAL_SINK_TYPES.add(node_type)


def resolve_sink_types(sink_types: Iterable[str] | None) -> frozenset[str]:
    """The end-event types accepted by one validation: EmptyEndEvent, the global ones and ``sink_types``."""
    extra: set[str] = set()
    if sink_types is not None:
        if isinstance(sink_types, str):
            extra.add(sink_types)
        else:
            try:
                extra.update(sink_types)
            except TypeError:
                raise BadInputError(f"sink_types must be an iterable of strings, got {sink_types!r}")
        bad = [t for t in extra if not isinstance(t, str) or not t or t in RESERVED_TYPES]
        if bad:
            raise BadInputError(f"invalid sink types {bad!r}: each must be a non-empty custom type key")
    return frozenset({END_EVENT, *_GLOBAL_SINK_TYPES, *extra})


def to_list(value: Any) -> list[Any]:
    """bamboo's ``format_to_list``: a list stays, a falsy value gives ``[]``, anything else ``[value]``."""
    if isinstance(value, list):
        return value
    if not value:
        return []
    return [value]


def node_name(node: Any) -> str | None:
    if isinstance(node, dict):
        name = node.get("name")
        if isinstance(name, str):
            return name
    return None


class Problems:
    """Collects Problem records for one validation stage."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self._seen: set[tuple[str, str, str]] = set()

    def add(self, node_id: Any, rule: str, message: str, name: str | None = None) -> None:
        nid = node_id if isinstance(node_id, str) else repr(node_id)
        key = (nid, rule, message)
        if key in self._seen:
            return
        self._seen.add(key)
        self.items.append(Problem(node_id=nid, rule=rule, message=message, node_name=name))

    def extend(self, other: Problems) -> None:
        for p in other.items:
            self.add(p.node_id, p.rule, p.message, p.node_name)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def node_ids(self) -> list[str]:
        out: list[str] = []
        for p in self.items:
            if p.node_id not in out:
                out.append(p.node_id)
        return out


def short(value: Any, limit: int = 60) -> str:
    """A bounded repr for messages (trees can hold huge values)."""
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not break validation
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def nesting_depth(tree: Any) -> int:
    """How deep subprocesses nest in ``tree`` (0: none), walking without recursion; bad shapes are skipped."""
    deepest = 0
    seen: set[int] = set()
    todo: list[tuple[Any, int]] = [(tree, 0)]
    while todo:
        pipeline, depth = todo.pop()
        if not isinstance(pipeline, dict) or id(pipeline) in seen:
            continue
        seen.add(id(pipeline))
        deepest = max(deepest, depth)
        activities = pipeline.get("activities")
        for node in activities.values() if isinstance(activities, dict) else ():
            if isinstance(node, dict) and node.get("type") == "SubProcess":
                todo.append((node.get("pipeline"), depth + 1))
    return deepest
