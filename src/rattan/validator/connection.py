"""Connection rules and cycle detection, on one pipeline level."""

from __future__ import annotations

from dataclasses import dataclass

from ._common import (
    ACTIVITY_TYPES,
    CONVERGE,
    MAX_IN,
    MAX_OUT,
    START_EVENT,
    Problems,
)
from .graph import GraphView


@dataclass(frozen=True)
class Rule:
    label: str
    min_in: int
    max_in: int
    min_out: int
    max_out: int


SOURCE_RULE = Rule("start event", 0, 0, 1, 1)
SINK_RULE = Rule("end event", 1, MAX_IN, 0, 0)
ACTIVITY_RULE = Rule("activity", 1, MAX_IN, 1, 1)
EMIT_RULE = Rule("diverging gateway", 1, MAX_IN, 1, MAX_OUT)
CONVERGE_RULE = Rule("converge gateway", 1, MAX_IN, 1, 1)


# the rule of every node that is neither the start nor the end event, by type
_RULE_BY_TYPE = {**dict.fromkeys(ACTIVITY_TYPES, ACTIVITY_RULE), CONVERGE: CONVERGE_RULE}


def rule_for(view: GraphView, nid: str) -> Rule:
    if nid == view.start_id:
        return SOURCE_RULE
    if nid == view.end_id:
        return SINK_RULE
    return _RULE_BY_TYPE.get(view.types[nid], EMIT_RULE)


def _bounds(lo: int, hi: int) -> str:
    if lo == hi:
        return f"exactly {lo}"
    return f"at least {lo} and at most {hi}"


def check_connection(view: GraphView) -> Problems:
    """Degree and allowed-target rules for EVERY node (bamboo skips sinkless nodes)."""
    probs = Problems()
    start_id, end_id = view.start_id, view.end_id
    types, incoming, outgoing, succ = view.types, view.incoming, view.outgoing, view.succ
    for nid in view.order:
        rule = rule_for(view, nid)
        n_in, n_out = len(incoming[nid]), len(outgoing[nid])
        if not rule.min_in <= n_in <= rule.max_in:
            probs.add(
                nid,
                "connection.in_degree",
                f"{rule.label} has {n_in} incoming flow(s); it needs {_bounds(rule.min_in, rule.max_in)}",
                view.name(nid),
            )
        if not rule.min_out <= n_out <= rule.max_out:
            probs.add(
                nid,
                "connection.out_degree",
                f"{rule.label} has {n_out} outgoing flow(s); it needs {_bounds(rule.min_out, rule.max_out)}",
                view.name(nid),
            )
        for target in succ[nid]:
            if types[target] == START_EVENT or target == start_id:
                probs.add(nid, "connection.target", "no node may connect to the start event", view.name(nid))
            elif nid == start_id and target == end_id:
                probs.add(
                    nid,
                    "connection.target",
                    "the start event may not connect directly to the end event; put a node between them",
                    view.name(nid),
                )
    return probs


def find_cycles(view: GraphView) -> list[list[str]]:
    """Every cycle closed by a DFS back edge, as ``[v, ..., v]`` node lists (iterative DFS)."""
    white, grey, black = 0, 1, 2
    succ = view.succ
    color = dict.fromkeys(view.order, white)
    cycles: list[list[str]] = []
    entries: set[str] = set()
    for root in view.order:
        if color[root] != white:
            continue
        color[root] = grey
        path = [root]
        stack = [iter(succ[root])]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                color[path.pop()] = black
                stack.pop()
                continue
            if color[nxt] == white:
                color[nxt] = grey
                path.append(nxt)
                stack.append(iter(succ[nxt]))
            elif color[nxt] == grey and nxt not in entries:
                entries.add(nxt)
                cycles.append([*path[path.index(nxt) :], nxt])
    return cycles


def check_cycles(view: GraphView) -> Problems:
    probs = Problems()
    for cycle in find_cycles(view):
        shown = " -> ".join(cycle[:12]) + (" -> ..." if len(cycle) > 12 else "")
        probs.add(
            cycle[0],
            "graph.cycle",
            f"pipeline graph has circle: {shown}; remove the back flow or run with cycle_tolerate=True",
            view.name(cycle[0]),
        )
    return probs
