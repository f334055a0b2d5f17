"""Messages handed to another process, sent again when nobody picks their work up.

Leases cover work whose owner died: another engine claims the rows and sends their messages again.
They cannot cover a message lost while its owner lives: a broker can drop one (a Redis consumer
killed between taking a message off the queue and recording it as unacknowledged), and the live
owner's rows look like work in progress to everyone. So an engine whose dispatcher crosses
processes (``shares_memory`` False) remembers what it sent there (not what its dispatcher kept in
this process, where ``send`` returned True: that is lost only with the process, and the lease
covers it), and its sweeper looks at the rows those messages stand for: a row still owned by this
engine and untouched for ``resend_seconds`` (twice looked at, with the same fingerprint) is sent
again. A duplicate is harmless: handlers claim the token or schedule by compare-and-set before
running user code (``activity.claim_token``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rattan.model.messages import Advance, Callback, Execute, Message, Poll, Recover
from rattan.model.states import TokenStatus
from rattan.runtime.interface import CallbackQuery, Reads, ScheduleQuery

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore

log = logging.getLogger("rattan.engine")

Fingerprint = tuple[Any, ...]


def fingerprint(tx: Reads, msg: Message, me: str) -> Fingerprint | None:
    """What the row ``msg`` stands for looks like now, while it is pending work of ``me``; None
    when it is done, someone else's, or not tracked (timers and tasks: their rows are not read)."""
    if isinstance(msg, Advance | Execute | Recover):
        found = tx.tokens([msg.token_id])
        proc = found[0] if found else None
        if proc is None or proc.owner != me or proc.status != TokenStatus.READY:
            return None
        if isinstance(msg, Execute) and proc.executing != msg.version:
            return None
        return (proc.rev, proc.current, proc.executing)
    if isinstance(msg, Poll):
        scheds = tx.waits(ScheduleQuery(id=msg.schedule_id))
        s = scheds[0] if scheds else None
        if s is None or s.finished or s.expired or s.owner != me:
            return None
        return (s.times, s.due, s.version)
    if isinstance(msg, Callback):
        cbs = tx.waits(CallbackQuery(id=msg.callback_id, pending=True))
        if not cbs:
            return None
        scheds = tx.waits(ScheduleQuery(node_id=cbs[0].node_id, version=cbs[0].version, pending=True))
        if not scheds or scheds[0].owner != me:
            return None
        return (scheds[0].times, cbs[0].applied)
    return None


class Handoffs:
    """What this engine sent across processes and may have to send again."""

    def __init__(self, core: EngineCore) -> None:
        self.core = core
        self._lock = threading.Lock()
        # message -> (when to look next, fingerprint seen at the last look or None)
        self._sent: dict[Message, tuple[float, Fingerprint | None]] = {}
        # True while ``msg``'s user code runs in this process (the worker's): never sent again then
        self.running_here: Callable[[Message], bool] = lambda msg: False

    def note(self, msg: Message, due: float | None = None) -> None:
        if isinstance(msg, Advance | Execute | Recover | Poll | Callback):
            start = self.core.clock.now() if due is None else due
            with self._lock:
                self._sent[msg] = (start + self.core.settings.resend_seconds, None)

    def __len__(self) -> int:
        return len(self._sent)

    def recheck(self) -> list[Message]:
        """Look at the rows of messages due for a look; send again those untouched since the
        last look. Returns what was sent again."""
        core = self.core
        me = core.owner_id
        if me is None:
            return []
        now = core.clock.now()
        with self._lock:
            due = [(m, fp) for m, (at, fp) in self._sent.items() if at <= now]
        if not due:
            return []
        seen = core.store.read(lambda tx: [fingerprint(tx, m, me) for m, _ in due])
        again: list[Message] = []
        wait = core.settings.resend_seconds
        with self._lock:
            for (msg, before), now_fp in zip(due, seen, strict=True):
                if now_fp is None or (before is not None and now_fp != before):
                    self._sent.pop(msg, None)  # done, taken, or picked up and moved on
                    continue
                self._sent[msg] = (now + wait, now_fp)  # look again later
                if before is not None and not self.running_here(msg):
                    again.append(msg)  # untouched since the last look
        if again:
            log.warning("sending %d messages again: their work was untouched for %.0f s: %s",
                        len(again), 2 * wait, again[:5])  # fmt: skip
            for msg in again:
                core.dispatcher.send(msg)
        return again


class TrackedDispatcher:
    """A dispatcher across processes, with what is sent through it to other processes noted in
    ``Handoffs``."""

    def __init__(self, inner: Any, handoffs: Handoffs) -> None:
        self.inner = inner
        self.handoffs = handoffs
        self.interface_version = inner.interface_version
        self.shares_memory = False

    @property
    def pending(self) -> int:
        return int(self.inner.pending)

    def start(self, handle: Callable[[Message], None]) -> None:
        self.inner.start(handle)

    # a message the inner dispatcher keeps in this process (it returned True) is not noted
    def send(self, msg: Message) -> bool | None:
        kept: bool | None = self.inner.send(msg)
        if kept is not True:
            self.handoffs.note(msg)
        return kept

    def send_at(self, due: float, msg: Message) -> bool | None:
        kept: bool | None = self.inner.send_at(due, msg)
        if kept is not True:
            self.handoffs.note(msg, due)
        return kept

    def stop(self, timeout: float) -> None:
        self.inner.stop(timeout)

    def wait_idle(self, timeout: float) -> bool:
        return bool(self.inner.wait_idle(timeout))

    def __getattr__(self, name: str) -> Any:  # diagnostics of the real dispatcher (info, queues...)
        return getattr(self.inner, name)
