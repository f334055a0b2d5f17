"""The writing side of a rollback, each inside one unit of work (a ``Step``).

``begin`` starts a rollback whose preconditions hold: ANY mode is cleaned and restarted right away;
TOKEN mode stores its job, puts the root in ROLLING_BACK, parks the token and records a
``rollback_start`` event whose after-commit listener starts the walk (see ``walker``). ``finish``
ends a rollback: clean the graph's rows, move the token to the target and restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rattan.engine.step import Step
from rattan.model import states
from rattan.model.messages import Advance
from rattan.model.records import ROLLBACK_JOB_DONE, ROLLBACK_JOB_RUNNING, RollbackJob
from rattan.model.states import TokenStatus
from rattan.rollback.checks import ANY, TOKEN, Checked, Request, build_graph

if TYPE_CHECKING:
    from rattan.model.records import StateRecord, TokenRecord

EV_START = "rollback_start"
EV_RETRY = "rollback_retry"
EV_NODE_FAIL = "rollback_node_fail"
EV_FINISH = "rollback_finish"
EV_RESERVATION_FAIL = "rollback_reservation_fail"


def set_state(step: Step, old: StateRecord, name: str) -> StateRecord:
    new = old.copy()
    new.name = name
    step.write_state(new, old)
    return new


def _mover(step: Step, req: Request, checked: Checked) -> TokenRecord:
    """The token to move to the target: the one at the start, or - when the target lies in an outer
    region (ANY mode without the token check) - its ancestor whose region holds the target."""
    proc = checked.proc
    want = checked.tokens.get(req.target)
    while checked.tokens.get(proc.current) != want and proc.parent_id is not None:
        parent = step.token(proc.parent_id)
        if parent is None:
            break
        proc = parent
    return proc


def begin(step: Step, req: Request, checked: Checked) -> None:
    tx = step.tx
    graph = build_graph(step.core, tx, req.root_id, req.start, req.target)
    skip = list(dict.fromkeys(req.skip))
    if checked.start_state.name == states.FAILED and req.start not in skip:
        skip.append(req.start)  # a failed start node is not rolled back itself
    for st in tx.states(graph.walk):
        if (st.skip or st.error_ignored) and st.node_id not in skip:
            skip.append(st.node_id)  # skipped or failed-and-ignored: nothing to undo
    proc = _mover(step, req, checked)
    job = RollbackJob(
        req.root_id, req.start, req.target, req.mode, proc.id, graph.walk, graph.clean, skip,
        ROLLBACK_JOB_RUNNING, None, None, step.core.owner_id,
    )  # fmt: skip
    tx.rollback.put_job(job)
    if req.mode == ANY:
        finish(step, job)
        return
    root = step.state(req.root_id)
    assert root is not None
    set_state(step, root, states.ROLLING_BACK)
    # park the token: no retry/skip of the start node while its region is being rolled back
    proc.status = TokenStatus.SUSPENDED
    proc.executing = None
    step.save_process(proc)
    step.event(
        EV_START, root_pipeline_id=req.root_id, node_id=req.start, start_node_id=req.start,
        target_node_id=req.target, mode=TOKEN, skip_rollback_nodes=skip,
    )  # fmt: skip


def _stack_for(step: Step, root_id: str, node_id: str) -> list[str]:
    plan = step.core.plans.plan(root_id)
    pipeline_id = plan.info(node_id).pipeline_id
    stack = [pipeline_id]
    while pipeline_id != root_id:
        pipeline_id = plan.info(pipeline_id).pipeline_id
        stack.insert(0, pipeline_id)
    return stack


def _retire_descendants(step: Step, root_id: str, keep: int) -> None:
    procs = step.tx.tokens(root_id=root_id)
    children: dict[int, list[TokenRecord]] = {}
    for p in procs:
        if p.parent_id is not None:
            children.setdefault(p.parent_id, []).append(p)
    todo = list(children.get(keep, []))
    while todo:
        p = todo.pop()
        todo.extend(children.get(p.id, []))
        if p.status != TokenStatus.DONE:
            p.status = TokenStatus.DONE
            p.executing = None
            step.save_process(p)


def finish(step: Step, job: RollbackJob) -> None:
    """Clean the graph's rows, clear snapshots and reservation, restart at the target."""
    tx = step.tx
    root_id = job.root_id
    core = step.core
    auto = core.settings.pipeline_enable_auto_execute_when_roll_backed
    root = step.state(root_id)
    assert root is not None
    if job.mode == TOKEN:
        root = set_state(step, root, states.ROLL_BACK_SUCCESS)
    rows = tx.rollback
    rows.clean_nodes(job.clean)
    rows.snapshot_done(None, root_id)
    rows.expire_plans(root_id, job.start_node_id)
    job.status = ROLLBACK_JOB_DONE
    rows.put_job(job)
    # the target: a fresh state (new version, loop 1, retry 0), as if never executed but READY
    parent = core.plans.plan(root_id).info(job.target_node_id).pipeline_id
    fresh = step.new_state(job.target_node_id, root_id, parent, states.READY)
    fresh.started = None
    step.write_state(fresh, None)
    # the token goes to the target
    proc = step.token(job.process_id)
    assert proc is not None
    _retire_descendants(step, root_id, proc.id)
    proc.current = job.target_node_id
    proc.stack = _stack_for(step, root_id, job.target_node_id)
    proc.pending = 0
    proc.executing = None
    if job.mode == TOKEN:
        root = set_state(step, root, states.READY)
        root = set_state(step, root, states.RUNNING if auto else states.SUSPENDED)
    elif not auto:
        root = set_state(step, root, states.SUSPENDED)
    proc.status = TokenStatus.READY if auto else TokenStatus.SUSPENDED
    proc.owner = core.owner_id
    step.save_process(proc)
    if auto:
        step.fx.sends.append(Advance(proc.id))
    step.event(
        EV_FINISH, root_pipeline_id=root_id, node_id=job.target_node_id, start_node_id=job.start_node_id,
        target_node_id=job.target_node_id, mode=job.mode,
    )  # fmt: skip
