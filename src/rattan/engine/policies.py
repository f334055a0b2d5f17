"""Node timeouts and automatic failure policies, as durable timers.

A timer is a row (kind, node, version, due) fired by the dispatcher's timer thread. It names the
node version it was armed for: once the node has moved on (finished, retried, skipped, force-failed)
the timer is a no-op, so nothing needs cancelling on a hot path.

Failure policy (rattan only, not in bamboo), a ``failure_policy`` key on a service activity::

    {"retry": {"times": 3, "backoff": "exponential", "delay": 1.0, "max_delay": 60.0,
               "jitter": 0.1, "errors": ["*"]},
     "skip_after": 4}

``retry``: after a failure whose error matches ``errors`` (exception class names, including base
classes; ``"ReturnedFalse"`` for a falsy return; ``"NodeTimeout"`` for a timeout; ``"*"`` for any),
retry automatically while the node's retry count is below ``times``, after ``delay`` seconds
(``fixed``) or ``delay * 2**retry`` capped at ``max_delay`` (``exponential``), spread by ``jitter``
(a fraction). ``skip_after``: skip the node automatically once it has failed that many times in
this pass. Both go through ``retry_node`` / ``skip_node``, so they appear in histories and states.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from rattan.engine.timers import BaseAction, enabled_events, parse_timer
from rattan.errors import Problem, TreeInvalidException
from rattan.model import states
from rattan.model.messages import FireTimer, Task
from rattan.model.records import (
    KIND_RETRY,
    KIND_SKIP,
    KIND_TIMEOUT,
    KIND_TIMER_EVENT,
    StateRecord,
    TimerRecord,
)
from rattan.spec.model import ServiceActivityNode

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.engine.plan import NodeInfo, RunPlan
    from rattan.engine.step import Step

log = logging.getLogger("rattan.engine")

TIMEOUT_EX_DATA = "forced fail by bamboo_engine"
BUILTIN_TIMEOUT_ACTIONS = ("forced_fail", "forced_fail_and_skip")
TASK_TIMER_EVENT = "timer_event"  # Task names: what a fired timer hands to a worker
TASK_TIMEOUT_HANDLER = "timeout_handler"


# -- validation (at run_pipeline) ------------------------------------------------------------------
def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _check_timeout(node: ServiceActivityNode, problems: list[Problem]) -> None:
    cfg = node.timeout_config
    if cfg is None or not cfg.get("enable"):
        return
    seconds = cfg.get("seconds")
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
        problems.append(Problem(node.id, "timeout_config", "seconds must be a positive int", node.name))


def _check_policy(node: ServiceActivityNode, problems: list[Problem]) -> None:
    policy = node.raw.get("failure_policy")
    if policy is None:
        return

    def bad(message: str) -> None:
        problems.append(Problem(node.id, "failure_policy", message, node.name))

    if not isinstance(policy, Mapping):
        bad("must be a dict with 'retry' and/or 'skip_after'")
        return
    skip_after = policy.get("skip_after")
    if skip_after is not None and (
        not isinstance(skip_after, int) or isinstance(skip_after, bool) or skip_after < 1
    ):
        bad("skip_after must be an int >= 1")
    retry = policy.get("retry")
    if retry is None:
        return
    if not isinstance(retry, Mapping):
        bad("retry must be a dict")
        return
    times = retry.get("times", 1)
    if not isinstance(times, int) or isinstance(times, bool) or times < 0:
        bad("retry.times must be an int >= 0")
    if retry.get("backoff", "fixed") not in ("fixed", "exponential"):
        bad("retry.backoff must be 'fixed' or 'exponential'")
    for key in ("delay", "max_delay"):
        if key in retry and not _num(retry[key]):
            bad(f"retry.{key} must be a number >= 0")
    jitter = retry.get("jitter", 0)
    if not _num(jitter) or jitter > 1:
        bad("retry.jitter must be a number between 0 and 1")
    errors = retry.get("errors", ["*"])
    if not isinstance(errors, list) or not all(isinstance(e, str) for e in errors):
        bad("retry.errors must be a list of strings")


def validate_plan(plan: RunPlan) -> None:
    """Reject malformed ``timeout_config`` / ``failure_policy`` before anything is stored."""
    problems: list[Problem] = []
    for info in plan.nodes.values():
        node = info.node
        if isinstance(node, ServiceActivityNode):
            _check_timeout(node, problems)
            _check_policy(node, problems)
    if problems:
        raise TreeInvalidException("invalid node timeout or failure policy", problems)


# -- arming -----------------------------------------------------------------------------------------
def _arm(step: Step, kind: str, node_id: str, version: str, delay: float, payload: dict[str, Any]) -> None:
    _arm_at(step, kind, node_id, version, step.now + delay, payload)


def _arm_at(step: Step, kind: str, node_id: str, version: str, due: float, payload: dict[str, Any]) -> None:
    timer = TimerRecord(0, kind, node_id, version, due, payload, step.core.owner_id)
    step.fx.later.append((due, FireTimer(step.tx.put_wait(timer))))


def arm_timeout(step: Step, info: NodeInfo, state: StateRecord) -> None:
    """A node went RUNNING: arm its timeout and its timer boundary events."""
    node = info.node
    if not isinstance(node, ServiceActivityNode):
        return
    cfg = node.timeout_config
    if cfg is not None and cfg.get("enable"):
        action = str(cfg.get("action") or "forced_fail")
        _arm(step, KIND_TIMEOUT, node.id, state.version, float(cfg.get("seconds") or 0), {"action": action})
    if node.timer_events:
        for index, event in enabled_events({"events": {"timer_events": list(node.timer_events)}}):
            if parse_timer(str(event["timer_type"]), str(event["defined"]))[2] == 0:
                continue  # R0/...: zero repetitions
            payload = {**event, "index": index, "repetition": 1, "armed_at": step.now}
            _arm_timer_event(step, node.id, state.version, payload)


def _arm_timer_event(step: Step, node_id: str, version: str, payload: dict[str, Any]) -> None:
    when, period, _ = parse_timer(str(payload["timer_type"]), str(payload["defined"]))
    due = when if when is not None else payload["armed_at"] + period * payload["repetition"]
    _arm_at(step, KIND_TIMER_EVENT, node_id, version, due, payload)


def _matches(errors: list[str], error_types: list[str]) -> bool:
    return "*" in errors or any(e in error_types for e in errors)


def backoff(retry_cfg: Mapping[str, Any], attempt: int) -> float:
    delay = float(retry_cfg.get("delay", 0) or 0)
    if retry_cfg.get("backoff", "fixed") == "exponential":
        delay = delay * (2**attempt)
        cap = retry_cfg.get("max_delay")
        if cap is not None:
            delay = min(delay, float(cap))
    jitter = float(retry_cfg.get("jitter", 0) or 0)
    if jitter:
        delay *= 1 + random.uniform(-jitter, jitter)
    return max(0.0, delay)


def on_failure(step: Step, info: NodeInfo, failed: StateRecord, error_types: list[str]) -> None:
    """A node just went FAILED (not ignored): arm an automatic retry or skip if its policy says so."""
    node = info.node
    if not isinstance(node, ServiceActivityNode):
        return
    policy = node.raw.get("failure_policy")
    if not isinstance(policy, Mapping):
        return
    failures = failed.retry + 1
    skip_after = policy.get("skip_after")
    if isinstance(skip_after, int) and failures >= skip_after:
        _arm(step, KIND_SKIP, node.id, failed.version, 0.0, {"failures": failures})
        return
    retry = policy.get("retry")
    if not isinstance(retry, Mapping):
        return
    if failed.retry < int(retry.get("times", 1)) and _matches(list(retry.get("errors", ["*"])), error_types):
        delay = backoff(retry, failed.retry)
        _arm(step, KIND_RETRY, node.id, failed.version, delay, {"attempt": failed.retry + 1})


def error_types_of(exc: BaseException | None, returned_false: bool) -> list[str]:
    if exc is not None:
        return [c.__name__ for c in type(exc).__mro__ if c is not object]
    return ["ReturnedFalse"] if returned_false else []


# -- firing -----------------------------------------------------------------------------------------
def fire(step: Step, tid: int) -> None:
    """Fire a timer: the unit that takes its row acts (only if the node is still at the version
    the timer was armed for); any other finds it gone."""
    from rattan.engine import controls

    timer = step.tx.take_timer(tid)
    if timer is None:
        return
    kind, node_id, payload = timer.kind, timer.node_id, timer.payload
    st = step.state(node_id)
    if st is None or st.version != timer.version:
        return  # the node has moved on: a stale timer does nothing
    if kind in (KIND_TIMEOUT, KIND_TIMER_EVENT) and _revoked(step, st.root_id):
        return  # timers are disarmed when the pipeline is revoked
    if kind == KIND_TIMEOUT and st.name == states.RUNNING:
        _timeout(step, node_id, str(payload.get("action") or "forced_fail"))
    elif kind == KIND_RETRY and st.name == states.FAILED:
        step.event("auto_retry_node", node_id=node_id, attempt=payload.get("attempt"))
        controls.retry_node(step, node_id, None, False)
    elif kind == KIND_TIMER_EVENT and st.name == states.RUNNING:
        _timer_event(step, st, payload)
    elif kind == KIND_SKIP and st.name == states.FAILED:
        step.event("auto_skip_node", node_id=node_id, failures=payload.get("failures"))
        controls.skip_node(step, node_id)


def _revoked(step: Step, root_id: str) -> bool:
    root = step.state(root_id)
    return root is not None and root.name == states.REVOKED


def _timer_event(step: Step, st: StateRecord, payload: dict[str, Any]) -> None:
    """Re-arm the next repetition first, then run the action on a worker after the commit."""
    _, _, times = parse_timer(str(payload["timer_type"]), str(payload["defined"]))
    if times is None or payload["repetition"] < times:
        _arm_timer_event(step, st.node_id, st.version, {**payload, "repetition": payload["repetition"] + 1})
    step.event("node_timer_event", node_id=st.node_id, index=payload["index"], action=payload.get("action"))
    args = {
        "node_id": st.node_id,
        "version": st.version,
        "root_id": st.root_id,
        "action": payload.get("action"),
    }
    step.fx.sends.append(Task(TASK_TIMER_EVENT, args))


def run_timer_event_task(core: EngineCore) -> Callable[..., None]:
    """The task that runs a timer event's action (on a worker, outside any transaction)."""

    def run(node_id: str, version: str, root_id: str, action: Any) -> None:
        action_cls = BaseAction.registry.get(str(action))
        if action_cls is None:
            log.error(
                "node %s: timer event action %r is not defined", node_id, action,
                extra={"root_pipeline_id": root_id, "node_id": node_id},
            )  # fmt: skip
            return
        data, root_data = core.store.read(
            lambda tx: (tx.node_data(node_id), core.plans.root_data(tx, root_id))
        )
        d, parent = core.services.data_objects(data.inputs or {}, dict(data.outputs or {}), root_data)
        action_cls(core.sender, root_id, node_id, version).do(d, parent)

    return run


def run_timeout_handler_task(core: EngineCore) -> Callable[..., None]:
    """The task that calls a custom timeout handler (``pipeline_node_timeout_handler``)."""

    def run(node_id: str, action: str) -> None:
        handler = core.settings.pipeline_node_timeout_handler.get(action)
        if handler is None:
            log.error(
                "node %s timed out but timeout action %r is not configured", node_id, action,
                extra={"node_id": node_id},
            )  # fmt: skip
            return
        strategy = handler() if isinstance(handler, type) else handler
        strategy.deal_with_timeout_node(node_id)

    return run


def _timeout(step: Step, node_id: str, action: str) -> None:
    from rattan.engine import controls

    if action not in BUILTIN_TIMEOUT_ACTIONS:
        if action not in step.core.settings.pipeline_node_timeout_handler:
            log.error(
                "node %s timed out but timeout action %r is not configured", node_id, action,
                extra={"node_id": node_id},
            )  # fmt: skip
            return
        step.fx.sends.append(Task(TASK_TIMEOUT_HANDLER, {"node_id": node_id, "action": action}))
        return
    step.event("node_timeout", node_id=node_id, action=action)
    controls.forced_fail_activity(step, node_id, TIMEOUT_EX_DATA, by_timeout=(action == "forced_fail"))
    if action == "forced_fail_and_skip":
        controls.skip_node(step, node_id)
