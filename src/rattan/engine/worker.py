"""The engine's entry point for dispatched messages (``Worker.handle``) and its rounds.

A message's user code (an activity's ``execute``, a poll, a callback step) runs in the thread
that handles it, outside any transaction. What the engine must do next (advance a token, record
a user step's result and move on) goes to a shared batch, and one thread at a time, the round
leader, advances the whole batch (up to ``BATCH`` tokens) in ONE transaction: a hundred parallel
branches cost one commit, not a hundred. The leader then runs the first piece of user code the
tokens reached itself and sends the rest as messages: a chain of activities stays on one thread
instead of handing the interpreter lock to another thread for every node. A thread that handled
quick work while more messages wait takes those first, so the next round carries a batch.

A round whose store fails (busy, full, I/O) keeps its batch, user results included, and tries
again after a pause: nothing a worker computed is dropped because a commit failed.

Decisions are per message (one dispatcher may keep some messages here and publish others,
``runtime/celery/local.py``): see docs/architecture.md, "Local first in rattan worker".
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rattan.engine import policies
from rattan.engine.activity import ExecResult, claim_execute, load_execute, recover_interrupted, run_execute
from rattan.engine.batch import Batch, Work
from rattan.engine.jobs import Prepared
from rattan.engine.rounds import RETRY_FIRST, RETRY_MAX, Continuation, Rounds
from rattan.engine.schedule import ScheduleJob, expire_schedule, load_job, run_schedule
from rattan.errors import BackendUnavailableError, ConflictError
from rattan.model.messages import Advance, Callback, Execute, FireTimer, Message, Poll, Recover, Task
from rattan.runtime.interface import CallbackQuery, ScheduleQuery

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore

log = logging.getLogger("rattan.engine")

BUSY_RETRY = 0.02  # seconds before a step meeting a busy schedule is tried again


class Worker(Rounds):
    def __init__(self, core: EngineCore) -> None:
        self.core = core
        self.batch = Batch(core)
        # deque and dict operations are atomic under the interpreter lock: the hot paths need no
        # lock of their own (a contended lock costs a thread switch on every message)
        self._pending: deque[Work] = deque()
        self._leader = threading.Lock()
        self._busy: dict[int, object] = {}  # schedules with a step running or waiting to be recorded
        # what the engine has for a message it sent, by the message's identity: a dispatcher that
        # keeps the message in this process hands the handler the very object that was sent
        self._stash: dict[int, Continuation] = {}
        dispatcher = core.dispatcher
        self._shares_memory = bool(getattr(dispatcher, "shares_memory", False))
        # a broker acknowledges a message once handle() returns, and the rows its work touches
        # may belong to another live engine that would never resume them: such a handle() returns
        # once the rounds carrying that work have committed (_settle). A dispatcher with a lane in
        # this process says which deliveries those are; for others, all or none are. The user code
        # their rounds reach then goes to that lane, where rounds batch every thread's work, and
        # the broker's thread takes its next delivery.
        # None: every delivery is acknowledged (a dispatcher across processes) or none is (one
        # that shares memory), so handle() calls no function per message to find out
        acknowledges = getattr(dispatcher, "acknowledges", None)
        self._asks: Callable[[], bool] | None = acknowledges if callable(acknowledges) else None
        self._handlers: dict[type, Any] = {
            Advance: self._advance, Execute: self._execute, Poll: self._poll, Callback: self._callback,
            FireTimer: self._fire, Recover: self._recover, Task: self._task,
        }  # fmt: skip
        self._local = threading.local()  # .mine: the works of an acknowledged message, with events
        # events set once the round carrying a work (by identity) of an acknowledged message ends
        self._waiters: dict[int, threading.Event] = {}
        # tokens whose execute runs in this process now: their messages are never sent again
        self._executing: set[int] = set()
        if core.handoffs is not None:
            core.handoffs.running_here = self.working_on
        self._retry_delay = RETRY_FIRST
        self.closing = False

    # -- entry point -------------------------------------------------------------------------------
    def handle(self, msg: Message) -> None:
        """Do what ``msg`` asks (called by the dispatcher, one message per call). If the store
        fails (or another writer wins) while the message is read or its unit written, the message
        is sent again after a pause: its work is still a row, and the retry finds it."""
        asks = self._asks
        if asks() if asks is not None else not self._shares_memory:
            self._handle_acknowledged(msg)
            return
        try:
            if type(msg) is Execute:  # the most frequent message, handled without a detour
                entry = self._stash.pop(id(msg), None)
                if entry is not None and entry[0] is msg:
                    prepared = entry[1]
                    self._pending.append(Work(prepared.pid, run_execute(self.core, prepared)))  # type: ignore[union-attr, arg-type]
                else:
                    self._execute(msg)
            elif type(msg) is Poll:  # the next most frequent
                self._schedule_step(msg, msg.schedule_id, callback=False)
            else:
                self._handlers[type(msg)](msg)
        except (BackendUnavailableError, ConflictError) as exc:
            self._again(msg, exc)
        finally:
            self._after()

    def _handle_acknowledged(self, msg: Message) -> None:
        mine: list[tuple[Work, threading.Event]] = []
        loc = self._local
        loc.mine = mine  # what _pend adds for this message, to wait for
        try:
            self._handlers[type(msg)](msg)
        except (BackendUnavailableError, ConflictError) as exc:
            self._again(msg, exc)
        finally:
            try:
                self._settle(mine)
            finally:
                loc.mine = None

    def _again(self, msg: Message, exc: Exception) -> None:
        if self.closing:
            log.error("engine closing: %r not handled (%s); it resumes from the store later", msg, exc)
            return
        log.warning("store unavailable while handling %r (%s): trying again", msg, exc)
        self.core.send_at(self.core.clock.now() + RETRY_MAX, msg)

    def scheduling(self, schedule_id: int) -> bool:
        """True while a step of the schedule runs here (or waits for its round)."""
        return schedule_id in self._busy

    def working_on(self, msg: Message) -> bool:
        """True while ``msg``'s user code runs in this process (engine/handoff.py)."""
        if isinstance(msg, Execute | Recover):
            return msg.token_id in self._executing
        if isinstance(msg, Poll):
            return msg.schedule_id in self._busy
        return False

    def _run_execute(self, prepared: Prepared) -> None:
        pid = prepared.pid
        if self.core.handoffs is None:  # no message of this engine is sent again
            self._pend(Work(pid, run_execute(self.core, prepared)))
            return
        self._executing.add(pid)
        try:
            self._pend(Work(pid, run_execute(self.core, prepared)))
        finally:
            self._executing.discard(pid)

    def idle(self) -> bool:
        return not self._pending and not self._leader.locked()

    def _advance(self, msg: Advance) -> None:
        self._pend(Work(msg.token_id))

    def _poll(self, msg: Poll) -> None:
        self._schedule_step(msg, msg.schedule_id, callback=False)

    def _callback(self, msg: Callback) -> None:
        sid = self.core.store.read(lambda tx: _schedule_of_callback(tx, msg.callback_id))
        if sid is not None:
            self._schedule_step(msg, sid, callback=True)

    def _fire(self, msg: FireTimer) -> None:
        self.core.unit(lambda step: policies.fire(step, msg.timer_id))

    def _recover(self, msg: Recover) -> None:
        core = self.core
        # the claimer that sent it, when another engine did (claim_token)
        sender = msg.owner if msg.owner != core.owner_id else ""
        prepared = core.unit(lambda step: recover_interrupted(step, msg.token_id, sender))
        if prepared is not None:
            self._run_execute(prepared)

    def _task(self, msg: Task) -> None:
        fn = self.core.tasks.get(msg.name)
        if fn is None:
            log.error("no task %r is registered with this engine: %r dropped", msg.name, msg)
        else:
            fn(**msg.args)

    def _stashed(self, msg: Message) -> Prepared | ScheduleJob | None:
        entry = self._stash.pop(id(msg), None)
        return entry[1] if entry is not None and entry[0] is msg else None

    # -- user steps --------------------------------------------------------------------------------
    def _execute(self, msg: Execute) -> None:
        prepared = self._stashed(msg)
        if not isinstance(prepared, Prepared):
            core = self.core
            # claimed only from another engine: an Execute of this engine's own (back from the
            # broker, or its stash gone) names a token this engine already owns
            if msg.owner and msg.owner != core.owner_id:
                claimed = core.unit(lambda step: claim_execute(step, msg.token_id, msg.version, msg.owner))
                if not claimed:
                    return  # another engine has the token: the message is stale
            loaded = core.store.read(lambda tx: load_execute(core, tx, msg))
            if loaded is None:
                return  # stale: the node moved on, or another engine handled it
            if isinstance(loaded, ExecResult):
                self._pend(Work(msg.token_id, loaded))
                return
            prepared = loaded
        self._run_execute(prepared)

    def _schedule_step(self, msg: Poll | Callback, sid: int, callback: bool) -> None:
        """One poll or callback step; one step per schedule at a time (a busy schedule's step is
        tried again shortly, never dropped)."""
        core = self.core
        mine = object()
        if self._busy.setdefault(sid, mine) is not mine:  # an atomic test-and-set
            core.send_at(core.clock.now() + BUSY_RETRY, msg)
            return
        handed = False
        try:
            job = self._stashed(msg)
            if not isinstance(job, ScheduleJob):
                loaded = core.store.read(lambda tx: load_job(core, tx, sid, callback))
                if loaded is None:
                    return
                if isinstance(loaded, int):
                    core.unit(lambda step: expire_schedule(step, sid))
                    return
                job = loaded
            self._pend(Work(job.prepared.pid, run_schedule(core, job), sid))
            handed = True
        finally:
            if not handed:
                self._busy.pop(sid, None)


def _schedule_of_callback(tx: Any, cid: int) -> int | None:
    found = tx.waits(CallbackQuery(id=cid))
    if not found:
        return None
    cb = found[0]
    scheds = tx.waits(ScheduleQuery(node_id=cb.node_id, version=cb.version))
    return scheds[0].id if scheds else None
