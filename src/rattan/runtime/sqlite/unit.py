"""The SQLite unit of work: the seam's ``Reads`` and ``UnitOfWork`` over one connection.

One ``SQLiteUnit`` wraps the writer connection inside a transaction (with the writer's cache) or
a reader connection (no cache). This module holds runs, states, tokens, node data and contexts;
``waits`` the schedules, callbacks, timers, histories, logs and events; ``leases`` the owners
and the claiming of work; ``rollback`` the rollback extension's rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rattan.errors import ConflictError, IdInUseError, StateVersionNotMatchError
from rattan.model.records import (
    ContextEntry,
    ContextRow,
    NewRun,
    RunRecord,
    RunSummary,
    StateRecord,
    TokenRecord,
)
from rattan.model.states import TokenStatus
from rattan.runtime.interface import NodeData, RollbackRows, RunQuery
from rattan.runtime.sqlite.errors import translate
from rattan.runtime.sqlite.leases import LeaseQueries
from rattan.runtime.sqlite.rollback import SQLiteRollbackRows
from rattan.runtime.sqlite.rows import (
    CAS_STATE,
    CAS_STATE_MOVED,
    INSERT_PROC,
    INSERT_STATE,
    PROC_BY_ID,
    PROC_COLS,
    SAVE_PROC,
    STATE_COLS,
    STATES_BY,
    ContextRows,
    WriterCache,
    cached_proc_record,
    dumps,
    loads,
    plain_dumps,
    proc_record,
    proc_row,
    state_record,
    state_row,
)
from rattan.runtime.sqlite.runs import run_summaries
from rattan.runtime.sqlite.values import ValueTable
from rattan.runtime.sqlite.waits import WaitQueries

CHUNK = 500  # ids per IN (...) list: well below SQLite's limit on bound parameters
_DONE = TokenStatus.DONE


def marks(n: int) -> str:
    return ",".join("?" * n)


def chunks(ids: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


class SQLiteUnit(WaitQueries, LeaseQueries, ValueTable):
    """Typed access to the store over one connection (a write transaction or a reader).

    ``cache`` (the writer only) keeps rows between transactions (WriterCache).
    """

    __slots__ = ("c", "cache")

    def __init__(self, conn: sqlite3.Connection, cache: WriterCache | None = None) -> None:
        self.c = conn
        self.cache = cache

    @property
    def rollback(self) -> RollbackRows:
        return SQLiteRollbackRows(self.c, self.cache)

    # -- runs ----------------------------------------------------------------------------------
    def create_run(self, new: NewRun) -> int:
        c = self.c
        # the primary keys refuse a used id: no read first (the error path finds what clashed)
        try:
            c.execute(
                "INSERT INTO runs(root_id, tree, root_data, options, created) VALUES (?, ?, ?, ?, ?)",
                (new.root_id, new.tree_json, dumps(new.root_data), dumps(new.options), new.created),
            )
        except sqlite3.IntegrityError:
            raise IdInUseError(
                f"pipeline id {new.root_id} is already used by another run; build a new tree"
            ) from None
        try:
            c.executemany(
                "INSERT INTO node_index(node_id, root_id) VALUES (?, ?)",
                [(n, new.root_id) for n in new.node_ids],
            )
        except sqlite3.IntegrityError:
            c.execute("DELETE FROM node_index WHERE root_id=?", (new.root_id,))
            used = sorted(self.roots_of(new.node_ids))
            raise IdInUseError(
                f"node ids already used by another run: {', '.join(used[:5])}; build a new tree"
            ) from None
        self.put_state(new.root_state, None)
        cache = self.cache
        if cache is not None:
            # nothing of the run has a state or a context row yet: its first steps read nothing
            cache.states.update(dict.fromkeys(n for n in new.node_ids if n != new.root_id))
            for pipeline_id in new.pipeline_ids:
                cache.context[pipeline_id] = {}
        if new.context:
            self.put_context(new.context)
        return self.put_token(new.first_token)

    def run(self, root_id: str) -> RunRecord | None:
        row = self.c.execute(
            "SELECT tree, root_data, options, created FROM runs WHERE root_id=?", (root_id,)
        ).fetchone()
        return (
            None if row is None else RunRecord(root_id, loads(row[0]), loads(row[1]), loads(row[2]), row[3])
        )

    def roots_of(self, node_ids: Sequence[str]) -> dict[str, str]:
        ids = node_ids if isinstance(node_ids, list) else list(node_ids)
        if len(ids) == 1:
            row = self.c.execute("SELECT root_id FROM node_index WHERE node_id=?", ids).fetchone()
            return {} if row is None else {ids[0]: row[0]}
        found: dict[str, str] = {}
        for chunk in chunks(ids):
            sql = f"SELECT node_id, root_id FROM node_index WHERE node_id IN ({marks(len(chunk))})"
            found.update(self.c.execute(sql, chunk).fetchall())
        return found

    def runs(self, query: RunQuery) -> list[RunSummary]:
        return run_summaries(self.c, query)

    def delete_run(self, root_id: str) -> None:
        c = self.c
        nodes = "SELECT node_id FROM node_index WHERE root_id=?"
        for table in ("exec_data", "data_override", "histories", "logs", "schedules", "callbacks", "timers"):
            c.execute(f"DELETE FROM {table} WHERE node_id IN ({nodes})", (root_id,))
        # the context of the root pipeline and of each subprocess (their ids are node ids)
        c.execute(f"DELETE FROM context WHERE pipeline_id IN ({nodes})", (root_id,))
        for table in ("states", "processes", "rollback_tokens", "rollback_snapshots", "rollback_plans",
                      "rollback_jobs"):  # fmt: skip
            c.execute(f"DELETE FROM {table} WHERE root_id=?", (root_id,))
        self.delete_events(root_id)
        self.drop_values(root_id)
        c.execute("DELETE FROM node_index WHERE root_id=?", (root_id,))
        c.execute("DELETE FROM runs WHERE root_id=?", (root_id,))
        if self.cache is not None:  # deleted in bulk, not row by row: start again from the store
            self.cache.clear()

    # -- states --------------------------------------------------------------------------------
    def states(self, node_ids: Sequence[str] = (), *, root_id: str | None = None) -> list[StateRecord]:
        if root_id is not None:
            cursor = self.c.execute(
                f"SELECT {STATE_COLS} FROM states WHERE root_id=? ORDER BY created", (root_id,)
            )
            return [state_record(r) for r in cursor]
        cache = self.cache
        if cache is not None and len(node_ids) == 1 and node_ids[0] in cache.states:
            row = cache.states[node_ids[0]]  # the hot path: one node, known to the cache
            return [] if row is None else [state_record(row)]
        batch = node_ids if isinstance(node_ids, list) else list(node_ids)
        if cache is None:
            return [state_record(r) for r in self._state_rows(batch)]
        states = cache.states
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
            read = {r[0]: r for r in self._state_rows(missing)}
            for node_id in missing:
                row = states[node_id] = read.get(node_id)
                if row is not None:
                    out.append(state_record(row))
        return out

    def _state_rows(self, batch: list[str]) -> list[Any]:
        if len(batch) < len(STATES_BY):
            return self.c.execute(STATES_BY[len(batch)], batch).fetchall() if batch else []
        out: list[Any] = []
        for chunk in chunks(batch):
            sql = f"SELECT {STATE_COLS} FROM states WHERE node_id IN ({marks(len(chunk))})"
            out += self.c.execute(sql, chunk)
        return out

    def put_state(self, new: StateRecord, expect: StateRecord | None) -> None:
        s = new
        if expect is None:
            try:
                self.c.execute(
                    INSERT_STATE,
                    (s.node_id, s.root_id, s.parent_id, s.name, s.version, s.loop, s.inner_loop, s.retry,
                     int(s.skip), int(s.error_ignored), s.created, s.started, s.archived),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                self._forget_state(s.node_id)
                raise StateVersionNotMatchError(f"node {s.node_id}: a state exists already") from None
        else:
            row = (s.name, s.version, s.loop, s.inner_loop, s.retry, int(s.skip), int(s.error_ignored),
                   s.started, s.archived, s.node_id, expect.name, expect.version)  # fmt: skip
            if s.root_id == expect.root_id and s.parent_id == expect.parent_id:
                cur = self.c.execute(CAS_STATE, row)
            else:
                cur = self.c.execute(CAS_STATE_MOVED, (s.root_id, s.parent_id, *row))
            if cur.rowcount != 1:
                self._forget_state(s.node_id)  # whatever the row holds, it is not what was cached
                raise StateVersionNotMatchError(
                    f"node {s.node_id}: state changed concurrently (expected {expect.name}/{expect.version})"
                )
        if self.cache is not None:
            self.cache.states[s.node_id] = state_row(s)

    def _forget_state(self, node_id: str) -> None:
        if self.cache is not None:
            self.cache.states.pop(node_id, None)

    # -- tokens --------------------------------------------------------------------------------
    def tokens(
        self, token_ids: Sequence[int] = (), *, root_id: str | None = None,
        statuses: Collection[str] | None = None,
    ) -> list[TokenRecord]:  # fmt: skip
        if root_id is not None:
            sql = f"SELECT {PROC_COLS} FROM processes WHERE root_id=?"
            args: list[Any] = [root_id]
            if statuses is not None:
                st = list(statuses)
                sql += f" AND status IN ({marks(len(st))})"
                args += st
            return [proc_record(r) for r in self.c.execute(sql + " ORDER BY id", args)]
        if len(token_ids) == 1:  # the hot path: a step reads its token, mostly from the cache
            cache = self.cache
            if cache is not None and (cached := cache.procs.get(token_ids[0])) is not None:
                return [cached_proc_record(cached)]
        out: list[TokenRecord] = []
        for pid in token_ids:
            token = self._token(pid)
            if token is not None:
                out.append(token)
        return out

    def _token(self, pid: int) -> TokenRecord | None:
        procs = self.cache.procs if self.cache is not None else None
        if procs is not None and (cached := procs.get(pid)) is not None:
            return cached_proc_record(cached)
        row = self.c.execute(PROC_BY_ID, (pid,)).fetchone()
        if row is None:
            return None
        p = proc_record(row)
        if procs is not None and p.status != _DONE:
            procs[pid] = proc_row(p)
        return p

    def put_token(self, token: TokenRecord) -> int:
        p = token
        if p.id == 0:
            cur = self.c.execute(
                INSERT_PROC,
                (p.root_id, p.parent_id, p.current, p.destination, plain_dumps(p.stack), p.status, p.pending,
                 p.executing, p.owner),
            )  # fmt: skip
            p.id = int(cur.lastrowid or 0)
            p.rev = 0
            p.stored_status = p.status
        else:
            if p.status == _DONE and p.owner is None:
                p.owner = ""  # finished: no work for anyone to claim
            cached = self.cache.procs.get(p.id) if self.cache is not None else None
            same_owner = cached is not None and cached[9] == p.owner
            row = (p.current, p.destination, plain_dumps(p.stack), p.pending, p.executing)
            if p.status == p.stored_status:
                if same_owner:  # the common case: a step moved the token on
                    cur = self.c.execute(SAVE_PROC[False, False], (*row, p.id, p.rev))
                else:
                    cur = self.c.execute(SAVE_PROC[False, True], (*row, p.owner, p.id, p.rev))
            elif same_owner:
                cur = self.c.execute(SAVE_PROC[True, False], (*row, p.status, p.id, p.rev))
            else:
                cur = self.c.execute(SAVE_PROC[True, True], (*row, p.status, p.owner, p.id, p.rev))
            if cur.rowcount != 1:
                if self.cache is not None:
                    self.cache.procs.pop(p.id, None)
                raise ConflictError(f"token {p.id}: changed concurrently (expected revision {p.rev})")
            p.rev += 1
            p.stored_status = p.status
        cache = self.cache
        if cache is not None:
            if p.status != _DONE:
                cache.procs[p.id] = proc_row(p)
            else:  # a finished token is not read again
                cache.procs.pop(p.id, None)
        return p.id

    # -- node data -----------------------------------------------------------------------------
    def node_data(self, node_id: str) -> NodeData:
        row = self.c.execute(
            "SELECT e.inputs, e.outputs, o.inputs FROM (SELECT ? AS id) k "
            "LEFT JOIN exec_data e ON e.node_id = k.id LEFT JOIN data_override o ON o.node_id = k.id",
            (node_id,),
        ).fetchone()
        inputs = None if row[0] is None else self.load_value(row[0])
        outputs = None if row[1] is None else self.load_value(row[1])
        return NodeData(inputs, outputs, None if row[2] is None else loads(row[2]))

    def put_node_data(
        self, node_id: str, *, inputs: bytes | None = None, outputs: bytes | None = None,
        override: dict[str, Any] | None = None, logs: tuple[str, Sequence[str]] | None = None,
        history: StateRecord | None = None,
    ) -> None:  # fmt: skip
        c = self.c
        if history is not None:
            s = history
            c.execute(
                "INSERT INTO histories(node_id, loop, retry, skip, version, started, archived, inputs, "
                "outputs) "
                "SELECT ?,?,?,?,?,?,?, coalesce(e.inputs, x'7b7d'), coalesce(e.outputs, x'7b7d') "
                "FROM (SELECT ? AS id) k LEFT JOIN exec_data e ON e.node_id = k.id",
                (node_id, s.loop, s.retry, int(s.skip), s.version, s.started, s.archived, node_id),
            )
        if outputs is not None:
            outputs = self.put_value(outputs, False, node_id=node_id)
            if inputs is not None:
                inputs = self.put_value(inputs, False, node_id=node_id)
                c.execute(
                    "INSERT INTO exec_data(node_id, inputs, outputs) VALUES (?,?,?) "
                    "ON CONFLICT(node_id) DO UPDATE SET inputs=excluded.inputs, outputs=excluded.outputs",
                    (node_id, inputs, outputs),
                )
            else:
                c.execute(
                    "INSERT INTO exec_data(node_id, inputs, outputs) VALUES (?, x'7b7d', ?) "
                    "ON CONFLICT(node_id) DO UPDATE SET outputs=excluded.outputs",
                    (node_id, outputs),
                )
        if override is not None:
            c.execute(
                "INSERT INTO data_override(node_id, inputs) VALUES (?,?) "
                "ON CONFLICT(node_id) DO UPDATE SET inputs=excluded.inputs",
                (node_id, dumps(override)),
            )
        if logs is not None and logs[1]:
            version, lines = logs
            c.executemany(
                "INSERT INTO logs(node_id, version, line) VALUES (?,?,?)",
                [(node_id, version, line) for line in lines],
            )

    # -- context -------------------------------------------------------------------------------
    def _context_rows(self, pipeline_id: str) -> ContextRows:
        cache = self.cache
        if cache is not None and (cached := cache.context.get(pipeline_id)) is not None:
            return cached
        rows: ContextRows = {
            r[0]: (r[1], r[2], r[3])
            for r in self.c.execute(
                "SELECT key, type, value, code FROM context WHERE pipeline_id=?", (pipeline_id,)
            )
        }
        if cache is not None:
            cache.context[pipeline_id] = rows
        return rows

    def context(self, pipeline_id: str) -> dict[str, ContextEntry]:
        # values are deserialised per call: callers own what they get
        load = self.load_value
        return {k: (t, load(v), c) for k, (t, v, c) in self._context_rows(pipeline_id).items()}

    def put_context(self, rows: Sequence[ContextRow], *, existing_only: bool = False) -> None:
        put = self.put_value
        data = [(r.pipeline_id, r.key, int(r.type), put(dumps(r.value), True, node_id=r.pipeline_id), r.code)
                for r in rows]  # fmt: skip
        if existing_only:
            self.c.executemany(
                "UPDATE context SET type=?, value=?, code=? WHERE pipeline_id=? AND key=?",
                [(t, v, code, p, k) for p, k, t, v, code in data],
            )
        else:
            self.c.executemany(
                "INSERT INTO context(pipeline_id, key, type, value, code) VALUES (?,?,?,?,?) "
                "ON CONFLICT(pipeline_id, key) DO UPDATE SET type=excluded.type, value=excluded.value, "
                "code=excluded.code",
                data,
            )
        if self.cache is not None:
            context = self.cache.context
            for p, k, t, v, code in data:
                cached = context.get(p)
                # a complete cached context gains the row; an UPDATE changes only a row that exists
                if cached is not None and (not existing_only or k in cached):
                    cached[k] = (t, v, code)

    # -- nested transactions -------------------------------------------------------------------
    @contextmanager
    def savepoint(self) -> Iterator[None]:
        c = self.c
        c.execute("SAVEPOINT item")
        try:
            yield
        except BaseException as exc:
            c.execute("ROLLBACK TO item")
            c.execute("RELEASE item")
            if self.cache is not None:  # it may hold what was just undone
                self.cache.clear()
            if isinstance(exc, sqlite3.Error):
                raise translate(exc) from exc
            raise
        c.execute("RELEASE item")
