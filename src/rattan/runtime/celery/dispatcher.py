"""``CeleryDispatcher``: the dispatcher seam over Celery (``Engine(dispatcher="celery://redis://...")``
or ``Engine(dispatcher=CeleryDispatcher(app, clock=...))``).

``send`` publishes a ``rattan.handle`` task carrying the encoded message, to a queue chosen by the
message's kind (``app.queue_for``). ``send_at`` does NOT use Celery's ETA (an ETA task sits in a
worker's memory and comes back only after the broker's visibility timeout): the message waits in
this process's timer heap, and one timer thread publishes it when it is due. If this process dies,
its lease runs out and another engine's sweep claims the rows and arms them again: the store is the
truth, a message only a hint.

A Celery worker in this process (``rattan worker``) runs the tasks; each calls the ``handle`` the
dispatcher was started with, in the pool's thread. The engine rebuilds what it needs from the store
(``shares_memory`` is False). A message delivered twice (late acks, a worker lost) is harmless: the
engine checks the rows' versions before it acts.

A broker that cannot be reached: ``start`` raises BackendUnavailableError naming it. Later, a
message that cannot be published is kept and published again (every ``RESEND_SECONDS``) while this
process lives, rather than raised into the engine after its unit of work committed.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from celery.worker import state as worker_state  # type: ignore[import-untyped, unused-ignore]

from rattan.model.messages import Message, encode
from rattan.runtime.celery.app import (
    DEFAULT_PREFIX,
    TASK_NAME,
    QueueDepth,
    bind,
    bound,
    broker_url,
    check_broker,
    make_app,
    queue_for,
    queue_names,
    register_task,
)
from rattan.runtime.interface import INTERFACE_VERSION, Clock

log = logging.getLogger("rattan.dispatch")

IDLE_TIMER_SECONDS = 60.0  # how long the timer thread sleeps with nothing armed
RESEND_SECONDS = 1.0  # a message the broker refused is published again after this long
IDLE_POLL = 0.02  # seconds between two looks while waiting for idleness


class CeleryDispatcher:
    """Messages as ``rattan.handle`` Celery tasks; delayed ones in a local timer heap.

    Args:
        app_or_url: a ``celery.Celery`` app, or a broker URL (``redis://...``, ``amqp://...``)
            for which rattan builds one (``app.make_app``).
        clock: the engine's clock (due times of ``send_at``).
        queue_prefix: names the queues: ``{prefix}``, ``{prefix}.execute``, ``{prefix}.schedule``.

    ``consuming`` is True while a Celery worker in this process takes messages from these queues
    (``rattan worker`` sets it): ``wait_idle`` and ``stop`` then also wait for the queues to empty,
    since this process is among those that empty them.
    """

    interface_version = INTERFACE_VERSION
    shares_memory = False

    def __init__(self, app_or_url: Any, *, clock: Clock, queue_prefix: str = DEFAULT_PREFIX) -> None:
        if isinstance(app_or_url, str):
            self.app = make_app(app_or_url, prefix=queue_prefix)
        else:
            self.app = app_or_url
            register_task(self.app)
        self.clock = clock
        self.prefix = queue_prefix
        self.queues = queue_names(queue_prefix)
        self.url = broker_url(self.app)
        self.consuming = False
        self._handle: Callable[[Message], None] | None = None
        self._timers: list[tuple[float, int, Message]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()  # guards the timer heap and the running count
        self._wake = threading.Event()
        self._running = 0  # tasks of this dispatcher running in this process
        self._thread: threading.Thread | None = None
        self._started = False
        self._depth = QueueDepth(self.app, self.queues)
        self._failing = False  # the last publish failed (logged once until one succeeds)
        # messages sent and not yet published: the timer thread publishes them (see send)
        self._outbox: deque[Message] = deque()

    @property
    def pending(self) -> int:
        """Messages this process's worker received and has not started yet (0 without a worker)."""
        return max(0, len(worker_state.reserved_requests) - len(worker_state.active_requests))

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, handle: Callable[[Message], None]) -> None:
        """Check the broker, let this process's ``rattan.handle`` tasks call ``handle``, start the
        timer thread."""
        if self._started:
            return
        check_broker(self.app)
        self._handle = handle
        self._started = True
        bind(self.app, self._run)
        self._thread = threading.Thread(target=self._timer, name="rattan-celery-timer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Let running work finish (and, while this process consumes, queued work: up to
        ``timeout``), then stop the timer thread. Delayed messages not yet due are dropped: their
        rows are armed again by whichever engine claims them."""
        if not self._started:
            return
        self.wait_idle(timeout)
        self._started = False
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._publish_outbox()  # what the timer thread did not get to (wait_idle timed out)
        if bound(self.app) == self._run:
            bind(self.app, None)
        self._depth.close()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no task runs here, no delayed message is due, and (while this process
        consumes) the queues are empty. Work running in other processes is not seen."""
        deadline = time.monotonic() + timeout
        while True:
            if self._idle():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(IDLE_POLL, left))

    def _idle(self) -> bool:
        if self._outbox:
            return False
        with self._cond:
            if self._running or (self._timers and self._timers[0][0] <= self.clock.now()):
                return False
        if self.pending:
            return False
        if self.consuming and self._depth.count() != 0:
            return False
        with self._cond:  # a task may have started while the broker was asked
            return not self._running

    # -- sending ---------------------------------------------------------------------------------
    def send(self, msg: Message) -> bool:
        """Publish ``msg``: from the timer thread once started (the caller, often a unit of work
        that just committed or an API call, does not wait for the broker; publishing is also where
        a busy machine's time goes), at once before. A message that the broker refuses is kept and
        published again. Returns False: handle() gets a copy, decoded from the broker, maybe in
        another process."""
        if self._thread is not None:
            self._outbox.append(msg)
            self._wake.set()
        elif not self._publish(msg):
            self._arm(self.clock.now() + RESEND_SECONDS, msg)
        return False

    def send_at(self, due: float, msg: Message) -> bool:
        if due <= self.clock.now():
            return self.send(msg)
        self._arm(due, msg)
        return False

    def _arm(self, due: float, msg: Message) -> None:
        with self._cond:
            heapq.heappush(self._timers, (due, next(self._seq), msg))
            first = self._timers[0][2] is msg
        if first:  # the timer thread sleeps until the earliest due time: tell it
            self._wake.set()

    def _publish(self, msg: Message) -> bool:
        try:
            self.app.send_task(
                TASK_NAME, args=[encode(msg)], queue=queue_for(msg, self.prefix), serializer="json",
                ignore_result=True,
            )  # fmt: skip
        except Exception as exc:  # kombu's OperationalError, a socket error, a refused publish
            if not self._failing:
                log.warning(
                    "cannot publish to the Celery broker %s (%s): messages are kept and sent again "
                    "every %.1f s", self.url, exc, RESEND_SECONDS,
                )  # fmt: skip
            self._failing = True
            return False
        if self._failing:
            self._failing = False
            log.warning("the Celery broker %s takes messages again", self.url)
        return True

    # -- this process's side ---------------------------------------------------------------------
    def _run(self, msg: Message) -> None:
        """Called by a ``rattan.handle`` task in this process."""
        handle = self._handle
        if handle is None:
            log.error("dispatcher not started: %r dropped", msg)
            return
        with self._cond:
            self._running += 1
        try:
            handle(msg)
        except Exception:
            log.exception("worker failed on %r", msg)  # acknowledged: never retried forever
        finally:
            with self._cond:
                self._running -= 1

    def _publish_outbox(self) -> None:
        outbox = self._outbox
        while outbox:
            msg = outbox.popleft()
            if not self._publish(msg):
                self._arm(self.clock.now() + RESEND_SECONDS, msg)

    def _timer(self) -> None:
        while self._started:
            self._wake.clear()  # before looking: a timer armed from here on wakes the sleep below
            self._publish_outbox()
            due: list[Message] = []
            with self._cond:
                now = self.clock.now()
                while self._timers and self._timers[0][0] <= now:
                    due.append(heapq.heappop(self._timers)[2])
                nxt = self._timers[0][0] if self._timers else now + IDLE_TIMER_SECONDS
            for msg in due:
                if not self._publish(msg):
                    self._arm(self.clock.now() + RESEND_SECONDS, msg)
            if not due and not self._outbox:
                self.clock.sleep_until(nxt, self._wake)

    # -- diagnostics -----------------------------------------------------------------------------
    def pending_timers(self) -> list[tuple[float, Message]]:
        with self._cond:
            return [(d, m) for d, _, m in sorted(self._timers, key=lambda t: (t[0], t[1]))]

    def info(self) -> dict[str, Any]:
        with self._cond:
            return {"broker": self.url, "queues": self.queues, "running": self._running,
                    "timers": len(self._timers), "unpublished": len(self._outbox),
                    "consuming": self.consuming}  # fmt: skip
