"""Records and a statement trace for the SQLite store tests (tests/runtime)."""

from __future__ import annotations

from collections.abc import Sequence

from rattan.model.codec import dumps
from rattan.model.records import ContextRow, NewRun, StateRecord, TokenRecord
from rattan.runtime.sqlite import SQLiteStore


def state(node_id: str, name: str = "RUNNING", version: str = "v1") -> StateRecord:
    """A state of node ``node_id`` of run r1."""
    return StateRecord(node_id, "r1", "r1", name, version, 1, 1, 0, False, False, 1.0, 1.0, None)


def token(current: str = "n1", status: str = "ready", root_id: str = "r1") -> TokenRecord:
    """A token to insert (id 0)."""
    return TokenRecord(0, root_id, None, current, None, [root_id], status)


def new_run(
    root_id: str = "r1",
    nodes: Sequence[str] = ("a", "b"),
    pipelines: Sequence[str] = (),
    context: Sequence[ContextRow] = (),
) -> NewRun:
    """A run of root pipeline ``root_id`` with the nodes ``nodes`` and the subprocesses
    ``pipelines`` (their ids are node ids too), as ``run_pipeline`` would store it."""
    return NewRun(
        root_id,
        dumps({"id": root_id}),
        {},
        {},
        1.0,
        [root_id, *nodes, *pipelines],
        [root_id, *pipelines],
        list(context),
        StateRecord(root_id, root_id, "", "RUNNING", "v0", created=1.0, started=1.0),
        token(current=nodes[0] if nodes else root_id, root_id=root_id),
    )


def trace(store: SQLiteStore) -> list[str]:
    """Every statement the store's writer runs from now on (until the trace is removed)."""
    seen: list[str] = []
    store._writer.set_trace_callback(seen.append)
    return seen
