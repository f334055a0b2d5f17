"""The advance loop: move one execution token (process) node by node.

A worker calls ``advance`` inside one store transaction. Engine-side nodes (events, gateways,
subprocess entry and exit, converge joins) are handled in that same transaction, so a chain of them
costs one commit. When the token reaches a service activity, the activity is entered (RUNNING, a
new version) and the transaction ends: the worker commits, runs the user's ``execute`` outside any
transaction and comes back with the result, which is recorded by compare-and-set on the version in
the next transaction together with the moves that follow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rattan.engine import nodes
from rattan.engine.activity import enter_activity, record_execute
from rattan.engine.jobs import Prepared
from rattan.engine.schedule import ScheduleJob, ScheduleResult, record_schedule
from rattan.engine.step import Step
from rattan.ids import unique_id
from rattan.model import states
from rattan.model.messages import Advance
from rattan.model.states import TokenStatus
from rattan.spec.model import NodeType

if TYPE_CHECKING:
    from rattan.engine.activity import ExecResult
    from rattan.model.records import StateRecord, TokenRecord

MAX_ENGINE_STEPS = 100_000  # engine-only nodes advanced in one transaction before yielding


@dataclass(slots=True)
class Outcome:
    """What the worker does after the commit: run a prepared activity's execute, run a first
    poll, or stop (both None)."""

    execute: Prepared | None = None
    poll: ScheduleJob | None = None


def advance(
    step: Step, pid: int, carry: ExecResult | ScheduleResult | None, record_only: bool = False
) -> Outcome:
    """Record ``carry`` (if any), then move the token on. ``record_only``: stop right after the
    record (used to keep a user step's result when a later node raised an engine error)."""
    try:
        return _advance(step, pid, carry, record_only)
    finally:
        step.flush()


def _advance(step: Step, pid: int, carry: ExecResult | ScheduleResult | None, record_only: bool) -> Outcome:
    found = step.tx.tokens((pid,))  # nothing is changed in this step yet: read it as stored
    if not found:
        return Outcome()
    proc = found[0]
    # the engine that advances a token is the one in charge of it (and of the work it reaches)
    proc.owner = step.core.owner_id
    if carry is not None:
        recorded = (
            record_schedule(step, proc, carry)
            if isinstance(carry, ScheduleResult)
            else record_execute(step, proc, carry)
        )
        if not recorded or step.halt or record_only:
            return Outcome(poll=step.poll_now)
    elif proc.status != TokenStatus.READY:
        return Outcome()
    for _ in range(MAX_ENGINE_STEPS):
        if step.halt:  # an extension (a reserved rollback) took the token over
            return Outcome()
        result = step_node(step, proc)
        if isinstance(result, Prepared):
            return Outcome(result)
        if result is None:
            return Outcome()
        proc = result
    # a long run of engine-only nodes: let other work in, continue in a new transaction
    step.fx.sends.append(Advance(proc.id))
    return Outcome()


def step_node(step: Step, proc: TokenRecord) -> TokenRecord | Prepared | None:
    """Handle the token's current node. Returns the token to continue with, a Prepared activity
    to execute, or None when the token stops."""
    tx = step.tx
    core = step.core
    node_id = proc.current
    # 1. a child token reached its join target: report to the parent; the last one wakes it
    if proc.destination == node_id and proc.parent_id is not None:
        proc.status = TokenStatus.DONE
        step.save_process(proc)
        parent = step.token(proc.parent_id)  # changed in this step already when a branch is empty
        if parent is None:
            return None
        parent.pending -= 1
        step.save_process(parent)
        if parent.pending > 0:
            return None
        parent.current = node_id
        parent.status = TokenStatus.READY
        parent.owner = core.owner_id
        return parent
    # one read (from the writer's cache, mostly): the root, every enclosing subprocess, the node
    found = {s.node_id: s for s in tx.states([*proc.stack, node_id])}
    stack_states = [found[p].name for p in proc.stack if p in found]
    # 2. a revoked root stops every token for good
    root = found.get(proc.root_id)
    if root is None or root.name == states.REVOKED:
        proc.status = TokenStatus.DONE
        step.save_process(proc)
        return None
    # 3. a paused pipeline on the stack parks the token before the node
    if states.SUSPENDED in stack_states:
        proc.status = TokenStatus.SUSPENDED
        step.save_process(proc)
        return None
    plan = core.plans.plan(proc.root_id)
    info = plan.info(node_id)
    old = found.get(node_id)
    parent_id = proc.top_pipeline_id
    if old is None:
        entered = step.new_state(node_id, proc.root_id, parent_id, states.RUNNING)
    else:
        if old.name == states.SUSPENDED:
            if not old.root_id:  # an appointment made before the node was reached
                placed = old.copy()
                placed.root_id, placed.parent_id = proc.root_id, parent_id
                tx.put_state(placed, old)
            proc.status = TokenStatus.SUSPENDED
            step.save_process(proc)
            return None
        if old.name not in (states.READY, states.LOOP_READY, states.FINISHED):
            return None  # duplicate delivery guard: the node is already being handled
        reentered = _reenter(step, old, info.kind, proc)
        if reentered is None:
            return None
        entered = reentered
    entered.root_id, entered.parent_id = proc.root_id, parent_id
    entered.started = step.now
    entered.archived = None
    kind = info.kind
    if kind == NodeType.ServiceActivity:
        return enter_activity(step, proc, info, old, entered)
    if old is not None and old.name in (states.READY, states.LOOP_READY):
        # a retried gateway or event (or a resumed appointment) passes through RUNNING first:
        # READY -> FINISHED is not a transition
        step.write_state(entered, old)
        old = entered.copy()
    return nodes.handle(step, proc, info, old, entered)


def _reenter(step: Step, old: StateRecord, kind: NodeType, proc: TokenRecord) -> StateRecord | None:
    """A FINISHED node re-entered through a cycle, or a READY/LOOP_READY node after a retry."""
    new = old.copy()
    new.name = states.RUNNING
    if old.name == states.FINISHED:
        limit = step.core.settings.node_rerun_limit
        if old.loop > limit and kind != NodeType.SubProcess:
            failed = old.copy()
            step.fail_node(proc, failed, old, f"node execution exceed rerun limit {limit}")
            return None
        step.archive_history(old)
        new.loop += 1
        new.inner_loop += 1
        new.retry = 0
        new.skip = False
        new.error_ignored = False
        new.version = unique_id("v")
    elif old.name == states.READY and kind == NodeType.ServiceActivity and _loop_enabled(step, proc, old):
        new.loop = new.inner_loop = 1
    return new


def _loop_enabled(step: Step, proc: TokenRecord, old: StateRecord) -> bool:
    node: Any = step.core.plans.plan(proc.root_id).info(old.node_id).node
    cfg = getattr(node, "loop_config", None)
    return bool(cfg and cfg.get("enable"))


def fail_engine_error(step: Step, pid: int, message: str) -> None:
    """An unexpected engine-side error: fail the token's current node instead of stranding it."""
    proc = step.token(pid)
    if proc is None or proc.status == TokenStatus.DONE:
        return
    old = step.state(proc.current)
    state = (
        old.copy()
        if old is not None
        else step.new_state(proc.current, proc.root_id, proc.top_pipeline_id, states.FAILED)
    )
    if old is not None and not states.can_transit(old.name, states.FAILED):
        proc.status = TokenStatus.FAILED
        step.save_process(proc)
        return
    step.fail_node(proc, state, old, message)
