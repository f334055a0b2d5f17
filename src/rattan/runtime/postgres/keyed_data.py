"""Node data, contexts and schedules by id, for ``PostgresUnit`` (the second half of
``keyed.py``): read through what the unit knows, written to what it holds back
(``behind.py``), straight to the server for committed reads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from rattan.model.records import ContextEntry, ContextRow, StateRecord
from rattan.runtime.interface import NodeData
from rattan.runtime.postgres.behind import Pending, UnitRows
from rattan.runtime.postgres.rows import SCHED_COLS, Connected, dumps, loads, sched_record, sched_row

DATA_READ = (
    "SELECT k.id, e.inputs, e.outputs, o.inputs FROM unnest(%s::text[]) AS k(id) "
    "LEFT JOIN exec_data e ON e.node_id = k.id LEFT JOIN data_override o ON o.node_id = k.id"
)


class KeyedData(Connected):
    """Mixed into PostgresUnit (through KeyedRows), which sets these attributes."""

    conn: psycopg.Connection[Any]
    pending: Pending | None
    rows: UnitRows | None
    ids: Any  # keyed.IdBlocks
    load_value: Callable[[bytes], Any]
    put_value: Callable[..., bytes]
    flush: Callable[..., None]

    # -- schedules (the keyed half of ``waits``) ----------------------------------------------
    def schedule_by_id(self, sid: int) -> list[Any]:
        rows = self.rows
        if rows is not None and sid in rows.schedules:
            return [sched_record(rows.schedules[sid])]
        row = self.conn.execute(f"SELECT {SCHED_COLS} FROM schedules WHERE id=%s", (sid,)).fetchone()
        if row is None:
            return []
        if rows is not None:
            rows.schedules[sid] = tuple(row)
        return [sched_record(row)]

    def put_schedule_row(self, s: Any) -> int:
        rows, pending = self.rows, self.pending
        assert rows is not None and pending is not None and self.ids is not None, "a write outside a unit"
        new = s.id == 0
        if new:
            s.id = self.ids.take(self.conn, "schedules")
        elif (s.finished or s.expired) and s.owner is None:
            s.owner = ""  # over: no work for anyone to claim
        row = sched_row(s)
        pending.put_schedule(row, new)
        rows.schedules[s.id] = row
        return int(s.id)

    # -- node data -----------------------------------------------------------------------------
    def _data_pending(self, node_id: str) -> bool:
        return self.pending is not None and node_id in self.pending.data

    def node_data(self, node_id: str) -> NodeData:
        rows = self.rows
        if rows is not None and node_id in rows.data:
            i, o, override = rows.data[node_id]
        else:
            c = self.c if self._data_pending(node_id) else self.conn
            row = c.execute(DATA_READ, ([node_id],)).fetchone()
            assert row is not None
            i, o, override = row[1], row[2], None if row[3] is None else loads(row[3])
            if rows is not None:
                rows.data[node_id] = (i, o, override)
        load = self.load_value
        return NodeData(None if i is None else load(i), None if o is None else load(o), override)

    def put_node_data(
        self, node_id: str, *, inputs: bytes | None = None, outputs: bytes | None = None,
        override: dict[str, Any] | None = None, logs: tuple[str, Sequence[str]] | None = None,
        history: StateRecord | None = None,
    ) -> None:  # fmt: skip
        rows, pending = self.rows, self.pending
        assert rows is not None and pending is not None, "a write outside a unit of work"
        if history is not None:  # it copies the stored exec_data row: what is held back goes first
            s = history
            self.c.execute(
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
            pending.put_data(node_id, inputs, outputs)
            known = rows.data.get(node_id)
            if known is not None:
                rows.data[node_id] = (inputs if inputs is not None else known[0], outputs, known[2])
        if override is not None:
            self.c.execute(
                "INSERT INTO data_override(node_id, inputs) VALUES (%s,%s) "
                "ON CONFLICT (node_id) DO UPDATE SET inputs=excluded.inputs",
                (node_id, dumps(override)),
            )
            known = rows.data.get(node_id)
            if known is not None:
                rows.data[node_id] = (known[0], known[1], loads(dumps(override)))
        if logs is not None and logs[1]:
            version, lines = logs
            pending.logs.extend((node_id, version, line) for line in lines)

    # -- context -------------------------------------------------------------------------------
    def _ctx_pending(self, pipeline_id: str) -> bool:
        return self.pending is not None and pipeline_id in self.pending.context_pipelines

    def context(self, pipeline_id: str) -> dict[str, ContextEntry]:
        rows = self.rows
        load = self.load_value
        if rows is not None and (known := rows.context.get(pipeline_id)) is not None:
            return {k: (t, load(v), code) for k, (t, v, code) in known.items()}
        c = self.c if self._ctx_pending(pipeline_id) else self.conn
        found = c.execute(
            "SELECT key, type, value, code FROM context WHERE pipeline_id=%s", (pipeline_id,)
        ).fetchall()
        if rows is not None:
            rows.context[pipeline_id] = {r[0]: (r[1], r[2], r[3]) for r in found}
        return {r[0]: (r[1], load(r[2]), r[3]) for r in found}

    def put_context(self, rows_in: Sequence[ContextRow], *, existing_only: bool = False) -> None:
        if not rows_in:
            return
        rows, pending = self.rows, self.pending
        assert rows is not None and pending is not None, "a write outside a unit of work"
        put = self.put_value
        # the last row of a key wins, as one statement per row would have it
        data = {
            (r.pipeline_id, r.key): (int(r.type), put(dumps(r.value), True, node_id=r.pipeline_id), r.code)
            for r in rows_in
        }
        if existing_only:
            unknown = {p for p, _ in data if p not in rows.context}
            if unknown:  # which keys exist is the server's to say: ask it with everything sent
                self.flush()
                for p in unknown:
                    self.context(p)
            data = {(p, k): v for (p, k), v in data.items() if k in rows.context[p]}
        for (p, k), v in data.items():
            pending.context[(p, k)] = v
            pending.context_pipelines.add(p)
            known = rows.context.get(p)
            if known is not None:
                known[k] = v
