"""Tiny helpers to hand-write pipeline trees for validator tests.

``make_tree`` takes node types and edges and writes a tree in the builder's shape (SPEC 1.10/1.11):
flows are named ``f_<source>_<target>`` and every exclusive / conditional parallel gateway gets one
condition per outgoing flow.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from rattan.errors import TreeInvalidException

SHORT = {
    "S": "EmptyStartEvent",
    "E": "EmptyEndEvent",
    "A": "ServiceActivity",
    "PG": "ParallelGateway",
    "EG": "ExclusiveGateway",
    "CPG": "ConditionalParallelGateway",
    "CG": "ConvergeGateway",
}


def flow_id(src: str, dst: str) -> str:
    return f"f_{src}_{dst}"


def make_node(nid: str, ntype: str) -> dict[str, Any]:
    node: dict[str, Any] = {"id": nid, "name": f"name_{nid}", "type": ntype, "incoming": [], "outgoing": []}
    if ntype == "ServiceActivity":
        node.update(
            {
                "error_ignorable": False,
                "timeout": None,
                "skippable": True,
                "retryable": True,
                "optional": False,
                "component": {"code": "example_component", "inputs": {}},
            }
        )
    elif ntype in ("ExclusiveGateway", "ConditionalParallelGateway"):
        node.update({"conditions": {}, "default_condition": {}})
    return node


def make_tree(
    nodes: dict[str, str], edges: list[tuple[str, str]], *, pid: str = "p_root", data: Any = None
) -> dict[str, Any]:
    """``nodes``: id -> short type (S, E, A, PG, EG, CPG, CG) or full type; ``edges``: (source, target)."""
    built = {nid: make_node(nid, SHORT.get(t, t)) for nid, t in nodes.items()}
    flows: dict[str, Any] = {}
    for src, dst in edges:
        fid = flow_id(src, dst)
        while fid in flows:
            fid += "x"
        flows[fid] = {"id": fid, "source": src, "target": dst, "is_default": False}
        built[src]["outgoing"].append(fid)
        built[dst]["incoming"].append(fid)
        if built[src]["type"] in ("ExclusiveGateway", "ConditionalParallelGateway"):
            built[src]["conditions"][fid] = {"evaluate": "1 == 1"}
    tree: dict[str, Any] = {
        "id": pid,
        "activities": {},
        "gateways": {},
        "flows": flows,
        "data": data if data is not None else {"inputs": {}, "outputs": []},
    }
    for nid, node in built.items():
        ntype = node["type"]
        single_out = ntype in ("EmptyStartEvent", "ServiceActivity", "SubProcess", "ConvergeGateway")
        if single_out or ntype == "EmptyEndEvent":
            out = node["outgoing"]
            node["outgoing"] = out[0] if len(out) == 1 else (out or "")
        if ntype == "EmptyStartEvent":
            node["incoming"] = node["incoming"] or ""
            tree["start_event"] = node
        elif ntype == "EmptyEndEvent" or nid == "E" or nid.startswith("end"):
            tree["end_event"] = node
        elif ntype in ("ServiceActivity", "SubProcess"):
            tree["activities"][nid] = node
        else:
            tree["gateways"][nid] = node
    return tree


def chain(*ids: str) -> list[tuple[str, str]]:
    return list(itertools.pairwise(ids))


def simple_tree(pid: str = "p_root") -> dict[str, Any]:
    """start -> A -> end."""
    return make_tree({"S": "S", "A": "A", "E": "E"}, chain("S", "A", "E"), pid=pid)


def with_subprocess(parent_pid: str, sub_id: str, sub_tree: dict[str, Any]) -> dict[str, Any]:
    """start -> sub -> end, the subprocess holding ``sub_tree``."""
    tree = make_tree({"S": "S", sub_id: "SubProcess", "E": "E"}, chain("S", sub_id, "E"), pid=parent_pid)
    tree["activities"][sub_id]["pipeline"] = sub_tree
    tree["activities"][sub_id]["params"] = {}
    return tree


def problem_ids(exc: TreeInvalidException) -> set[str]:
    return {p.node_id for p in exc.problems}


def problem_rules(exc: TreeInvalidException) -> set[str]:
    return {p.rule for p in exc.problems}


def raises(
    exc_type: type[TreeInvalidException], func: Any, *args: Any, **kwargs: Any
) -> TreeInvalidException:
    with pytest.raises(exc_type) as info:
        func(*args, **kwargs)
    assert type(info.value) is exc_type, (
        f"expected exactly {exc_type.__name__}, got {type(info.value).__name__}"
    )
    assert info.value.problems, "a rejected tree must list its problems"
    return info.value
