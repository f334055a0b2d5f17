"""Retention: archive finished pipelines to JSON lines, then delete them from the store.

Runs in small batches, each pipeline deleted in its own short transaction, so running work is
never blocked for long (SPEC 13 row 12). A pipeline is eligible when its root is FINISHED or
REVOKED and was archived before the cutoff.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

import orjson

from rattan import states
from rattan.engine import reads
from rattan.runtime.queries import dumps, loads

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.engine.step import Step
    from rattan.runtime.queries import Tx

ARCHIVE_SCHEMA_VERSION = 1
_DONE = (states.FINISHED, states.REVOKED)


def eligible_roots(tx: Tx, cutoff: float, limit: int) -> list[str]:
    rows = tx.c.execute(
        "SELECT r.root_id FROM runs r JOIN states s ON s.node_id = r.root_id "
        "WHERE s.name IN (?, ?) AND s.archived IS NOT NULL AND s.archived < ? ORDER BY s.archived LIMIT ?",
        (*_DONE, cutoff, limit),
    )
    return [r[0] for r in rows]


def _marks(ids: list[str]) -> str:
    return ",".join("?" * len(ids))


def _node_ids(core: EngineCore, root_id: str) -> list[str]:
    return [root_id, *core.plan(root_id).nodes]


def export(core: EngineCore, tx: Tx, root_id: str) -> dict[str, Any]:
    """Everything stored about one run, as one JSON-able record."""
    run = tx.get_run(root_id)
    ids = _node_ids(core, root_id)
    pipelines = list(core.plan(root_id).pipelines)
    c = tx.c
    exec_rows = c.execute(
        f"SELECT node_id, inputs, outputs FROM exec_data WHERE node_id IN ({_marks(ids)})", ids
    )
    histories: list[dict[str, Any]] = []
    for node_id in ids:
        histories += [
            {"id": h.id, "node_id": h.node_id, "loop": h.loop, "retry": h.retry, "skip": h.skip,
             "version": h.version, "started": h.started, "archived": h.archived,
             "inputs": h.inputs, "outputs": h.outputs}
            for h in tx.get_histories(node_id)
        ]  # fmt: skip
    context = {
        pid: {k: {"type": t, "value": v, "code": code} for k, (t, v, code) in tx.load_context(pid).items()}
        for pid in pipelines
    }
    events = [
        {**e, "created_time": e["created_time"].isoformat() if e["created_time"] else None}
        for e in reads.expand_event_rows(tx.get_event_rows(root_id, 0, 1_000_000))
    ]
    return {
        "archive_schema_version": ARCHIVE_SCHEMA_VERSION,
        "root_id": root_id,
        "tree": run[0] if run else None,
        "root_pipeline_data": run[1] if run else None,
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
            for s in tx.states_of_root(root_id)
        ],
        "execution_data": {r[0]: {"inputs": loads(r[1]), "outputs": loads(r[2])} for r in exec_rows},
        "histories": histories,
        "context": context,
        "events": events,
    }


def delete_run(core: EngineCore, step: Step, root_id: str) -> None:
    """Delete every row of one run (its root must still be FINISHED or REVOKED)."""
    root = step.tx.get_state(root_id)
    if root is None or root.name not in _DONE:
        return
    ids = _node_ids(core, root_id)
    pipelines = list(core.plan(root_id).pipelines)
    c = step.tx.c
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        m = _marks(chunk)
        for table in ("exec_data", "data_override", "histories", "logs", "schedules", "callbacks", "timers"):
            c.execute(f"DELETE FROM {table} WHERE node_id IN ({m})", chunk)
        c.execute(f"DELETE FROM node_index WHERE node_id IN ({m})", chunk)
    c.execute(f"DELETE FROM context WHERE pipeline_id IN ({_marks(pipelines)})", pipelines)
    for table in ("states", "processes"):
        c.execute(f"DELETE FROM {table} WHERE root_id=?", (root_id,))
    step.tx.forget()  # deleted here, not through the Tx methods that keep the cache
    step.tx.delete_events(root_id)
    c.execute("DELETE FROM runs WHERE root_id=?", (root_id,))


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
    cutoff = time.time() - older_than
    done: list[str] = []
    seen: set[str] = set()
    while limit is None or len(done) < limit:
        size = batch if limit is None else min(batch, limit - len(done))
        want = size + len(seen)
        found = core.store.read(functools.partial(eligible_roots, cutoff=cutoff, limit=want))
        roots = [r for r in found if r not in seen]
        if not roots:
            break
        for root_id in roots[:size]:
            seen.add(root_id)
            if out is not None:
                record = core.store.read(lambda tx, r=root_id: export(core, tx, r))  # type: ignore[misc]
                out.write(orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS) + b"\n")
            if delete:
                core.unit(lambda step, r=root_id: delete_run(core, step, r))  # type: ignore[misc]
                core.forget(root_id)
            done.append(root_id)
        if not delete and len(roots) <= size:
            break
    return done


def read_archive(lines: Iterable[bytes | str]) -> list[dict[str, Any]]:
    """Parse an archive file's lines back into records."""
    return [loads(line) for line in lines if line and line.strip()]


__all__ = ["ARCHIVE_SCHEMA_VERSION", "archive", "dumps", "read_archive"]
