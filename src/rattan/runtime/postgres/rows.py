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

# A unit takes its runs' locks (see PostgresUnit): transaction-scoped advisory locks keyed by the
# hash of the root pipeline's id, in the lock manager's memory (a row lock would be written into
# the row and the WAL). Several are taken in the order of their keys, so two units never wait for
# each other in a circle over them; two runs whose ids hash alike only take turns.
RUN_LOCKS = 0x7275_6E73  # advisory lock class of runs ("runs"); migrations use another
HOLD_RUNS = (
    f"SELECT pg_advisory_xact_lock({RUN_LOCKS}, h) "
    "FROM (SELECT DISTINCT hashtext(r) AS h FROM unnest(%s::text[]) AS r ORDER BY 1) AS s"
)
# the runs of some nodes, each once, locked: their root ids as node_index has them (every node of
# a stored run, from the moment it is stored: a state's own root_id may be empty, as for a pause
# appointed before its node is reached) and as their states have them (a state written without
# its run's index)
HOLD_RUNS_OF = (
    f"SELECT s.r, pg_advisory_xact_lock({RUN_LOCKS}, s.h) FROM (SELECT DISTINCT r, hashtext(r) AS h "
    "FROM (SELECT root_id AS r FROM node_index WHERE node_id = ANY(%(ids)s) UNION "
    "SELECT root_id FROM states WHERE node_id = ANY(%(ids)s) AND root_id <> '') AS u ORDER BY h, r) AS s"
)
HOLD_RUN_OF_NODE = (
    f"SELECT root_id, pg_advisory_xact_lock({RUN_LOCKS}, hashtext(root_id)) FROM node_index WHERE node_id=%s"
)
READ_STATES = f"SELECT {STATE_COLS} FROM states WHERE node_id = ANY(%s)"
READ_RUN_STATES = f"SELECT {STATE_COLS} FROM states WHERE root_id=%s"

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
