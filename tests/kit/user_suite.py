"""A user's test module for the pytest plugin: ``test_plugin.py`` copies it into an empty folder and
runs pytest there, so only the installed ``pytest11`` entry point can provide the ``engine``
fixture (this repository's conftest files play no part). The last test fails on purpose, to show
the plugin's failure message."""

from __future__ import annotations

from typing import Any

import pytest

import rattan
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, Var, build_tree
from rattan.testing import (
    advance,
    assert_events,
    assert_histories,
    assert_outputs,
    assert_states,
    run_and_wait,
    wait_state,
)

registry = rattan.Registry("plugin-check")


class TickService(rattan.Service):
    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(60)

    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        data.set_outputs("polls", 0)
        return True

    def schedule(
        self, data: rattan.DataObject, parent_data: rattan.DataObject, callback_data: Any = None
    ) -> bool:
        data.outputs.polls += 1
        if data.outputs.polls == 3:
            self.finish_schedule()
        return True


class WaitService(rattan.Service):
    __need_schedule__ = True

    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        return True

    def schedule(
        self, data: rattan.DataObject, parent_data: rattan.DataObject, callback_data: Any = None
    ) -> bool:
        data.set_outputs("answer", callback_data["answer"])
        return True


class FlakyService(rattan.Service):
    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        if not data.get_one_of_inputs("ok"):
            data.outputs.ex_data = "not ok"
            return False
        data.set_outputs("done", True)
        return True


class Tick(rattan.Component, registry=registry):
    name = code = "tick"
    bound_service = TickService


class Wait(rattan.Component, registry=registry):
    name = code = "wait"
    bound_service = WaitService


class Flaky(rattan.Component, registry=registry):
    name = code = "flaky"
    bound_service = FlakyService


@pytest.fixture
def rattan_components() -> rattan.Registry:
    return registry


def line(act: ServiceActivity) -> dict[str, Any]:
    start = EmptyStartEvent()
    start.extend(act).extend(EmptyEndEvent())
    return build_tree(start)


def test_polls_follow_the_fake_clock(engine: rattan.Engine, tmp_path: Any) -> None:
    act = ServiceActivity(component_code="tick")
    tree = line(act)
    engine.run_pipeline(tree)
    wait_state(engine, act.id, "RUNNING")
    engine.wait_idle()
    assert_outputs(engine, act.id, {"polls": 1})
    advance(engine, 59.9)
    assert_outputs(engine, act.id, {"polls": 1})
    advance(engine, 0.1)
    assert_outputs(engine, act.id, {"polls": 2})
    advance(engine, 60)
    assert engine.wait_pipeline(tree["id"], 10)["state"] == "FINISHED"
    assert_outputs(engine, act.id, {"polls": 3})
    states = assert_states(engine, tree["id"], {tree["id"]: "FINISHED", act.id: "FINISHED"})
    assert len(states) == 4
    assert (tmp_path / "rattan.db").exists()


def test_a_callback_completes_the_node(engine: rattan.Engine) -> None:
    act = ServiceActivity(component_code="wait")
    tree = line(act)
    engine.run_pipeline(tree)
    wait_state(engine, act.id, "RUNNING")
    engine.wait_idle()
    engine.callback(act.id, engine.get_state(act.id).version, {"answer": 42})
    assert engine.wait_pipeline(tree["id"], 10)["state"] == "FINISHED"
    assert_outputs(engine, act.id, {"answer": 42})
    assert_events(
        engine, tree["id"],
        ["node_enter", "pre_execute", "post_execute", "pre_callback", "post_callback", "pre_schedule",
         "post_schedule", "node_finish"],
        node_id=act.id,
    )  # fmt: skip
    assert_events(engine, tree["id"], ["pipeline_finish"], types={"pipeline_finish"})


def test_a_retry_leaves_a_history(engine: rattan.Engine) -> None:
    act = ServiceActivity(component_code="flaky")
    act.component.inputs.ok = Var(type=Var.PLAIN, value=False)
    tree = line(act)
    assert [n["id"] for n in run_and_wait(engine, tree)["failed_nodes"]] == [act.id]
    engine.retry_node(act.id, {"ok": True})
    assert engine.wait_pipeline(tree["id"], 10)["state"] == "FINISHED"
    assert_histories(
        engine, act.id,
        [{"retry": 0, "skip": False, "loop": 1,
          "outputs": {"ex_data": "not ok", "_result": False, "_loop": 1, "_inner_loop": 1}}],
    )  # fmt: skip
    assert_outputs(engine, act.id, {"done": True})
    assert_events(engine, tree["id"], ["node_execute_fail", "post_retry_node"], node_id=act.id,
                  types={"node_execute_fail", "post_retry_node"})  # fmt: skip


@pytest.mark.rattan(enable_example_components=False)
def test_the_marker_passes_engine_options(engine: rattan.Engine, rattan_clock: Any) -> None:
    assert engine.settings.enable_example_components is False
    assert engine.clock is rattan_clock
    assert rattan_clock.now() == 1_750_000_000.0


def test_a_wrong_state_fails_with_a_readable_difference(engine: rattan.Engine) -> None:
    act = ServiceActivity(component_code="flaky")
    act.component.inputs.ok = Var(type=Var.PLAIN, value=True)
    tree = line(act)
    run_and_wait(engine, tree)
    assert_states(engine, tree["id"], {act.id: "FAILED", "no-such-node": "FINISHED"})
