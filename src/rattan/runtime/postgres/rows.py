"""Rows of the PostgreSQL store: column lists, fixed statements and row <-> record conversion.

Statements are fixed texts (lists go in as one array parameter, ``= ANY(%s)``), so psycopg
prepares each on the server after a few uses and later executions send only the parameters.
"""

from __future__ import annotations

from typing import Any

from rattan.model.codec import dumps, loads, plain_dumps, plain_loads
from rattan.model.records import ScheduleRecord, ScheduleType, StateRecord, TokenRecord

__all__ = ["dumps", "loads", "plain_dumps", "plain_loads"]

STATE_COLS = (
    "node_id, root_id, parent_id, name, version, loop, inner_loop, retry, skip, error_ignored, "
    "created, started, archived"
)
PROC_COLS = "id, root_id, parent_id, current, destination, stack, status, pending, executing, owner, rev"
SCHED_COLS = "id, node_id, version, type, process_id, times, finished, expired, due, owner"

INSERT_STATE = (
    f"INSERT INTO states({STATE_COLS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
    "ON CONFLICT (node_id) DO NOTHING RETURNING 1"
)
# compare-and-set: the row changes only while it keeps the name and version the writer read
CAS_STATE = (
    "UPDATE states SET root_id=%s, parent_id=%s, name=%s, version=%s, loop=%s, inner_loop=%s, retry=%s, "
    "skip=%s, error_ignored=%s, started=%s, archived=%s WHERE node_id=%s AND name=%s AND version=%s "
    "RETURNING 1"
)
INSERT_PROC = (
    "INSERT INTO processes(root_id, parent_id, current, destination, stack, status, pending, executing, "
    "owner) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id"
)
SAVE_PROC = (
    "UPDATE processes SET current=%s, destination=%s, stack=%s, pending=%s, executing=%s, status=%s, "
    "owner=%s, rev=rev+1 WHERE id=%s AND rev=%s RETURNING 1"
)

# the locking reads of a unit (see PostgresUnit): rows are locked in the order they come out,
# roots (node_id = root_id) first, then by node id, so two units lock shared rows in one order
_LOCK = " FOR NO KEY UPDATE"
LOCK_STATE = f"SELECT {STATE_COLS} FROM states WHERE node_id=%s{_LOCK}"
LOCK_STATES = f"SELECT {STATE_COLS} FROM states WHERE node_id = ANY(%s) ORDER BY node_id{_LOCK}"
# the roots are found first (an init plan), so both kinds of row come through the primary key
LOCK_WITH_ROOTS = (
    f"SELECT {STATE_COLS} FROM states WHERE node_id = ANY(array_cat(%s::text[], "
    "ARRAY(SELECT root_id FROM states WHERE node_id = ANY(%s)))) "
    f"ORDER BY node_id = root_id DESC, node_id{_LOCK}"
)
LOCK_RUN_STATES = (
    f"SELECT {STATE_COLS} FROM states WHERE root_id=%s ORDER BY node_id = root_id DESC, node_id{_LOCK}"
)
LOCK_ROOT = f"SELECT 1 FROM states WHERE node_id=%s{_LOCK}"
LOCK_RUN_OF_NODE = (
    "SELECT s.node_id FROM node_index n JOIN states s ON s.node_id = n.root_id WHERE n.node_id=%s "
    "FOR NO KEY UPDATE OF s"
)

_TYPES = {int(t): t for t in ScheduleType}


def state_record(row: Any) -> StateRecord:
    return StateRecord(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
        row[8], row[9], row[10], row[11], row[12],
    )  # fmt: skip


def state_params(s: StateRecord) -> tuple[Any, ...]:
    return (s.node_id, s.root_id, s.parent_id, s.name, s.version, s.loop, s.inner_loop, s.retry,
            bool(s.skip), bool(s.error_ignored), s.created, s.started, s.archived)  # fmt: skip


def proc_record(row: Any) -> TokenRecord:
    return TokenRecord(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        plain_loads(row[5]),
        row[6],
        row[7],
        row[8],
        row[9],
        row[10],
        row[6],
    )


def sched_record(row: Any) -> ScheduleRecord:
    return ScheduleRecord(
        row[0], row[1], row[2], _TYPES[row[3]], row[4], row[5], row[6], row[7], row[8], row[9]
    )
