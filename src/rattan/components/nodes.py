"""``FlowNodeClsFactory``, as bamboo-pipeline's ``pipeline.core.flow.FlowNodeClsFactory``: registers a node
class under a node type key given at the call, so an end event class needs no ``code`` attribute.

rattan runs registered node classes only as executable end events: ``register_node(key, cls)``
registers ``cls`` (an ``ExecutableEndEvent`` subclass) as the end event of type ``key``, which makes
``key`` a sink node type of every engine using that registry. The built-in node types have no class
in rattan (the engine handles them itself), so ``get_node_cls`` knows only registered end events.
"""

from __future__ import annotations

from typing import Any

from rattan.components.end_event import ExecutableEndEvent
from rattan.components.registry import Registry, _collecting, registry
from rattan.errors import BadInputError, ComponentConflictError
from rattan.spec.model import NodeType

__all__ = ["FlowNodeClsFactory", "NodeTypeConflictError"]

#: The node types a tree names without any registration (ExecutableEndEvent is a family, not a key).
BUILTIN_NODE_TYPES = frozenset(t.value for t in NodeType if t != NodeType.ExecutableEndEvent)


class NodeTypeConflictError(ComponentConflictError, KeyError):
    """The key is a built-in node type or holds another class. Also a ``KeyError``: bamboo raises
    one, and code written for it catches that."""

    def __str__(self) -> str:
        # KeyError shows the repr of its argument; the message reads better as it is
        return str(self.args[0]) if self.args else ""


def _target(node_cls: type) -> Registry:
    """Where class-creation registration would put ``node_cls``: the registry its class statement
    named, else the one being collected into (``collecting_into``, ``component_modules``), else the
    default one."""
    named: Registry | None = node_cls.__dict__.get("_rattan_registry")
    return named or _collecting.get() or registry


class FlowNodeClsFactory:
    """Node classes by node type key (as in bamboo; see the module docstring)."""

    @classmethod
    def register_node(cls, key: str, node_cls: type[Any]) -> None:
        """Register the end event class ``node_cls`` under the node type ``key``.

        Registering the same class again under its key changes nothing (a module imported twice).

        Raises:
            BadInputError: ``key`` is not a non-empty string, or ``node_cls`` is not an
                ``ExecutableEndEvent`` subclass.
            NodeTypeConflictError: ``key`` is a built-in node type or holds another class.
        """
        if not isinstance(key, str) or not key:
            raise BadInputError(f"node type key must be a non-empty string, got {key!r}")
        if key in BUILTIN_NODE_TYPES:
            raise NodeTypeConflictError(f"node with key({key}) is already exist: a built-in node type")
        if not (isinstance(node_cls, type) and issubclass(node_cls, ExecutableEndEvent)):
            raise BadInputError(
                f"{node_cls!r} is not an ExecutableEndEvent subclass: rattan registers node classes "
                "only as executable end events"
            )
        try:
            _target(node_cls).register_end_event(key, node_cls)
        except ComponentConflictError as exc:
            raise NodeTypeConflictError(f"node with key({key}) is already exist: {exc}") from exc

    @classmethod
    def get_node_cls(cls, key: str) -> type[ExecutableEndEvent] | None:
        """The end event class registered under ``key`` in the current registry, or None."""
        target = _collecting.get() or registry
        return target.get_end_event(key) if target.has_end_event(key) else None
