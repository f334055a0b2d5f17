"""Size, depth and speed limits: large inputs fail cleanly or validate fast, never with RecursionError."""

from __future__ import annotations

import time
from typing import Any

import pytest
from vtrees import chain, make_tree, problem_rules, simple_tree

from rattan.errors import TreeInvalidException
from rattan.validator import (
    DEFAULT_MAX_DEPTH,
    get_allowed_start_node_ids,
    get_skipped_execute_node_ids,
    validate_and_process_pipeline,
)


def long_chain(n: int) -> dict[str, Any]:
    ids = ["S", *[f"a{i}" for i in range(n)], "E"]
    nodes = {"S": "S", "E": "E", **{f"a{i}": "A" for i in range(n)}}
    return make_tree(nodes, chain(*ids))


def nested(depth: int) -> dict[str, Any]:
    tree = simple_tree(pid=f"sp{depth}")
    for level in range(depth - 1, -1, -1):
        sid, eid, spid = f"s{level}", f"e{level}", f"sp{level + 1}"
        parent = make_tree({sid: "S", spid: "SubProcess", eid: "E"}, chain(sid, spid, eid), pid=f"sp{level}")
        parent["activities"][spid]["pipeline"] = tree
        # make node ids unique across levels
        tree = parent
        inner = parent["activities"][spid]["pipeline"]
        if "A" in inner["activities"]:
            node = inner["activities"].pop("A")
            node["id"] = "a_leaf"
            inner["activities"]["a_leaf"] = node
            for f in inner["flows"].values():
                f["source"] = "a_leaf" if f["source"] == "A" else f["source"]
                f["target"] = "a_leaf" if f["target"] == "A" else f["target"]
            inner["start_event"]["id"] = "s_leaf"
            inner["end_event"]["id"] = "e_leaf"
            for f in inner["flows"].values():
                f["source"] = "s_leaf" if f["source"] == "S" else f["source"]
                f["target"] = "e_leaf" if f["target"] == "E" else f["target"]
    tree["id"] = "p_root"
    return tree


@pytest.mark.timeout(60)
def test_chain_of_5000_activities_is_fast() -> None:
    tree = long_chain(5000)
    started = time.perf_counter()
    validate_and_process_pipeline(tree)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, elapsed
    assert len(get_allowed_start_node_ids(tree)) == 5001
    assert len(get_skipped_execute_node_ids(tree, "a4999")) == 5000  # S and a0..a4998


@pytest.mark.timeout(60)
def test_chain_of_2000_parallel_blocks_is_fast() -> None:
    nodes: dict[str, str] = {"S": "S", "E": "E"}
    edges: list[tuple[str, str]] = []
    prev = "S"
    for i in range(2000):
        pg, cg, a, b = f"pg{i}", f"cg{i}", f"x{i}", f"y{i}"
        nodes.update({pg: "PG", cg: "CG", a: "A", b: "A"})
        edges += [(prev, pg), (pg, a), (pg, b), (a, cg), (b, cg)]
        prev = cg
    edges.append((prev, "E"))
    tree = make_tree(nodes, edges)
    started = time.perf_counter()
    validate_and_process_pipeline(tree)
    assert time.perf_counter() - started < 5.0
    assert tree["gateways"]["pg1999"]["converge_gateway_id"] == "cg1999"


@pytest.mark.timeout(60)
def test_long_chain_of_dangling_exclusive_gateways_no_recursion_error() -> None:
    n = 990  # the end event takes at most 1000 incoming flows
    nodes: dict[str, str] = {"S": "S", "E": "E"}
    edges: list[tuple[str, str]] = []
    prev = "S"
    for i in range(n):
        eg, a, b = f"eg{i}", f"a{i}", f"b{i}"
        nodes.update({eg: "EG", a: "A", b: "A"})
        edges += [(prev, eg), (eg, a), (eg, b), (b, "E")]
        prev = a
    edges.append((prev, "E"))
    tree = make_tree(nodes, edges)
    validate_and_process_pipeline(tree)


@pytest.mark.timeout(60)
def test_200k_nodes_rejected_naming_the_limit() -> None:
    tree = long_chain(200_000)
    with pytest.raises(TreeInvalidException) as info:
        validate_and_process_pipeline(tree)
    assert "100000" in str(info.value)
    assert problem_rules(info.value) == {"structure.too_large"}


def test_max_nodes_is_configurable() -> None:
    tree = long_chain(50)
    with pytest.raises(TreeInvalidException):
        validate_and_process_pipeline(tree, max_nodes=20)
    validate_and_process_pipeline(tree, max_nodes=60)


@pytest.mark.timeout(60)
def test_deep_nesting_500_is_a_clean_error() -> None:
    tree = nested(500)
    with pytest.raises(TreeInvalidException) as info:
        validate_and_process_pipeline(tree)
    assert "structure.too_deep" in problem_rules(info.value)
    assert str(DEFAULT_MAX_DEPTH) in str(info.value)


@pytest.mark.timeout(60)
def test_deep_nesting_500_works_when_allowed() -> None:
    tree = nested(500)
    validate_and_process_pipeline(tree, max_depth=1000)


def test_nesting_within_limit_validates() -> None:
    validate_and_process_pipeline(nested(20))
