"""Node hooks (SPEC 9, seed 000): order on every path, callback data, read-only operation hooks,
data saving of main-path hooks, swallowed hook errors, opt-in only."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from events_helpers import (
    EXECUTE,
    SCHEDULE,
    HookLog,
    act,
    linear,
    recording_service,
    register,
    wait_for,
    wait_idle,
    wait_state,
)

import rattan
from rattan.builder import (
    ConvergeGateway,
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    ParallelGateway,
    SubProcess,
    build_tree,
)

pytestmark = pytest.mark.timeout(60)

ENTER = ["node_enter", "pre_execute", EXECUTE]
OK_EXECUTE = [*ENTER, "post_execute"]
POLL = ["pre_schedule", SCHEDULE, "post_schedule"]


def _setup(reg: rattan.Registry, code: str, **kwargs: Any) -> HookLog:
    log = HookLog()
    register(reg, code, recording_service(log, **kwargs))
    return log


def _run(engine: rattan.Engine, *acts: Any, **options: Any) -> str:
    tree, _, _ = linear(*acts)
    engine.run_pipeline(tree, **options)
    return str(tree["id"])


def _until(log: HookLog, node_id: str, last: str) -> list[str]:
    """Wait until ``last`` was called for ``node_id`` and the engine is idle; return the names."""
    wait_for(lambda: last in log.names(node_id))
    return log.names(node_id)


# -- order ------------------------------------------------------------------------------------------
def test_successful_polling_node_order_and_snapshots(engine: rattan.Engine, reg: rattan.Registry) -> None:
    log = _setup(reg, "h_poll", schedule="poll", polls=2)
    a = act("h_poll", x=1)
    root = _run(engine, a)
    wait_state(engine, root, "FINISHED")
    assert _until(log, a.id, "node_finish") == [*OK_EXECUTE, *POLL, *POLL, "node_finish"]
    wait_idle(engine)
    assert log.names() == log.names(a.id)
    calls = {(c[1], i): c for i, c in enumerate(log.calls)}
    inputs = {"x": 1, "_loop": 1, "_inner_loop": 1}
    first = {name: c for (name, _), c in reversed(list(calls.items()))}
    assert first["node_enter"][2:] == (inputs, {}, None)
    assert first["pre_execute"][2:] == (inputs, {}, None)
    assert first["post_execute"][2:] == (inputs, {"executed": True}, None)
    stored = {"executed": True, "_result": True, "_loop": 1, "_inner_loop": 1}
    assert first["pre_schedule"][2:] == (inputs, stored, None)
    assert first["post_schedule"][2:] == (inputs, {**stored, "polls": 1}, None)
    assert first["node_finish"][2:] == (inputs, {**stored, "polls": 2}, None)
    assert engine.get_execution_data_outputs(a.id) == {**stored, "polls": 2}


def test_execute_without_schedule_order(engine: rattan.Engine, reg: rattan.Registry) -> None:
    log = _setup(reg, "h_plain")
    a = act("h_plain")
    root = _run(engine, a)
    wait_state(engine, root, "FINISHED")
    assert _until(log, a.id, "node_finish") == [*OK_EXECUTE, "node_finish"]


def test_execute_raising_not_ignored(engine: rattan.Engine, reg: rattan.Registry) -> None:
    log = _setup(reg, "h_exec_raise", execute="raise")
    a = act("h_exec_raise")
    _run(engine, a)
    wait_state(engine, a.id, "FAILED")
    assert _until(log, a.id, "node_execute_fail") == [*ENTER, "node_execute_exception", "node_execute_fail"]
    wait_idle(engine)
    assert log.names(a.id) == [*ENTER, "node_execute_exception", "node_execute_fail"]
    exc = log.of("node_execute_exception")[0]
    assert exc[3]["executed"] is True
    assert "ValueError: execute broke" in exc[3]["ex_data"]
    fail = log.of("node_execute_fail")[0]
    assert fail[3]["_result"] is False
    assert "ValueError: execute broke" in fail[3]["ex_data"]


def test_execute_raising_ignored(engine: rattan.Engine, reg: rattan.Registry) -> None:
    log = _setup(reg, "h_exec_ign", execute="raise")
    a = act("h_exec_ign", error_ignorable=True)
    root = _run(engine, a)
    wait_state(engine, root, "FINISHED")
    assert _until(log, a.id, "node_finish") == [*ENTER, "node_execute_exception", "node_finish"]
    wait_idle(engine)
    assert "node_execute_fail" not in log.names()
    assert engine.get_state(a.id).error_ignored is True


def test_execute_returning_false(engine: rattan.Engine, reg: rattan.Registry) -> None:
    log = _setup(reg, "h_exec_false", execute="false")
    a = act("h_exec_false")
    _run(engine, a)
    wait_state(engine, a.id, "FAILED")
    assert _until(log, a.id, "node_execute_fail") == [*ENTER, "node_execute_fail"]
    wait_idle(engine)
    assert log.names(a.id) == [*ENTER, "node_execute_fail"]


def test_execute_returning_false_ignored(engine: rattan.Engine, reg: rattan.Registry) -> None:
    log = _setup(reg, "h_exec_false_ign", execute="false")
    a = act("h_exec_false_ign", error_ignorable=True)
    root = _run(engine, a)
    wait_state(engine, root, "FINISHED")
    assert _until(log, a.id, "node_finish") == [*ENTER, "node_finish"]


def test_schedule_raising_not_ignored(engine: rattan.Engine, reg: rattan.Registry) -> None:
    log = _setup(reg, "h_sch_raise", schedule="raise")
    a = act("h_sch_raise")
    _run(engine, a)
    wait_state(engine, a.id, "FAILED")
    expected = [*OK_EXECUTE, "pre_schedule", SCHEDULE, "node_schedule_exception", "node_schedule_fail"]
    assert _until(log, a.id, "node_schedule_fail") == expected
    wait_idle(engine)
    assert log.names(a.id) == expected
    exc = log.of("node_schedule_exception")[0]
    assert "ValueError: schedule broke" in exc[3]["ex_data"]
    assert exc[4] is None  # a poll: no callback record
    assert "ValueError: schedule broke" in log.of("node_schedule_fail")[0][3]["ex_data"]


def test_schedule_raising_ignored(engine: rattan.Engine, reg: rattan.Registry) -> None:
    log = _setup(reg, "h_sch_ign", schedule="raise")
    a = act("h_sch_ign", error_ignorable=True)
    root = _run(engine, a)
    wait_state(engine, root, "FINISHED")
    expected = [*OK_EXECUTE, "pre_schedule", SCHEDULE, "node_schedule_exception", "node_finish"]
    assert _until(log, a.id, "node_finish") == expected
    wait_idle(engine)
    assert log.names(a.id) == expected


def test_schedule_returning_false(engine: rattan.Engine, reg: rattan.Registry) -> None:
    log = _setup(reg, "h_sch_false", schedule="false")
    a = act("h_sch_false")
    _run(engine, a)
    wait_state(engine, a.id, "FAILED")
    expected = [*OK_EXECUTE, "pre_schedule", SCHEDULE, "node_schedule_fail"]
    assert _until(log, a.id, "node_schedule_fail") == expected
    wait_idle(engine)
    assert log.names(a.id) == expected


# -- callbacks --------------------------------------------------------------------------------------
def _callback_node(engine: rattan.Engine, reg: rattan.Registry, code: str, **kwargs: Any) -> tuple:
    log = _setup(reg, code, schedule="callback", **kwargs)
    a = act(code)
    root = _run(engine, a)
    wait_for(lambda: "post_execute" in log.names(a.id))
    wait_idle(engine)
    return log, a, root


def test_callback_path_order_and_callback_records(engine: rattan.Engine, reg: rattan.Registry) -> None:
    log, a, root = _callback_node(engine, reg, "h_cb")
    version = engine.get_state(a.id).version
    cid = engine.callback(a.id, version, {"k": 1})
    wait_state(engine, root, "FINISHED")
    names = _until(log, a.id, "node_finish")
    # the callback hooks run in the caller's thread, the schedule step on a worker: only the
    # relative order of each side is fixed (pre_callback's completion is checked below)
    assert [n for n in names if not n.endswith("_callback")] == [*OK_EXECUTE, *POLL, "node_finish"]
    assert [n for n in names if n.endswith("_callback")] == ["pre_callback", "post_callback"]
    for hook in ("pre_callback", "post_callback", "node_finish"):
        record = log.of(hook)[0][4]
        assert (record.id, record.node_id, record.version, record.data) == (cid, a.id, version, {"k": 1}), (
            hook
        )
    # the schedule itself gets the payload dict, not the record
    assert log.of(SCHEDULE)[0][4] == {"k": 1}
    assert log.of("pre_schedule")[0][4] is None
    assert log.of("post_schedule")[0][4] is None
    assert engine.get_execution_data_outputs(a.id)["got"] == {"k": 1}


def test_pre_callback_hook_runs_before_the_schedule_step(engine: rattan.Engine, reg: rattan.Registry) -> None:
    # seed 000: pre_callback is "before the callback"; a slow hook must not let the schedule overtake it
    log, a, root = _callback_node(engine, reg, "h_cb_slow", sleeps={"pre_callback": 0.3})
    engine.callback(a.id, engine.get_state(a.id).version, {"k": 2})
    wait_state(engine, root, "FINISHED")
    wait_for(lambda: "post_callback" in log.names(a.id))
    names = _until(log, a.id, "node_finish")
    assert names.index("pre_callback:end") < names.index("pre_schedule"), names


def test_node_finish_without_callback_data_parameter_fires_after_a_callback(
    engine: rattan.Engine, reg: rattan.Registry
) -> None:
    # SPEC 9 rattan deviation: the peer's TypeError made node_finish silently never run here
    calls: list[tuple[str, dict[str, Any]]] = []

    class Narrow(rattan.Service):
        __need_run_hook__ = True
        __need_schedule__ = True

        def execute(self, data: Any, parent_data: Any) -> bool:
            return True

        def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
            data.outputs.got = callback_data
            return True

        def node_finish(self, data: Any, parent_data: Any) -> bool:  # type: ignore[override]
            calls.append(("node_finish", dict(data.outputs)))
            return True

        def node_schedule_fail(self, data: Any, parent_data: Any) -> bool:  # type: ignore[override]
            calls.append(("node_schedule_fail", dict(data.outputs)))
            return True

    register(reg, "h_narrow", Narrow)
    a = act("h_narrow")
    root = _run(engine, a)
    wait_state(engine, a.id, "RUNNING")
    wait_idle(engine)
    engine.callback(a.id, engine.get_state(a.id).version, "payload")
    wait_state(engine, root, "FINISHED")
    wait_for(lambda: calls)
    wait_idle(engine)
    assert [c[0] for c in calls] == ["node_finish"]
    assert calls[0][1]["got"] == "payload"


# -- operation hooks are read-only ------------------------------------------------------------------
def _writes(*hooks: str) -> dict[str, Any]:
    return {h: f"written by {h}" for h in hooks}


def test_retry_hooks_are_read_only(engine: rattan.Engine, reg: rattan.Registry) -> None:
    hooks = ("pre_retry_node", "post_retry_node")
    log = _setup(reg, "h_retry", execute="false", writes=_writes(*hooks))
    a = act("h_retry", x=1)
    _run(engine, a)
    wait_state(engine, a.id, "FAILED")
    _until(log, a.id, "node_execute_fail")
    wait_idle(engine)
    before = engine.get_execution_data_outputs(a.id)
    engine.retry_node(a.id)
    wait_for(lambda: log.names(a.id).count("node_execute_fail") == 2)
    wait_idle(engine)
    names = log.names(a.id)
    # the operation's hooks run in the caller's thread after the commit, the re-run on a worker
    assert [n for n in names if n not in hooks] == [*ENTER, "node_execute_fail", *ENTER, "node_execute_fail"]
    assert [n for n in names if n in hooks] == list(hooks)
    assert names.index("pre_retry_node") > names.index("node_execute_fail")
    after = engine.get_execution_data_outputs(a.id)
    assert set(after) == set(before)
    assert not set(hooks) & set(after)
    history = engine.get_node_histories(a.id)
    assert len(history) == 1
    assert not set(hooks) & set(history[0]["outputs"])


def test_skip_hooks_are_read_only(engine: rattan.Engine, reg: rattan.Registry) -> None:
    hooks = ("pre_skip_node", "post_skip_node")
    log = _setup(reg, "h_skip", execute="false", writes=_writes(*hooks))
    a = act("h_skip")
    root = _run(engine, a)
    wait_state(engine, a.id, "FAILED")
    _until(log, a.id, "node_execute_fail")
    wait_idle(engine)
    before = engine.get_execution_data_outputs(a.id)
    engine.skip_node(a.id)
    wait_state(engine, root, "FINISHED")
    assert _until(log, a.id, "post_skip_node") == [*ENTER, "node_execute_fail", *hooks]
    wait_idle(engine)
    assert log.names(a.id) == [*ENTER, "node_execute_fail", *hooks]  # no node_finish for a skip
    # the hooks saw the failed pass's data, and their writes were dropped
    assert log.of("pre_skip_node")[0][3] == before
    assert engine.get_execution_data_outputs(a.id) == before


def test_forced_fail_hooks_are_read_only(engine: rattan.Engine, reg: rattan.Registry) -> None:
    hooks = ("pre_forced_fail_activity", "post_forced_fail_activity")
    log, a, _ = _callback_node(engine, reg, "h_ff", writes=_writes(*hooks))
    engine.forced_fail_activity(a.id, "stop it")
    wait_state(engine, a.id, "FAILED")
    assert _until(log, a.id, "post_forced_fail_activity") == [*OK_EXECUTE, *hooks]
    wait_idle(engine)
    assert log.names(a.id) == [*OK_EXECUTE, *hooks]
    assert engine.get_execution_data_outputs(a.id) == {
        "executed": True, "_result": True, "_loop": 1, "_inner_loop": 1,
        "ex_data": "stop it", "_forced_failed": True,
    }  # fmt: skip


def test_callback_hooks_are_read_only(engine: rattan.Engine, reg: rattan.Registry) -> None:
    hooks = ("pre_callback", "post_callback")
    log, a, root = _callback_node(engine, reg, "h_cb_ro", writes=_writes(*hooks))
    engine.callback(a.id, engine.get_state(a.id).version, "x")
    wait_state(engine, root, "FINISHED")
    _until(log, a.id, "node_finish")
    wait_idle(engine)
    assert engine.get_execution_data_outputs(a.id) == {
        "executed": True, "_result": True, "_loop": 1, "_inner_loop": 1, "polls": 1, "got": "x",
    }  # fmt: skip


def _waiting_first(engine: rattan.Engine, reg: rattan.Registry, code: str, hooks: tuple[str, ...]) -> tuple:
    """``start -> gate (callback) -> a (hooked) -> end``, running, the token waiting on ``gate``."""
    log = _setup(reg, code, writes=_writes(*hooks))
    register(reg, f"{code}_gate", recording_service(HookLog(), schedule="callback", hooks=False))
    gate, a = act(f"{code}_gate"), act(code)
    root = _run(engine, gate, a)
    wait_state(engine, gate.id, "RUNNING")
    wait_for(lambda: engine.get_execution_data_outputs(gate.id).get("_result"))
    wait_idle(engine)
    return log, gate, a, root


def _release_into_paused_pipeline(engine: rattan.Engine, gate: Any, root: str) -> None:
    """Pause the pipeline, then complete ``gate``: the token parks before the next node."""
    engine.pause_pipeline(root)
    engine.callback(gate.id, engine.get_state(gate.id).version, None)
    wait_state(engine, gate.id, "FINISHED")
    wait_idle(engine)


def test_pause_and_resume_appointment_hooks_only_when_a_token_sits_on_the_node(
    engine: rattan.Engine, reg: rattan.Registry
) -> None:
    hooks = ("pre_pause_node", "post_pause_node", "pre_resume_node", "post_resume_node")
    log, gate, a, root = _waiting_first(engine, reg, "h_pause", hooks)
    # no token on the node: appointments call no hook
    engine.pause_node_appoint(a.id)
    engine.resume_node_appoint(a.id)
    engine.pause_node_appoint(a.id)
    wait_idle(engine)
    assert log.names() == []
    # the token reaches the paused node and parks there; now the resume reaches the service
    engine.callback(gate.id, engine.get_state(gate.id).version, None)
    wait_state(engine, gate.id, "FINISHED")
    wait_idle(engine)
    assert engine.get_state(a.id).name == "SUSPENDED"
    assert log.names() == []
    engine.resume_node_appoint(a.id)
    wait_state(engine, root, "FINISHED")
    _until(log, a.id, "node_finish")
    names = _until(log, a.id, "post_resume_node")
    assert [n for n in names if n not in hooks] == [*OK_EXECUTE, "node_finish"]
    assert [n for n in names if n in hooks] == ["pre_resume_node", "post_resume_node"]
    wait_idle(engine)
    assert not set(hooks) & set(engine.get_execution_data_outputs(a.id))


def test_pause_appointment_hooks_fire_when_the_token_waits_before_the_node(
    engine: rattan.Engine, reg: rattan.Registry
) -> None:
    hooks = ("pre_pause_node", "post_pause_node", "pre_resume_node", "post_resume_node")
    log, gate, a, root = _waiting_first(engine, reg, "h_pause2", hooks)
    _release_into_paused_pipeline(engine, gate, root)
    assert engine.get_state_or_none(a.id) is None  # the token waits in front of the activity
    engine.pause_node_appoint(a.id)
    assert _until(log, a.id, "post_pause_node") == ["pre_pause_node", "post_pause_node"]
    assert log.of("pre_pause_node")[0][2:] == ({}, {}, None)
    engine.resume_pipeline(root)
    wait_idle(engine)
    assert engine.get_state(a.id).name == "SUSPENDED"
    engine.resume_node_appoint(a.id)
    wait_state(engine, root, "FINISHED")
    _until(log, a.id, "node_finish")
    names = _until(log, a.id, "post_resume_node")
    assert [n for n in names if n not in hooks] == [*OK_EXECUTE, "node_finish"]
    assert [n for n in names if n in hooks] == list(hooks)
    wait_idle(engine)
    assert not set(hooks) & set(engine.get_execution_data_outputs(a.id))


# -- main-path hooks save their changes -------------------------------------------------------------
MAIN_PATH = ("node_enter", "pre_execute", "post_execute", "pre_schedule", "post_schedule", "node_finish")


def test_main_path_hooks_returning_truthy_save_their_changes(
    engine: rattan.Engine, reg: rattan.Registry
) -> None:
    log = _setup(reg, "h_save", schedule="poll", polls=1, writes=_writes(*MAIN_PATH))
    a = act("h_save")
    root = _run(engine, a)
    wait_state(engine, root, "FINISHED")
    _until(log, a.id, "node_finish")
    wait_for(lambda: "node_finish" in engine.get_execution_data_outputs(a.id))
    wait_idle(engine)
    outputs = engine.get_execution_data_outputs(a.id)
    for hook in MAIN_PATH:
        assert outputs[hook] == f"written by {hook}", hook
    assert engine.get_execution_data(a.id)["outputs"]["node_finish"] == "written by node_finish"


def test_failure_hooks_returning_truthy_save_their_changes(
    engine: rattan.Engine, reg: rattan.Registry
) -> None:
    hooks = ("node_execute_exception", "node_execute_fail")
    log = _setup(reg, "h_save_fail", execute="raise", writes=_writes(*hooks))
    a = act("h_save_fail")
    _run(engine, a)
    wait_state(engine, a.id, "FAILED")
    _until(log, a.id, "node_execute_fail")
    wait_for(lambda: "node_execute_fail" in engine.get_execution_data_outputs(a.id))
    outputs = engine.get_execution_data_outputs(a.id)
    assert outputs["node_execute_exception"] == "written by node_execute_exception"
    assert outputs["node_execute_fail"] == "written by node_execute_fail"
    assert "ValueError: execute broke" in outputs["ex_data"]


def test_schedule_failure_hooks_returning_truthy_save_their_changes(
    engine: rattan.Engine, reg: rattan.Registry
) -> None:
    hooks = ("node_schedule_exception", "node_schedule_fail")
    log = _setup(reg, "h_save_sfail", schedule="raise", writes=_writes(*hooks))
    a = act("h_save_sfail")
    _run(engine, a)
    wait_state(engine, a.id, "FAILED")
    _until(log, a.id, "node_schedule_fail")
    wait_for(lambda: "node_schedule_fail" in engine.get_execution_data_outputs(a.id))
    outputs = engine.get_execution_data_outputs(a.id)
    assert outputs["node_schedule_exception"] == "written by node_schedule_exception"


def test_node_finish_returning_falsy_does_not_save(engine: rattan.Engine, reg: rattan.Registry) -> None:
    log = _setup(reg, "h_nosave", writes=_writes("node_finish"), returns={"node_finish": False})
    a = act("h_nosave")
    root = _run(engine, a)
    wait_state(engine, root, "FINISHED")
    _until(log, a.id, "node_finish")
    wait_idle(engine)
    assert "node_finish" not in engine.get_execution_data_outputs(a.id)


@pytest.mark.parametrize(
    "hook", ["node_enter", "pre_execute", "post_execute", "pre_schedule", "post_schedule"]
)
def test_in_step_main_path_hooks_returning_falsy_do_not_save(
    engine: rattan.Engine, reg: rattan.Registry, hook: str
) -> None:
    # SPEC 9: "Main-path hooks: changes are saved when the hook returns truthy"
    log = _setup(
        reg, f"h_nosave_{hook}", schedule="poll", polls=1, writes=_writes(hook), returns={hook: False}
    )
    a = act(f"h_nosave_{hook}")
    root = _run(engine, a)
    wait_state(engine, root, "FINISHED")
    _until(log, a.id, "node_finish")
    wait_idle(engine)
    assert hook not in engine.get_execution_data_outputs(a.id)


# -- errors, opt-in, node types ---------------------------------------------------------------------
def test_raising_hooks_never_change_the_nodes_fate(
    engine: rattan.Engine, reg: rattan.Registry, caplog: pytest.LogCaptureFixture
) -> None:
    log = _setup(
        reg, "h_raise", schedule="poll", polls=1, raises=frozenset(rattan.components.service.HOOK_NAMES)
    )
    a = act("h_raise")
    with caplog.at_level(logging.ERROR, logger="rattan"):
        root = _run(engine, a)
        wait_state(engine, root, "FINISHED")
        assert _until(log, a.id, "node_finish") == [*OK_EXECUTE, *POLL, "node_finish"]
        wait_idle(engine)
    assert engine.get_execution_data_outputs(a.id) == {
        "executed": True, "_result": True, "_loop": 1, "_inner_loop": 1, "polls": 1,
    }  # fmt: skip
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    for hook in ("node_enter", "pre_execute", "post_execute", "pre_schedule", "post_schedule", "node_finish"):
        assert any(hook in m and a.id in m and f"hook {hook} broke" in m for m in logged), hook


def test_raising_failure_hooks_keep_the_node_failed(engine: rattan.Engine, reg: rattan.Registry) -> None:
    log = _setup(reg, "h_raise_f", execute="raise", raises=frozenset(rattan.components.service.HOOK_NAMES))
    a, b = act("h_raise_f"), act("h_raise_f")
    _run(engine, a, b)
    wait_state(engine, a.id, "FAILED")
    _until(log, a.id, "node_execute_fail")
    wait_idle(engine)
    assert engine.get_state_or_none(b.id) is None
    assert "ValueError: execute broke" in engine.get_execution_data_outputs(a.id)["ex_data"]


def test_services_without_need_run_hook_get_no_hook_calls(
    engine: rattan.Engine, reg: rattan.Registry
) -> None:
    log = _setup(reg, "h_off", schedule="poll", polls=2, hooks=False)
    a, b = act("h_off"), act("h_off", error_ignorable=True)
    root = _run(engine, a, b)
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    assert log.names() == [EXECUTE, SCHEDULE, SCHEDULE, EXECUTE, SCHEDULE, SCHEDULE]


def test_hooks_run_only_for_service_activities(engine: rattan.Engine, reg: rattan.Registry) -> None:
    log = _setup(reg, "h_types")
    s_start, s_act, s_end = EmptyStartEvent(), act("h_types"), EmptyEndEvent()
    s_start.extend(s_act).extend(s_end)
    sub = SubProcess(start=s_start, data=Data())
    start, pg, x, y, cg, end = (
        EmptyStartEvent(), ParallelGateway(), act("h_types"), act("h_types"), ConvergeGateway(),
        EmptyEndEvent(),
    )  # fmt: skip
    start.extend(pg).connect(x, y)
    pg.converge(cg).extend(sub).extend(end)
    tree = build_tree(start)
    engine.run_pipeline(tree)
    wait_state(engine, str(tree["id"]), "FINISHED")
    for node in (x, y, s_act):
        _until(log, node.id, "node_finish")
    wait_idle(engine)
    assert {c[0] for c in log.calls} == {x.id, y.id, s_act.id}
    for node in (x, y, s_act):
        assert log.names(node.id) == [*OK_EXECUTE, "node_finish"]
