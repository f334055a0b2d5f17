"""Schedules, callbacks and timers (every wait is a row), histories, logs and the event log: the
half of ``SQLiteUnit`` that serves user steps, timers and operators."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, overload

from rattan.errors import BadInputError, ConflictError
from rattan.model.records import (
    EVENT_SCHEMA_VERSION,
    CallbackRecord,
    EventRecord,
    HistoryRecord,
    ScheduleRecord,
    ScheduleType,
    TimerRecord,
)
from rattan.runtime.interface import CallbackQuery, ScheduleQuery, Wait
from rattan.runtime.sqlite.rows import SCHED_COLS, WriterCache, dumps, loads, sched_record, sched_row

# a run's events are stored a row per unit of work; an event's id is row id * EVENTS_PER_ROW + its
# index. SQLite has one writer at a time (across processes too), so row ids grow in commit order
# and the ids work as a cursor.
EVENTS_PER_ROW = 1000
CALLBACK_COLS = "id, node_id, version, data, idem_key, applied, created"


class WaitQueries:
    """Needs ``c`` (the connection) and ``cache`` (the writer's WriterCache, or None), set by
    SQLiteUnit."""

    __slots__ = ()
    c: sqlite3.Connection
    cache: WriterCache | None

    # ValueTable's methods, beside this class in SQLiteUnit (annotations only: no attribute here)
    load_value: Callable[[bytes], Any]
    put_value: Callable[..., bytes]

    def _callback(self, row: Any) -> CallbackRecord:
        return CallbackRecord(row[0], row[1], row[2], self.load_value(row[3]), row[4], row[5], row[6])

    # -- reads ---------------------------------------------------------------------------------
    @overload
    def waits(self, query: ScheduleQuery) -> list[ScheduleRecord]: ...

    @overload
    def waits(self, query: CallbackQuery) -> list[CallbackRecord]: ...

    def waits(self, query: ScheduleQuery | CallbackQuery) -> list[ScheduleRecord] | list[CallbackRecord]:
        if isinstance(query, ScheduleQuery):
            return self._schedules(query)
        return self._callbacks(query)

    def _schedules(self, q: ScheduleQuery) -> list[ScheduleRecord]:
        cache = self.cache
        if q.id is not None:
            if cache is not None and (cached := cache.schedules.get(q.id)) is not None:
                return [sched_record(cached)]
            row = self.c.execute(f"SELECT {SCHED_COLS} FROM schedules WHERE id=?", (q.id,)).fetchone()
            return [] if row is None else [sched_record(row)]
        where, args = ["node_id=?"], [q.node_id]
        if q.node_id is None:
            raise BadInputError("a schedule query names an id or a node_id")
        if q.version is not None:
            where.append("version=?")
            args.append(q.version)
        if q.pending:
            where.append("finished=0 AND expired=0")
        sql = f"SELECT {SCHED_COLS} FROM schedules WHERE {' AND '.join(where)} ORDER BY id"
        return [sched_record(r) for r in self.c.execute(sql, args)]

    def _callbacks(self, q: CallbackQuery) -> list[CallbackRecord]:
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("id", q.id), ("node_id", q.node_id), ("version", q.version),
                              ("idem_key", q.idem_key)):  # fmt: skip
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        if q.pending:
            where.append("applied=0")
        if q.unscheduled:  # no schedule that takes callbacks (a poll takes none)
            where.append(
                "NOT EXISTS (SELECT 1 FROM schedules s WHERE s.node_id=callbacks.node_id"
                f" AND s.version=callbacks.version AND s.type != {int(ScheduleType.POLL)})"
            )
        if not where:
            raise BadInputError("a callback query names an id, a node, a key or pending")
        sql = f"SELECT {CALLBACK_COLS} FROM callbacks WHERE {' AND '.join(where)} ORDER BY id"
        return [self._callback(r) for r in self.c.execute(sql, args)]

    # -- writes --------------------------------------------------------------------------------
    def put_wait(self, wait: Wait) -> int:
        if type(wait) is ScheduleRecord or isinstance(wait, ScheduleRecord):
            return self._put_schedule(wait)
        if isinstance(wait, CallbackRecord):
            return self._put_callback(wait)
        if isinstance(wait, TimerRecord):
            return self._put_timer(wait)
        raise BadInputError(f"put_wait takes a schedule, callback or timer record, not {type(wait).__name__}")

    def _put_schedule(self, s: ScheduleRecord) -> int:
        if s.id == 0:
            cur = self.c.execute(
                "INSERT INTO schedules(node_id, version, type, process_id, times, finished, expired, due, "
                "owner) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (s.node_id, s.version, int(s.type), s.process_id, s.times, int(s.finished), int(s.expired),
                 s.due, s.owner),
            )  # fmt: skip
            s.id = int(cur.lastrowid or 0)
        else:
            if (s.finished or s.expired) and s.owner is None:
                s.owner = ""  # over: no work for anyone to claim
            cached = self.cache.schedules.get(s.id) if self.cache is not None else None
            if cached is not None and cached[9] == s.owner:
                # the owner as it was: not naming it leaves the index of unowned rows alone
                self.c.execute(
                    "UPDATE schedules SET times=?, finished=?, expired=?, due=? WHERE id=?",
                    (s.times, int(s.finished), int(s.expired), s.due, s.id),
                )
            else:
                self.c.execute(
                    "UPDATE schedules SET times=?, finished=?, expired=?, due=?, owner=? WHERE id=?",
                    (s.times, int(s.finished), int(s.expired), s.due, s.owner, s.id),
                )
        if self.cache is not None:
            if s.finished or s.expired:  # a finished or expired one is not read again
                self.cache.schedules.pop(s.id, None)
            else:
                self.cache.schedules[s.id] = sched_row(s)
        return s.id

    def _put_callback(self, cb: CallbackRecord) -> int:
        if cb.id:
            self.c.execute("UPDATE callbacks SET applied=? WHERE id=?", (cb.applied, cb.id))
            return cb.id
        data = self.put_value(dumps(cb.data), True, node_id=cb.node_id)
        try:
            cur = self.c.execute(
                "INSERT INTO callbacks(node_id, version, data, idem_key, applied, created) "
                "VALUES (?,?,?,?,?,?)",
                (cb.node_id, cb.version, data, cb.idem_key, cb.applied, cb.created),
            )
        except sqlite3.IntegrityError:
            raise ConflictError(
                f"node {cb.node_id}: idempotency key {cb.idem_key!r} is used by another callback"
            ) from None
        cb.id = int(cur.lastrowid or 0)
        return cb.id

    def _put_timer(self, t: TimerRecord) -> int:
        if t.id:
            raise BadInputError(f"timer {t.id} is stored already: a timer is armed once and then taken")
        cur = self.c.execute(
            "INSERT INTO timers(kind, node_id, version, due, payload, owner) VALUES (?,?,?,?,?,?)",
            (t.kind, t.node_id, t.version, t.due, dumps(t.payload), t.owner),
        )
        t.id = int(cur.lastrowid or 0)
        return t.id

    def take_timer(self, timer_id: int) -> TimerRecord | None:
        row = self.c.execute(
            "DELETE FROM timers WHERE id=? RETURNING id, kind, node_id, version, due, payload, owner",
            (timer_id,),
        ).fetchone()
        return (
            None
            if row is None
            else TimerRecord(row[0], row[1], row[2], row[3], row[4], loads(row[5]), row[6])
        )

    # -- histories and logs --------------------------------------------------------------------
    def histories(self, node_id: str, loop: int = -1) -> list[HistoryRecord]:
        sql = (
            "SELECT id, node_id, loop, retry, skip, version, started, archived, inputs, outputs "
            "FROM histories WHERE node_id=? "
        )
        if loop == -1:
            rows = self.c.execute(sql + "ORDER BY id", (node_id,))
        else:
            rows = self.c.execute(sql + "AND loop=? ORDER BY id", (node_id, loop))
        load = self.load_value
        return [
            HistoryRecord(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], load(r[8]), load(r[9]))
            for r in rows
        ]

    def logs(self, node_id: str, version: str | None) -> list[str]:
        if version is None:
            rows = self.c.execute("SELECT line FROM logs WHERE node_id=? ORDER BY id", (node_id,))
        else:
            rows = self.c.execute(
                "SELECT line FROM logs WHERE node_id=? AND version=? ORDER BY id", (node_id, version)
            )
        return [r[0] for r in rows]

    # -- event log -----------------------------------------------------------------------------
    def append_events(self, root_id: str, entries: Sequence[list[Any]], created: float) -> None:
        rows = []
        for i in range(0, len(entries), EVENTS_PER_ROW):
            chunk = entries[i : i + EVENTS_PER_ROW]
            try:
                blob = dumps(chunk)
            except (TypeError, ValueError):  # data a receiver may see whole, logged as text
                blob = dumps([[e[0], e[1], {k: repr(v) for k, v in e[2].items()}] if len(e) > 2 else e
                              for e in chunk])  # fmt: skip
            rows.append((root_id, chunk[0][1], chunk[0][0], blob, EVENT_SCHEMA_VERSION, created))
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
                "VALUES (?, '', NULL, '', x'5b5d', ?, 0)",
                (top, EVENT_SCHEMA_VERSION),
            )

    def events(self, after: int, root_id: str | None, limit: int) -> list[EventRecord]:
        out: list[EventRecord] = []
        row_after = after // EVENTS_PER_ROW
        sql = "SELECT id, root_id, data, schema, created FROM events WHERE id >= ? "
        while len(out) < limit:
            if root_id is None:
                rows = self.c.execute(sql + "ORDER BY id LIMIT 200", (row_after,)).fetchall()
            else:
                rows = self.c.execute(
                    sql + "AND root_id=? ORDER BY id LIMIT 200", (row_after, root_id)
                ).fetchall()
            if not rows:
                break
            for row_id, root, blob, schema, created in rows:
                for index, entry in enumerate(loads(blob)):
                    event_id = row_id * EVENTS_PER_ROW + index
                    if event_id > after:
                        event_type, node_id = entry[0], entry[1]
                        # a two-item entry is a node event whose data was its root and node id only
                        data = entry[2] if len(entry) > 2 else {"root_pipeline_id": root, "node_id": node_id}
                        out.append(EventRecord(event_id, root, node_id, event_type, data, schema, created))
            row_after = rows[-1][0] + 1
        return out[:limit]
