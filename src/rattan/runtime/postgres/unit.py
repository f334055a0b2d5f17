"""The PostgreSQL unit of work: the seam's ``Reads`` and ``UnitOfWork`` over one connection.

One ``PostgresUnit`` wraps a pooled connection inside a transaction (``Store.unit``) or in
autocommit (``Store.read``: every statement reads what is committed when it starts). This module
holds runs, states, tokens, node data and contexts; ``waits`` the schedules, callbacks, timers,
histories, logs and events; ``leases`` the owners and the claiming of work; ``rollback`` the
rollback extension's rows.

Transactions are READ COMMITTED. Every write is compare-and-set or keyed: a state changes only
while its name and version are those the writer read, a token only while its ``rev`` is; an update
that waits for a concurrent writer re-checks its WHERE clause on the row that writer committed,
and finds no match. What the engine decides on without writing it is covered by the lock on
every state a unit reads (see ``PostgresUnit``). Expected clashes use ``ON CONFLICT DO NOTHING``
and look at what the statement returned: a failed statement would abort the whole transaction,
and a caller may catch the ConflictError and go on.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from rattan.errors import ConflictError, StateVersionNotMatchError
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
from rattan.runtime.postgres.errors import translate
from rattan.runtime.postgres.leases import LeaseQueries
from rattan.runtime.postgres.rollback import PostgresRollbackRows
from rattan.runtime.postgres.rows import (
    CAS_STATE,
    INSERT_PROC,
    INSERT_STATE,
    LOCK_ROOT,
    LOCK_RUN_OF_NODE,
    LOCK_RUN_STATES,
    LOCK_STATE,
    LOCK_STATES,
    LOCK_WITH_ROOTS,
    PROC_COLS,
    SAVE_PROC,
    STATE_COLS,
    dumps,
    loads,
    plain_dumps,
    proc_record,
    state_params,
    state_record,
)
from rattan.runtime.postgres.runs import run_summaries
from rattan.runtime.postgres.values import ValueTable
from rattan.runtime.postgres.waits import WaitQueries

_DONE = TokenStatus.DONE
# the tables whose rows belong to a run through one of its node ids (a pipeline's context is
# keyed by the pipeline's id, which is a node id too), and those keyed by its root id
_BY_NODE = (
    ("exec_data", "node_id"), ("data_override", "node_id"), ("histories", "node_id"), ("logs", "node_id"),
    ("schedules", "node_id"), ("callbacks", "node_id"), ("timers", "node_id"), ("context", "pipeline_id"),
)  # fmt: skip
_BY_ROOT = (
    "states", "processes", "rollback_tokens", "rollback_snapshots", "rollback_plans", "rollback_jobs",
    "events",
)  # fmt: skip
# every row of a run in one statement (one round trip): each table's DELETE is a data-modifying
# CTE over the run's node ids, read once; node_index and runs go last, in the main statement
_DELETE_RUN = (
    "WITH n AS MATERIALIZED (SELECT node_id FROM node_index WHERE root_id = %(root)s), "
    + ", ".join(
        [
            f"n{i} AS (DELETE FROM {t} WHERE {col} IN (SELECT node_id FROM n))"
            for i, (t, col) in enumerate(_BY_NODE)
        ]
        + [f"r{i} AS (DELETE FROM {t} WHERE root_id = %(root)s)" for i, t in enumerate(_BY_ROOT)]
        + ["x AS (DELETE FROM node_index WHERE root_id = %(root)s)"]
    )
    + " DELETE FROM runs WHERE root_id = %(root)s"
)


class PostgresUnit(WaitQueries, LeaseQueries, ValueTable):
    """Typed access to the store over one connection (a write transaction or autocommit reads).
    ``url`` names the store in error messages; ``parts`` counts the event rows appended.

    ``locking`` (a unit of work): a unit locks (``FOR NO KEY UPDATE``, until it commits) every
    state it reads and, before any row of a run, the state of the run's root pipeline. The engine
    decides on states it does not write (a step reads its pipeline's state to see whether it is
    paused; ``resume`` writes that state, then looks for the tokens steps parked), and operators
    act on nodes that steps are moving. Under plain READ COMMITTED each of two such units could
    miss the other's write (a token parked after ``resume`` looked: the run hangs) or lose a
    compare-and-set instead of being refused. With the root taken first, the units of one run
    run one after the other, as under SQLite's one writer, and never deadlock with each other;
    units of other runs never wait. (Locking only the rows read was tried first: an operator and
    a step that lock a node and the root in opposite orders deadlock.) Taking a run's root costs
    one more statement the first time a unit touches the run.
    """

    __slots__ = ("c", "locking", "parts", "root_of", "roots", "url")

    def __init__(self, conn: psycopg.Connection[Any], url: str, locking: bool = False) -> None:
        self.c = conn
        self.url = url
        self.parts = 0
        self.locking = locking
        self.roots: set[str] = set()  # runs whose root state this unit holds
        self.root_of: dict[str, str] = {}  # node id -> run, as this unit read it

    @property
    def rollback(self) -> RollbackRows:
        return PostgresRollbackRows(self.c)

    # -- runs ----------------------------------------------------------------------------------
    def create_run(self, new: NewRun) -> int:
        c = self.c
        row = c.execute(
            "INSERT INTO runs(root_id, tree, root_data, options, created) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (root_id) DO NOTHING RETURNING root_id",
            (new.root_id, new.tree_json, dumps(new.root_data), dumps(new.options), new.created),
        ).fetchone()
        if row is None:
            raise ConflictError(f"pipeline id {new.root_id} is already used by another run; build a new tree")
        # every node id in one statement; those already used are not inserted (and counted)
        ids = list(new.node_ids)
        inserted = c.execute(
            "INSERT INTO node_index(node_id, root_id) SELECT n, %s FROM unnest(%s::text[]) AS n "
            "ON CONFLICT (node_id) DO NOTHING RETURNING 1",
            (new.root_id, ids),
        ).fetchall()
        if len(inserted) != len(set(ids)):
            c.execute("DELETE FROM node_index WHERE root_id=%s", (new.root_id,))
            c.execute("DELETE FROM runs WHERE root_id=%s", (new.root_id,))
            used = sorted(self.roots_of(ids))
            raise ConflictError(
                f"node ids already used by another run: {', '.join(used[:5])}; build a new tree"
            )
        self.put_state(new.root_state, None)
        if new.context:
            self.put_context(new.context)
        return self.put_token(new.first_token)

    def run(self, root_id: str) -> RunRecord | None:
        row = self.c.execute(
            "SELECT tree, root_data, options, created FROM runs WHERE root_id=%s", (root_id,)
        ).fetchone()
        if row is None:
            return None
        return RunRecord(root_id, loads(row[0]), loads(row[1]), loads(row[2]), row[3])

    def roots_of(self, node_ids: Sequence[str]) -> dict[str, str]:
        rows = self.c.execute(
            "SELECT node_id, root_id FROM node_index WHERE node_id = ANY(%s)", (list(node_ids),)
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    def runs(self, query: RunQuery) -> list[RunSummary]:
        return run_summaries(self.c, query)

    def delete_run(self, root_id: str) -> None:
        # event ids are transaction ids: deleting rows can never make one be handed out again
        self.c.execute(_DELETE_RUN, {"root": root_id})
        self.drop_values(root_id)

    # -- states --------------------------------------------------------------------------------
    def states(self, node_ids: Sequence[str] = (), *, root_id: str | None = None) -> list[StateRecord]:
        if root_id is not None:
            if not self.locking:
                rows = self.c.execute(
                    f"SELECT {STATE_COLS} FROM states WHERE root_id=%s ORDER BY created", (root_id,)
                )
                return [state_record(r) for r in rows]
            out = [state_record(r) for r in self.c.execute(LOCK_RUN_STATES, (root_id,))]
            self.roots.add(root_id)
            out.sort(key=lambda st: st.created)  # locked root first; listed in creation order
            return out
        if not node_ids:
            return []
        if not self.locking:
            if len(node_ids) == 1:
                row = self.c.execute(
                    f"SELECT {STATE_COLS} FROM states WHERE node_id=%s", (node_ids[0],)
                ).fetchone()
                return [] if row is None else [state_record(row)]
            rows = self.c.execute(
                f"SELECT {STATE_COLS} FROM states WHERE node_id = ANY(%s)", (list(node_ids),)
            )
            found = {r[0]: r for r in rows}
        else:
            found = self._lock_states(list(node_ids))
        # in the order asked for, each once
        return [state_record(found[n]) for n in dict.fromkeys(node_ids) if n in found]

    def _lock_states(self, ids: list[str]) -> dict[str, Any]:
        """The rows of ``ids``, locked, each run's root state locked before them."""
        roots, root_of = self.roots, self.root_of
        if all(root_of.get(n) in roots for n in ids):  # the runs are held: the rows alone
            if len(ids) == 1:
                rows = self.c.execute(LOCK_STATE, (ids[0],)).fetchall()
            else:
                rows = self.c.execute(LOCK_STATES, (ids,)).fetchall()
        else:  # the rows and the roots of their runs, roots first, in one statement
            rows = self.c.execute(LOCK_WITH_ROOTS, (ids, ids)).fetchall()
            roots.update(r[1] for r in rows)
        for r in rows:
            root_of[r[0]] = r[1]
        return {r[0]: r for r in rows}

    def hold_node_run(self, node_id: str) -> None:
        """Lock the root state of the run ``node_id`` belongs to (a wait of the node is about
        to be written: its run is taken first, as for its states)."""
        if not self.locking:
            return
        root = self.root_of.get(node_id)
        if root is not None and root in self.roots:
            return
        row = self.c.execute(LOCK_RUN_OF_NODE, (node_id,)).fetchone()
        if row is not None:
            self.root_of[node_id] = row[0]
            self.roots.add(row[0])

    def _hold_run(self, root_id: str) -> None:
        """Lock the run's root state before a row of the run is written (see the class)."""
        if self.locking and root_id and root_id not in self.roots:
            self.c.execute(LOCK_ROOT, (root_id,)).fetchall()
            self.roots.add(root_id)

    def put_state(self, new: StateRecord, expect: StateRecord | None) -> None:
        s = new
        self._hold_run(s.root_id or s.node_id)
        if expect is None:
            if self.c.execute(INSERT_STATE, state_params(s)).fetchone() is None:
                raise StateVersionNotMatchError(f"node {s.node_id}: a state exists already")
            return
        cur = self.c.execute(
            CAS_STATE,
            (s.root_id, s.parent_id, s.name, s.version, s.loop, s.inner_loop, s.retry, bool(s.skip),
             bool(s.error_ignored), s.started, s.archived, s.node_id, expect.name, expect.version),
        )  # fmt: skip
        if cur.fetchone() is None:
            raise StateVersionNotMatchError(
                f"node {s.node_id}: state changed concurrently (expected {expect.name}/{expect.version})"
            )

    # -- tokens --------------------------------------------------------------------------------
    def tokens(
        self, token_ids: Sequence[int] = (), *, root_id: str | None = None,
        statuses: Collection[str] | None = None,
    ) -> list[TokenRecord]:  # fmt: skip
        if root_id is not None:
            if statuses is None:
                sql, args = f"SELECT {PROC_COLS} FROM processes WHERE root_id=%s ORDER BY id", (root_id,)
                return [proc_record(r) for r in self.c.execute(sql, args)]
            sql = f"SELECT {PROC_COLS} FROM processes WHERE root_id=%s AND status = ANY(%s) ORDER BY id"
            return [proc_record(r) for r in self.c.execute(sql, (root_id, list(statuses)))]
        if not token_ids:
            return []
        if len(token_ids) == 1:  # the hot path: a step reads its token
            row = self.c.execute(f"SELECT {PROC_COLS} FROM processes WHERE id=%s", (token_ids[0],)).fetchone()
            return [] if row is None else [proc_record(row)]
        found = {
            r[0]: r
            for r in self.c.execute(
                f"SELECT {PROC_COLS} FROM processes WHERE id = ANY(%s)", (list(token_ids),)
            )
        }
        return [proc_record(found[i]) for i in token_ids if i in found]

    def put_token(self, token: TokenRecord) -> int:
        p = token
        if p.id == 0:
            row = self.c.execute(
                INSERT_PROC,
                (p.root_id, p.parent_id, p.current, p.destination, plain_dumps(p.stack), p.status, p.pending,
                 p.executing, p.owner),
            ).fetchone()  # fmt: skip
            assert row is not None
            p.id = int(row[0])
            p.rev = 0
            p.stored_status = p.status
            return p.id
        if p.status == _DONE and p.owner is None:
            p.owner = ""  # finished: no work for anyone to claim
        self._hold_run(p.root_id)
        cur = self.c.execute(
            SAVE_PROC,
            (p.current, p.destination, plain_dumps(p.stack), p.pending, p.executing, p.status, p.owner, p.id,
             p.rev),
        )  # fmt: skip
        if cur.fetchone() is None:
            raise ConflictError(f"token {p.id}: changed concurrently (expected revision {p.rev})")
        p.rev += 1
        p.stored_status = p.status
        return p.id

    # -- node data -----------------------------------------------------------------------------
    def node_data(self, node_id: str) -> NodeData:
        row = self.c.execute(
            "SELECT e.inputs, e.outputs, o.inputs FROM (SELECT %s::text AS id) k "
            "LEFT JOIN exec_data e ON e.node_id = k.id LEFT JOIN data_override o ON o.node_id = k.id",
            (node_id,),
        ).fetchone()
        assert row is not None
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
                "outputs) SELECT %s,%s,%s,%s,%s,%s,%s, coalesce(e.inputs, '\\x7b7d'::bytea), "
                "coalesce(e.outputs, '\\x7b7d'::bytea) "
                "FROM (SELECT %s::text AS id) k LEFT JOIN exec_data e ON e.node_id = k.id",
                (node_id, s.loop, s.retry, bool(s.skip), s.version, s.started, s.archived, node_id),
            )
        if outputs is not None:
            outputs = self.put_value(outputs, False, node_id=node_id)
            if inputs is not None:
                inputs = self.put_value(inputs, False, node_id=node_id)
                c.execute(
                    "INSERT INTO exec_data(node_id, inputs, outputs) VALUES (%s,%s,%s) "
                    "ON CONFLICT (node_id) DO UPDATE SET inputs=excluded.inputs, outputs=excluded.outputs",
                    (node_id, inputs, outputs),
                )
            else:
                c.execute(
                    "INSERT INTO exec_data(node_id, inputs, outputs) VALUES (%s, '\\x7b7d'::bytea, %s) "
                    "ON CONFLICT (node_id) DO UPDATE SET outputs=excluded.outputs",
                    (node_id, outputs),
                )
        if override is not None:
            c.execute(
                "INSERT INTO data_override(node_id, inputs) VALUES (%s,%s) "
                "ON CONFLICT (node_id) DO UPDATE SET inputs=excluded.inputs",
                (node_id, dumps(override)),
            )
        if logs is not None and logs[1]:
            version, lines = logs
            # one statement for every line: the lines go in as one array
            c.execute(
                "INSERT INTO logs(node_id, version, line) SELECT %s, %s, l "
                "FROM unnest(%s::text[]) WITH ORDINALITY AS t(l, n) ORDER BY n",
                (node_id, version, list(lines)),
            )

    # -- context -------------------------------------------------------------------------------
    def context(self, pipeline_id: str) -> dict[str, ContextEntry]:
        rows = self.c.execute(
            "SELECT key, type, value, code FROM context WHERE pipeline_id=%s", (pipeline_id,)
        )
        load = self.load_value
        return {r[0]: (r[1], load(r[2]), r[3]) for r in rows}

    def put_context(self, rows: Sequence[ContextRow], *, existing_only: bool = False) -> None:
        if not rows:
            return
        # the last row of a key wins, as one statement per row would have it
        put = self.put_value
        data = {
            (r.pipeline_id, r.key): (int(r.type), put(dumps(r.value), True, node_id=r.pipeline_id), r.code)
            for r in rows
        }
        cols: tuple[list[Any], ...] = ([], [], [], [], [])
        for (p, k), (t, v, code) in data.items():
            for col, value in zip(cols, (p, k, t, v, code), strict=True):
                col.append(value)
        if existing_only:
            self.c.execute(
                "UPDATE context c SET type=u.t, value=u.v, code=u.code FROM unnest(%s::text[], %s::text[], "
                "%s::int[], %s::bytea[], %s::text[]) AS u(p, k, t, v, code) "
                "WHERE c.pipeline_id=u.p AND c.key=u.k",
                cols,
            )
        else:
            self.c.execute(
                "INSERT INTO context(pipeline_id, key, type, value, code) SELECT * FROM unnest(%s::text[], "
                "%s::text[], %s::int[], %s::bytea[], %s::text[]) ON CONFLICT (pipeline_id, key) DO UPDATE "
                "SET type=excluded.type, value=excluded.value, code=excluded.code",
                cols,
            )

    # -- nested transactions -------------------------------------------------------------------
    @contextmanager
    def savepoint(self) -> Iterator[None]:
        try:
            with self.c.transaction():
                yield
        except psycopg.Error as exc:
            raise translate(exc, self.url) from exc
