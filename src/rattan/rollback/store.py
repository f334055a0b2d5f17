"""Rows of the rollback extension (schema migration 3), read and written over a ``Tx``'s connection.

Four tables: the tokens of each run, a snapshot of every finished service-activity pass, the
reservations (plans) and the rollback job of a pipeline (its walk, which nodes to clean, progress
status). Everything a rollback needs to continue after a restart lives in these rows and in the
node states.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rattan.runtime.queries import dumps, loads

if TYPE_CHECKING:
    from rattan.runtime.queries import Tx

JOB_RUNNING = "running"
JOB_FAILED = "failed"
JOB_DONE = "done"


@dataclass(slots=True)
class Snapshot:
    id: int
    node_id: str
    code: str
    component_version: str
    node_version: str
    loop: int
    inner_loop: int
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    root_data: Any


@dataclass(slots=True)
class Plan:
    id: int
    start_node_id: str
    target_node_id: str
    mode: str
    options: dict[str, Any]


@dataclass(slots=True)
class Job:
    root_id: str
    start_node_id: str
    target_node_id: str
    mode: str
    process_id: int
    walk: list[str]
    clean: list[str]
    skip: list[str]
    status: str
    retry_node: str | None
    retry_data: Any


# -- tokens ------------------------------------------------------------------------------------
def put_tokens(tx: Tx, root_id: str, tokens: dict[str, str]) -> None:
    tx.c.execute(
        "INSERT OR REPLACE INTO rollback_tokens(root_id, tokens) VALUES (?, ?)", (root_id, dumps(tokens))
    )


def get_tokens(tx: Tx, root_id: str) -> dict[str, str] | None:
    row = tx.c.execute("SELECT tokens FROM rollback_tokens WHERE root_id=?", (root_id,)).fetchone()
    return None if row is None else dict(loads(row[0]))


# -- snapshots ---------------------------------------------------------------------------------
def add_snapshot(
    tx: Tx, root_id: str, node_id: str, code: str, component_version: str, node_version: str,
    loop: int, inner_loop: int, inputs: bytes, outputs: bytes, root_data: Any,
) -> None:  # fmt: skip
    tx.c.execute(
        "INSERT INTO rollback_snapshots(root_id, node_id, code, component_version, node_version, loop, "
        "inner_loop, inputs, outputs, root_data, created) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (root_id, node_id, code, component_version, node_version, loop, inner_loop, inputs, outputs,
         dumps(root_data), time.time()),
    )  # fmt: skip


def pending_snapshots(tx: Tx, root_id: str, node_id: str) -> list[Snapshot]:
    """Snapshots of ``node_id`` whose ``rollback()`` has not returned True yet, newest first."""
    rows = tx.c.execute(
        "SELECT id, node_id, code, component_version, node_version, loop, inner_loop, inputs, outputs, "
        "root_data FROM rollback_snapshots WHERE root_id=? AND node_id=? AND rolled_back=0 ORDER BY id DESC",
        (root_id, node_id),
    )
    return [
        Snapshot(r[0], r[1], r[2], r[3], r[4], r[5], r[6], loads(r[7]), loads(r[8]), loads(r[9]))
        for r in rows
    ]


def last_snapshot_ids(tx: Tx, root_id: str) -> dict[str, int]:
    """node id -> id of its newest snapshot (the order in which nodes last finished)."""
    rows = tx.c.execute(
        "SELECT node_id, MAX(id) FROM rollback_snapshots WHERE root_id=? GROUP BY node_id", (root_id,)
    )
    return {r[0]: int(r[1]) for r in rows}


def mark_rolled_back(tx: Tx, snapshot_id: int) -> None:
    tx.c.execute("UPDATE rollback_snapshots SET rolled_back=1 WHERE id=?", (snapshot_id,))


def clear_snapshots(tx: Tx, root_id: str) -> None:
    tx.c.execute("DELETE FROM rollback_snapshots WHERE root_id=?", (root_id,))


# -- reservations ------------------------------------------------------------------------------
def add_plan(tx: Tx, root_id: str, start: str, target: str, mode: str, options: dict[str, Any]) -> None:
    tx.c.execute(
        "INSERT INTO rollback_plans(root_id, start_node_id, target_node_id, mode, options, created) "
        "VALUES (?,?,?,?,?,?)",
        (root_id, start, target, mode, dumps(options), time.time()),
    )


def live_plans(tx: Tx, root_id: str, start: str | None = None) -> list[Plan]:
    sql = (
        "SELECT id, start_node_id, target_node_id, mode, options FROM rollback_plans "
        "WHERE root_id=? AND expired=0"
    )
    args: tuple[str, ...] = (root_id,)
    if start is not None:
        sql += " AND start_node_id=?"
        args = (root_id, start)
    return [Plan(r[0], r[1], r[2], r[3], dict(loads(r[4]))) for r in tx.c.execute(sql + " ORDER BY id", args)]


def expire_plans(tx: Tx, root_id: str, start: str) -> None:
    tx.c.execute("UPDATE rollback_plans SET expired=1 WHERE root_id=? AND start_node_id=?", (root_id, start))


# -- jobs --------------------------------------------------------------------------------------
def put_job(tx: Tx, job: Job) -> None:
    tx.c.execute(
        "INSERT OR REPLACE INTO rollback_jobs(root_id, start_node_id, target_node_id, mode, process_id, "
        "walk, clean, skip, status, retry_node, retry_data, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (job.root_id, job.start_node_id, job.target_node_id, job.mode, job.process_id, dumps(job.walk),
         dumps(job.clean), dumps(job.skip), job.status, job.retry_node, dumps(job.retry_data), time.time()),
    )  # fmt: skip


def get_job(tx: Tx, root_id: str) -> Job | None:
    row = tx.c.execute(
        "SELECT root_id, start_node_id, target_node_id, mode, process_id, walk, clean, skip, status, "
        "retry_node, retry_data FROM rollback_jobs WHERE root_id=?",
        (root_id,),
    ).fetchone()
    if row is None:
        return None
    return Job(
        row[0], row[1], row[2], row[3], int(row[4]), list(loads(row[5])), list(loads(row[6])),
        list(loads(row[7])), row[8], row[9], loads(row[10]) if row[10] is not None else None,
    )  # fmt: skip


def set_job_status(tx: Tx, root_id: str, status: str) -> None:
    tx.c.execute("UPDATE rollback_jobs SET status=? WHERE root_id=?", (status, root_id))


def running_jobs(tx: Tx) -> list[str]:
    return [r[0] for r in tx.c.execute("SELECT root_id FROM rollback_jobs WHERE status=?", (JOB_RUNNING,))]


# -- cleaning the engine's rows of rolled-back nodes ---------------------------------------------
def clean_nodes(tx: Tx, node_ids: list[str]) -> None:
    """Delete state, schedules, logs, histories, execution data, callbacks and retry overrides."""
    rows = [(n,) for n in node_ids]
    for table in ("states", "schedules", "logs", "histories", "exec_data", "callbacks", "data_override"):
        tx.c.executemany(f"DELETE FROM {table} WHERE node_id=?", rows)
    tx.forget()  # states deleted here, not through the Tx methods that keep the writer's cache
