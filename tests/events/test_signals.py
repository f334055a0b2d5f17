"""Event signals (SPEC 10.1-10.3, Appendix D.9): ``pipeline_event`` receivers, every event type's
payload keys, the setting, receiver isolation, after-commit delivery, ``post_set_state``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from events_helpers import HookLog, act, linear, recording_service, register, wait_for, wait_idle, wait_state

import rattan
from rattan import signals
from rattan.builder import (
    ConditionalParallelGateway,
    ConvergeGateway,
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    Params,
    SubProcess,
    Var,
    build_tree,
)

pytestmark = pytest.mark.timeout(60)

Received = list[tuple[Any, signals.Event, dict[str, Any]]]
NODE = {"root_pipeline_id", "node_id"}

#: SPEC 10.2 + Appendix D.9: exactly these keys per event type.
EXPECTED_KEYS: dict[str, set[str]] = {
    "pre_prepare_run_pipeline": {
        "pipeline",
        "root_pipeline_data",
        "root_pipeline_context",
        "subprocess_context",
    },
    "post_prepare_run_pipeline": {
        "pipeline",
        "root_pipeline_data",
        "root_pipeline_context",
        "subprocess_context",
    },
    "pre_pause_pipeline": {"pipeline_id", "pipeline"},
    "post_pause_pipeline": {"pipeline_id"},
    "pre_resume_pipeline": {"pipeline_id"},
    "post_resume_pipeline": {"pipeline_id"},
    "pre_revoke_pipeline": {"pipeline_id"},
    "post_revoke_pipeline": {"pipeline_id"},
    "pipeline_finish": {"pipeline_id", "root_pipeline_id", "node_id"},
    "pre_pause_node": {"node_id"},
    "post_pause_node": {"node_id"},
    "pre_resume_node": {"node_id"},
    "post_resume_node": {"node_id"},
    "pre_retry_node": {"node_id", "data"},
    "post_retry_node": {"node_id", "data"},
    "pre_retry_subprocess": {"node_id"},
    "post_retry_subprocess": {"node_id"},
    "pre_skip_node": {"node_id"},
    "post_skip_node": {"node_id"},
    "pre_skip_exclusive_gateway": {"node_id", "flow_id"},
    "post_skip_exclusive_gateway": {"node_id", "flow_id"},
    "pre_skip_conditional_parallel_gateway": {"node_id", "flow_ids", "converge_gateway_id"},
    "post_skip_conditional_parallel_gateway": {"node_id", "flow_ids", "converge_gateway_id"},
    "pre_forced_fail_activity": {"node_id", "ex_data"},
    "post_forced_fail_activity": {"node_id", "ex_data", "old_version", "new_version"},
    "pre_callback": {"node_id", "version", "data"},
    "post_callback": {"node_id", "version", "data"},
    "node_enter": NODE,
    "pre_execute": NODE,
    "post_execute": NODE,
    "node_execute_exception": NODE | {"ex_data"},
    "node_execute_fail": NODE,
    "pre_schedule": NODE,
    "post_schedule": NODE,
    "node_schedule_exception": NODE | {"ex_data"},
    "node_schedule_fail": NODE,
    "node_finish": NODE,
}


def _of(received: Received, event_type: str) -> list[dict[str, Any]]:
    return [e.data for _, e, _ in received if e.event_type == event_type]


def _flows(tree: dict[str, Any], gateway_id: str) -> dict[str, str]:
    """``{target node id: flow id}`` of a gateway's outgoing flows."""
    out = tree["gateways"][gateway_id]["outgoing"]
    return {tree["flows"][f]["target"]: f for f in out}


# -- scenarios: each runs on ``engine`` and returns {event_type: [expected data, ...]} --------------
Scenario = Callable[[rattan.Engine, rattan.Registry], dict[str, list[dict[str, Any]]]]


def sc_run(engine: rattan.Engine, reg: rattan.Registry) -> dict[str, list[dict[str, Any]]]:
    register(reg, "s_poll", recording_service(HookLog(), schedule="poll", polls=1))
    a = act("s_poll")
    tree, start, end = linear(a)
    root = str(tree["id"])
    engine.run_pipeline(tree, {"op": "alice"}, {"${ctx}": "c"}, {}, priority=7)
    wait_state(engine, root, "FINISHED")
    node = {"root_pipeline_id": root, "node_id": a.id}
    prep = {
        "pipeline": tree, "root_pipeline_data": {"op": "alice"}, "root_pipeline_context": {"${ctx}": "c"},
        "subprocess_context": {}, "priority": 7,
    }  # fmt: skip
    return {
        "pre_prepare_run_pipeline": [prep],
        "post_prepare_run_pipeline": [prep],
        "node_enter": [node],
        "pre_execute": [node],
        "post_execute": [node],
        "pre_schedule": [node],
        "post_schedule": [node],
        "node_finish": [
            {"root_pipeline_id": root, "node_id": start.id},
            node,
            {"root_pipeline_id": root, "node_id": end.id},
        ],
        "pipeline_finish": [{"pipeline_id": root, "root_pipeline_id": root, "node_id": end.id}],
    }


def sc_execute_fail(engine: rattan.Engine, reg: rattan.Registry) -> dict[str, list[dict[str, Any]]]:
    register(reg, "s_exec_raise", recording_service(HookLog(), execute="raise"))
    a = act("s_exec_raise")
    tree, _, _ = linear(a)
    engine.run_pipeline(tree)
    wait_state(engine, a.id, "FAILED")
    ex_data = engine.get_execution_data_outputs(a.id)["ex_data"]
    assert "ValueError: execute broke" in ex_data
    node = {"root_pipeline_id": tree["id"], "node_id": a.id}
    return {"node_execute_exception": [{**node, "ex_data": ex_data}], "node_execute_fail": [node]}


def sc_schedule_fail(engine: rattan.Engine, reg: rattan.Registry) -> dict[str, list[dict[str, Any]]]:
    register(reg, "s_sch_raise", recording_service(HookLog(), schedule="raise"))
    a = act("s_sch_raise")
    tree, _, _ = linear(a)
    engine.run_pipeline(tree)
    wait_state(engine, a.id, "FAILED")
    ex_data = engine.get_execution_data_outputs(a.id)["ex_data"]
    assert "ValueError: schedule broke" in ex_data
    node = {"root_pipeline_id": tree["id"], "node_id": a.id}
    return {"node_schedule_exception": [{**node, "ex_data": ex_data}], "node_schedule_fail": [node]}


def _waiting(engine: rattan.Engine, reg: rattan.Registry, code: str, *more: Any) -> tuple[Any, str]:
    register(reg, code, recording_service(HookLog(), schedule="callback"))
    gate = act(code)
    tree, _, _ = linear(gate, *more)
    engine.run_pipeline(tree)
    wait_state(engine, gate.id, "RUNNING")
    wait_for(lambda: engine.get_execution_data_outputs(gate.id).get("_result"))
    wait_idle(engine)
    return gate, str(tree["id"])


def sc_pipeline_controls(engine: rattan.Engine, reg: rattan.Registry) -> dict[str, list[dict[str, Any]]]:
    _, root = _waiting(engine, reg, "s_ctl")
    engine.pause_pipeline(root)
    engine.resume_pipeline(root)
    engine.revoke_pipeline(root)
    one = {"pipeline_id": root}
    return {
        "pre_pause_pipeline": [{"pipeline_id": root, "pipeline": root}],
        "post_pause_pipeline": [one],
        "pre_resume_pipeline": [one],
        "post_resume_pipeline": [one],
        "pre_revoke_pipeline": [one],
        "post_revoke_pipeline": [one],
    }


def sc_node_appoint(engine: rattan.Engine, reg: rattan.Registry) -> dict[str, list[dict[str, Any]]]:
    register(reg, "s_plain", recording_service(HookLog()))
    b = act("s_plain")
    _, _root = _waiting(engine, reg, "s_appoint", b)
    engine.pause_node_appoint(b.id)
    engine.resume_node_appoint(b.id)
    one = {"node_id": b.id}
    return {
        "pre_pause_node": [one],
        "post_pause_node": [one],
        "pre_resume_node": [one],
        "post_resume_node": [one],
    }


def sc_retry_skip(engine: rattan.Engine, reg: rattan.Registry) -> dict[str, list[dict[str, Any]]]:
    register(reg, "s_false", recording_service(HookLog(), execute="false"))
    a = act("s_false", x=1)
    tree, _, _ = linear(a)
    engine.run_pipeline(tree)
    wait_state(engine, a.id, "FAILED")
    wait_idle(engine)
    engine.retry_node(a.id, {"x": 2})
    wait_for(lambda: engine.get_state(a.id).retry == 1 and engine.get_state(a.id).name == "FAILED")
    wait_idle(engine)
    engine.skip_node(a.id)
    wait_state(engine, str(tree["id"]), "FINISHED")
    retry = {"node_id": a.id, "data": {"x": 2}}
    return {
        "pre_retry_node": [retry],
        "post_retry_node": [retry],
        "pre_skip_node": [{"node_id": a.id}],
        "post_skip_node": [{"node_id": a.id}],
    }


def sc_retry_subprocess(engine: rattan.Engine, reg: rattan.Registry) -> dict[str, list[dict[str, Any]]]:
    failures = [1]

    class Flaky(rattan.LazyVariable, registry=reg):
        code = "s_flaky"

        def get_value(self) -> Any:
            if failures:
                failures.pop()
                raise RuntimeError("lazy not ready")
            return "ready"

    s_start, s_act, s_end = EmptyStartEvent(), act("pipe_example_component"), EmptyEndEvent()
    s_start.extend(s_act).extend(s_end)
    sub = SubProcess(
        start=s_start,
        data=Data(inputs={"${p}": Var(type=Var.PLAIN, value="default")}),
        params=Params({"${p}": Var(type=Var.LAZY, value="v", custom_type="s_flaky")}),
    )
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(sub).extend(end)
    tree = build_tree(start)
    engine.run_pipeline(tree)
    wait_state(engine, sub.id, "FAILED")
    wait_idle(engine)
    engine.retry_subprocess(sub.id)
    wait_state(engine, str(tree["id"]), "FINISHED")
    return {"pre_retry_subprocess": [{"node_id": sub.id}], "post_retry_subprocess": [{"node_id": sub.id}]}


def sc_skip_gateways(engine: rattan.Engine, reg: rattan.Registry) -> dict[str, list[dict[str, Any]]]:
    start, eg, x, y, cg1, cpg, u, v, w, cg2, end = (
        EmptyStartEvent(), ExclusiveGateway(conditions={0: "${n} == 1", 1: "${n} == 2"}),
        act("pipe_example_component"), act("pipe_example_component"), ConvergeGateway(),
        ConditionalParallelGateway(conditions={0: "${n} == 1", 1: "${n} == 2", 2: "${n} == 4"}),
        act("pipe_example_component"), act("pipe_example_component"), act("pipe_example_component"),
        ConvergeGateway(), EmptyEndEvent(),
    )  # fmt: skip
    start.extend(eg).connect(x, y)
    eg.converge(cg1).extend(cpg).connect(u, v, w)
    cpg.converge(cg2).extend(end)
    tree = build_tree(start, data=Data(inputs={"${n}": Var(type=Var.PLAIN, value=3)}))
    engine.run_pipeline(tree)
    wait_state(engine, eg.id, "FAILED")
    wait_idle(engine)
    flow = _flows(tree, eg.id)[y.id]
    engine.skip_exclusive_gateway(eg.id, flow)
    wait_state(engine, cpg.id, "FAILED")
    wait_idle(engine)
    chosen = [_flows(tree, cpg.id)[u.id], _flows(tree, cpg.id)[w.id]]
    engine.skip_conditional_parallel_gateway(cpg.id, chosen, cg2.id)
    wait_state(engine, str(tree["id"]), "FINISHED")
    eg_data = {"node_id": eg.id, "flow_id": flow}
    cpg_data = {"node_id": cpg.id, "flow_ids": chosen, "converge_gateway_id": cg2.id}
    return {
        "pre_skip_exclusive_gateway": [eg_data],
        "post_skip_exclusive_gateway": [eg_data],
        "pre_skip_conditional_parallel_gateway": [cpg_data],
        "post_skip_conditional_parallel_gateway": [cpg_data],
    }


def sc_forced_fail(engine: rattan.Engine, reg: rattan.Registry) -> dict[str, list[dict[str, Any]]]:
    gate, _ = _waiting(engine, reg, "s_ff")
    old = engine.get_state(gate.id).version
    engine.forced_fail_activity(gate.id, "operator says no")
    new = engine.get_state(gate.id).version
    assert new != old
    return {
        "pre_forced_fail_activity": [{"node_id": gate.id, "ex_data": "operator says no"}],
        "post_forced_fail_activity": [
            {"node_id": gate.id, "ex_data": "operator says no", "old_version": old, "new_version": new}
        ],
    }


def sc_callback(engine: rattan.Engine, reg: rattan.Registry) -> dict[str, list[dict[str, Any]]]:
    gate, root = _waiting(engine, reg, "s_cb")
    version = engine.get_state(gate.id).version
    engine.callback(gate.id, version, {"ok": 1})
    wait_state(engine, root, "FINISHED")
    data = {"node_id": gate.id, "version": version, "data": {"ok": 1}}
    return {"pre_callback": [data], "post_callback": [data]}


SCENARIOS: dict[str, Scenario] = {
    "run": sc_run,
    "execute_fail": sc_execute_fail,
    "schedule_fail": sc_schedule_fail,
    "pipeline_controls": sc_pipeline_controls,
    "node_appoint": sc_node_appoint,
    "retry_skip": sc_retry_skip,
    "retry_subprocess": sc_retry_subprocess,
    "skip_gateways": sc_skip_gateways,
    "forced_fail": sc_forced_fail,
    "callback": sc_callback,
}

EVENT_SCENARIO = {
    **dict.fromkeys(
        ["pre_prepare_run_pipeline", "post_prepare_run_pipeline", "node_enter", "pre_execute", "post_execute",
         "pre_schedule", "post_schedule", "node_finish", "pipeline_finish"], "run"),
    **dict.fromkeys(["node_execute_exception", "node_execute_fail"], "execute_fail"),
    **dict.fromkeys(["node_schedule_exception", "node_schedule_fail"], "schedule_fail"),
    **dict.fromkeys(
        [f"{w}_{op}_pipeline" for op in ("pause", "resume", "revoke") for w in ("pre", "post")],
        "pipeline_controls",
    ),
    **dict.fromkeys(
        [f"{w}_{op}_node" for op in ("pause", "resume") for w in ("pre", "post")], "node_appoint"
    ),
    **dict.fromkeys(["pre_retry_node", "post_retry_node", "pre_skip_node", "post_skip_node"], "retry_skip"),
    **dict.fromkeys(["pre_retry_subprocess", "post_retry_subprocess"], "retry_subprocess"),
    **dict.fromkeys(
        [f"{w}_skip_{g}" for g in ("exclusive_gateway", "conditional_parallel_gateway")
         for w in ("pre", "post")],
        "skip_gateways",
    ),
    **dict.fromkeys(["pre_forced_fail_activity", "post_forced_fail_activity"], "forced_fail"),
    **dict.fromkeys(["pre_callback", "post_callback"], "callback"),
}  # fmt: skip


def test_every_spec_event_type_has_a_scenario() -> None:
    assert set(EVENT_SCENARIO) == set(EXPECTED_KEYS)


@pytest.mark.parametrize("event_type", sorted(EXPECTED_KEYS))
def test_event_payload(
    engine: rattan.Engine, reg: rattan.Registry, received: Received, event_type: str
) -> None:
    expected = SCENARIOS[EVENT_SCENARIO[event_type]](engine, reg)
    wait_idle(engine)
    got = _of(received, event_type)
    want = expected[event_type]
    keys = EXPECTED_KEYS[event_type]
    if event_type.endswith("prepare_run_pipeline"):
        keys = keys | {"priority"}  # the run options ride along (SPEC 10.2)
    for data in got:
        assert set(data) == keys, (event_type, sorted(data))
    assert got == want
    # the same events, in the same order, are in the durable log
    logged = [e["data"] for e in engine.events() if e["event_type"] == event_type]
    if event_type.endswith("prepare_run_pipeline"):
        # the log keeps the tree's id only: the tree itself is stored with the run
        want = [{**w, "pipeline": {"id": w["pipeline"]["id"]}} for w in want]
    assert logged == want
    for sender, event, kwargs in received:
        assert sender is engine
        assert isinstance(event, signals.Event)
        assert event.as_dict() == {"event_type": event.event_type, "data": event.data}
        assert kwargs == {}


def test_events_of_a_run_arrive_in_order(
    engine: rattan.Engine, reg: rattan.Registry, received: Received
) -> None:
    sc_run(engine, reg)
    wait_idle(engine)
    types = [e.event_type for _, e, _ in received]
    assert types == [
        "pre_prepare_run_pipeline", "post_prepare_run_pipeline", "node_finish", "node_enter", "pre_execute",
        "post_execute", "pre_schedule", "post_schedule", "node_finish", "node_finish", "pipeline_finish",
    ]  # fmt: skip
    assert types == [e["event_type"] for e in engine.events()]


# -- the setting ------------------------------------------------------------------------------------
def test_no_signal_when_the_setting_is_off(
    make_engine: Callable[..., rattan.Engine], reg: rattan.Registry
) -> None:
    got: list[Any] = []

    def receiver(sender: Any, event: signals.Event, **kwargs: Any) -> None:
        got.append(event)

    signals.pipeline_event.connect(receiver)
    try:
        engine = make_engine()  # default: enable_pipeline_event_signals=False
        assert engine.settings.enable_pipeline_event_signals is False
        sc_callback(engine, reg)
        wait_idle(engine)
    finally:
        signals.pipeline_event.disconnect(receiver)
    assert got == []
    # the durable log records the events whatever the setting
    assert [e["event_type"] for e in engine.events()].count("post_callback") == 1


def test_only_the_emitting_engine_sends(
    make_engine: Callable[..., rattan.Engine], reg: rattan.Registry, received: Received
) -> None:
    quiet, loud = make_engine(), make_engine(enable_pipeline_event_signals=True)
    register(reg, "s_two", recording_service(HookLog()))
    for eng in (quiet, loud):
        tree, _, _ = linear(act("s_two"))
        eng.run_pipeline(tree)
        wait_state(eng, str(tree["id"]), "FINISHED")
        wait_idle(eng)
    assert received
    assert {sender for sender, _, _ in received} == {loud}


# -- receivers --------------------------------------------------------------------------------------
def test_a_raising_receiver_does_not_affect_the_run(
    engine: rattan.Engine, reg: rattan.Registry, received: Received
) -> None:
    calls: list[str] = []

    def broken(sender: Any, event: signals.Event, **kwargs: Any) -> None:
        calls.append(event.event_type)
        raise RuntimeError("receiver broke")

    signals.pipeline_event.connect(broken)
    try:
        expected = sc_run(engine, reg)
        wait_idle(engine)
    finally:
        signals.pipeline_event.disconnect(broken)
    assert len(calls) == 11
    assert _of(received, "pipeline_finish") == expected["pipeline_finish"]
    assert [e.event_type for _, e, _ in received] == calls


def test_receivers_run_after_the_commit_and_outside_the_transaction(
    engine: rattan.Engine, reg: rattan.Registry
) -> None:
    seen: dict[str, Any] = {}
    follow_up: dict[str, str] = {}
    register(reg, "s_commit", recording_service(HookLog()))
    second, _, _ = linear(act("s_commit"))

    def receiver(sender: Any, event: signals.Event, **kwargs: Any) -> None:
        data = event.data
        if event.event_type == "node_finish" and data["node_id"] == first_act.id:
            seen["node"] = sender.get_state(data["node_id"]).name
        elif event.event_type == "pipeline_finish" and data["pipeline_id"] == first_root:
            seen["root"] = sender.get_state(data["pipeline_id"]).name
            seen["thread"] = threading.current_thread().name
            sender.run_pipeline(second)  # a write: works only outside the engine's transaction
            follow_up["root"] = str(second["id"])
        elif event.event_type == "post_pause_pipeline":
            seen["paused"] = sender.get_state(data["pipeline_id"]).name
        elif event.event_type == "pre_pause_pipeline":
            seen["pre_paused"] = sender.get_state(data["pipeline_id"]).name

    first_act = act("s_commit")
    first, _, _ = linear(first_act)
    first_root = str(first["id"])
    signals.pipeline_event.connect(receiver)
    try:
        engine.run_pipeline(first)
        wait_state(engine, first_root, "FINISHED")
        wait_for(lambda: follow_up)
        wait_state(engine, follow_up["root"], "FINISHED")
        _gate, root = _waiting(engine, reg, "s_commit_gate")
        engine.pause_pipeline(root)
        wait_idle(engine)
    finally:
        signals.pipeline_event.disconnect(receiver)
    assert seen["node"] == "FINISHED"
    assert seen["root"] == "FINISHED"
    assert seen["paused"] == "SUSPENDED"
    assert seen["pre_paused"] == "SUSPENDED"  # pre_* events are also delivered after the commit


def test_disconnect_stops_delivery(engine: rattan.Engine, reg: rattan.Registry) -> None:
    got: list[str] = []

    def receiver(sender: Any, event: signals.Event, **kwargs: Any) -> None:
        got.append(event.event_type)

    signals.pipeline_event.connect(receiver)
    signals.pipeline_event.connect(receiver)  # connecting twice delivers once
    assert signals.pipeline_event.receivers.count(receiver) == 1
    gate, root = _waiting(engine, reg, "s_disc")
    assert got.count("node_enter") == 1
    assert signals.pipeline_event.disconnect(receiver) is True
    assert signals.pipeline_event.disconnect(receiver) is False
    engine.callback(gate.id, engine.get_state(gate.id).version, None)
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    assert "post_callback" not in got
    assert "pipeline_finish" not in got


# -- other notifications ----------------------------------------------------------------------------
def test_post_set_state_arguments_and_real_loop(engine: rattan.Engine) -> None:
    got: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        got.append(kwargs)

    start, a1, eg, end = (
        EmptyStartEvent(), act("pipe_example_component"),
        ExclusiveGateway(conditions={0: "${i} < 3", 1: "${i} >= 3"}), EmptyEndEvent(),
    )  # fmt: skip
    start.extend(a1).extend(eg)
    eg.connect(a1, end)
    from rattan.builder import NodeOutput

    tree = build_tree(start, data=Data(inputs={"${i}": NodeOutput(source_act=a1.id, source_key="_loop")}))
    root = str(tree["id"])
    signals.post_set_state.connect(receiver)
    try:
        engine.run_pipeline(tree, cycle_tolerate=True)
        wait_state(engine, root, "FINISHED")
        wait_idle(engine)
    finally:
        signals.post_set_state.disconnect(receiver)
    mine = [g for g in got if g["root_id"] == root]
    assert mine
    for g in mine:
        assert set(g) == {"node_id", "to_state", "version", "root_id", "parent_id", "loop"}
    a1_writes = [(g["to_state"], g["loop"]) for g in mine if g["node_id"] == a1.id]
    assert a1_writes == [
        ("RUNNING", 1), ("FINISHED", 1), ("RUNNING", 2), ("FINISHED", 2), ("RUNNING", 3), ("FINISHED", 3),
    ]  # fmt: skip
    a1_versions = {g["version"] for g in mine if g["node_id"] == a1.id and g["to_state"] == "FINISHED"}
    assert engine.get_state(a1.id).version in a1_versions
    assert all(g["parent_id"] == root for g in mine if g["node_id"] != root)
    assert [(g["to_state"], g["loop"]) for g in mine if g["node_id"] == root] == [("FINISHED", 1)]


def test_post_set_state_suppressed_for_forced_fail_without_signal(
    engine: rattan.Engine, reg: rattan.Registry
) -> None:
    # SPEC 10.3: the write of forced_fail_activity(..., send_post_set_state_signal=False) is not signalled
    got: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        got.append(kwargs)

    gate, _ = _waiting(engine, reg, "s_ff_quiet")
    signals.post_set_state.connect(receiver)
    try:
        engine.forced_fail_activity(gate.id, "quiet", send_post_set_state_signal=False)
        wait_idle(engine)
    finally:
        signals.post_set_state.disconnect(receiver)
    assert engine.get_state(gate.id).name == "FAILED"
    assert [g for g in got if g["node_id"] == gate.id] == []


def test_post_set_state_sent_for_forced_fail_by_default(engine: rattan.Engine, reg: rattan.Registry) -> None:
    got: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        got.append(kwargs)

    gate, root = _waiting(engine, reg, "s_ff_loud")
    signals.post_set_state.connect(receiver)
    try:
        engine.forced_fail_activity(gate.id, "loud")
        wait_idle(engine)
    finally:
        signals.post_set_state.disconnect(receiver)
    st = engine.get_state(gate.id)
    assert [g for g in got if g["node_id"] == gate.id] == [
        {"node_id": gate.id, "to_state": "FAILED", "version": st.version, "root_id": root, "parent_id": root,
         "loop": 1}
    ]  # fmt: skip


def test_pre_service_execute_and_schedule_signals(engine: rattan.Engine, reg: rattan.Registry) -> None:
    execs: list[dict[str, Any]] = []
    scheds: list[dict[str, Any]] = []

    def on_exec(sender: Any, **kwargs: Any) -> None:
        execs.append({"sender": sender, **kwargs, "inputs": dict(kwargs["data"].inputs)})

    def on_sched(sender: Any, **kwargs: Any) -> None:
        scheds.append({"sender": sender, **kwargs, "outputs": dict(kwargs["data"].outputs)})

    signals.pre_service_execute.connect(on_exec)
    signals.pre_service_schedule.connect(on_sched)
    try:
        gate, root = _waiting(engine, reg, "s_pre_service")
        cid = engine.callback(gate.id, engine.get_state(gate.id).version, {"v": 1})
        wait_state(engine, root, "FINISHED")
        wait_idle(engine)
    finally:
        signals.pre_service_execute.disconnect(on_exec)
        signals.pre_service_schedule.disconnect(on_sched)
    assert [set(e) - {"inputs"} for e in execs] == [{"sender", "service", "data", "parent_data"}]
    assert execs[0]["sender"] is engine
    assert execs[0]["service"].id == gate.id
    assert execs[0]["inputs"] == {"_loop": 1, "_inner_loop": 1}
    assert len(scheds) == 1
    assert set(scheds[0]) - {"outputs"} == {"sender", "service", "data", "parent_data", "callback_data"}
    record = scheds[0]["callback_data"]
    assert (record.id, record.node_id, record.data) == (cid, gate.id, {"v": 1})
    assert scheds[0]["outputs"]["executed"] is True
