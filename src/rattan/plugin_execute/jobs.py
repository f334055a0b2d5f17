"""Plugin-execute jobs: one component run on its own, as a one-activity pipeline.

A job is the pipeline ``start -> ServiceActivity -> end`` on a ``rattan.Engine``, so polls,
callbacks, retries, forced fails, timeouts, durability and crash recovery are the engine's own and
behave exactly as they do inside any pipeline. The job id is the pipeline id and the activity's id
is derived from it, so every call reaches the node from the job id alone, without a table of its
own. Two keys of the pipeline's context keep what the tree cannot hold:

- ``RUNTIME_ATTRS_KEY``: the runtime attributes given to ``run``. Its presence is also what tells a
  job from any other pipeline, so a pipeline id is never mistaken for a job;
- ``CALLBACK_KEY``: the data of the last callback with the pass it was sent to, so a retried job
  reports ``{}`` again without a write of its own.

The component's inputs are written as plain values: they reach ``execute`` as given, never
rendered as ``${}`` templates, so those context keys cannot leak into them.

These functions raise typed ``rattan.errors``; ``rattan.plugin_execute.api`` wraps them into
``EngineAPIResult`` values.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rattan import states
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, Var, build_tree
from rattan.context import ContextValue, ContextValueType
from rattan.errors import (
    BadInputError,
    InvalidOperationError,
    NotFoundError,
    RattanError,
    TreeInvalidException,
)
from rattan.ids import unique_id
from rattan.plugin_execute.constants import State
from rattan.spec.model import ServiceActivityNode

if TYPE_CHECKING:
    from rattan.facade import Engine
    from rattan.model.records import StateRecord

RUNTIME_ATTRS_KEY = "${_plugin_execute_runtime_attrs}"
CALLBACK_KEY = "${_plugin_execute_callback}"
# bookkeeping the engine adds to every activity's outputs: a job reports what the component wrote
ENGINE_OUTPUT_KEYS = frozenset({"_result", "_loop", "_inner_loop"})

# the activity's engine state -> the job's state (no state yet: READY)
_JOB_STATE = {
    states.CREATED: State.READY,
    states.READY: State.READY,
    states.LOOP_READY: State.READY,
    states.SUSPENDED: State.READY,  # a pause appointed before the component started
    states.RUNNING: State.RUNNING,
    states.FINISHED: State.FINISHED,
    states.FAILED: State.FAILED,
    states.REVOKED: State.FAILED,
}


def activity_id(job_id: str) -> str:
    """The id of the job's activity: the job id with another prefix letter (ids are a letter plus
    32 random hex digits, so the derived id is as unique as the job id)."""
    return "a" + job_id[1:]


def job_state(root_state: str, activity_state: str | None) -> str:
    """The job's state from its pipeline's and its activity's engine states."""
    mapped = State.READY if activity_state is None else _JOB_STATE.get(activity_state, activity_state)
    # a revoked pipeline never finishes: a job that had not finished has failed for good
    if root_state == states.REVOKED and mapped != State.FINISHED:
        return State.FAILED
    return mapped


# -- commands ---------------------------------------------------------------------------------------
def run(
    engine: Engine,
    component_code: str,
    version: str,
    inputs: Any,
    contexts: Any,
    runtime_attrs: Any = None,
) -> str:
    """Start a job running component ``component_code`` at ``version``; return the job id."""
    if not isinstance(component_code, str) or not component_code:
        raise BadInputError(f"component_code must be a non-empty string, not {component_code!r}")
    if not isinstance(version, str) or not version:
        raise BadInputError(
            f"version of component {component_code} must be a non-empty string, not {version!r}"
        )
    inputs = _mapping("inputs", inputs)
    contexts = _mapping("contexts", contexts)
    attrs = _mapping("runtime_attrs", {} if runtime_attrs is None else runtime_attrs)
    job_id = unique_id("p")
    # the service's ``name`` comes from the node's name, so that runtime attribute is honoured here
    name = attrs.get("name")
    act = ServiceActivity(
        component_code=component_code, id=activity_id(job_id), name=name if isinstance(name, str) else None
    )
    for key, value in inputs.items():
        act.component.inputs[key] = Var(Var.PLAIN, value)
    start = EmptyStartEvent()
    start.extend(act).extend(EmptyEndEvent())
    tree = build_tree(start, id=job_id)
    tree["activities"][act.id]["component"]["version"] = version  # the builder writes no version
    try:
        engine.run_pipeline(
            tree,
            root_pipeline_data=dict(contexts),  # what the component gets as parent_data.inputs
            root_pipeline_context={RUNTIME_ATTRS_KEY: dict(attrs), CALLBACK_KEY: {}},
            # refuse an unknown code or version now, naming it, instead of a job that can only fail
            check_components=True,
        )
    except TreeInvalidException as exc:
        if not exc.problems:
            raise
        # the tree is built here, so what is wrong is the component: report the problems without
        # the tree's wording (rule names, node ids) that means nothing to the caller of a job
        raise BadInputError("; ".join(problem.message for problem in exc.problems)) from exc
    return job_id


def get_state(engine: Engine, job_id: Any) -> dict[str, Any]:
    """The job's state, component, inputs, outputs, callback data, contexts and times."""
    root, meta = _job(engine, job_id)
    info = engine.get_node_debug_info(activity_id(job_id))
    node = info["node"]
    if not isinstance(node, ServiceActivityNode):
        raise NotFoundError(f"{job_id!r} is a pipeline, not a plugin execute job")
    record: StateRecord | None = info["state"]
    static = info["data"]
    if static is not None:  # the node has run: its inputs, with a retry's replacement if any
        inputs = {key: item["value"] for key, item in static["inputs"].items()}
    else:
        inputs = {key: item.value for key, item in node.inputs.items()}
    outputs: dict[str, Any] = {}
    if record is not None:
        raw = engine.get_execution_data_outputs(activity_id(job_id))
        outputs = {key: value for key, value in raw.items() if key not in ENGINE_OUTPUT_KEYS}
    invoke_count = record.retry + 1 if record is not None else 1
    callback = meta.get(CALLBACK_KEY) or {}
    callback_data = callback.get("data", {}) if callback.get("invoke_count") == invoke_count else {}
    state = job_state(root.name, record.name if record is not None else None)
    finish_at = None
    if state == State.FINISHED and record is not None and record.archived is not None:
        finish_at = _time(record.archived)
    return {
        "task_id": job_id,
        "state": state,
        "component_code": node.component_code,
        "version": node.component_version,
        "invoke_count": invoke_count,
        "inputs": inputs,
        "outputs": outputs,
        "callback_data": callback_data,
        "contexts": _contexts(engine, job_id),
        "runtime_attrs": meta.get(RUNTIME_ATTRS_KEY) or {},
        "create_at": _time(root.created),
        "finish_at": finish_at,
    }


def callback(engine: Engine, job_id: Any, callback_data: Any = None) -> None:
    """Send ``callback_data`` to a RUNNING job's component (its ``schedule`` gets it)."""
    data = _mapping("callback_data", {} if callback_data is None else callback_data)
    root, meta = _job(engine, job_id)
    record = _require(engine, job_id, root, State.RUNNING, "callback")
    previous = meta.get(CALLBACK_KEY) or {}
    # written before the callback is sent: once sent it may complete the job at once, and a
    # finished pipeline's context can no longer change
    _put(engine, job_id, CALLBACK_KEY, {"invoke_count": record.retry + 1, "data": data})
    try:
        engine.callback(activity_id(job_id), record.version, data)
    except Exception:
        with suppress(RattanError):  # best effort: the refusal itself is what the caller must see
            _put(engine, job_id, CALLBACK_KEY, previous)
        raise


def forced_fail(engine: Engine, job_id: Any, ex_data: str = "") -> None:
    """Fail a RUNNING job now: its wait ends, the service's ``cancel()`` is called, a late result
    is discarded."""
    root, _ = _job(engine, job_id)
    _require(engine, job_id, root, State.RUNNING, "forced_fail")
    engine.forced_fail_activity(activity_id(job_id), ex_data)


def retry(
    engine: Engine, job_id: Any, inputs: Any = None, contexts: Any = None, runtime_attrs: Any = None
) -> None:
    """Run a FAILED job again, with new ``inputs`` when given (``None`` keeps the previous ones)."""
    root, meta = _job(engine, job_id)
    _require(engine, job_id, root, State.FAILED, "retry")
    fixed = (
        ("contexts", contexts, _contexts(engine, job_id)),
        ("runtime_attrs", runtime_attrs, meta.get(RUNTIME_ATTRS_KEY)),
    )
    for name, given, current in fixed:
        if given is None:
            continue
        _mapping(name, given)
        # an empty dict means "unchanged", as in bamboo-pipeline; the engine keeps a run's root
        # data and node name for its whole life, so a change cannot be applied: refuse it loudly
        if given and given != current:
            raise BadInputError(
                f"retry of job {job_id} cannot change {name}: they are fixed when the job is run; "
                f"run a new job with the new {name} instead"
            )
    data: dict[str, Any] | None = None
    if inputs is not None:
        data = dict(_mapping("inputs", inputs))
        # new inputs are plain values like the first ones: keep the engine from rendering them
        data["_escape_render_keys"] = list(inputs)
    engine.retry_node(activity_id(job_id), data)


# -- helpers ----------------------------------------------------------------------------------------
def _mapping(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadInputError(f"{name} must be a dict, not {type(value).__name__}")
    return value


def _job(engine: Engine, job_id: Any) -> tuple[StateRecord, dict[str, Any]]:
    """The job's pipeline state and its two context keys; NotFoundError for anything else."""
    if not isinstance(job_id, str) or not job_id:
        raise NotFoundError(f"plugin execute job {job_id!r} does not exist")
    root = engine.get_state_or_none(job_id)
    if root is None or root.root_id != job_id:
        raise NotFoundError(f"plugin execute job {job_id!r} does not exist")
    meta = {cv.key: cv.value for cv in engine.get_context_values(job_id, [RUNTIME_ATTRS_KEY, CALLBACK_KEY])}
    if RUNTIME_ATTRS_KEY not in meta:
        raise NotFoundError(f"{job_id!r} is a pipeline, not a plugin execute job")
    return root, meta


def _require(engine: Engine, job_id: str, root: StateRecord, wanted: str, action: str) -> StateRecord:
    """The activity's state record when the job is in state ``wanted``; else InvalidOperationError."""
    record = engine.get_state_or_none(activity_id(job_id))
    state = job_state(root.name, record.name if record is not None else None)
    if record is None or state != wanted:
        raise InvalidOperationError(f"{action} needs a {wanted} job: job {job_id} is {state}")
    return record


def _contexts(engine: Engine, job_id: str) -> dict[str, Any]:
    return {key: item["value"] for key, item in engine.get_data(job_id)["inputs"].items()}


def _put(engine: Engine, job_id: str, key: str, value: Any) -> None:
    engine.update_context_values(job_id, [ContextValue(key, ContextValueType.PLAIN, value)])


def _time(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)
