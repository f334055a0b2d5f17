"""Service activities: enter (durable), execute user code (outside any transaction), record.

``enter_activity`` runs in the worker's transaction and returns a ``Prepared`` when the
user's ``execute`` must run; the worker commits first, so after a crash the store shows the node
RUNNING with the token's ``executing`` set to its version: recovery then knows ``execute`` was
interrupted. ``record_execute`` applies the result by compare-and-set on the
version and closes the pass through ``passes.close_pass``, as a schedule step does.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rattan import signals
from rattan.components.service import ScheduleType
from rattan.engine import policies
from rattan.engine.inputs import HydrateError, resolve_inputs, static_references, store_loop_counters
from rattan.engine.jobs import Prepared, service_logs
from rattan.engine.passes import close_pass, seal
from rattan.engine.prepare import registered_component_keys
from rattan.engine.schedule import ScheduleJob, pending_callbacks
from rattan.engine.step import Step
from rattan.model import states
from rattan.model.codec import dumps
from rattan.model.messages import Callback
from rattan.model.records import ScheduleRecord, StateRecord, TokenRecord
from rattan.model.states import TokenStatus
from rattan.spec.model import ServiceActivityNode
from rattan.validator import unregistered_message

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.engine.plan import NodeInfo
    from rattan.model.messages import Execute
    from rattan.runtime.interface import Reads


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


def _static_inputs(tx: Reads, info: NodeInfo, state: StateRecord) -> dict[str, tuple[bool, Any]] | None:
    """The inputs a ``retry_node(data=...)`` put in place of the tree's, or None: the tree's. They
    hold for every later pass of the node too, until a retry with data replaces them."""
    # Only a retried node can have them, so a first pass skips the read: a normal retry keeps
    # retry > 0 until the node is re-entered, and re-entry makes loop > 1 for good; a loop retry
    # keeps both counters, but only a node with a loop_config can be loop-retried.
    node = info.node
    looped = isinstance(node, ServiceActivityNode) and bool(node.loop_config)
    if state.retry or state.loop > 1 or looped:
        override = tx.node_data(node.id).override
        if override is not None:
            return {k: (bool(v["need_render"]), v["value"]) for k, v in override.items()}
    return None


def render(core: EngineCore, tx: Reads, proc: TokenRecord, info: NodeInfo, state: StateRecord) -> Prepared:
    """The node's ``Prepared`` with its inputs rendered now; raises HydrateError."""
    node = info.node
    assert isinstance(node, ServiceActivityNode)
    inputs = _static_inputs(tx, info, state)
    refs = static_references(info) if inputs is None else None
    root_data = core.plans.root_data(tx, proc.root_id)
    rendered = resolve_inputs(
        core, tx, info.pipeline_id, node.id, inputs if inputs is not None else info.inputs, info.output_map,
        state.loop, state.inner_loop, root_data, refs,
    )  # fmt: skip
    return Prepared.of(
        proc.id, node, state.version, state.loop, state.inner_loop, proc.root_id, proc.top_pipeline_id,
        rendered, root_data,
    )  # fmt: skip


def enter_activity(
    step: Step, proc: TokenRecord, info: NodeInfo, old: StateRecord | None, entered: StateRecord
) -> Prepared | None:
    node = info.node
    assert isinstance(node, ServiceActivityNode)
    core = step.core
    if info.output_map:
        store_loop_counters(
            core, step.tx, info.pipeline_id, info.output_map, entered.loop, entered.inner_loop
        )
    try:
        prepared = render(core, step.tx, proc, info, entered)
    except HydrateError as exc:
        step.write_state(entered, old)
        _fail_unrun(step, proc, entered, info, f"inputs hydrate failed({exc}), check node log for details")
        return None
    if not core.services.has_component(node.component_code, node.component_version):
        step.write_state(entered, old)
        known = registered_component_keys(core)
        msg = unregistered_message(node.component_code, node.component_version, known) or (
            f"component '{node.component_code}' version '{node.component_version}' is not registered"
        )
        _fail_unrun(step, proc, entered, info, msg)
        return None
    step.write_state(entered, old)
    policies.arm_timeout(step, info, entered)
    step.node_event("node_enter", proc.root_id, node.id)
    step.node_event("pre_execute", proc.root_id, node.id)
    proc.executing = entered.version
    step.save_process(proc)
    return prepared


def _fail_unrun(step: Step, proc: TokenRecord, entered: StateRecord, info: NodeInfo, ex_data: str) -> None:
    """Fail a node whose service never ran: inputs are the static values as stored."""
    replaced = _static_inputs(step.tx, info, entered)
    inputs = info.inputs if replaced is None else replaced  # retry data {} replaces them with none
    failed = entered.copy()
    failed.name = states.FAILED
    failed.archived = step.now
    step.write_state(failed, entered)
    outputs = {"ex_data": ex_data, "_result": False, "_loop": entered.loop, "_inner_loop": entered.inner_loop}
    step.tx.put_node_data(
        info.node.id, inputs=dumps({k: v for k, (_, v) in inputs.items()}), outputs=dumps(outputs)
    )
    proc.status = TokenStatus.FAILED
    proc.executing = None
    step.save_process(proc)
    step.node_event("node_execute_fail", proc.root_id, info.node.id)


def run_execute(core: EngineCore, prep: Prepared) -> ExecResult:
    """Call the user's ``execute`` (no transaction is open)."""
    services = core.services
    service = services.make_service(prep)
    data, parent = services.data_objects(prep.inputs, {}, prep.root_data)
    events: list[str] = []
    error: BaseException | None = None
    services.hook(service, "node_enter", data, parent)
    services.hook(service, "pre_execute", data, parent)
    if signals.pre_service_execute.has_receivers():
        signals.pre_service_execute.send(sender=core.sender, service=service, data=data, parent_data=parent)
    try:
        value, ok = services.judge(service, data, service.execute(data, parent))
        if ok:
            services.hook(service, "post_execute", data, parent)
    except Exception as exc:
        value = False
        ok = False
        error = exc
        data.outputs["ex_data"] = traceback.format_exc()
        events.append("node_execute_exception")
        services.hook(service, "node_execute_exception", data, parent)
    stype = service.schedule_type() if ok else None
    res = ExecResult(
        prep, ok, value, dict(data.inputs), dict(data.outputs), stype, events, service_logs(service)
    )
    if not ok:
        res.error_types = policies.error_types_of(error, returned_false=error is None)
    return res


def record_execute(step: Step, proc: TokenRecord, res: ExecResult) -> bool:
    """Apply an execute result. Returns True when the token moves on to the next node."""
    tx = step.tx
    prep = res.prepared
    # one read for the node and its root (a revoke while execute ran must stop any schedule)
    found = {s.node_id: s for s in tx.states([prep.node_id, proc.root_id])}
    state = found.get(prep.node_id)
    root = found.get(proc.root_id)
    revoked = root is not None and root.name == states.REVOKED
    if proc.executing == prep.version:
        proc.executing = None
    if state is None or state.version != prep.version or state.name != states.RUNNING:
        # forced fail (or another operator action) won the race: the late result is discarded
        step.save_process(proc)
        return False
    info = step.core.plans.plan(proc.root_id).info(prep.node_id)
    ex_data = res.outputs.get("ex_data")
    outputs, in_blob, out_blob, ok = seal(step, prep, res.inputs, res.outputs, res.value, res.ok)
    if res.ok:
        step.node_event("post_execute", proc.root_id, prep.node_id)
    for ev in res.error_events:
        step.event(ev, root_pipeline_id=proc.root_id, node_id=prep.node_id, ex_data=ex_data)
    if not ok:
        res.ok = False
        res.schedule_type = None
    if res.ok and res.schedule_type is not None:
        # the execute result is made durable before any poll runs: after a crash only the poll
        # is repeated, never execute. The first poll is due now; the worker runs it right after
        # this commit itself (step.poll_now), and recovery finds the due row if it cannot.
        tx.put_node_data(prep.node_id, inputs=in_blob, outputs=out_blob, logs=(prep.version, res.logs))
        if revoked:
            # revoked while execute ran: nothing of this pipeline is scheduled again
            proc.status = TokenStatus.DONE
            step.save_process(proc)
            step.fx.cancels.append((prep.node_id, prep.version))
            return False
        poll = res.schedule_type == ScheduleType.POLL
        sched = ScheduleRecord(
            0, prep.node_id, prep.version, res.schedule_type, proc.id,
            due=step.now if poll else None, owner=step.core.owner_id,
        )  # fmt: skip
        tx.put_wait(sched)
        proc.status = TokenStatus.SLEEP
        step.save_process(proc)
        if poll:
            prep.inputs = res.inputs
            step.poll_now = ScheduleJob(sched, prep, outputs)
        else:  # callbacks that came while execute ran are applied now, in arrival order
            early = pending_callbacks(tx, prep.node_id, prep.version)
            if early:
                step.fx.sends.append(Callback(early[0].id))
        return False
    tx.put_node_data(prep.node_id, inputs=in_blob, outputs=out_blob, logs=(prep.version, res.logs))
    return close_pass(step, proc, info, state, outputs, res.ok, "node_execute_fail", res.error_types)


INTERRUPTED = (
    "execution interrupted: the engine stopped while execute() was running; "
    "retry the node to run it again, or skip it"
)


def claim_token(step: Step, proc: TokenRecord, sender: str) -> bool:
    """Across processes, a message may reach one engine while another owns its token: take the
    token from ``sender`` (the owner that sent the message; a compare-and-set on the token), or
    refuse when another engine took it over since (its own message is the live one). Two copies
    of one message (a redelivery, a message of a dead owner beside the claimer's) so never both
    run user code."""
    me = step.core.owner_id
    if proc.owner == me:
        return True
    if proc.owner != sender:
        return False
    proc.owner = me
    step.save_process(proc)
    return True


def claim_execute(step: Step, token_id: int, version: str, sender: str) -> bool:
    """Claim the token an Execute message names, while it still enters that version."""
    proc = step.token(token_id)
    return proc is not None and proc.executing == version and claim_token(step, proc, sender)


def recover_interrupted(step: Step, pid: int, sender: str = "") -> Prepared | None:
    """The owner of a token died while its ``execute`` ran: re-execute an idempotent component,
    else fail the node. ``sender``: the engine whose lease claimed the token,
    when the message crossed processes (see ``claim_token``)."""
    proc = step.token(pid)
    if proc is None or not proc.executing or proc.status != TokenStatus.READY:
        return None
    if sender and not claim_token(step, proc, sender):
        return None
    state = step.state(proc.current)
    if state is None or state.version != proc.executing or state.name != states.RUNNING:
        proc.executing = None
        step.wake(proc)
        return None
    core = step.core
    info = core.plans.plan(proc.root_id).info(proc.current)
    node = info.node
    assert isinstance(node, ServiceActivityNode)
    if not core.services.is_idempotent(node):
        failed = state.copy()
        step.fail_node(proc, failed, state, INTERRUPTED, merge_outputs=False)
        step.node_event("node_execute_fail", proc.root_id, node.id)
        policies.on_failure(step, info, failed, ["ExecutionInterrupted"])
        return None
    try:
        store_loop_counters(core, step.tx, info.pipeline_id, info.output_map, state.loop, state.inner_loop)
        return render(core, step.tx, proc, info, state)
    except HydrateError as exc:
        _fail_unrun(step, proc, state, info, f"inputs hydrate failed({exc}), check node log for details")
        return None


def load_execute(core: EngineCore, tx: Reads, msg: Execute) -> Prepared | ExecResult | None:
    """What an Execute message needs when its sender's memory is not at hand (another process):
    the node's inputs rendered again from committed data. None when the message is stale; an
    ExecResult that fails the node when the inputs no longer render."""
    found = tx.tokens([msg.token_id])
    proc = found[0] if found else None
    if proc is None or proc.executing != msg.version:
        return None
    states_found = tx.states([msg.node_id])
    state = states_found[0] if states_found else None
    if state is None or state.version != msg.version or state.name != states.RUNNING:
        return None
    info = core.plans.plan(proc.root_id).info(msg.node_id)
    try:
        return render(core, tx, proc, info, state)
    except HydrateError as exc:
        node: Any = info.node
        prep = Prepared.of(
            proc.id,
            node,
            state.version,
            state.loop,
            state.inner_loop,
            proc.root_id,
            proc.top_pipeline_id,
            {},
            {},
        )
        failure = {"ex_data": f"inputs hydrate failed({exc}), check node log for details"}
        return ExecResult(prep, False, False, {}, failure, error_types=["HydrateError"])
