"""The embedded dispatcher: worker threads and one timer thread inside the caller's process.

Dispatch messages are hints: every piece of work they name is also a row in the store (a ready
process, a due schedule, an unapplied callback), so a lost message is found again on restart.

A worker runs in rounds. It takes what is queued (up to ``BATCH``), advances all those tokens in
ONE transaction (so a hundred parallel branches cost one commit, not a hundred), then runs the user
code of the activities they entered, and carries those results into its next round, where they are
recorded together with the moves that follow. If user code is slow, the rest of the round's
activities go back to the queue so other workers run them: batching never makes one service wait
behind another's long call.

Two workers may be handed the same token (a duplicate dispatch); that is safe: entering a node is
a compare-and-set, and the second one finds the node already RUNNING and stops.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rattan.engine.activity import run_execute
from rattan.engine.schedule import run_schedule

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore, Work
    from rattan.engine.jobs import Prepared

log = logging.getLogger("rattan.dispatch")

BUSY_RETRY = 0.02  # seconds before a step meeting a busy schedule is tried again
BATCH = 64  # queued items one worker takes into one round
SLOW_USER_CODE = 0.05  # seconds of user code per round before the rest is handed to other workers

Item = tuple[str, Any]


class ThreadDispatcher:
    def __init__(self, core: EngineCore, workers: int) -> None:
        self.core = core
        self.n_workers = max(1, workers)
        self.queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._busy_schedules: set[int] = set()
        self._timers: list[tuple[float, int, str, Any]] = []
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

    def _done(self, n: int = 1) -> None:
        with self._idle:
            self._inflight -= n
            if self._inflight <= 0:
                self._idle.notify_all()

    # -- dispatch --------------------------------------------------------------------------------
    def _put(self, item: Item) -> None:
        with self._idle:
            self._inflight += 1
        self.queue.put(item)

    def process(self, pid: int) -> None:
        self._put(("proc", pid))

    def callback(self, cid: int) -> None:
        self._put(("cb", cid))

    def execute(self, prepared: Prepared) -> None:
        """Run an entered activity's ``execute`` on a worker (recovery, hand-offs)."""
        self._put(("exec", prepared))

    def submit(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` on a worker (extensions: rollback walks, hook fan-out)."""
        self._put(("call", fn))

    def timer(self, tid: int, due: float) -> None:
        self._later(due, "timer", tid)

    def poll(self, sid: int, due: float) -> None:
        self._later(due, "poll", sid)

    def _later(self, due: float, kind: str, ident: Any) -> None:
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
                due: list[Item] = []
                while self._timers and self._timers[0][0] <= now:
                    _, _, kind, ident = heapq.heappop(self._timers)
                    due.append((kind, ident))
                wait = (self._timers[0][0] - now) if self._timers else 1.0
            for item in due:
                self._put(item)
            if not due:
                with self._timer_cv:
                    self._timer_cv.wait(min(max(wait, 0.001), 1.0))

    def _take(self, block: bool) -> list[Item] | None:
        """Up to BATCH queued items; None when told to stop."""
        items: list[Item] = []
        try:
            first = self.queue.get(block=block)
        except queue.Empty:
            return items
        if first is None:
            return None
        items.append(first)
        while len(items) < BATCH:
            try:
                nxt = self.queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:  # keep the stop signal for after this round
                self.queue.put(None)
                break
            items.append(nxt)
        return items

    def _work(self) -> None:
        carried: list[Work] = []  # tokens whose user step ran in the previous round
        while True:
            items = self._take(block=not carried)
            if items is None:
                if not carried:
                    return
                items = []
                self.queue.put(None)
            try:
                carried = self._round(carried, items)
            except Exception:
                log.exception("worker round failed")
                self._done(len(carried))
                carried = []

    def _round(self, carried: list[Work], items: list[Item]) -> list[Work]:
        """One round: gather work, advance it in one transaction, run the entered activities."""
        work: list[Work] = list(carried)
        schedules: list[int] = []
        for kind, ident in items:
            if kind == "proc":
                work.append((ident, None))
            elif kind == "exec":
                work.append((ident.pid, self._execute(ident)))
            elif kind == "timer":
                self.core.fire_timer(ident)
                self._done()
            elif kind == "call":
                try:
                    ident()
                except Exception:
                    log.exception("submitted call failed")
                self._done()
            else:
                entry = self._schedule_step(kind, ident)
                if entry is None:
                    self._done()
                else:
                    work.append(entry[0])
                    schedules.append(entry[1])
        if not work:
            return []
        try:
            outcomes = self.core.advance_many(work)
        finally:
            with self._lock:
                self._busy_schedules.difference_update(schedules)
        nxt: list[Work] = []
        started = time.monotonic()
        finished = 0
        for _, outcome in outcomes:
            if outcome is not None and outcome.poll is not None:
                job = outcome.poll  # a first poll, due now: run it here
                nxt.append((job.prepared.pid, run_schedule(self.core, job)))
                continue
            prepared = outcome.execute if outcome is not None else None
            if prepared is None:
                finished += 1
            elif time.monotonic() - started > SLOW_USER_CODE:
                self.queue.put(("exec", prepared))  # stays in flight: counted once already
            else:
                nxt.append((prepared.pid, self._execute(prepared)))
        self._done(finished)
        return nxt

    def _execute(self, prepared: Prepared) -> Any:
        return run_execute(self.core, prepared)

    def _schedule_step(self, kind: str, ident: int) -> tuple[Work, int] | None:
        """Run one poll (``ident`` = schedule id) or callback (``ident`` = callback id) step."""
        sid = ident if kind == "poll" else self.core.schedule_of_callback(ident)
        if sid is None:
            return None
        with self._lock:
            busy = sid in self._busy_schedules
            if not busy:
                self._busy_schedules.add(sid)
        if busy:  # one step per schedule at a time; never dropped, tried again shortly
            self._later(time.time() + BUSY_RETRY, kind, ident)
            return None
        try:
            entry = self.core.schedule_job(sid, ident if kind == "cb" else None)
        except Exception:
            with self._lock:
                self._busy_schedules.discard(sid)
            raise
        if entry is None:
            with self._lock:
                self._busy_schedules.discard(sid)
            return None
        return entry, sid

    def pending_timers(self) -> list[tuple[float, str, Any]]:
        with self._timer_cv:
            return [(d, k, i) for d, _, k, i in sorted(self._timers)]

    def info(self) -> dict[str, Any]:
        return {"workers": self.n_workers, "inflight": self._inflight, "timers": len(self._timers)}
