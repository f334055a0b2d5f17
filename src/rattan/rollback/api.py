"""The public rollback functions. Each takes the engine first, never raises and returns
an ``EngineAPIResult``: ``result`` False with ``exc`` a ``RollBackException`` (a broken rule) or a
``NotFoundError`` (an unknown id) and ``message`` its text. A refused call changes nothing."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ParamSpec

from rattan.errors import NotFoundError, RollBackException
from rattan.model import states
from rattan.model.records import ROLLBACK_JOB_FAILED, ROLLBACK_JOB_RUNNING, RollbackPlan
from rattan.results import api_result
from rattan.rollback.actions import EV_RETRY, begin, set_state
from rattan.rollback.checks import (
    ANY,
    TOKEN,
    Request,
    check_mode,
    check_options,
    check_pipeline,
    node_info,
    root_state,
    tokens_of,
    validate_reservation,
    validate_rollback,
)
from rattan.rollback.extension import Engine, extension_of
from rattan.spec.model import NodeType

if TYPE_CHECKING:
    from rattan.engine.step import Step
    from rattan.runtime.interface import Reads

log = logging.getLogger("rattan.rollback")
P = ParamSpec("P")


_api = api_result


@_api
def rollback(
    engine: Engine,
    root_pipeline_id: str,
    start_node_id: str,
    target_node_id: str,
    skip_rollback_nodes: list[str] | None = None,
    mode: str = TOKEN,
    **options: Any,
) -> None:
    """Roll back from ``start_node_id`` (the tail of the flow) to ``target_node_id`` now.

    TOKEN mode returns once the rollback has started (the root is ROLLING_BACK); a worker calls the
    nodes' ``rollback()`` and restarts at the target. ANY mode cleans and restarts before returning.
    """
    check_mode(mode)
    extension_of(engine)
    req = Request(
        root_pipeline_id, start_node_id, target_node_id, mode, list(skip_rollback_nodes or []), options
    )

    def body(step: Step) -> None:
        checked = validate_rollback(engine.core, step.tx, req)
        begin(step, req, checked)

    engine.core.unit(body)


@_api
def reserve_rollback(
    engine: Engine, root_pipeline_id: str, start_node_id: str, target_node_id: str, mode: str = TOKEN,
    **options: Any,
) -> None:  # fmt: skip
    """Roll back automatically when ``start_node_id`` (RUNNING now) finishes."""
    check_mode(mode)
    extension_of(engine)
    req = Request(root_pipeline_id, start_node_id, target_node_id, mode, [], options)

    def body(step: Step) -> None:
        validate_reservation(engine.core, step.tx, req)
        plan = RollbackPlan(0, root_pipeline_id, start_node_id, target_node_id, mode, dict(options))
        step.tx.rollback.put_plan(plan)

    engine.core.unit(body)


@_api
def cancel_reserved_rollback(
    engine: Engine, root_pipeline_id: str, start_node_id: str, target_node_id: str, mode: str = TOKEN
) -> None:
    """Cancel the reservations of ``start_node_id`` (whatever their target) while it still runs."""
    check_mode(mode)
    extension_of(engine)
    req = Request(root_pipeline_id, start_node_id, target_node_id, mode)

    def body(step: Step) -> None:
        validate_reservation(engine.core, step.tx, req, cancel=True)
        step.tx.rollback.expire_plans(root_pipeline_id, start_node_id)

    engine.core.unit(body)


@_api
def retry_rollback_failed_node(
    engine: Engine, root_pipeline_id: str, node_id: str, retry_data: Any = None, mode: str = TOKEN
) -> None:
    """Resume a failed TOKEN rollback at ``node_id`` (ROLL_BACK_FAILED); ``retry_data`` is passed to
    its ``rollback()`` as ``rollback_data``. Every snapshot that did not return True is retried."""
    check_mode(mode)
    if mode == ANY:
        raise RollBackException(
            "retry_rollback_failed_node failed: ANY mode never calls rollback(); use TOKEN"
        )
    extension_of(engine)

    def body(step: Step) -> None:
        tx = step.tx
        root = root_state(tx, root_pipeline_id)
        if root.name != states.ROLL_BACK_FAILED:
            raise RollBackException(
                f"retry rollback failed: pipeline {root_pipeline_id} is {root.name}, not ROLL_BACK_FAILED"
            )
        node = node_info(engine.core, tx, root_pipeline_id, node_id, "retried")
        st = step.state(node.node.id)
        name = st.name if st is not None else "not executed (no state)"
        if st is None or st.name != states.ROLL_BACK_FAILED:
            raise RollBackException(f"retry rollback failed: node {node_id} is {name}, not ROLL_BACK_FAILED")
        job = tx.rollback.job(root_pipeline_id)
        if job is None or job.status != ROLLBACK_JOB_FAILED or node_id not in job.walk:
            raise RollBackException(
                f"retry rollback failed: no failed rollback of {root_pipeline_id} holds {node_id}"
            )
        set_state(step, root, states.ROLLING_BACK)
        set_state(step, st, states.ROLLING_BACK)
        job.status, job.retry_node, job.retry_data = ROLLBACK_JOB_RUNNING, node_id, retry_data
        job.owner = step.core.owner_id
        tx.rollback.put_job(job)
        step.event(EV_RETRY, root_pipeline_id=root_pipeline_id, node_id=node_id, retry_data=retry_data)

    engine.core.unit(body)


@_api
def get_allowed_rollback_node_id_list(
    engine: Engine, root_pipeline_id: str, start_node_id: str, mode: str = TOKEN, **options: Any
) -> list[str]:
    """Service activities that may be targets: FINISHED or FAILED, same token as the start node
    (any token with ``skip_check_token=True`` in ANY mode), the start node excluded; in the
    order they were first reached."""
    check_mode(mode)
    check_options(options)
    extension_of(engine)
    core = engine.core

    def read(tx: Reads) -> list[str]:
        check_pipeline(tx, root_pipeline_id, mode)
        owner = tx.roots_of([start_node_id]).get(start_node_id)
        if owner is None:
            raise NotFoundError(f"node({start_node_id}) does not exist")
        if owner != root_pipeline_id:
            raise RollBackException(
                f"rollback failed: start node {start_node_id} belongs to pipeline {owner}, "
                f"not {root_pipeline_id}"
            )
        tokens = tokens_of(tx, root_pipeline_id)
        any_token = mode == ANY and bool(options.get("skip_check_token"))
        start_token = tokens.get(start_node_id)
        plan = core.plans.plan(root_pipeline_id)
        out: list[str] = []
        for st in tx.states(root_id=root_pipeline_id):
            node_id = st.node_id
            if node_id == start_node_id or node_id not in plan.nodes:
                continue
            if st.name not in (states.FINISHED, states.FAILED):
                continue
            if plan.info(node_id).kind != NodeType.ServiceActivity:
                continue
            if any_token or (start_token is not None and tokens.get(node_id) == start_token):
                out.append(node_id)
        return out

    return core.store.read(read)
