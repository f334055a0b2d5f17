"""EngineCore: what every part of the engine reaches (the store, the dispatcher, the clock, the
settings, components and run plans), and the one way state changes: a unit of work, whose
effects are applied only once it is committed.

The pieces with a job of their own live beside it: ``plans`` (run plans in memory),
``services`` (user code of components), ``worker`` (messages and rounds), ``sweep`` (leases and
the recovery of work whose owner is gone).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from rattan import signals
from rattan.components import Registry
from rattan.engine import policies
from rattan.engine.handoff import Handoffs, TrackedDispatcher
from rattan.engine.plans import Plans
from rattan.engine.services import Services
from rattan.engine.step import Effects, Step
from rattan.model.messages import Callback, Message
from rattan.runtime.clock import SystemClock

if TYPE_CHECKING:
    from rattan.runtime.interface import Clock, Dispatcher, Store, UnitOfWork
    from rattan.settings import Settings

log = logging.getLogger("rattan.engine")
T = TypeVar("T")


class EngineCore:
    def __init__(
        self, store: Store, dispatcher: Dispatcher, settings: Settings, registry: Registry, clock: Clock
    ) -> None:
        self.store = store
        self.settings = settings
        # across processes, what is sent is noted so that a message lost by the transport while
        # this engine lives is sent again (engine/handoff.py)
        self.handoffs: Handoffs | None = None
        self.dispatcher: Dispatcher = dispatcher
        if not getattr(dispatcher, "shares_memory", True):
            self.handoffs = Handoffs(self)
            self.dispatcher = TrackedDispatcher(dispatcher, self.handoffs)
        self.clock = clock
        # the time a unit of work stamps on what it writes: time.time itself for the wall clock
        # (two units per node call it)
        self.now: Callable[[], float] = time.time if type(clock) is SystemClock else clock.now
        self.services = Services(self, registry)
        self.plans = Plans(store, self.services.sink_types)
        # the engine process that owns the work this engine writes (None: it runs no workers, so
        # any running engine may claim it); set by the sweeper when the engine starts
        self.owner_id: str | None = None
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        # called inside the transaction of every Step.event: (step, event_type, data)
        self.tx_listeners: list[Callable[[Step, str, dict[str, Any]], None]] = []
        # named tasks a Task message runs: name -> fn(**args)
        self.tasks: dict[str, Callable[..., None]] = {
            policies.TASK_TIMER_EVENT: policies.run_timer_event_task(self),
            policies.TASK_TIMEOUT_HANDLER: policies.run_timeout_handler_task(self),
        }
        self.sender: object = self  # the Engine facade, the sender of signals
        # callbacks this engine has sent and not yet seen applied (the sweep sends the others)
        self.sent_callbacks: set[int] = set()

    # -- units of work ---------------------------------------------------------------------------
    def unit(self, fn: Callable[[Step], T]) -> T:
        """Run ``fn`` in a store transaction; apply its effects once committed."""

        def body(tx: UnitOfWork) -> tuple[T, Effects]:
            step = Step(self, tx)
            result = fn(step)
            step.flush()
            return result, step.fx

        result, fx = self.store.unit(body)
        self.apply(fx)
        return result

    def apply(self, fx: Effects) -> None:
        # notifications and hooks first: a "pre_" hook (pre_callback, pre_retry_node) must have
        # run before the work it precedes is handed to a worker
        if fx.state_changes:
            for change in fx.state_changes:
                signals.post_set_state.send(sender=self.sender, **change)
        if fx.hooks:
            for node_id, hook, save, callback_id in fx.hooks:
                self.services.run_hook(node_id, hook, save, callback_id)
        if fx.events:
            for event_type, data in fx.events:
                self.emit(event_type, data)
        if fx.cancels:
            for node_id, version in fx.cancels:
                self.services.cancel_service(node_id, version)
        for msg in fx.sends:
            self.send(msg)
        for due, msg in fx.later:
            self.send_at(due, msg)

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            try:
                listener(event_type, data)
            except Exception:
                log.exception("event listener failed on %s", event_type)

    # -- sending work ----------------------------------------------------------------------------
    def send(self, msg: Message) -> None:
        """Hand ``msg`` to a worker. An engine that runs no workers sends nothing: what it wrote
        has no owner, and a running engine's sweep claims it."""
        if self.owner_id is None:
            return
        if type(msg) is Callback:
            self.sent_callbacks.add(msg.callback_id)
        self.dispatcher.send(msg)

    def send_at(self, due: float, msg: Message) -> None:
        if self.owner_id is not None:
            self.dispatcher.send_at(due, msg)
