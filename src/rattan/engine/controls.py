"""Operator controls: each is one unit of work that checks its preconditions
against the committed state, changes states by compare-and-set and re-dispatches tokens.
A refused operation raises before anything is written."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rattan.components.service import ScheduleType
from rattan.engine import policies
from rattan.engine.checks import root_refused
from rattan.engine.loops import reset_outputs
from rattan.engine.schedule import expire
from rattan.engine.step import Step
from rattan.errors import InvalidOperationError, NotFoundError, ScheduleFinishedError
from rattan.ids import unique_id
from rattan.model import states
from rattan.model.codec import dumps
from rattan.model.messages import Advance, Callback
from rattan.model.records import CallbackRecord, ContextRow, ScheduleRecord
from rattan.model.states import TokenStatus
from rattan.runtime.interface import CallbackQuery, ScheduleQuery
from rattan.spec.model import GatewayNode, NodeType, ServiceActivityNode

if TYPE_CHECKING:
    from rattan.engine.plan import NodeInfo
    from rattan.model.records import StateRecord, TokenRecord

P_DONE, P_FAILED, P_READY = TokenStatus.DONE, TokenStatus.FAILED, TokenStatus.READY
P_SLEEP, P_SUSPENDED, P_WAITING = TokenStatus.SLEEP, TokenStatus.SUSPENDED, TokenStatus.WAITING


class StaleCallbackError(InvalidOperationError):
    """A callback named a version the node no longer has; its schedule is expired."""

    def __init__(self, message: str, schedule_id: int) -> None:
        super().__init__(message)
        self.schedule_id = schedule_id


def _state(step: Step, node_id: str) -> StateRecord:
    st = step.state(node_id)
    if st is None:
        raise NotFoundError(f"node({node_id}) does not exist")
    return st


def node_info(step: Step, node_id: str, call: str | None = None) -> NodeInfo:
    root = step.tx.roots_of([node_id]).get(node_id)
    if root is None:
        raise NotFoundError(f"node({node_id}) does not exist in any pipeline")
    if root == node_id:  # a run's root pipeline is no node of its plan: say so, not KeyError
        raise root_refused(node_id, call)
    return step.core.plans.plan(root).info(node_id)


def _parked(step: Step, node_id: str, statuses: tuple[str, ...] = (P_FAILED,)) -> TokenRecord:
    for proc in step.tokens_at(node_id):
        if proc.status in statuses:
            return proc
    raise InvalidOperationError(f"can not find sleep process with current node id: {node_id}")


def _require_failed(st: StateRecord) -> None:
    if st.name != states.FAILED:
        raise InvalidOperationError(f"{st.node_id} state is not FAILED, actual {st.name}")


def _set(step: Step, old: StateRecord, name: str, **changes: Any) -> StateRecord:
    # an operator's write must be a real transition: pausing a SUSPENDED pipeline or revoking a
    # REVOKED one is refused, not silently accepted
    states.check_transition(old.node_id, old.name, name)
    new = old.copy()
    new.name = name
    for key, value in changes.items():
        setattr(new, key, value)
    step.write_state(new, old)
    return new


def _expire_waits(step: Step, node_id: str, cancel: bool) -> None:
    """Expire a node's pending polls and callbacks; optionally ask its Service to cancel."""
    for sched in _live_schedules(step, node_id):
        expire(step, sched)
        if cancel:
            step.fx.cancels.append((node_id, sched.version))


def _live_schedules(step: Step, node_id: str) -> list[ScheduleRecord]:
    return step.tx.waits(ScheduleQuery(node_id=node_id, pending=True))


# -- whole pipeline ------------------------------------------------------------------------------
def _pipeline_state(step: Step, pipeline_id: str) -> StateRecord:
    """The state of a root pipeline or of a subprocess; any other node id is refused."""
    st = _state(step, pipeline_id)
    if st.root_id != pipeline_id and node_info(step, pipeline_id).kind != NodeType.SubProcess:
        raise InvalidOperationError(
            f"{pipeline_id} is not a pipeline: use a root pipeline id or a subprocess node id "
            "(pause_node_appoint / resume_node_appoint act on single nodes)"
        )
    return st


def pause_pipeline(step: Step, pipeline_id: str) -> None:
    st = _pipeline_state(step, pipeline_id)
    step.event("pre_pause_pipeline", pipeline_id=pipeline_id, pipeline=pipeline_id)
    _set(step, st, states.SUSPENDED)
    step.event("post_pause_pipeline", pipeline_id=pipeline_id)


def resume_pipeline(step: Step, pipeline_id: str) -> None:
    st = _pipeline_state(step, pipeline_id)
    if st.name != states.SUSPENDED:
        raise InvalidOperationError(f"pipeline({pipeline_id}) state is: {st.name}")
    step.event("pre_resume_pipeline", pipeline_id=pipeline_id)
    _set(step, st, states.RUNNING)
    for proc in step.tx.tokens(root_id=st.root_id or pipeline_id, statuses=[P_SUSPENDED]):
        step.wake(proc)
    step.event("post_resume_pipeline", pipeline_id=pipeline_id)


def revoke_pipeline(step: Step, pipeline_id: str) -> None:
    st = _state(step, pipeline_id)
    if st.root_id and st.root_id != pipeline_id:
        kind = step.core.plans.plan(st.root_id).info(pipeline_id).kind
        what = "a subprocess" if kind == NodeType.SubProcess else f"a {kind} node, not a pipeline"
        raise InvalidOperationError(f"{pipeline_id} is {what}: revoke the root pipeline {st.root_id}")
    step.event("pre_revoke_pipeline", pipeline_id=pipeline_id)
    _set(step, st, states.REVOKED, archived=step.now)
    for proc in step.tx.tokens(root_id=pipeline_id):
        if proc.status in (P_SLEEP, P_FAILED, P_SUSPENDED, P_WAITING):
            if proc.status == P_SLEEP:
                _expire_waits(step, proc.current, cancel=True)
            proc.status = P_DONE
            step.save_process(proc)
    step.event("post_revoke_pipeline", pipeline_id=pipeline_id)


# -- appointments --------------------------------------------------------------------------------
def _not_subprocess(info: NodeInfo, api: str) -> None:
    if info.kind == NodeType.SubProcess:
        raise InvalidOperationError(f"can not use {api} api for NodeType.SubProcess")


def _token_sits(step: Step, node_id: str) -> bool:
    return bool(step.tokens_at(node_id))


def pause_node_appoint(step: Step, node_id: str) -> None:
    info = node_info(step, node_id, "pause_node_appoint")
    _not_subprocess(info, "pause_node_appoint")
    st = step.state(node_id)
    if st is not None and st.name not in (states.READY, states.LOOP_READY):
        raise InvalidOperationError(
            f"node {node_id} is {st.name}: a pause can only be appointed before the node runs "
            "(no state, READY or LOOP_READY)"
        )
    sits = _token_sits(step, node_id)
    step.event("pre_pause_node", node_id=node_id)
    if sits:
        step.hook(info.node, "pre_pause_node", save=False)
    if st is None:
        new = step.new_state(node_id, "", "", states.SUSPENDED)
        new.started = None
        step.tx.put_state(new, None)
    else:
        _set(step, st, states.SUSPENDED)
    step.event("post_pause_node", node_id=node_id)
    if sits:
        step.hook(info.node, "post_pause_node", save=False)


def resume_node_appoint(step: Step, node_id: str) -> None:
    info = node_info(step, node_id, "resume_node_appoint")
    _not_subprocess(info, "resume_node_appoint")
    st = _state(step, node_id)
    if st.name != states.SUSPENDED:
        raise InvalidOperationError(f"node {node_id} is {st.name}, not SUSPENDED: nothing to resume")
    parked = [p for p in step.tokens_at(node_id) if p.status == P_SUSPENDED]
    step.event("pre_resume_node", node_id=node_id)
    if parked:
        step.hook(info.node, "pre_resume_node", save=False)
    _set(step, st, states.READY)
    for proc in parked:
        step.wake(proc)
    step.event("post_resume_node", node_id=node_id)
    if parked:
        step.hook(info.node, "post_resume_node", save=False)


# -- repair ---------------------------------------------------------------------------------------
def _loop_cfg(info: NodeInfo) -> dict[str, Any]:
    node = info.node
    cfg = node.loop_config if isinstance(node, ServiceActivityNode) else None
    return dict(cfg or {})


def retry_node(
    step: Step,
    node_id: str,
    data: dict[str, Any] | None,
    loop_retry: bool,
    subprocess: bool = False,
    escaped: list[str] | None = None,
) -> None:
    info = node_info(step, node_id, "retry_subprocess" if subprocess else "retry_node")
    node = info.node
    if subprocess:
        if info.kind != NodeType.SubProcess:
            raise InvalidOperationError(f"node({node_id}) type is not SubProcess")
    elif loop_retry:
        cfg = _loop_cfg(info)
        if not (cfg.get("retryable") and cfg.get("loop_times")):
            raise InvalidOperationError(f"node({node_id}) is not loop retryable")
    elif isinstance(node, ServiceActivityNode) and not node.can_retry:
        raise InvalidOperationError(f"can not retry node({node_id}) with can_retry(False)")
    st = _state(step, node_id)
    _require_failed(st)
    proc = _parked(step, node_id)
    _expire_waits(step, node_id, cancel=False)  # the failed pass's poll or callback wait ends here
    event = "retry_subprocess" if subprocess else "retry_node"
    payload: dict[str, Any] = {"node_id": node_id} if subprocess else {"node_id": node_id, "data": data}
    step.event("pre_" + event, **payload)
    if not subprocess:
        step.hook(info.node, "pre_retry_node", save=False)
    if data is not None and not subprocess:
        keep = set(escaped or []) | set(data.get("_escape_render_keys") or [])
        override = {
            k: {"need_render": k not in keep, "value": v}
            for k, v in data.items()
            if k != "_escape_render_keys"
        }
        step.tx.put_node_data(node_id, override=override)
    step.archive_history(st)
    reset_outputs(step, info, drop_last_only=loop_retry)
    if loop_retry:
        _set(step, st, states.LOOP_READY, version=unique_id("v"), started=None, archived=None)
    else:
        _set(step, st, states.READY, version=unique_id("v"), retry=st.retry + 1, started=None, archived=None)
    if subprocess and proc.stack and proc.stack[-1] == node_id:
        proc.stack.pop()
    step.wake(proc, node_id)
    step.event("post_" + event, **payload)
    if not subprocess:
        step.hook(info.node, "post_retry_node", save=False)


def skip_node(step: Step, node_id: str, loop_skip: bool = False) -> None:
    info = node_info(step, node_id, "skip_node")
    node = info.node
    if info.kind not in (NodeType.ServiceActivity, NodeType.EmptyStartEvent):
        raise InvalidOperationError(f"can not use skip_node api for {node.type}")  # bamboo's text
    if loop_skip:
        cfg = _loop_cfg(info)
        if not (cfg.get("skippable") and cfg.get("loop_times")):
            raise InvalidOperationError(f"node({node_id}) can not loop skip")
    elif isinstance(node, ServiceActivityNode) and not node.can_skip:
        raise InvalidOperationError("can not skip this node")
    st = _state(step, node_id)
    _require_failed(st)
    proc = _parked(step, node_id)
    step.event("pre_skip_node", node_id=node_id)
    _expire_waits(step, node_id, cancel=True)  # a failed schedule's job is stopped too
    step.hook(info.node, "pre_skip_node", save=False)
    step.archive_history(st)
    _set(step, st, states.FINISHED, skip=True, version=unique_id("v"), archived=step.now)
    step.wake(proc, info.next_id())
    step.event("post_skip_node", node_id=node_id)
    step.hook(info.node, "post_skip_node", save=False)


def skip_exclusive_gateway(step: Step, node_id: str, flow_id: str) -> None:
    info = node_info(step, node_id, "skip_exclusive_gateway")
    if info.kind != NodeType.ExclusiveGateway:
        raise InvalidOperationError(f"{node_id} is not exclusive gateway, actual: {info.node.type}")
    if flow_id not in info.node.outgoing:
        raise InvalidOperationError(f"flow {flow_id} is not an outgoing flow of exclusive gateway {node_id}")
    st = _state(step, node_id)
    _require_failed(st)
    proc = _parked(step, node_id)
    step.event("pre_skip_exclusive_gateway", node_id=node_id, flow_id=flow_id)
    step.archive_history(st)
    _set(step, st, states.FINISHED, skip=True, version=unique_id("v"), archived=step.now)
    step.wake(proc, info.pipeline.flow_target(flow_id))
    step.event("post_skip_exclusive_gateway", node_id=node_id, flow_id=flow_id)


def skip_conditional_parallel_gateway(
    step: Step, node_id: str, flow_ids: list[str], converge_gateway_id: str
) -> None:
    from rattan.engine.nodes import fork

    info = node_info(step, node_id, "skip_conditional_parallel_gateway")
    node = info.node
    if info.kind != NodeType.ConditionalParallelGateway:
        raise InvalidOperationError(f"{node_id} is not conditional parallel gateway, actual: {node.type}")
    assert isinstance(node, GatewayNode)
    if not flow_ids or not isinstance(flow_ids, list) or any(f not in node.outgoing for f in flow_ids):
        raise InvalidOperationError(f"flow_ids must be a non-empty list of outgoing flows of {node_id}")
    if converge_gateway_id != node.converge_gateway_id:
        raise InvalidOperationError(
            f"converge_gateway_id {converge_gateway_id} does not match {node_id}'s converge gateway "
            f"{node.converge_gateway_id}"
        )
    st = _state(step, node_id)
    _require_failed(st)
    proc = _parked(step, node_id)
    payload: dict[str, Any] = {
        "node_id": node_id,
        "flow_ids": flow_ids,
        "converge_gateway_id": converge_gateway_id,
    }
    step.event("pre_skip_conditional_parallel_gateway", **payload)
    step.archive_history(st)
    _set(step, st, states.FINISHED, skip=True, version=unique_id("v"), archived=step.now)
    proc.owner = step.core.owner_id
    first = fork(step, proc, info, list(flow_ids))
    step.fx.sends.append(Advance(first.id))
    step.event("post_skip_conditional_parallel_gateway", **payload)


def forced_fail_activity(
    step: Step, node_id: str, ex_data: str, by_timeout: bool = False, signal: bool = True
) -> None:
    info = node_info(step, node_id, "forced_fail_activity")
    if info.kind != NodeType.ServiceActivity:
        raise InvalidOperationError(f"{node_id} is not activity, actual: {info.node.type}")
    st = _state(step, node_id)
    if st.name != states.RUNNING:
        raise InvalidOperationError(f"{node_id} state is not RUNNING, actual: {st.name}")
    try:
        proc = _parked(step, node_id, (P_READY, P_SLEEP))
    except InvalidOperationError:
        raise InvalidOperationError(f"can not find process with current node id: {node_id}") from None
    step.event("pre_forced_fail_activity", node_id=node_id, ex_data=ex_data)
    step.hook(info.node, "pre_forced_fail_activity", save=False)
    prev = step.tx.node_data(node_id)
    executing = proc.executing == st.version
    inputs = {} if executing else (prev.inputs or {})
    outputs = {} if executing else (prev.outputs or {})
    outputs.update({"ex_data": ex_data, "_forced_failed": True})
    _expire_waits(step, node_id, cancel=True)
    if executing:
        step.fx.cancels.append((node_id, st.version))
    new = st.copy()
    new.name, new.version, new.archived = states.FAILED, unique_id("v"), step.now
    step.write_state(new, st, signal=signal)
    step.tx.put_node_data(node_id, inputs=dumps(inputs), outputs=dumps(outputs))
    proc.status = P_FAILED
    proc.executing = None
    step.save_process(proc)
    step.event(
        "post_forced_fail_activity",
        node_id=node_id,
        ex_data=ex_data,
        old_version=st.version,
        new_version=new.version,
    )
    if by_timeout:
        policies.on_failure(step, info, new, ["NodeTimeout"])
    step.hook(info.node, "post_forced_fail_activity", save=False)


def callback(step: Step, node_id: str, version: str, data: Any, idempotency_key: str | None) -> int:
    tx = step.tx
    st = _state(step, node_id)
    info = node_info(step, node_id, "callback")
    found = tx.waits(ScheduleQuery(node_id=node_id, version=version))
    sched = found[0] if found else None
    if sched is None:
        # no wait yet: the node's execute may still run (an outside system that answers fast).
        # Kept in the inbox, it is applied when the node starts waiting (record_execute), or
        # refused by the sweep if the node ends without waiting (schedule.refuse_unscheduled)
        running = st.version == version and st.name == states.RUNNING
        if not (running and isinstance(info.node, ServiceActivityNode)):
            raise NotFoundError(f"schedule not found for node {node_id} version {version}")
    elif sched.type == ScheduleType.POLL:
        raise InvalidOperationError(f"node {node_id} polls; it does not take callbacks")
    elif st.version != version:
        # the caller expires the schedule in a unit of its own: this one is rolled back
        raise StaleCallbackError(f"node version {version} not exist", sched.id)
    elif sched.finished or sched.expired:  # bamboo's messages, a type of their own
        raise ScheduleFinishedError(f"schedule is already {'finished' if sched.finished else 'expired'}")
    if idempotency_key is not None:
        existing = tx.waits(CallbackQuery(node_id=node_id, idem_key=idempotency_key))
        if existing:
            return existing[0].id  # a duplicate: acknowledged, applied once
    if sched is not None:
        _parked(step, node_id, (P_SLEEP,))
    step.event("pre_callback", node_id=node_id, version=version, data=data)
    cid = tx.put_wait(CallbackRecord(0, node_id, version, data, idempotency_key, created=step.now))
    step.hook(info.node, "pre_callback", save=False, callback_id=cid)
    if sched is not None and (sched.owner is None or sched.owner == step.core.owner_id):
        step.fx.sends.append(Callback(cid))  # else the schedule's owner finds it in its sweep
    step.event("post_callback", node_id=node_id, version=version, data=data)
    step.hook(info.node, "post_callback", save=False, callback_id=cid)
    return cid


def update_context_values(step: Step, pipeline_id: str, values: list[Any]) -> None:
    st = _state(step, pipeline_id)
    root = step.state(st.root_id or pipeline_id)
    if root is not None and root.name in (states.FINISHED, states.REVOKED):
        raise InvalidOperationError(
            f"pipeline {root.node_id} is {root.name}: its context can no longer change"
        )
    # only keys already in the context change
    rows = [ContextRow(pipeline_id, cv.key, int(cv.type), cv.value, cv.code) for cv in values]
    step.tx.put_context(rows, existing_only=True)
