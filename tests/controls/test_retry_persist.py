"""Inputs replaced by ``retry_node(data=...)`` hold for the node's later passes (SPEC 7.4): passes
through a loop-back flow and ``loop_config`` passes render them, until a retry with other data
replaces them; a retry without data, a skip and ``retry_subprocess`` leave them as they are."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from control_helpers import (
    counters,
    histories,
    inputs,
    ok,
    run,
    wait_finished,
    wait_for,
    wait_idle,
    wait_state,
)

import rattan
from rattan import api
from rattan.builder import (
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    NodeOutput,
    Params,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)

pytestmark = pytest.mark.timeout(60)

Seen = list[tuple[str, dict[str, Any]]]


def _install(reg: rattan.Registry, seen: Seen) -> None:
    """``t_rp_flaky`` records its inputs; it fails the first time it runs a pass whose ``_loop``
    is its input ``fail_on`` (a number, or a list of them), so a retry of that pass succeeds."""
    failed: set[tuple[str, int]] = set()

    class Flaky(rattan.Service):
        def execute(self, data: Any, parent_data: Any) -> bool:
            got = dict(data.inputs)
            seen.append((self.id, got))
            here = (self.id, got["_loop"])
            fail_on = got.get("fail_on")
            due = got["_loop"] in fail_on if isinstance(fail_on, list) else got["_loop"] == fail_on
            if due and here not in failed:
                failed.add(here)
                data.outputs.ex_data = "flaky"
                return False
            return True

    attrs = {"name": "flaky", "code": "t_rp_flaky", "bound_service": Flaky}
    type("Comp_t_rp_flaky", (rattan.Component,), attrs, registry=reg)


@pytest.fixture
def seen() -> Seen:
    return []


@pytest.fixture
def engine(make_engine: Callable[..., rattan.Engine], reg: rattan.Registry, seen: Seen) -> rattan.Engine:
    _install(reg, seen)
    return make_engine()


def _flaky(**node_inputs: Any) -> ServiceActivity:
    node = ServiceActivity(component_code="t_rp_flaky")
    for key, value in node_inputs.items():
        node.component.inputs[key] = value if isinstance(value, Var) else Var(type=Var.PLAIN, value=value)
    return node


def _loop_back(a: ServiceActivity, passes: int = 3) -> dict[str, Any]:
    """``S -> A -> EG{A's _loop < passes -> A; else -> E}`` with ``${v} = "V"`` in the context."""
    start, end = EmptyStartEvent(), EmptyEndEvent()
    eg = ExclusiveGateway(conditions={0: f"${{n}} < {passes}", 1: f"${{n}} >= {passes}"})
    start.extend(a).extend(eg)
    eg.connect(a, end)
    data = Data(
        inputs={
            "${v}": Var(type=Var.PLAIN, value="V"),
            "${n}": NodeOutput(source_act=a.id, source_key="_loop"),
        }
    )
    return build_tree(start, data=data)


def _passes(seen: Seen, node_id: str) -> list[dict[str, Any]]:
    return [got for nid, got in seen if nid == node_id]


def _hist(engine: rattan.Engine, node_id: str) -> list[tuple[int, int, bool, dict[str, Any]]]:
    return [(h["loop"], h["retry"], h["skip"], h["inputs"]) for h in histories(engine, node_id)]


def _sys(loop: int, inner_loop: int | None = None) -> dict[str, int]:
    return {"_loop": loop, "_inner_loop": loop if inner_loop is None else inner_loop}


def _wait_failed_at(engine: rattan.Engine, node_id: str, loop: int) -> None:
    """Wait until the node's pass ``loop`` has failed (an earlier failure does not count)."""

    def check() -> bool:
        st = engine.get_state_or_none(node_id)
        return st is not None and st.name == "FAILED" and st.loop == loop

    wait_for(check)
    wait_idle(engine)


# -- loop-back flows ------------------------------------------------------------------------------
def test_retry_data_holds_for_the_later_passes_of_a_loop(engine: rattan.Engine, seen: Seen) -> None:
    a = _flaky(x=Var(type=Var.SPLICE, value="${v}"), old="gone", fail_on=1)
    root = run(engine, _loop_back(a), cycle_tolerate=True)
    wait_state(engine, a.id, "FAILED")
    ok(api.retry_node(engine, a.id, data={"x": "${v}-new", "fail_on": 0}))
    wait_finished(engine, root)

    tree_pass = {"x": "V", "old": "gone", "fail_on": 1}
    new = {"x": "V-new", "fail_on": 0}
    assert _passes(seen, a.id) == [
        {**tree_pass, **_sys(1)},
        {**new, **_sys(1)},  # the retried pass
        {**new, **_sys(2)},  # later passes: the replaced inputs, not the tree's
        {**new, **_sys(3)},
    ]
    assert inputs(engine, a.id) == {**new, **_sys(3)}
    assert _hist(engine, a.id) == [
        (1, 0, False, {**tree_pass, **_sys(1)}),
        (1, 1, False, {**new, **_sys(1)}),
        (2, 0, False, {**new, **_sys(2)}),
    ]
    st = engine.get_state(a.id)
    assert (st.name, st.loop, st.retry) == ("FINISHED", 3, 0)
    # the static data reports the replaced inputs too
    static = api.get_data(engine, a.id).data["inputs"]
    assert static == {
        "x": {"need_render": True, "value": "${v}-new"},
        "fail_on": {"need_render": True, "value": 0},
    }


def test_retry_without_data_keeps_the_replaced_inputs(engine: rattan.Engine, seen: Seen) -> None:
    a = _flaky(x="tree", fail_on=1)
    root = run(engine, _loop_back(a), cycle_tolerate=True)
    wait_state(engine, a.id, "FAILED")
    ok(api.retry_node(engine, a.id, data={"x": "new", "fail_on": 2}))
    # pass 2 fails: it ran the replaced inputs (the tree's fail_on is 1)
    _wait_failed_at(engine, a.id, 2)
    assert engine.get_state(a.id).retry == 0
    ok(api.retry_node(engine, a.id))
    wait_finished(engine, root)

    new = {"x": "new", "fail_on": 2}
    assert _passes(seen, a.id) == [
        {"x": "tree", "fail_on": 1, **_sys(1)},
        {**new, **_sys(1)},
        {**new, **_sys(2)},
        {**new, **_sys(2)},  # retried without data: still the replaced inputs
        {**new, **_sys(3)},
    ]
    passes = [(loop, retry) for loop, retry, _skip, _in in _hist(engine, a.id)]
    assert passes == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert inputs(engine, a.id) == {**new, **_sys(3)}


def test_a_second_retry_with_data_replaces_the_first(engine: rattan.Engine, seen: Seen) -> None:
    a = _flaky(x="tree", fail_on=1)
    root = run(engine, _loop_back(a), cycle_tolerate=True)
    wait_state(engine, a.id, "FAILED")
    ok(api.retry_node(engine, a.id, data={"x": "first", "fail_on": 2}))
    _wait_failed_at(engine, a.id, 2)
    ok(api.retry_node(engine, a.id, data={"y": "second"}))
    wait_finished(engine, root)

    assert _passes(seen, a.id) == [
        {"x": "tree", "fail_on": 1, **_sys(1)},
        {"x": "first", "fail_on": 2, **_sys(1)},
        {"x": "first", "fail_on": 2, **_sys(2)},
        {"y": "second", **_sys(2)},  # replaced entirely: x and fail_on are gone
        {"y": "second", **_sys(3)},
    ]
    assert inputs(engine, a.id) == {"y": "second", **_sys(3)}
    assert counters(engine, root, a.id) == ("FINISHED", 0, False)


def test_skip_leaves_the_inputs_as_they_are(engine: rattan.Engine, seen: Seen) -> None:
    """A skip replaces nothing: the next pass renders the inputs in force, the tree's before any
    retry with data, the replaced ones after."""
    a = _flaky(x="tree", fail_on=[1, 2])
    root = run(engine, _loop_back(a, passes=4), cycle_tolerate=True)
    wait_state(engine, a.id, "FAILED")
    ok(api.skip_node(engine, a.id))
    _wait_failed_at(engine, a.id, 2)
    ok(api.retry_node(engine, a.id, data={"x": "new", "fail_on": [3]}))
    _wait_failed_at(engine, a.id, 3)
    ok(api.skip_node(engine, a.id))
    wait_finished(engine, root)

    tree_in = {"x": "tree", "fail_on": [1, 2]}
    new = {"x": "new", "fail_on": [3]}
    assert _passes(seen, a.id) == [
        {**tree_in, **_sys(1)},
        {**tree_in, **_sys(2)},  # after a skip: the tree's inputs
        {**new, **_sys(2)},
        {**new, **_sys(3)},
        {**new, **_sys(4)},  # after a skip: still the replaced inputs
    ]
    assert _hist(engine, a.id) == [
        (1, 0, False, {**tree_in, **_sys(1)}),  # the failed pass, archived by the skip
        (1, 0, True, {**tree_in, **_sys(1)}),  # the skipped pass, archived on re-entry
        (2, 0, False, {**tree_in, **_sys(2)}),
        (2, 1, False, {**new, **_sys(2)}),
        (3, 0, False, {**new, **_sys(3)}),
        (3, 0, True, {**new, **_sys(3)}),
    ]
    assert inputs(engine, a.id) == {**new, **_sys(4)}
    assert counters(engine, root, a.id) == ("FINISHED", 0, False)


# -- loop_config passes -------------------------------------------------------------------------------
def _self_loop(a: ServiceActivity, times: int = 3) -> dict[str, Any]:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(a).extend(end)
    tree = build_tree(start)
    tree["activities"][a.id]["loop_config"] = {"enable": True, "loop_times": times, "retryable": True}
    return tree


def test_retry_data_holds_for_loop_config_passes(engine: rattan.Engine, seen: Seen) -> None:
    """A normal retry restarts the loop at pass 1 (SPEC 5.9): every pass renders the new inputs."""
    a = _flaky(x="tree", fail_on=2)
    root = run(engine, _self_loop(a))
    _wait_failed_at(engine, a.id, 2)
    ok(api.retry_node(engine, a.id, data={"x": "new"}))
    wait_finished(engine, root)

    assert _passes(seen, a.id) == [
        {"x": "tree", "fail_on": 2, **_sys(1)},
        {"x": "tree", "fail_on": 2, **_sys(2)},
        {"x": "new", **_sys(1)},
        {"x": "new", **_sys(2)},
        {"x": "new", **_sys(3)},
    ]
    assert inputs(engine, a.id) == {"x": "new", **_sys(3)}
    assert _hist(engine, a.id) == [
        (1, 0, False, {"x": "tree", "fail_on": 2, **_sys(1)}),
        (2, 0, False, {"x": "tree", "fail_on": 2, **_sys(2)}),
        (1, 1, False, {"x": "new", **_sys(1)}),
        (2, 0, False, {"x": "new", **_sys(2)}),
    ]


def test_loop_retry_data_holds_for_later_passes(engine: rattan.Engine, seen: Seen) -> None:
    """A loop retry keeps both counters (retry 0, loop 1 here): the new inputs still apply, to the
    re-run pass and to the passes after it."""
    a = _flaky(x="tree", fail_on=1)
    root = run(engine, _self_loop(a))
    _wait_failed_at(engine, a.id, 1)
    ok(api.retry_node(engine, a.id, data={"x": "new"}, loop_retry=True))
    wait_finished(engine, root)

    assert _passes(seen, a.id) == [
        {"x": "tree", "fail_on": 1, **_sys(1)},
        {"x": "new", **_sys(1)},
        {"x": "new", **_sys(2)},
        {"x": "new", **_sys(3)},
    ]
    assert inputs(engine, a.id) == {"x": "new", **_sys(3)}
    assert _hist(engine, a.id) == [
        (1, 0, False, {"x": "tree", "fail_on": 1, **_sys(1)}),
        (1, 0, False, {"x": "new", **_sys(1)}),
        (2, 0, False, {"x": "new", **_sys(2)}),
    ]
    st = engine.get_state(a.id)
    assert (st.name, st.loop, st.retry) == ("FINISHED", 3, 0)


# -- retry_subprocess ---------------------------------------------------------------------------------
def test_retry_subprocess_in_a_loop_keeps_the_trees_inputs(
    engine: rattan.Engine, reg: rattan.Registry, seen: Seen
) -> None:
    """retry_subprocess replaces no inputs: the subprocess and its nodes run the tree's on every pass."""
    fails = [1]

    class Late(rattan.LazyVariable, registry=reg):
        code = "t_rp_late"

        def get_value(self) -> Any:
            if fails:
                fails.pop()
                raise RuntimeError("not ready")
            return "ready"

    s_start, s_a, s_end = EmptyStartEvent(), _flaky(p=Var(type=Var.SPLICE, value="${p}")), EmptyEndEvent()
    s_start.extend(s_a).extend(s_end)
    sub = SubProcess(
        start=s_start,
        data=Data(inputs={"${p}": Var(type=Var.PLAIN, value="default")}),
        params=Params({"${p}": Var(type=Var.LAZY, value="v", custom_type="t_rp_late")}),
    )
    start, end = EmptyStartEvent(), EmptyEndEvent()
    eg = ExclusiveGateway(conditions={0: "${n} < 2", 1: "${n} >= 2"})
    start.extend(sub).extend(eg)
    eg.connect(sub, end)
    tree = build_tree(start, data=Data(inputs={"${n}": NodeOutput(source_act=sub.id, source_key="_loop")}))
    root = run(engine, tree, cycle_tolerate=True)
    _wait_failed_at(engine, sub.id, 1)
    static_before = api.get_data(engine, sub.id).data
    ok(api.retry_subprocess(engine, sub.id))
    wait_finished(engine, root)

    assert _passes(seen, s_a.id) == [{"p": "ready", **_sys(1)}, {"p": "ready", **_sys(2, 1)}]
    assert inputs(engine, s_a.id) == {"p": "ready", **_sys(2, 1)}
    assert api.get_data(engine, sub.id).data == static_before
    assert api.get_data(engine, s_a.id).data["inputs"] == {"p": {"need_render": True, "value": "${p}"}}
    assert counters(engine, root, sub.id) == ("FINISHED", 0, False)
    assert [(h["loop"], h["retry"]) for h in histories(engine, sub.id)] == [(1, 0), (1, 1)]
