"""Allowed targets and rollback graphs of sequence, exclusive, parallel and subprocess trees
(SPEC 11.2, 11.4 ``get_allowed_rollback_node_id_list``, 11.5 step 2)."""

from __future__ import annotations

from typing import Any

import pytest
from rollback_helpers import (
    Recorder,
    act,
    define_components,
    node_states,
    run,
    sequence,
    wait_idle,
    wait_state,
)

import rattan
from rattan.builder import (
    ConvergeGateway,
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    ParallelGateway,
    SubProcess,
    Var,
    build_tree,
)
from rattan.rollback import ANY, get_allowed_rollback_node_id_list, rollback

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def rec(reg: rattan.Registry) -> Recorder:
    recorder = Recorder()
    define_components(reg, recorder)
    return recorder


def allowed(engine: rattan.Engine, root: str, start: str, **kw: Any) -> list[str]:
    res = get_allowed_rollback_node_id_list(engine, root, start, **kw)
    assert res.result, res.message
    return list(res.data)


@pytest.mark.timeout(60)
def test_sequence(engine: rattan.Engine, rec: Recorder) -> None:
    tree, ids = sequence("A", "B", "C")
    rec.fail_execute["C"] = 1
    root = run(engine, tree)
    wait_state(engine, ids["C"], "FAILED")
    wait_idle(engine)
    assert allowed(engine, root, ids["C"]) == [ids["A"], ids["B"]]
    assert allowed(engine, root, ids["B"]) == [ids["A"], ids["C"]]  # no current-node check here


@pytest.mark.timeout(60)
def test_exclusive_gateway_only_the_branch_that_ran(engine: rattan.Engine, rec: Recorder) -> None:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    a, b1, b2, d = act("A"), act("B1"), act("B2"), act("D")
    eg = ExclusiveGateway(conditions={0: "${x} == 1", 1: "${x} != 1"})
    cg = ConvergeGateway()
    start.extend(a).extend(eg).connect(b1, b2)
    b1.extend(cg)
    b2.extend(cg)
    cg.extend(d).extend(end)
    data = Data(inputs={"${x}": Var(type=Var.PLAIN, value=1)})
    rec.fail_execute["D"] = 1
    root = run(engine, build_tree(start, data=data))
    wait_state(engine, d.id, "FAILED")
    wait_idle(engine)
    assert allowed(engine, root, d.id) == [a.id, b1.id]
    assert rollback(engine, root, d.id, a.id).result
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    assert [c[0] for c in rec.of("rollback")] == ["B1", "A"]
    assert [c[0] for c in rec.of("execute")] == ["A", "B1", "D", "A", "B1", "D"]
    assert b2.id not in node_states(engine, root)


@pytest.mark.timeout(60)
def test_parallel_branches_have_their_own_tokens(engine: rattan.Engine, rec: Recorder) -> None:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    a, p1a, p1b, p2, z = act("A"), act("P1a"), act("P1b"), act("P2"), act("Z")
    pg, cg = ParallelGateway(), ConvergeGateway()
    start.extend(a).extend(pg).connect(p1a, p2)
    p1a.extend(p1b).extend(cg)
    p2.extend(cg)
    cg.extend(z).extend(end)
    rec.fail_execute["P1b"] = 1
    root = run(engine, build_tree(start))
    wait_state(engine, p1b.id, "FAILED")
    wait_state(engine, p2.id, "FINISHED")
    wait_idle(engine)
    assert allowed(engine, root, p1b.id) == [p1a.id]
    assert allowed(engine, root, p2.id) == []
    assert sorted(allowed(engine, root, p1b.id, mode=ANY, skip_check_token=True)) == sorted(
        [a.id, p1a.id, p2.id]
    )
    # TOKEN inside the branch
    assert rollback(engine, root, p1b.id, p1a.id).result
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    assert [c[0] for c in rec.of("rollback")] == ["P1a"]


@pytest.mark.timeout(60)
def test_a_token_region_spanning_a_finished_parallel_block(engine: rattan.Engine, rec: Recorder) -> None:
    """The converge gateway gets the diverging gateway's token back: a rollback from after the
    block to before it rolls back both branches (joins wait for all), then the target."""
    start, end = EmptyStartEvent(), EmptyEndEvent()
    a, p1, p2, z = act("A"), act("P1"), act("P2"), act("Z")
    pg, cg = ParallelGateway(), ConvergeGateway()
    start.extend(a).extend(pg).connect(p1, p2)
    p1.extend(cg)
    p2.extend(cg)
    cg.extend(z).extend(end)
    rec.fail_execute["Z"] = 1
    root = run(engine, build_tree(start))
    wait_state(engine, z.id, "FAILED")
    wait_idle(engine)
    assert allowed(engine, root, z.id) == [a.id]
    assert rollback(engine, root, z.id, a.id).result
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    names = [c[0] for c in rec.of("rollback")]
    assert sorted(names[:2]) == ["P1", "P2"] and names[2] == "A"
    assert sorted(c[0] for c in rec.of("execute")) == sorted(["A", "P1", "P2", "Z"] * 2)


def _subprocess_tree() -> tuple[dict[str, Any], dict[str, Any]]:
    """S -> A -> SUB(s -> X -> Y -> e) -> B -> E."""
    s_start, s_end = EmptyStartEvent(), EmptyEndEvent()
    x, y = act("X"), act("Y")
    s_start.extend(x).extend(y).extend(s_end)
    sub = SubProcess(start=s_start)
    start, end = EmptyStartEvent(), EmptyEndEvent()
    a, b = act("A"), act("B")
    start.extend(a).extend(sub).extend(b).extend(end)
    return build_tree(start), {"A": a.id, "B": b.id, "X": x.id, "Y": y.id, "SUB": sub.id, "start": start.id}


@pytest.mark.timeout(60)
def test_inside_a_subprocess(engine: rattan.Engine, rec: Recorder) -> None:
    tree, ids = _subprocess_tree()
    rec.fail_execute["Y"] = 1
    root = run(engine, tree)
    wait_state(engine, ids["Y"], "FAILED")
    wait_idle(engine)
    assert allowed(engine, root, ids["Y"]) == [ids["X"]]
    res = rollback(engine, root, ids["Y"], ids["A"])
    assert "token" in res.message
    assert rollback(engine, root, ids["Y"], ids["X"]).result
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    assert [c[0] for c in rec.of("rollback")] == ["X"]
    assert [c[0] for c in rec.of("execute")] == ["A", "X", "Y", "X", "Y", "B"]


@pytest.mark.timeout(60)
def test_across_a_finished_subprocess_its_contents_roll_back_first(
    engine: rattan.Engine, rec: Recorder
) -> None:
    tree, ids = _subprocess_tree()
    rec.fail_execute["B"] = 1
    root = run(engine, tree)
    wait_state(engine, ids["B"], "FAILED")
    wait_idle(engine)
    assert allowed(engine, root, ids["B"]) == [ids["A"]]
    assert rollback(engine, root, ids["B"], ids["A"]).result
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    assert [c[0] for c in rec.of("rollback")] == ["Y", "X", "A"]
    assert [c[0] for c in rec.of("execute")] == ["A", "X", "Y", "B", "A", "X", "Y", "B"]
    # the subprocess and its contents were cleaned, so they ran as a first pass again
    assert engine.get_state(ids["X"]).loop == 1
    assert engine.get_state(ids["SUB"]).loop == 1
