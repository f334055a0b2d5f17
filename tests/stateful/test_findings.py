"""Findings of the stateful test (test_random_operations.py), each as the smallest reproduction,
now regression tests: a wrong argument that escaped as a bare Python error (or as a store outage)
instead of a ``BadInputError`` naming it, a wait left live after a retry, and a refusal that
misnamed what it was given. A new finding goes here as a strict xfail, with an entry in
``stateful_helpers.KNOWN`` so the machine keeps searching past it, until it is fixed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from stateful_helpers import REGISTRY, act

import rattan
from rattan import api
from rattan.builder import EmptyEndEvent, EmptyStartEvent, build_tree
from rattan.errors import BadInputError
from rattan.runtime.interface import ScheduleQuery
from waits import wait_finished, wait_for, wait_idle, wait_state

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def engine() -> Iterator[rattan.Engine]:
    eng = rattan.Engine(":memory:", components=REGISTRY)
    yield eng
    eng.close(timeout=10)


def _run(engine: rattan.Engine, *acts: Any) -> str:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    cur: Any = start
    for a in acts:
        cur = cur.extend(a)
    cur.extend(end)
    tree = build_tree(start)
    res = api.run_pipeline(engine, tree)
    assert res.result, res
    return str(tree["id"])


def _waiting(engine: rattan.Engine, node_id: str) -> str:
    """Wait until the node waits on its schedule; return its version."""

    def check() -> str | None:
        st = engine.get_state_or_none(node_id)
        if st is None or st.name != "RUNNING":
            return None
        try:
            engine.get_schedule_with_node_and_version(node_id, st.version)
        except rattan.NotFoundError:
            return None
        return st.version

    return str(wait_for(check))


def _bad_input(res: api.EngineAPIResult, arg: str) -> None:
    assert res.result is False
    assert isinstance(res.exc, BadInputError), repr(res.exc)
    assert arg in res.message, res.message


@pytest.mark.parametrize("values", [None, 5, [1], "abc"], ids=["None", "int", "list-of-int", "str"])
def test_update_context_values_with_wrong_values(engine: rattan.Engine, values: Any) -> None:
    root = _run(engine, act("sf_fail"))
    _bad_input(api.update_context_values(engine, root, values), "context_values")


@pytest.mark.parametrize("loop", [2**70, [], "x"], ids=["huge", "list", "str"])
def test_histories_with_a_wrong_loop(engine: rattan.Engine, loop: Any) -> None:
    node = act("sf_fail")
    _run(engine, node)
    wait_state(engine, node.id, "FAILED")
    _bad_input(api.get_node_histories(engine, node.id, loop), "loop")


def test_list_pipelines_with_a_huge_offset(engine: rattan.Engine) -> None:
    _bad_input(api.list_pipelines(engine, offset=2**70), "offset")


@pytest.mark.parametrize(
    ("stack", "params", "arg"),
    [
        (5, None, "subprocess_stack"),
        ([{}], None, "subprocess_stack"),
        ({"id": "p1"}, None, "subprocess_stack"),
        (None, 5, "parent_params"),
        (None, "x", "parent_params"),
    ],
    ids=["stack-int", "stack-list-of-dict", "stack-dict", "params-int", "params-str"],
)
def test_preview_with_a_wrong_stack_or_params(
    engine: rattan.Engine, stack: Any, params: Any, arg: str
) -> None:
    node = act("sf_ok")
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(node).extend(end)
    tree = build_tree(start)
    res = api.preview_node_inputs(engine, tree, node.id, subprocess_stack=stack, parent_params=params)
    _bad_input(res, arg)


@pytest.mark.parametrize(
    "data",
    [[1], "str", {"_escape_render_keys": 5}, {"_escape_render_keys": [[1]]}],
    ids=["list", "str", "escape-int", "escape-list-of-list"],
)
def test_retry_node_with_wrong_data(engine: rattan.Engine, data: Any) -> None:
    node = act("sf_fail")
    root = _run(engine, node)
    failed = wait_state(engine, node.id, "FAILED")
    res = api.retry_node(engine, node.id, data)
    wait_idle(engine)
    assert engine.get_state(node.id).version == failed.version  # nothing was written
    assert api.retry_node(engine, node.id).result  # and it can still be retried
    wait_finished(engine, root)
    _bad_input(res, "data")


@pytest.mark.parametrize("key", [{}, 5], ids=["dict", "int"])
def test_callback_with_a_wrong_idempotency_key(engine: rattan.Engine, key: Any) -> None:
    node = act("sf_cb")
    _run(engine, node)
    version = _waiting(engine, node.id)
    _bad_input(api.callback(engine, node.id, version, {"ok": True}, key), "idempotency_key")


@pytest.mark.parametrize("ids", [5, None, [{}]], ids=["int", "None", "list-of-dict"])
def test_batch_get_state_name_with_wrong_ids(engine: rattan.Engine, ids: Any) -> None:
    with pytest.raises(BadInputError, match="node_ids"):
        engine.batch_get_state_name(ids)


@pytest.mark.parametrize("call", ["events", "get_context_values"])
def test_engine_reads_with_wrong_arguments(engine: rattan.Engine, call: str) -> None:
    root = _run(engine, act("sf_ok"))
    with pytest.raises(BadInputError):
        if call == "events":
            engine.events(root, "x")  # type: ignore[arg-type]
        else:
            engine.get_context_values(root, 5)  # type: ignore[arg-type]


def test_retry_node_expires_the_failed_schedule(engine: rattan.Engine) -> None:
    node = act("sf_cb")
    root = _run(engine, node)
    first = _waiting(engine, node.id)
    assert api.callback(engine, node.id, first, {"fail": True}).result
    wait_state(engine, node.id, "FAILED")
    assert api.retry_node(engine, node.id).result
    second = wait_for(lambda: (v := _waiting(engine, node.id)) != first and v)
    assert api.callback(engine, node.id, second, {"ok": True}).result
    wait_finished(engine, root)
    wait_idle(engine)
    live = engine.core.store.read(lambda r: r.waits(ScheduleQuery(node_id=node.id, pending=True)))
    assert live == [], live


def test_revoke_pipeline_of_an_activity_says_what_it_is(engine: rattan.Engine) -> None:
    node = act("sf_fail")
    _run(engine, node)
    wait_state(engine, node.id, "FAILED")
    res = api.revoke_pipeline(engine, node.id)
    assert res.result is False
    assert "is a subprocess" not in res.message, res.message
