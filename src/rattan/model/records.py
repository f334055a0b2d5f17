"""Run-time records: plain data that the engine reads from and writes to a store.

Every layer below the engine speaks these types: the store seam (``rattan.runtime.interface``)
takes and returns them, and each backend turns them into its own rows. Times are seconds since
the epoch (UTC) as floats; ``*_time`` properties give them as datetimes, the shape bamboo uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

# a context row as the engine sees it: (type number, value, custom type code)
ContextEntry = tuple[int, Any, str | None]


def to_datetime(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class _Times:
    """``started_time`` / ``archived_time``: a record's times as datetimes (bamboo's shape)."""

    __slots__ = ()
    started: float | None
    archived: float | None

    @property
    def started_time(self) -> datetime | None:
        return to_datetime(self.started)

    @property
    def archived_time(self) -> datetime | None:
        return to_datetime(self.archived)


@dataclass(slots=True)
class StateRecord(_Times):
    """A node's state: one row per node of a run, written by compare-and-set on
    ``version`` (a fresh random id each time the node is entered, retried, skipped or failed)."""

    node_id: str
    root_id: str
    parent_id: str
    name: str
    version: str
    loop: int = 1
    inner_loop: int = 1
    retry: int = 0
    skip: bool = False
    error_ignored: bool = False
    created: float = 0.0
    started: float | None = None
    archived: float | None = None

    def copy(self) -> StateRecord:
        return StateRecord(
            self.node_id, self.root_id, self.parent_id, self.name, self.version, self.loop,
            self.inner_loop, self.retry, self.skip, self.error_ignored, self.created, self.started,
            self.archived,
        )  # fmt: skip

    @property
    def created_time(self) -> datetime | None:
        return to_datetime(self.created)


@dataclass(slots=True)
class TokenRecord:
    """An execution token: what walks the graph (a run starts with one; a parallel gateway forks
    one child per branch). ``status`` is a ``TokenStatus``; ``executing`` is the node version
    whose ``execute`` is running; ``owner`` is the engine process in charge of it (None: any
    engine may claim it); ``rev`` counts writes, the compare-and-set key of the row."""

    id: int
    root_id: str
    parent_id: int | None
    current: str
    destination: str | None
    stack: list[str]
    status: str
    pending: int = 0
    executing: str | None = None
    owner: str | None = None
    rev: int = 0
    # the status as read from the store: a save that keeps it leaves the status index alone
    # (one page fewer in the commit), and it is what the transition table is checked against
    stored_status: str | None = None

    @property
    def top_pipeline_id(self) -> str:
        return self.stack[-1]


@dataclass(slots=True)
class RunRecord:
    """One run of a root pipeline: the validated tree and what ``run_pipeline`` was given."""

    root_id: str
    tree: dict[str, Any]
    root_data: Any
    options: dict[str, Any]
    created: float = 0.0


@dataclass(slots=True)
class RunSummary(_Times):
    """What a list of runs shows of one: the root pipeline's state and times, how many of its
    nodes (subprocesses' included, the root excluded) stand in each state, the nodes FAILED now,
    and whether the engine has work of the run it can do by itself (a token to advance, an
    ``execute`` running, a poll or timer armed, a callback not yet applied). A run with failed
    nodes that is not ``busy`` waits for an operator (or an outside callback)."""

    root_id: str
    name: str
    created: float
    started: float | None
    archived: float | None
    counts: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    busy: bool = False

    @property
    def created_time(self) -> datetime | None:
        return to_datetime(self.created)


@dataclass(slots=True)
class NewRun:
    """Everything ``run_pipeline`` stores in one go: the run, its root state, the index of its
    node ids, its initial context and its first token."""

    root_id: str
    tree_json: bytes  # the validated tree, serialised once
    root_data: Any
    options: dict[str, Any]
    created: float
    node_ids: list[str]  # every node of the run, the root pipeline's id first
    pipeline_ids: list[str]  # the root pipeline and every subprocess: the contexts of the run
    context: list[ContextRow]
    root_state: StateRecord
    first_token: TokenRecord


@dataclass(slots=True)
class ContextRow:
    """One variable of one pipeline's context (``type`` is a ``ContextValueType`` number)."""

    pipeline_id: str
    key: str
    type: int
    value: Any
    code: str | None = None


@dataclass(slots=True)
class ExecutionData:
    """A node's execution data; ``data["inputs"]`` works too, like the API's dict."""

    inputs: dict[str, Any]
    outputs: dict[str, Any]

    def __getitem__(self, key: str) -> dict[str, Any]:
        if key == "inputs":
            return self.inputs
        if key == "outputs":
            return self.outputs
        raise KeyError(key)

    def as_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "outputs": self.outputs}


class ScheduleType(IntEnum):
    """How a service that needs scheduling is scheduled (stored values are bamboo's)."""

    CALLBACK = 1
    MULTIPLE_CALLBACK = 2
    POLL = 3


@dataclass(slots=True)
class ScheduleRecord:
    """The wait of a service activity after ``execute`` (a poll or a callback wait). ``due`` is
    when the next poll runs (None: not polling); ``owner`` is the engine whose timer holds it."""

    id: int
    node_id: str
    version: str
    type: ScheduleType
    process_id: int
    times: int = 0
    finished: bool = False
    expired: bool = False
    due: float | None = None
    owner: str | None = None
    # not stored: set by the engine's reads, True while the reading process runs a poll or applies
    # a callback of this schedule (bamboo's schedule lock, which rattan keeps in memory)
    scheduling: bool = False

    @property
    def schedule_times(self) -> int:
        """bamboo's name for ``times``: how many polls or callbacks ran."""
        return self.times


# callback row states: waiting to be applied, applied, refused (stale or no longer waiting)
CALLBACK_PENDING = 0
CALLBACK_APPLIED = 1
CALLBACK_REFUSED = 2


@dataclass(slots=True)
class CallbackRecord:
    """One callback in the durable inbox; ``applied`` is one of the CALLBACK_* values."""

    id: int
    node_id: str
    version: str
    data: Any
    idem_key: str | None = None
    applied: int = CALLBACK_PENDING
    created: float = 0.0


# the kinds of timer: which state of its node version each acts on when it fires
KIND_TIMEOUT = "timeout"  # RUNNING: the node's timeout action
KIND_TIMER_EVENT = "timer_event"  # RUNNING: a timer boundary event
KIND_RETRY = "auto_retry"  # FAILED: an automatic retry
KIND_SKIP = "auto_skip"  # FAILED: an automatic skip
TIMERS_ON_RUNNING = (KIND_TIMEOUT, KIND_TIMER_EVENT)
TIMERS_ON_FAILED = (KIND_RETRY, KIND_SKIP)


@dataclass(slots=True)
class TimerRecord:
    """A durable timer (node timeout, timer boundary event, automatic retry or skip) armed for
    one node version: once the node has moved on, firing it does nothing."""

    id: int
    kind: str
    node_id: str
    version: str
    due: float
    payload: dict[str, Any] = field(default_factory=dict)
    owner: str | None = None


@dataclass(slots=True)
class HistoryRecord(_Times):
    """One finished pass of a node, kept when the node is entered again (retry, loop, skip)."""

    id: int
    node_id: str
    loop: int
    retry: int
    skip: bool
    version: str
    started: float | None
    archived: float | None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


EVENT_SCHEMA_VERSION = 1  # the shape of an event's data in the durable log


@dataclass(slots=True)
class EventRecord:
    """One event of the durable log; ``id`` increases in commit order (the consumer's cursor)."""

    id: int
    root_id: str
    node_id: str | None
    event_type: str
    data: dict[str, Any]
    schema_version: int
    created: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "root_id": self.root_id, "node_id": self.node_id,
            "event_type": self.event_type, "data": self.data, "schema_version": self.schema_version,
            "created_time": to_datetime(self.created),
        }  # fmt: skip


@dataclass(slots=True)
class OwnerRecord:
    """An engine process that holds work: its lease runs until ``expires``. ``host`` and ``pid``
    let an engine on the same machine see at once that a crashed owner is gone."""

    id: str
    host: str
    pid: int
    pid_started: str | None
    expires: float


@dataclass(frozen=True, slots=True)
class DueWork:
    """Pending work in a store at a moment, whoever owns it: for operators (metrics, doctor)."""

    tokens_ready: int = 0  # tokens to advance
    executes_running: int = 0  # ready tokens whose activity's execute() runs (or ran when its owner died)
    polls_due: int = 0  # live polls whose next step is due
    timers_due: int = 0  # timers (timeouts, retries, timer events) that are due
    callbacks_pending: int = 0  # callbacks stored and not yet applied


# the rollback extension's rows ---------------------------------------------------------------
ROLLBACK_JOB_RUNNING = "running"
ROLLBACK_JOB_FAILED = "failed"
ROLLBACK_JOB_DONE = "done"


@dataclass(slots=True)
class RollbackSnapshot:
    """What a finished pass of a service activity gives its ``rollback()``."""

    id: int
    root_id: str
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
class RollbackPlan:
    """A reservation: roll back to ``target_node_id`` once ``start_node_id`` finishes."""

    id: int
    root_id: str
    start_node_id: str
    target_node_id: str
    mode: str
    options: dict[str, Any]


@dataclass(slots=True)
class RollbackJob:
    """The rollback of one pipeline: its walk, which nodes to clean, and how far it got."""

    root_id: str
    start_node_id: str
    target_node_id: str
    mode: str
    process_id: int
    walk: list[str]
    clean: list[str]
    skip: list[str]
    status: str
    retry_node: str | None = None
    retry_data: Any = None
    owner: str | None = None
