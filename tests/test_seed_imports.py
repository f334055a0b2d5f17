"""The names bamboo code imports exist at the rattan paths docs/migrating-from-bamboo.md maps them
to, and are the right things: every row of the mapping table is imported here (a row without an
entry below fails), and the names added for the seeds (``HookType``, ``add_sink_type``,
``FlowNodeClsFactory``) are checked for what they do, down to a run in a real engine."""

from __future__ import annotations

import importlib
import inspect
import itertools
import re
import threading
import types
from pathlib import Path
from typing import Any

import pytest

import rattan
from rattan import api
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree
from rattan.builder import ExecutableEndEvent as EndElement
from waits import wait_finished, wait_for, wait_state

pytestmark = pytest.mark.timeout(60)

MAPPING_DOC = Path(__file__).resolve().parents[1] / "docs" / "migrating-from-bamboo.md"
_unique = itertools.count()


def _names(text: str) -> list[str]:
    return text.split()


# Each row of the table, by the first code span of its bamboo column: (rattan module, names) to import.
ROWS: dict[str, list[tuple[str, list[str]]]] = {
    "from bamboo_engine import api": [("rattan", ["api"])],
    "from bamboo_engine import builder": [
        ("rattan", ["builder"]),
        (
            "rattan.builder",
            _names(
                "EmptyStartEvent ServiceActivity EmptyEndEvent ExecutableEndEvent ParallelGateway "
                "ExclusiveGateway ConditionalParallelGateway ConvergeGateway SubProcess Data Var NodeOutput "
                "RewritableNodeOutput DataInput Params build_tree"
            ),
        ),
    ],
    "from pipeline import builder": [("rattan", ["builder"])],
    "pipeline.eri.runtime.BambooDjangoRuntime()": [("rattan", ["Engine"])],
    "pipeline.parser.PipelineParser": [("rattan.api", ["run_pipeline"])],
    "task_service.get_state(id)": [("rattan.api", ["get_pipeline_states"])],
    "bamboo_engine.api.EngineAPIResult": [
        ("rattan.api", ["EngineAPIResult"]),
        ("rattan", ["EngineAPIResult"]),
    ],
    "pipeline.core.flow.activity.Service": [("rattan", ["Service"])],
    "pipeline.core.flow.activity.StaticIntervalGenerator": [
        (
            "rattan",
            _names(
                "StaticIntervalGenerator DefaultIntervalGenerator SquareIntervalGenerator "
                "LinearIntervalGenerator NullIntervalGenerator AbstractIntervalGenerator"
            ),
        ),
        ("rattan.interval", ["StaticIntervalGenerator"]),
    ],
    "pipeline.component_framework.component.Component": [("rattan", ["Component"])],
    "pipeline.core.flow.io": [("rattan.io", ["InputItem", "OutputItem", "StringItemSchema"])],
    "pipeline.core.data.var.LazyVariable": [("rattan", ["LazyVariable"])],
    "pipeline.core.flow.event.ExecutableEndEvent": [("rattan", ["ExecutableEndEvent"])],
    "pipeline.component_framework.test": [
        ("rattan.testing", ["ComponentTestMixin", "ComponentTestCase"]),
    ],
    "bamboo_engine.exceptions": [("rattan.exceptions", ["InvalidOperationError", "TreeInvalidException"])],
    "bamboo_engine.validator": [("rattan.validator", ["validate_and_process_pipeline", "add_sink_type"])],
    "from bamboo_engine.validator.api import add_sink_type": [
        ("rattan.validator.api", ["add_sink_type", "validate_and_process_pipeline"]),
    ],
    "from bamboo_engine.eri import HookType": [("rattan.components", ["HookType"])],
    "from bamboo_engine.engine import Engine": [("rattan.compat", ["Engine"])],
    "from pipeline.contrib.plugin_execute import api": [
        ("rattan.plugin_execute", ["api", "set_engine", "get_engine", "State"]),
        ("rattan.plugin_execute.api", ["run", "get_state", "callback", "retry", "forced_fail"]),
        ("rattan.plugin_execute.contants", ["State"]),
    ],
    "from pipeline.core.flow import FlowNodeClsFactory": [
        ("rattan.components", ["FlowNodeClsFactory", "NodeTypeConflictError"]),
    ],
    "bamboo_engine.context.ContextValue": [("rattan", ["ContextValue", "ContextValueType"])],
    "PIPELINE_EXCLUSIVE_GATEWAY_STRATEGY": [("rattan", ["Settings"])],
    "from pipeline.eri.signals import ...": [
        (
            "rattan.signals",
            ["pipeline_event", "post_set_state", "pre_service_execute", "pre_service_schedule"],
        ),
    ],
    "from pipeline.contrib.rollback import api": [
        (
            "rattan.rollback.api",
            [
                "rollback",
                "reserve_rollback",
                "cancel_reserved_rollback",
                "retry_rollback_failed_node",
                "get_allowed_rollback_node_id_list",
            ],
        ),
        ("rattan.rollback", ["ANY", "TOKEN", "rollback"]),
    ],
}

# bamboo_engine.eri.HookType, member by member (name, value), in the peer's order
PEER_HOOK_TYPES = [
    ("PRE_RESUME_NODE", "pre_resume_node"), ("POST_RESUME_NODE", "post_resume_node"),
    ("PRE_PAUSE_NODE", "pre_pause_node"), ("POST_PAUSE_NODE", "post_pause_node"),
    ("PRE_RETRY_NODE", "pre_retry_node"), ("POST_RETRY_NODE", "post_retry_node"),
    ("PRE_SKIP_NODE", "pre_skip_node"), ("POST_SKIP_NODE", "post_skip_node"),
    ("PRE_FORCED_FAIL_ACTIVITY", "pre_forced_fail_activity"),
    ("POST_FORCED_FAIL_ACTIVITY", "post_forced_fail_activity"),
    ("PRE_CALLBACK", "pre_callback"), ("POST_CALLBACK", "post_callback"),
    ("NODE_EXECUTE_FAIL", "node_execute_fail"), ("NODE_SCHEDULE_FAIL", "node_schedule_fail"),
    ("NODE_EXECUTE_EXCEPTION", "node_execute_exception"),
    ("NODE_SCHEDULE_EXCEPTION", "node_schedule_exception"),
    ("NODE_ENTER", "node_enter"), ("NODE_FINISH", "node_finish"),
    ("EXECUTE", "execute"), ("SCHEDULE", "schedule"),
    # the peer's later releases (its test components use them)
    ("PRE_EXECUTE", "pre_execute"), ("POST_EXECUTE", "post_execute"),
    ("PRE_SCHEDULE", "pre_schedule"), ("POST_SCHEDULE", "post_schedule"),
]  # fmt: skip


def table_rows() -> list[str]:
    """The first code span of the bamboo column of every row of the import mapping table."""
    text = MAPPING_DOC.read_text()
    section = text.split("## Import mapping", 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| bamboo |")]
    firsts = []
    for row in rows:
        bamboo = row.split(" | ", 1)[0]
        spans = re.findall(r"`([^`]+)`", bamboo)
        assert spans, f"a mapping row without code in its bamboo column: {row}"
        firsts.append(spans[0])
    return firsts


def test_every_row_of_the_mapping_table_is_checked() -> None:
    rows = table_rows()
    assert len(rows) == len(set(rows))
    assert set(rows) == set(ROWS)


@pytest.mark.parametrize("row", sorted(ROWS))
def test_each_mapped_name_imports(row: str) -> None:
    for module_name, names in ROWS[row]:
        module = importlib.import_module(module_name)
        missing = [n for n in names if not hasattr(module, n)]
        assert not missing, f"{module_name} lacks {missing} ({row})"


def test_the_mapped_names_are_the_right_objects() -> None:
    import rattan.exceptions
    import rattan.interval
    import rattan.rollback
    import rattan.rollback.api
    import rattan.signals
    import rattan.validator
    import rattan.validator.api
    from rattan import components

    assert isinstance(rattan.api, types.ModuleType) and callable(rattan.api.run_pipeline)
    assert rattan.api.EngineAPIResult is rattan.EngineAPIResult
    assert rattan.interval.StaticIntervalGenerator is rattan.StaticIntervalGenerator
    assert rattan.validator.api.add_sink_type is rattan.validator.add_sink_type
    assert components.ExecutableEndEvent is rattan.ExecutableEndEvent
    assert issubclass(components.NodeTypeConflictError, rattan.RattanError)
    assert issubclass(components.NodeTypeConflictError, KeyError)
    for name in rattan.exceptions.__all__:
        assert issubclass(getattr(rattan.exceptions, name), rattan.RattanError), name
    for name in ("pipeline_event", "post_set_state", "pre_service_execute", "pre_service_schedule"):
        assert isinstance(getattr(rattan.signals, name), rattan.signals.Signal)
    for name in ("rollback", "reserve_rollback", "cancel_reserved_rollback", "retry_rollback_failed_node",
                 "get_allowed_rollback_node_id_list"):  # fmt: skip
        fn = getattr(rattan.rollback.api, name)
        assert getattr(rattan.rollback, name) is fn
        assert next(iter(inspect.signature(fn).parameters)) == "engine"
    assert (rattan.rollback.ANY, rattan.rollback.TOKEN) == ("ANY", "TOKEN")


# -- HookType ---------------------------------------------------------------------------------------
def test_hook_type_has_the_peers_members() -> None:
    from rattan.components import HOOK_NAMES, READ_ONLY_HOOKS, HookType

    assert [(m.name, m.value) for m in HookType] == PEER_HOOK_TYPES
    assert HookType("node_enter") is HookType.NODE_ENTER
    # every hook member names a hook rattan calls; EXECUTE / SCHEDULE name the service's main methods
    hooks = {m.value for m in HookType} - {"execute", "schedule"}
    assert hooks <= set(HOOK_NAMES)
    operations = {m.value for m in HookType if m.name.startswith(("PRE_", "POST_"))}
    around_user_code = {"pre_execute", "post_execute", "pre_schedule", "post_schedule"}
    assert operations - around_user_code <= READ_ONLY_HOOKS


def test_hook_type_names_hooks_wherever_rattan_takes_a_hook_name() -> None:
    from rattan.components import DataObject, HookType

    class Hooked(rattan.Service):
        __need_run_hook__ = True

        def execute(self, data: Any, parent_data: Any) -> bool:
            data.outputs.ran = True
            return True

        def pre_retry_node(self, data: Any, parent_data: Any) -> bool:
            data.outputs.seen = HookType.PRE_RETRY_NODE
            return True

    service, data = Hooked(), DataObject({}, {})
    assert service.call_hook(HookType.PRE_RETRY_NODE, data, DataObject({}, {})) is True
    assert data.outputs.seen == "pre_retry_node"
    assert service.call_hook(HookType.EXECUTE, data, DataObject({}, {})) is True
    assert data.outputs.ran is True


def test_hook_type_in_a_running_engine() -> None:
    """A service records the HookType of each hook the engine calls (the peer's test pattern); the
    event log and ``pipeline_event`` carry event types equal to the members."""
    from rattan.components import HookType

    reg = rattan.Registry("seed-hooks")
    seen: list[HookType] = []
    lock = threading.Lock()

    class Recorder(rattan.Service):
        __need_run_hook__ = True

        def record(self, hook: HookType) -> bool:
            with lock:
                seen.append(hook)
            return True

        def execute(self, data: Any, parent_data: Any) -> bool:
            return bool(data.inputs.get("retried"))  # the retry's data replaces the inputs

        def node_enter(self, data: Any, parent_data: Any) -> bool:
            return self.record(HookType.NODE_ENTER)

        def node_execute_fail(self, data: Any, parent_data: Any) -> bool:
            return self.record(HookType.NODE_EXECUTE_FAIL)

        def pre_retry_node(self, data: Any, parent_data: Any) -> bool:
            return self.record(HookType.PRE_RETRY_NODE)

        def post_retry_node(self, data: Any, parent_data: Any) -> bool:
            return self.record(HookType.POST_RETRY_NODE)

        def node_finish(self, data: Any, parent_data: Any) -> bool:
            return self.record(HookType.NODE_FINISH)

    class RecorderComponent(rattan.Component, registry=reg):
        name = code = "seed_recorder"
        bound_service = Recorder

    events: list[str] = []

    def on_event(sender: Any, event: Any, **kwargs: Any) -> None:
        if event.data.get("node_id") == act.id:
            with lock:
                events.append(event.event_type)

    start, act, end = EmptyStartEvent(), ServiceActivity(component_code="seed_recorder"), EmptyEndEvent()
    start.extend(act).extend(end)
    tree = build_tree(start)
    rattan.signals.pipeline_event.connect(on_event)
    try:
        with rattan.Engine(":memory:", components=reg, enable_pipeline_event_signals=True) as engine:
            assert api.run_pipeline(engine, tree).result
            wait_state(engine, act.id, "FAILED")
            wait_for(lambda: len(seen) == 2)
            assert api.retry_node(engine, act.id, data={"retried": True}).result
            wait_finished(engine, tree["id"])
            wait_for(lambda: len(seen) == 6)
            logged = [e["event_type"] for e in engine.events(tree["id"]) if e["node_id"] == act.id]
    finally:
        rattan.signals.pipeline_event.disconnect(on_event)

    assert seen == [
        HookType.NODE_ENTER, HookType.NODE_EXECUTE_FAIL, HookType.PRE_RETRY_NODE, HookType.POST_RETRY_NODE,
        HookType.NODE_ENTER, HookType.NODE_FINISH,
    ]  # fmt: skip
    implemented = set(seen)  # the hooks the Recorder has (the log also has pre_/post_execute)
    hook_events = [HookType(t) for t in logged if t in implemented]
    assert hook_events == seen
    assert [t for t in events if t in implemented] == seen


# -- add_sink_type ------------------------------------------------------------------------------------
def _tree_ending_with(end_type: str) -> dict[str, Any]:
    start, act, end = EmptyStartEvent(), ServiceActivity(component_code="seed_ok"), EndElement(type=end_type)
    start.extend(act).extend(end)
    return build_tree(start)


def test_add_sink_type_makes_the_validator_accept_an_end_event_type() -> None:
    from rattan.validator.api import add_sink_type, validate_and_process_pipeline

    end_type = f"SeedSinkEnd{next(_unique)}"
    with pytest.raises(rattan.TreeInvalidException) as refused:
        validate_and_process_pipeline(_tree_ending_with(end_type))
    assert end_type in str(refused.value)
    add_sink_type(end_type)
    tree = _tree_ending_with(end_type)
    validate_and_process_pipeline(tree)
    assert tree["end_event"]["type"] == end_type
    with pytest.raises(rattan.BadInputError):
        add_sink_type("ServiceActivity")


# -- FlowNodeClsFactory.register_node -----------------------------------------------------------------
def _ok_component(reg: rattan.Registry) -> None:
    class Ok(rattan.Service):
        def execute(self, data: Any, parent_data: Any) -> bool:
            return True

    class OkComponent(rattan.Component, registry=reg):
        name = code = "seed_ok"
        bound_service = Ok


def test_register_node_makes_an_end_event_without_code_run() -> None:
    from rattan.components import FlowNodeClsFactory

    reg = rattan.Registry("seed-end-events")
    _ok_component(reg)
    ran: list[tuple[str, bool, str, str]] = []

    class SeedEnd(rattan.ExecutableEndEvent, registry=reg):  # no ``code``: not registered by itself
        def execute(self, in_subprocess: bool, root_pipeline_id: str, current_pipeline_id: str) -> None:
            ran.append((self.id, in_subprocess, root_pipeline_id, current_pipeline_id))

    end_type = f"SeedEnd{next(_unique)}"
    assert not reg.has_end_event(end_type)
    FlowNodeClsFactory.register_node(end_type, SeedEnd)
    assert reg.get_end_event(end_type) is SeedEnd
    assert end_type in reg.sink_types()
    assert not rattan.registry.has_end_event(end_type)  # the class's own registry, not the default one
    FlowNodeClsFactory.register_node(end_type, SeedEnd)  # the same class again: nothing changes

    tree = _tree_ending_with(end_type)
    root, end_id = tree["id"], tree["end_event"]["id"]
    with rattan.Engine(":memory:", components=reg) as engine:
        res = api.run_pipeline(engine, tree)
        assert res.result, res.message
        wait_finished(engine, root)
        states = api.get_pipeline_states(engine, root).data[root]["children"]
        assert {nid: s["state"] for nid, s in states.items()} == {
            tree["start_event"]["id"]: "FINISHED",
            next(iter(tree["activities"])): "FINISHED",
            end_id: "FINISHED",
        }
    assert ran == [(end_id, False, root, root)]


def test_register_node_refusals() -> None:
    from rattan.components import FlowNodeClsFactory, NodeTypeConflictError

    reg = rattan.Registry("seed-end-refusals")

    class One(rattan.ExecutableEndEvent, registry=reg):
        def execute(self, in_subprocess: bool, root_pipeline_id: str, current_pipeline_id: str) -> None:
            return None

    class Other(rattan.ExecutableEndEvent, registry=reg):
        def execute(self, in_subprocess: bool, root_pipeline_id: str, current_pipeline_id: str) -> None:
            return None

    end_type = f"SeedTaken{next(_unique)}"
    FlowNodeClsFactory.register_node(end_type, One)
    with pytest.raises(KeyError) as taken:  # the peer raises KeyError: code catching it still works
        FlowNodeClsFactory.register_node(end_type, Other)
    assert isinstance(taken.value, NodeTypeConflictError)
    assert str(taken.value).startswith(f"node with key({end_type}) is already exist")
    assert reg.get_end_event(end_type) is One
    with pytest.raises(NodeTypeConflictError):
        FlowNodeClsFactory.register_node("EmptyEndEvent", One)
    with pytest.raises(rattan.BadInputError):
        FlowNodeClsFactory.register_node("SeedNotAnEnd", rattan.Service)
    with pytest.raises(rattan.BadInputError):
        FlowNodeClsFactory.register_node("", One)
    assert not reg.has_end_event("EmptyEndEvent") and not reg.has_end_event("SeedNotAnEnd")


def test_register_node_follows_the_registry_being_collected_into() -> None:
    """Seed modules call register_node at import: while an engine's ``component_modules`` (or
    ``collecting_into``) loads them, the class goes where their components go."""
    from rattan.components import FlowNodeClsFactory, collecting_into

    reg = rattan.Registry("seed-collect")
    end_type = f"SeedCollected{next(_unique)}"
    with collecting_into(reg):

        class Collected(rattan.ExecutableEndEvent):
            def execute(self, in_subprocess: bool, root_pipeline_id: str, current_pipeline_id: str) -> None:
                return None

        FlowNodeClsFactory.register_node(end_type, Collected)
        assert FlowNodeClsFactory.get_node_cls(end_type) is Collected
    assert reg.get_end_event(end_type) is Collected
    assert not rattan.registry.has_end_event(end_type)
    assert FlowNodeClsFactory.get_node_cls(end_type) is None  # the default registry has none


# -- bamboo_engine.engine.Engine --------------------------------------------------------------------
def test_engine_of_a_runtime_is_the_runtime_and_runs_the_peers_call_style() -> None:
    from rattan.compat import Engine

    reg = rattan.Registry("seed-compat-engine")

    class Done(rattan.Service):
        def execute(self, data: Any, parent_data: Any) -> bool:
            data.outputs.seen = parent_data.inputs.get("who")
            return True

    class DoneComponent(rattan.Component, registry=reg):
        name = code = "seed_compat_done"
        bound_service = Done

    start, act, end = EmptyStartEvent(), ServiceActivity(component_code="seed_compat_done"), EmptyEndEvent()
    start.extend(act).extend(end)
    pipeline = build_tree(start)
    with rattan.Engine(":memory:", components=reg) as runtime:
        engine = Engine(runtime)
        assert engine is runtime
        engine.run_pipeline(pipeline=pipeline, root_pipeline_data={"who": "bamboo"})
        wait_finished(runtime, pipeline["id"])
        assert runtime.get_execution_data(act.id).outputs["seen"] == "bamboo"
    with pytest.raises(rattan.BadInputError, match=r"Engine\(runtime\) takes a rattan\.Engine"):
        Engine("not a runtime")  # type: ignore[arg-type]


# -- history records read like the seeds' ---------------------------------------------------------
def test_history_records_have_the_seeds_datetime_fields() -> None:
    from datetime import UTC, datetime

    reg = rattan.Registry("seed-history-times")

    class FailOnce(rattan.Service):
        def execute(self, data: Any, parent_data: Any) -> bool:
            return bool(data.inputs.get("ok"))

    class FailOnceComponent(rattan.Component, registry=reg):
        name = code = "seed_fail_once"
        bound_service = FailOnce

    start, act, end = EmptyStartEvent(), ServiceActivity(component_code="seed_fail_once"), EmptyEndEvent()
    start.extend(act).extend(end)
    tree = build_tree(start)
    before = datetime.now(UTC)
    with rattan.Engine(":memory:", components=reg) as engine:
        assert api.run_pipeline(engine, tree).result
        wait_state(engine, act.id, "FAILED")
        assert api.retry_node(engine, act.id, data={"ok": True}).result
        wait_finished(engine, tree["id"])
        (history,) = engine.get_histories(act.id)
    # the seeds read history.started_time / archived_time as datetimes (the floats stay too)
    assert isinstance(history.started_time, datetime) and isinstance(history.archived_time, datetime)
    assert before <= history.started_time <= history.archived_time <= datetime.now(UTC)
    assert history.started_time.timestamp() == pytest.approx(history.started, abs=1e-6)
    assert history.archived_time.timestamp() == pytest.approx(history.archived, abs=1e-6)
