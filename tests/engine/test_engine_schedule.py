"""Polling and callback waiting (SPEC 5.3 schedule phase, 8.1).

``rattan.api.callback`` does not exist yet, so the tests that deliver callbacks are not written; the
waiting half of a CALLBACK node is covered.
"""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import inputs, node_states, outputs, run, wait_finished, wait_for, wait_idle, wait_state

import rattan
from rattan import api
from rattan.builder import Data, EmptyEndEvent, EmptyStartEvent, NodeOutput, ServiceActivity, Var, build_tree

pytestmark = pytest.mark.timeout(30)


def _register(reg: rattan.Registry, code: str, service: type[rattan.Service]) -> None:
    type(
        f"Comp_{code}",
        (rattan.Component,),
        {"name": code, "code": code, "bound_service": service},
        registry=reg,
    )


class PollThrice(rattan.Service):
    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(0)

    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.count = 0
        data.outputs.executed = data.inputs.seed
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        count = data.outputs.count + 1
        data.outputs.count = count
        data.outputs[f"step_{count}"] = callback_data
        if count == 3:
            self.finish_schedule()
        return True


def _tree(code: str, **node_inputs: Any) -> tuple[dict[str, Any], Any, Any, Any, Any]:
    start, act, after, end = (
        EmptyStartEvent(),
        ServiceActivity(component_code=code),
        ServiceActivity(component_code="pipe_example_component"),
        EmptyEndEvent(),
    )
    for key, value in node_inputs.items():
        act.component.inputs[key] = Var(type=Var.PLAIN, value=value)
    after.component.inputs.got = Var(type=Var.SPLICE, value="${polled}")
    start.extend(act).extend(after).extend(end)
    tree = build_tree(
        start, data=Data(inputs={"${polled}": NodeOutput(source_act=act.id, source_key="count")})
    )
    return tree, start, act, after, end


def test_poll_finishes_on_third_schedule(engine: rattan.Engine, reg: rattan.Registry) -> None:
    _register(reg, "t_poll3", PollThrice)
    tree, start, act, after, end = _tree("t_poll3", seed="s")
    root = run(engine, tree)
    wait_finished(engine, root)
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        act.id: "FINISHED",
        after.id: "FINISHED",
        end.id: "FINISHED",
    }
    assert outputs(engine, act.id) == {
        "count": 3,
        "executed": "s",
        "step_1": None,
        "step_2": None,
        "step_3": None,
        "_result": True,
        "_loop": 1,
        "_inner_loop": 1,
    }
    assert inputs(engine, act.id) == {"seed": "s", "_loop": 1, "_inner_loop": 1}
    # the output mapping is applied on completion
    assert inputs(engine, after.id)["got"] == 3
    sched = engine.get_schedule_with_node_and_version(act.id, engine.get_state(act.id).version)
    assert (sched.node_id, sched.times, sched.finished, sched.expired) == (act.id, 3, True, False)
    assert sched.type == rattan.ScheduleType.POLL


def test_schedule_record_type_is_schedule_type_member(engine: rattan.Engine, reg: rattan.Registry) -> None:
    # SPEC 7.6: ``type`` is a ``ScheduleType`` member
    _register(reg, "t_poll3b", PollThrice)
    tree, _, act, _, _ = _tree("t_poll3b", seed="s")
    root = run(engine, tree)
    wait_finished(engine, root)
    sched = engine.get_schedule_with_node_and_version(act.id, engine.get_state(act.id).version)
    assert isinstance(sched.type, rattan.ScheduleType)
    assert sched.type is rattan.ScheduleType.POLL


def test_poll_schedule_returning_false_fails(engine: rattan.Engine, reg: rattan.Registry) -> None:
    class PollFail(rattan.Service):
        __need_schedule__ = True
        interval = rattan.StaticIntervalGenerator(0)

        def execute(self, data: Any, parent_data: Any) -> bool:
            data.outputs.count = 0
            return True

        def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
            data.outputs.count += 1
            if data.outputs.count == 2:
                data.outputs.ex_data = "gave up"
                return False
            return True

    _register(reg, "t_pollfail", PollFail)
    tree, start, act, _after, _ = _tree("t_pollfail")
    root = run(engine, tree)
    wait_state(engine, act.id, "FAILED")
    wait_idle(engine)
    assert engine.get_state(root).name == "RUNNING"
    assert node_states(engine, root) == {start.id: "FINISHED", act.id: "FAILED"}
    assert outputs(engine, act.id) == {
        "count": 2,
        "ex_data": "gave up",
        "_result": False,
        "_loop": 1,
        "_inner_loop": 1,
    }
    # outputs are extracted to the context even on failure
    assert {cv.key: cv.value for cv in engine.get_context(root)} == {"${polled}": 2}
    sched = engine.get_schedule_with_node_and_version(act.id, engine.get_state(act.id).version)
    assert (sched.times, sched.finished, sched.expired) == (2, False, False)


def test_poll_schedule_raising_fails_with_traceback(engine: rattan.Engine, reg: rattan.Registry) -> None:
    class PollRaise(rattan.Service):
        __need_schedule__ = True
        interval = rattan.StaticIntervalGenerator(0)

        def execute(self, data: Any, parent_data: Any) -> bool:
            return True

        def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
            raise KeyError("poll exploded")

    _register(reg, "t_pollraise", PollRaise)
    tree, _start, act, _, _ = _tree("t_pollraise")
    root = run(engine, tree)
    wait_state(engine, act.id, "FAILED")
    wait_idle(engine)
    out = outputs(engine, act.id)
    assert out["ex_data"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'poll exploded'" in out["ex_data"]
    assert (out["_result"], out["_loop"], out["_inner_loop"]) == (False, 1, 1)
    assert engine.get_state(root).name == "RUNNING"


def test_poll_failure_error_ignorable_continues(engine: rattan.Engine, reg: rattan.Registry) -> None:
    class PollNo(rattan.Service):
        __need_schedule__ = True
        interval = rattan.StaticIntervalGenerator(0)

        def execute(self, data: Any, parent_data: Any) -> bool:
            data.outputs.count = 7
            return True

        def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
            return False

    _register(reg, "t_pollno", PollNo)
    tree, _start, act, after, _end = _tree("t_pollno")
    tree["activities"][act.id]["error_ignorable"] = True
    root = run(engine, tree)
    wait_finished(engine, root)
    st = engine.get_state(act.id)
    assert (st.name, st.error_ignored) == ("FINISHED", True)
    assert outputs(engine, act.id) == {"count": 7, "_result": False, "_loop": 1, "_inner_loop": 1}
    assert inputs(engine, after.id)["got"] == 7


def test_callback_node_waits_running(engine: rattan.Engine, reg: rattan.Registry) -> None:
    class WaitCallback(rattan.Service):
        __need_schedule__ = True

        def execute(self, data: Any, parent_data: Any) -> bool:
            data.outputs.started = True
            return True

        def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
            data.outputs.cb = callback_data
            return True

    _register(reg, "t_wait_cb", WaitCallback)
    tree, start, act, _after, _ = _tree("t_wait_cb")
    root = run(engine, tree)
    st = wait_state(engine, act.id, "RUNNING")
    wait_for(lambda: outputs(engine, act.id).get("started") is True)
    wait_idle(engine)
    sched = engine.get_schedule_with_node_and_version(act.id, st.version)
    assert sched.type == rattan.ScheduleType.CALLBACK
    assert (sched.times, sched.finished, sched.expired) == (0, False, False)
    # nothing is polled: the node keeps waiting
    assert engine.get_state(act.id).name == "RUNNING"
    assert engine.get_state(root).name == "RUNNING"
    assert node_states(engine, root) == {start.id: "FINISHED", act.id: "RUNNING"}
    assert outputs(engine, act.id) == {"started": True, "_result": True, "_loop": 1, "_inner_loop": 1}
    entry = api.get_pipeline_states(engine, root).data[root]["children"][act.id]
    assert entry["version"] == st.version
    assert entry["archived_time"] is None
