"""What a PostgreSQL unit of work knows and has not yet sent: its rows as it last read or wrote
them (``UnitRows``), and its writes, held back and sent together (``Pending``, ``flush``).

Why: the engine reads and writes a handful of rows per node (its token, the node's state, the
root's state, the context, a schedule, the node's data), one row at a time. Sent one statement at
a time, each costs a round trip to the server and a parse-bind-execute there: on PostgreSQL a node
cost 11-15 statements, and the round leader spent most of its time waiting on the socket. Here:

* a round's rows are read up front, several kinds in one pipelined sync (``prefetch``), and each
  later read of a row this unit already knows costs nothing (its writes update what it knows);
* writes wait in ``Pending`` (one entry per row: a row written twice is written once) and go out
  as one multi-row statement per kind, all kinds in one pipelined sync, when the unit ends, before
  a savepoint, or before any statement that may read what they change (``PostgresUnit.c`` flushes
  before handing out the connection).

Compare-and-set stays exact. A state this unit read is locked until it commits (see
``PostgresUnit``), so the name and version it knows are the stored ones and a mismatch is raised at
the write, as before. A write to a row the unit did not read carries the expected name, version or
revision into its statement; a row that did not match is missing from what the statement returns,
and ``flush`` raises the same error the write would have raised. The engine's batch then redoes its
round with a savepoint per token, exactly as for an error raised at the write.
"""

from __future__ import annotations

from binascii import b2a_base64
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg

from rattan.errors import ConflictError, StateVersionNotMatchError
from rattan.runtime.postgres.rows import ContextRows, DataRow, ProcRow, SchedRow, StateRow


@dataclass(slots=True)
class UnitRows:
    """Rows as this unit last read or wrote them; valid until the unit ends or a savepoint rolls
    back (then cleared: it may hold what never happened)."""

    states: dict[str, StateRow | None] = field(default_factory=dict)
    procs: dict[int, ProcRow] = field(default_factory=dict)
    schedules: dict[int, SchedRow] = field(default_factory=dict)
    context: dict[str, ContextRows] = field(default_factory=dict)  # complete: every row of the pipeline
    data: dict[str, DataRow] = field(default_factory=dict)

    def clear(self) -> None:
        self.states.clear()
        self.procs.clear()
        self.schedules.clear()
        self.context.clear()
        self.data.clear()


@dataclass(slots=True)
class Pending:
    """Writes not yet sent, one entry per row (the last write of a row wins; a compare-and-set keeps
    the expectation of the first, which is what the stored row must match)."""

    state_inserts: dict[str, StateRow] = field(default_factory=dict)
    state_updates: dict[str, tuple[StateRow, str, str]] = field(default_factory=dict)  # row, name, version
    proc_inserts: dict[int, ProcRow] = field(default_factory=dict)
    proc_updates: dict[int, tuple[ProcRow, int]] = field(default_factory=dict)  # row, expected rev
    sched_inserts: dict[int, SchedRow] = field(default_factory=dict)
    sched_updates: dict[int, SchedRow] = field(default_factory=dict)
    data: dict[str, tuple[bytes | None, bytes]] = field(default_factory=dict)  # inputs (None: keep), outputs
    context: dict[tuple[str, str], tuple[int, bytes, str | None]] = field(default_factory=dict)
    context_pipelines: set[str] = field(default_factory=set)
    logs: list[tuple[str, str, str]] = field(default_factory=list)  # node, version, line
    # part, root, node, type, blob, schema, created
    events: list[tuple[Any, ...]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.state_inserts or self.state_updates or self.proc_inserts or self.proc_updates
            or self.sched_inserts or self.sched_updates or self.data or self.context or self.logs
            or self.events
        )  # fmt: skip

    def taken(self) -> Pending:
        """What is held back now, as a Pending of its own; this one is left empty (callers keep
        using the same object)."""
        out = Pending(
            self.state_inserts, self.state_updates, self.proc_inserts, self.proc_updates, self.sched_inserts,
            self.sched_updates, self.data, self.context, self.context_pipelines, self.logs, self.events,
        )  # fmt: skip
        self.state_inserts, self.state_updates, self.proc_inserts, self.proc_updates = {}, {}, {}, {}
        self.sched_inserts, self.sched_updates, self.data, self.context = {}, {}, {}, {}
        self.context_pipelines, self.logs, self.events = set(), [], []
        return out

    def put_state(self, row: StateRow, expect: tuple[str, str] | None) -> None:
        node = row[0]
        if node in self.state_inserts:
            self.state_inserts[node] = row
        elif node in self.state_updates:
            self.state_updates[node] = (row, *self.state_updates[node][1:])
        elif expect is None:
            self.state_inserts[node] = row
        else:
            self.state_updates[node] = (row, *expect)

    def put_proc(self, row: ProcRow, expect_rev: int | None) -> None:
        pid = row[0]
        if pid in self.proc_inserts or expect_rev is None:
            self.proc_inserts[pid] = row
        elif pid in self.proc_updates:
            self.proc_updates[pid] = (row, self.proc_updates[pid][1])
        else:
            self.proc_updates[pid] = (row, expect_rev)

    def put_schedule(self, row: SchedRow, new: bool) -> None:
        if new or row[0] in self.sched_inserts:
            self.sched_inserts[row[0]] = row
        else:
            self.sched_updates[row[0]] = row

    def put_data(self, node_id: str, inputs: bytes | None, outputs: bytes) -> None:
        before = self.data.get(node_id)
        if inputs is None and before is not None:
            inputs = before[0]  # outputs only: the inputs written earlier in this unit stay
        self.data[node_id] = (inputs, outputs)


# Rows go to the server as ONE parameter: a JSON array of arrays (orjson builds it in C; the server
# takes it apart with jsonb_array_elements). Handing psycopg one list per column instead cost more
# client time than the rest of a round: its array dumper looks at every element in Python.
# Column kinds: t text, i integer, b bigint, f double precision, o boolean, y bytea (as base64).
_CAST = {
    "t": "e->>{i}", "i": "(e->>{i})::int", "b": "(e->>{i})::bigint", "f": "(e->>{i})::float8",
    "o": "(e->>{i})::bool", "y": "decode(e->>{i}, 'base64')",
}  # fmt: skip


def _rows(kinds: str, names: str) -> str:
    """A FROM item naming the rows of one JSON parameter ``u(names)``."""
    cols = ", ".join(_CAST[k].format(i=i) for i, k in enumerate(kinds))
    return f"(SELECT {cols} FROM jsonb_array_elements(%s::jsonb) AS e) AS u({names})"


def _param(rows: Any, kinds: str) -> str:
    """The JSON parameter of ``rows`` (tuples in ``kinds`` order)."""
    ys = [i for i, k in enumerate(kinds) if k == "y"]
    if ys:
        out = []
        for row in rows:
            row = list(row)
            for i in ys:
                if row[i] is not None:
                    row[i] = b2a_base64(row[i], newline=False).decode("ascii")
            out.append(row)
        rows = out
    return orjson.dumps(rows if isinstance(rows, list) else list(rows)).decode()


_STATE = "tttttiiioofff"
_STATE_NAMES = "id, r, p, n, v, l, il, rt, sk, ei, cr, st, ar"
INSERT_STATES = (
    "INSERT INTO states(node_id, root_id, parent_id, name, version, loop, inner_loop, retry, skip, "
    f"error_ignored, created, started, archived) SELECT u.* FROM {_rows(_STATE, _STATE_NAMES)} "
    "ON CONFLICT (node_id) DO NOTHING RETURNING node_id"
)
UPDATE_STATES = (
    "UPDATE states s SET root_id=u.r, parent_id=u.p, name=u.n, version=u.v, loop=u.l, inner_loop=u.il, "
    "retry=u.rt, skip=u.sk, error_ignored=u.ei, started=u.st, archived=u.ar "
    f"FROM {_rows(_STATE + 'tt', _STATE_NAMES + ', en, ev')} "
    "WHERE s.node_id = u.id AND s.name = u.en AND s.version = u.ev RETURNING s.node_id"
)
_PROC = "btbttytitti"
_PROC_NAMES = "id, r, p, c, d, s, st, pe, ex, o, rv"
INSERT_PROCS = (
    "INSERT INTO processes(id, root_id, parent_id, current, destination, stack, status, pending, executing, "
    f"owner, rev) SELECT u.* FROM {_rows(_PROC, _PROC_NAMES)}"
)
UPDATE_PROCS = (
    "UPDATE processes t SET current=u.c, destination=u.d, stack=u.s, status=u.st, pending=u.pe, "
    f"executing=u.ex, owner=u.o, rev=u.rv FROM {_rows(_PROC + 'i', _PROC_NAMES + ', er')} "
    "WHERE t.id = u.id AND t.rev = u.er RETURNING t.id"
)
_SCHED = "bttibiooft"
_SCHED_NAMES = "id, n, v, ty, p, tm, f, e, du, o"
INSERT_SCHEDS = (
    "INSERT INTO schedules(id, node_id, version, type, process_id, times, finished, expired, due, owner) "
    f"SELECT u.* FROM {_rows(_SCHED, _SCHED_NAMES)}"
)
UPDATE_SCHEDS = (
    "UPDATE schedules t SET times=u.tm, finished=u.f, expired=u.e, due=u.du, owner=u.o "
    f"FROM {_rows(_SCHED, _SCHED_NAMES)} WHERE t.id = u.id"
)
PUT_DATA = (
    f"INSERT INTO exec_data(node_id, inputs, outputs) SELECT u.* FROM {_rows('tyy', 'n, i, o')} "
    "ON CONFLICT (node_id) DO UPDATE SET inputs=excluded.inputs, outputs=excluded.outputs"
)
PUT_OUTPUTS = (
    "INSERT INTO exec_data(node_id, inputs, outputs) SELECT u.n, '\\x7b7d'::bytea, u.o "
    f"FROM {_rows('ty', 'n, o')} "
    "ON CONFLICT (node_id) DO UPDATE SET outputs=excluded.outputs"
)
PUT_CONTEXT = (
    "INSERT INTO context(pipeline_id, key, type, value, code) "
    f"SELECT u.* FROM {_rows('ttiyt', 'p, k, t, v, c')} ON CONFLICT (pipeline_id, key) "
    "DO UPDATE SET type=excluded.type, value=excluded.value, code=excluded.code"
)
PUT_LOGS = (  # in the order given: ids (and so the order lines are read back) follow the array
    "INSERT INTO logs(node_id, version, line) SELECT e->>0, e->>1, e->>2 "
    "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(e, i) ORDER BY i"
)
PUT_EVENTS = (
    "WITH x AS MATERIALIZED (SELECT pg_current_xact_id()::text::bigint AS xact) "
    "INSERT INTO events(xact, part, root_id, node_id, event_type, data, schema, created) "
    f"SELECT x.xact, u.* FROM x, {_rows('itttyif', 'pa, r, n, ty, d, sc, cr')}"
)


def needs_checks(p: Pending, fresh: set[str]) -> bool:
    """True when ``p`` holds a write whose success must be looked at before COMMIT: a
    compare-and-set, or a state insert into a run this unit did not create (``fresh``: a new run's
    nodes have no state anywhere, as its node index, written first, proves)."""
    if p.state_updates or p.proc_updates:
        return True
    return any(row[1] not in fresh for row in p.state_inserts.values())


def flush(
    conn: psycopg.Connection[Any], p: Pending, together: Callable[[], AbstractContextManager[Any]]
) -> None:
    """Send ``p``'s writes: one statement per kind, all in one pipelined sync (``together``);
    raise the error of the first compare-and-set that did not match."""
    checks: list[tuple[psycopg.Cursor[Any], list[Any], str]] = []
    with together():
        if p.state_inserts:
            rows = list(p.state_inserts.values())
            cur = conn.execute(INSERT_STATES, (_param(rows, _STATE),))
            checks.append((cur, [r[0] for r in rows], "state"))
        if p.state_updates:
            ups = list(p.state_updates.values())
            cur = conn.execute(UPDATE_STATES, (_param([(*r, n, v) for r, n, v in ups], _STATE + "tt"),))
            checks.append((cur, [u[0][0] for u in ups], "state_cas"))
        if p.proc_inserts:
            conn.execute(INSERT_PROCS, (_param(p.proc_inserts.values(), _PROC),))
        if p.proc_updates:
            pups = list(p.proc_updates.values())
            cur = conn.execute(UPDATE_PROCS, (_param([(*r, e) for r, e in pups], _PROC + "i"),))
            checks.append((cur, [u[0][0] for u in pups], "token"))
        if p.sched_inserts:
            conn.execute(INSERT_SCHEDS, (_param(p.sched_inserts.values(), _SCHED),))
        if p.sched_updates:
            conn.execute(UPDATE_SCHEDS, (_param(p.sched_updates.values(), _SCHED),))
        if p.data:
            full = [(n, i, o) for n, (i, o) in p.data.items() if i is not None]
            outs = [(n, o) for n, (i, o) in p.data.items() if i is None]
            if full:
                conn.execute(PUT_DATA, (_param(full, "tyy"),))
            if outs:
                conn.execute(PUT_OUTPUTS, (_param(outs, "ty"),))
        if p.context:
            conn.execute(PUT_CONTEXT, (_param([(pl, k, *v) for (pl, k), v in p.context.items()], "ttiyt"),))
        if p.logs:
            conn.execute(PUT_LOGS, (_param(p.logs, "ttt"),))
        if p.events:
            conn.execute(PUT_EVENTS, (_param(p.events, "itttyif"),))
    for cur, wanted, kind in checks:
        got = {r[0] for r in cur.fetchall()}
        missing = [w for w in wanted if w not in got]
        if not missing:
            continue
        if kind == "state":
            raise StateVersionNotMatchError(f"node {missing[0]}: a state exists already")
        if kind == "state_cas":
            _, name, version = p.state_updates[missing[0]]
            raise StateVersionNotMatchError(
                f"node {missing[0]}: state changed concurrently (expected {name}/{version})"
            )
        raise ConflictError(
            f"token {missing[0]}: changed concurrently (expected revision {p.proc_updates[missing[0]][1]})"
        )
