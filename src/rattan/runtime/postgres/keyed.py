"""The rows a step reads and writes by key (states, tokens, node data, contexts, schedules), for
``PostgresUnit``: through what the unit knows and has not yet sent (``behind.py``) inside a unit of
work, straight to the server for committed reads (``Store.read``).

Locking (see ``PostgresUnit``): a unit locks every state it reads, and the root state of a run
before any row of it. A state this unit knows was read under that lock or written by it, so its
compare-and-set is checked here, at the write; a state it does not know carries its expectation
into the flushed statement.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from rattan.errors import ConflictError, StateVersionNotMatchError
from rattan.model.records import StateRecord, TokenRecord
from rattan.model.states import TokenStatus
from rattan.runtime.postgres.behind import Pending, UnitRows, flush, needs_checks
from rattan.runtime.postgres.errors import translate
from rattan.runtime.postgres.keyed_data import DATA_READ, KeyedData
from rattan.runtime.postgres.rows import (
    HOLD_RUNS,
    HOLD_RUNS_OF,
    PROC_COLS,
    READ_RUN_STATES,
    READ_STATES,
    SCHED_COLS,
    STATE_COLS,
    loads,
    proc_record,
    proc_row,
    state_record,
    state_row,
)

_DONE = TokenStatus.DONE
ID_BLOCK = 64  # ids a store takes from a table's sequence at once (one statement per block)
_CONTEXTS = "SELECT pipeline_id, key, type, value, code FROM context WHERE pipeline_id = ANY(%s)"


# the statements reading states: taking the locks of their runs (when needed), then reading them
_StateCursors = tuple["psycopg.Cursor[Any] | None", "psycopg.Cursor[Any]"]


class IdBlocks:
    """Ids of new tokens and schedules, taken from their tables' sequences a block at a time, so
    that inserting a row needs no statement of its own (its id is known before it is written).
    Ids of one process grow in the order rows are made; a rolled-back unit leaves gaps, as a
    sequence always may."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: dict[str, deque[int]] = {"processes": deque(), "schedules": deque()}

    def take(self, conn: psycopg.Connection[Any], table: str) -> int:
        free = self._free[table]
        with self._lock:
            if free:
                return free.popleft()
        rows = conn.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", (table, ID_BLOCK)
        ).fetchall()
        ids = sorted(int(r[0]) for r in rows)
        with self._lock:
            free.extend(ids[1:])
        return ids[0]


class KeyedRows(KeyedData):
    """Mixed into PostgresUnit, which sets these attributes."""

    conn: psycopg.Connection[Any]
    url: str
    locking: bool
    roots: set[str]
    root_of: dict[str, str]
    pending: Pending | None  # None: a committed read (nothing is held back)
    pipe: psycopg.Pipeline | None  # a unit of work's pipeline (None: a committed read)
    fresh: set[str]  # runs this unit created
    depth: int  # savepoints open
    rows: UnitRows | None
    ids: IdBlocks | None
    load_value: Callable[[bytes], Any]
    put_value: Callable[..., bytes]
    _hold_run: Callable[[str], None]
    hold_node_run: Callable[[str], None]

    @property
    def c(self) -> psycopg.Connection[Any]:
        """The connection, once every held-back write is sent: a statement that does not go
        through this module may read what they change."""
        if self.pending:
            self.flush()
        return self.conn

    def flush(self, last: bool = False) -> None:
        """Send what is held back. ``last``: nothing follows but COMMIT; when no write needs its
        result looked at, the writes are only queued and travel with the COMMIT (a failure then
        fails the COMMIT, and the unit, as it would have failed the flush)."""
        p = self.pending
        if not p:
            return
        if last and self.pipe is not None and not needs_checks(p, self.fresh):
            flush(self.conn, p.taken(), contextlib.nullcontext)
            return
        flush(self.conn, p.taken(), self._together)

    @contextmanager
    def _together(self) -> Iterator[None]:
        """The statements sent in the body travel to the server together, in one round trip;
        their results are there after it."""
        if self.pipe is None:
            with self.conn.pipeline():
                yield
        else:  # the unit's own pipeline: one sync, no nested pipeline (which may sync on entry)
            yield
            self.pipe.sync()

    # -- reading a round's rows at once --------------------------------------------------------
    def prefetch(
        self, *, roots: Collection[str] = (), states: Collection[str] = (), contexts: Collection[str] = (),
        schedules: Collection[int] = (), data: Collection[str] = (),
    ) -> None:  # fmt: skip
        """Read what a round will need (a hint: rows this unit knows are not read again), several
        kinds in one round trip, after taking the locks of ``roots`` (the runs they belong to)."""
        rows = self.rows
        if rows is None:
            return
        take = sorted(r for r in set(roots) if r not in self.roots)
        want_states = [n for n in dict.fromkeys(states) if n not in rows.states]
        want_ctx = [p for p in dict.fromkeys(contexts) if p not in rows.context and not self._ctx_pending(p)]
        want_sched = [s for s in dict.fromkeys(schedules) if s not in rows.schedules]
        want_data = [n for n in dict.fromkeys(data) if n not in rows.data and not self._data_pending(n)]
        if not (take or want_states or want_ctx or want_sched or want_data):
            return
        c = self.conn
        with self._together():
            if take:  # first: every read below sees what the runs' last holders committed
                c.execute(HOLD_RUNS, (take,))
                self.roots.update(take)
            # the states are of the runs in ``roots`` (the caller's word): held now, whether or not
            # the nodes have a state yet
            cur_s = self._state_cursor(want_states, held=bool(roots)) if want_states else None
            cur_c = c.execute(_CONTEXTS, (want_ctx,)) if want_ctx else None
            cur_q = (
                c.execute(f"SELECT {SCHED_COLS} FROM schedules WHERE id = ANY(%s)", (want_sched,))
                if want_sched else None
            )  # fmt: skip
            cur_d = c.execute(DATA_READ, (want_data,)) if want_data else None
        if cur_s is not None:
            self._note_read(want_states, cur_s)
        if cur_c is not None:
            found: dict[str, dict[str, tuple[int, bytes, str | None]]] = {p: {} for p in want_ctx}
            for pid, key, typ, value, code in cur_c.fetchall():
                found[pid][key] = (typ, value, code)
            rows.context.update(found)
        if cur_q is not None:
            for r in cur_q.fetchall():
                rows.schedules[r[0]] = tuple(r)
        if cur_d is not None:
            for nid, inputs, outputs, override in cur_d.fetchall():
                rows.data[nid] = (inputs, outputs, None if override is None else loads(override))

    # -- states --------------------------------------------------------------------------------
    def states(self, node_ids: Sequence[str] = (), *, root_id: str | None = None) -> list[StateRecord]:
        rows = self.rows
        if root_id is not None:
            return self._run_states(root_id)
        if not node_ids:
            return []
        if rows is None:  # committed reads
            sql = f"SELECT {STATE_COLS} FROM states WHERE node_id = ANY(%s)"
            found = {r[0]: r for r in self.conn.execute(sql, (list(node_ids),))}
            return [state_record(found[n]) for n in dict.fromkeys(node_ids) if n in found]
        known = rows.states
        missing = [n for n in node_ids if n not in known]
        if missing:
            missing = list(dict.fromkeys(missing))
            with self._together():
                cur = self._state_cursor(missing)
            self._note_read(missing, cur)
        out = []
        for n in dict.fromkeys(node_ids):  # in the order asked for, each once
            row = known[n]
            if row is not None:
                out.append(state_record(row))
        return out

    def _run_states(self, root_id: str) -> list[StateRecord]:
        if self.rows is None:
            found = self.conn.execute(READ_RUN_STATES + " ORDER BY created", (root_id,)).fetchall()
            return [state_record(r) for r in found]
        self._hold_run(root_id)
        found = self.c.execute(READ_RUN_STATES, (root_id,)).fetchall()
        for r in found:
            self.rows.states[r[0]] = tuple(r)
            if r[1]:  # an appointed pause stored before its node is reached names no root
                self.root_of[r[0]] = r[1]
        out = [state_record(r) for r in found]
        out.sort(key=lambda st: st.created)  # in creation order
        return out

    def _state_cursor(self, ids: list[str], held: bool = False) -> _StateCursors:
        """Statements (in a pipeline) reading the states of ``ids``, after taking the locks of
        their runs not held yet (``held``: the caller holds them all)."""
        roots, root_of = self.roots, self.root_of
        hold = None
        if not held and not all(root_of.get(n) in roots for n in ids):
            hold = self.conn.execute(HOLD_RUNS_OF, {"ids": ids})
        return hold, self.conn.execute(READ_STATES, (ids,))

    def _note_read(
        self, asked: list[str], cursors: tuple[psycopg.Cursor[Any] | None, psycopg.Cursor[Any]]
    ) -> None:
        rows = self.rows
        assert rows is not None
        hold, read = cursors
        if hold is not None:
            self.roots.update(r[0] for r in hold.fetchall())
        for r in read.fetchall():
            rows.states[r[0]] = tuple(r)
            if r[1]:  # an appointed pause stored before its node is reached names no root
                self.root_of[r[0]] = r[1]
        for n in asked:
            rows.states.setdefault(n, None)  # no state: the node was never entered

    def put_state(self, new: StateRecord, expect: StateRecord | None) -> None:
        s = new
        if s.root_id:
            self._hold_run(s.root_id)
        else:  # a state stored before its node is reached (an appointed pause) names no root
            self.hold_node_run(s.node_id)
        rows, pending = self.rows, self.pending
        assert rows is not None and pending is not None, "a write outside a unit of work"
        seen = s.node_id in rows.states  # read (locked) or written by this unit
        known = rows.states.get(s.node_id)
        if expect is None:
            if known is not None:
                raise StateVersionNotMatchError(f"node {s.node_id}: a state exists already")
            pending.put_state(state_row(s), None)
        else:
            if seen and (known is None or (known[3], known[4]) != (expect.name, expect.version)):
                raise StateVersionNotMatchError(
                    f"node {s.node_id}: state changed concurrently (expected {expect.name}/{expect.version})"
                )
            pending.put_state(state_row(s), (expect.name, expect.version))
        rows.states[s.node_id] = state_row(s)
        if s.root_id:
            self.root_of[s.node_id] = s.root_id

    # -- tokens --------------------------------------------------------------------------------
    def tokens(
        self, token_ids: Sequence[int] = (), *, root_id: str | None = None,
        statuses: Collection[str] | None = None,
    ) -> list[TokenRecord]:  # fmt: skip
        if root_id is not None:
            if statuses is None:
                sql, args = f"SELECT {PROC_COLS} FROM processes WHERE root_id=%s ORDER BY id", (root_id,)
            else:
                sql = f"SELECT {PROC_COLS} FROM processes WHERE root_id=%s AND status = ANY(%s) ORDER BY id"
                args = (root_id, list(statuses))  # type: ignore[assignment]
            found = self.c.execute(sql, args).fetchall()
            if self.rows is not None:
                for r in found:
                    self.rows.procs[r[0]] = tuple(r)
            return [proc_record(r) for r in found]
        if not token_ids:
            return []
        known = self.rows.procs if self.rows is not None else {}
        missing = [i for i in token_ids if i not in known]
        if missing:
            fetched = self.conn.execute(
                f"SELECT {PROC_COLS} FROM processes WHERE id = ANY(%s)", (list(dict.fromkeys(missing)),)
            ).fetchall()
            if self.rows is None:  # committed reads
                got = {r[0]: r for r in fetched}
                return [proc_record(got[i]) for i in token_ids if i in got]
            for r in fetched:
                known[r[0]] = tuple(r)
        return [proc_record(known[i]) for i in token_ids if i in known]

    def put_token(self, token: TokenRecord) -> int:
        p = token
        rows, pending = self.rows, self.pending
        assert rows is not None and pending is not None and self.ids is not None, "a write outside a unit"
        if p.id == 0:
            self._hold_run(p.root_id)
            p.id = self.ids.take(self.conn, "processes")
            p.rev = 0
            pending.put_proc(proc_row(p), None)
        else:
            if p.status == _DONE and p.owner is None:
                p.owner = ""  # finished: no work for anyone to claim
            self._hold_run(p.root_id)
            known = rows.procs.get(p.id)
            if known is not None and known[10] != p.rev:
                raise ConflictError(f"token {p.id}: changed concurrently (expected revision {p.rev})")
            expect = p.rev
            p.rev += 1
            pending.put_proc(proc_row(p), expect)
        p.stored_status = p.status
        rows.procs[p.id] = proc_row(p)
        return p.id

    # -- nested transactions -------------------------------------------------------------------
    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction, by hand (the unit's transaction is; see ``store.unit``):
        SAVEPOINT and RELEASE travel with the statements around them."""
        self.flush()
        self.depth += 1
        name = f"rattan_{self.depth}"
        # locks taken inside a savepoint that rolls back are released with it
        roots, root_of = set(self.roots), dict(self.root_of)
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield
            self.flush()
            self.conn.execute(f"RELEASE SAVEPOINT {name}")
            if self.pipe is not None:  # a statement of the body whose result nobody read fails here
                self.pipe.sync()
        except BaseException as exc:
            if self.pending is not None:
                self.pending.taken()  # dropped: the savepoint undid them
            if self.rows is not None:
                self.rows.clear()
            self.roots.clear()
            self.roots.update(roots)
            self.root_of.clear()
            self.root_of.update(root_of)
            try:
                if self.pipe is not None:  # an error leaves the pipeline aborted until a sync
                    with contextlib.suppress(psycopg.Error):
                        self.pipe.sync()
                self.conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                if self.pipe is not None:
                    self.pipe.sync()
            except psycopg.Error as undo:  # the connection itself failed: the unit fails with it
                raise translate(undo, self.url) from exc
            if isinstance(exc, psycopg.Error):
                raise translate(exc, self.url) from exc
            raise
        finally:
            self.depth -= 1
