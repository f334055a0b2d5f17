"""SQL statements of the store, behind typed methods. One ``Tx`` wraps one DB-API connection.

Every state write is a compare-and-set on (version, state name): a stale writer changes no row and
gets ``StateVersionNotMatchError``. The statements are plain SQL shared by SQLite and PostgreSQL
(``?`` placeholders are translated by the PostgreSQL store). This module holds the queries on runs,
states, execution data, context and tokens; ``queries_jobs`` those on schedules, callbacks, timers,
events and histories; ``rows`` the row formats and the writer's cache.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from rattan.context import ContextValueType
from rattan.engine.records import ExecutionData, ProcessRecord, StateRecord
from rattan.errors import StateVersionNotMatchError
from rattan.runtime.queries_jobs import JobQueries
from rattan.runtime.rows import (
    PROC_BY_ID,
    PROC_COLS,
    SAVE_PROC,
    SAVE_PROC_STATUS,
    STATE_COLS,
    STATES_BY,
    ContextRows,
    ProcRow,
    SchedRow,
    StateRow,
    WriterCache,
    cached_proc_record,
    dumps,
    loads,
    proc_record,
    proc_row,
    state_record,
    state_row,
)

__all__ = ["ContextRows", "ProcRow", "SchedRow", "StateRow", "Tx", "WriterCache", "dumps", "loads"]


class Tx(JobQueries):
    """Typed access to the store over one connection (a write transaction or a reader).

    ``cache`` (the writer only) keeps rows between transactions (WriterCache); ``procs`` and
    ``states`` are its token and state maps, or None on a reader.
    """

    __slots__ = ("c", "cache")

    def __init__(self, conn: Any, cache: WriterCache | None = None) -> None:
        self.c = conn
        self.cache = cache

    @property
    def procs(self) -> dict[int, ProcRow] | None:
        return None if self.cache is None else self.cache.procs

    @property
    def states(self) -> dict[str, StateRow | None] | None:
        return None if self.cache is None else self.cache.states

    def forget(self) -> None:
        """Drop cached rows (after a rollback, or a write that bypassed these methods)."""
        if self.cache is not None:
            self.cache.clear()

    # -- runs ----------------------------------------------------------------------------------
    def insert_run(self, root_id: str, tree: bytes, root_data: Any, options: Any) -> None:
        """``tree`` is the validated tree, already serialised."""
        self.c.execute(
            "INSERT INTO runs(root_id, tree, root_data, options, created) VALUES (?, ?, ?, ?, ?)",
            (root_id, tree, dumps(root_data), dumps(options), time.time()),
        )

    def get_run(self, root_id: str) -> tuple[dict[str, Any], Any, Any] | None:
        row = self.c.execute(
            "SELECT tree, root_data, options FROM runs WHERE root_id=?", (root_id,)
        ).fetchone()
        return None if row is None else (loads(row[0]), loads(row[1]), loads(row[2]))

    def run_exists(self, root_id: str) -> bool:
        return self.c.execute("SELECT 1 FROM runs WHERE root_id=?", (root_id,)).fetchone() is not None

    def index_nodes(self, root_id: str, node_ids: Iterable[str]) -> None:
        self.c.executemany(
            "INSERT INTO node_index(node_id, root_id) VALUES (?, ?)", [(n, root_id) for n in node_ids]
        )

    def root_of_node(self, node_id: str) -> str | None:
        row = self.c.execute("SELECT root_id FROM node_index WHERE node_id=?", (node_id,)).fetchone()
        return None if row is None else str(row[0])

    def get_root_data(self, root_id: str) -> Any:
        row = self.c.execute("SELECT root_data FROM runs WHERE root_id=?", (root_id,)).fetchone()
        return None if row is None else loads(row[0])

    def indexed_node_ids(self, ids: Iterable[str]) -> list[str]:
        """The ids among ``ids`` that already belong to a stored run."""
        found: list[str] = []
        batch = list(ids)
        for i in range(0, len(batch), 500):
            chunk = batch[i : i + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT node_id FROM node_index WHERE node_id IN ({marks})"
            found += [r[0] for r in self.c.execute(sql, chunk)]
        return found

    # -- states --------------------------------------------------------------------------------
    def get_state(self, node_id: str) -> StateRecord | None:
        found = self.states_by_ids([node_id])
        return found[0] if found else None

    def states_of_root(self, root_id: str) -> list[StateRecord]:
        rows = self.c.execute(f"SELECT {STATE_COLS} FROM states WHERE root_id=? ORDER BY created", (root_id,))
        return [state_record(r) for r in rows]

    def states_of_parent(self, parent_id: str) -> list[StateRecord]:
        parent = self.get_state(parent_id)
        if parent is None:
            return []
        return [s for s in self.states_of_root(parent.root_id or parent_id) if s.parent_id == parent_id]

    def states_by_ids(self, ids: Iterable[str]) -> list[StateRecord]:
        batch = ids if isinstance(ids, list) else list(ids)
        states = self.states
        if states is not None:
            out: list[StateRecord] = []
            missing: list[str] = []
            for node_id in batch:
                if node_id in states:
                    cached = states[node_id]
                    if cached is not None:
                        out.append(state_record(cached))
                else:
                    missing.append(node_id)
            if missing:
                rows = {r[0]: r for r in self._state_rows(missing)}
                for node_id in missing:
                    row = states[node_id] = rows.get(node_id)
                    if row is not None:
                        out.append(state_record(row))
            return out
        return [state_record(r) for r in self._state_rows(batch)]

    def _state_rows(self, batch: list[str]) -> list[Any]:
        if len(batch) < len(STATES_BY):
            return self.c.execute(STATES_BY[len(batch)], batch).fetchall() if batch else []
        out: list[Any] = []
        for i in range(0, len(batch), 500):
            chunk = batch[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out += self.c.execute(f"SELECT {STATE_COLS} FROM states WHERE node_id IN ({marks})", chunk)
        return out

    def known_absent(self, node_ids: Iterable[str]) -> None:
        """Remember that these nodes have no state yet (a run just stored): their first entry
        then needs no read."""
        if self.states is not None:
            self.states.update(dict.fromkeys(node_ids))

    def state_names(self, ids: list[str]) -> dict[str, str]:
        if self.states is not None:
            return {s.node_id: s.name for s in self.states_by_ids(ids)}
        if len(ids) == 1:
            row = self.c.execute("SELECT name FROM states WHERE node_id=?", (ids[0],)).fetchone()
            return {} if row is None else {ids[0]: row[0]}
        marks = ",".join("?" * len(ids))
        return dict(
            self.c.execute(f"SELECT node_id, name FROM states WHERE node_id IN ({marks})", ids).fetchall()
        )

    def insert_state(self, s: StateRecord) -> None:
        self.c.execute(
            f"INSERT INTO states({STATE_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (s.node_id, s.root_id, s.parent_id, s.name, s.version, s.loop, s.inner_loop, s.retry,
             int(s.skip), int(s.error_ignored), s.created, s.started, s.archived),
        )  # fmt: skip
        if self.states is not None:
            self.states[s.node_id] = state_row(s)

    def cas_state(self, s: StateRecord, expect_name: str, expect_version: str) -> None:
        """Write ``s`` only if the row still has ``expect_name`` and ``expect_version``."""
        cur = self.c.execute(
            "UPDATE states SET root_id=?, parent_id=?, name=?, version=?, loop=?, inner_loop=?, retry=?, "
            "skip=?, error_ignored=?, started=?, archived=? WHERE node_id=? AND name=? AND version=?",
            (s.root_id, s.parent_id, s.name, s.version, s.loop, s.inner_loop, s.retry, int(s.skip),
             int(s.error_ignored), s.started, s.archived, s.node_id, expect_name, expect_version),
        )  # fmt: skip
        if cur.rowcount != 1:
            if self.states is not None:  # whatever the row holds, it is not what was cached
                self.states.pop(s.node_id, None)
            raise StateVersionNotMatchError(
                f"node {s.node_id}: state changed concurrently (expected {expect_name}/{expect_version})"
            )
        if self.states is not None:
            self.states[s.node_id] = state_row(s)

    def reset_inner_loops(self, root_id: str, parent_id: str) -> None:
        changed = self.c.execute(
            "UPDATE states SET inner_loop=0 WHERE root_id=? AND parent_id=? RETURNING node_id",
            (root_id, parent_id),
        ).fetchall()
        if self.states is not None:  # the rows changed here are read from the store next time
            for (node_id,) in changed:
                self.states.pop(node_id, None)

    # -- execution data, static data overrides, logs -------------------------------------------
    def get_exec_data(self, node_id: str) -> ExecutionData | None:
        row = self.c.execute("SELECT inputs, outputs FROM exec_data WHERE node_id=?", (node_id,)).fetchone()
        return None if row is None else ExecutionData(loads(row[0]), loads(row[1]))

    def put_exec_data(self, node_id: str, inputs: bytes, outputs: bytes) -> None:
        """Store pre-serialised execution data (callers serialise to catch non-JSON outputs early)."""
        self.c.execute(
            "INSERT INTO exec_data(node_id, inputs, outputs) VALUES (?,?,?) "
            "ON CONFLICT(node_id) DO UPDATE SET inputs=excluded.inputs, outputs=excluded.outputs",
            (node_id, inputs, outputs),
        )

    def put_exec_outputs(self, node_id: str, outputs: bytes) -> None:
        """Replace a node's stored outputs, keeping its inputs (empty when it has none yet)."""
        cur = self.c.execute("UPDATE exec_data SET outputs=? WHERE node_id=?", (outputs, node_id))
        if cur.rowcount == 0:
            self.c.execute(
                "INSERT INTO exec_data(node_id, inputs, outputs) VALUES (?,?,?)", (node_id, b"{}", outputs)
            )

    def get_override(self, node_id: str) -> dict[str, Any] | None:
        row = self.c.execute("SELECT inputs FROM data_override WHERE node_id=?", (node_id,)).fetchone()
        return None if row is None else loads(row[0])

    def put_override(self, node_id: str, inputs: dict[str, Any]) -> None:
        self.c.execute(
            "INSERT INTO data_override(node_id, inputs) VALUES (?,?) "
            "ON CONFLICT(node_id) DO UPDATE SET inputs=excluded.inputs",
            (node_id, dumps(inputs)),
        )

    def add_logs(self, rows: list[tuple[str, str, str]]) -> None:
        self.c.executemany("INSERT INTO logs(node_id, version, line) VALUES (?,?,?)", rows)

    def get_logs(self, node_id: str, version: str | None) -> list[str]:
        if version is None:
            rows = self.c.execute("SELECT line FROM logs WHERE node_id=? ORDER BY id", (node_id,))
        else:
            rows = self.c.execute(
                "SELECT line FROM logs WHERE node_id=? AND version=? ORDER BY id", (node_id, version)
            )
        return [r[0] for r in rows]

    # -- context -------------------------------------------------------------------------------
    def _context_rows(self, pipeline_id: str) -> ContextRows:
        cache = self.cache
        if cache is not None and (rows := cache.context.get(pipeline_id)) is not None:
            return rows
        rows = {
            r[0]: (r[1], r[2], r[3])
            for r in self.c.execute(
                "SELECT key, type, value, code FROM context WHERE pipeline_id=?", (pipeline_id,)
            )
        }
        if cache is not None:
            cache.context[pipeline_id] = rows
        return rows

    def load_context(self, pipeline_id: str) -> dict[str, tuple[int, Any, str | None]]:
        # values are deserialised per call: callers own what they get
        return {k: (t, loads(v), c) for k, (t, v, c) in self._context_rows(pipeline_id).items()}

    def context_keys(self, pipeline_id: str) -> set[str]:
        return set(self._context_rows(pipeline_id))

    def fresh_context(self, pipeline_ids: Iterable[str]) -> None:
        """Remember that these pipelines have no context rows yet (a run just stored)."""
        if self.cache is not None:
            for pipeline_id in pipeline_ids:
                self.cache.context[pipeline_id] = {}

    def upsert_context(self, rows: Sequence[tuple[str, str, int, Any, str | None]]) -> None:
        """Rows of (pipeline_id, key, type, value, code)."""
        data = [(p, k, int(t), dumps(v), c) for p, k, t, v, c in rows]
        self.c.executemany(
            "INSERT INTO context(pipeline_id, key, type, value, code) VALUES (?,?,?,?,?) "
            "ON CONFLICT(pipeline_id, key) DO UPDATE SET type=excluded.type, value=excluded.value, "
            "code=excluded.code",
            data,
        )
        if self.cache is not None:
            context = self.cache.context
            for p, k, t, v, c in data:
                if (cached := context.get(p)) is not None:
                    cached[k] = (t, v, c)

    def update_context_existing(
        self, pipeline_id: str, key: str, type_: int, value: Any, code: str | None
    ) -> None:
        blob = dumps(value)
        self.c.execute(
            "UPDATE context SET type=?, value=?, code=? WHERE pipeline_id=? AND key=?",
            (int(type_), blob, code, pipeline_id, key),
        )
        cached = self.cache.context.get(pipeline_id) if self.cache is not None else None
        if cached is not None and key in cached:  # UPDATE changes only a row that exists
            cached[key] = (int(type_), blob, code)

    def set_plain(self, pipeline_id: str, key: str, value: Any) -> None:
        self.upsert_context([(pipeline_id, key, ContextValueType.PLAIN, value, None)])

    # -- processes -----------------------------------------------------------------------------
    def insert_process(
        self, root_id: str, parent_id: int | None, current: str, destination: str | None,
        stack: list[str], status: str,
    ) -> int:  # fmt: skip
        cur = self.c.execute(
            "INSERT INTO processes(root_id, parent_id, current, destination, stack, status) "
            "VALUES (?,?,?,?,?,?)",
            (root_id, parent_id, current, destination, dumps(stack), status),
        )
        pid = int(cur.lastrowid)
        if self.procs is not None:
            self.procs[pid] = (pid, root_id, parent_id, current, destination, tuple(stack), status, 0, None)
        return pid

    def get_process(self, pid: int) -> ProcessRecord | None:
        procs = self.procs
        if procs is not None and (cached := procs.get(pid)) is not None:
            return cached_proc_record(cached)
        row = self.c.execute(PROC_BY_ID, (pid,)).fetchone()
        if row is None:
            return None
        p = proc_record(row)
        if procs is not None and p.status != "done":
            procs[pid] = proc_row(p)
        return p

    def save_process(self, p: ProcessRecord) -> None:
        row = (p.current, p.destination, dumps(p.stack), p.pending, p.executing)
        if p.status == p.stored_status:
            # status unchanged: not naming it keeps SQLite from rewriting its index entry
            cur = self.c.execute(SAVE_PROC, (*row, p.id))
        else:
            cur = self.c.execute(SAVE_PROC_STATUS, (*row, p.status, p.id))
            p.stored_status = p.status
        procs = self.procs
        if procs is not None:
            if cur.rowcount == 1 and p.status != "done":
                procs[p.id] = proc_row(p)
            else:  # a finished token is not read again, or its row is gone (its run was deleted)
                procs.pop(p.id, None)

    def processes_at(self, node_id: str) -> list[ProcessRecord]:
        """Live tokens whose current node is ``node_id`` (found through the node's run)."""
        root = self.root_of_node(node_id)
        if root is None:
            return []
        return [p for p in self.processes_of_root(root) if p.current == node_id and p.status != "done"]

    def processes_of_root(self, root_id: str, statuses: Iterable[str] | None = None) -> list[ProcessRecord]:
        if statuses is None:
            rows = self.c.execute(
                f"SELECT {PROC_COLS} FROM processes WHERE root_id=? ORDER BY id", (root_id,)
            )
        else:
            st = list(statuses)
            marks = ",".join("?" * len(st))
            rows = self.c.execute(
                f"SELECT {PROC_COLS} FROM processes WHERE root_id=? AND status IN ({marks}) ORDER BY id",
                (root_id, *st),
            )
        return [proc_record(r) for r in rows]

    def processes_with_status(self, status: str) -> list[ProcessRecord]:
        rows = self.c.execute(f"SELECT {PROC_COLS} FROM processes WHERE status=? ORDER BY id", (status,))
        return [proc_record(r) for r in rows]

    def decrement_pending(self, pid: int) -> int:
        self.c.execute("UPDATE processes SET pending=pending-1 WHERE id=?", (pid,))
        row = self.c.execute("SELECT pending FROM processes WHERE id=?", (pid,)).fetchone()
        if self.procs is not None:
            self.procs.pop(pid, None)
        return int(row[0])
