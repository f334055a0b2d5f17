"""The embedded dispatcher: worker threads and one timer thread inside the caller's process.

Dispatch messages are hints: every piece of work they name is also a row in the store (a ready
process, a due schedule, an unapplied callback), so a lost message is found again on restart.
A process is advanced by one worker at a time; a dispatch that arrives while it runs is remembered
and replayed when that worker is done (it re-reads everything from the store anyway).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore

log = logging.getLogger("rattan.dispatch")

BUSY_RETRY = 0.02  # seconds before a callback meeting a busy schedule is tried again


class ThreadDispatcher:
    def __init__(self, core: EngineCore, workers: int, resolution: float) -> None:
        self.core = core
        self.n_workers = max(1, workers)
        self.resolution = resolution
        self.queue: queue.SimpleQueue[tuple[str, int] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._active: set[tuple[str, int]] = set()
        self._again: set[tuple[str, int]] = set()
        self._busy_schedules: set[int] = set()
        self._timers: list[tuple[float, int, str, int]] = []
        self._seq = itertools.count()
        self._timer_cv = threading.Condition(threading.Lock())
        self._threads: list[threading.Thread] = []
        self._running = False
        self._inflight = 0
        self._idle = threading.Condition(threading.Lock())

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._running:
            return
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
            self.queue.put(None)
        with self._timer_cv:
            self._timer_cv.notify_all()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no work is queued or running (timers may still be pending)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._inflight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    # -- dispatch --------------------------------------------------------------------------------
    def _put(self, item: tuple[str, int]) -> None:
        with self._idle:
            self._inflight += 1
        self.queue.put(item)

    def process(self, pid: int) -> None:
        self._put(("proc", pid))

    def callback(self, cid: int) -> None:
        self._put(("cb", cid))

    def poll(self, sid: int, due: float) -> None:
        self._later(due, "poll", sid)

    def _later(self, due: float, kind: str, ident: int) -> None:
        if due <= time.time():
            self._put((kind, ident))
            return
        with self._timer_cv:
            heapq.heappush(self._timers, (due, next(self._seq), kind, ident))
            self._timer_cv.notify()

    # -- threads ---------------------------------------------------------------------------------
    def _timer(self) -> None:
        while self._running:
            with self._timer_cv:
                now = time.time()
                due: list[tuple[str, int]] = []
                while self._timers and self._timers[0][0] <= now:
                    _, _, kind, ident = heapq.heappop(self._timers)
                    due.append((kind, ident))
                wait = (self._timers[0][0] - now) if self._timers else 1.0
            for item in due:
                self._put(item)
            if not due:
                with self._timer_cv:
                    self._timer_cv.wait(min(max(wait, 0.001), 1.0))

    def _work(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            try:
                self._run(item)
            except Exception:
                log.exception("worker failed on %s", item)
            finally:
                with self._idle:
                    self._inflight -= 1
                    if self._inflight == 0:
                        self._idle.notify_all()

    def _claim(self, item: tuple[str, int]) -> bool:
        with self._lock:
            if item in self._active:
                self._again.add(item)
                return False
            self._active.add(item)
            return True

    def _release(self, item: tuple[str, int]) -> bool:
        with self._lock:
            self._active.discard(item)
            if item in self._again:
                self._again.discard(item)
                return True
            return False

    def _run(self, item: tuple[str, int]) -> None:
        kind, ident = item
        if kind == "cb":
            self._run_callback(ident)
            return
        if not self._claim(item):
            return
        try:
            while True:
                if kind == "proc":
                    self.core.run_process(ident)
                else:
                    self._run_poll(ident)
                if not self._release(item):
                    return
                with self._lock:
                    self._active.add(item)
        except BaseException:
            self._release(item)
            raise

    def _run_poll(self, sid: int) -> None:
        with self._lock:
            busy = sid in self._busy_schedules
            if not busy:
                self._busy_schedules.add(sid)
        if busy:  # a callback step of the same schedule is running: poll again shortly
            self._later(time.time() + BUSY_RETRY, "poll", sid)
            return
        try:
            self.core.run_schedule_step(sid)
        finally:
            with self._lock:
                self._busy_schedules.discard(sid)

    def _run_callback(self, cid: int) -> None:
        sid = self.core.schedule_of_callback(cid)
        if sid is None:
            return
        with self._lock:
            if sid in self._busy_schedules:
                busy = True
            else:
                busy = False
                self._busy_schedules.add(sid)
        if busy:  # never dropped: tried again shortly (SPEC 5.3, rattan: deviate)
            self._later(time.time() + BUSY_RETRY, "cb", cid)
            return
        try:
            self.core.run_schedule_step(sid, cid)
        finally:
            with self._lock:
                self._busy_schedules.discard(sid)

    def pending_timers(self) -> list[tuple[float, str, int]]:
        with self._timer_cv:
            return [(d, k, i) for d, _, k, i in sorted(self._timers)]

    def info(self) -> dict[str, Any]:
        return {"workers": self.n_workers, "inflight": self._inflight, "timers": len(self._timers)}
