"""Service activities: enter (durable), execute user code (outside any transaction), record.

SPEC 5.3. ``enter_activity`` runs in the worker's transaction and returns a ``Prepared`` when the
user's ``execute`` must run; the worker commits first, so after a crash the store shows the node
RUNNING with ``processes.executing`` set to its version: recovery then knows ``execute`` was
interrupted (SPEC 13 row 3). ``record_execute`` applies the result by compare-and-set on the version.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from rattan import signals, states
from rattan.components.service import ScheduleType
from rattan.engine import policies
from rattan.engine.inputs import HydrateError, resolve_inputs, static_references
from rattan.engine.jobs import Prepared, service_logs
from rattan.engine.loops import loop_config, next_after_pass, record_pass
from rattan.engine.nodes import write_outputs
from rattan.engine.records import ScheduleRecord
from rattan.engine.schedule import ScheduleJob
from rattan.engine.step import P_DONE, P_FAILED, P_SLEEP, Step
from rattan.runtime.queries import dumps
from rattan.spec.model import ServiceActivityNode

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.engine.plan import NodeInfo
    from rattan.engine.records import ProcessRecord, StateRecord


@dataclass(slots=True)
class ExecResult:
    prepared: Prepared
    ok: bool
    value: Any
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    schedule_type: ScheduleType | None = None
    error_events: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    error_types: list[str] = field(default_factory=list)  # what failure policies match on


def enter_activity(
    step: Step, proc: ProcessRecord, info: NodeInfo, old: StateRecord | None, entered: StateRecord
) -> Prepared | None:
    node = info.node
    assert isinstance(node, ServiceActivityNode)
    tx = step.tx
    core = step.core
    inputs = info.inputs
    refs = None
    if entered.retry and (override := tx.get_override(node.id)) is not None:
        inputs = {k: (bool(v["need_render"]), v["value"]) for k, v in override.items()}
    else:
        refs = static_references(info)
    root_data = core.root_data(tx, proc.root_id)
    try:
        rendered = resolve_inputs(
            core, tx, info.pipeline_id, node.id, inputs, info.output_map,
            entered.loop, entered.inner_loop, root_data, refs,
        )  # fmt: skip
    except HydrateError as exc:
        step.write_state(entered, old)
        _fail_unrun(
            step, proc, entered, node, inputs, f"inputs hydrate failed({exc}), check node log for details"
        )
        return None
    if not core.has_component(node.component_code, node.component_version):
        step.write_state(entered, old)
        msg = f"component '{node.component_code}' version '{node.component_version}' is not registered"
        _fail_unrun(step, proc, entered, node, inputs, msg)
        return None
    step.write_state(entered, old)
    policies.arm_timeout(step, info, entered)
    step.event("node_enter", root_pipeline_id=proc.root_id, node_id=node.id)
    step.event("pre_execute", root_pipeline_id=proc.root_id, node_id=node.id)
    proc.executing = entered.version
    step.save_process(proc)
    return Prepared.of(
        proc.id,
        node,
        entered.version,
        entered.loop,
        entered.inner_loop,
        proc.root_id,
        proc.top_pipeline_id,
        rendered,
        root_data,
    )


def _fail_unrun(
    step: Step, proc: ProcessRecord, entered: StateRecord, node: ServiceActivityNode,
    inputs: dict[str, tuple[bool, Any]], ex_data: str,
) -> None:  # fmt: skip
    """Fail a node whose service never ran: inputs are the static values as stored (SPEC 4.6)."""
    failed = entered.copy()
    failed.name = states.FAILED
    failed.archived = step.now
    step.write_state(failed, entered)
    outputs = {"ex_data": ex_data, "_result": False, "_loop": entered.loop, "_inner_loop": entered.inner_loop}
    step.tx.put_exec_data(node.id, dumps({k: v for k, (_, v) in inputs.items()}), dumps(outputs))
    proc.status = P_FAILED
    proc.executing = None
    step.save_process(proc)
    step.event("node_execute_fail", root_pipeline_id=proc.root_id, node_id=node.id)


def run_execute(core: EngineCore, prep: Prepared) -> ExecResult:
    """Call the user's ``execute`` (no transaction is open)."""
    service = core.make_service(prep)
    data, parent = core.data_objects(prep.inputs, {}, prep.root_data)
    events: list[str] = []
    error: BaseException | None = None
    core.hook(service, "node_enter", data, parent)
    core.hook(service, "pre_execute", data, parent)
    if signals.pre_service_execute.has_receivers():
        signals.pre_service_execute.send(sender=core.owner, service=service, data=data, parent_data=parent)
    try:
        value, ok = core.judge(service, data, service.execute(data, parent))
        if ok:
            core.hook(service, "post_execute", data, parent)
    except Exception as exc:
        value = False
        ok = False
        error = exc
        data.outputs["ex_data"] = traceback.format_exc()
        events.append("node_execute_exception")
        core.hook(service, "node_execute_exception", data, parent)
    stype = service.schedule_type() if ok else None
    res = ExecResult(
        prep, ok, value, dict(data.inputs), dict(data.outputs), stype, events, service_logs(service)
    )
    if not ok:
        res.error_types = policies.error_types_of(error, returned_false=error is None)
    return res


def record_execute(step: Step, proc: ProcessRecord, res: ExecResult) -> bool:
    """Apply an execute result. Returns True when the token moves on to the next node."""
    tx = step.tx
    prep = res.prepared
    # one read for the node and its root (a revoke while execute ran must stop any schedule)
    found = {s.node_id: s for s in tx.states_by_ids([prep.node_id, proc.root_id])}
    state = found.get(prep.node_id)
    root = found.get(proc.root_id)
    revoked = root is not None and root.name == states.REVOKED
    if proc.executing == prep.version:
        proc.executing = None
    if state is None or state.version != prep.version or state.name != states.RUNNING:
        # forced fail (or another operator action) won the race: the late result is discarded
        step.save_process(proc)
        return False
    info = step.core.plan(proc.root_id).info(prep.node_id)
    node = info.node
    assert isinstance(node, ServiceActivityNode)
    outputs = res.outputs
    outputs["_result"] = res.value if res.ok else False
    outputs["_loop"] = prep.loop + step.core.settings.rerun_index_offset
    outputs["_inner_loop"] = prep.inner_loop + step.core.settings.rerun_index_offset
    if res.ok:
        step.event("post_execute", root_pipeline_id=proc.root_id, node_id=prep.node_id)
    for ev in res.error_events:
        step.event(ev, root_pipeline_id=proc.root_id, node_id=prep.node_id, ex_data=outputs.get("ex_data"))
    try:
        out_blob = dumps(outputs)
        in_blob = dumps(res.inputs)
    except (TypeError, orjson.JSONEncodeError):
        bad = _first_bad_key(outputs)
        outputs = {"ex_data": f"outputs are not JSON serialisable: {bad}", "_result": False,
                   "_loop": outputs["_loop"], "_inner_loop": outputs["_inner_loop"]}  # fmt: skip
        out_blob = dumps(outputs)
        in_blob = dumps(_jsonable(res.inputs))
        res.ok = False
        res.schedule_type = None
    if res.logs:
        tx.add_logs([(prep.node_id, prep.version, line) for line in res.logs])
    if res.ok and res.schedule_type is not None:
        # the execute result is made durable before any poll runs: after a crash only the poll
        # is repeated, never execute. The first poll is due now; the worker runs it right after
        # this commit itself (step.poll_now), and recovery finds the due row if it cannot.
        if revoked:
            # revoked while execute ran: nothing of this pipeline is scheduled again
            tx.put_exec_data(prep.node_id, in_blob, out_blob)
            proc.status = P_DONE
            step.save_process(proc)
            step.fx.cancels.append((prep.node_id, prep.version))
            return False
        poll = res.schedule_type == ScheduleType.POLL
        due = step.now if poll else None
        sid = tx.insert_schedule(prep.node_id, prep.version, int(res.schedule_type), proc.id, due)
        tx.put_exec_data(prep.node_id, in_blob, out_blob)
        proc.status = P_SLEEP
        step.save_process(proc)
        if poll:
            sched = ScheduleRecord(sid, prep.node_id, prep.version, ScheduleType.POLL, proc.id, due=due)
            prep.inputs = res.inputs
            step.poll_now = ScheduleJob(sched, prep, outputs)
        return False
    tx.put_exec_data(prep.node_id, in_blob, out_blob)
    new = state.copy()
    cfg = loop_config(info)
    if cfg is not None:
        record_pass(step, info, cfg, outputs, prep.inner_loop)
    else:
        write_outputs(step, info, outputs)
    if res.ok or node.error_ignorable or (cfg is not None and cfg.get("fail_skip")):
        new.name = states.FINISHED
        new.error_ignored = not res.ok
        new.archived = step.now
        step.write_state(new, state)
        proc.current = next_after_pass(info, cfg, prep.inner_loop) if cfg is not None else info.next_id()
        step.save_process(proc)
        if proc.current != prep.node_id:  # no node_finish between the passes of a loop
            step.event("node_finish", root_pipeline_id=proc.root_id, node_id=prep.node_id)
            step.hook(node, "node_finish")
        return True
    new.name = states.FAILED
    new.archived = step.now
    step.write_state(new, state)
    proc.status = P_FAILED
    step.save_process(proc)
    step.event("node_execute_fail", root_pipeline_id=proc.root_id, node_id=prep.node_id)
    step.hook(node, "node_execute_fail")
    policies.on_failure(step, info, new, res.error_types or ["ReturnedFalse"])
    return False


def _first_bad_key(outputs: dict[str, Any]) -> str:
    for key, value in outputs.items():
        try:
            dumps(value)
        except (TypeError, orjson.JSONEncodeError):
            return str(key)
    return "?"


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        try:
            dumps(item)
            out[key] = item
        except (TypeError, orjson.JSONEncodeError):
            out[key] = repr(item)
    return out


INTERRUPTED = (
    "execution interrupted: the engine stopped while execute() was running; "
    "retry the node to run it again, or skip it"
)


def recover_interrupted(step: Step, pid: int) -> Prepared | None:
    """After a crash: re-execute an idempotent component, else fail the node (SPEC 13 row 3)."""
    tx = step.tx
    proc = tx.get_process(pid)
    if proc is None or not proc.executing:
        return None
    state = tx.get_state(proc.current)
    if state is None or state.version != proc.executing or state.name != states.RUNNING:
        proc.executing = None
        step.save_process(proc)
        step.fx.dispatch.append(pid)
        return None
    core = step.core
    info = core.plan(proc.root_id).info(proc.current)
    node = info.node
    assert isinstance(node, ServiceActivityNode)
    idempotent = False
    if core.has_component(node.component_code, node.component_version):
        idempotent = bool(
            getattr(core.service_class(node.component_code, node.component_version), "__idempotent__", False)
        )
    if not idempotent:
        failed = state.copy()
        step.fail_node(proc, failed, state, INTERRUPTED, merge_outputs=False)
        step.event("node_execute_fail", root_pipeline_id=proc.root_id, node_id=node.id)
        policies.on_failure(step, info, failed, ["ExecutionInterrupted"])
        return None
    inputs = info.inputs
    if state.retry and (override := tx.get_override(node.id)) is not None:
        inputs = {k: (bool(v["need_render"]), v["value"]) for k, v in override.items()}
    root_data = core.root_data(tx, proc.root_id)
    try:
        rendered = resolve_inputs(
            core,
            tx,
            info.pipeline_id,
            node.id,
            inputs,
            info.output_map,
            state.loop,
            state.inner_loop,
            root_data,
        )
    except HydrateError as exc:
        _fail_unrun(
            step, proc, state, node, inputs, f"inputs hydrate failed({exc}), check node log for details"
        )
        return None
    return Prepared.of(
        proc.id,
        node,
        state.version,
        state.loop,
        state.inner_loop,
        proc.root_id,
        proc.top_pipeline_id,
        rendered,
        root_data,
    )
