"""What one unit of work collects: its transaction and the effects to apply after it commits."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rattan import states
from rattan.engine.records import ProcessRecord, StateRecord
from rattan.ids import unique_id
from rattan.runtime.queries import dumps
from rattan.signals import EVENT_SCHEMA_VERSION, EVENTS_PER_ROW, post_set_state

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.runtime.queries import Tx
    from rattan.spec.model import Node

# process (token) statuses
P_READY = "ready"  # needs a worker to advance it from ``current``
P_SLEEP = "sleep"  # waiting on a schedule (poll / callback) at ``current``
P_FAILED = "failed"  # parked on a failed node, waiting for an operator
P_SUSPENDED = "suspended"  # parked because a pipeline on its stack (or the node) is paused
P_WAITING = "waiting"  # a parent waiting for its forked children
P_DONE = "done"


class Effects:
    """What to do once the unit of work has committed.

    A plain class with slots: one is made per token per round, and a dataclass with nine
    ``default_factory`` fields costs several times as much to create.
    """

    __slots__ = (
        "callbacks",
        "calls",
        "cancels",
        "dispatch",
        "events",
        "hooks",
        "polls",
        "state_changes",
        "timers",
    )  # fmt: skip

    def __init__(self) -> None:
        self.dispatch: list[int] = []
        self.polls: list[tuple[float, int]] = []
        self.callbacks: list[int] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.cancels: list[tuple[str, str]] = []  # (node id, version) whose job to cancel
        # node hooks: (node id, hook name, save data changes, callback id or None)
        self.hooks: list[tuple[str, str, bool, int | None]] = []
        # user code to run on a worker after the commit (timer actions, custom timeout handlers)
        self.calls: list[Callable[[], None]] = []
        # durable timers armed in this step: (due, timer id)
        self.timers: list[tuple[float, int]] = []
        # committed state writes, for post_set_state receivers
        self.state_changes: list[dict[str, Any]] = []


class Step:
    """A transaction plus the after-commit effects of one unit of work."""

    def __init__(
        self, core: EngineCore, tx: Tx, log_sink: list[tuple[str, dict[str, Any]]] | None = None
    ) -> None:
        self.core = core
        self.tx = tx
        self.fx = Effects()
        self.now = time.time()
        # process rows changed in this step, written once by flush(): a token's row changes
        # several times while it crosses nodes, and each UPDATE costs a statement
        self._dirty: dict[int, ProcessRecord] = {}
        self._log: list[tuple[str, dict[str, Any]]] = []
        # when set, events are handed to the batch that owns this step and logged once for all
        self._sink = log_sink
        # set by an in-transaction listener to stop the token after the node it just finished
        self.halt = False
        # a POLL node's first poll, run by the worker right after this step commits
        self.poll_now: Any = None

    def save_process(self, proc: ProcessRecord) -> None:
        self._dirty[proc.id] = proc

    def flush(self) -> None:
        for proc in self._dirty.values():
            self.tx.save_process(proc)
        self._dirty.clear()
        if self._log:
            if self._sink is not None:
                self._sink.extend(self._log)
                self._log.clear()
            else:
                self._write_log()

    def _write_log(self, entries: list[tuple[str, dict[str, Any]]] | None = None) -> None:
        """Append events to the durable log: one row per pipeline per unit of work holding the
        events in order (a node pass emits several; one row keeps the log off the hot path)."""
        by_root: dict[str, list[list[Any]]] = {}
        for event_type, data in self._log if entries is None else entries:
            node_id = data.get("node_id")
            if len(data) == 2 and node_id is not None and (root := data.get("root_pipeline_id")):
                # most node events carry nothing but their root and node: the row's root and the
                # entry's node id say it all (expand_event_rows rebuilds the payload)
                by_root.setdefault(root, []).append([event_type, node_id])
            else:
                by_root.setdefault(self._root_of(data), []).append([event_type, node_id, data])
        if entries is None:
            self._log.clear()
        rows = []
        for root, events in by_root.items():
            for i in range(0, len(events), EVENTS_PER_ROW):
                chunk = events[i : i + EVENTS_PER_ROW]
                try:
                    blob = dumps(chunk)
                except (TypeError, ValueError):
                    blob = dumps([[e[0], e[1], {k: repr(v) for k, v in e[2].items()}] if len(e) > 2 else e
                                  for e in chunk])  # fmt: skip
                rows.append((root, chunk[0][1], chunk[0][0], blob, EVENT_SCHEMA_VERSION, self.now))
        self.tx.add_events(rows)

    def _root_of(self, data: dict[str, Any]) -> str:
        root = data.get("root_pipeline_id") or data.get("root_id")
        pipeline = data.get("pipeline")
        if not root and isinstance(pipeline, dict):
            root = pipeline.get("id")
        if not root:
            target = data.get("pipeline_id") or data.get("node_id")
            root = (self.tx.root_of_node(target) or target) if target else ""
        return str(root)

    def event(self, event_type: str, _log: dict[str, Any] | None = None, **data: Any) -> None:
        """Record an event: logged durably in this transaction (``_log`` replaces the payload in
        the log when given), signalled after the commit, and shown now to the engine's
        in-transaction listeners (extensions such as rollback)."""
        self.fx.events.append((event_type, data))
        self._log.append((event_type, data if _log is None else _log))
        for listener in self.core.tx_listeners:
            listener(self, event_type, data)

    def hook(self, node: Node, name: str, save: bool = True, callback_id: int | None = None) -> None:
        """Call a service hook after the commit (SPEC 9); ``save`` keeps its data changes.
        Only services that opt in with ``__need_run_hook__`` cost anything."""
        if self.core.wants_hooks(node):
            self.fx.hooks.append((node.id, name, save, callback_id))

    # -- state writes --------------------------------------------------------------------------
    def write_state(self, new: StateRecord, old: StateRecord | None, signal: bool = True) -> None:
        """Insert or compare-and-set a state, enforcing the transition table."""
        if old is None:
            self.tx.insert_state(new)
        else:
            if old.name != new.name:
                states.check_transition(new.node_id, old.name, new.name)
            self.tx.cas_state(new, old.name, old.version)
        if signal and post_set_state.has_receivers():
            self.fx.state_changes.append(
                {"node_id": new.node_id, "to_state": new.name, "version": new.version,
                 "root_id": new.root_id, "parent_id": new.parent_id, "loop": new.loop}
            )  # fmt: skip

    def new_state(self, node_id: str, root_id: str, parent_id: str, name: str) -> StateRecord:
        return StateRecord(
            node_id, root_id, parent_id, name, unique_id("v"), 1, 1, 0, False, False, self.now, self.now,
            self.now if name in states.ARCHIVED_STATES else None,
        )  # fmt: skip

    def finish_simple(
        self, node_id: str, proc: ProcessRecord, old: StateRecord | None, entered: StateRecord
    ) -> None:
        """Write FINISHED for a node handled without user code (events, gateways)."""
        entered.name = states.FINISHED
        entered.archived = self.now
        self.write_state(entered, old)

    def fail_node(
        self, proc: ProcessRecord, state: StateRecord, old: StateRecord | None, ex_data: str,
        inputs: dict[str, Any] | None = None, merge_outputs: bool = True,
    ) -> None:  # fmt: skip
        """Mark ``state`` FAILED with ``ex_data`` and park the process on it."""
        outputs: dict[str, Any] = {}
        if merge_outputs:
            prev = self.tx.get_exec_data(state.node_id)
            if prev is not None and old is not None and prev_is_current(old, state):
                outputs = prev.outputs
                if inputs is None:
                    inputs = prev.inputs
        outputs["ex_data"] = ex_data
        state.name = states.FAILED
        state.archived = self.now
        self.write_state(state, old)
        self.tx.put_exec_data(state.node_id, dumps(inputs or {}), dumps(outputs))
        proc.status = P_FAILED
        proc.executing = None
        self.save_process(proc)

    def archive_history(self, state: StateRecord) -> None:
        self.tx.add_history(state, self.tx.get_exec_data(state.node_id))


def prev_is_current(old: StateRecord, new: StateRecord) -> bool:
    return old.version == new.version


def root_revoked(step: Step, proc: ProcessRecord) -> bool:
    """True when the token's root pipeline has been revoked (one indexed read)."""
    return step.tx.state_names([proc.root_id]).get(proc.root_id) == states.REVOKED
