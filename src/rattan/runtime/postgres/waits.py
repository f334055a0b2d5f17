"""Schedules, callbacks and timers (every wait is a row), histories, logs and the event log: the
half of ``PostgresUnit`` that serves user steps, timers and operators.

The event cursor. Several transactions append events at once and commit in any order, so no
number handed out at insert time (a sequence) grows in commit order: a reader at cursor N could
pass a row numbered below N that commits later. Here an event's id is made of the 64-bit id of
the transaction that wrote it (``pg_current_xact_id()``, unique for the life of the cluster) and
its place in that transaction, and a reader returns only rows of transactions older than its
snapshot's ``xmin``: every transaction below ``xmin`` has ended, so that part of the log is final,
and any row still to come belongs to a transaction at or above ``xmin``, so it sorts after
every row returned. The cursor therefore never skips a row that commits late, never repeats one,
and ids are never reused (not even after ``delete_run``). The price: a transaction that stays
open holds the log back (readers see the events after it only once it ends), and events come in
the order their transactions began writing, not the order they committed.
"""

from __future__ import annotations

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
from rattan.runtime.postgres.behind import Pending
from rattan.runtime.postgres.rows import SCHED_COLS, Connected, dumps, loads, sched_record

EVENTS_PER_ROW = 1000  # events stored in one row (one append stores ceil(n / this) rows)
PARTS_PER_XACT = 1000  # rows one transaction may append
XACT_SHIFT = 20  # an event id is xact << XACT_SHIFT | part * EVENTS_PER_ROW + index
PAGE_ROWS = 200  # rows the event reader fetches per statement
CALLBACK_COLS = "id, node_id, version, data, idem_key, applied, created"

# the transaction id is taken (and so assigned) in a CTE evaluated before the row is built
APPEND_EVENTS = (
    "WITH x AS MATERIALIZED (SELECT pg_current_xact_id()::text::bigint AS xact) "
    "INSERT INTO events(xact, part, root_id, node_id, event_type, data, schema, created) "
    "SELECT x.xact, %s, %s, %s, %s, %s, %s, %s FROM x"
)
# rows of ended transactions (below the snapshot's xmin), and this transaction's own rows
_SAFE = (
    "(xact < (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint) "
    "OR xact = (SELECT pg_current_xact_id_if_assigned()::text::bigint))"
)
READ_EVENTS = (
    "SELECT xact, part, root_id, data, schema, created FROM events "
    f"WHERE (xact, part) >= (%s, %s) AND {_SAFE} ORDER BY xact, part LIMIT {PAGE_ROWS}"
)
READ_RUN_EVENTS = (
    "SELECT xact, part, root_id, data, schema, created FROM events "
    f"WHERE root_id = %s AND (xact, part) >= (%s, %s) AND {_SAFE} ORDER BY xact, part LIMIT {PAGE_ROWS}"
)


def event_id(xact: int, part: int, index: int) -> int:
    return (xact << XACT_SHIFT) + part * EVENTS_PER_ROW + index


class WaitQueries(Connected):
    """Needs ``c`` (the connection) and ``parts`` (rows of events this unit appended), set by
    PostgresUnit (no ``__slots__`` here: ``parts`` changes as events are appended)."""

    parts: int
    # ValueTable's methods, beside this class in PostgresUnit (annotations only: no attribute here)
    load_value: Callable[[bytes], Any]
    put_value: Callable[..., bytes]
    hold_node_run: Callable[[str], None]  # PostgresUnit's: the run's root state is locked first
    # KeyedRows' (keyed.py): schedules by id through what the unit knows; held-back event rows
    schedule_by_id: Callable[[int], list[ScheduleRecord]]
    put_schedule_row: Callable[[ScheduleRecord], int]
    pending: Pending | None

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
        if q.id is not None:
            return self.schedule_by_id(q.id)
        if q.node_id is None:
            raise BadInputError("a schedule query names an id or a node_id")
        where, args = ["node_id=%s"], [q.node_id]
        if q.version is not None:
            where.append("version=%s")
            args.append(q.version)
        if q.pending:
            where.append("NOT finished AND NOT expired")
        sql = f"SELECT {SCHED_COLS} FROM schedules WHERE {' AND '.join(where)} ORDER BY id"
        return [sched_record(r) for r in self.c.execute(sql, args)]

    def _callbacks(self, q: CallbackQuery) -> list[CallbackRecord]:
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("id", q.id), ("node_id", q.node_id), ("version", q.version),
                              ("idem_key", q.idem_key)):  # fmt: skip
            if value is not None:
                where.append(f"{column}=%s")
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
        if isinstance(wait, ScheduleRecord):
            return self._put_schedule(wait)
        if isinstance(wait, CallbackRecord):
            return self._put_callback(wait)
        if isinstance(wait, TimerRecord):
            return self._put_timer(wait)
        raise BadInputError(f"put_wait takes a schedule, callback or timer record, not {type(wait).__name__}")

    def _put_schedule(self, s: ScheduleRecord) -> int:
        self.hold_node_run(s.node_id)
        return self.put_schedule_row(s)

    def _put_callback(self, cb: CallbackRecord) -> int:
        self.hold_node_run(cb.node_id)
        if cb.id:
            self.c.execute("UPDATE callbacks SET applied=%s WHERE id=%s", (cb.applied, cb.id))
            return cb.id
        # DO NOTHING rather than an error: a failed statement would abort the whole transaction
        row = self.c.execute(
            "INSERT INTO callbacks(node_id, version, data, idem_key, applied, created) "
            "VALUES (%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT (node_id, idem_key) WHERE idem_key IS NOT NULL DO NOTHING RETURNING id",
            (
                cb.node_id,
                cb.version,
                self.put_value(dumps(cb.data), True, node_id=cb.node_id),
                cb.idem_key,
                cb.applied,
                cb.created,
            ),
        ).fetchone()
        if row is None:
            raise ConflictError(
                f"node {cb.node_id}: idempotency key {cb.idem_key!r} is used by another callback"
            )
        cb.id = int(row[0])
        return cb.id

    def _put_timer(self, t: TimerRecord) -> int:
        if t.id:
            raise BadInputError(f"timer {t.id} is stored already: a timer is armed once and then taken")
        row = self.c.execute(
            "INSERT INTO timers(kind, node_id, version, due, payload, owner) VALUES (%s,%s,%s,%s,%s,%s) "
            "RETURNING id",
            (t.kind, t.node_id, t.version, t.due, dumps(t.payload), t.owner),
        ).fetchone()
        assert row is not None
        t.id = int(row[0])
        return t.id

    def take_timer(self, timer_id: int) -> TimerRecord | None:
        row = self.c.execute(
            "DELETE FROM timers WHERE id=%s RETURNING id, kind, node_id, version, due, payload, owner",
            (timer_id,),
        ).fetchone()
        if row is None:
            return None
        return TimerRecord(row[0], row[1], row[2], row[3], row[4], loads(row[5]), row[6])

    # -- histories and logs --------------------------------------------------------------------
    def histories(self, node_id: str, loop: int = -1) -> list[HistoryRecord]:
        sql = (
            "SELECT id, node_id, loop, retry, skip, version, started, archived, inputs, outputs "
            "FROM histories WHERE node_id=%s "
        )
        if loop == -1:
            rows = self.c.execute(sql + "ORDER BY id", (node_id,))
        else:
            rows = self.c.execute(sql + "AND loop=%s ORDER BY id", (node_id, loop))
        load = self.load_value
        return [
            HistoryRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], load(r[8]), load(r[9]))
            for r in rows
        ]

    def logs(self, node_id: str, version: str | None) -> list[str]:
        if version is None:
            rows = self.c.execute("SELECT line FROM logs WHERE node_id=%s ORDER BY id", (node_id,))
        else:
            rows = self.c.execute(
                "SELECT line FROM logs WHERE node_id=%s AND version=%s ORDER BY id", (node_id, version)
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
            if self.parts >= PARTS_PER_XACT:
                raise BadInputError(
                    f"one unit of work appends at most {PARTS_PER_XACT * EVENTS_PER_ROW} events"
                )
            rows.append((self.parts, root_id, chunk[0][1], chunk[0][0], blob, EVENT_SCHEMA_VERSION, created))
            self.parts += 1
        if self.pending is not None:  # sent with the unit's other held-back writes
            self.pending.events.extend(rows)
        elif len(rows) == 1:
            self.c.execute(APPEND_EVENTS, rows[0])
        elif rows:
            with self.c.cursor() as cur:
                cur.executemany(APPEND_EVENTS, rows)

    def events(self, after: int, root_id: str | None, limit: int) -> list[EventRecord]:
        out: list[EventRecord] = []
        after = max(after, -1)
        xact, pos = divmod(after + 1, 1 << XACT_SHIFT)  # the first id that may be returned
        part = pos // EVENTS_PER_ROW
        while len(out) < limit:
            if root_id is None:
                rows = self.c.execute(READ_EVENTS, (xact, part)).fetchall()
            else:
                rows = self.c.execute(READ_RUN_EVENTS, (root_id, xact, part)).fetchall()
            if not rows:
                break
            for row_xact, row_part, root, blob, schema, created in rows:
                for index, entry in enumerate(loads(blob)):
                    eid = event_id(row_xact, row_part, index)
                    if eid > after:
                        event_type, node_id = entry[0], entry[1]
                        # a two-item entry is a node event whose data was its root and node id only
                        data = entry[2] if len(entry) > 2 else {"root_pipeline_id": root, "node_id": node_id}
                        out.append(EventRecord(eid, root, node_id, event_type, data, schema, created))
            if len(rows) < PAGE_ROWS:
                break
            xact, part = rows[-1][0], rows[-1][1] + 1
        return out[:limit]
