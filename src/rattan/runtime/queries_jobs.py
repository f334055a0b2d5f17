"""Queries on schedules, callbacks, timers, the event log and histories: the ``Tx`` half that
serves user steps and operators (``JobQueries``, mixed into ``rattan.runtime.queries.Tx``)."""

from __future__ import annotations

import time
from typing import Any

from rattan.engine.records import CallbackRecord, ExecutionData, HistoryRecord, ScheduleRecord, StateRecord
from rattan.runtime.rows import (
    SCHED_AND_STATE,
    SCHED_COLS,
    SCHED_COUNT,
    WriterCache,
    dumps,
    loads,
    sched_record,
    state_record,
)
from rattan.signals import EVENT_SCHEMA_VERSION


class JobQueries:
    """Needs ``c`` (the connection) and ``cache`` (the writer's WriterCache, or None), set by Tx."""

    __slots__ = ()
    c: Any
    cache: WriterCache | None

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
            return sched_record(cached)
        row = self.c.execute(f"SELECT {SCHED_COLS} FROM schedules WHERE id=?", (sid,)).fetchone()
        return None if row is None else sched_record(row)

    def schedule_and_state(self, sid: int) -> tuple[ScheduleRecord | None, StateRecord | None]:
        """A schedule and its node's state, in one statement unless both are cached (recording a
        poll or callback)."""
        cache = self.cache
        if cache is not None and (cached := cache.schedules.get(sid)) is not None:
            node_id = cached[1]
            if node_id in cache.states:
                state = cache.states[node_id]
                return sched_record(cached), (None if state is None else state_record(state))
        row = self.c.execute(SCHED_AND_STATE, (sid,)).fetchone()
        if row is None:
            return None, None
        n = SCHED_COUNT
        return sched_record(row[:n]), (None if row[n] is None else state_record(row[n:]))

    def get_schedule_by(self, node_id: str, version: str) -> ScheduleRecord | None:
        row = self.c.execute(
            f"SELECT {SCHED_COLS} FROM schedules WHERE node_id=? AND version=?", (node_id, version)
        ).fetchone()
        return None if row is None else sched_record(row)

    def save_schedule(self, s: ScheduleRecord) -> None:
        self.c.execute(
            "UPDATE schedules SET times=?, finished=?, expired=?, due=? WHERE id=?",
            (s.times, int(s.finished), int(s.expired), s.due, s.id),
        )
        self._keep_schedule(s)

    def due_schedules(self) -> list[ScheduleRecord]:
        rows = self.c.execute(
            f"SELECT {SCHED_COLS} FROM schedules WHERE due IS NOT NULL AND finished=0 AND expired=0"
        )
        return [sched_record(r) for r in rows]

    def live_schedules_of(self, node_id: str) -> list[ScheduleRecord]:
        rows = self.c.execute(
            f"SELECT {SCHED_COLS} FROM schedules WHERE node_id=? AND finished=0 AND expired=0", (node_id,)
        )
        return [sched_record(r) for r in rows]

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
