"""What one unit of work collects: its transaction and the effects to apply after it commits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rattan.ids import unique_id
from rattan.model import states
from rattan.model.codec import dumps
from rattan.model.messages import Advance, Message
from rattan.model.records import ContextRow, StateRecord, TokenRecord
from rattan.model.states import TOKEN_REACH, TokenStatus, check_token_transition
from rattan.signals import post_set_state

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.runtime.interface import UnitOfWork
    from rattan.spec.model import Node

# a run's events gathered in one unit (or one round): (type, data), or (type, root id, node id)
# for a node event whose data is its root and node only (most events, kept without a dict)
LogSink = list[tuple[str, dict[str, Any]] | tuple[str, str, str]]


class Effects:
    """What to do once the unit of work has committed.

    A plain class with slots: one is made per token per round, and a dataclass with many
    ``default_factory`` fields costs several times as much to create.
    """

    __slots__ = ("cancels", "events", "hooks", "later", "sends", "state_changes")

    def __init__(self) -> None:
        # messages for a worker (tokens to advance, callbacks to apply, tasks): sent at once
        self.sends: list[Message] = []
        # messages due later (polls, timers): (due, message)
        self.later: list[tuple[float, Message]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.cancels: list[tuple[str, str]] = []  # (node id, version) whose job to cancel
        # node hooks: (node id, hook name, save data changes, callback id or None)
        self.hooks: list[tuple[str, str, bool, int | None]] = []
        # committed state writes, for post_set_state receivers
        self.state_changes: list[dict[str, Any]] = []


class Step:
    """A transaction plus the after-commit effects of one unit of work."""

    def __init__(self, core: EngineCore, tx: UnitOfWork, log_sink: LogSink | None = None) -> None:
        self.core = core
        self.tx = tx
        self.fx = Effects()
        self.now = core.now()
        # token rows changed in this step, written once by flush(): a token's row changes
        # several times while it crosses nodes, and each write costs a statement
        self._dirty: dict[int, TokenRecord] = {}
        self._log: LogSink = []
        # when set, events are handed to the batch that owns this step and logged once for all
        self._sink = log_sink
        # set by an in-transaction listener to stop the token after the node it just finished
        self.halt = False
        # a POLL node's first poll, run by the worker right after this step commits
        self.poll_now: Any = None

    # -- reads ---------------------------------------------------------------------------------
    def state(self, node_id: str) -> StateRecord | None:
        found = self.tx.states([node_id])
        return found[0] if found else None

    def token(self, token_id: int) -> TokenRecord | None:
        """A token as this step knows it: changed and not yet written, or as stored."""
        dirty = self._dirty.get(token_id)
        if dirty is not None:
            return dirty
        found = self.tx.tokens([token_id])
        return found[0] if found else None

    def tokens_at(self, node_id: str) -> list[TokenRecord]:
        """Live tokens whose current node is ``node_id`` (found through the node's run)."""
        root = self.tx.roots_of([node_id]).get(node_id)
        if root is None:
            return []
        # a token this step changed already is seen as changed
        tokens = [self._dirty.get(t.id, t) for t in self.tx.tokens(root_id=root)]
        return [t for t in tokens if t.current == node_id and t.status != TokenStatus.DONE]

    # -- token writes --------------------------------------------------------------------------
    def new_token(
        self, root_id: str, parent_id: int | None, current: str, destination: str | None, stack: list[str]
    ) -> TokenRecord:
        token = TokenRecord(
            0, root_id, parent_id, current, destination, stack, TokenStatus.READY, owner=self.core.owner_id
        )
        self.tx.put_token(token)
        return token

    def save_process(self, proc: TokenRecord) -> None:
        self._dirty[proc.id] = proc

    def wake(self, proc: TokenRecord, current: str | None = None) -> None:
        """Make a parked token ready (at ``current``), owned by this engine, and dispatch it."""
        if current is not None:
            proc.current = current
        proc.status = TokenStatus.READY
        proc.executing = None
        proc.owner = self.core.owner_id
        self.save_process(proc)
        self.fx.sends.append(Advance(proc.id))

    def flush(self) -> None:
        if self._dirty:
            put = self.tx.put_token
            for proc in self._dirty.values():
                status = proc.status
                if status != proc.stored_status and status not in TOKEN_REACH.get(proc.stored_status, ()):  # type: ignore[arg-type]
                    check_token_transition(proc.id, proc.stored_status, status)  # raises, naming it
                put(proc)
            self._dirty.clear()
        if self._log:
            if self._sink is not None:
                self._sink.extend(self._log)
                self._log.clear()
            else:
                write_log(self, self._log)
                self._log.clear()

    def event(self, event_type: str, _log: dict[str, Any] | None = None, **data: Any) -> None:
        """Record an event: logged durably in this transaction (``_log`` replaces the payload in
        the log when given), signalled after the commit, and shown now to the engine's
        in-transaction listeners (extensions such as rollback)."""
        core = self.core
        if core.listeners:  # nobody listening after the commit (no signals, no rollback): skip
            self.fx.events.append((event_type, data))
        self._log.append((event_type, data if _log is None else _log))
        if core.tx_listeners:
            for listener in core.tx_listeners:
                listener(self, event_type, data)

    def node_event(self, event_type: str, root_id: str, node_id: str) -> None:
        """``event(event_type, root_pipeline_id=root_id, node_id=node_id)``, the shape of most
        events: without a listener to show it to, it is only logged, and no dict is built."""
        core = self.core
        if core.listeners or core.tx_listeners:
            self.event(event_type, root_pipeline_id=root_id, node_id=node_id)
        else:
            self._log.append((event_type, root_id, node_id))

    def hook(self, node: Node, name: str, save: bool = True, callback_id: int | None = None) -> None:
        """Call a service hook after the commit; ``save`` keeps its data changes.
        Only services that opt in with ``__need_run_hook__`` cost anything."""
        if self.core.services.wants_hooks(node):
            self.fx.hooks.append((node.id, name, save, callback_id))

    # -- state writes --------------------------------------------------------------------------
    def write_state(self, new: StateRecord, old: StateRecord | None, signal: bool = True) -> None:
        """Insert or compare-and-set a state, enforcing the transition table."""
        if old is not None and old.name != new.name:
            states.check_transition(new.node_id, old.name, new.name)
        self.tx.put_state(new, old)
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

    def finish_simple(self, old: StateRecord | None, entered: StateRecord) -> None:
        """Write FINISHED for a node handled without user code (events, gateways)."""
        entered.name = states.FINISHED
        entered.archived = self.now
        self.write_state(entered, old)

    def fail_node(
        self, proc: TokenRecord, state: StateRecord, old: StateRecord | None, ex_data: str,
        inputs: dict[str, Any] | None = None, merge_outputs: bool = True,
    ) -> None:  # fmt: skip
        """Mark ``state`` FAILED with ``ex_data`` and park the token on it."""
        outputs: dict[str, Any] = {}
        if merge_outputs and old is not None and old.version == state.version:
            prev = self.tx.node_data(state.node_id)
            if prev.outputs is not None:
                outputs = prev.outputs
                if inputs is None:
                    inputs = prev.inputs
        outputs["ex_data"] = ex_data
        state.name = states.FAILED
        state.archived = self.now
        self.write_state(state, old)
        self.tx.put_node_data(state.node_id, inputs=dumps(inputs or {}), outputs=dumps(outputs))
        proc.status = TokenStatus.FAILED
        proc.executing = None
        self.save_process(proc)

    def archive_history(self, state: StateRecord) -> None:
        self.tx.put_node_data(state.node_id, history=state)

    def put_context(self, pipeline_id: str, values: dict[str, Any], type_: int) -> None:
        """Write variables of one pipeline's context, all of one type."""
        if values:
            self.tx.put_context([ContextRow(pipeline_id, k, type_, v) for k, v in values.items()])


def write_log(step: Step, entries: LogSink) -> None:
    """Append events to the durable log: each run's events of a unit (or round) in one call,
    in order (a node pass emits several; the store keeps them compactly)."""
    by_root: dict[str, list[list[Any]]] = {}
    for entry in entries:
        if len(entry) == 3:  # node_event: (type, root, node)
            by_root.setdefault(entry[1], []).append([entry[0], entry[2]])
            continue
        event_type, data = entry
        node_id = data.get("node_id")
        if len(data) == 2 and node_id is not None and (root := data.get("root_pipeline_id")):
            # most node events carry nothing but their root and node: the entry's root and node
            # id say it all (the store's reader rebuilds the data)
            by_root.setdefault(root, []).append([event_type, node_id])
        else:
            by_root.setdefault(_root_of(step, data), []).append([event_type, node_id, data])
    for root, events in by_root.items():
        step.tx.append_events(root, events, step.now)


def _root_of(step: Step, data: dict[str, Any]) -> str:
    root = data.get("root_pipeline_id") or data.get("root_id")
    pipeline = data.get("pipeline")
    if not root and isinstance(pipeline, dict):
        root = pipeline.get("id")
    if not root:
        target = data.get("pipeline_id") or data.get("node_id")
        root = (step.tx.roots_of([target]).get(target) or target) if target else ""
    return str(root)


def root_revoked(step: Step, proc: TokenRecord) -> bool:
    """True when the token's root pipeline has been revoked (one indexed read)."""
    root = step.state(proc.root_id)
    return root is not None and root.name == states.REVOKED
