"""A read-only adjacency view of one (structurally valid) pipeline level, used by the graph rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._common import ACTIVITY_TYPES, CONVERGE, PARALLEL_TYPES, node_name, to_list


@dataclass(frozen=True)
class GraphView:
    start_id: str
    end_id: str
    types: dict[str, str]  # node id -> type key as written in the tree
    nodes: dict[str, dict[str, Any]]  # node id -> node dict (names are read from it only for problems)
    # node id -> outgoing / incoming flow ids. These may be the tree's own lists (not copies): the
    # validator never mutates them, and copying every list was a measurable part of building the view.
    outgoing: dict[str, list[str]]
    incoming: dict[str, list[str]]
    flow_source: dict[str, str]
    flow_target: dict[str, str]
    order: list[str]  # node ids in tree order: start, end, activities, gateways
    # node id -> target node of each outgoing flow, computed once here because the connection, cycle,
    # stream and start-position walks all ask for it (callers must not mutate these lists)
    succ: dict[str, list[str]]

    def name(self, nid: str) -> str | None:
        """The node's name for problem reports (read lazily: only failing nodes need it)."""
        return node_name(self.nodes.get(nid))

    def targets(self, nid: str) -> list[str]:
        return self.succ[nid]

    def sources(self, nid: str) -> list[str]:
        return [self.flow_source[f] for f in self.incoming[nid]]

    def is_activity(self, nid: str) -> bool:
        return self.types[nid] in ACTIVITY_TYPES

    def is_converge(self, nid: str) -> bool:
        return self.types[nid] == CONVERGE

    def is_parallel(self, nid: str) -> bool:
        return self.types[nid] in PARALLEL_TYPES

    def gateway_ids(self) -> list[str]:
        types = self.types
        return [n for n in self.order if types[n] in _GATEWAYS]


_GATEWAYS = frozenset(
    {"ParallelGateway", "ExclusiveGateway", "ConditionalParallelGateway", "ConvergeGateway"}
)


def build_view(pipeline: dict[str, Any]) -> GraphView:
    """Build the view of one pipeline level; the tree must have passed the structural check."""
    types: dict[str, str] = {}
    nodes_by_id: dict[str, dict[str, Any]] = {}
    outgoing: dict[str, list[str]] = {}
    incoming: dict[str, list[str]] = {}
    succ: dict[str, list[str]] = {}
    order: list[str] = []
    flow_source: dict[str, str] = {}
    flow_target: dict[str, str] = {}
    for fid, f in pipeline["flows"].items():
        flow_source[fid] = f["source"]
        flow_target[fid] = f["target"]
    start, end = pipeline["start_event"], pipeline["end_event"]
    for node in (start, end, *pipeline["activities"].values(), *pipeline["gateways"].values()):
        nid = node["id"]
        order.append(nid)
        types[nid] = node["type"]
        nodes_by_id[nid] = node
        out = to_list(node["outgoing"])
        outgoing[nid] = out
        incoming[nid] = to_list(node["incoming"])
        # every listed flow exists once the structural check passed, so this cannot raise
        succ[nid] = [flow_target[f] for f in out]
    return GraphView(
        start_id=start["id"],
        end_id=end["id"],
        types=types,
        nodes=nodes_by_id,
        outgoing=outgoing,
        incoming=incoming,
        flow_source=flow_source,
        flow_target=flow_target,
        order=order,
        succ=succ,
    )
