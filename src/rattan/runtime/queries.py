"""SQL statements of the store, behind typed methods. One ``Tx`` wraps one DB-API connection.

Every state write is a compare-and-set on (version, state name): a stale writer changes no row and
gets ``StateVersionNotMatchError``. The statements are plain SQL shared by SQLite and PostgreSQL
(``?`` placeholders are translated by the PostgreSQL store).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from rattan.components.service import ScheduleType
from rattan.context import ContextValueType
from rattan.engine.records import (
    CallbackRecord,
    ExecutionData,
    HistoryRecord,
    ProcessRecord,
    ScheduleRecord,
    StateRecord,
)
from rattan.errors import StateVersionNotMatchError
from rattan.signals import EVENT_SCHEMA_VERSION

_JSON_OPTS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_JSON_OPTS)


loads = orjson.loads

_STATE_COLS = (
    "node_id, root_id, parent_id, name, version, loop, inner_loop, retry, skip, error_ignored, "
    "created, started, archived"
)
_PROC_COLS = "id, root_id, parent_id, current, destination, stack, status, pending, executing"
# the hot path reads a node with its root, its enclosing subprocesses and the node after it:
# the text of each short form is built once (the driver caches statements by their text)
_STATES_BY = [""] + [
    f"SELECT {_STATE_COLS} FROM states WHERE node_id IN ({','.join('?' * n)})" for n in range(1, 9)
]
_STATES_BY_1 = f"SELECT {_STATE_COLS} FROM states WHERE node_id=?"
_PROC_BY_ID = f"SELECT {_PROC_COLS} FROM processes WHERE id=?"
_SAVE_PROC = "UPDATE processes SET current=?, destination=?, stack=?, pending=?, executing=? WHERE id=?"
_SAVE_PROC_STATUS = _SAVE_PROC.replace(" WHERE", ", status=? WHERE")
_SCHED_COLS = "id, node_id, version, type, process_id, times, finished, expired, due"
_SCHED_COUNT = _SCHED_COLS.count(",") + 1
_SCHED_AND_STATE = (
    "SELECT "
    + ", ".join(f"s.{c.strip()}" for c in _SCHED_COLS.split(","))
    + ", "
    + ", ".join(f"st.{c.strip()}" for c in _STATE_COLS.split(","))
    + " FROM schedules s LEFT JOIN states st ON st.node_id = s.node_id WHERE s.id=?"
)


def _state(row: Any) -> StateRecord:
    return StateRecord(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
        bool(row[8]), bool(row[9]), row[10], row[11], row[12],
    )  # fmt: skip


def _proc(row: Any) -> ProcessRecord:
    return ProcessRecord(
        row[0], row[1], row[2], row[3], row[4], loads(row[5]), row[6], row[7], row[8], row[6]
    )


def _sched(row: Any) -> ScheduleRecord:
    return ScheduleRecord(
        row[0], row[1], row[2], ScheduleType(row[3]), row[4], row[5], bool(row[6]), bool(row[7]), row[8]
    )


# a process row as the writer last wrote it: _PROC_COLS, with the stack as a tuple
ProcRow = tuple[int, str, int | None, str, str | None, tuple[str, ...], str, int, str | None]
# a state row as the writer last wrote or read it: _STATE_COLS; None: the node has no state
StateRow = tuple[str, str, str, str, str, int, int, int, bool, bool, float, float | None, float | None]


# a schedule row: _SCHED_COLS
SchedRow = tuple[int, str, str, int, int, int, bool, bool, float | None]
# one pipeline's context rows: key -> (type, serialised value, code)
ContextRows = dict[str, tuple[int, bytes, str | None]]


class WriterCache:
    """Rows as the writer connection last wrote or read them (tokens, states, live schedules and
    pipeline contexts), so a step reads what its previous step wrote without a statement. The
    store clears it whenever it cannot
    vouch for it (a rollback, a commit by another connection, a bulk write); every other write
    to ``processes`` and ``states`` goes through Tx methods, which keep it current. Code that
    writes those tables (or schedules, context) with its own SQL (retention, rollback cleaning)
    calls ``Tx.forget()``;
    tests/runtime/test_writer_cache.py holds the list of such places."""

    __slots__ = ("context", "procs", "schedules", "states")

    def __init__(self) -> None:
        self.procs: dict[int, ProcRow] = {}
        self.states: dict[str, StateRow | None] = {}
        self.schedules: dict[int, SchedRow] = {}
        self.context: dict[str, ContextRows] = {}  # complete: every row of the pipeline

    def clear(self) -> None:
        self.procs.clear()
        self.states.clear()
        self.schedules.clear()
        self.context.clear()

    def size(self) -> int:
        return len(self.procs) + len(self.states) + len(self.schedules) + len(self.context)


def _state_row(s: StateRecord) -> StateRow:
    return (s.node_id, s.root_id, s.parent_id, s.name, s.version, s.loop, s.inner_loop, s.retry,
            s.skip, s.error_ignored, s.created, s.started, s.archived)  # fmt: skip


class Tx:
    """Typed access to the store over one connection (a write transaction or a reader).

    ``cache`` (the writer only) keeps process and state rows between transactions (WriterCache).
    """

    __slots__ = ("c", "cache", "procs", "states")

    def __init__(self, conn: Any, cache: WriterCache | None = None) -> None:
        self.c = conn
        self.cache = cache
        self.procs = cache.procs if cache is not None else None
        self.states = cache.states if cache is not None else None

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
        states = self.states
        if states is not None and node_id in states:
            cached = states[node_id]
            return None if cached is None else _state(cached)
        row = self.c.execute(_STATES_BY_1, (node_id,)).fetchone()
        if states is not None:
            states[node_id] = row
        return None if row is None else _state(row)

    def states_of_root(self, root_id: str) -> list[StateRecord]:
        rows = self.c.execute(
            f"SELECT {_STATE_COLS} FROM states WHERE root_id=? ORDER BY created", (root_id,)
        )
        return [_state(r) for r in rows]

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
                        out.append(_state(cached))
                else:
                    missing.append(node_id)
            if missing:
                rows = {r[0]: r for r in self._state_rows(missing)}
                for node_id in missing:
                    row = states[node_id] = rows.get(node_id)
                    if row is not None:
                        out.append(_state(row))
            return out
        return [_state(r) for r in self._state_rows(batch)]

    def _state_rows(self, batch: list[str]) -> list[Any]:
        if len(batch) < len(_STATES_BY):
            return self.c.execute(_STATES_BY[len(batch)], batch).fetchall() if batch else []
        out: list[Any] = []
        for i in range(0, len(batch), 500):
            chunk = batch[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out += self.c.execute(f"SELECT {_STATE_COLS} FROM states WHERE node_id IN ({marks})", chunk)
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
            f"INSERT INTO states({_STATE_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (s.node_id, s.root_id, s.parent_id, s.name, s.version, s.loop, s.inner_loop, s.retry,
             int(s.skip), int(s.error_ignored), s.created, s.started, s.archived),
        )  # fmt: skip
        if self.states is not None:
            self.states[s.node_id] = _state_row(s)

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
            self.states[s.node_id] = _state_row(s)

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
            return ProcessRecord(
                pid, cached[1], cached[2], cached[3], cached[4], list(cached[5]), cached[6], cached[7],
                cached[8], cached[6],
            )  # fmt: skip
        row = self.c.execute(_PROC_BY_ID, (pid,)).fetchone()
        if row is None:
            return None
        p = _proc(row)
        if procs is not None and p.status != "done":
            procs[pid] = (pid, p.root_id, p.parent_id, p.current, p.destination, tuple(p.stack), p.status,
                          p.pending, p.executing)  # fmt: skip
        return p

    def save_process(self, p: ProcessRecord) -> None:
        row = (p.current, p.destination, dumps(p.stack), p.pending, p.executing)
        if p.status == p.stored_status:
            # status unchanged: not naming it keeps SQLite from rewriting its index entry
            cur = self.c.execute(_SAVE_PROC, (*row, p.id))
        else:
            cur = self.c.execute(_SAVE_PROC_STATUS, (*row, p.status, p.id))
            p.stored_status = p.status
        procs = self.procs
        if procs is not None:
            if cur.rowcount == 1 and p.status != "done":
                procs[p.id] = (p.id, p.root_id, p.parent_id, p.current, p.destination, tuple(p.stack),
                               p.status, p.pending, p.executing)  # fmt: skip
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
                f"SELECT {_PROC_COLS} FROM processes WHERE root_id=? ORDER BY id", (root_id,)
            )
        else:
            st = list(statuses)
            marks = ",".join("?" * len(st))
            rows = self.c.execute(
                f"SELECT {_PROC_COLS} FROM processes WHERE root_id=? AND status IN ({marks}) ORDER BY id",
                (root_id, *st),
            )
        return [_proc(r) for r in rows]

    def processes_with_status(self, status: str) -> list[ProcessRecord]:
        rows = self.c.execute(f"SELECT {_PROC_COLS} FROM processes WHERE status=? ORDER BY id", (status,))
        return [_proc(r) for r in rows]

    def decrement_pending(self, pid: int) -> int:
        self.c.execute("UPDATE processes SET pending=pending-1 WHERE id=?", (pid,))
        row = self.c.execute("SELECT pending FROM processes WHERE id=?", (pid,)).fetchone()
        if self.procs is not None:
            self.procs.pop(pid, None)
        return int(row[0])

    # -- schedules and callbacks ---------------------------------------------------------------
    def insert_schedule_record(self, s: ScheduleRecord) -> None:
        """Insert a schedule with its fields already computed; sets ``s.id``."""
        cur = self.c.execute(
            "INSERT INTO schedules(node_id, version, type, process_id, times, finished, expired, due) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (
                s.node_id,
                s.version,
                int(s.type),
                s.process_id,
                s.times,
                int(s.finished),
                int(s.expired),
                s.due,
            ),
        )
        s.id = int(cur.lastrowid)
        self._keep_schedule(s)

    def insert_schedule(self, node_id: str, version: str, type_: int, pid: int, due: float | None) -> int:
        cur = self.c.execute(
            "INSERT INTO schedules(node_id, version, type, process_id, due) VALUES (?,?,?,?,?)",
            (node_id, version, type_, pid, due),
        )
        sid = int(cur.lastrowid)
        if self.cache is not None:
            self.cache.schedules[sid] = (sid, node_id, version, type_, pid, 0, False, False, due)
        return sid

    def _keep_schedule(self, s: ScheduleRecord) -> None:
        """Cache a schedule as written; a finished or expired one is not read again."""
        if self.cache is None:
            return
        if s.finished or s.expired:
            self.cache.schedules.pop(s.id, None)
        else:
            self.cache.schedules[s.id] = (
                s.id, s.node_id, s.version, int(s.type), s.process_id, s.times, s.finished, s.expired, s.due,
            )  # fmt: skip

    def get_schedule(self, sid: int) -> ScheduleRecord | None:
        if self.cache is not None and (cached := self.cache.schedules.get(sid)) is not None:
            return _sched(cached)
        row = self.c.execute(f"SELECT {_SCHED_COLS} FROM schedules WHERE id=?", (sid,)).fetchone()
        return None if row is None else _sched(row)

    def schedule_and_state(self, sid: int) -> tuple[ScheduleRecord | None, StateRecord | None]:
        """A schedule and its node's state, in one statement unless both are cached (recording a
        poll or callback)."""
        cache = self.cache
        if cache is not None and (cached := cache.schedules.get(sid)) is not None:
            node_id = cached[1]
            if node_id in cache.states:
                state = cache.states[node_id]
                return _sched(cached), (None if state is None else _state(state))
        row = self.c.execute(_SCHED_AND_STATE, (sid,)).fetchone()
        if row is None:
            return None, None
        n = _SCHED_COUNT
        return _sched(row[:n]), (None if row[n] is None else _state(row[n:]))

    def get_schedule_by(self, node_id: str, version: str) -> ScheduleRecord | None:
        row = self.c.execute(
            f"SELECT {_SCHED_COLS} FROM schedules WHERE node_id=? AND version=?", (node_id, version)
        ).fetchone()
        return None if row is None else _sched(row)

    def save_schedule(self, s: ScheduleRecord) -> None:
        self.c.execute(
            "UPDATE schedules SET times=?, finished=?, expired=?, due=? WHERE id=?",
            (s.times, int(s.finished), int(s.expired), s.due, s.id),
        )
        self._keep_schedule(s)

    def due_schedules(self) -> list[ScheduleRecord]:
        rows = self.c.execute(
            f"SELECT {_SCHED_COLS} FROM schedules WHERE due IS NOT NULL AND finished=0 AND expired=0"
        )
        return [_sched(r) for r in rows]

    def live_schedules_of(self, node_id: str) -> list[ScheduleRecord]:
        rows = self.c.execute(
            f"SELECT {_SCHED_COLS} FROM schedules WHERE node_id=? AND finished=0 AND expired=0", (node_id,)
        )
        return [_sched(r) for r in rows]

    def insert_callback(self, node_id: str, version: str, data: Any, idem_key: str | None) -> int:
        cur = self.c.execute(
            "INSERT INTO callbacks(node_id, version, data, idem_key, created) VALUES (?,?,?,?,?)",
            (node_id, version, dumps(data), idem_key, time.time()),
        )
        return int(cur.lastrowid)

    def find_callback_key(self, node_id: str, idem_key: str) -> int | None:
        row = self.c.execute(
            "SELECT id FROM callbacks WHERE node_id=? AND idem_key=?", (node_id, idem_key)
        ).fetchone()
        return None if row is None else int(row[0])

    def get_callback(self, cid: int) -> CallbackRecord | None:
        row = self.c.execute(
            "SELECT id, node_id, version, data, idem_key, applied FROM callbacks WHERE id=?", (cid,)
        ).fetchone()
        return (
            None
            if row is None
            else CallbackRecord(row[0], row[1], row[2], loads(row[3]), row[4], bool(row[5]))
        )

    def pending_callbacks(self) -> list[int]:
        return [r[0] for r in self.c.execute("SELECT id FROM callbacks WHERE applied=0 ORDER BY id")]

    def first_pending_callback(self, node_id: str, version: str) -> int | None:
        row = self.c.execute(
            "SELECT id FROM callbacks WHERE node_id=? AND version=? AND applied=0 ORDER BY id LIMIT 1",
            (node_id, version),
        ).fetchone()
        return None if row is None else int(row[0])

    def pending_callbacks_of(self, node_id: str, version: str) -> list[int]:
        rows = self.c.execute(
            "SELECT id FROM callbacks WHERE node_id=? AND version=? AND applied=0 ORDER BY id",
            (node_id, version),
        )
        return [r[0] for r in rows]

    def mark_callback(self, cid: int, applied: int) -> None:
        """applied: 1 = applied, 2 = refused (stale or node no longer waiting)."""
        self.c.execute("UPDATE callbacks SET applied=? WHERE id=?", (applied, cid))

    # -- timers --------------------------------------------------------------------------------
    def insert_timer(self, kind: str, node_id: str, version: str, due: float, payload: Any) -> int:
        cur = self.c.execute(
            "INSERT INTO timers(kind, node_id, version, due, payload) VALUES (?,?,?,?,?)",
            (kind, node_id, version, due, dumps(payload)),
        )
        return int(cur.lastrowid)

    def get_timer(self, tid: int) -> tuple[str, str, str, float, Any] | None:
        row = self.c.execute(
            "SELECT kind, node_id, version, due, payload FROM timers WHERE id=?", (tid,)
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3], loads(row[4]))

    def delete_timer(self, tid: int) -> None:
        self.c.execute("DELETE FROM timers WHERE id=?", (tid,))

    def all_timers(self) -> list[tuple[int, float]]:
        return [(r[0], r[1]) for r in self.c.execute("SELECT id, due FROM timers")]

    # -- event log -----------------------------------------------------------------------------
    def add_events(self, rows: list[tuple[str, str | None, str, bytes, int, float]]) -> None:
        """Rows of (root_id, first node_id, first type, [[type, node_id, data], ...], schema, created)."""
        self.c.executemany(
            "INSERT INTO events(root_id, node_id, event_type, data, schema, created) VALUES (?,?,?,?,?,?)",
            rows,
        )

    def delete_events(self, root_id: str) -> None:
        """Delete a run's event rows. Event ids are a cursor and must never be handed out twice,
        and a new row takes the largest id + 1: when the newest row goes, an empty placeholder
        row keeps its id (older placeholders are dropped then)."""
        top = self.c.execute("SELECT max(id) FROM events").fetchone()[0]
        self.c.execute("DELETE FROM events WHERE root_id=?", (root_id,))
        if top is None:
            return
        left = self.c.execute("SELECT max(id) FROM events").fetchone()[0]
        if left is None or left < top:
            self.c.execute("DELETE FROM events WHERE root_id=''")
            self.c.execute(
                "INSERT INTO events(id, root_id, node_id, event_type, data, schema, created) "
                "VALUES (?, '', NULL, '', x'5b5d', ?, ?)",
                (top, EVENT_SCHEMA_VERSION, time.time()),
            )

    def get_event_rows(self, root_id: str | None, after_row: int, limit: int) -> list[tuple[Any, ...]]:
        sql = "SELECT id, root_id, data, schema, created FROM events WHERE id >= ? "
        if root_id is None:
            return list(self.c.execute(sql + "ORDER BY id LIMIT ?", (after_row, limit)))
        return list(self.c.execute(sql + "AND root_id=? ORDER BY id LIMIT ?", (after_row, root_id, limit)))

    # -- histories -----------------------------------------------------------------------------
    def add_history(self, s: StateRecord, data: ExecutionData | None) -> None:
        self.c.execute(
            "INSERT INTO histories(node_id, loop, retry, skip, version, started, archived, inputs, outputs) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (s.node_id, s.loop, s.retry, int(s.skip), s.version, s.started, s.archived,
             dumps(data.inputs if data else {}), dumps(data.outputs if data else {})),
        )  # fmt: skip

    def get_histories(self, node_id: str, loop: int = -1) -> list[HistoryRecord]:
        sql = (
            "SELECT id, node_id, loop, retry, skip, version, started, archived, inputs, outputs "
            "FROM histories "
        )
        if loop == -1:
            rows = self.c.execute(sql + "WHERE node_id=? ORDER BY id", (node_id,))
        else:
            rows = self.c.execute(sql + "WHERE node_id=? AND loop=? ORDER BY id", (node_id, loop))
        return [
            HistoryRecord(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], loads(r[8]), loads(r[9]))
            for r in rows
        ]
