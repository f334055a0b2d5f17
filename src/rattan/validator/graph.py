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
    names: dict[str, str | None]
    outgoing: dict[str, list[str]]  # node id -> outgoing flow ids
    incoming: dict[str, list[str]]  # node id -> incoming flow ids
    flow_source: dict[str, str]
    flow_target: dict[str, str]
    order: list[str]  # node ids in tree order: start, end, activities, gateways

    def targets(self, nid: str) -> list[str]:
        return [self.flow_target[f] for f in self.outgoing[nid]]

    def sources(self, nid: str) -> list[str]:
        return [self.flow_source[f] for f in self.incoming[nid]]

    def is_activity(self, nid: str) -> bool:
        return self.types[nid] in ACTIVITY_TYPES

    def is_converge(self, nid: str) -> bool:
        return self.types[nid] == CONVERGE

    def is_parallel(self, nid: str) -> bool:
        return self.types[nid] in PARALLEL_TYPES

    def gateway_ids(self) -> list[str]:
        return [n for n in self.order if self.types[n] in _GATEWAYS]


_GATEWAYS = frozenset(
    {"ParallelGateway", "ExclusiveGateway", "ConditionalParallelGateway", "ConvergeGateway"}
)


def build_view(pipeline: dict[str, Any]) -> GraphView:
    """Build the view of one pipeline level; the tree must have passed the structural check."""
    types: dict[str, str] = {}
    names: dict[str, str | None] = {}
    outgoing: dict[str, list[str]] = {}
    incoming: dict[str, list[str]] = {}
    order: list[str] = []
    nodes: list[dict[str, Any]] = [pipeline["start_event"], pipeline["end_event"]]
    nodes += list(pipeline["activities"].values())
    nodes += list(pipeline["gateways"].values())
    for node in nodes:
        nid = node["id"]
        order.append(nid)
        types[nid] = node["type"]
        names[nid] = node_name(node)
        outgoing[nid] = list(to_list(node["outgoing"]))
        incoming[nid] = list(to_list(node["incoming"]))
    flow_source = {fid: f["source"] for fid, f in pipeline["flows"].items()}
    flow_target = {fid: f["target"] for fid, f in pipeline["flows"].items()}
    return GraphView(
        start_id=pipeline["start_event"]["id"],
        end_id=pipeline["end_event"]["id"],
        types=types,
        names=names,
        outgoing=outgoing,
        incoming=incoming,
        flow_source=flow_source,
        flow_target=flow_target,
        order=order,
    )
