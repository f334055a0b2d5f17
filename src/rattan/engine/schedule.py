"""Schedule steps: one poll or one callback of a waiting activity.

A step reads the schedule and the node's execution data from committed state (no transaction),
runs the user's ``schedule()`` outside any transaction, then records the result by compare-and-set
in the same unit of work that moves the token on: a schedule whose node version changed (a forced
fail, a skip, a retry) is marked expired and its result dropped. The first poll of a POLL node runs
right after ``execute`` in the same worker: the first poll is dispatched immediately.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rattan import signals
from rattan.components.service import ScheduleType
from rattan.engine import policies
from rattan.engine.jobs import Prepared, service_logs
from rattan.engine.passes import close_pass, seal
from rattan.engine.step import root_revoked
from rattan.model import states
from rattan.model.messages import Callback, Poll
from rattan.model.records import CALLBACK_APPLIED, CALLBACK_REFUSED, CallbackRecord, ScheduleRecord
from rattan.model.states import TokenStatus
from rattan.runtime.interface import CallbackQuery, ScheduleQuery

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.engine.step import Step
    from rattan.model.records import StateRecord, TokenRecord
    from rattan.runtime.interface import Reads


@dataclass(slots=True)
class ScheduleJob:
    schedule: ScheduleRecord
    prepared: Prepared
    outputs: dict[str, Any]
    callback: CallbackRecord | None = None


@dataclass(slots=True)
class ScheduleResult:
    job: ScheduleJob
    ok: bool
    value: Any
    finished: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    delay: float | None = None
    interval_error: bool = False
    events: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    error_types: list[str] = field(default_factory=list)


def schedule_of(tx: Reads, sid: int) -> ScheduleRecord | None:
    found = tx.waits(ScheduleQuery(id=sid))
    return found[0] if found else None


def pending_callbacks(tx: Reads, node_id: str, version: str) -> list[CallbackRecord]:
    """A schedule's callbacks not yet applied, in arrival order."""
    return tx.waits(CallbackQuery(node_id=node_id, version=version, pending=True))


def load_job(core: EngineCore, tx: Reads, sid: int, callback: bool) -> ScheduleJob | int | None:
    """What one schedule step needs, read from committed data (``callback``: the step applies
    the schedule's first pending callback). Returns the schedule id when the schedule is stale
    (the caller expires it), None when there is nothing to do."""
    sched = schedule_of(tx, sid)
    if sched is None or sched.finished or sched.expired:
        return None
    found = tx.states([sched.node_id])
    state = found[0] if found else None
    if state is None or state.version != sched.version or state.name != states.RUNNING:
        return sid
    cb = None
    if callback:
        # callbacks of one schedule are applied one at a time, in arrival order
        pending = pending_callbacks(tx, sched.node_id, sched.version)
        if not pending:
            return None
        cb = pending[0]
    tokens = tx.tokens([sched.process_id])
    if not tokens:
        return None
    proc = tokens[0]
    data = tx.node_data(sched.node_id)
    info = core.plans.plan(proc.root_id).info(sched.node_id)
    prep = Prepared.of(
        proc.id, info.node, state.version, state.loop, state.inner_loop, proc.root_id, info.pipeline_id,
        data.inputs or {}, core.plans.root_data(tx, proc.root_id),
    )  # fmt: skip
    return ScheduleJob(sched, prep, data.outputs or {}, cb)


def expire_schedule(step: Step, sid: int) -> None:
    sched = schedule_of(step.tx, sid)
    if sched is not None:
        expire(step, sched)


def expire(step: Step, sched: ScheduleRecord) -> None:
    """No more polls or callbacks for this schedule: stored callbacks not yet applied are refused
    (so no engine dispatches them again)."""
    if not sched.finished:
        sched.expired = True
        sched.due = None
        step.tx.put_wait(sched)
    for cb in pending_callbacks(step.tx, sched.node_id, sched.version):
        cb.applied = CALLBACK_REFUSED
        step.tx.put_wait(cb)


def refuse_unscheduled(step: Step) -> int:
    """Refuse the callbacks that came while their node's ``execute`` ran once the node has moved
    on without waiting for one (it finished, failed, polls, or was retried, skipped or revoked);
    those of a node whose execute still runs stay. Returns how many were refused."""
    tx = step.tx
    refused = 0
    for cb in tx.waits(CallbackQuery(pending=True, unscheduled=True)):
        found = tx.states([cb.node_id])
        st = found[0] if found else None
        waits = tx.waits(ScheduleQuery(node_id=cb.node_id, version=cb.version))
        if st is not None and st.version == cb.version and st.name == states.RUNNING and not waits:
            continue  # execute still runs: the callback waits for the node to wait
        if waits:
            why = "the node polls: it takes no callbacks"
        elif st is None or st.version != cb.version:
            why = "the node was entered again (retried, skipped or looped) before it waited"
        else:
            why = f"the node ended {st.name} without waiting for a callback"
        cb.applied = CALLBACK_REFUSED
        tx.put_wait(cb)
        step.event("callback_refused", node_id=cb.node_id, version=cb.version, callback_id=cb.id, reason=why)
        refused += 1
    return refused


def run_schedule(core: EngineCore, job: ScheduleJob) -> ScheduleResult:
    """Call the user's ``schedule()`` (no transaction is open)."""
    prep = job.prepared
    services = core.services
    service = services.make_service(prep)
    data, parent = services.data_objects(prep.inputs, dict(job.outputs), prep.root_data)
    events: list[str] = []
    error: BaseException | None = None
    callback_data = job.callback.data if job.callback is not None else None
    services.hook(service, "pre_schedule", data, parent)
    if signals.pre_service_schedule.has_receivers():
        signals.pre_service_schedule.send(
            sender=core.sender, service=service, data=data, parent_data=parent, callback_data=job.callback
        )
    try:
        value, ok = services.judge(service, data, service.schedule(data, parent, callback_data))
        if ok:
            services.hook(service, "post_schedule", data, parent)
    except Exception as exc:
        value, ok = False, False
        error = exc
        data.outputs["ex_data"] = traceback.format_exc()
        events.append("node_schedule_exception")
        services.hook(service, "node_schedule_exception", data, parent, callback_data=job.callback)
    stype = ScheduleType(job.schedule.type)
    finished = ok and (stype == ScheduleType.CALLBACK or service.is_schedule_finished())
    res = ScheduleResult(
        job,
        ok,
        value,
        finished,
        dict(data.inputs),
        dict(data.outputs),
        events=events,
        logs=service_logs(service),
    )
    if not ok:
        res.error_types = policies.error_types_of(error, returned_false=error is None)
    if ok and not finished and stype == ScheduleType.POLL:
        gen = service.interval
        if gen is None:
            res.interval_error = True
        else:
            gen.count = job.schedule.times  # this poll is number times+1; next() counts it
            delay = gen.next()
            if delay is None:
                res.interval_error = True
            else:
                res.delay = max(0.0, float(delay))
    return res


def record_schedule(step: Step, proc: TokenRecord, res: ScheduleResult) -> bool:
    """Apply a schedule result. True when the node completed and the token moves on."""
    tx = step.tx
    job = res.job
    sched = schedule_of(tx, job.schedule.id)
    owner = step.core.owner_id
    shared = step.core.dispatcher.shares_memory
    if not shared and sched is not None and sched.times != job.schedule.times:
        # a dispatcher across processes (Celery) hands steps to any of them: another step was
        # recorded since this one was loaded, so this one is stale (a callback it carried stays
        # pending)
        return False
    if job.callback is not None:
        job.callback.applied = CALLBACK_APPLIED
        tx.put_wait(job.callback)
    if sched is None or sched.finished or sched.expired:
        return False
    if sched.owner != owner:
        if not shared:  # the process that ran the step records it and owns the schedule from now on
            sched.owner = owner
        elif sched.owner is not None and owner is not None:
            # another engine took the schedule over (it thought this one was gone): it is in charge
            return False
    found = tx.states((sched.node_id,))
    state = found[0] if found else None
    if state is None or state.version != sched.version or state.name != states.RUNNING:
        sched.expired = True
        sched.due = None
        tx.put_wait(sched)
        return False
    return apply_schedule(step, proc, state, sched, res)


def apply_schedule(
    step: Step, proc: TokenRecord, state: StateRecord, sched: ScheduleRecord, res: ScheduleResult
) -> bool:
    tx = step.tx
    prep = res.job.prepared
    ok = res.ok
    outputs = res.outputs
    if res.interval_error:
        ok = False
        outputs["ex_data"] = "interval generator returned None"
    ex_data = outputs.get("ex_data")
    outputs, in_blob, out_blob, encoded = seal(step, prep, res.inputs, outputs, res.value, ok)
    ok = ok and encoded
    step.node_event("pre_schedule", prep.root_id, prep.node_id)
    if res.ok:
        step.node_event("post_schedule", prep.root_id, prep.node_id)
    for ev in res.events:
        step.event(ev, root_pipeline_id=prep.root_id, node_id=prep.node_id, ex_data=ex_data)
    tx.put_node_data(prep.node_id, inputs=in_blob, outputs=out_blob, logs=(prep.version, res.logs))
    sched.times += 1
    if ok and not res.finished and root_revoked(step, proc):
        # revoked while this step ran: no further poll or callback, and the job is cancelled
        expire(step, sched)
        proc.status = TokenStatus.DONE
        step.save_process(proc)
        step.fx.cancels.append((prep.node_id, prep.version))
        return False
    if ok and not res.finished:
        if res.delay is not None:
            sched.due = step.now + res.delay
            tx.put_wait(sched)
            step.fx.later.append((sched.due, Poll(sched.id)))
        else:
            sched.due = None
            tx.put_wait(sched)
            pending = pending_callbacks(tx, sched.node_id, sched.version)
            if pending:
                step.fx.sends.append(Callback(pending[0].id))
        if proc.status != TokenStatus.SLEEP:
            proc.status = TokenStatus.SLEEP
            step.save_process(proc)
        return False
    cb_id = res.job.callback.id if res.job.callback is not None else None
    info = step.core.plans.plan(prep.root_id).info(prep.node_id)
    moved = close_pass(
        step, proc, info, state, outputs, ok, "node_schedule_fail", res.error_types, callback_id=cb_id
    )
    # a finished node's schedule is done; a failed one's stays (a skip or retry expires it)
    sched.due = None
    sched.finished = moved
    tx.put_wait(sched)
    return moved
