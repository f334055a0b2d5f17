"""Flow elements: the nodes users chain together before calling ``build_tree``.

The classes mirror bamboo-engine's ``bamboo_engine.builder.flow``: every element has an ``id``
(``e`` + 32 hex digits by default), an optional ``name`` and an ordered ``outgoing`` list of successors.
"""

from __future__ import annotations

from typing import Any

from rattan.builder.data import Data, Params, serialize_item
from rattan.builder.utils import FancyDict
from rattan.ids import unique_id

__all__ = [
    "ConditionGateway",
    "ConditionalParallelGateway",
    "ConvergeGateway",
    "Element",
    "EmptyEndEvent",
    "EmptyStartEvent",
    "EndEvent",
    "ExclusiveGateway",
    "ExecutableEndEvent",
    "ParallelGateway",
    "ServiceActivity",
    "StartEvent",
    "SubProcess",
]


class Element:
    """Base of every node class.

    Args:
        id: the node id; defaults to ``unique_id("e")``.
        name: the display name; defaults to ``None``.
        outgoing: successor elements, in order; defaults to an empty list.
    """

    def __init__(self, id: str | None = None, name: str | None = None, outgoing: list[Element] | None = None):
        self.id: str = id or unique_id("e")
        self.name: str | None = name
        self.outgoing: list[Element] = outgoing or []

    def extend(self, element: Element) -> Element:
        """Connect ``self`` to ``element`` and return ``element`` so the chain moves on.

        Args:
            element: the successor to append.

        Returns:
            The argument.
        """
        self.outgoing.append(element)
        return element

    def connect(self, *elements: Element) -> Element:
        """Connect ``self`` to every argument, in order, and return ``self``.

        The order of the arguments is the order of a gateway's outgoing flows, so it decides which
        condition index binds to which branch.

        Args:
            *elements: the successors to append.

        Returns:
            ``self``.
        """
        for element in elements:
            self.outgoing.append(element)
        return self

    def to(self, element: Element) -> Element:
        """Return ``element`` unchanged: a readability helper to jump back to a node in a chain.

        Args:
            element: the element the chain continues from.

        Returns:
            The argument.
        """
        return element

    def converge(self, element: Element) -> Element:
        """Connect the tail of every outgoing branch of ``self`` to ``element``.

        Args:
            element: the node the branches converge on (usually a ``ConvergeGateway``).

        Returns:
            The argument.
        """
        for branch in self.outgoing:
            branch.tail().connect(element)
        return element

    def tail(self) -> Element:
        """Follow first successors until an element without successors.

        Returns:
            The last element of the chain starting at ``self`` (``self`` if it has no successor).
        """
        element: Element = self
        while element.outgoing:
            element = element.outgoing[0]
        return element

    def type(self) -> str:
        """Return the node type string written into the tree.

        Raises:
            TypeError: on ``Element`` itself, which is abstract: build with a node class.
        """
        raise TypeError(
            f"{type(self).__name__} is not a node class: use EmptyStartEvent, ServiceActivity, ..."
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Element):
            return NotImplemented
        return self.id == other.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}:{self.id}>"


class StartEvent(Element):
    """Base of start events."""


class EndEvent(Element):
    """Base of end events."""


class EmptyStartEvent(StartEvent):
    """The start event of a pipeline."""

    def type(self) -> str:
        """Return ``"EmptyStartEvent"``."""
        return "EmptyStartEvent"


class EmptyEndEvent(EndEvent):
    """The plain end event of a pipeline."""

    def type(self) -> str:
        """Return ``"EmptyEndEvent"``."""
        return "EmptyEndEvent"


class ExecutableEndEvent(EndEvent):
    """An end event that runs code when reached; its type is a registered end-event type key.

    Args:
        type: the registered end-event type key, written as the node ``type``.
        **element_kwargs: ``id``, ``name``, ``outgoing`` as for ``Element``.
    """

    def __init__(self, type: str, **element_kwargs: Any):
        self._type = type
        super().__init__(**element_kwargs)

    def type(self) -> str:
        """Return the registered type key given to the constructor."""
        return self._type


class ServiceActivity(Element):
    """A node bound to a component.

    Args:
        component_code: the code of the component to run.
        error_ignorable: whether a failure is recorded and the flow continues.
        timeout: deprecated; written to the tree, ignored by the engine.
        skippable: whether ``skip_node`` is allowed.
        retryable: whether ``retry_node`` is allowed.
        *args: ``id``, ``name``, ``outgoing`` as for ``Element``.
        version: the component version to run (keyword only; default: the tree names none, and
            the engine runs the component registered without one, ``"legacy"``).
        **element_kwargs: ``id``, ``name``, ``outgoing`` as for ``Element``.

    ``component`` is an attribute-access dict ``{"code": ..., "inputs": {}}`` (plus ``"version"``
    when one is given); set inputs with ``act.component.inputs.key = Var(...)`` or
    ``act.component.inputs["key"] = Var(...)``, the version with ``act.component.version = "1.0"``.
    """

    def __init__(
        self,
        component_code: str | None = None,
        error_ignorable: bool = False,
        timeout: int | None = None,
        skippable: bool = True,
        retryable: bool = True,
        *args: Any,
        version: str | None = None,
        **element_kwargs: Any,
    ):
        self.component: FancyDict = FancyDict({"code": component_code, "inputs": FancyDict({})})
        if version is not None:
            self.component["version"] = version
        self.error_ignorable = error_ignorable
        self.timeout = timeout
        self.skippable = skippable
        self.retryable = retryable
        super().__init__(*args, **element_kwargs)

    def type(self) -> str:
        """Return ``"ServiceActivity"``."""
        return "ServiceActivity"

    def component_dict(self) -> dict[str, Any]:
        """Return the component as written into the tree: ``{"code", "inputs": {key: item}}``, and
        ``"version"`` when one was set (the constructor's ``version=`` or ``component.version``).

        ``Var`` inputs are serialised with ``to_dict()``; raw dicts are passed through unchanged.
        """
        inputs = {key: serialize_item(var) for key, var in list(self.component["inputs"].items())}
        out: dict[str, Any] = {"code": self.component["code"], "inputs": inputs}
        version = self.component.get("version")
        if version is not None:
            out["version"] = version
        return out


class SubProcess(Element):
    """A node that runs a nested pipeline.

    Args:
        start: the nested pipeline's start element.
        data: a ``Data`` (or a raw data dict, used as is) for the nested pipeline.
        params: a ``Params`` (or a raw dict of input items) overriding child context keys.
        global_outputs: accepted and stored, never written to the tree.
        *args: ``id``, ``name``, ``outgoing`` as for ``Element``.
        **element_kwargs: ``id``, ``name``, ``outgoing`` as for ``Element``.
    """

    def __init__(
        self,
        start: Element | None = None,
        data: Data | dict[str, Any] | None = None,
        params: Params | dict[str, Any] | None = None,
        global_outputs: dict[str, Any] | None = None,
        *args: Any,
        **element_kwargs: Any,
    ):
        self.start = start
        self.data = data
        self.params: Params | dict[str, Any] = params or {}
        self.global_outputs = FancyDict(global_outputs or {})
        super().__init__(*args, **element_kwargs)

    def type(self) -> str:
        """Return ``"SubProcess"``."""
        return "SubProcess"


class ParallelGateway(Element):
    """Runs every outgoing branch in parallel; the branches must meet at one converge gateway."""

    def type(self) -> str:
        """Return ``"ParallelGateway"``."""
        return "ParallelGateway"


class ConditionGateway(Element):
    """Base of gateways whose outgoing flows carry conditions.

    Args:
        conditions: dict index -> expression; index ``i`` is the i-th outgoing element.
        default_condition_outgoing: index of the default branch, or ``None``.
        *args: ``id``, ``name``, ``outgoing`` as for ``Element``.
        **element_kwargs: ``id``, ``name``, ``outgoing`` as for ``Element``.
    """

    def __init__(
        self,
        conditions: dict[int, str] | None = None,
        default_condition_outgoing: int | None = None,
        *args: Any,
        **element_kwargs: Any,
    ):
        self.conditions: dict[int, str] = conditions or {}
        self.default_condition_outgoing = default_condition_outgoing
        super().__init__(*args, **element_kwargs)

    def add_condition(self, index: int, evaluate: str) -> None:
        """Bind the expression ``evaluate`` to the ``index``-th outgoing branch.

        Args:
            index: position of the branch in ``outgoing``.
            evaluate: the boolean expression.
        """
        self.conditions[index] = evaluate

    def link_conditions_with(self, outgoing: list[str]) -> dict[str, dict[str, str]]:
        """Return the ``conditions`` tree entry for the given outgoing flow ids.

        Args:
            outgoing: flow ids in outgoing order.

        Raises:
            ValueError: when an outgoing index has no condition.
        """
        conditions: dict[str, dict[str, str]] = {}
        for index, flow_id in enumerate(outgoing):
            if index not in self.conditions and index == self.default_condition_outgoing:
                continue  # the default branch is taken when no condition holds: it needs none
            if index not in self.conditions:
                raise ValueError(
                    f"{self!r} has no condition for outgoing index {index} (conditions cover indexes "
                    f"{sorted(self.conditions)}; outgoing count {len(outgoing)})"
                )
            conditions[flow_id] = {"evaluate": self.conditions[index]}
        return conditions

    def link_default_condition_with(self, outgoing: list[str]) -> dict[str, str]:
        """Return the ``default_condition`` tree entry: ``{"flow_id": ...}`` or ``{}``.

        Args:
            outgoing: flow ids in outgoing order.

        Raises:
            ValueError: when ``default_condition_outgoing`` is not a valid outgoing index.
        """
        index = self.default_condition_outgoing
        if index is None:
            return {}
        try:
            return {"flow_id": outgoing[index]}
        except IndexError:
            raise ValueError(
                f"{self!r} default_condition_outgoing {index} is out of range "
                f"(outgoing count {len(outgoing)})"
            ) from None


class ExclusiveGateway(ConditionGateway):
    """Takes the first outgoing branch whose condition is true."""

    def type(self) -> str:
        """Return ``"ExclusiveGateway"``."""
        return "ExclusiveGateway"


class ConditionalParallelGateway(ConditionGateway):
    """Runs, in parallel, every outgoing branch whose condition is true."""

    def type(self) -> str:
        """Return ``"ConditionalParallelGateway"``."""
        return "ConditionalParallelGateway"


class ConvergeGateway(Element):
    """Joins branches diverged by a gateway into one."""

    def type(self) -> str:
        """Return ``"ConvergeGateway"``."""
        return "ConvergeGateway"
