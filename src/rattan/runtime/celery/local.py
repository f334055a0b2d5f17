"""``LocalFirstDispatcher``: the dispatcher of a ``rattan worker`` process. Work stays in this
process while it keeps up; only the overflow crosses the broker.

Two lanes. The local lane is a ``ThreadDispatcher`` (an in-memory queue, worker threads and a timer
heap, in the engine's memory); the broker lane is a ``CeleryDispatcher`` (this process's Celery
worker consumes the broker's queues; publishing sends to every worker). ``send`` keeps a message in
the local lane while fewer than ``backlog`` messages wait there and publishes it otherwise, so the
branches of a wide fork that this process cannot start soon are taken by the other workers.
``send_at`` keeps a delayed message in the local timer heap and hands it to the local lane when it
is due. A pipeline submitted by a client reaches one worker through the broker, and its chain of
activities then stays in that worker: no broker round trip, no claim transaction and no re-read of
the node's inputs per node, and the worker's rounds batch the work of all its threads.

The engine decides per message (``rattan.engine.worker``): ``send`` returns True when the message
stays here (the engine keeps what it has for it), and ``acknowledges()`` is True in the threads that
handle broker deliveries (Celery acknowledges a message once its handler returns: that work is
committed before it returns; a local message joins the rounds of the local lane). The crash model
is the embedded runtime's: the rows name this process as their owner, and if it dies, the local
queue and timer heap die with it and the survivors' sweep claims the rows and sends their work
again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, get_args

from rattan.model.messages import Message
from rattan.runtime.celery.app import queue_for_kind
from rattan.runtime.celery.dispatcher import CeleryDispatcher
from rattan.runtime.interface import INTERFACE_VERSION
from rattan.runtime.threads import ThreadDispatcher

# Messages that may wait in the local lane per local thread before ``send`` publishes to the
# broker instead. A message crossing the broker costs a publish, a delivery, a re-read of its work
# and a commit of its own; one kept here joins a shared round. With 4 threads, 16 each is one
# round's worth (BATCH, 64) of continuations: a round's fork stays here, a wider backlog spreads.
# Measured (bench/distributed.py, 2 workers of 4 threads, medians of 3, per thread 4/16/64): S3 (a
# fork of 100 trivial branches) 1,123/1,731/1,878 nodes/s at 0.33/0.12/0.09 transactions per node,
# S1 1,208/1,218/1,424 nodes/s (bound by the client's submissions). Beyond 16 the gain is small
# for trivial work, and slow work would wait in one process while others idle.
BACKLOG_PER_THREAD = 16
IDLE_POLL = 0.005  # seconds between two looks at both lanes while waiting for idleness


class LocalFirstDispatcher:
    """A local lane of ``threads`` threads in front of ``broker``, the Celery lane.

    Args:
        broker: the Celery dispatcher whose queues this process's Celery worker consumes.
        threads: local lane threads (``rattan worker``: from ``--concurrency``).
        backlog: messages waiting in the local lane beyond which ``send`` publishes to the broker
            (default: ``BACKLOG_PER_THREAD`` per thread).
        queues: the broker queues this process consumes (``rattan worker --queues``; None: all).
            A message whose queue is not among them always goes to the broker, delayed or not:
            what is sent keeps to the routing of work by kind to machines of their own.
    """

    interface_version = INTERFACE_VERSION
    # some messages cross processes: the engine tracks those (handoffs, claims) and learns per
    # message, from send's result and acknowledges(), what it may keep in memory
    shares_memory = False

    def __init__(
        self, broker: CeleryDispatcher, *, threads: int, backlog: int | None = None,
        queues: Iterable[str] | None = None,
    ) -> None:  # fmt: skip
        self.broker = broker
        self.clock = broker.clock
        self.local = ThreadDispatcher(threads, broker.clock)
        self.backlog = BACKLOG_PER_THREAD * self.local.n_workers if backlog is None else max(0, backlog)
        self._delivery = threading.local()  # .acked: this thread handles a broker delivery now
        self._handle: Callable[[Message], None] | None = None
        self._handing_over = False
        # the kinds of message this process may keep: those of the queues it consumes
        consumed = None if queues is None else set(queues)
        self._kinds = frozenset(
            kind
            for kind in get_args(Message)
            if consumed is None or queue_for_kind(kind, broker.prefix) in consumed
        )
        # what send did, for diagnostics and tests (plain ints: a lost increment is harmless)
        self.kept = 0
        self.published = 0

    @property
    def consuming(self) -> bool:
        """True while this process's Celery worker takes messages from the broker's queues."""
        return self.broker.consuming

    @consuming.setter
    def consuming(self, value: bool) -> None:
        self.broker.consuming = value

    @property
    def pending(self) -> int:
        """Messages waiting in the local lane: the work this process's threads take next."""
        return self.local.pending

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, handle: Callable[[Message], None]) -> None:
        """Check the broker and bind this process's Celery tasks (raises when the broker is
        unreachable, before any thread starts), then start the local lane."""
        self._handle = handle
        self.broker.start(self._from_broker)
        self.local.start(handle)

    def hand_over(self) -> None:
        """From now on, publish every message (a warm shutdown: the other workers take the work
        on while the local lane drains)."""
        self._handing_over = True

    def stop(self, timeout: float = 30.0) -> None:
        """Let running and queued work finish in both lanes (up to ``timeout`` each), then stop.
        What that work sends meanwhile is published (no local thread would take it after). Delayed
        messages not yet due are dropped: their rows are armed again by whichever engine claims
        them."""
        self.hand_over()
        self.broker.stop(timeout)
        self.local.stop(timeout)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until neither lane has a message queued or being handled (and, while this process
        consumes, the broker's queues are empty). One lane's work may send to the other: idle is
        when both are, looked at one after the other with the local lane looked at last."""
        deadline = time.monotonic() + timeout
        while True:
            if (
                self.local.wait_idle(max(0.0, deadline - time.monotonic()))
                and self.broker.wait_idle(max(0.0, deadline - time.monotonic()))
                and self.local.wait_idle(0)
            ):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(IDLE_POLL)

    # -- sending ---------------------------------------------------------------------------------
    def send(self, msg: Message) -> bool:
        """Queue ``msg`` here (True: this very object reaches ``handle``) unless the local lane's
        backlog is full or the process hands its work over; then publish it (False)."""
        if not self._handing_over and self.local.pending < self.backlog and type(msg) in self._kinds:
            self.local.send(msg)
            self.kept += 1
            return True
        self.broker.send(msg)
        self.published += 1
        return False

    def send_at(self, due: float, msg: Message) -> bool:
        """Keep ``msg`` in the local timer heap; the local lane handles it once due (the rows it
        stands for are this process's: a delayed message never waits in a broker). One of a kind
        this process does not consume waits in the broker lane's heap and is published when due."""
        if type(msg) in self._kinds:
            return self.local.send_at(due, msg)
        self.broker.send_at(due, msg)
        return False

    # -- the broker lane's deliveries -------------------------------------------------------------
    def _from_broker(self, msg: Message) -> None:
        handle = self._handle
        assert handle is not None  # start() sets it before binding this
        delivery = self._delivery
        delivery.acked = True
        try:
            handle(msg)
        finally:
            delivery.acked = False

    def acknowledges(self) -> bool:
        """True while the calling thread handles a message the broker delivered: Celery
        acknowledges it when ``handle`` returns, so its work must be committed by then."""
        return bool(getattr(self._delivery, "acked", False))

    # -- diagnostics -----------------------------------------------------------------------------
    def pending_timers(self) -> list[tuple[float, Message]]:
        return self.local.pending_timers() + self.broker.pending_timers()

    def info(self) -> dict[str, Any]:
        return {
            "local": self.local.info(), "broker": self.broker.info(), "backlog": self.backlog,
            "kept": self.kept, "published": self.published,
        }  # fmt: skip
