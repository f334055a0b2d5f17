"""Rows of the SQLite store: column lists, fixed statements, row <-> record conversion, and the
writer's cache of the rows it wrote last (``WriterCache``)."""

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
# a node with its root and enclosing subprocesses, read when the writer's cache misses: the text
# of each short form is built once (the driver caches statements by their text)
STATES_BY = [""] + [
    f"SELECT {STATE_COLS} FROM states WHERE node_id IN ({','.join('?' * n)})" for n in range(1, 9)
]
PROC_BY_ID = f"SELECT {PROC_COLS} FROM processes WHERE id=?"
# A token is written only if no one else wrote it since it was read (its rev is unchanged). The
# status and the owner are named only when they change: naming a column makes SQLite revisit every
# index that depends on it (status: the root/status index; owner: the partial index of rows
# with no owner), and a step changes neither most of the time. Key: (status changed, owner changed).
_SAVE = "UPDATE processes SET current=?, destination=?, stack=?, pending=?, executing=?, rev=rev+1"
SAVE_PROC = {
    (status, owner): _SAVE
    + (", status=?" if status else "")
    + (", owner=?" if owner else "")
    + " WHERE id=? AND rev=?"
    for status in (False, True)
    for owner in (False, True)
}
INSERT_PROC = (
    "INSERT INTO processes(root_id, parent_id, current, destination, stack, status, pending, executing, "
    "owner) VALUES (?,?,?,?,?,?,?,?,?)"
)
SCHED_COLS = "id, node_id, version, type, process_id, times, finished, expired, due, owner"
INSERT_STATE = f"INSERT INTO states({STATE_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
# A state is written only if it is still what the writer read (name and version). A node's run and
# parent never change, so the usual form leaves them out: naming root_id would make SQLite rewrite
# the node's entry in the states_root index (a page more in every commit). The long form is there
# for a caller that does change them.
CAS_STATE = (
    "UPDATE states SET name=?, version=?, loop=?, inner_loop=?, retry=?, skip=?, error_ignored=?, "
    "started=?, archived=? WHERE node_id=? AND name=? AND version=?"
)
CAS_STATE_MOVED = CAS_STATE.replace("SET ", "SET root_id=?, parent_id=?, ", 1)


_TYPES = {int(t): t for t in ScheduleType}  # a dict hit; calling the enum per row costs more


def state_record(row: Any) -> StateRecord:
    return StateRecord(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
        bool(row[8]), bool(row[9]), row[10], row[11], row[12],
    )  # fmt: skip


def proc_record(row: Any) -> TokenRecord:
    return TokenRecord(
        row[0], row[1], row[2], row[3], row[4], plain_loads(row[5]), row[6], row[7], row[8], row[9],
        row[10], row[6],
    )  # fmt: skip


def cached_proc_record(row: ProcRow) -> TokenRecord:
    """A fresh record (the caller's own, with its own stack list) from a cached ProcRow."""
    return TokenRecord(
        row[0], row[1], row[2], row[3], row[4], list(row[5]), row[6], row[7], row[8], row[9], row[10], row[6]
    )


def sched_record(row: Any) -> ScheduleRecord:
    return ScheduleRecord(
        row[0], row[1], row[2], _TYPES[row[3]], row[4], row[5], bool(row[6]), bool(row[7]), row[8], row[9]
    )


# a process row as the writer last wrote it: PROC_COLS, with the stack as a tuple
ProcRow = tuple[int, str, int | None, str, str | None, tuple[str, ...], str, int, str | None, str | None, int]
# a state row as the writer last wrote or read it: STATE_COLS; None: the node has no state
StateRow = tuple[str, str, str, str, str, int, int, int, bool, bool, float, float | None, float | None]
# a schedule row: SCHED_COLS
SchedRow = tuple[int, str, str, int, int, int, bool, bool, float | None, str | None]
# one pipeline's context rows: key -> (type, serialised value, code)
ContextRows = dict[str, tuple[int, bytes, str | None]]


class WriterCache:
    """Rows as the writer connection last wrote or read them (tokens, states, live schedules and
    whole pipeline contexts), so a step reads what its previous step wrote without a statement.

    Only the writer has one, and it is valid only while no other connection writes: the store
    clears it whenever it cannot vouch for it (a rollback, a commit by another connection or
    process, too many rows). Every write to these tables goes through this package's unit of
    work, which keeps it current.
    """

    __slots__ = ("context", "procs", "schedules", "states")

    def __init__(self) -> None:
        self.procs: dict[int, ProcRow] = {}
        self.states: dict[str, StateRow | None] = {}
        self.schedules: dict[int, SchedRow] = {}
        self.context: dict[str, ContextRows] = {}  # complete: every row of the pipeline

    def clear(self) -> None:
        self.procs.clear()
        self.states.clear()
        self.schedules.clear()
        self.context.clear()

    def size(self) -> int:
        return len(self.procs) + len(self.states) + len(self.schedules) + len(self.context)


def state_row(s: StateRecord) -> StateRow:
    return (s.node_id, s.root_id, s.parent_id, s.name, s.version, s.loop, s.inner_loop, s.retry,
            s.skip, s.error_ignored, s.created, s.started, s.archived)  # fmt: skip


def proc_row(p: TokenRecord) -> ProcRow:
    return (p.id, p.root_id, p.parent_id, p.current, p.destination, tuple(p.stack), p.status, p.pending,
            p.executing, p.owner, p.rev)  # fmt: skip


def sched_row(s: ScheduleRecord) -> SchedRow:
    return (s.id, s.node_id, s.version, int(s.type), s.process_id, s.times, s.finished, s.expired, s.due,
            s.owner)  # fmt: skip
