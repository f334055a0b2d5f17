"""``generate_pipeline_token``: which nodes share a rollback token (SPEC 11.2)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from rattan.builder import (
    ConditionalParallelGateway,
    ConvergeGateway,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    ParallelGateway,
    ServiceActivity,
    SubProcess,
    build_tree,
    generate_pipeline_token,
)
from rattan.builder.builder import generate_pipeline_token as generate_from_builder_module

TOKEN_RE = re.compile(r"^t[0-9a-f]{32}$")


def _tokens(tree: dict[str, Any]) -> dict[str, str]:
    before = copy.deepcopy(tree)
    tokens = generate_pipeline_token(tree)
    assert tree == before, "generate_pipeline_token modified the tree"
    assert all(TOKEN_RE.match(t) for t in tokens.values())
    return tokens


def _same(tokens: dict[str, str], *ids: str) -> None:
    assert len({tokens[i] for i in ids}) == 1, [tokens[i] for i in ids]


def _distinct(tokens: dict[str, str], *ids: str) -> None:
    assert len({tokens[i] for i in ids}) == len(ids), [tokens[i] for i in ids]


def test_sequence_shares_one_token() -> None:
    start, a1, a2, end = EmptyStartEvent(), ServiceActivity(), ServiceActivity(), EmptyEndEvent()
    start.extend(a1).extend(a2).extend(end)
    tokens = _tokens(build_tree(start))
    assert set(tokens) == {start.id, a1.id, a2.id, end.id}
    _same(tokens, start.id, a1.id, a2.id, end.id)
    assert generate_from_builder_module is generate_pipeline_token


def test_parallel_branches_get_new_tokens_and_converge_gets_gateway_token() -> None:
    start, pg, cg, end = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    a1, a2, a3, a1_next = ServiceActivity(), ServiceActivity(), ServiceActivity(), ServiceActivity()
    start.extend(pg).connect(a1, a2, a3).to(a1).extend(a1_next).to(pg).converge(cg).extend(end)
    tree = build_tree(start)
    tokens = _tokens(tree)
    _same(tokens, start.id, pg.id, cg.id, end.id)
    _same(tokens, a1.id, a1_next.id)
    _distinct(tokens, start.id, a1.id, a2.id, a3.id)

    # the same answer with converge_gateway_id present (as after validation)
    tree["gateways"][pg.id]["converge_gateway_id"] = cg.id
    tokens2 = _tokens(tree)
    _same(tokens2, start.id, pg.id, cg.id, end.id)
    _same(tokens2, a1.id, a1_next.id)
    _distinct(tokens2, start.id, a1.id, a2.id, a3.id)
    assert tokens2[start.id] != tokens[start.id]


def test_conditional_parallel_branches_get_new_tokens() -> None:
    start, cg, end = EmptyStartEvent(), ConvergeGateway(), EmptyEndEvent()
    cpg = ConditionalParallelGateway(conditions={0: "True", 1: "True"})
    a1, a2 = ServiceActivity(), ServiceActivity()
    start.extend(cpg).connect(a1, a2).to(cpg).converge(cg).extend(end)
    tokens = _tokens(build_tree(start))
    _same(tokens, start.id, cpg.id, cg.id, end.id)
    _distinct(tokens, start.id, a1.id, a2.id)


def test_exclusive_branches_keep_the_token() -> None:
    start, cg, end = EmptyStartEvent(), ConvergeGateway(), EmptyEndEvent()
    eg = ExclusiveGateway(conditions={0: "a", 1: "b"})
    b1, b2, b1_next = ServiceActivity(), ServiceActivity(), ServiceActivity()
    start.extend(eg).connect(b1, b2).to(b1).extend(b1_next).to(eg).converge(cg).extend(end)
    tokens = _tokens(build_tree(start))
    _same(tokens, start.id, eg.id, b1.id, b1_next.id, b2.id, cg.id, end.id)


def test_exclusive_straight_to_end() -> None:
    start, a1, a2, a3, end = (
        EmptyStartEvent(),
        ServiceActivity(),
        ServiceActivity(),
        ServiceActivity(),
        EmptyEndEvent(),
    )
    eg = ExclusiveGateway(conditions={0: "a", 1: "b"})
    start.extend(a1).extend(eg).connect(a2, a3).to(eg).converge(end)
    tokens = _tokens(build_tree(start))
    _same(tokens, start.id, a1.id, eg.id, a2.id, a3.id, end.id)


def test_subprocess_inside_gets_new_token() -> None:
    sub_start, sub_a, sub_end = EmptyStartEvent(), ServiceActivity(), EmptyEndEvent()
    sub_start.extend(sub_a).extend(sub_end)
    sub = SubProcess(start=sub_start)
    start, before, after, end = EmptyStartEvent(), ServiceActivity(), ServiceActivity(), EmptyEndEvent()
    start.extend(before).extend(sub).extend(after).extend(end)
    tokens = _tokens(build_tree(start))
    _same(tokens, start.id, before.id, sub.id, after.id, end.id)
    _same(tokens, sub_start.id, sub_a.id, sub_end.id)
    assert tokens[sub_start.id] != tokens[start.id]


def test_nested_parallel_inside_parallel_branch() -> None:
    start, pg, cg, end = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    inner_pg, inner_cg = ParallelGateway(), ConvergeGateway()
    a1, x, y, a1_after, a2 = (ServiceActivity() for _ in range(5))
    start.extend(pg).connect(a1, a2)
    a1.extend(inner_pg).connect(x, y).to(inner_pg).converge(inner_cg).extend(a1_after)
    pg.converge(cg).extend(end)
    tokens = _tokens(build_tree(start))
    _same(tokens, start.id, pg.id, cg.id, end.id)
    _same(tokens, a1.id, inner_pg.id, inner_cg.id, a1_after.id)
    _distinct(tokens, start.id, a1.id, a2.id, x.id, y.id)


def test_exclusive_inside_parallel_branch_sharing_the_converge() -> None:
    start, pg, cg, end = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    eg = ExclusiveGateway(conditions={0: "a", 1: "b"})
    a1, a2, b1, b2 = (ServiceActivity() for _ in range(4))
    start.extend(pg).connect(a1, a2)
    a1.extend(eg).connect(b1, b2)
    for elem in (b1, b2, a2):
        elem.extend(cg)
    cg.extend(end)
    tokens = _tokens(build_tree(start))
    _same(tokens, start.id, pg.id, cg.id, end.id)
    _same(tokens, a1.id, eg.id, b1.id, b2.id)
    _distinct(tokens, start.id, a1.id, a2.id)


def test_exclusive_with_own_converge_inside_parallel_branch() -> None:
    start, pg, cg, end = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    eg, eg_cg = ExclusiveGateway(conditions={0: "a", 1: "b"}), ConvergeGateway()
    a1, a2, b1, b2, after = (ServiceActivity() for _ in range(5))
    start.extend(pg).connect(a1, a2)
    a1.extend(eg).connect(b1, b2).to(eg).converge(eg_cg).extend(after)
    pg.converge(cg).extend(end)
    tokens = _tokens(build_tree(start))
    _same(tokens, start.id, pg.id, cg.id, end.id)
    _same(tokens, a1.id, eg.id, b1.id, b2.id, eg_cg.id, after.id)
    _distinct(tokens, start.id, a1.id, a2.id)


def test_parallel_inside_subprocess_inside_parallel() -> None:
    sub_start, sub_pg, sub_cg, sub_end = (
        EmptyStartEvent(),
        ParallelGateway(),
        ConvergeGateway(),
        EmptyEndEvent(),
    )
    s1, s2 = ServiceActivity(), ServiceActivity()
    sub_start.extend(sub_pg).connect(s1, s2).to(sub_pg).converge(sub_cg).extend(sub_end)
    sub = SubProcess(start=sub_start)
    start, pg, cg, end = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    other = ServiceActivity()
    start.extend(pg).connect(sub, other).to(pg).converge(cg).extend(end)
    tokens = _tokens(build_tree(start))
    _same(tokens, start.id, pg.id, cg.id, end.id)
    _same(tokens, sub_start.id, sub_pg.id, sub_cg.id, sub_end.id)
    _distinct(tokens, start.id, sub.id, other.id, sub_start.id, s1.id, s2.id)


def test_cycles_are_cut() -> None:
    start, a1, a2, end = EmptyStartEvent(), ServiceActivity(), ServiceActivity(), EmptyEndEvent()
    eg = ExclusiveGateway(conditions={0: "again", 1: "done"})
    start.extend(a1).extend(eg).connect(a1, a2)
    a2.extend(end)
    tree = build_tree(start)
    tokens = _tokens(tree)
    _same(tokens, start.id, a1.id, eg.id, a2.id, end.id)


def test_cycle_inside_parallel_branch() -> None:
    start, pg, cg, end = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    a1, a2, loop_back = ServiceActivity(), ServiceActivity(), ServiceActivity()
    eg = ExclusiveGateway(conditions={0: "again", 1: "done"})
    start.extend(pg).connect(a1, a2)
    a1.extend(loop_back).extend(eg).connect(a1, cg)
    a2.extend(cg)
    cg.extend(end)
    tokens = _tokens(build_tree(start))
    _same(tokens, start.id, pg.id, cg.id, end.id)
    _same(tokens, a1.id, loop_back.id, eg.id)
    _distinct(tokens, start.id, a1.id, a2.id)


def test_hand_written_tree_with_string_incoming_and_extra_keys() -> None:
    tree: dict[str, Any] = {
        "id": "p",
        "start_event": {"id": "s", "type": "EmptyStartEvent", "incoming": "", "outgoing": "f1", "name": None},
        "end_event": {"id": "e", "type": "EmptyEndEvent", "incoming": "f5", "outgoing": "", "name": None},
        "activities": {
            "a": {"id": "a", "type": "ServiceActivity", "incoming": "f2", "outgoing": "f4"},
            "b": {"id": "b", "type": "ServiceActivity", "incoming": "f3", "outgoing": "f6"},
        },
        "gateways": {
            "pg": {"id": "pg", "type": "ParallelGateway", "incoming": "f1", "outgoing": ["f2", "f3"]},
            "cg": {"id": "cg", "type": "ConvergeGateway", "incoming": ["f4", "f6"], "outgoing": "f5"},
        },
        "flows": {
            "f1": {"id": "f1", "source": "s", "target": "pg"},
            "f2": {"id": "f2", "source": "pg", "target": "a"},
            "f3": {"id": "f3", "source": "pg", "target": "b"},
            "f4": {"id": "f4", "source": "a", "target": "cg"},
            "f5": {"id": "f5", "source": "cg", "target": "e"},
            "f6": {"id": "f6", "source": "b", "target": "cg"},
        },
        "data": {"inputs": {}, "outputs": []},
        "line": [],
    }
    tokens = _tokens(tree)
    _same(tokens, "s", "pg", "cg", "e")
    _distinct(tokens, "s", "a", "b")


@pytest.mark.timeout(30)
def test_large_shapes_are_fast() -> None:
    start = EmptyStartEvent()
    cur: Any = start
    for _ in range(2000):
        cur = cur.extend(ServiceActivity())
    cur.extend(EmptyEndEvent())
    tokens = _tokens(build_tree(start))
    assert len(tokens) == 2002
    assert len(set(tokens.values())) == 1

    start2, pg, cg, end2 = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    firsts = []
    for _ in range(100):
        acts = [ServiceActivity() for _ in range(10)]
        for i in range(9):
            acts[i].connect(acts[i + 1])
        firsts.append(acts[0])
    start2.extend(pg).connect(*firsts).converge(cg).extend(end2)
    tokens2 = _tokens(build_tree(start2))
    assert len(tokens2) == 1004
    assert len(set(tokens2.values())) == 101
    _same(tokens2, start2.id, pg.id, cg.id, end2.id)
