"""The embedded dispatcher: worker threads and one timer thread inside the caller's process.

Dispatch messages are hints: every piece of work they name is also a row in the store (a ready
process, a due schedule, an unapplied callback), so a lost message is found again on restart.

Workers take queued items one at a time and run their user code (an activity's execute, a poll, a
callback step). What the engine must do next (advance a token, record a user step's result) goes
to a shared batch, and one worker at a time, the round leader, advances the whole batch (up to
``BATCH`` tokens) in ONE transaction: a hundred parallel branches cost one commit, not a hundred.
The leader then runs the first piece of user code the tokens reached itself and queues the rest
for any worker: a chain of activities stays on one thread instead of handing the interpreter lock
to another thread for every node. A slow service occupies one worker; the others keep leading
rounds and running other services.

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
BATCH = 64  # tokens per round, and queued items one worker takes before it leads a round
SLOW_USER_CODE = 0.02  # seconds of user code after which a worker stops taking more items

Item = tuple[str, Any]


class ThreadDispatcher:
    def __init__(self, core: EngineCore, workers: int) -> None:
        self.core = core
        self.n_workers = max(1, workers)
        self.queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._busy_schedules: set[int] = set()
        self._pending: list[tuple[Work, int | None]] = []  # tokens waiting for the next round
        self._leader = threading.Lock()
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

    def _work(self) -> None:
        kept: Item | None = None
        while True:
            # the item this worker's own round reached comes first: a chain of activities stays on
            # one thread instead of waking another one (and passing the GIL) for every node
            item = kept if kept is not None else self.queue.get()
            kept = None
            if item is None:
                return
            self._safe_handle(item)
            # take more while there is more and the user code so far was quick, so that the next
            # round carries a batch; slow user code leaves the rest of the queue to other workers
            deadline = time.monotonic() + SLOW_USER_CODE
            for _ in range(BATCH - 1):
                if time.monotonic() > deadline:
                    break
                try:
                    nxt = self.queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:  # the stop signal: keep it for after this round
                    self.queue.put(None)
                    break
                self._safe_handle(nxt)
            kept = self._lead()

    def _safe_handle(self, item: Item) -> None:
        try:
            self._handle(item)
        except Exception:
            log.exception("worker failed on a %s item", item[0])
            self._done()

    def _handle(self, item: Item) -> None:
        """Run one queued item's user code (if any); engine work goes to the shared batch."""
        kind, ident = item
        if kind == "proc":
            self._pend((ident, None))
        elif kind == "exec":
            self._pend((ident.pid, run_execute(self.core, ident)))
        elif kind == "first_poll":
            self._pend((ident.prepared.pid, run_schedule(self.core, ident)))
        elif kind == "timer":
            self.core.fire_timer(ident)
            self._done()
        elif kind == "call":
            try:
                ident()
            finally:
                self._done()
        else:
            entry = self._schedule_step(kind, ident)
            if entry is None:
                self._done()
            else:
                self._pend(entry[0], entry[1])

    def _pend(self, work: Work, schedule_id: int | None = None) -> None:
        with self._lock:
            self._pending.append((work, schedule_id))

    def _lead(self) -> Item | None:
        """Become the round leader if nobody is: advance every pending token, BATCH at a time.

        Only one worker runs engine rounds at a time (they would serialise on the writer anyway);
        the others keep running user code, so one slow service never holds the engine up. A worker
        that finds a leader at work leaves its tokens to it: the leader drains the batch before it
        lets go, and looks again after letting go, so nothing is stranded.

        Returns one item of user code the last round reached, which the caller runs itself; the
        others go to the shared queue.
        """
        kept: Item | None = None
        while self._pending:
            if not self._leader.acquire(blocking=False):
                return kept
            try:
                while True:
                    with self._lock:
                        batch = self._pending[:BATCH]
                        del self._pending[:BATCH]
                    if not batch:
                        break
                    if kept is not None:  # another round first: let any worker have it
                        self.queue.put(kept)
                    kept = self._round(batch)
            finally:
                self._leader.release()
        return kept

    def _round(self, batch: list[tuple[Work, int | None]]) -> Item | None:
        """Advance a batch of tokens in one transaction; queue the user code they reach but the
        first, which is returned for the leader to run."""
        schedules = {id(work): sid for work, sid in batch if sid is not None}
        try:
            outcomes, leftover = self.core.advance_many([work for work, _ in batch])
        except Exception:
            log.exception("engine round failed")
            self._done(len(batch))
            with self._lock:
                self._busy_schedules.difference_update(schedules.values())
            return None
        with self._lock:
            # the round stopped early for another store user: the rest goes first next round
            self._pending[:0] = [(work, schedules.pop(id(work), None)) for work in leftover]
            self._busy_schedules.difference_update(schedules.values())
        finished = 0
        kept: Item | None = None
        for _, outcome in outcomes:
            # the chain goes on as an item: it stays in flight, counted once already
            item: Item
            if outcome is not None and outcome.poll is not None:
                item = ("first_poll", outcome.poll)
            elif outcome is not None and outcome.execute is not None:
                item = ("exec", outcome.execute)
            else:
                finished += 1
                continue
            if kept is None:
                kept = item
            else:
                self.queue.put(item)
        self._done(finished)
        return kept

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
