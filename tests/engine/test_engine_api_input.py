"""Bad input through ``rattan.api.run_pipeline`` (SPEC 7.1, 7.2): refused, nothing stored."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from engine_helpers import all_ids, node_states, run, wait_finished, wait_state

import rattan
from rattan import api
from rattan.builder import (
    ConvergeGateway,
    EmptyEndEvent,
    EmptyStartEvent,
    ParallelGateway,
    ServiceActivity,
    Var,
    build_tree,
)
from rattan.errors import BadInputError, StartPositionInvalidException, TreeInvalidException
from rattan.exceptions import InvalidOperationError

pytestmark = pytest.mark.timeout(30)


def simple_tree(code: str = "pipe_example_component") -> tuple[dict[str, Any], list[Any]]:
    start, a1, a2, end = (
        EmptyStartEvent(),
        ServiceActivity(component_code=code),
        ServiceActivity(component_code="pipe_example_component"),
        EmptyEndEvent(),
    )
    a1.component.inputs.v = Var(type=Var.PLAIN, value=1)
    start.extend(a1).extend(a2).extend(end)
    return build_tree(start), [start, a1, a2, end]


def assert_nothing_stored(engine: rattan.Engine, tree: dict[str, Any]) -> None:
    assert api.get_pipeline_states(engine, tree["id"]).data == {}
    assert engine.get_state_or_none(tree["id"]) is None
    ids = all_ids(tree)
    assert engine.batch_get_state_name(ids) == {}
    assert engine.get_context(tree["id"]) == []
    res = api.get_data(engine, tree["id"])
    assert res.result is False
    assert isinstance(res.exc, rattan.NotFoundError)


def assert_engine_runs(engine: rattan.Engine) -> None:
    tree, nodes = simple_tree()
    root = run(engine, tree)
    wait_finished(engine, root)
    assert node_states(engine, root) == {n.id: "FINISHED" for n in nodes}


def assert_refused(res: rattan.EngineAPIResult, exc_type: type[BaseException]) -> None:
    assert res.result is False
    assert res.message != "success"
    assert isinstance(res.exc, exc_type), repr(res.exc)
    assert res.data is None
    assert res.exc_trace and "Traceback" in res.exc_trace


def test_invalid_tree_dangling_flow(engine: rattan.Engine) -> None:
    tree, nodes = simple_tree()
    flow_id = tree["activities"][nodes[1].id]["outgoing"]
    tree["flows"][flow_id]["target"] = "nowhere"
    res = api.run_pipeline(engine, tree)
    assert_refused(res, TreeInvalidException)
    assert_nothing_stored(engine, tree)
    assert_engine_runs(engine)


def test_invalid_tree_missing_end_event(engine: rattan.Engine) -> None:
    tree, _ = simple_tree()
    root_id = tree["id"]
    del tree["end_event"]
    res = api.run_pipeline(engine, tree)
    assert_refused(res, TreeInvalidException)
    assert api.get_pipeline_states(engine, root_id).data == {}
    assert_engine_runs(engine)


def test_invalid_tree_parallel_without_converge(engine: rattan.Engine) -> None:
    start, pg, end = EmptyStartEvent(), ParallelGateway(), EmptyEndEvent()
    a, b = (
        ServiceActivity(component_code="example_component"),
        ServiceActivity(component_code="example_component"),
    )
    start.extend(pg).connect(a, b)
    a.extend(end)
    b.extend(end)
    tree = build_tree(start)
    res = api.run_pipeline(engine, tree)
    assert_refused(res, TreeInvalidException)
    assert_nothing_stored(engine, tree)
    assert_engine_runs(engine)


@pytest.mark.parametrize("bad", ["not a tree", None, 42, ["list"]])
def test_non_dict_tree(engine: rattan.Engine, bad: Any) -> None:
    res = api.run_pipeline(engine, bad)
    assert_refused(res, TreeInvalidException)
    assert_engine_runs(engine)


def test_same_tree_twice(engine: rattan.Engine) -> None:
    tree, nodes = simple_tree()
    root = run(engine, tree)
    wait_finished(engine, root)
    before = api.get_pipeline_states(engine, root).data
    res = api.run_pipeline(engine, tree)
    assert_refused(res, InvalidOperationError)
    assert isinstance(res.exc, rattan.InvalidOperationError)
    # the first run is untouched
    assert api.get_pipeline_states(engine, root).data == before
    assert node_states(engine, root) == {n.id: "FINISHED" for n in nodes}


def test_reused_node_ids_under_new_root_id(engine: rattan.Engine) -> None:
    tree, _ = simple_tree()
    second = copy.deepcopy(tree)
    root = run(engine, tree)
    wait_finished(engine, root)
    second["id"] = "p" + "0" * 32
    res = api.run_pipeline(engine, second)
    assert_refused(res, rattan.InvalidOperationError)
    assert api.get_pipeline_states(engine, second["id"]).data == {}
    assert_engine_runs(engine)


def test_bad_start_node_id(engine: rattan.Engine) -> None:
    tree, _ = simple_tree()
    res = api.run_pipeline(engine, tree, start_node_id="no-such-node")
    assert_refused(res, StartPositionInvalidException)
    assert_nothing_stored(engine, tree)


def test_start_node_inside_parallel_branch_refused(engine: rattan.Engine) -> None:
    start, pg, cg, end = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    a, b = (
        ServiceActivity(component_code="example_component"),
        ServiceActivity(component_code="example_component"),
    )
    start.extend(pg).connect(a, b).to(pg).converge(cg).extend(end)
    tree = build_tree(start)
    res = api.run_pipeline(engine, tree, start_node_id=a.id)
    assert_refused(res, StartPositionInvalidException)
    assert_nothing_stored(engine, tree)
    assert_engine_runs(engine)


def test_valid_start_node_id_skips_earlier_nodes(engine: rattan.Engine) -> None:
    tree, (_start, _a1, a2, end) = simple_tree()
    root = run(engine, tree, start_node_id=a2.id)
    wait_finished(engine, root)
    assert node_states(engine, root) == {a2.id: "FINISHED", end.id: "FINISHED"}


def test_check_components_unknown_code(engine: rattan.Engine) -> None:
    tree, _ = simple_tree(code="t_not_registered_anywhere")
    res = api.run_pipeline(engine, tree, check_components=True)
    assert_refused(res, BadInputError)
    assert_nothing_stored(engine, tree)
    assert_engine_runs(engine)


def test_check_components_known_codes_run(engine: rattan.Engine) -> None:
    tree, nodes = simple_tree()
    root = run(engine, tree, check_components=True)
    wait_finished(engine, root)
    assert node_states(engine, root) == {n.id: "FINISHED" for n in nodes}


def test_without_check_components_unknown_code_is_accepted(engine: rattan.Engine) -> None:
    # unregistered codes are not checked at run time by default: the node fails when reached
    tree, (start, a1, _, _) = simple_tree(code="t_not_registered_either")
    root = run(engine, tree)
    wait_state(engine, a1.id, "FAILED")
    assert node_states(engine, root) == {start.id: "FINISHED", a1.id: "FAILED"}


@pytest.mark.parametrize("kw", ["root_pipeline_data", "root_pipeline_context", "subprocess_context"])
def test_non_dict_presets_refused(engine: rattan.Engine, kw: str) -> None:
    tree, _ = simple_tree()
    res = api.run_pipeline(engine, tree, **{kw: ["not", "a", "dict"]})
    assert_refused(res, BadInputError)
    assert_nothing_stored(engine, tree)


def test_unknown_options_are_ignored(engine: rattan.Engine) -> None:
    tree, nodes = simple_tree()
    root = run(engine, tree, priority=5, queue="q", some_host_option={"x": 1})
    wait_finished(engine, root)
    assert node_states(engine, root) == {n.id: "FINISHED" for n in nodes}
