"""The runtime seam: what the engine needs from a store, a dispatcher and a clock.

The engine is written against these Protocols only; a backend (``runtime/sqlite``, the thread
dispatcher in ``runtime/threads.py``) implements them and translates its driver's errors into
rattan's at its boundary. Every backend passes the contract suites in ``rattan.testing.contract``.

Rules every implementation keeps:

* **Units of work are atomic and durable.** ``Store.unit(fn)`` runs ``fn`` in one transaction and
  returns only once it is committed (durably, at the store's configured level); if ``fn`` raises,
  nothing it wrote stays. ``Store.read(fn)`` sees committed data only.
* **Compare-and-set is the write primitive.** A state is written only if it still has the name
  and version the writer read (``put_state``); a token only if its ``rev`` is unchanged
  (``put_token``). Every conflict, a duplicate key included, raises ``ConflictError``; an
  unreachable or failing store raises ``BackendUnavailableError`` (retry later). Both leave the
  unit rolled back.
* **Work is leased.** Every row that stands for pending work (a ready token, a live schedule, a
  timer, a running rollback) names the engine process that owns it. ``lease`` renews an owner's
  lease and hands it the work of owners that are gone, each item to one claimer only.
* **Messages are data.** A dispatcher carries ``rattan.model.messages`` values, never callables,
  and delivers each to the ``handle`` it was started with, at least once.

The interface carries a version: ``Engine`` refuses a backend whose major version differs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, overload, runtime_checkable

from rattan.model.messages import Message
from rattan.model.records import (
    CallbackRecord,
    ContextEntry,
    ContextRow,
    DueWork,
    EventRecord,
    HistoryRecord,
    NewRun,
    OwnerRecord,
    RollbackJob,
    RollbackPlan,
    RollbackSnapshot,
    RunRecord,
    RunSummary,
    ScheduleRecord,
    StateRecord,
    TimerRecord,
    TokenRecord,
)

INTERFACE_VERSION = (1, 2)  # 1.1: Execute and Recover name their sender; 1.2: Reads.owners, due_work

T = TypeVar("T")
Wait = ScheduleRecord | CallbackRecord | TimerRecord


@dataclass(frozen=True, slots=True)
class NodeData:
    """What a node has stored: its execution data (None when it has none) and the static inputs a
    ``retry_node(data=...)`` put in place of the tree's (None when there are none)."""

    inputs: dict[str, Any] | None
    outputs: dict[str, Any] | None
    override: dict[str, Any] | None


RUNS_PER_QUERY = 1000  # the most runs one ``Reads.runs`` call returns (RunQuery.limit)


@dataclass(slots=True)
class RunQuery:
    """Which runs ``Reads.runs`` summarises; every field given narrows the result.

    ``state``: the root pipeline's state; ``has_failed_nodes``: whether some node of the run is
    FAILED now; ``created_after`` / ``created_before``: bounds on the creation time (seconds);
    ``root_ids``: only these runs. Newest first, ``offset`` runs skipped, at most ``limit``
    (1 to RUNS_PER_QUERY; a backend refuses other values with BadInputError).
    With ``finished_before``: only runs FINISHED or REVOKED before that time, the oldest finished
    first (what retention deletes)."""

    state: str | None = None
    has_failed_nodes: bool | None = None
    created_after: float | None = None
    created_before: float | None = None
    finished_before: float | None = None
    root_ids: Sequence[str] = ()
    limit: int = 50
    offset: int = 0


@dataclass(slots=True)
class ScheduleQuery:
    """Which schedules ``Reads.waits`` returns: the one with ``id``, or a node's (at ``version``);
    ``pending`` keeps live ones (neither finished nor expired). Oldest first."""

    id: int | None = None
    node_id: str | None = None
    version: str | None = None
    pending: bool = False


@dataclass(slots=True)
class CallbackQuery:
    """Which callbacks ``Reads.waits`` returns; every field given narrows the result. ``pending``
    keeps those not yet applied; ``unscheduled`` those whose node version has no schedule that
    takes callbacks (one that came while its node's ``execute`` still ran). Oldest first."""

    id: int | None = None
    node_id: str | None = None
    version: str | None = None
    idem_key: str | None = None
    pending: bool = False
    unscheduled: bool = False


class Reads(Protocol):
    """Committed data (``Store.read``); a unit of work reads through the same methods and sees its
    own writes."""

    def run(self, root_id: str) -> RunRecord | None:
        """The run of root pipeline ``root_id``."""
        ...

    def roots_of(self, node_ids: Sequence[str]) -> dict[str, str]:
        """node id -> root pipeline id, for those of ``node_ids`` that belong to a stored run."""
        ...

    def runs(self, query: RunQuery) -> list[RunSummary]:
        """Summaries of the runs ``query`` selects (see RunQuery)."""
        ...

    def states(self, node_ids: Sequence[str] = (), *, root_id: str | None = None) -> list[StateRecord]:
        """The states of ``node_ids`` (those that have one), or of every node of run ``root_id``
        in the order they were created."""
        ...

    def tokens(
        self, token_ids: Sequence[int] = (), *, root_id: str | None = None,
        statuses: Collection[str] | None = None,
    ) -> list[TokenRecord]:  # fmt: skip
        """The tokens ``token_ids``, or those of run ``root_id`` (with one of ``statuses``) by id;
        the caller owns the records it gets."""
        ...

    def node_data(self, node_id: str) -> NodeData:
        """A node's execution data and retry override."""
        ...

    def context(self, pipeline_id: str) -> dict[str, ContextEntry]:
        """One pipeline's context: key -> (type, value, code); the caller owns the values."""
        ...

    @overload
    def waits(self, query: ScheduleQuery) -> list[ScheduleRecord]: ...

    @overload
    def waits(self, query: CallbackQuery) -> list[CallbackRecord]: ...

    def waits(self, query: ScheduleQuery | CallbackQuery) -> list[ScheduleRecord] | list[CallbackRecord]:
        """Schedules or callbacks (see ScheduleQuery, CallbackQuery)."""
        ...

    def histories(self, node_id: str, loop: int = -1) -> list[HistoryRecord]:
        """The node's archived passes, oldest first (``loop`` -1: every loop)."""
        ...

    def logs(self, node_id: str, version: str | None) -> list[str]:
        """The log lines a node's service wrote (``version`` None: every pass)."""
        ...

    def events(self, after: int, root_id: str | None, limit: int) -> list[EventRecord]:
        """Events with ``id > after`` in commit order (a run's only when ``root_id`` is given).
        A consumer keeping the last id as its cursor never misses nor repeats an event, whatever
        the number of writers."""
        ...

    def owners(self) -> list[OwnerRecord]:
        """Every engine process that holds a lease (or gave one up and still has work), by id."""
        ...

    def due_work(self, now: float) -> DueWork:
        """How much work is pending at ``now`` (counts, whoever owns it)."""
        ...

    @property
    def rollback(self) -> RollbackRows:
        """The rollback extension's rows."""
        ...


class UnitOfWork(Reads, Protocol):
    """One write transaction. Writes are visible to this unit's reads at once and to everyone
    else when the unit commits."""

    def create_run(self, new: NewRun) -> int:
        """Store a new run: its tree, root state, node index, initial context and first token.
        Returns the token's id. A root or node id already used raises ConflictError."""
        ...

    def delete_run(self, root_id: str) -> None:
        """Delete every row of a run, extension rows included. Event ids already handed out are
        never handed out again."""
        ...

    def put_state(self, new: StateRecord, expect: StateRecord | None) -> None:
        """Insert ``new`` (``expect`` None) or replace the row that still has ``expect``'s name and
        version. A missing match or an existing row raises ConflictError."""
        ...

    def put_token(self, token: TokenRecord) -> int:
        """Insert a token (``id`` 0: an id is given and set on the record) or replace the row
        whose ``rev`` is still the record's (then ``rev`` grows by one); returns the id. A changed
        or missing row raises ConflictError."""
        ...

    def put_node_data(
        self, node_id: str, *, inputs: bytes | None = None, outputs: bytes | None = None,
        override: dict[str, Any] | None = None, logs: tuple[str, Sequence[str]] | None = None,
        history: StateRecord | None = None,
    ) -> None:  # fmt: skip
        """Change what a node has stored, in this order: ``history`` archives a pass (the state
        given, with the execution data stored now); ``outputs`` (JSON) replaces the outputs and
        ``inputs`` (JSON) the inputs (inputs None: kept, or ``{}`` for a node without data);
        ``override`` replaces the retry override; ``logs`` = (version, lines) appends log lines."""
        ...

    def put_context(self, rows: Sequence[ContextRow], *, existing_only: bool = False) -> None:
        """Insert or replace context variables (``existing_only``: change only keys that exist)."""
        ...

    def put_wait(self, wait: Wait) -> int:
        """Insert (``id`` 0: an id is given and set on the record) or update a schedule, callback
        or timer; returns its id. A callback's second use of an idempotency key raises
        ConflictError. Updates change a schedule's progress (times, finished, expired, due,
        owner) and a callback's ``applied``."""
        ...

    def take_timer(self, timer_id: int) -> TimerRecord | None:
        """Delete a timer and return it: the one unit that gets it fires it."""
        ...

    def append_events(self, root_id: str, entries: Sequence[list[Any]], created: float) -> None:
        """Append a run's events, in order: each entry is ``[type, node_id]`` (a node event whose
        data is only its root and node) or ``[type, node_id, data]``."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested transaction: what the ``with`` body wrote is undone if it raises, and the
        unit goes on. Driver errors raised inside leave it as ConflictError or
        BackendUnavailableError."""
        ...

    def lease(
        self, owner: OwnerRecord, now: float, is_dead: Callable[[OwnerRecord], bool],
        tasks: Collection[str] = (),
    ) -> list[tuple[float, Message]]:  # fmt: skip
        """Renew ``owner``'s lease (until ``owner.expires``; 0 gives it up) and claim for it the
        work of every owner that ``is_dead`` or whose lease ran out before ``now``, and work with
        no owner: ready tokens (Advance; Recover when ``executing`` is set), live schedules
        (Poll at their due time, Callback for their pending callbacks), timers (FireTimer at
        their due time) and, when ``"rollback.walk"`` is in ``tasks``, running rollbacks. Also returns
        the pending callbacks of schedules ``owner`` holds. Each item goes to one claimer."""
        ...


class RollbackRows(Protocol):
    """The rollback extension's rows: the tokens of each run, a snapshot of every
    finished service-activity pass, reservations, and the walk of each rollback."""

    def put_tokens(self, root_id: str, tokens: dict[str, str]) -> None: ...

    def tokens(self, root_id: str) -> dict[str, str] | None: ...

    def add_snapshot(self, snapshot: RollbackSnapshot) -> None: ...

    def snapshots(self, root_id: str, node_id: str | None = None) -> list[RollbackSnapshot]:
        """Snapshots not rolled back yet, newest first (every node's when ``node_id`` is None)."""
        ...

    def snapshot_done(self, snapshot_id: int | None, root_id: str) -> None:
        """Mark one snapshot rolled back, or (``snapshot_id`` None) drop every snapshot of the run."""
        ...

    def put_plan(self, plan: RollbackPlan) -> None: ...

    def plans(self, root_id: str, start_node_id: str | None = None) -> list[RollbackPlan]:
        """Live reservations, oldest first."""
        ...

    def expire_plans(self, root_id: str, start_node_id: str) -> None: ...

    def put_job(self, job: RollbackJob) -> None: ...

    def job(self, root_id: str) -> RollbackJob | None: ...

    def clean_nodes(self, node_ids: Sequence[str]) -> None:
        """Delete the engine's rows of rolled-back nodes: states, schedules, callbacks, logs,
        histories, execution data and retry overrides."""
        ...


class Store(Protocol):
    """A durable store. ``url`` names it; ``interface_version`` is the seam version it implements."""

    interface_version: tuple[int, int]
    url: str

    def unit(self, fn: Callable[[UnitOfWork], T]) -> T:
        """Run ``fn`` in one write transaction; return once it is committed."""
        ...

    def read(self, fn: Callable[[Reads], T]) -> T:
        """Run ``fn`` on committed data."""
        ...

    def migrate(self) -> int:
        """Bring the schema up to date (safe while other processes use the store); returns its
        version. A store newer than this rattan raises BackendUnavailableError."""
        ...

    def waiting(self) -> bool:
        """True when another caller of this process waits to write: a long unit of work may stop
        early to let it in (a hint; False when unknown)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Dispatcher(Protocol):
    """A transport for messages. ``shares_memory``: handle() runs in this process, so the engine
    may keep what it already has in memory for a message it sent. ``pending``: how many messages
    wait to be handled here (0 when unknown), a hint that more work is about to arrive.

    A dispatcher with two lanes (``runtime/celery/local.py``: this process first, a broker for the
    rest) tells the engine per message instead: ``send`` and ``send_at`` return True when the very
    object sent will reach ``handle`` in this process, False when it will not (None: as
    ``shares_memory`` says); an optional ``acknowledges()`` is True while the calling thread
    handles a message its transport acknowledges once ``handle`` returns (its work must be
    committed by then), and its presence says that the dispatcher keeps other messages in this
    process."""

    interface_version: tuple[int, int]
    shares_memory: bool

    @property
    def pending(self) -> int: ...

    def start(self, handle: Callable[[Message], None]) -> None:
        """Begin delivering messages to ``handle``."""
        ...

    def send(self, msg: Message) -> bool | None:
        """Deliver ``msg`` soon; True when this very object will reach ``handle`` in this process."""
        ...

    def send_at(self, due: float, msg: Message) -> bool | None:
        """Deliver ``msg`` at ``due`` (the clock's time) or soon after; returns as ``send``."""
        ...

    def stop(self, timeout: float) -> None:
        """Let running and queued work finish (up to ``timeout`` seconds), then stop."""
        ...

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no message is queued or being handled (delayed ones may remain)."""
        ...


class Clock(Protocol):
    """Time as the engine sees it: stored times, due times, leases. Tests use a fake one."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep_until(self, when: float, wake: threading.Event) -> bool:
        """Block until the clock reaches ``when`` or ``wake`` is set; True when woken."""
        ...


__all__ = [
    "INTERFACE_VERSION",
    "Clock",
    "Dispatcher",
    "NodeData",
    "Reads",
    "RollbackRows",
    "Store",
    "UnitOfWork",
    "CallbackQuery",
    "ScheduleQuery",
    "Wait",
]
