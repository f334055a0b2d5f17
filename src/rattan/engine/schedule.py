"""Schedule steps: one poll or one callback of a waiting activity (SPEC 5.3 schedule phase).

A step reads the schedule and the node's execution data from committed state (no transaction),
runs the user's ``schedule()`` outside any transaction, then records the result by compare-and-set
in the same unit of work that moves the token on: a schedule whose node version changed (a forced
fail, a skip, a retry) is marked expired and its result dropped. The first poll of a POLL node runs
right after ``execute`` in the same worker (SPEC: "the first poll is dispatched immediately").
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rattan import signals, states
from rattan.components.service import ScheduleType
from rattan.engine import policies
from rattan.engine.jobs import Prepared, service_logs
from rattan.engine.loops import loop_config, next_after_pass, record_pass
from rattan.engine.nodes import write_outputs
from rattan.engine.records import ScheduleRecord
from rattan.engine.step import P_DONE, P_FAILED, P_READY, P_SLEEP, Step, root_revoked
from rattan.runtime.queries import dumps

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.engine.records import CallbackRecord, ProcessRecord, StateRecord
    from rattan.runtime.queries import Tx


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


def load_job(core: EngineCore, tx: Tx, sid: int, callback_id: int | None) -> ScheduleJob | int | None:
    """What one schedule step needs, read from committed data. Returns the schedule id when the
    schedule is stale (the caller expires it), None when there is nothing to do."""
    sched = tx.get_schedule(sid)
    if sched is None or sched.finished or sched.expired:
        return None
    state = tx.get_state(sched.node_id)
    if state is None or state.version != sched.version or state.name != states.RUNNING:
        return sid
    cb = None
    if callback_id is not None:
        # callbacks of one schedule are applied one at a time, in arrival order
        first = tx.first_pending_callback(sched.node_id, sched.version)
        cb = tx.get_callback(first) if first is not None else None
        if cb is None:
            return None
    proc = tx.get_process(sched.process_id)
    if proc is None:
        return None
    data = tx.get_exec_data(sched.node_id)
    info = core.plan(proc.root_id).info(sched.node_id)
    node: Any = info.node
    prep = Prepared.of(
        proc.id,
        node,
        state.version,
        state.loop,
        state.inner_loop,
        proc.root_id,
        info.pipeline_id,
        data.inputs if data else {},
        core.root_data(tx, proc.root_id),
    )
    return ScheduleJob(sched, prep, data.outputs if data else {}, cb)


def expire_schedule(step: Step, sid: int) -> None:
    sched = step.tx.get_schedule(sid)
    if sched is not None:
        expire(step, sched)


def expire(step: Step, sched: ScheduleRecord) -> None:
    """No more polls or callbacks for this schedule: stored callbacks not yet applied are refused
    (so a restart does not dispatch them again)."""
    if not sched.finished:
        sched.expired = True
        sched.due = None
        _save(step.tx, sched)
    for cid in step.tx.pending_callbacks_of(sched.node_id, sched.version):
        step.tx.mark_callback(cid, 2)


def run_schedule(core: EngineCore, job: ScheduleJob) -> ScheduleResult:
    """Call the user's ``schedule()`` (no transaction is open)."""
    prep = job.prepared
    service = core.make_service(prep)
    data, parent = core.data_objects(prep.inputs, dict(job.outputs), prep.root_data)
    events: list[str] = []
    error: BaseException | None = None
    callback_data = job.callback.data if job.callback is not None else None
    core.hook(service, "pre_schedule", data, parent)
    if signals.pre_service_schedule.has_receivers():
        signals.pre_service_schedule.send(
            sender=core.owner, service=service, data=data, parent_data=parent, callback_data=job.callback
        )
    try:
        value, ok = core.judge(service, data, service.schedule(data, parent, callback_data))
        if ok:
            core.hook(service, "post_schedule", data, parent)
    except Exception as exc:
        value, ok = False, False
        error = exc
        data.outputs["ex_data"] = traceback.format_exc()
        events.append("node_schedule_exception")
        core.hook(service, "node_schedule_exception", data, parent, callback_data=job.callback)
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


def record_schedule(step: Step, proc: ProcessRecord, res: ScheduleResult) -> bool:
    """Apply a schedule result. True when the node completed and the token moves on."""
    tx = step.tx
    job = res.job
    if job.callback is not None:
        tx.mark_callback(job.callback.id, 1)
    sched, state = tx.schedule_and_state(job.schedule.id)
    if sched is None or sched.finished or sched.expired:
        return False
    if state is None or state.version != sched.version or state.name != states.RUNNING:
        sched.expired = True
        sched.due = None
        tx.save_schedule(sched)
        return False
    return apply_schedule(step, proc, state, sched, res)


def apply_schedule(
    step: Step, proc: ProcessRecord, state: StateRecord, sched: ScheduleRecord, res: ScheduleResult
) -> bool:
    tx = step.tx
    prep = res.job.prepared
    offset = step.core.settings.rerun_index_offset
    outputs = res.outputs
    ok = res.ok
    if res.interval_error:
        ok = False
        outputs["ex_data"] = "interval generator returned None"
    outputs["_result"] = res.value if ok else False
    outputs["_loop"] = prep.loop + offset
    outputs["_inner_loop"] = prep.inner_loop + offset
    step.event("pre_schedule", root_pipeline_id=prep.root_id, node_id=prep.node_id)
    if res.ok:
        step.event("post_schedule", root_pipeline_id=prep.root_id, node_id=prep.node_id)
    for ev in res.events:
        step.event(ev, root_pipeline_id=prep.root_id, node_id=prep.node_id, ex_data=outputs.get("ex_data"))
    cb_id = res.job.callback.id if res.job.callback is not None else None
    tx.put_exec_data(prep.node_id, dumps(res.inputs), dumps(outputs))
    if res.logs:
        tx.add_logs([(prep.node_id, prep.version, line) for line in res.logs])
    sched.times += 1
    info = step.core.plan(prep.root_id).info(prep.node_id)
    node: Any = info.node
    if ok and not res.finished and root_revoked(step, proc):
        # revoked while this step ran: no further poll or callback, and the job is cancelled
        expire(step, sched)
        proc.status = P_DONE
        step.save_process(proc)
        step.fx.cancels.append((prep.node_id, prep.version))
        return False
    if ok and not res.finished:
        if res.delay is not None:
            sched.due = step.now + res.delay
            _save(tx, sched)
            step.fx.polls.append((sched.due, sched.id))
        else:
            sched.due = None
            _save(tx, sched)
            nxt = tx.first_pending_callback(sched.node_id, sched.version)
            if nxt is not None:
                step.fx.callbacks.append(nxt)
        if proc.status != P_SLEEP:
            proc.status = P_SLEEP
            step.save_process(proc)
        return False
    sched.due = None
    new = state.copy()
    new.archived = step.now
    cfg = loop_config(info)
    if cfg is not None:
        record_pass(step, info, cfg, outputs, prep.inner_loop)
    else:
        write_outputs(step, info, outputs)
    if ok or node.error_ignorable or (cfg is not None and cfg.get("fail_skip")):
        sched.finished = True
        _save(tx, sched)
        new.name = states.FINISHED
        new.error_ignored = not ok
        step.write_state(new, state)
        proc.current = next_after_pass(info, cfg, prep.inner_loop) if cfg is not None else info.next_id()
        proc.status = P_READY
        step.save_process(proc)
        if proc.current != prep.node_id:
            step.event("node_finish", root_pipeline_id=prep.root_id, node_id=prep.node_id)
        step.hook(node, "node_finish", callback_id=cb_id)
        return True
    _save(tx, sched)
    new.name = states.FAILED
    step.write_state(new, state)
    proc.status = P_FAILED
    step.save_process(proc)
    step.event("node_schedule_fail", root_pipeline_id=prep.root_id, node_id=prep.node_id)
    step.hook(node, "node_schedule_fail", callback_id=cb_id)
    policies.on_failure(step, info, new, res.error_types or ["ReturnedFalse"])
    return False


def _save(tx: Tx, sched: ScheduleRecord) -> None:
    """Update a stored schedule, or insert the first poll's schedule (id 0) with its final fields."""
    if sched.id:
        tx.save_schedule(sched)
    else:
        tx.insert_schedule_record(sched)
