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

from collections.abc import Callable, Collection, Sequence
from typing import Any

import psycopg

from rattan.model.messages import Message
from rattan.model.records import NewRun, OwnerRecord, RunRecord, RunSummary
from rattan.runtime.interface import RollbackRows, RunQuery
from rattan.runtime.postgres.behind import Pending, UnitRows
from rattan.runtime.postgres.keyed import IdBlocks, KeyedRows
from rattan.runtime.postgres.leases import LeaseQueries
from rattan.runtime.postgres.rollback import PostgresRollbackRows
from rattan.runtime.postgres.rows import HOLD_RUN_OF_NODE, HOLD_RUNS, dumps, loads
from rattan.runtime.postgres.runs import run_summaries
from rattan.runtime.postgres.values import ValueTable
from rattan.runtime.postgres.waits import WaitQueries

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


class PostgresUnit(KeyedRows, WaitQueries, LeaseQueries, ValueTable):
    """Typed access to the store over one connection (a write transaction or autocommit reads).
    ``url`` names the store in error messages; ``parts`` counts the event rows appended.

    ``locking`` (a unit of work): before a unit reads or writes any row of a run it takes the
    run's lock, a transaction-scoped advisory lock keyed by the root pipeline's id (``rows.py``),
    held until it commits; a read of rows whose run it does not hold yet takes the lock in the same
    round trip, before the read (so the read sees what the last holder committed). The engine
    decides on states it does not write (a step reads its pipeline's state to see whether it is
    paused; ``resume`` writes that state, then looks for the tokens steps parked), and operators
    act on nodes that steps are moving. Under plain READ COMMITTED each of two such units could
    miss the other's write (a token parked after ``resume`` looked: the run hangs) or lose a
    compare-and-set instead of being refused. With the run taken first, the units of one run run
    one after the other, as under SQLite's one writer; units of other runs never wait. (Locking
    only the rows read was tried first: an operator and a step that lock a node and the root in
    opposite orders deadlock. Locking the root's state row came next: a row lock is written into
    the row and the WAL, and a round locked tens of rows.)
    """

    __slots__ = (
        "conn",
        "fresh",
        "ids",
        "locking",
        "parts",
        "pending",
        "pipe",
        "root_of",
        "roots",
        "rows",
        "url",
    )

    def __init__(
        self, conn: psycopg.Connection[Any], url: str, locking: bool = False, ids: IdBlocks | None = None,
        pipe: psycopg.Pipeline | None = None,
    ) -> None:  # fmt: skip
        self.conn = conn
        self.pipe = pipe
        self.fresh: set[str] = set()
        self.depth = 0
        # a unit of work holds its writes back and knows the rows it read (keyed.py, behind.py)
        self.pending: Pending | None = Pending() if locking else None
        self.rows: UnitRows | None = UnitRows() if locking else None
        self.ids = ids
        self.url = url
        self.parts = 0
        self.locking = locking
        self.roots: set[str] = set()  # runs whose root state this unit holds
        self.root_of: dict[str, str] = {}  # node id -> run, as this unit read it

    @property
    def rollback(self) -> RollbackRows:
        return PostgresRollbackRows(lambda: self.c, self.forget)

    def forget(self) -> None:
        """Rows were changed in bulk behind what this unit knows (claims, cleaning): ask again."""
        if self.rows is not None:
            self.rows.clear()

    def lease(
        self, owner: OwnerRecord, now: float, is_dead: Callable[[OwnerRecord], bool],
        tasks: Collection[str] = (),
    ) -> list[tuple[float, Message]]:  # fmt: skip
        work = LeaseQueries.lease(self, owner, now, is_dead, tasks)
        self.forget()
        return work

    # -- runs ----------------------------------------------------------------------------------
    def create_run(self, new: NewRun) -> int:
        c = self.c
        # the run and its node ids are inserted with the rest of the unit's first writes, without
        # waiting for their result: an id another run holds breaks a primary key, which fails the
        # unit at its next sync (errors.translate names it: IdInUseError)
        c.execute(
            "INSERT INTO runs(root_id, tree, root_data, options, created) VALUES (%s, %s, %s, %s, %s)",
            (new.root_id, new.tree_json, dumps(new.root_data), dumps(new.options), new.created),
        )
        c.execute(
            "INSERT INTO node_index(node_id, root_id) SELECT DISTINCT n, %s FROM unnest(%s::text[]) AS n",
            (new.root_id, list(new.node_ids)),
        )
        # a run nobody else can see yet: nothing to wait for (an id hashing alike is another run's)
        self.roots.add(new.root_id)
        self.fresh.add(new.root_id)
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
        self._hold_run(root_id)  # a unit of the run still at work finishes first
        # event ids are transaction ids: deleting rows can never make one be handed out again
        self.c.execute(_DELETE_RUN, {"root": root_id})
        self.forget()
        self.drop_values(root_id)

    # -- locks --------------------------------------------------------------------------------
    def hold_node_run(self, node_id: str) -> None:
        """Take the lock of the run ``node_id`` belongs to (a wait of the node is about to be
        written: its run is taken first, as for its states)."""
        if not self.locking:
            return
        root = self.root_of.get(node_id)
        if root is not None and root in self.roots:
            return
        row = self.conn.execute(HOLD_RUN_OF_NODE, (node_id,)).fetchone()
        if row is not None:
            self.root_of[node_id] = row[0]
            self.roots.add(row[0])

    def _hold_run(self, root_id: str) -> None:
        """Take the run's lock before a row of the run is written (see the class)."""
        if self.locking and root_id and root_id not in self.roots:
            self.conn.execute(HOLD_RUNS, ([root_id],)).fetchall()
            self.roots.add(root_id)
