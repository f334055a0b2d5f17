"""Rounds: the pending batch of engine work, led by one thread at a time (``Worker``'s half that
advances tokens; ``worker.py`` holds the message handlers). See ``worker.py``'s docstring for why
rounds exist, and docs/architecture.md, "Local first in rattan worker", for acknowledged messages.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from rattan.engine.batch import Batch, Work
from rattan.engine.jobs import Prepared
from rattan.engine.schedule import ScheduleJob, run_schedule
from rattan.errors import BackendUnavailableError
from rattan.model.messages import Execute, Poll

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore

log = logging.getLogger("rattan.engine")

BATCH = 64  # tokens per round, and quick messages a thread handles before it leads a round
SLOW_USER_CODE = 0.02  # seconds of user code after which a thread leads instead of taking more
RETRY_FIRST = 0.05  # pause after a failed round, doubled while the store keeps failing ...
RETRY_MAX = 1.0  # ... up to this
LOOK_AGAIN = 0.05  # seconds an acknowledged message's thread waits for its round before looking

# user code a round reached: its message and what the engine already has for it (a tuple: one is
# made per activity)
Continuation = tuple[Execute | Poll, Prepared | ScheduleJob]


class Rounds:
    """The round machinery ``Worker`` is built on (its attributes are set by ``Worker``)."""

    core: EngineCore
    batch: Batch
    closing: bool
    _pending: deque[Work]
    _leader: threading.Lock
    _busy: dict[int, object]
    _stash: dict[int, Continuation]
    _shares_memory: bool
    _asks: Callable[[], bool] | None  # the dispatcher's lane in this process, if it has one
    _local: threading.local
    _waiters: dict[int, threading.Event]
    _retry_delay: float
    _run_execute: Callable[[Prepared], None]  # Worker's: an activity's execute, here and now

    # -- rounds ------------------------------------------------------------------------------------
    def _pend(self, work: Work) -> None:
        # the thread's own dict, not getattr(): a miss there raises and clears an AttributeError
        mine: list[tuple[Work, threading.Event]] | None = self._local.__dict__.get("mine")
        if mine is not None:  # an acknowledged message's: its round is waited for (_settle)
            done = threading.Event()
            self._waiters[id(work)] = done  # before it is pending: its round may end at once
            mine.append((work, done))
        self._pending.append(work)

    def _settle(self, mine: list[tuple[Work, threading.Event]]) -> None:
        """Return once the rounds carrying ``mine`` (an acknowledged message's works) have ended:
        lead if nobody does, else wait for the leader (it takes every pending work before letting
        go). The user code a round led here reached is handed on (see __init__), else runs here."""
        index = 0
        while index < len(mine):
            kept = self._lead()
            if kept is not None:
                if self._asks is not None:  # a lane here: the user code goes to it
                    self._send(kept)
                else:
                    try:
                        self._continue(kept)  # its works join ``mine``
                    except Exception:
                        log.exception("worker failed on %r", kept[0])
                continue
            work, done = mine[index]
            if done.is_set() or done.wait(LOOK_AGAIN):
                index += 1
            elif self.closing or not (any(w is work for w in list(self._pending)) or self._leader.locked()):
                # closing: left to the leader's retries or the sweep; else its round ended unseen (a
                # safety net: taken, and nobody leads since; the deque is copied, as others change it)
                self._waiters.pop(id(work), None)
                index += 1

    def _after(self) -> None:
        """Lead a round unless more messages wait and this thread's work so far was quick (then
        it takes them first). The leader runs the first user code its round reached, and looks
        again."""
        # this thread's own attributes as a dict: one hit per message, no exception on the first
        loc = self._local.__dict__
        dispatcher = self.core.dispatcher
        while True:
            count = loc.get("count", 0)
            if count == 0:
                loc["started"] = time.monotonic()
                quick = True
            else:
                quick = time.monotonic() - loc["started"] < SLOW_USER_CODE
            if quick and count + 1 < BATCH and dispatcher.pending:
                loc["count"] = count + 1
                return
            loc["count"] = 0
            kept = self._lead()
            if kept is None:
                return
            try:
                self._continue(kept)
            except Exception:
                log.exception("worker failed on %r", kept[0])

    def _lead(self) -> Continuation | None:
        """Become the round leader if nobody is: advance every pending token, BATCH at a time.

        A thread that finds a leader at work leaves its tokens to it: the leader drains the batch
        before it lets go, and looks again after letting go, so nothing is stranded. Returns one
        piece of user code the last round reached, for the caller to run; the rest is sent."""
        kept: Continuation | None = None
        while self._pending:
            if not self._leader.acquire(blocking=False):
                return kept
            try:
                while True:
                    batch = self._take(BATCH)
                    if not batch:
                        break
                    if kept is not None:  # another round first: let any worker have it
                        self._send(kept)
                        kept = None
                    kept = self._round(batch)
            finally:
                self._leader.release()
        return kept

    def _take(self, n: int) -> list[Work]:
        batch: list[Work] = []
        pending = self._pending
        take = pending.popleft
        try:
            for _ in range(min(n, len(pending))):
                batch.append(take())
        except IndexError:  # another thread took the last one
            pass
        return batch

    def _round(self, batch: list[Work]) -> Continuation | None:
        """Advance a batch in one transaction; send the user code it reached but the first, which
        is returned for the leader to run."""
        try:
            outcomes, leftover = self.batch.advance(batch)
        except BackendUnavailableError as exc:
            self._round_failed(batch, exc)
            return None
        except Exception as exc:  # not expected: a token's own errors are isolated in the batch
            log.exception("engine round failed")
            self._round_failed(batch, exc)
            return None
        self._retry_delay = RETRY_FIRST
        if leftover:  # stopped early for another caller, or to be tried again: first next round
            self._pending.extendleft(reversed(leftover))
        waiters = self._waiters
        if waiters:  # acknowledged messages wait for these works' round
            for work, _ in outcomes:
                done = waiters.pop(id(work), None)
                if done is not None:
                    done.set()
        busy = self._busy
        kept: Continuation | None = None
        for work, outcome in outcomes:
            if work.schedule_id is not None:  # recorded: the schedule is free for its next step
                busy.pop(work.schedule_id, None)
            if outcome is None:
                continue
            # the user code the token reached: its message, and what the engine has for it
            cont: Continuation
            if outcome.poll is not None:
                job = outcome.poll
                cont = (Poll(job.schedule.id), job)
            elif outcome.execute is not None:
                prep = outcome.execute
                cont = (Execute(prep.pid, prep.node_id, prep.version, self.core.owner_id or ""), prep)
            else:
                continue
            if kept is None:
                kept = cont
            else:
                self._send(cont)
        return kept

    def _round_failed(self, batch: list[Work], exc: Exception) -> None:
        """Nothing of the batch was written: keep it (with its user results) and try again after a
        pause, holding the lead so that the retry keeps the order of work."""
        if self.closing:
            log.error(
                "engine closing while its store fails (%s): %d tokens not advanced; they are "
                "resumed from the store when an engine starts again", exc, len(batch)
            )  # fmt: skip
            self._release(batch)
            return
        log.warning("store unavailable (%s): %d tokens kept, trying again in %.2fs",
                    exc, len(batch), self._retry_delay)  # fmt: skip
        self._pending.extendleft(reversed(batch))
        time.sleep(self._retry_delay)
        self._retry_delay = min(self._retry_delay * 2, RETRY_MAX)

    def _release(self, works: list[Work]) -> None:
        """The schedules whose steps these works carried are free for their next step."""
        for w in works:
            if w.schedule_id is not None:
                self._busy.pop(w.schedule_id, None)
            done = self._waiters.pop(id(w), None)
            if done is not None:  # dropped while closing: nothing more to wait for
                done.set()

    # -- continuations ---------------------------------------------------------------------------
    def _send(self, cont: Continuation) -> None:
        """Send a continuation; what the engine has for it is kept while the very message object
        reaches handle() in this process (stashed first: a local thread may take it at once)."""
        msg = cont[0]  # an Execute or a Poll: nothing core.send must note
        self._stash[id(msg)] = cont
        here = self.core.dispatcher.send(msg)
        if not (self._shares_memory if here is None else here):
            self._stash.pop(id(msg), None)  # a copy reaches handle(), maybe in another process

    def _continue(self, cont: Continuation) -> None:
        """Run a continuation's user code here, now (the leader's own)."""
        payload = cont[1]
        if isinstance(payload, Prepared):
            self._run_execute(payload)
            return
        sid = payload.schedule.id
        self._busy[sid] = payload
        try:
            result = run_schedule(self.core, payload)
        except BaseException:
            self._busy.pop(sid, None)
            raise
        self._pend(Work(payload.prepared.pid, result, sid))
