"""``rattan.plugin_execute``: one component run on its own as a job, on a real SQLite engine.

Each test gets an engine on a fresh database file and its own component registry. Jobs are
followed with bounded waits on their reported state; assertions are on the exact state, outputs and
result messages. The last tests call the functions as bamboo-pipeline code does (positional
arguments, no engine argument) after ``set_engine``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import rattan
from rattan import api as engine_api
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree
from rattan.errors import BadInputError, InvalidOperationError, NotFoundError
from rattan.plugin_execute import State, api
from rattan.plugin_execute.jobs import activity_id
from rattan.results import EngineAPIResult
from waits import wait_for

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0
cancelled_nodes: list[str] = []  # node ids whose service's cancel() ran
cancel_called = threading.Event()
execute_gate = threading.Event()  # holds pe_slow_callback's execute until a test opens it


# -- components ---------------------------------------------------------------------------------------
def make_registry() -> rattan.Registry:
    reg = rattan.Registry("plugin-execute-tests")

    class Copy(rattan.Service):
        """Copies its inputs to its outputs, with what it got as parent data and name; fails when
        the input ``ok`` is false."""

        def execute(self, data: Any, parent_data: Any) -> bool:
            for key, value in data.get_inputs().items():
                if not key.startswith("_"):
                    data.set_outputs(key, value)
            data.set_outputs("parent", dict(parent_data.get_inputs()))
            data.set_outputs("name", self.name)
            return bool(data.get_one_of_inputs("ok", True))

    class Raise(rattan.Service):
        def execute(self, data: Any, parent_data: Any) -> bool:
            raise ValueError("boom from pe_raise")

    class Callback(rattan.Service):
        """Waits for one callback: ``bit`` 0 fails it, anything else finishes it."""

        __need_schedule__ = True

        def execute(self, data: Any, parent_data: Any) -> bool:
            data.set_outputs("executed", True)
            return True

        def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
            data.set_outputs("callback", callback_data)
            return int((callback_data or {}).get("bit", 1)) != 0

        def cancel(self, data: Any, parent_data: Any) -> None:
            cancelled_nodes.append(self.id)
            cancel_called.set()

    class SlowCallback(Callback):
        def execute(self, data: Any, parent_data: Any) -> bool:
            assert execute_gate.wait(WAIT)
            return super().execute(data, parent_data)

    class Poll(rattan.Service):
        """Polls until it has counted to ``until``."""

        __need_schedule__ = True
        interval = rattan.StaticIntervalGenerator(0)

        def execute(self, data: Any, parent_data: Any) -> bool:
            data.set_outputs("count", 0)
            return True

        def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
            count = data.get_one_of_outputs("count") + 1
            data.set_outputs("count", count)
            if count >= data.get_one_of_inputs("until"):
                self.finish_schedule()
            return True

    class Versioned(rattan.Service):
        def execute(self, data: Any, parent_data: Any) -> bool:
            data.set_outputs("ran", "2.0")
            return True

    class CopyComponent(rattan.Component, registry=reg):
        name = code = "pe_copy"
        bound_service = Copy

    class RaiseComponent(rattan.Component, registry=reg):
        name = code = "pe_raise"
        bound_service = Raise

    class CallbackComponent(rattan.Component, registry=reg):
        name = code = "pe_callback"
        bound_service = Callback

    class SlowCallbackComponent(rattan.Component, registry=reg):
        name = code = "pe_slow_callback"
        bound_service = SlowCallback

    class PollComponent(rattan.Component, registry=reg):
        name = code = "pe_poll"
        bound_service = Poll

    class VersionedComponent(rattan.Component, registry=reg):
        name = code = "pe_versioned"
        version = "2.0"
        bound_service = Versioned

    return reg


# -- fixtures and helpers --------------------------------------------------------------------------
@pytest.fixture
def reg() -> rattan.Registry:
    return make_registry()


@pytest.fixture
def make_engine(reg: rattan.Registry, tmp_path: Path) -> Iterator[Callable[..., rattan.Engine]]:
    """Engines on one database file of the test (several: a restart); closed after the test."""
    made: list[rattan.Engine] = []

    def make(**kwargs: Any) -> rattan.Engine:
        engine = rattan.Engine(str(tmp_path / "jobs.db"), components=reg, **kwargs)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close(timeout=10)


@pytest.fixture
def engine(make_engine: Callable[..., rattan.Engine]) -> rattan.Engine:
    return make_engine()


@pytest.fixture
def default_engine(engine: rattan.Engine) -> Iterator[rattan.Engine]:
    """``engine`` set as the module's default engine, unset afterwards."""
    previous = api.set_engine(engine)
    yield engine
    api.set_engine(previous)


def ok(result: EngineAPIResult) -> Any:
    assert result.result is True, f"call failed: {result.message}\n{result.exc_trace}"
    return result.data


def refused(result: EngineAPIResult, exc_type: type[Exception], message: str) -> None:
    assert result.result is False
    assert isinstance(result.exc, exc_type), result.exc
    assert result.message == message
    assert result.data is None


def wait_job(engine: rattan.Engine, job_id: str, state: str) -> dict[str, Any]:
    """Wait until the job is in ``state``; return its state dict."""

    def check() -> dict[str, Any] | None:
        data = ok(api.get_state(job_id, engine=engine))
        assert isinstance(data, dict)
        return data if data["state"] == state else None

    found: dict[str, Any] = wait_for(check, WAIT)
    return found


def start(engine: rattan.Engine, code: str, inputs: dict[str, Any] | None = None, **kwargs: Any) -> str:
    job_id = ok(api.run(code, kwargs.pop("version", "legacy"), inputs or {}, kwargs.pop("contexts", {}),
                        kwargs.pop("runtime_attrs", None), engine=engine))  # fmt: skip
    assert isinstance(job_id, str)
    return job_id


# -- running ------------------------------------------------------------------------------------------
def test_a_component_finishes_with_its_outputs_and_the_job_reports_every_field(engine: rattan.Engine) -> None:
    before = datetime.now(UTC)
    job_id = start(
        engine, "pe_copy", {"a": 1, "text": "${not_rendered}"}, contexts={"project": 7},
        runtime_attrs={"name": "job name", "operator": "alice"},
    )  # fmt: skip
    state = wait_job(engine, job_id, State.FINISHED)
    create_at, finish_at = state.pop("create_at"), state.pop("finish_at")
    assert state == {
        "task_id": job_id,
        "state": "FINISHED",
        "component_code": "pe_copy",
        "version": "legacy",
        "invoke_count": 1,
        "inputs": {"a": 1, "text": "${not_rendered}"},
        # inputs reach execute unrendered; contexts are its parent_data.inputs; the runtime
        # attribute "name" is the service's name
        "outputs": {"a": 1, "text": "${not_rendered}", "parent": {"project": 7}, "name": "job name"},
        "callback_data": {},
        "contexts": {"project": 7},
        "runtime_attrs": {"name": "job name", "operator": "alice"},
    }
    assert create_at.tzinfo is UTC and finish_at.tzinfo is UTC
    assert before.timestamp() - 1 <= create_at.timestamp() <= finish_at.timestamp()


def test_a_job_is_ready_until_an_engine_runs_it(make_engine: Callable[..., rattan.Engine]) -> None:
    idle = make_engine(start=False)  # stores and reads, runs nothing
    job_id = start(idle, "pe_copy", {"a": 1})
    state = ok(api.get_state(job_id, engine=idle))
    assert (state["state"], state["outputs"], state["finish_at"]) == ("READY", {}, None)
    refused(api.forced_fail(job_id, engine=idle), InvalidOperationError,
            f"forced_fail needs a RUNNING job: job {job_id} is READY")  # fmt: skip
    refused(api.callback(job_id, {}, engine=idle), InvalidOperationError,
            f"callback needs a RUNNING job: job {job_id} is READY")  # fmt: skip
    runner = make_engine()  # takes the job over at start
    assert wait_job(runner, job_id, State.FINISHED)["outputs"]["a"] == 1


def test_a_component_version_is_honoured(engine: rattan.Engine) -> None:
    job_id = start(engine, "pe_versioned", version="2.0")
    state = wait_job(engine, job_id, State.FINISHED)
    assert (state["version"], state["outputs"]) == ("2.0", {"ran": "2.0"})


def test_a_polling_component_finishes_after_its_polls(engine: rattan.Engine) -> None:
    job_id = start(engine, "pe_poll", {"until": 3})
    assert wait_job(engine, job_id, State.FINISHED)["outputs"] == {"count": 3}


# -- failure and retry --------------------------------------------------------------------------------
def test_a_failing_component_fails_and_a_retry_with_new_inputs_finishes(engine: rattan.Engine) -> None:
    job_id = start(engine, "pe_copy", {"ok": False, "a": 1})
    failed = wait_job(engine, job_id, State.FAILED)
    assert (failed["invoke_count"], failed["finish_at"]) == (1, None)
    assert failed["outputs"] == {"ok": False, "a": 1, "parent": {}, "name": None}

    ok(api.retry(job_id, inputs={"ok": True, "b": "${x}"}, engine=engine))
    state = wait_job(engine, job_id, State.FINISHED)
    assert state["invoke_count"] == 2
    assert state["inputs"] == {"ok": True, "b": "${x}"}  # replaced, and still not rendered
    assert state["outputs"] == {"ok": True, "b": "${x}", "parent": {}, "name": None}
    assert state["finish_at"] is not None


def test_a_retry_without_inputs_keeps_them(engine: rattan.Engine) -> None:
    job_id = start(engine, "pe_copy", {"ok": False})
    wait_job(engine, job_id, State.FAILED)
    ok(api.retry(job_id, engine=engine))
    wait_for(lambda: ok(api.get_state(job_id, engine=engine))["invoke_count"] == 2, WAIT)
    state = wait_job(engine, job_id, State.FAILED)
    assert (state["invoke_count"], state["inputs"]) == (2, {"ok": False})


def test_an_exception_fails_the_job_with_its_traceback_in_the_outputs(engine: rattan.Engine) -> None:
    job_id = start(engine, "pe_raise")
    outputs = wait_job(engine, job_id, State.FAILED)["outputs"]
    assert list(outputs) == ["ex_data"]
    assert "ValueError: boom from pe_raise" in outputs["ex_data"]


def test_retry_is_refused_unless_failed_and_cannot_change_contexts_or_runtime_attrs(
    engine: rattan.Engine,
) -> None:
    job_id = start(engine, "pe_copy", {"ok": False}, contexts={"c": 1}, runtime_attrs={"r": 1})
    wait_job(engine, job_id, State.FAILED)
    refused(api.retry(job_id, contexts={"c": 2}, engine=engine), BadInputError,
            f"retry of job {job_id} cannot change contexts: they are fixed when the job is run; "
            "run a new job with the new contexts instead")  # fmt: skip
    refused(api.retry(job_id, runtime_attrs={"r": 2}, engine=engine), BadInputError,
            f"retry of job {job_id} cannot change runtime_attrs: they are fixed when the job is run; "
            "run a new job with the new runtime_attrs instead")  # fmt: skip
    refused(api.retry(job_id, inputs=["x"], engine=engine), BadInputError,  # type: ignore[arg-type]
            "inputs must be a dict, not list")  # fmt: skip
    assert ok(api.get_state(job_id, engine=engine))["invoke_count"] == 1  # nothing was retried
    # the same values, or empty ones, mean "unchanged"
    ok(api.retry(job_id, {"ok": True}, {"c": 1}, {}, engine=engine))
    wait_job(engine, job_id, State.FINISHED)
    refused(api.retry(job_id, engine=engine), InvalidOperationError,
            f"retry needs a FAILED job: job {job_id} is FINISHED")  # fmt: skip


# -- callbacks and forced fail ------------------------------------------------------------------------
def test_a_callback_component_waits_then_finishes_with_the_callback_data(engine: rattan.Engine) -> None:
    job_id = start(engine, "pe_callback")
    waiting = wait_job(engine, job_id, State.RUNNING)
    wait_for(lambda: ok(api.get_state(job_id, engine=engine))["outputs"] == {"executed": True}, WAIT)
    assert waiting["callback_data"] == {}
    ok(api.callback(job_id, {"bit": 1, "payload": "hello"}, engine=engine))
    state = wait_job(engine, job_id, State.FINISHED)
    assert state["outputs"] == {"executed": True, "callback": {"bit": 1, "payload": "hello"}}
    assert state["callback_data"] == {"bit": 1, "payload": "hello"}
    refused(api.callback(job_id, {"bit": 1}, engine=engine), InvalidOperationError,
            f"callback needs a RUNNING job: job {job_id} is FINISHED")  # fmt: skip


def test_a_failing_callback_then_a_retry_then_a_callback_finishes(engine: rattan.Engine) -> None:
    job_id = start(engine, "pe_callback")
    wait_job(engine, job_id, State.RUNNING)
    wait_for(lambda: ok(api.get_state(job_id, engine=engine))["outputs"] == {"executed": True}, WAIT)
    ok(api.callback(job_id, {"bit": 0}, engine=engine))
    failed = wait_job(engine, job_id, State.FAILED)
    assert (failed["callback_data"], failed["outputs"]["callback"]) == ({"bit": 0}, {"bit": 0})

    ok(api.retry(job_id, inputs={}, engine=engine))
    wait_for(lambda: ok(api.get_state(job_id, engine=engine))["outputs"] == {"executed": True}, WAIT)
    running = wait_job(engine, job_id, State.RUNNING)
    assert (running["invoke_count"], running["callback_data"]) == (2, {})  # the new pass has none yet

    ok(api.callback(job_id, None, engine=engine))  # None is sent as {}
    state = wait_job(engine, job_id, State.FINISHED)
    assert (state["callback_data"], state["outputs"]["callback"]) == ({}, {})


def test_a_callback_sent_while_execute_runs_is_applied_once_the_component_waits(
    engine: rattan.Engine,
) -> None:
    execute_gate.clear()
    job_id = start(engine, "pe_slow_callback")
    wait_job(engine, job_id, State.RUNNING)
    ok(api.callback(job_id, {"early": True}, engine=engine))
    assert ok(api.get_state(job_id, engine=engine))["outputs"] == {}  # execute has not returned
    execute_gate.set()
    state = wait_job(engine, job_id, State.FINISHED)
    assert state["outputs"] == {"executed": True, "callback": {"early": True}}


def test_a_callback_to_a_polling_component_is_refused(engine: rattan.Engine) -> None:
    job_id = start(engine, "pe_poll", {"until": 10**9})
    wait_for(lambda: ok(api.get_state(job_id, engine=engine))["outputs"].get("count", 0) > 0, WAIT)
    result = api.callback(job_id, {"x": 1}, engine=engine)
    assert (result.result, type(result.exc)) == (False, InvalidOperationError)
    assert "does not take callbacks" in result.message
    assert ok(api.get_state(job_id, engine=engine))["callback_data"] == {}  # put back as it was
    ok(api.forced_fail(job_id, engine=engine))
    wait_job(engine, job_id, State.FAILED)


def test_forced_fail_of_a_waiting_job(engine: rattan.Engine) -> None:
    cancelled_nodes.clear()
    cancel_called.clear()
    job_id = start(engine, "pe_callback")
    wait_job(engine, job_id, State.RUNNING)
    wait_for(lambda: ok(api.get_state(job_id, engine=engine))["outputs"] == {"executed": True}, WAIT)
    ok(api.forced_fail(job_id, ex_data="stopped by the operator", engine=engine))
    state = wait_job(engine, job_id, State.FAILED)
    assert state["outputs"] == {
        "executed": True,
        "ex_data": "stopped by the operator",
        "_forced_failed": True,
    }
    assert cancel_called.wait(WAIT)  # the service is told to stop its external work
    assert cancelled_nodes == [activity_id(job_id)]
    refused(api.callback(job_id, {"bit": 1}, engine=engine), InvalidOperationError,
            f"callback needs a RUNNING job: job {job_id} is FAILED")  # fmt: skip
    refused(api.forced_fail(job_id, engine=engine), InvalidOperationError,
            f"forced_fail needs a RUNNING job: job {job_id} is FAILED")  # fmt: skip
    ok(api.retry(job_id, engine=engine))  # a forced-failed job can run again
    wait_job(engine, job_id, State.RUNNING)


def test_a_revoked_job_reports_failed(engine: rattan.Engine) -> None:
    job_id = start(engine, "pe_callback")
    wait_job(engine, job_id, State.RUNNING)
    ok(engine_api.revoke_pipeline(engine, job_id))  # the job is a pipeline: rattan.api works on it
    assert wait_job(engine, job_id, State.FAILED)["finish_at"] is None
    refused(api.callback(job_id, {}, engine=engine), InvalidOperationError,
            f"callback needs a RUNNING job: job {job_id} is FAILED")  # fmt: skip


def test_a_waiting_job_survives_an_engine_restart(make_engine: Callable[..., rattan.Engine]) -> None:
    first = make_engine()
    job_id = start(first, "pe_callback")
    wait_for(lambda: ok(api.get_state(job_id, engine=first))["outputs"] == {"executed": True}, WAIT)
    first.close(timeout=10)
    second = make_engine()
    assert ok(api.get_state(job_id, engine=second))["state"] == "RUNNING"
    ok(api.callback(job_id, {"bit": 1}, engine=second))
    assert wait_job(second, job_id, State.FINISHED)["outputs"]["callback"] == {"bit": 1}


# -- refusals -----------------------------------------------------------------------------------------
def test_get_state_of_an_unknown_id_or_of_a_pipeline_that_is_no_job(engine: rattan.Engine) -> None:
    refused(api.get_state("p0123", engine=engine), NotFoundError, "plugin execute job 'p0123' does not exist")
    refused(api.get_state(42, engine=engine), NotFoundError,  # type: ignore[arg-type]
            "plugin execute job 42 does not exist")  # fmt: skip
    begin = EmptyStartEvent()
    begin.extend(ServiceActivity(component_code="pe_copy")).extend(EmptyEndEvent())
    tree = build_tree(begin)
    ok(engine_api.run_pipeline(engine, tree))
    for call in (api.get_state, api.callback, api.forced_fail, api.retry):
        refused(call(tree["id"], engine=engine), NotFoundError,
                f"{tree['id']!r} is a pipeline, not a plugin execute job")  # fmt: skip
    job_id = start(engine, "pe_copy")  # a job's activity id is no job either
    activity = activity_id(job_id)
    wait_job(engine, job_id, State.FINISHED)
    refused(api.get_state(activity, engine=engine), NotFoundError,
            f"plugin execute job {activity!r} does not exist")  # fmt: skip


@pytest.mark.parametrize(
    ("code", "version", "named"),
    [("pe_nope", "legacy", "pe_nope"), ("pe_versioned", "legacy", "pe_versioned"), ("pe_copy", "9.9", "9.9")],
)
def test_run_refuses_a_component_that_is_not_registered(
    engine: rattan.Engine, code: str, version: str, named: str
) -> None:
    result = api.run(code, version, {}, {}, engine=engine)
    assert (result.result, result.data) == (False, None)
    assert isinstance(result.exc, BadInputError)
    assert named in result.message and "not registered" in result.message, result.message
    assert "[activity." not in result.message  # the message speaks of the component, not of a tree
    assert engine.events(limit=10) == []  # no pipeline was stored


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "legacy", {}, {}), "component_code must be a non-empty string, not ''"),
        (("pe_copy", None, {}, {}), "version of component pe_copy must be a non-empty string, not None"),
        (("pe_copy", "legacy", None, {}), "inputs must be a dict, not NoneType"),
        (("pe_copy", "legacy", {}, [1]), "contexts must be a dict, not list"),
        (("pe_copy", "legacy", {}, {}, "x"), "runtime_attrs must be a dict, not str"),
    ],
)
def test_run_refuses_bad_input_and_starts_nothing(
    engine: rattan.Engine, args: tuple[Any, ...], message: str
) -> None:
    refused(api.run(*args, engine=engine), BadInputError, message)
    assert engine.events(limit=10) == []


def test_callback_data_must_be_a_dict(engine: rattan.Engine) -> None:
    job_id = start(engine, "pe_callback")
    wait_job(engine, job_id, State.RUNNING)
    refused(api.callback(job_id, [1], engine=engine), BadInputError,  # type: ignore[arg-type]
            "callback_data must be a dict, not list")  # fmt: skip


def test_without_an_engine_every_call_says_how_to_give_one() -> None:
    assert api.get_engine() is None
    message = (
        "no engine for plugin execute: call rattan.plugin_execute.set_engine(engine) once, or pass engine=..."
    )
    refused(api.run("pe_copy", "legacy", {}, {}), InvalidOperationError, message)
    for call in (api.get_state, api.callback, api.forced_fail, api.retry):
        refused(call("p1"), InvalidOperationError, message)


# -- bamboo-pipeline style: positional arguments, the default engine ----------------------------------
def test_calls_written_for_bamboo_pipeline_run_on_the_default_engine(default_engine: rattan.Engine) -> None:
    import rattan.plugin_execute
    from rattan.plugin_execute.contants import State as PeerState

    assert rattan.plugin_execute.get_engine() is default_engine
    assert rattan.plugin_execute.run is api.run and PeerState is State

    task_id = api.run("pe_callback", "legacy", {}, {}).data
    assert api.get_state(task_id).data["state"] in ("READY", "RUNNING")
    wait_for(lambda: api.get_state(task_id).data["outputs"] == {"executed": True}, WAIT)
    assert api.get_state(task_id).data["state"] == "RUNNING"
    assert api.callback(task_id, {"bit": 0}).result is True
    wait_for(lambda: api.get_state(task_id).data["state"] == "FAILED", WAIT)
    assert api.retry(task_id, inputs={}).result is True
    wait_for(lambda: api.get_state(task_id).data["outputs"] == {"executed": True}, WAIT)
    assert api.get_state(task_id).data["state"] == "RUNNING"
    assert api.forced_fail(task_id).result is True
    wait_for(lambda: api.get_state(task_id).data["state"] == "FAILED", WAIT)

    task_id = api.run("pe_copy", "legacy", {"k": "v"}, {"ctx": 1}, {"name": "n"}).data
    wait_for(lambda: api.get_state(task_id).data["state"] == "FINISHED", WAIT)
    assert api.get_state(task_id).data["outputs"] == {"k": "v", "parent": {"ctx": 1}, "name": "n"}
