"""Rollback tokens: ``generate_pipeline_token(tree)``.

A token names a sequential region of a pipeline. TOKEN-mode rollback only moves between nodes that share a
token, so it never enters or leaves a parallel branch or a subprocess.

Rules: cycles are cut first (back edges of a depth-first walk from the start event are ignored). The start
event gets a new token and successors inherit it; branches of an exclusive gateway keep the token; each
branch of a parallel or conditional parallel gateway gets a new token; the gateway's matching converge
gateway (its ``converge_gateway_id``, or else the first converge gateway, or the end event, reached from
every branch) and what follows get the diverging gateway's token back; the inside of a subprocess gets a
new token while the subprocess node keeps the outer one. The tree is never modified.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from rattan.ids import unique_id

__all__ = ["generate_pipeline_token"]

_PARALLEL_TYPES = frozenset({"ParallelGateway", "ConditionalParallelGateway"})

Graph = dict[str, list[str]]


def generate_pipeline_token(tree: Mapping[str, Any]) -> dict[str, str]:
    """Compute the rollback token of every node reachable from the start event, subprocesses included.

    Args:
        tree: a pipeline tree (built or hand-written; ``converge_gateway_id`` is optional). It is not
            modified.

    Returns:
        dict node id -> token (``t`` + 32 hex digits).
    """
    tokens: dict[str, str] = {}
    # nested subprocess pipelines go through a work list, not recursion: any nesting depth works
    todo: list[tuple[Mapping[str, Any], str]] = [(tree, unique_id("t"))]
    levels: list[dict[str, str]] = []
    while todo:
        level, start_token = todo.pop()
        levels.append(_inject(level, start_token, todo))
    # children's tokens first, then their parent's (a parent wins on a clash, as before)
    for local in reversed(levels):
        tokens.update(local)
    return tokens


def _flow_ids(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str) and v]
    return []


def _collect_nodes(tree: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    nodes: dict[str, Mapping[str, Any]] = {}
    for key in ("activities", "gateways"):
        group = tree.get(key) or {}
        for node_id, node in group.items():
            if isinstance(node, Mapping):
                nodes[node.get("id", node_id)] = node
    for key in ("start_event", "end_event"):
        node = tree.get(key)
        if isinstance(node, Mapping) and "id" in node:
            nodes[node["id"]] = node
    return nodes


def _successors(nodes: Mapping[str, Mapping[str, Any]], flows: Mapping[str, Any]) -> Graph:
    graph: Graph = {}
    for node_id, node in nodes.items():
        targets: list[str] = []
        for flow_id in _flow_ids(node.get("outgoing")):
            flow = flows.get(flow_id)
            if isinstance(flow, Mapping) and flow.get("target") in nodes:
                targets.append(flow["target"])
        graph[node_id] = targets
    return graph


def _cut_cycles(start: str, graph: Graph) -> Graph:
    """Return the acyclic graph reachable from ``start``: back edges of a depth-first walk are dropped."""
    on_stack: set[str] = {start}
    done: set[str] = set()
    dag: Graph = {start: []}
    stack: list[tuple[str, Iterable[str]]] = [(start, iter(graph.get(start, [])))]
    while stack:
        node_id, successors = stack[-1]
        for succ in successors:
            if succ in on_stack:
                continue  # back edge: cut
            dag[node_id].append(succ)
            if succ not in done:
                on_stack.add(succ)
                dag[succ] = []
                stack.append((succ, iter(graph.get(succ, []))))
                break
        else:
            stack.pop()
            on_stack.discard(node_id)
            done.add(node_id)
    return dag


def _topological_order(start: str, dag: Graph) -> list[str]:
    indegree: dict[str, int] = dict.fromkeys(dag, 0)
    for successors in dag.values():
        for succ in successors:
            indegree[succ] += 1
    order: list[str] = []
    ready: deque[str] = deque([start])
    while ready:
        node_id = ready.popleft()
        order.append(node_id)
        for succ in dag[node_id]:
            indegree[succ] -= 1
            if indegree[succ] == 0:
                ready.append(succ)
    return order


def _reachable(start: str, dag: Graph) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        for succ in dag[todo.pop()]:
            if succ not in seen:
                seen.add(succ)
                todo.append(succ)
    return seen


def _find_converge(
    gateway_id: str,
    dag: Graph,
    nodes: Mapping[str, Mapping[str, Any]],
    position: Mapping[str, int],
    end_id: str | None,
) -> str | None:
    """The first converge gateway (or the end event) reached from every branch of ``gateway_id``."""
    common: set[str] | None = None
    for branch in dag[gateway_id]:
        reached = {
            n for n in _reachable(branch, dag) if n == end_id or nodes[n].get("type") == "ConvergeGateway"
        }
        common = reached if common is None else common & reached
        if not common:
            return None
    if not common:
        return None
    return min(common, key=lambda n: position[n])


def _converge_owners(
    order: list[str], dag: Graph, nodes: Mapping[str, Mapping[str, Any]], end_id: str | None
) -> dict[str, str]:
    """Map each matching converge gateway (or end event) to the parallel gateway it closes."""
    position = {node_id: i for i, node_id in enumerate(order)}
    owners: dict[str, str] = {}
    for node_id in order:
        node = nodes[node_id]
        if node.get("type") not in _PARALLEL_TYPES:
            continue
        converge = node.get("converge_gateway_id")
        if not (isinstance(converge, str) and converge in position):
            converge = _find_converge(node_id, dag, nodes, position, end_id)
        if converge is not None:
            owners.setdefault(converge, node_id)
    return owners


def _inject(
    tree: Mapping[str, Any], start_token: str, todo: list[tuple[Mapping[str, Any], str]]
) -> dict[str, str]:
    """Return the tokens of one level; append its subprocess pipelines (with fresh tokens) to ``todo``."""
    start = tree.get("start_event")
    if not isinstance(start, Mapping) or "id" not in start:
        return {}
    nodes = _collect_nodes(tree)
    start_id: str = start["id"]
    end = tree.get("end_event")
    end_id = end.get("id") if isinstance(end, Mapping) else None
    dag = _cut_cycles(start_id, _successors(nodes, tree.get("flows") or {}))
    order = _topological_order(start_id, dag)
    owners = _converge_owners(order, dag, nodes, end_id)

    local: dict[str, str] = {start_id: start_token}
    for node_id in order:
        node = nodes[node_id]
        token = local[node_id]
        node_type = node.get("type")
        if node_type == "SubProcess" and isinstance(node.get("pipeline"), Mapping):
            todo.append((node["pipeline"], unique_id("t")))
        for succ in dag[node_id]:
            if succ in local:
                continue
            owner = owners.get(succ)
            if owner is not None and owner in local:
                local[succ] = local[owner]
            elif node_type in _PARALLEL_TYPES:
                local[succ] = unique_id("t")
            else:
                local[succ] = token
    return local
