"""Seeing runs: list_pipelines, wait_pipeline, state queries with detail, is_finished on bad ids."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from engine_helpers import run, wait_for, wait_state

import rattan
from rattan import api
from rattan.builder import (
    ConvergeGateway,
    EmptyEndEvent,
    EmptyStartEvent,
    ParallelGateway,
    ServiceActivity,
    SubProcess,
    build_tree,
)
from rattan.errors import BadInputError, NotFoundError

pytestmark = pytest.mark.timeout(60)

GATE = threading.Event()


class Ok(rattan.Service):
    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.done = True
        return True


class Fail(rattan.Service):
    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.ex_data = "disk quota exceeded\nTraceback: line 2"
        return False


class Raises(rattan.Service):
    def execute(self, data: Any, parent_data: Any) -> bool:
        try:
            {}["account"]
        except KeyError as exc:
            raise RuntimeError("charge refused: card expired\nsee the gateway log") from exc
        return True


class Gated(rattan.Service):
    """Finishes once the test opens GATE (so a run can be caught still moving)."""

    def execute(self, data: Any, parent_data: Any) -> bool:
        return GATE.wait(20)


class Poll(rattan.Service):
    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(30)

    def execute(self, data: Any, parent_data: Any) -> bool:
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        return True


class Waits(rattan.Service):
    __need_schedule__ = True
    interval = None

    def execute(self, data: Any, parent_data: Any) -> bool:
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        self.finish_schedule()
        return True


@pytest.fixture(autouse=True)
def _components(reg: rattan.Registry) -> None:
    GATE.clear()
    for code, service in (("r_ok", Ok), ("r_fail", Fail), ("r_gated", Gated), ("r_poll", Poll),
                          ("r_wait", Waits), ("r_raise", Raises)):  # fmt: skip
        type(f"Comp_{code}", (rattan.Component,), {"name": code, "code": code, "bound_service": service},
             registry=reg)  # fmt: skip


def _line(*codes: str) -> tuple[dict[str, Any], list[str]]:
    """start -> one activity per code -> end; returns the tree and the activities' ids."""
    start = EmptyStartEvent()
    acts = [ServiceActivity(component_code=c, name=f"step {i} ({c})") for i, c in enumerate(codes)]
    node: Any = start
    for act in acts:
        node = node.extend(act)
    node.extend(EmptyEndEvent())
    return build_tree(start), [a.id for a in acts]


def _parallel(left: str, right: str) -> tuple[dict[str, Any], str, str]:
    start, pg, cg, end = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    a, b = ServiceActivity(component_code=left), ServiceActivity(component_code=right)
    start.extend(pg).connect(a, b).to(pg).converge(cg).extend(end)
    return build_tree(start), a.id, b.id


# -- list_pipelines ------------------------------------------------------------------------------
def test_list_pipelines_shows_every_run_newest_first_with_counts_and_failed_nodes(
    engine: rattan.Engine,
) -> None:
    ok_tree, _ = _line("r_ok", "r_ok")
    bad_tree, (first, failed) = _line("r_ok", "r_fail")
    before = datetime.now(UTC)
    ok_id = run(engine, ok_tree)
    bad_id = run(engine, bad_tree)
    wait_state(engine, ok_id, "FINISHED")
    wait_state(engine, failed, "FAILED")

    res = api.list_pipelines(engine)
    assert res.result, res.message
    assert [p["id"] for p in res.data] == [bad_id, ok_id]
    bad, ok = res.data
    assert bad["state"] == "RUNNING" and bad["finished_time"] is None
    assert bad["node_counts"] == {"FINISHED": 2, "FAILED": 1}  # start event, first activity; failed
    assert bad["failed_nodes"] == [failed] and bad["has_failed_nodes"] is True
    assert ok["state"] == "FINISHED" and ok["has_failed_nodes"] is False and ok["failed_nodes"] == []
    assert ok["node_counts"] == {"FINISHED": 4}
    assert (
        before
        <= ok["created_time"]
        <= bad["created_time"]
        <= ok["finished_time"] + (bad["created_time"] - before)
    )
    assert ok["finished_time"] >= ok["started_time"] >= ok["created_time"]
    assert set(bad) == {"id", "state", "created_time", "started_time", "finished_time", "node_counts",
                        "failed_nodes", "has_failed_nodes"}  # fmt: skip
    assert first not in bad["failed_nodes"]


def test_list_pipelines_filters_by_state_failure_and_creation_time_and_pages(engine: rattan.Engine) -> None:
    ids = []
    for _ in range(5):
        tree, _acts = _line("r_ok")
        ids.append(run(engine, tree))
        wait_state(engine, ids[-1], "FINISHED")
        time.sleep(0.002)  # distinct creation times
    bad_tree, (failed,) = _line("r_fail")
    bad_id = run(engine, bad_tree)
    wait_state(engine, failed, "FAILED")
    newest_first = [bad_id, *reversed(ids)]

    assert [p["id"] for p in engine.list_pipelines()] == newest_first
    assert [p["id"] for p in engine.list_pipelines(state="FINISHED")] == list(reversed(ids))
    assert [p["id"] for p in engine.list_pipelines(state="RUNNING")] == [bad_id]
    assert [p["id"] for p in engine.list_pipelines(has_failed_nodes=True)] == [bad_id]
    assert [p["id"] for p in engine.list_pipelines(has_failed_nodes=False)] == list(reversed(ids))
    assert [p["id"] for p in engine.list_pipelines(limit=2)] == newest_first[:2]
    assert [p["id"] for p in engine.list_pipelines(limit=2, offset=2)] == newest_first[2:4]
    assert [p["id"] for p in engine.list_pipelines(limit=2, offset=6)] == []
    third = engine.list_pipelines(limit=1, offset=3)[0]
    assert [p["id"] for p in engine.list_pipelines(created_after=third["created_time"])] == newest_first[:3]
    cut = third["created_time"].timestamp()  # seconds work too
    assert {p["id"] for p in engine.list_pipelines(created_after=cut + 0.001, created_before=cut + 3600)} == (
        set(newest_first[:3])
    )
    assert [p["id"] for p in engine.list_pipelines(created_before=third["created_time"])] == (
        newest_first[4:]
    )


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"state": "DONE"}, "unknown state 'DONE'"),
        ({"limit": 0}, "limit must be between 1 and 1000"),
        ({"limit": 5000}, "limit must be between 1 and 1000"),
        ({"offset": -1}, "offset must be 0 or more"),
        ({"limit": "10"}, "limit must be an integer"),
        ({"has_failed_nodes": "yes"}, "has_failed_nodes must be True, False or None"),
        ({"created_after": "yesterday"}, "created_after must be a datetime or seconds"),
        ({"created_before": float("nan")}, "created_before must be a datetime or seconds"),
        ({"offset": 2**70}, "offset must be 0 or more"),
    ],
)
def test_list_pipelines_refuses_bad_arguments_naming_them(
    engine: rattan.Engine, kwargs: dict[str, Any], says: str
) -> None:
    with pytest.raises(BadInputError, match=says):
        engine.list_pipelines(**kwargs)
    res = api.list_pipelines(engine, **kwargs)
    assert res.result is False and says in res.message and isinstance(res.exc, BadInputError)


def test_list_pipelines_of_an_empty_store_is_empty(engine: rattan.Engine) -> None:
    res = api.list_pipelines(engine)
    assert res.result is True and res.data == []


# -- wait_pipeline -------------------------------------------------------------------------------
def test_wait_pipeline_returns_when_the_pipeline_finishes(engine: rattan.Engine) -> None:
    tree, _acts = _line("r_gated")
    root = run(engine, tree)
    threading.Timer(0.3, GATE.set).start()
    started = time.monotonic()
    res = api.wait_pipeline(engine, root, timeout=20)
    assert res.result, res.message
    assert res.data == {"id": root, "state": "FINISHED", "finished": True, "timed_out": False,
                        "failed_nodes": [], "waiting": {}}  # fmt: skip
    assert 0.25 <= time.monotonic() - started < 10
    assert engine.is_finished(root) is True


def test_wait_pipeline_returns_on_a_failure_that_stops_the_pipeline_with_its_first_error_line(
    engine: rattan.Engine,
) -> None:
    tree, (_ok, failed) = _line("r_ok", "r_fail")
    root = run(engine, tree)
    res = api.wait_pipeline(engine, root, timeout=20)
    assert res.result, res.message
    assert res.data == {
        "id": root, "state": "RUNNING", "finished": False, "timed_out": False,
        "failed_nodes": [{"id": failed, "name": "step 1 (r_fail)", "error": "disk quota exceeded"}],
        "waiting": {failed: {"for": "operator"}},
    }  # fmt: skip
    assert engine.is_finished(root) is False  # a failed node leaves its pipeline RUNNING


def test_wait_pipeline_names_a_raised_exception_by_its_own_line(engine: rattan.Engine) -> None:
    """A traceback's useful line is the exception's, not the frames nor a message's later lines."""
    tree, (failed,) = _line("r_raise")
    root = run(engine, tree)
    res = api.wait_pipeline(engine, root, timeout=20)
    assert res.result, res.message
    assert res.data["failed_nodes"] == [
        {"id": failed, "name": "step 0 (r_raise)", "error": "RuntimeError: charge refused: card expired"}
    ]


def test_wait_pipeline_keeps_waiting_while_another_branch_still_runs(engine: rattan.Engine) -> None:
    tree, failing, gated = _parallel("r_fail", "r_gated")
    root = run(engine, tree)
    wait_state(engine, failing, "FAILED")
    res = api.wait_pipeline(engine, root, timeout=0.3)  # the gated branch is still executing
    assert res.data["timed_out"] is True and res.data["state"] == "RUNNING"
    assert [f["id"] for f in res.data["failed_nodes"]] == [failing]
    GATE.set()
    res = api.wait_pipeline(engine, root, timeout=20)
    assert res.data["timed_out"] is False and res.data["finished"] is False
    assert [f["id"] for f in res.data["failed_nodes"]] == [failing]
    assert engine.get_state(gated).name == "FINISHED"


def test_wait_pipeline_keeps_waiting_while_a_poll_is_armed_and_says_what_it_waits_for(
    engine: rattan.Engine,
) -> None:
    tree, failing, polling = _parallel("r_fail", "r_poll")
    root = run(engine, tree)
    wait_state(engine, failing, "FAILED")
    wait_for(lambda: engine.get_execution_data_outputs(polling))
    res = api.wait_pipeline(engine, root, timeout=0.3)
    assert res.data["timed_out"] is True  # the engine polls again by itself: not stopped yet
    waiting = res.data["waiting"][polling]
    assert waiting["for"] == "poll" and waiting["polls"] >= 1
    assert isinstance(waiting["due_time"], datetime) and waiting["due_time"] > datetime.now(UTC)
    assert res.data["waiting"][failing] == {"for": "operator"}


def test_wait_pipeline_returns_when_the_rest_waits_for_a_callback_and_says_so(engine: rattan.Engine) -> None:
    tree, _failing, waiting = _parallel("r_fail", "r_wait")
    root = run(engine, tree)
    res = api.wait_pipeline(engine, root, timeout=20)
    assert res.data["timed_out"] is False
    version = engine.get_state(waiting).version
    assert res.data["waiting"][waiting] == {"for": "callback", "version": version, "multiple": False}


def test_wait_pipeline_times_out_on_a_paused_pipeline_and_returns_after_a_revoke(
    engine: rattan.Engine,
) -> None:
    tree, (act,) = _line("r_gated")
    root = run(engine, tree)
    wait_state(engine, act, "RUNNING")
    assert api.pause_pipeline(engine, root).result
    res = api.wait_pipeline(engine, root, timeout=0.2)
    assert res.data["timed_out"] is True and res.data["state"] == "SUSPENDED"
    assert res.data["waiting"][root] == {"for": "resume"}
    assert api.revoke_pipeline(engine, root).result
    GATE.set()
    res = api.wait_pipeline(engine, root, timeout=20)
    assert res.data["state"] == "REVOKED" and res.data["timed_out"] is False and res.data["finished"] is False


def test_wait_pipeline_refuses_unknown_ids_nodes_and_bad_timeouts(engine: rattan.Engine) -> None:
    tree, (act,) = _line("r_ok")
    root = run(engine, tree)
    res = api.wait_pipeline(engine, "no-such-pipeline", timeout=1)
    assert res.result is False and isinstance(res.exc, NotFoundError)
    assert "pipeline no-such-pipeline does not exist" in res.message
    res = api.wait_pipeline(engine, act, timeout=1)
    assert res.result is False and isinstance(res.exc, NotFoundError)
    assert f"{act} is a node of pipeline {root}" in res.message
    for bad in (-1, "10", None):
        res = api.wait_pipeline(engine, root, timeout=bad)  # type: ignore[arg-type]
        assert res.result is False and isinstance(res.exc, BadInputError) and "timeout must be" in res.message


def test_wait_pipeline_sees_a_subprocess_failure(engine: rattan.Engine) -> None:
    inner_start, inner_act, inner_end = (
        EmptyStartEvent(),
        ServiceActivity(component_code="r_fail"),
        EmptyEndEvent(),
    )
    inner_start.extend(inner_act).extend(inner_end)
    start, sub, end = EmptyStartEvent(), SubProcess(start=inner_start, name="inner"), EmptyEndEvent()
    start.extend(sub).extend(end)
    root = run(engine, build_tree(start))
    res = api.wait_pipeline(engine, root, timeout=20)
    assert res.data["timed_out"] is False
    assert [f["id"] for f in res.data["failed_nodes"]] == [inner_act.id]
    assert engine.list_pipelines()[0]["failed_nodes"] == [inner_act.id]


# -- state queries -------------------------------------------------------------------------------
def test_state_queries_give_names_types_and_waits_on_request(engine: rattan.Engine) -> None:
    tree, (ok, waiting) = _line("r_ok", "r_wait")
    root = run(engine, tree)
    wait_for(lambda: engine.wait_pipeline(root, 0.01)["waiting"].get(waiting))
    plain = api.get_pipeline_states(engine, root).data[root]
    assert "name" not in plain and "waiting" not in plain["children"][ok]
    detailed = api.get_pipeline_states(engine, root, detail=True).data[root]
    assert (detailed["name"], detailed["type"], detailed["waiting"]) == (None, "Pipeline", None)
    assert detailed["children"][ok]["name"] == "step 0 (r_ok)"
    assert (
        detailed["children"][ok]["type"] == "ServiceActivity" and detailed["children"][ok]["waiting"] is None
    )
    version = engine.get_state(waiting).version
    assert detailed["children"][waiting]["waiting"] == {
        "for": "callback",
        "version": version,
        "multiple": False,
    }
    children = api.get_children_states(engine, root, detail=True).data[root]["children"]
    assert children[waiting]["name"] == "step 1 (r_wait)"


def test_is_finished_refuses_an_unknown_id(engine: rattan.Engine) -> None:
    with pytest.raises(NotFoundError, match="no-such-id"):
        engine.is_finished("no-such-id")
