"""Schedule steps: one poll or one callback of a waiting activity (SPEC 5.3 schedule phase).

A step reads the schedule and the node's execution data, runs the user's ``schedule()`` outside any
transaction, then records the result by compare-and-set: a schedule whose node version changed (a
forced fail, a skip, a retry) is marked expired and its result dropped.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rattan import states
from rattan.components.service import ScheduleType
from rattan.engine.activity import Prepared, service_logs
from rattan.engine.loops import loop_config, next_after_pass, record_pass
from rattan.engine.nodes import write_outputs
from rattan.engine.step import P_FAILED, P_READY, Step
from rattan.runtime.queries import dumps

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.engine.records import CallbackRecord, ScheduleRecord, StateRecord


@dataclass(slots=True)
class ScheduleJob:
    schedule: ScheduleRecord
    state: StateRecord
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


def load_job(core: EngineCore, step: Step, sid: int, callback_id: int | None) -> ScheduleJob | None:
    """Read what one schedule step needs, or expire a stale schedule and return None."""
    tx = step.tx
    sched = tx.get_schedule(sid)
    if sched is None or sched.finished or sched.expired:
        if callback_id is not None:
            tx.mark_callback(callback_id, 2)
        return None
    state = tx.get_state(sched.node_id)
    if state is None or state.version != sched.version or state.name != states.RUNNING:
        sched.expired = True
        sched.due = None
        tx.save_schedule(sched)
        if callback_id is not None:
            tx.mark_callback(callback_id, 2)
        return None
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
    prep = Prepared(
        proc.id, state.node_id, state.version, proc.root_id, info.pipeline_id, state.loop, state.inner_loop,
        node.name, node.component_code, node.component_version, data.inputs if data else {},
        core.root_data(tx, proc.root_id),
    )  # fmt: skip
    return ScheduleJob(sched, state, prep, data.outputs if data else {}, cb)


def run_schedule(core: EngineCore, job: ScheduleJob) -> ScheduleResult:
    """Call the user's ``schedule()`` (no transaction is open)."""
    prep = job.prepared
    service = core.make_service(prep)
    data, parent = core.data_objects(prep.inputs, dict(job.outputs), prep.root_data)
    events: list[str] = []
    callback_data = job.callback.data if job.callback is not None else None
    hook_cb = job.callback
    core.hook(service, "pre_schedule", data, parent)
    try:
        value = service.schedule(data, parent, callback_data)
        if value is None:
            value = True
        ok = bool(value)
        if ok:
            core.hook(service, "post_schedule", data, parent)
    except Exception:
        value, ok = False, False
        data.outputs["ex_data"] = traceback.format_exc()
        events.append("node_schedule_exception")
        core.hook(service, "node_schedule_exception", data, parent, callback_data=hook_cb)
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


def record_schedule(step: Step, res: ScheduleResult) -> int | None:
    """Apply a schedule result. Returns the process id to advance when the node completed."""
    tx = step.tx
    job = res.job
    sched = tx.get_schedule(job.schedule.id)
    state = tx.get_state(job.state.node_id)
    if job.callback is not None:
        tx.mark_callback(job.callback.id, 1)
    if sched is None or sched.finished or sched.expired:
        return None
    if state is None or state.version != sched.version or state.name != states.RUNNING:
        sched.expired = True
        sched.due = None
        tx.save_schedule(sched)
        return None
    prep = job.prepared
    offset = step.core.settings.rerun_index_offset
    outputs = res.outputs
    ok = res.ok
    if res.interval_error:
        ok = False
        outputs["ex_data"] = "interval generator returned None"
    outputs["_result"] = res.value if ok else False
    outputs["_loop"] = prep.loop + offset
    outputs["_inner_loop"] = prep.inner_loop + offset
    for ev in res.events:
        step.event(ev, root_pipeline_id=prep.root_id, node_id=prep.node_id, ex_data=outputs.get("ex_data"))
    tx.put_exec_data(prep.node_id, dumps(res.inputs), dumps(outputs))
    if res.logs:
        tx.add_logs([(prep.node_id, prep.version, line) for line in res.logs])
    sched.times += 1
    proc = tx.get_process(sched.process_id)
    info = step.core.plan(prep.root_id).info(prep.node_id)
    node: Any = info.node
    if ok and not res.finished:
        if res.delay is not None:
            sched.due = step.now + res.delay
            step.fx.polls.append((sched.due, sched.id))
        else:
            sched.due = None
            nxt = tx.first_pending_callback(sched.node_id, sched.version)
            if nxt is not None:
                step.fx.callbacks.append(nxt)
        tx.save_schedule(sched)
        return None
    sched.due = None
    new = state.copy()
    new.archived = step.now
    cfg = loop_config(info)
    if ok or node.error_ignorable or (cfg is not None and cfg.get("fail_skip")):
        sched.finished = True
        tx.save_schedule(sched)
        if cfg is not None:
            record_pass(step, info, cfg, outputs, prep.inner_loop)
        else:
            write_outputs(step, info, outputs)
        new.name = states.FINISHED
        new.error_ignored = not ok
        step.write_state(new, state)
        step.event("node_finish", root_pipeline_id=prep.root_id, node_id=prep.node_id)
        if proc is None:
            return None
        proc.current = next_after_pass(info, cfg, prep.inner_loop) if cfg is not None else info.next_id()
        proc.status = P_READY
        tx.save_process(proc)
        return proc.id
    tx.save_schedule(sched)
    if cfg is not None:
        record_pass(step, info, cfg, outputs, prep.inner_loop)
    else:
        write_outputs(step, info, outputs)
    new.name = states.FAILED
    step.write_state(new, state)
    if proc is not None:
        proc.status = P_FAILED
        tx.save_process(proc)
    step.event("node_schedule_fail", root_pipeline_id=prep.root_id, node_id=prep.node_id)
    return None
