"""Installing rollback into an engine: in-transaction listeners and the TOKEN-mode walk.

In the transaction of the change (``core.tx_listeners``):

- ``post_prepare_run_pipeline``: store the run's tokens;
- ``node_finish`` of a service activity: store a snapshot of the pass (inputs, outputs, code,
  version, root pipeline data); then, if the node has a reservation, start its rollback instead of
  letting the token move on (``step.halt``). A reservation whose rollback is refused at that moment
  is expired with a ``rollback_reservation_fail`` event and the node's completion proceeds.

After the commit (``core.listeners``), ``rollback_start`` / ``rollback_retry`` events hand the walk
to a worker (a ``rollback.walk`` task message). The walk calls user ``rollback()`` code outside any
transaction: read in one unit, call, record in the next. Its progress is rows (node states, the
snapshots' ``rolled_back`` flags, the job, which names the engine that owns it), so when that
engine is gone another one's sweep claims the job and resumes the walk.
"""

from __future__ import annotations

import functools
import logging
import threading
import traceback
from typing import TYPE_CHECKING, Any, Protocol

from rattan.builder.tokens import generate_pipeline_token
from rattan.engine.jobs import Prepared
from rattan.engine.step import Step
from rattan.errors import BackendUnavailableError, ConflictError, RattanError, RollBackException
from rattan.model import states
from rattan.model.messages import Task
from rattan.model.records import (
    ROLLBACK_JOB_FAILED,
    ROLLBACK_JOB_RUNNING,
    RollbackJob,
    RollbackPlan,
    RollbackSnapshot,
)
from rattan.model.states import TokenStatus
from rattan.rollback.actions import (
    EV_NODE_FAIL,
    EV_RESERVATION_FAIL,
    EV_RETRY,
    EV_START,
    begin,
    set_state,
)
from rattan.rollback.actions import finish as finish_job
from rattan.rollback.checks import Request, validate_rollback
from rattan.spec.model import NodeType, ServiceActivityNode

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.model.records import TokenRecord

log = logging.getLogger("rattan.rollback")

WALK_TASK = "rollback.walk"  # the task that runs a walk (the store's lease claims it by this name)


class Engine(Protocol):
    """What rollback needs of a ``rattan.Engine`` (it installs itself on one)."""

    @property
    def core(self) -> EngineCore: ...

    rollback_extension: Rollback | None


def install_rollback(engine: Engine) -> Rollback:
    """Turn rollback on for ``engine`` (``Engine(pipeline_enable_rollback=True)`` does this). The
    extension is kept on the engine; walks left unfinished by engines that are gone are claimed
    by this engine's sweep once it starts."""
    ext: Rollback | None = getattr(engine, "rollback_extension", None)
    if ext is None:
        core = engine.core
        ext = Rollback(core)
        engine.rollback_extension = ext
        core.tx_listeners.append(ext.on_tx_event)
        core.listeners.append(ext.on_event)
        core.tasks[WALK_TASK] = ext.walk
    return ext


def extension_of(engine: Engine) -> Rollback:
    ext: Rollback | None = getattr(engine, "rollback_extension", None)
    if ext is None:
        raise RollBackException(
            "rollback is not enabled on this engine: "
            "create it with Engine(..., pipeline_enable_rollback=True)"
        )
    return ext


class Rollback:
    def __init__(self, core: EngineCore) -> None:
        self.core = core
        self._lock = threading.Lock()
        self._active: set[str] = set()
        self._again: set[str] = set()

    # -- in the transaction of the change -------------------------------------------------------
    def on_tx_event(self, step: Step, event_type: str, data: dict[str, Any]) -> None:
        if event_type == "post_prepare_run_pipeline":
            pipeline = data["pipeline"]
            step.tx.rollback.put_tokens(str(pipeline["id"]), generate_pipeline_token(pipeline))
        elif event_type == "node_finish":
            root_id, node_id = data.get("root_pipeline_id"), data.get("node_id")
            if root_id and node_id:
                self._node_finished(step, str(root_id), str(node_id))

    def _node_finished(self, step: Step, root_id: str, node_id: str) -> None:
        info = self.core.plans.plan(root_id).info(node_id)
        node = info.node
        if not isinstance(node, ServiceActivityNode):
            return
        tx = step.tx
        st = step.state(node_id)
        data = tx.node_data(node_id)
        if st is not None and data.outputs is not None:
            tx.rollback.add_snapshot(
                RollbackSnapshot(
                    0, root_id, node_id, node.component_code, node.component_version, st.version, st.loop,
                    st.inner_loop, data.inputs or {}, data.outputs, self.core.plans.root_data(tx, root_id),
                )
            )  # fmt: skip
        plans = tx.rollback.plans(root_id, node_id)
        if plans:
            self._reserved(step, root_id, node_id, info.next_id(), plans[0])

    def _reserved(self, step: Step, root_id: str, node_id: str, next_id: str, plan: RollbackPlan) -> None:
        """The reserved start node has just finished: roll back now instead of moving on."""
        tx = step.tx
        step.flush()  # the token's move is written; it is then taken back to the start node
        halted = self._halted_token(step, root_id, node_id, next_id)
        req = Request(root_id, node_id, plan.target_node_id, plan.mode, [], dict(plan.options))
        tx.rollback.expire_plans(root_id, node_id)  # a reservation is used once, whatever happens
        if halted is None:
            self._reservation_failed(step, req, "the token that finished the node was not found")
            return
        saved = (halted.current, halted.status)
        halted.current, halted.status = node_id, TokenStatus.READY
        try:
            checked = validate_rollback(self.core, tx, req, halted)
        except RattanError as exc:
            halted.current, halted.status = saved
            self._reservation_failed(step, req, str(exc))
            return
        step.save_process(halted)
        step.halt = True
        begin(step, req, checked)

    def _halted_token(self, step: Step, root_id: str, node_id: str, next_id: str) -> TokenRecord | None:
        for proc in step.tx.tokens(root_id=root_id, statuses=[TokenStatus.READY]):
            if proc.current in (next_id, node_id) and not proc.executing:
                return proc
        return None

    def _reservation_failed(self, step: Step, req: Request, message: str) -> None:
        log.warning("reserved rollback of %s -> %s not started: %s", req.start, req.target, message)
        step.event(
            EV_RESERVATION_FAIL, root_pipeline_id=req.root_id, node_id=req.start, start_node_id=req.start,
            target_node_id=req.target, mode=req.mode, message=message,
        )  # fmt: skip

    # -- after the commit --------------------------------------------------------------------------
    def on_event(self, event_type: str, data: dict[str, Any]) -> None:
        if event_type in (EV_START, EV_RETRY):
            self.submit(str(data["root_pipeline_id"]))

    def submit(self, root_id: str) -> None:
        self.core.send(Task(WALK_TASK, {"root_id": root_id}))

    # -- the walk (TOKEN mode) ---------------------------------------------------------------------
    def walk(self, root_id: str) -> None:
        """Roll back the job's nodes in order until it ends, fails or is found not running."""
        with self._lock:
            if root_id in self._active:
                self._again.add(root_id)  # the active walker goes round once more
                return
            self._active.add(root_id)
        try:
            while True:
                try:
                    self._walk(root_id)
                except (BackendUnavailableError, ConflictError):
                    raise  # the worker sends the walk again after a pause: its progress is rows
                except Exception:
                    log.exception("rollback walk of pipeline %s stopped by an error", root_id)
                with self._lock:
                    if root_id not in self._again:
                        self._active.discard(root_id)
                        return
                    self._again.discard(root_id)
        except BaseException:
            with self._lock:
                self._active.discard(root_id)
            raise

    def _walk(self, root_id: str) -> None:
        core = self.core
        while True:
            work = core.unit(functools.partial(_next_node, root_id=root_id))
            if work is None:
                return
            node_id, snapshots, rollback_data = work
            for snap in snapshots:
                error = self._call_rollback(root_id, snap, rollback_data)
                if error is not None:
                    core.unit(functools.partial(_node_failed, root_id=root_id, node_id=node_id, error=error))
                    return
                if not core.unit(functools.partial(_snapshot_done, root_id=root_id, snapshot_id=snap.id)):
                    return
            if not core.unit(functools.partial(_node_done, root_id=root_id, node_id=node_id)):
                return

    def _call_rollback(self, root_id: str, snap: RollbackSnapshot, rollback_data: Any) -> str | None:
        """Call ``Service.rollback`` (no transaction open). None when it returned True."""
        core = self.core
        info = core.plans.plan(root_id).info(snap.node_id)  # a store read: its errors are the store's
        try:
            prep = Prepared(
                0, snap.node_id, snap.node_version, root_id, info.pipeline_id, snap.loop, snap.inner_loop,
                info.node.name, snap.code, snap.component_version, snap.inputs, snap.root_data,
            )  # fmt: skip
            service = core.services.make_service(prep)
            data, parent = core.services.data_objects(snap.inputs, dict(snap.outputs), snap.root_data)
            result = service.rollback(data, parent, rollback_data)
        except Exception:
            return traceback.format_exc()
        if result is None or result is True or (result and not isinstance(result, str)):
            return None
        return f"rollback() of node {snap.node_id} returned {result!r}"


Work = tuple[str, list[RollbackSnapshot], Any]


def _live_job(step: Step, root_id: str) -> RollbackJob | None:
    job = step.tx.rollback.job(root_id)
    root = step.state(root_id)
    if job is None or job.status != ROLLBACK_JOB_RUNNING or root is None or root.name != states.ROLLING_BACK:
        return None
    return job


def _next_node(step: Step, root_id: str) -> Work | None:
    """The next node to roll back (put in ROLLING_BACK) with its pending snapshots; at the end of
    the walk, finish the rollback and return None."""
    tx = step.tx
    job = _live_job(step, root_id)
    if job is None:
        return None
    skip = set(job.skip)
    for node_id in job.walk:
        if node_id in skip:
            continue
        st = step.state(node_id)
        if st is None or st.name == states.ROLL_BACK_SUCCESS:
            continue
        if st.name in (states.FINISHED, states.ROLL_BACK_FAILED):
            st = set_state(step, st, states.ROLLING_BACK)
        if st.name != states.ROLLING_BACK:
            continue  # nothing this rollback can undo (e.g. never finished)
        snaps = []
        if step.core.plans.plan(root_id).info(node_id).kind == NodeType.ServiceActivity:
            snaps = tx.rollback.snapshots(root_id, node_id)
        return node_id, snaps, job.retry_data if job.retry_node == node_id else None
    finish_job(step, job)
    return None


def _snapshot_done(step: Step, root_id: str, snapshot_id: int) -> bool:
    if _live_job(step, root_id) is None:
        return False
    step.tx.rollback.snapshot_done(snapshot_id, root_id)
    return True


def _node_done(step: Step, root_id: str, node_id: str) -> bool:
    if _live_job(step, root_id) is None:
        return False
    st = step.state(node_id)
    if st is None or st.name != states.ROLLING_BACK:
        return False
    set_state(step, st, states.ROLL_BACK_SUCCESS)
    return True


def _node_failed(step: Step, root_id: str, node_id: str, error: str) -> None:
    if _live_job(step, root_id) is None:
        return
    st = step.state(node_id)
    if st is not None and st.name == states.ROLLING_BACK:
        set_state(step, st, states.ROLL_BACK_FAILED)
    root = step.state(root_id)
    assert root is not None
    set_state(step, root, states.ROLL_BACK_FAILED)
    job = step.tx.rollback.job(root_id)
    if job is not None:
        job.status = ROLLBACK_JOB_FAILED
        step.tx.rollback.put_job(job)
    log.warning("rollback of node %s failed:\n%s", node_id, error)
    step.event(EV_NODE_FAIL, root_pipeline_id=root_id, node_id=node_id, ex_data=error)
