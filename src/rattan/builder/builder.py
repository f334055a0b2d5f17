"""``build_tree``: turn chained flow elements into a pipeline tree dict."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from rattan.builder.data import Data, Params
from rattan.builder.flow import (
    ConditionGateway,
    ConvergeGateway,
    Element,
    EmptyStartEvent,
    EndEvent,
    ParallelGateway,
    ServiceActivity,
    SubProcess,
)
from rattan.builder.tokens import generate_pipeline_token
from rattan.ids import unique_id
from rattan.spec.model import TREE_SCHEMA_VERSION

__all__ = ["build_tree", "generate_pipeline_token"]

# node types whose ``incoming`` is always written as a list
_MULTIPLE_INCOMING_TYPES = frozenset(
    {
        "ServiceActivity",
        "ConvergeGateway",
        "EmptyEndEvent",
        "ParallelGateway",
        "ConditionalParallelGateway",
        "ExclusiveGateway",
        "SubProcess",
    }
)


@dataclass(slots=True)
class _Job:
    """One pipeline level to build: its start element, id, data and the node that will hold it."""

    start: Element
    id: str | None
    data: Data | dict[str, Any] | None
    holder: dict[str, Any] | None  # the SubProcess node dict, or None for the root


class _TreeGrower:
    """Accumulates the nodes and flows of one tree level during the breadth-first walk."""

    def __init__(self, pending: list[_Job]) -> None:
        # nested subprocesses found on this level, built later by ``build_tree``'s loop (no recursion)
        self.pending = pending
        self.tree: dict[str, Any] = {
            "id": None,
            "start_event": None,
            "end_event": None,
            "activities": {},
            "gateways": {},
            "flows": {},
            "data": {"inputs": {}, "outputs": []},
        }
        # element id -> incoming flow ids, in creation order
        self.incoming: dict[str, list[str]] = {}
        # element id -> (node dict, node type) whose ``incoming`` is filled in at the end
        self.nodes: dict[str, tuple[dict[str, Any], str]] = {}

    def flow(self, source: Element, target: Element) -> str:
        """Create the flow ``source -> target`` and return its id."""
        flow_id = unique_id("f")
        self.tree["flows"][flow_id] = {
            "is_default": False,
            "source": source.id,
            "target": target.id,
            "id": flow_id,
        }
        self.incoming.setdefault(target.id, []).append(flow_id)
        return flow_id

    def first_flow(self, elem: Element) -> str:
        """Create the flow to the first successor only (extra successors are dropped, Quirk (keep))."""
        return self.flow(elem, elem.outgoing[0]) if elem.outgoing else ""

    def add(self, node: dict[str, Any], node_type: str) -> dict[str, Any]:
        self.nodes[node["id"]] = (node, node_type)
        return node

    def grow(self, elem: Element) -> None:
        """Emit the tree entry of ``elem`` and the flows leaving it."""
        if isinstance(elem, EmptyStartEvent):
            node = {"incoming": "", "outgoing": "", "type": elem.type(), "id": elem.id, "name": elem.name}
            self.tree["start_event"] = node
            node["outgoing"] = self.first_flow(elem)
        elif isinstance(elem, EndEvent):
            self.tree["end_event"] = self.add(
                {"incoming": None, "outgoing": "", "type": elem.type(), "id": elem.id, "name": elem.name},
                elem.type(),
            )
        elif isinstance(elem, ServiceActivity):
            node = self.add(
                {
                    "incoming": None,
                    "outgoing": "",
                    "type": elem.type(),
                    "id": elem.id,
                    "name": elem.name,
                    "error_ignorable": elem.error_ignorable,
                    "timeout": elem.timeout,
                    "skippable": elem.skippable,
                    "retryable": elem.retryable,
                    "component": elem.component_dict(),
                    "optional": False,
                },
                elem.type(),
            )
            self.tree["activities"][elem.id] = node
            node["outgoing"] = self.first_flow(elem)
        elif isinstance(elem, SubProcess):
            self._grow_subprocess(elem)
        elif isinstance(elem, (ParallelGateway, ConditionGateway)):
            self._grow_diverging(elem)
        elif isinstance(elem, ConvergeGateway):
            node = self.add(
                {"id": elem.id, "incoming": None, "outgoing": "", "type": elem.type(), "name": elem.name},
                elem.type(),
            )
            self.tree["gateways"][elem.id] = node
            node["outgoing"] = self.first_flow(elem)
        else:
            raise TypeError(f"build_tree cannot build element of class {type(elem).__name__}: {elem!r}")

    def _grow_subprocess(self, elem: SubProcess) -> None:
        if elem.start is None:
            raise ValueError(f"{elem!r} has no start element")
        params = elem.params.to_dict() if isinstance(elem.params, Params) else elem.params
        node = self.add(
            {
                "id": elem.id,
                "incoming": None,
                "name": elem.name,
                "outgoing": "",
                "type": elem.type(),
                "params": params,
            },
            elem.type(),
        )
        node["pipeline"] = None  # filled in when the pending job is built
        self.pending.append(_Job(elem.start, elem.id, elem.data, node))
        self.tree["activities"][elem.id] = node
        node["outgoing"] = self.first_flow(elem)

    def _grow_diverging(self, elem: ParallelGateway | ConditionGateway) -> None:
        outgoing = [unique_id("f") for _ in elem.outgoing]
        node: dict[str, Any] = {
            "id": elem.id,
            "incoming": None,
            "outgoing": outgoing,
            "type": elem.type(),
            "name": elem.name,
        }
        if isinstance(elem, ConditionGateway):
            node["conditions"] = elem.link_conditions_with(outgoing)
            node["default_condition"] = elem.link_default_condition_with(outgoing)
        self.tree["gateways"][elem.id] = self.add(node, elem.type())
        for flow_id, target in zip(outgoing, elem.outgoing, strict=True):
            self.tree["flows"][flow_id] = {
                "is_default": False,
                "source": elem.id,
                "target": target.id,
                "id": flow_id,
            }
            self.incoming.setdefault(target.id, []).append(flow_id)

    def finish(self) -> dict[str, Any]:
        """Fill in every node's ``incoming`` (list or string) and return the tree."""
        for node_id, (node, node_type) in self.nodes.items():
            flows = self.incoming.get(node_id, [])
            if node_type in _MULTIPLE_INCOMING_TYPES or len(flows) > 1:
                node["incoming"] = list(flows)
            else:
                # Quirk (keep): an executable end event with one predecessor gets a string
                node["incoming"] = flows[0] if flows else ""
        return self.tree


def build_tree(
    start_elem: Element,
    id: str | None = None,
    data: Data | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the pipeline tree reachable from ``start_elem`` (breadth-first over ``outgoing``).

    Nested subprocesses are built without recursion, so any nesting depth builds; running a tree is
    limited by ``Settings.max_subprocess_depth`` (checked by validation).

    Args:
        start_elem: the start event.
        id: the pipeline id; defaults to ``unique_id("p")``.
        data: a ``Data``, a raw data dict (used as is), or ``None`` for ``{"inputs": {}, "outputs": []}``.

    Returns:
        A JSON-serialisable pipeline tree with an extra ``"schema_version"`` key.

    Raises:
        TypeError: for an element class the builder does not know.
        ValueError: for a condition gateway lacking a condition for one of its outgoing branches.
    """
    # Nested subprocesses are built from an explicit work list, not by recursion: any nesting depth
    # builds (validation, not the builder, limits the depth a run may use).
    root: dict[str, Any] = {}
    jobs: list[_Job] = [_Job(start_elem, id, data, None)]
    while jobs:
        job = jobs.pop()
        tree = _build_level(job, jobs)
        if job.holder is None:
            root = tree
        else:
            job.holder["pipeline"] = tree
    return root


def _build_level(job: _Job, pending: list[_Job]) -> dict[str, Any]:
    """Build one pipeline level; append its subprocesses to ``pending`` (their ``pipeline`` is None)."""
    grower = _TreeGrower(pending)
    queue: deque[Element] = deque([job.start])
    processed: set[str] = set()
    while queue:
        elem = queue.popleft()
        if elem.id in processed:
            continue
        queue.extend(elem.outgoing)
        processed.add(elem.id)
        grower.grow(elem)
    tree = grower.finish()
    tree["id"] = job.id or unique_id("p")
    user_data = job.data.to_dict() if isinstance(job.data, Data) else job.data
    tree["data"] = user_data or tree["data"]
    tree["schema_version"] = TREE_SCHEMA_VERSION
    return tree
