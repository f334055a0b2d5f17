"""Variables and context declarations for built pipelines."""

from __future__ import annotations

from typing import Any

from rattan.builder.utils import FancyDict

__all__ = [
    "Data",
    "DataInput",
    "InitializedRewritableNodeOutput",
    "NodeOutput",
    "Params",
    "RewritableNodeOutput",
    "Var",
    "serialize_item",
]


class Var:
    """An input item: a node input, a subprocess param or a context declaration.

    Args:
        type: ``Var.PLAIN``, ``Var.SPLICE`` or ``Var.LAZY``.
        value: any JSON value.
        custom_type: the lazy variable code, for ``Var.LAZY``.
    """

    PLAIN = "plain"
    SPLICE = "splice"
    LAZY = "lazy"

    def __init__(self, type: str, value: Any, custom_type: str | None = None):
        self.type = type
        self.value = value
        self.custom_type = custom_type

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"type", "value"}``, plus ``"custom_type"`` for lazy variables."""
        base: dict[str, Any] = {"type": self.type, "value": self.value}
        if self.type == self.LAZY:
            base["custom_type"] = self.custom_type
        return base

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.to_dict()!r}>"


class DataInput(Var):
    """A context declaration exposed as a subprocess parameter (``is_param``)."""

    def to_dict(self) -> dict[str, Any]:
        """Return the ``Var`` dict plus ``"is_param": True``."""
        base = super().to_dict()
        base["is_param"] = True
        return base


class NodeOutput(Var):
    """A context key filled from the output ``source_key`` of node ``source_act``.

    Args:
        source_act: the id of the node whose output is copied.
        source_key: the output key copied.
        type: the variable type (``Var.PLAIN`` by default).
        value: ignored; the declared value is always ``None``.
    """

    def __init__(self, source_act: str, source_key: str, type: str = Var.PLAIN, value: Any = None):
        self.source_act = source_act
        self.source_key = source_key
        super().__init__(type=type, value=None)

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"type", "value": None, "source_act", "source_key"}``."""
        base = super().to_dict()
        base["source_act"] = self.source_act
        base["source_key"] = self.source_key
        return base


class RewritableNodeOutput(Var):
    """A context key overwritten by each listed node output when that node runs.

    Args:
        source_act: list of ``{"source_act": node_id, "source_key": key}`` dicts.
        type: the variable type.
        value: ignored; the declared value is always ``None``.
    """

    def __init__(self, source_act: list[dict[str, str]], type: str, value: Any = None):
        self.source_act = source_act
        super().__init__(type=type, value=None)

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"type", "value": None, "source_act": [...]}``."""
        base = super().to_dict()
        base["source_act"] = self.source_act
        return base


class InitializedRewritableNodeOutput(Var):
    """A rewritable node output that holds ``value`` until a listed node overwrites it.

    Args:
        source_act: list of ``{"source_act": node_id, "source_key": key}`` dicts.
        type: the variable type.
        value: the initial value.
    """

    def __init__(self, source_act: list[dict[str, str]], type: str, value: Any):
        self.source_act = source_act
        super().__init__(type=type, value=value)

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"type", "value", "source_act": [...], "need_initialization": True}``."""
        base = super().to_dict()
        base["source_act"] = self.source_act
        base["need_initialization"] = True
        return base


def serialize_item(value: Any) -> Any:
    """Return ``value.to_dict()`` for a ``Var``, else ``value`` unchanged (raw input item dicts)."""
    return value.to_dict() if isinstance(value, Var) else value


class Data:
    """A pipeline's context declaration.

    Args:
        inputs: dict context key -> ``Var`` (or raw input item dict); stored as an attribute dict.
        outputs: context keys the pipeline exports.
        pre_render_keys: context keys rendered once at start.
    """

    def __init__(
        self,
        inputs: dict[str, Any] | None = None,
        outputs: list[str] | None = None,
        pre_render_keys: list[str] | None = None,
    ):
        self.inputs = FancyDict(inputs or {})
        self.outputs: list[str] = outputs or []
        self.pre_render_keys: list[str] = pre_render_keys or []

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"inputs": {key: item}, "outputs": [...], "pre_render_keys": [...]}``."""
        return {
            "inputs": {key: serialize_item(value) for key, value in list(self.inputs.items())},
            "outputs": list(self.outputs),
            "pre_render_keys": list(self.pre_render_keys),
        }


class Params:
    """Subprocess parameters: dict context key (``${name}``) -> ``Var`` (or raw input item dict).

    Args:
        params: the parameters.
    """

    def __init__(self, params: dict[str, Any] | None = None):
        self.params = FancyDict(params or {})

    def to_dict(self) -> dict[str, Any]:
        """Return ``{key: item}`` with ``Var`` values serialised and raw dicts passed through."""
        return {key: serialize_item(value) for key, value in list(self.params.items())}
