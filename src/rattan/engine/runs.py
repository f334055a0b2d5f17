"""Seeing runs: the list of runs, waiting on one, and what each waiting node waits for.

A pipeline with a FAILED node stays RUNNING (the failed node waits for an operator, as in
bamboo), so "is it done?" has three answers here, not two: finished (or revoked), still moving,
or stopped on failed nodes with nothing else the engine can do by itself.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rattan.errors import BadInputError, NotFoundError
from rattan.model import states
from rattan.model.records import RunSummary, ScheduleType, StateRecord, to_datetime
from rattan.runtime.interface import RunQuery, ScheduleQuery

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.runtime.interface import Reads

ENDED = (states.FINISHED, states.REVOKED)
ERROR_LINE = 300  # characters of a failed node's error shown by wait_pipeline and the lists
HALF_MICROSECOND = 0.5e-6
_POLL_FIRST, _POLL_MAX = 0.002, 0.05  # seconds between looks while waiting (doubling)


def _seconds(value: float | datetime | None, name: str, after: bool) -> float | None:
    if value is None or (isinstance(value, float | int) and not isinstance(value, bool)):
        return None if value is None else float(value)
    if isinstance(value, datetime):
        # stored times have more digits than a datetime's microseconds: a run created at the
        # microsecond given is neither after nor before it (so a time read from a listed run
        # bounds the list exclusively, as it reads)
        return value.timestamp() + (HALF_MICROSECOND if after else -HALF_MICROSECOND)
    raise BadInputError(f"{name} must be a datetime or seconds since the epoch, got {value!r}")


def run_query(
    state: str | None, has_failed_nodes: bool | None, limit: int, offset: int,
    created_after: float | datetime | None, created_before: float | datetime | None,
) -> RunQuery:  # fmt: skip
    """The store query for ``Engine.list_pipelines``; bad arguments raise BadInputError."""
    # a non-str state (a dict is unhashable) is a wrong type, not a TypeError from the lookup
    if state is not None and (not isinstance(state, str) or state not in states.ALL_STATES):
        raise BadInputError(f"unknown state {state!r}: use one of {', '.join(sorted(states.ALL_STATES))}")
    if has_failed_nodes is not None and not isinstance(has_failed_nodes, bool):
        raise BadInputError(f"has_failed_nodes must be True, False or None, got {has_failed_nodes!r}")
    for name, value in (("limit", limit), ("offset", offset)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadInputError(f"{name} must be an integer, got {value!r}")
    return RunQuery(
        state=state,
        has_failed_nodes=has_failed_nodes,
        created_after=_seconds(created_after, "created_after", after=True),
        created_before=_seconds(created_before, "created_before", after=False),
        limit=limit,
        offset=offset,
    )


def run_dict(run: RunSummary) -> dict[str, Any]:
    return {
        "id": run.root_id,
        "state": run.name,
        "created_time": run.created_time,
        "started_time": run.started_time,
        "finished_time": run.archived_time if run.name in ENDED else None,
        "node_counts": dict(run.counts),
        "failed_nodes": list(run.failed),
        "has_failed_nodes": bool(run.failed),
    }


def first_error_line(tx: Reads, node_id: str) -> str:
    outputs = tx.node_data(node_id).outputs or {}
    text = str(outputs.get("ex_data") or "").strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines and lines[0].startswith("Traceback (most recent call last)"):
        # a traceback's first line says nothing: the exception's own line follows the last frame
        # (indented lines); a message of several lines goes on after it, unindented
        frames = [i for i, ln in enumerate(lines) if ln[:1].isspace()]
        lines = lines[frames[-1] + 1 :] if frames and frames[-1] + 1 < len(lines) else lines[-1:]
    line = lines[0] if lines else ""
    return line if len(line) <= ERROR_LINE else line[: ERROR_LINE - 3] + "..."


def waiting_for(tx: Reads, st: StateRecord) -> dict[str, Any] | None:
    """What a node waits for: a poll (when it is due), a callback (for which version), a resume
    (paused), an operator (failed); None when it waits for nothing (or is running code)."""
    if st.name == states.SUSPENDED:
        return {"for": "resume"}
    if st.name == states.FAILED:
        return {"for": "operator"}
    if st.name != states.RUNNING:
        return None
    for sched in tx.waits(ScheduleQuery(node_id=st.node_id, version=st.version, pending=True)):
        if sched.type == ScheduleType.POLL:
            return {"for": "poll", "due_time": to_datetime(sched.due), "polls": sched.times}
        return {
            "for": "callback",
            "version": st.version,
            "multiple": sched.type == ScheduleType.MULTIPLE_CALLBACK,
        }
    return None


def add_detail(
    core: EngineCore, tx: Reads, root_id: str, entries: dict[str, dict[str, Any]], read: list[StateRecord]
) -> None:
    """Give each node entry of a state query its name and type (from the tree) and what it waits
    for (``waiting``). ``read``: the state records the entries were built from."""
    plan = core.plans.plan(root_id)
    found = {s.node_id: s for s in read}
    for node_id, entry in entries.items():
        info = plan.nodes.get(node_id)
        node = info.node if info is not None else None
        entry["name"] = node.name if node is not None else None
        if node is not None:
            entry["type"] = node.type
        else:  # the root pipeline, which is no node of any tree
            entry["type"] = "Pipeline" if node_id in plan.pipelines else None
        st = found.get(node_id)
        entry["waiting"] = waiting_for(tx, st) if st is not None else None


def _summary(core: EngineCore, pipeline_id: str) -> RunSummary:
    found = core.store.read(lambda tx: tx.runs(RunQuery(root_ids=[pipeline_id], limit=1)))
    if found:
        return found[0]
    root = core.store.read(lambda tx: tx.roots_of([pipeline_id])).get(pipeline_id)
    if root is not None and root != pipeline_id:
        raise NotFoundError(
            f"{pipeline_id} is a node of pipeline {root}, not a pipeline that was run: wait on {root}"
        )
    raise NotFoundError(f"pipeline {pipeline_id} does not exist (list_pipelines shows the stored runs)")


def wait_pipeline(core: EngineCore, pipeline_id: str, timeout: float) -> dict[str, Any]:
    """Wait until the pipeline ends (FINISHED or REVOKED), or has failed nodes and nothing else the
    engine can move by itself, or ``timeout`` seconds pass; say which, and where it stands."""
    if not isinstance(timeout, float | int) or isinstance(timeout, bool) or timeout < 0:
        raise BadInputError(f"timeout must be a number of seconds (0 or more), got {timeout!r}")
    deadline = time.monotonic() + timeout
    pause = _POLL_FIRST
    # a rollback under way moves by itself (its job walks the nodes back, then the run goes on
    # from the target when auto-execute is on) even while the node it started from is FAILED
    moving = {states.ROLLING_BACK, states.READY}
    if core.settings.pipeline_enable_auto_execute_when_roll_backed:
        moving.add(states.ROLL_BACK_SUCCESS)

    def stopped(run: RunSummary) -> bool:
        return bool(run.failed) and not run.busy and run.name not in moving

    run = _summary(core, pipeline_id)
    while not (run.name in ENDED or stopped(run)):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(pause, left))
        pause = min(pause * 2, _POLL_MAX)
        run = _summary(core, pipeline_id)
    ended = run.name in ENDED
    return core.store.read(lambda tx: _outcome(core, tx, run, ended or stopped(run)))


def _outcome(core: EngineCore, tx: Reads, run: RunSummary, done: bool) -> dict[str, Any]:
    plan = core.plans.plan(run.root_id)
    waiting: dict[str, Any] = {}
    for st in tx.states(root_id=run.root_id):
        what = waiting_for(tx, st)
        if what is not None:
            waiting[st.node_id] = what
    failed = []
    for node_id in run.failed:
        info = plan.nodes.get(node_id)
        failed.append({
            "id": node_id,
            "name": info.node.name if info is not None else None,
            "error": first_error_line(tx, node_id),
        })  # fmt: skip
    return {
        "id": run.root_id,
        "state": run.name,
        "finished": run.name == states.FINISHED,
        "timed_out": not done,
        "failed_nodes": failed,
        "waiting": waiting,
    }
