"""Retention: archive finished pipelines to JSON lines, then delete them from the store.

Runs in small batches, each pipeline deleted in its own short transaction, so running work is
never blocked for long. A pipeline is eligible when its root is FINISHED or
REVOKED and was archived before the cutoff.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from rattan.model import states
from rattan.model.codec import dumps, loads
from rattan.model.records import EventRecord
from rattan.runtime.interface import RUNS_PER_QUERY, RunQuery

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.engine.step import Step
    from rattan.runtime.interface import Reads

ARCHIVE_SCHEMA_VERSION = 1
_DONE = (states.FINISHED, states.REVOKED)


def _event_dict(e: EventRecord) -> dict[str, Any]:
    d = e.as_dict()
    d["created_time"] = d["created_time"].isoformat() if d["created_time"] else None
    return d


def export(core: EngineCore, tx: Reads, root_id: str) -> dict[str, Any]:
    """Everything stored about one run, as one JSON-able record."""
    run = tx.run(root_id)
    plan = core.plans.plan(root_id)
    ids = [root_id, *plan.nodes]
    execution_data: dict[str, Any] = {}
    histories: list[dict[str, Any]] = []
    for node_id in ids:
        data = tx.node_data(node_id)
        if data.outputs is not None:
            execution_data[node_id] = {"inputs": data.inputs, "outputs": data.outputs}
        histories += [
            {"id": h.id, "node_id": h.node_id, "loop": h.loop, "retry": h.retry, "skip": h.skip,
             "version": h.version, "started": h.started, "archived": h.archived,
             "inputs": h.inputs, "outputs": h.outputs}
            for h in tx.histories(node_id)
        ]  # fmt: skip
    context = {
        pid: {k: {"type": t, "value": v, "code": code} for k, (t, v, code) in tx.context(pid).items()}
        for pid in plan.pipelines
    }
    return {
        "archive_schema_version": ARCHIVE_SCHEMA_VERSION,
        "root_id": root_id,
        "tree": run.tree if run else None,
        "root_pipeline_data": run.root_data if run else None,
        "states": [
            {
                "node_id": s.node_id,
                "root_id": s.root_id,
                "parent_id": s.parent_id,
                "name": s.name,
                "version": s.version,
                "loop": s.loop,
                "inner_loop": s.inner_loop,
                "retry": s.retry,
                "skip": s.skip,
                "error_ignored": s.error_ignored,
                "created": s.created,
                "started": s.started,
                "archived": s.archived,
            }
            for s in tx.states(root_id=root_id)
        ],
        "execution_data": execution_data,
        "histories": histories,
        "context": context,
        "events": [_event_dict(e) for e in tx.events(0, root_id, 10**9)],
    }


def delete_run(step: Step, root_id: str) -> None:
    """Delete every row of one run (its root must still be FINISHED or REVOKED)."""
    root = step.state(root_id)
    if root is None or root.name not in _DONE:
        return
    step.tx.delete_run(root_id)


def archive(
    core: EngineCore,
    older_than: float,
    out: IO[bytes] | None = None,
    batch: int = 100,
    delete: bool = True,
    limit: int | None = None,
) -> list[str]:
    """Archive (to ``out``, one JSON line per run) and delete runs finished more than
    ``older_than`` seconds ago. Returns the archived root ids."""
    cutoff = core.clock.now() - older_than
    done: list[str] = []
    while limit is None or len(done) < limit:
        size = min(batch if limit is None else min(batch, limit - len(done)), RUNS_PER_QUERY)
        # deleted runs leave the query's result: without deleting, page past those archived
        query = RunQuery(finished_before=cutoff, limit=size, offset=0 if delete else len(done))
        roots = [run.root_id for run in core.store.read(lambda tx, q=query: tx.runs(q))]  # type: ignore[misc]
        if not roots:
            break
        for root_id in roots:
            if out is not None:
                record = core.store.read(lambda tx, r=root_id: export(core, tx, r))  # type: ignore[misc]
                out.write(dumps(record) + b"\n")
            if delete:
                core.unit(lambda step, r=root_id: delete_run(step, r))  # type: ignore[misc]
                core.plans.forget(root_id)
            done.append(root_id)
        if len(roots) < size:
            break
    return done


def read_archive(lines: Iterable[bytes | str]) -> list[dict[str, Any]]:
    """Parse an archive file's lines back into records."""
    blobs = (line.encode() if isinstance(line, str) else line for line in lines)
    return [loads(blob) for blob in blobs if blob.strip()]


__all__ = ["ARCHIVE_SCHEMA_VERSION", "archive", "dumps", "read_archive"]
