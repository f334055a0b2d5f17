"""Read API shapes (SPEC 6.6, 7.5, 7.6)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from engine_helpers import all_ids, run, wait_finished, wait_idle, wait_state

import rattan
from rattan import api
from rattan.builder import (
    Data,
    DataInput,
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

pytestmark = pytest.mark.timeout(30)

STATE_KEYS = {
    "id",
    "state",
    "root_id:",
    "root_id",
    "parent_id",
    "version",
    "loop",
    "inner_loop",
    "retry",
    "skip",
    "error_ignorable",
    "error_ignored",
    "created_time",
    "started_time",
    "archived_time",
    "children",
}
HISTORY_KEYS = {
    "id",
    "node_id",
    "started_time",
    "archived_time",
    "retry",
    "loop",
    "skip",
    "version",
    "inputs",
    "outputs",
}
SHORT_HISTORY_KEYS = {"id", "node_id", "started_time", "archived_time", "loop", "skip", "version"}
VERSION = re.compile(r"^v[0-9a-f]{32}$")


def _utc(value: Any) -> bool:
    return (
        isinstance(value, dt.datetime) and value.tzinfo is not None and value.utcoffset() == dt.timedelta(0)
    )


def _check_entry(
    entry: dict[str, Any], node_id: str, root: str, parent: str, state: str = "FINISHED"
) -> None:
    assert set(entry) == STATE_KEYS
    assert entry["id"] == node_id
    assert entry["state"] == state
    assert entry["root_id:"] == root
    assert entry["root_id"] == root
    assert entry["parent_id"] == parent
    assert VERSION.match(entry["version"]), entry["version"]
    assert (entry["loop"], entry["inner_loop"], entry["retry"], entry["skip"]) == (1, 1, 0, False)
    assert entry["error_ignorable"] is entry["error_ignored"]
    assert _utc(entry["created_time"]) and _utc(entry["started_time"])
    if state in ("FINISHED", "FAILED"):
        assert _utc(entry["archived_time"])
        assert entry["created_time"] <= entry["started_time"] <= entry["archived_time"]
    else:
        assert entry["archived_time"] is None


def _fail_component(reg: rattan.Registry) -> None:
    class FailSvc(rattan.Service):
        def execute(self, data: Any, parent_data: Any) -> bool:
            return False

    class FailComp(rattan.Component, registry=reg):
        name = "fail"
        code = "t_q_fail"
        bound_service = FailSvc


def _sub_tree() -> tuple[dict[str, Any], dict[str, Any]]:
    s_start, s_act, s_end = (
        EmptyStartEvent(),
        ServiceActivity(component_code="pipe_example_component"),
        EmptyEndEvent(),
    )
    s_act.component.inputs.v = Var(type=Var.SPLICE, value="${p}")
    s_start.extend(s_act).extend(s_end)
    sub = SubProcess(
        start=s_start,
        data=Data(inputs={"${p}": DataInput(type=Var.PLAIN, value="d")}),
        params=Params({"${p}": Var(type=Var.SPLICE, value="${top}")}),
    )
    start, act, end = EmptyStartEvent(), ServiceActivity(component_code="example_component"), EmptyEndEvent()
    act.component.inputs.k = Var(type=Var.PLAIN, value=1)
    start.extend(act).extend(sub).extend(end)
    tree = build_tree(
        start,
        data=Data(
            inputs={
                "${top}": Var(type=Var.PLAIN, value="T"),
                "${k_out}": NodeOutput(source_act=act.id, source_key="_result"),
            }
        ),
    )
    nodes = {
        "start": start,
        "act": act,
        "sub": sub,
        "end": end,
        "s_start": s_start,
        "s_act": s_act,
        "s_end": s_end,
    }
    return tree, nodes


def test_pipeline_states_flat(engine: rattan.Engine) -> None:
    tree, n = _sub_tree()
    root = run(engine, tree)
    wait_finished(engine, root)
    res = api.get_pipeline_states(engine, root)
    assert res.result is True
    data = res.data
    assert list(data) == [root]
    top = data[root]
    _check_entry(top, root, root, root)
    assert set(top["children"]) == all_ids(tree)
    child_of_sub = {n["s_start"].id, n["s_act"].id, n["s_end"].id}
    for nid, entry in top["children"].items():
        _check_entry(entry, nid, root, n["sub"].id if nid in child_of_sub else root)
        assert entry["children"] == {}


def test_pipeline_states_nested(engine: rattan.Engine) -> None:
    tree, n = _sub_tree()
    root = run(engine, tree)
    wait_finished(engine, root)
    top = api.get_pipeline_states(engine, root, flat_children=False).data[root]
    _check_entry(top, root, root, root)
    assert set(top["children"]) == {n["start"].id, n["act"].id, n["sub"].id, n["end"].id}
    sub_entry = top["children"][n["sub"].id]
    _check_entry(sub_entry, n["sub"].id, root, root)
    assert set(sub_entry["children"]) == {n["s_start"].id, n["s_act"].id, n["s_end"].id}
    for nid, entry in sub_entry["children"].items():
        _check_entry(entry, nid, root, n["sub"].id)
        assert entry["children"] == {}
    assert top["children"][n["act"].id]["children"] == {}


def test_children_states(engine: rattan.Engine) -> None:
    tree, n = _sub_tree()
    root = run(engine, tree)
    wait_finished(engine, root)
    sub_id = n["sub"].id
    data = api.get_children_states(engine, sub_id).data
    assert list(data) == [sub_id]
    # the top entry's parent_id is its root_id (Quirk keep)
    _check_entry(data[sub_id], sub_id, root, root)
    assert set(data[sub_id]["children"]) == {n["s_start"].id, n["s_act"].id, n["s_end"].id}
    root_children = api.get_children_states(engine, root).data[root]
    _check_entry(root_children, root, root, root)
    assert set(root_children["children"]) == {n["start"].id, n["act"].id, n["sub"].id, n["end"].id}
    leaf = api.get_children_states(engine, n["act"].id).data
    assert leaf[n["act"].id]["children"] == {}
    assert api.get_children_states(engine, "no-such-node").data == {}
    assert api.get_children_states(engine, "no-such-node").result is True


def test_unknown_root_gives_empty_dict(engine: rattan.Engine) -> None:
    res = api.get_pipeline_states(engine, "p-unknown")
    assert (res.result, res.data) == (True, {})
    res = api.get_pipeline_states(engine, "p-unknown", flat_children=False)
    assert (res.result, res.data) == (True, {})


def test_root_flags_are_the_roots_own(engine: rattan.Engine, reg: rattan.Registry) -> None:
    _fail_component(reg)
    start, bad, end = (
        EmptyStartEvent(),
        ServiceActivity(component_code="t_q_fail", error_ignorable=True),
        EmptyEndEvent(),
    )
    start.extend(bad).extend(end)
    root = run(engine, build_tree(start))
    wait_finished(engine, root)
    top = api.get_pipeline_states(engine, root).data[root]
    assert (top["error_ignored"], top["error_ignorable"]) == (False, False)
    child = top["children"][bad.id]
    assert (child["error_ignored"], child["error_ignorable"]) == (True, True)


def test_running_and_failed_entries(engine: rattan.Engine, reg: rattan.Registry) -> None:
    _fail_component(reg)
    start, bad, end = EmptyStartEvent(), ServiceActivity(component_code="t_q_fail"), EmptyEndEvent()
    start.extend(bad).extend(end)
    root = run(engine, build_tree(start))
    wait_state(engine, bad.id, "FAILED")
    wait_idle(engine)
    top = api.get_pipeline_states(engine, root).data[root]
    _check_entry(top, root, root, root, state="RUNNING")
    _check_entry(top["children"][bad.id], bad.id, root, root, state="FAILED")
    assert set(top["children"]) == {start.id, bad.id}
    assert engine.batch_get_state_name([root, start.id, bad.id, end.id, "nope"]) == {
        root: "RUNNING",
        start.id: "FINISHED",
        bad.id: "FAILED",
    }
    assert engine.has_state(bad.id) is True
    assert engine.has_state(end.id) is False
    with pytest.raises(rattan.NotFoundError):
        engine.get_state(end.id)


def test_execution_data_reads(engine: rattan.Engine) -> None:
    tree, n = _sub_tree()
    root = run(engine, tree)
    wait_finished(engine, root)
    act = n["act"].id
    assert api.get_execution_data_inputs(engine, act).data == {"k": 1, "_loop": 1, "_inner_loop": 1}
    assert api.get_execution_data_outputs(engine, act).data == {"_result": True, "_loop": 1, "_inner_loop": 1}
    assert api.get_execution_data(engine, act).data == {
        "inputs": {"k": 1, "_loop": 1, "_inner_loop": 1},
        "outputs": {"_result": True, "_loop": 1, "_inner_loop": 1},
    }
    for nid in (n["start"].id, n["end"].id, "unknown-node"):
        assert (
            api.get_execution_data_inputs(engine, nid).result,
            api.get_execution_data_inputs(engine, nid).data,
        ) == (
            True,
            {},
        )
        assert api.get_execution_data_outputs(engine, nid).data == {}
        res = api.get_execution_data(engine, nid)
        assert res.result is False
        assert isinstance(res.exc, rattan.NotFoundError)
        assert res.data is None
        assert res.message != "success"
    assert api.get_execution_data(engine, n["sub"].id).data == {
        "inputs": {"${p}": "T"},
        "outputs": {"_loop": 1, "_inner_loop": 1},
    }


def test_get_data_shapes(engine: rattan.Engine) -> None:
    tree, n = _sub_tree()
    root = run(engine, tree, root_pipeline_data={"op": "me"})
    wait_finished(engine, root)
    assert api.get_data(engine, n["act"].id).data == {
        "inputs": {"k": {"need_render": False, "value": 1}},
        "outputs": {"_result": "${k_out}"},
    }
    assert api.get_data(engine, n["s_act"].id).data == {
        "inputs": {"v": {"need_render": True, "value": "${p}"}},
        "outputs": {},
    }
    assert api.get_data(engine, n["sub"].id).data == {
        "inputs": {"${p}": {"need_render": True, "value": "${top}"}},
        "outputs": {},
    }
    assert api.get_data(engine, root).data == {
        "inputs": {"op": {"need_render": False, "value": "me"}},
        "outputs": {},
    }
    for nid in (n["start"].id, n["end"].id, n["s_end"].id, "unknown-node"):
        res = api.get_data(engine, nid)
        assert res.result is False, nid
        assert isinstance(res.exc, rattan.NotFoundError)


def test_get_data_gateway_not_found(engine: rattan.Engine) -> None:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    eg = ExclusiveGateway(conditions={0: "1 == 1", 1: "1 == 0"})
    a, b = (
        ServiceActivity(component_code="example_component"),
        ServiceActivity(component_code="example_component"),
    )
    start.extend(eg).connect(a, b).to(eg).converge(end)
    root = run(engine, build_tree(start))
    wait_finished(engine, root)
    res = api.get_data(engine, eg.id)
    assert res.result is False
    assert isinstance(res.exc, rattan.NotFoundError)
    assert api.get_data(engine, root).data == {"inputs": {}, "outputs": {}}


def test_history_shapes(engine: rattan.Engine) -> None:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    a = ServiceActivity(component_code="pipe_example_component")
    a.component.inputs.x = Var(type=Var.PLAIN, value="X")
    eg = ExclusiveGateway(conditions={0: "${n} < 2", 1: "${n} >= 2"})
    start.extend(a).extend(eg)
    eg.connect(a, end)
    tree = build_tree(start, data=Data(inputs={"${n}": NodeOutput(source_act=a.id, source_key="_loop")}))
    root = run(engine, tree, cycle_tolerate=True)
    wait_finished(engine, root)
    full = api.get_node_histories(engine, a.id).data
    short = api.get_node_short_histories(engine, a.id).data
    assert len(full) == len(short) == 1
    h = full[0]
    assert set(h) == HISTORY_KEYS
    assert set(short[0]) == SHORT_HISTORY_KEYS
    assert (h["node_id"], h["loop"], h["retry"], h["skip"]) == (a.id, 1, 0, False)
    assert h["inputs"] == {"x": "X", "_loop": 1, "_inner_loop": 1}
    assert h["outputs"] == {"x": "X", "_result": True, "_loop": 1, "_inner_loop": 1}
    assert VERSION.match(h["version"])
    assert h["version"] != engine.get_state(a.id).version
    assert _utc(h["started_time"]) and _utc(h["archived_time"])
    assert {k: short[0][k] for k in SHORT_HISTORY_KEYS} == {k: h[k] for k in SHORT_HISTORY_KEYS}
    assert api.get_node_histories(engine, a.id, loop=2).data == []
    assert api.get_node_histories(engine, "unknown-node").data == []
    assert api.get_node_short_histories(engine, "unknown-node").data == []


def test_execution_time_shape(engine: rattan.Engine) -> None:
    tree, n = _sub_tree()
    root = run(engine, tree)
    wait_finished(engine, root)
    for nid in (root, n["act"].id):
        data = (
            api.get_pipeline_execution_time(engine, nid).data
            if nid == root
            else api.get_node_execution_time(engine, nid).data
        )
        assert set(data) == {"state", "start_time", "archived_time", "execution_time"}
        assert data["state"] == "FINISHED"
        assert _utc(data["start_time"]) and _utc(data["archived_time"])
        assert isinstance(data["execution_time"], float)
        assert data["execution_time"] >= 0
    res = api.get_node_execution_time(engine, "unknown-node")
    assert res.result is False
    assert isinstance(res.exc, rattan.NotFoundError)


def test_debug_info_context_values(engine: rattan.Engine) -> None:
    tree, _ = _sub_tree()
    root = run(engine, tree)
    wait_finished(engine, root)
    info = api.get_pipeline_debug_info(engine, root).data
    assert set(info) == {"context_values", "processes"}
    values = {cv.key: cv.value for cv in info["context_values"]}
    assert values == {"${top}": "T", "${k_out}": True}
