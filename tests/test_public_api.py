"""The public names are pinned: removing or renaming one is a breaking change and fails here."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rattan

pytestmark = pytest.mark.timeout(60)

RATTAN = {
    "AbstractIntervalGenerator", "BadInputError", "Component", "ConflictError", "ContextValue",
    "ContextValueType", "DataObject", "DefaultIntervalGenerator", "Engine", "EngineAPIResult",
    "ExecutableEndEvent", "InvalidOperationError", "LazyVariable", "LinearIntervalGenerator",
    "NotFoundError", "NullIntervalGenerator", "RattanError", "Registry", "ScheduleFinishedError",
    "ScheduleType", "Service", "Settings", "SquareIntervalGenerator", "StaticIntervalGenerator",
    "TreeInvalidException", "__version__", "api", "builder", "registry", "rollback", "signals",
}  # fmt: skip
BUILDER = {
    "ConditionalParallelGateway", "ConvergeGateway", "Data", "DataInput", "EmptyEndEvent",
    "EmptyStartEvent", "ExclusiveGateway", "ExecutableEndEvent", "InitializedRewritableNodeOutput",
    "NodeOutput", "ParallelGateway", "Params", "RewritableNodeOutput", "ServiceActivity", "SubProcess",
    "Var", "build_tree", "generate_pipeline_token",
}  # fmt: skip
API = {
    "EngineAPIResult", "callback", "forced_fail_activity", "get_children_states", "get_data",
    "get_execution_data", "get_execution_data_inputs", "get_execution_data_outputs",
    "get_node_debug_info", "get_node_execution_time", "get_node_histories", "get_node_short_histories",
    "get_pipeline_debug_info", "get_pipeline_execution_time", "get_pipeline_states", "list_components",
    "list_pipelines",
    "pause_node_appoint", "pause_pipeline", "preview_node_inputs", "resume_node_appoint",
    "resume_pipeline", "retry_node", "retry_subprocess", "revoke_pipeline", "run_pipeline",
    "skip_conditional_parallel_gateway", "skip_exclusive_gateway", "skip_node", "update_context_values",
    "wait_pipeline",
}  # fmt: skip
VALIDATOR = {
    "validate_and_process_pipeline", "validate_pipeline_start_node", "get_allowed_start_node_ids",
    "get_skipped_execute_node_ids", "add_sink_type", "validate_gateways", "validate_stream",
    "validate_graph_connection", "validate_graph_without_circle",
}  # fmt: skip
ROLLBACK = {
    "ANY", "TOKEN", "rollback", "reserve_rollback", "cancel_reserved_rollback",
    "retry_rollback_failed_node", "get_allowed_rollback_node_id_list",
}  # fmt: skip
EXCEPTIONS = {
    "ComponentNotExistException", "ConnectionValidateError", "ConvergeMatchError", "EngineException",
    "InvalidOperationError", "IsolateNodeError", "NotFoundError", "RollBackException",
    "StartPositionInvalidException", "StateVersionNotMatchError", "StreamValidateError",
    "TreeInvalidException", "ValueError",
}  # fmt: skip
STATES = {
    "CREATED", "READY", "LOOP_READY", "RUNNING", "SUSPENDED", "BLOCKED", "FINISHED", "FAILED", "REVOKED",
    "ROLLING_BACK", "ROLL_BACK_SUCCESS", "ROLL_BACK_FAILED", "StateType", "ALL_STATES", "ARCHIVED_STATES",
    "SLEEP_STATES", "CHILDREN_IGNORE_STATES", "TRANSITION", "INVERTED_TRANSITION", "can_transit",
}  # fmt: skip

TESTING = {
    "Call", "CallAssertion", "Callback", "Case", "CaseFailure", "CaseResult", "ComponentTestCase",
    "ComponentTestMixin", "ExecuteAssertion", "FakeClock", "Patcher", "Poll", "ScheduleAssertion",
    "StepResult", "advance", "assert_events", "assert_histories", "assert_outputs", "assert_states",
    "run_and_wait", "run_case", "run_component_case", "wait_state",
}  # fmt: skip


def test_rattan_exports_exactly_the_pinned_names() -> None:
    assert set(rattan.__all__) == RATTAN
    for name in RATTAN:
        assert getattr(rattan, name) is not None


def test_builder_api_and_exception_modules_export_the_seed_names() -> None:
    import rattan.api
    import rattan.builder
    import rattan.builder.builder
    import rattan.exceptions

    assert set(rattan.builder.__all__) == BUILDER
    assert set(rattan.api.__all__) == API
    assert set(rattan.exceptions.__all__) == EXCEPTIONS
    assert callable(rattan.builder.builder.generate_pipeline_token)
    assert issubclass(rattan.exceptions.EngineException, Exception)


def test_the_test_kit_exports_the_pinned_names() -> None:
    import rattan.testing
    import rattan.testing.plugin

    assert set(rattan.testing.__all__) == TESTING
    assert set(rattan.testing.plugin.__all__) == {
        "engine", "rattan_clock", "rattan_components", "rattan_engine_options"
    }  # fmt: skip


def test_validator_rollback_and_states_offer_the_peer_names() -> None:
    import rattan.rollback
    import rattan.states
    import rattan.validator

    assert all(callable(getattr(rattan.validator, n)) for n in VALIDATOR)
    assert set(rattan.rollback.__all__) >= ROLLBACK
    assert all(hasattr(rattan.states, n) for n in STATES)
    assert {
        "READY", "RUNNING", "SUSPENDED", "BLOCKED", "FINISHED", "FAILED", "REVOKED", "ROLLING_BACK"
    } == rattan.states.ALL_STATES  # fmt: skip


def test_every_error_has_one_root() -> None:
    import rattan.errors as errors

    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Exception)]
    assert all(issubclass(c, errors.RattanError) for c in classes)


CHECK = """
import sys, time
t = time.perf_counter()
import rattan
elapsed = time.perf_counter() - t
assert rattan.registry.components() == [], rattan.registry.components()
assert rattan.registry.lazy_variables() == []
loaded = [m for m in ("sqlite3", "rattan.engine.engine", "rattan.runtime.sqlite") if m in sys.modules]
assert loaded == [], loaded
print(elapsed)
"""


def test_importing_rattan_is_cheap_opens_nothing_and_registers_nothing() -> None:
    best = min(float(subprocess.check_output([sys.executable, "-c", CHECK], text=True)) for _ in range(5))
    assert best < 0.1, f"import rattan took {best * 1000:.0f} ms"
