"""Bad ids and non-JSON values given to ``rattan.Engine`` and ``rattan.api`` (issue 13): each is
refused with a ``rattan.errors`` type whose message names the argument, before anything changes,
and the run they aimed at still finishes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from control_helpers import act, chain, refused, run, wait_finished, wait_schedule

import rattan
from rattan import api
from rattan.errors import BadInputError, InvalidOperationError, NotFoundError

pytestmark = pytest.mark.timeout(60)

# (Engine method, rattan.api function) of one call with the id as first argument after the engine
Call = Callable[[Any, Any], Any]

NODE_CONTROLS: dict[str, Call] = {
    "retry_node": lambda e, i: e.retry_node(i),
    "skip_node": lambda e, i: e.skip_node(i),
    "forced_fail_activity": lambda e, i: e.forced_fail_activity(i),
    "pause_node_appoint": lambda e, i: e.pause_node_appoint(i),
    "resume_node_appoint": lambda e, i: e.resume_node_appoint(i),
    "callback": lambda e, i: e.callback(i, "v-any", {"x": 1}),
}
API_CONTROLS: dict[str, Call] = {
    "retry_node": lambda e, i: api.retry_node(e, i),
    "skip_node": lambda e, i: api.skip_node(e, i),
    "forced_fail_activity": lambda e, i: api.forced_fail_activity(e, i, ""),
    "pause_node_appoint": lambda e, i: api.pause_node_appoint(e, i),
    "resume_node_appoint": lambda e, i: api.resume_node_appoint(e, i),
    "callback": lambda e, i: api.callback(e, i, "v-any", {"x": 1}),
}
# reads taking one node or pipeline id: (Engine call, api call or None, argument name)
QUERIES: dict[str, tuple[Call, Call | None, str]] = {
    "get_state": (lambda e, i: e.get_state(i), None, "node_id"),
    "get_execution_data": (
        lambda e, i: e.get_execution_data(i),
        lambda e, i: api.get_execution_data(e, i),
        "node_id",
    ),
    "get_pipeline_states": (
        lambda e, i: e.get_pipeline_states(i),
        lambda e, i: api.get_pipeline_states(e, i),
        "root_id",
    ),
    "get_children_states": (
        lambda e, i: e.get_children_states(i),
        lambda e, i: api.get_children_states(e, i),
        "node_id",
    ),
    "wait_pipeline": (
        lambda e, i: e.wait_pipeline(i, timeout=0.1),
        lambda e, i: api.wait_pipeline(e, i, timeout=0.1),
        "pipeline_id",
    ),
    "get_node_debug_info": (
        lambda e, i: e.get_node_debug_info(i),
        lambda e, i: api.get_node_debug_info(e, i),
        "node_id",
    ),
    "get_data": (lambda e, i: e.get_data(i), lambda e, i: api.get_data(e, i), "node_id"),
    "get_node_histories": (
        lambda e, i: e.get_node_histories(i),
        lambda e, i: api.get_node_histories(e, i),
        "node_id",
    ),
    "get_pipeline_execution_time": (
        lambda e, i: e.get_pipeline_execution_time(i),
        lambda e, i: api.get_pipeline_execution_time(e, i),
        "pipeline_id",
    ),
    "get_schedule_with_node_and_version": (
        lambda e, i: e.get_schedule_with_node_and_version(i),
        None,
        "node_id",
    ),
    "is_finished": (lambda e, i: e.is_finished(i), None, "root_id"),
    "has_state": (lambda e, i: e.has_state(i), None, "node_id"),
    "events": (lambda e, i: e.events(i), None, "pipeline_id"),
}
WRONG_TYPES: dict[str, Any] = {"dict": {"id": "p1", "activities": {}}, "int": 5, "empty": ""}
UNKNOWN = "no-such-node"


@pytest.fixture
def waiting(engine: rattan.Engine) -> tuple[rattan.Engine, str, str, str]:
    """A run whose callback node waits: ``(engine, root id, node id, version)``."""
    cb = act("c_cb")
    tree, _, _ = chain(cb, act("c_ok"))
    root = run(engine, tree)
    return engine, root, cb.id, wait_schedule(engine, cb.id)


def finishes(engine: rattan.Engine, root: str, node_id: str, version: str) -> None:
    """The run was not harmed: its node still takes a callback and the run finishes."""
    assert engine.get_state(root).name == "RUNNING"
    assert engine.get_state(node_id).version == version
    engine.callback(node_id, version, {"ok": True})
    wait_finished(engine, root)


# -- the six node controls ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(NODE_CONTROLS))
def test_root_id_to_node_control_is_invalid_operation(
    name: str, waiting: tuple[rattan.Engine, str, str, str]
) -> None:
    engine, root, node_id, version = waiting
    with pytest.raises(InvalidOperationError) as info:
        NODE_CONTROLS[name](engine, root)
    msg = str(info.value)
    assert root in msg and "root pipeline of a run" in msg and name in msg
    assert "use " in msg  # says which call to use instead
    res = API_CONTROLS[name](engine, root)
    assert refused(res, InvalidOperationError) == msg and res.message == msg
    finishes(engine, root, node_id, version)


def test_root_id_message_names_the_pipeline_call(waiting: tuple[rattan.Engine, str, str, str]) -> None:
    engine, root, node_id, version = waiting
    with pytest.raises(InvalidOperationError, match="use pause_pipeline"):
        engine.pause_node_appoint(root)
    with pytest.raises(InvalidOperationError, match="use resume_pipeline"):
        engine.resume_node_appoint(root)
    with pytest.raises(InvalidOperationError, match="revoke_pipeline"):
        engine.forced_fail_activity(root)
    finishes(engine, root, node_id, version)


@pytest.mark.parametrize("name", sorted(NODE_CONTROLS))
def test_unknown_id_to_node_control_is_not_found(
    name: str, waiting: tuple[rattan.Engine, str, str, str]
) -> None:
    engine, root, node_id, version = waiting
    with pytest.raises(NotFoundError, match=UNKNOWN):
        NODE_CONTROLS[name](engine, UNKNOWN)
    assert UNKNOWN in refused(API_CONTROLS[name](engine, UNKNOWN), NotFoundError)
    finishes(engine, root, node_id, version)


@pytest.mark.parametrize("kind", [*WRONG_TYPES, "None"])
@pytest.mark.parametrize("name", sorted(NODE_CONTROLS))
def test_wrong_type_to_node_control_is_bad_input(
    name: str, kind: str, waiting: tuple[rattan.Engine, str, str, str]
) -> None:
    engine, root, node_id, version = waiting
    value = WRONG_TYPES.get(kind)
    with pytest.raises(BadInputError, match="node_id must be a non-empty str id") as info:
        NODE_CONTROLS[name](engine, value)
    assert "store" not in str(info.value)  # not a driver's binding error
    res = API_CONTROLS[name](engine, value)
    assert "node_id must be a non-empty str id" in refused(res, BadInputError)
    finishes(engine, root, node_id, version)


# -- reads taking an id --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(WRONG_TYPES))
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_wrong_type_to_query_is_bad_input(
    name: str, kind: str, waiting: tuple[rattan.Engine, str, str, str]
) -> None:
    engine, root, node_id, version = waiting
    call, api_call, arg = QUERIES[name]
    with pytest.raises(BadInputError, match=f"{arg} must be a non-empty str id, got"):
        call(engine, WRONG_TYPES[kind])
    if api_call is not None:
        assert arg in refused(api_call(engine, WRONG_TYPES[kind]), BadInputError)
    finishes(engine, root, node_id, version)


@pytest.mark.parametrize("name", sorted(n for n in QUERIES if n != "events"))
def test_none_to_query_is_bad_input(name: str, waiting: tuple[rattan.Engine, str, str, str]) -> None:
    engine, root, node_id, version = waiting
    call, _, arg = QUERIES[name]
    with pytest.raises(BadInputError, match=f"{arg} must be a non-empty str id, got NoneType"):
        call(engine, None)
    finishes(engine, root, node_id, version)


def test_events_take_none_for_every_pipeline(waiting: tuple[rattan.Engine, str, str, str]) -> None:
    engine, root, _, _ = waiting
    assert any(e["root_id"] == root for e in engine.events(None))


def test_root_id_to_node_debug_info(waiting: tuple[rattan.Engine, str, str, str]) -> None:
    engine, root, node_id, version = waiting
    with pytest.raises(InvalidOperationError, match="use get_pipeline_debug_info") as info:
        engine.get_node_debug_info(root)
    assert root in str(info.value)
    assert refused(api.get_node_debug_info(engine, root), InvalidOperationError) == str(info.value)
    finishes(engine, root, node_id, version)


@pytest.mark.parametrize(
    ("name", "exc"),
    [
        ("get_state", NotFoundError),
        ("get_execution_data", NotFoundError),
        ("wait_pipeline", NotFoundError),
        ("get_node_debug_info", NotFoundError),
        ("get_data", NotFoundError),
        ("get_pipeline_execution_time", NotFoundError),
        ("get_schedule_with_node_and_version", NotFoundError),
        ("is_finished", NotFoundError),
    ],
)
def test_unknown_id_to_query_is_not_found(
    name: str, exc: type[Exception], waiting: tuple[rattan.Engine, str, str, str]
) -> None:
    engine, root, node_id, version = waiting
    call, api_call, _ = QUERIES[name]
    with pytest.raises(exc, match=UNKNOWN):
        call(engine, UNKNOWN)
    if api_call is not None:
        assert UNKNOWN in refused(api_call(engine, UNKNOWN), exc)
    finishes(engine, root, node_id, version)


def test_list_pipelines_wrong_state_type(waiting: tuple[rattan.Engine, str, str, str]) -> None:
    engine, root, node_id, version = waiting
    with pytest.raises(BadInputError, match="unknown state"):
        engine.list_pipelines(state={"a": 1})  # type: ignore[arg-type]
    assert "unknown state" in refused(api.list_pipelines(engine, state={"a": 1}), BadInputError)
    finishes(engine, root, node_id, version)


# -- values that are not JSON ---------------------------------------------------------------------------
def test_non_json_callback_data(waiting: tuple[rattan.Engine, str, str, str]) -> None:
    engine, root, node_id, version = waiting
    with pytest.raises(BadInputError, match=r"callback data holds an object value"):
        engine.callback(node_id, version, data=object())
    res = api.callback(engine, node_id, version, {"when": object()})
    assert refused(res, BadInputError).startswith("callback data['when'] holds an object value: ")
    assert engine.events(root) and not [e for e in engine.events(root) if e["event_type"] == "pre_callback"]
    finishes(engine, root, node_id, version)


def test_non_json_retry_data(waiting: tuple[rattan.Engine, str, str, str]) -> None:
    engine, root, node_id, version = waiting
    with pytest.raises(BadInputError, match=r"retry_node data\[.*\] holds an? "):
        engine.retry_node(node_id, data={"x": object()})
    finishes(engine, root, node_id, version)


@pytest.mark.parametrize("arg", ["root_pipeline_data", "root_pipeline_context", "subprocess_context"])
def test_non_json_run_pipeline_data(arg: str, engine: rattan.Engine) -> None:
    tree, _, _ = chain(act("c_ok"))
    with pytest.raises(BadInputError, match=rf"{arg}.* holds an object value"):
        engine.run_pipeline(tree, **{arg: {"a": object()}})
    res = api.run_pipeline(engine, tree, **{arg: {"a": object()}})
    assert refused(res, BadInputError).startswith(f"{arg}['a'] holds an object value: ")
    assert not engine.has_state(tree["id"])  # nothing stored
    assert engine.list_pipelines() == []
    run(engine, tree)  # the same tree then runs
    wait_finished(engine, tree["id"])


@pytest.mark.parametrize(
    ("call", "kwargs", "named"),
    [
        ("wait_pipeline", {"timeout": float("nan")}, "timeout must be a number of seconds >= 0"),
        ("wait_pipeline", {"timeout": -1}, "timeout must be a number of seconds >= 0"),
        ("get_pipeline_states", {"flat_children": "x"}, "flat_children must be True or False"),
        ("get_node_histories", {"loop": 2**70}, "loop must be an int loop number"),
    ],
)
def test_numbers_and_flags_are_checked_by_name(
    waiting: tuple[rattan.Engine, str, str, str], call: str, kwargs: dict[str, Any], named: str
) -> None:
    engine, root, node_id, version = waiting
    target = node_id if call == "get_node_histories" else root
    with pytest.raises(BadInputError, match=named):
        getattr(engine, call)(target, **kwargs)
    res = getattr(api, call)(engine, target, **kwargs)
    assert refused(res, BadInputError).startswith(named.split(" must")[0])
    finishes(engine, root, node_id, version)
