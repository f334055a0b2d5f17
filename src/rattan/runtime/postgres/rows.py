"""Rows of the PostgreSQL store: column lists, fixed statements and row <-> record conversion.

Statements are fixed texts (lists go in as one array parameter, ``= ANY(%s)``), so psycopg
prepares each on the server after a few uses and later executions send only the parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rattan.model.codec import dumps, loads, plain_dumps, plain_loads
from rattan.model.records import ScheduleRecord, ScheduleType, StateRecord, TokenRecord

if TYPE_CHECKING:
    import psycopg

__all__ = ["dumps", "loads", "plain_dumps", "plain_loads"]


class Connected:
    """A part of ``PostgresUnit`` (or of the rollback rows) that runs statements on ``c``: the
    class it is mixed into provides the connection (``KeyedRows.c``, which sends held-back writes
    first)."""

    __slots__ = ()

    if TYPE_CHECKING:

        @property
        def c(self) -> psycopg.Connection[Any]: ...


STATE_COLS = (
    "node_id, root_id, parent_id, name, version, loop, inner_loop, retry, skip, error_ignored, "
    "created, started, archived"
)
PROC_COLS = "id, root_id, parent_id, current, destination, stack, status, pending, executing, owner, rev"
SCHED_COLS = "id, node_id, version, type, process_id, times, finished, expired, due, owner"

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

# a state row as read or written (STATE_COLS order); in a unit's rows, None: the node has no state
StateRow = tuple[str, str, str, str, str, int, int, int, bool, bool, float, float | None, float | None]
# a token row (PROC_COLS order), its stack as stored bytes
ProcRow = tuple[int, str, int | None, str, str | None, bytes, str, int, str | None, str | None, int]
# a schedule row (SCHED_COLS order)
SchedRow = tuple[int, str, str, int, int, int, bool, bool, float | None, str | None]
# one pipeline's context: key -> (type, stored value bytes, code)
ContextRows = dict[str, tuple[int, bytes, str | None]]
# a node's data as stored: inputs, outputs (bytes or None when absent), override (parsed or None)
DataRow = tuple[bytes | None, bytes | None, Any]


def state_record(row: Any) -> StateRecord:
    return StateRecord(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
        row[8], row[9], row[10], row[11], row[12],
    )  # fmt: skip


def state_row(s: StateRecord) -> StateRow:
    return (s.node_id, s.root_id, s.parent_id, s.name, s.version, s.loop, s.inner_loop, s.retry,
            bool(s.skip), bool(s.error_ignored), s.created, s.started, s.archived)  # fmt: skip


def proc_record(row: Any) -> TokenRecord:
    """A fresh record (the caller's own, with its own stack list)."""
    return TokenRecord(
        row[0], row[1], row[2], row[3], row[4], plain_loads(row[5]), row[6], row[7], row[8], row[9],
        row[10], row[6],
    )  # fmt: skip


def proc_row(p: TokenRecord) -> ProcRow:
    return (p.id, p.root_id, p.parent_id, p.current, p.destination, plain_dumps(p.stack), p.status, p.pending,
            p.executing, p.owner, p.rev)  # fmt: skip


def sched_record(row: Any) -> ScheduleRecord:
    return ScheduleRecord(
        row[0], row[1], row[2], _TYPES[row[3]], row[4], row[5], row[6], row[7], row[8], row[9]
    )


def sched_row(s: ScheduleRecord) -> SchedRow:
    return (s.id, s.node_id, s.version, int(s.type), s.process_id, s.times, bool(s.finished), bool(s.expired),
            s.due, s.owner)  # fmt: skip
