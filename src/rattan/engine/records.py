"""Run-time records: plain data read from and written to the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def to_datetime(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


@dataclass(slots=True)
class StateRecord:
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
            self.node_id,
            self.root_id,
            self.parent_id,
            self.name,
            self.version,
            self.loop,
            self.inner_loop,
            self.retry,
            self.skip,
            self.error_ignored,
            self.created,
            self.started,
            self.archived,
        )

    @property
    def created_time(self) -> datetime | None:
        return to_datetime(self.created)

    @property
    def started_time(self) -> datetime | None:
        return to_datetime(self.started)

    @property
    def archived_time(self) -> datetime | None:
        return to_datetime(self.archived)


@dataclass(slots=True)
class ProcessRecord:
    id: int
    root_id: str
    parent_id: int | None
    current: str
    destination: str | None
    stack: list[str]
    status: str
    pending: int = 0
    executing: str | None = None
    # the status as read from the store: a save that keeps it leaves the (root_id, status) index
    # entry alone, one page fewer in the commit
    stored_status: str | None = None

    @property
    def top_pipeline_id(self) -> str:
        return self.stack[-1]


@dataclass(slots=True)
class ScheduleRecord:
    id: int
    node_id: str
    version: str
    type: int
    process_id: int
    times: int = 0
    finished: bool = False
    expired: bool = False
    due: float | None = None


@dataclass(slots=True)
class CallbackRecord:
    id: int
    node_id: str
    version: str
    data: Any
    idem_key: str | None = None
    applied: bool = False


@dataclass(slots=True)
class HistoryRecord:
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


@dataclass(slots=True)
class ExecutionData:
    """A node's execution data (SPEC 7.6); ``data["inputs"]`` works too, like the API's dict."""

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
