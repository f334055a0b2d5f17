"""Loops through cycles (SPEC 5.8, 4.6 step 3, 5.1 rerun limit)."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import inputs, node_states, outputs, run, wait_finished, wait_idle, wait_state

import rattan
from rattan import api
from rattan.builder import (
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    NodeOutput,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)

pytestmark = pytest.mark.timeout(30)


def pipe(**inputs_: Any) -> ServiceActivity:
    act = ServiceActivity(component_code="pipe_example_component")
    for key, value in inputs_.items():
        act.component.inputs[key] = value
    return act


def loop_tree(
    bound: int, a1_inputs: dict[str, Any] | None = None, extra: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``S -> A1 -> A2 -> EG{a_i < bound -> A1; else -> E}`` with ``a_i`` bound to A2's ``_loop``."""
    start, end = EmptyStartEvent(), EmptyEndEvent()
    a1 = pipe(**(a1_inputs or {}))
    a2 = pipe()
    eg = ExclusiveGateway(conditions={0: f"${{a_i}} < {bound}", 1: f"${{a_i}} >= {bound}"})
    start.extend(a1).extend(a2).extend(eg)
    eg.connect(a1, end)
    inputs_ = {"${a_i}": NodeOutput(source_act=a2.id, source_key="_loop")}
    inputs_.update(extra or {})
    tree = build_tree(start, data=Data(inputs=inputs_))
    return tree, {"start": start, "a1": a1, "a2": a2, "eg": eg, "end": end}


def test_spec_5_8_loop_example(engine: rattan.Engine) -> None:
    tree, n = loop_tree(4)
    root = run(engine, tree, cycle_tolerate=True)
    wait_finished(engine, root)
    for key in ("a1", "a2", "eg"):
        nid = n[key].id
        st = engine.get_state(nid)
        assert (st.name, st.loop, st.inner_loop) == ("FINISHED", 4, 4), key
        hist = api.get_node_histories(engine, nid).data
        assert [h["loop"] for h in hist] == [1, 2, 3], key
        assert len(api.get_node_short_histories(engine, nid).data) == 3
    for key in ("start", "end"):
        st = engine.get_state(n[key].id)
        assert (st.name, st.loop) == ("FINISHED", 1)
        assert api.get_node_histories(engine, n[key].id).data == []
    assert {cv.key: cv.value for cv in engine.get_context(root)} == {"${a_i}": 4}
    # the current pass's execution data carries the current loop
    assert inputs(engine, n["a1"].id) == {"_loop": 4, "_inner_loop": 4}
    assert outputs(engine, n["a2"].id) == {"_loop": 4, "_inner_loop": 4, "_result": True}
    # histories hold each archived pass's data, loop filter works
    a1_hist = api.get_node_histories(engine, n["a1"].id).data
    assert [h["inputs"] for h in a1_hist] == [{"_loop": i, "_inner_loop": i} for i in (1, 2, 3)]
    assert [h["outputs"] for h in a1_hist] == [
        {"_loop": i, "_inner_loop": i, "_result": True} for i in (1, 2, 3)
    ]
    assert [h["retry"] for h in a1_hist] == [0, 0, 0]
    assert [h["skip"] for h in a1_hist] == [False, False, False]
    versions = [h["version"] for h in a1_hist] + [engine.get_state(n["a1"].id).version]
    assert len(set(versions)) == 4
    only_2 = api.get_node_histories(engine, n["a1"].id, loop=2).data
    assert [h["loop"] for h in only_2] == [2]
    assert [h["id"] for h in a1_hist] == sorted(h["id"] for h in a1_hist)
    assert all(isinstance(h["id"], int) for h in a1_hist)
    # the gateway's histories have empty data (no execution data for a successful gateway)
    eg_hist = api.get_node_histories(engine, n["eg"].id).data
    assert [(h["inputs"], h["outputs"]) for h in eg_hist] == [({}, {})] * 3


def test_node_sees_own_loop_through_variable(engine: rattan.Engine) -> None:
    # A1 exports its own _loop to ${idx}; ${idx} is set to the current loop before rendering
    start, end = EmptyStartEvent(), EmptyEndEvent()
    a1 = pipe(
        item=Var(type=Var.SPLICE, value='${l.split(",")[idx]}'), raw=Var(type=Var.SPLICE, value="${idx}")
    )
    eg = ExclusiveGateway(conditions={0: "${idx} < 3", 1: "${idx} >= 3"})
    start.extend(a1).extend(eg)
    eg.connect(a1, end)
    data = Data(
        inputs={
            "${l}": Var(type=Var.PLAIN, value="zero,one,two,three"),
            "${idx}": NodeOutput(source_act=a1.id, source_key="_loop"),
        }
    )
    root = run(engine, build_tree(start, data=data), cycle_tolerate=True)
    wait_finished(engine, root)
    hist = api.get_node_histories(engine, a1.id).data
    seen = [h["inputs"] for h in hist] + [inputs(engine, a1.id)]
    assert seen == [
        {"item": "one", "raw": 1, "_loop": 1, "_inner_loop": 1},
        {"item": "two", "raw": 2, "_loop": 2, "_inner_loop": 2},
        {"item": "three", "raw": 3, "_loop": 3, "_inner_loop": 3},
    ]


def test_loop_inside_subprocess_resets_inner_loop(engine: rattan.Engine) -> None:
    s_start, s_end = EmptyStartEvent(), EmptyEndEvent()
    s_act = pipe()
    s_start.extend(s_act).extend(s_end)
    sub = SubProcess(start=s_start)
    start, end = EmptyStartEvent(), EmptyEndEvent()
    eg = ExclusiveGateway(conditions={0: "${n} < 3", 1: "${n} >= 3"})
    start.extend(sub).extend(eg)
    eg.connect(sub, end)
    data = Data(inputs={"${n}": NodeOutput(source_act=sub.id, source_key="_loop")})
    root = run(engine, build_tree(start, data=data), cycle_tolerate=True)
    wait_finished(engine, root)
    sub_st = engine.get_state(sub.id)
    assert (sub_st.name, sub_st.loop) == ("FINISHED", 3)
    act_st = engine.get_state(s_act.id)
    assert (act_st.name, act_st.loop, act_st.inner_loop) == ("FINISHED", 3, 1)
    assert inputs(engine, s_act.id) == {"_loop": 3, "_inner_loop": 1}
    assert api.get_execution_data_outputs(engine, sub.id).data == {"_loop": 3, "_inner_loop": 3}


def test_rerun_limit_fails_node(make_engine: Any) -> None:
    engine = make_engine(node_rerun_limit=3)
    tree, n = loop_tree(100)
    root = run(engine, tree, cycle_tolerate=True)
    a1 = n["a1"].id
    wait_state(engine, a1, "FAILED")
    wait_idle(engine)
    assert engine.get_state(root).name == "RUNNING"
    # SPEC 5.1: a FINISHED node re-entered with loop > limit fails; passes 1..limit+1 run
    st = engine.get_state(a1)
    assert st.loop == 4
    out = outputs(engine, a1)
    assert out["ex_data"] == "node execution exceed rerun limit 3"
    assert {k: v for k, v in out.items() if k != "ex_data"} == {"_loop": 4, "_inner_loop": 4, "_result": True}
    assert [h["loop"] for h in api.get_node_histories(engine, a1).data] == [1, 2, 3]
    states = node_states(engine, root)
    assert states == {
        n["start"].id: "FINISHED",
        a1: "FAILED",
        n["a2"].id: "FINISHED",
        n["eg"].id: "FINISHED",
    }
    assert engine.get_state(n["a2"].id).loop == 4


def test_rerun_limit_message_and_prefix(make_engine: Any) -> None:
    # whatever the exact pass count, the failure text and state are fixed
    engine = make_engine(node_rerun_limit=2)
    tree, n = loop_tree(100)
    root = run(engine, tree, cycle_tolerate=True)
    wait_state(engine, n["a1"].id, "FAILED")
    wait_idle(engine)
    assert outputs(engine, n["a1"].id)["ex_data"] == "node execution exceed rerun limit 2"
    assert engine.get_state(root).name == "RUNNING"
    assert engine.get_state_or_none(n["end"].id) is None


def test_cycle_without_cycle_tolerate_is_refused(engine: rattan.Engine) -> None:
    tree, _ = loop_tree(4)
    res = api.run_pipeline(engine, tree)
    assert res.result is False
    assert isinstance(res.exc, rattan.TreeInvalidException)
    assert api.get_pipeline_states(engine, tree["id"]).data == {}
