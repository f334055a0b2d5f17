"""The embedded dispatcher: worker threads and one timer thread inside the caller's process.

It is only a transport. ``send`` queues a message; ``send_at`` keeps it in a timer heap until
its due time (on the engine's clock), then queues it; each worker thread takes one message at a
time and calls the engine's ``handle`` with it. What a message means, and how engine work is
batched into rounds, is the engine's business (``rattan.engine.worker``).

Messages are hints: every piece of work they name is also a row in the store, so a message lost
with the process is found again by another engine's sweep or by the next start.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from rattan.model.messages import Message
from rattan.runtime.interface import INTERFACE_VERSION, Clock

log = logging.getLogger("rattan.dispatch")

IDLE_TIMER_SECONDS = 60.0  # how long the timer thread sleeps with nothing armed


class ThreadDispatcher:
    """``workers`` threads calling ``handle(message)``, and a timer thread for ``send_at``."""

    interface_version = INTERFACE_VERSION
    shares_memory = True

    def __init__(self, workers: int, clock: Clock) -> None:
        self.n_workers = max(1, workers)
        self.clock = clock
        self._queue: queue.SimpleQueue[Message | None] = queue.SimpleQueue()
        self._handle: Callable[[Message], None] | None = None
        self._timers: list[tuple[float, int, Message]] = []
        self._seq = itertools.count()
        self._timer_lock = threading.Lock()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running = False
        # one entry per message queued or being handled. A deque's append and pop are atomic under
        # the interpreter lock: every message passes here twice, and a lock there (contended by
        # four workers and the round leader) cost a thread switch now and then
        self._inflight: deque[None] = deque()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, handle: Callable[[Message], None]) -> None:
        if self._running:
            return
        self._handle = handle
        self._running = True
        for i in range(self.n_workers):
            t = threading.Thread(target=self._work, name=f"rattan-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._timer, name="rattan-timer", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, timeout: float = 30.0) -> None:
        """Let queued and running work finish (up to ``timeout``), then stop the threads."""
        self.wait_idle(timeout)
        self._running = False
        for _ in range(self.n_workers):
            self._queue.put(None)
        self._wake.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no message is queued or being handled (delayed ones may remain)."""
        deadline = time.monotonic() + timeout
        pause = 0.0005
        while self._inflight:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.01)
        return True

    # -- sending ---------------------------------------------------------------------------------
    def send(self, msg: Message) -> bool:
        self._inflight.append(None)
        self._queue.put(msg)
        return True  # this very object reaches handle()

    def send_at(self, due: float, msg: Message) -> bool:
        if due <= self.clock.now():
            return self.send(msg)
        with self._timer_lock:
            heapq.heappush(self._timers, (due, next(self._seq), msg))
            first = self._timers[0][2] is msg
        if first:  # the timer thread sleeps until the earliest due time: tell it
            self._wake.set()
        return True

    # -- threads ---------------------------------------------------------------------------------
    def _timer(self) -> None:
        while self._running:
            self._wake.clear()  # before looking: a timer armed from here on wakes the sleep below
            due: list[Message] = []
            with self._timer_lock:
                now = self.clock.now()
                while self._timers and self._timers[0][0] <= now:
                    due.append(heapq.heappop(self._timers)[2])
                nxt = self._timers[0][0] if self._timers else now + IDLE_TIMER_SECONDS
            for msg in due:
                self.send(msg)
            if not due:
                self.clock.sleep_until(nxt, self._wake)

    def _work(self) -> None:
        handle = self._handle
        assert handle is not None
        queue_ = self._queue
        while True:
            # a message already queued is taken without blocking: a blocking get releases the
            # interpreter lock even when the queue is not empty (measured: 13 us a message)
            try:
                msg = queue_.get_nowait()
            except queue.Empty:
                msg = queue_.get()
            if msg is None:
                return
            try:
                handle(msg)
            except Exception:
                log.exception("worker failed on %r", msg)
            finally:
                self._done()

    def _done(self) -> None:
        self._inflight.pop()

    # -- diagnostics -----------------------------------------------------------------------------
    def pending_timers(self) -> list[tuple[float, Message]]:
        with self._timer_lock:
            return [(d, m) for d, _, m in sorted(self._timers, key=lambda t: (t[0], t[1]))]

    def info(self) -> dict[str, Any]:
        return {"workers": self.n_workers, "inflight": len(self._inflight), "timers": len(self._timers)}
