"""The rollback extension's rows in PostgreSQL: the tokens of each run, a snapshot of every
finished service-activity pass, reservations (plans) and the rollback job of a pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from rattan.model.records import RollbackJob, RollbackPlan, RollbackSnapshot
from rattan.runtime.postgres.rows import dumps, loads
from rattan.runtime.postgres.values import ValueTable

SNAPSHOT_COLS = (
    "id, root_id, node_id, code, component_version, node_version, loop, inner_loop, inputs, outputs, "
    "root_data"
)
_CLEANED = ("states", "schedules", "logs", "histories", "exec_data", "callbacks", "data_override")


class PostgresRollbackRows(ValueTable):
    """Over the unit of work's connection; ``forget`` tells the unit that rows it may know were
    deleted behind it (cleaning)."""

    __slots__ = ("_conn", "_forget")

    def __init__(self, conn: Callable[[], psycopg.Connection[Any]], forget: Callable[[], None]) -> None:
        self._conn = conn
        self._forget = forget

    @property
    def c(self) -> psycopg.Connection[Any]:
        return self._conn()  # the unit's: its held-back writes are sent first

    # -- tokens ------------------------------------------------------------------------------------
    def put_tokens(self, root_id: str, tokens: dict[str, str]) -> None:
        self.c.execute(
            "INSERT INTO rollback_tokens(root_id, tokens) VALUES (%s, %s) "
            "ON CONFLICT (root_id) DO UPDATE SET tokens=excluded.tokens",
            (root_id, dumps(tokens)),
        )

    def tokens(self, root_id: str) -> dict[str, str] | None:
        row = self.c.execute("SELECT tokens FROM rollback_tokens WHERE root_id=%s", (root_id,)).fetchone()
        return None if row is None else dict(loads(row[0]))

    # -- snapshots ---------------------------------------------------------------------------------
    def add_snapshot(self, s: RollbackSnapshot) -> None:
        inputs = self.put_value(dumps(s.inputs), False, s.root_id)
        outputs = self.put_value(dumps(s.outputs), False, s.root_id)
        self.c.execute(
            "INSERT INTO rollback_snapshots(root_id, node_id, code, component_version, node_version, loop, "
            "inner_loop, inputs, outputs, root_data, created) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            (s.root_id, s.node_id, s.code, s.component_version, s.node_version, s.loop, s.inner_loop,
             inputs, outputs, dumps(s.root_data), time.time()),
        )  # fmt: skip

    def snapshots(self, root_id: str, node_id: str | None = None) -> list[RollbackSnapshot]:
        sql = f"SELECT {SNAPSHOT_COLS} FROM rollback_snapshots WHERE root_id=%s AND NOT rolled_back"
        args: tuple[str, ...] = (root_id,)
        if node_id is not None:
            sql += " AND node_id=%s"
            args = (root_id, node_id)
        return [
            RollbackSnapshot(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                r[7],
                self.load_value(r[8]),
                self.load_value(r[9]),
                loads(r[10]),
            )
            for r in self.c.execute(sql + " ORDER BY id DESC", args)
        ]

    def snapshot_done(self, snapshot_id: int | None, root_id: str) -> None:
        if snapshot_id is None:
            self.c.execute("DELETE FROM rollback_snapshots WHERE root_id=%s", (root_id,))
        else:
            self.c.execute(
                "UPDATE rollback_snapshots SET rolled_back=true WHERE id=%s AND root_id=%s",
                (snapshot_id, root_id),
            )

    # -- reservations ------------------------------------------------------------------------------
    def put_plan(self, p: RollbackPlan) -> None:
        self.c.execute(
            "INSERT INTO rollback_plans(root_id, start_node_id, target_node_id, mode, options, created) "
            "VALUES (%s,%s,%s,%s,%s,%s)",
            (p.root_id, p.start_node_id, p.target_node_id, p.mode, dumps(p.options), time.time()),
        )

    def plans(self, root_id: str, start_node_id: str | None = None) -> list[RollbackPlan]:
        sql = (
            "SELECT id, root_id, start_node_id, target_node_id, mode, options FROM rollback_plans "
            "WHERE root_id=%s AND NOT expired"
        )
        args: tuple[str, ...] = (root_id,)
        if start_node_id is not None:
            sql += " AND start_node_id=%s"
            args = (root_id, start_node_id)
        return [
            RollbackPlan(r[0], r[1], r[2], r[3], r[4], dict(loads(r[5])))
            for r in self.c.execute(sql + " ORDER BY id", args)
        ]

    def expire_plans(self, root_id: str, start_node_id: str) -> None:
        self.c.execute(
            "UPDATE rollback_plans SET expired=true WHERE root_id=%s AND start_node_id=%s",
            (root_id, start_node_id),
        )

    # -- jobs --------------------------------------------------------------------------------------
    def put_job(self, j: RollbackJob) -> None:
        self.c.execute(
            "INSERT INTO rollback_jobs(root_id, start_node_id, target_node_id, mode, process_id, walk, "
            "clean, skip, status, retry_node, retry_data, created, owner) "
            "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT (root_id) DO UPDATE SET start_node_id=excluded.start_node_id, "
            "target_node_id=excluded.target_node_id, mode=excluded.mode, process_id=excluded.process_id, "
            "walk=excluded.walk, clean=excluded.clean, skip=excluded.skip, status=excluded.status, "
            "retry_node=excluded.retry_node, retry_data=excluded.retry_data, owner=excluded.owner",
            (j.root_id, j.start_node_id, j.target_node_id, j.mode, j.process_id, dumps(j.walk),
             dumps(j.clean), dumps(j.skip), j.status, j.retry_node, dumps(j.retry_data), time.time(),
             j.owner),
        )  # fmt: skip

    def job(self, root_id: str) -> RollbackJob | None:
        r = self.c.execute(
            "SELECT root_id, start_node_id, target_node_id, mode, process_id, walk, clean, skip, status, "
            "retry_node, retry_data, owner FROM rollback_jobs WHERE root_id=%s",
            (root_id,),
        ).fetchone()
        if r is None:
            return None
        return RollbackJob(
            r[0], r[1], r[2], r[3], int(r[4]), list(loads(r[5])), list(loads(r[6])), list(loads(r[7])), r[8],
            r[9], loads(r[10]) if r[10] is not None else None, r[11],
        )  # fmt: skip

    # -- cleaning the engine's rows of rolled-back nodes -------------------------------------------
    def clean_nodes(self, node_ids: Sequence[str]) -> None:
        ids = list(node_ids)
        for table in _CLEANED:
            self.c.execute(f"DELETE FROM {table} WHERE node_id = ANY(%s)", (ids,))
        self._forget()
