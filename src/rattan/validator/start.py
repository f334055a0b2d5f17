"""Start positions: which nodes a run may start at, and what is skipped when it does."""

from __future__ import annotations

from collections import deque

from ._common import (
    CONVERGE,
    EXCLUSIVE,
    PARALLEL_TYPES,
    SERVICE_ACTIVITY,
    START_EVENT,
    SUBPROCESS,
)
from .graph import GraphView

_ALLOWED = frozenset({START_EVENT, SERVICE_ACTIVITY, EXCLUSIVE, *PARALLEL_TYPES})
_WALK_ON = frozenset({START_EVENT, SERVICE_ACTIVITY, EXCLUSIVE, CONVERGE, SUBPROCESS})


def main_line_nodes(view: GraphView, matches: dict[str, str]) -> list[str]:
    """Allowed start nodes, in depth-first order from the start event.

    The walk follows every flow from the start event, activities, subprocesses, exclusive and converge
    gateways, and jumps from a parallel-type gateway straight to its converge gateway (so nothing inside a
    parallel block is allowed). Iterative and cycle-safe (bamboo's recursion is neither).
    """
    allowed: list[str] = []
    seen: set[str] = set()
    stack = [view.start_id]
    while stack:
        nid = stack.pop()
        if nid in seen:
            continue
        seen.add(nid)
        ntype = view.types[nid]
        if nid == view.end_id:
            continue
        if ntype in _ALLOWED:
            allowed.append(nid)
        if ntype in _WALK_ON:
            stack.extend(reversed(view.targets(nid)))
        elif ntype in PARALLEL_TYPES and nid in matches:
            stack.append(matches[nid])
    return allowed


def reachable_from(view: GraphView, node_id: str) -> set[str]:
    seen = {node_id}
    queue = deque([node_id])
    while queue:
        for target in view.targets(queue.popleft()):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def skipped_nodes(view: GraphView, start_node_id: str) -> list[str]:
    """Every node that cannot run when execution starts at ``start_node_id``.

    These are the nodes not reachable from ``start_node_id``, in breadth-first order from the start event
    (unreachable leftovers last, in tree order), where bamboo gives a truncated path.
    """
    if start_node_id == view.start_id:
        return []
    runnable = reachable_from(view, start_node_id)
    order: list[str] = []
    seen: set[str] = set()
    queue = deque([view.start_id])
    seen.add(view.start_id)
    while queue:
        nid = queue.popleft()
        order.append(nid)
        for target in view.targets(nid):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    order += [nid for nid in view.order if nid not in seen]
    return [nid for nid in order if nid not in runnable]
