"""Leases and recovery: an engine process that runs workers owns the work it writes, renews its
lease every ``sweep_seconds``, and takes over the work of owners that are gone.

Every row that stands for pending work (a ready token, a live schedule, a timer, a running
rollback) names its owner. An owner is gone when its lease ran out (it stopped renewing for
``lease_seconds``), when it closed (it gives its lease up), or at once when it ran on this
machine and its process no longer exists (a crash, a kill -9). Its work is claimed by the first
engine that looks, each row by one engine only (the store's ``lease``), and handled exactly as
crash recovery handles it: a ready token is advanced again; one whose activity's ``execute`` was
running is recovered (an idempotent service runs again, any other is failed for an operator);
polls, callbacks and timers are armed again. Work written by an engine that runs no workers
(``Engine(start=False)``) has no owner and is claimed the same way.

The first sweep runs when the engine starts, before any worker, so a restarted process resumes
what a crash left at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import TYPE_CHECKING

from rattan.engine.schedule import refuse_unscheduled
from rattan.errors import BackendUnavailableError
from rattan.ids import unique_id
from rattan.model.messages import Callback, Message
from rattan.model.records import OwnerRecord
from rattan.runtime.interface import CallbackQuery

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore

log = logging.getLogger("rattan.engine")


def process_started(pid: int) -> str | None:
    """When process ``pid`` started (Linux: field 22 of /proc/PID/stat, clock ticks since boot),
    to tell a live process from a later one that got the same pid. None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count from the last ')'
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


def process_alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user's process
    if started is not None:
        now = process_started(pid)
        if now is not None and now != started:
            return False  # the pid was reused by a later process
    return True


class Sweeper:
    """Registers the engine as an owner and keeps its lease; claims the work of owners gone."""

    def __init__(self, core: EngineCore) -> None:
        self.core = core
        self.host = socket.gethostname()
        self.record: OwnerRecord | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Take an owner id, claim what has no live owner, and keep the lease from a thread."""
        pid = os.getpid()
        core = self.core
        self.record = OwnerRecord(unique_id("o"), self.host, pid, process_started(pid), 0.0)
        core.owner_id = self.record.id
        self.sweep()
        self._thread = threading.Thread(target=self._run, name="rattan-sweep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing and give the lease up: other engines take over what is left at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        record = self.record
        if record is None:
            return
        record.expires = 0.0
        try:
            self.core.store.unit(lambda tx: tx.lease(record, self.core.clock.now(), self._is_dead))
        except BackendUnavailableError as exc:
            log.warning("could not give up the lease of %s (%s): it runs out by itself", record.id, exc)

    def _run(self) -> None:
        clock = self.core.clock
        while not clock.sleep_until(clock.now() + self.core.settings.sweep_seconds, self._stop):
            try:
                self.sweep()
            except BackendUnavailableError as exc:
                log.warning("lease renewal failed (%s): trying again", exc)
            except Exception:
                log.exception("sweep failed")

    def sweep(self) -> list[tuple[float, Message]]:
        """Renew the lease, claim work whose owner is gone, and send what was claimed."""
        core = self.core
        record = self.record
        assert record is not None
        now = core.clock.now()
        record.expires = now + core.settings.lease_seconds
        tasks = list(core.tasks)
        work = core.store.unit(lambda tx: tx.lease(record, now, self._is_dead, tasks))
        pending: set[int] = set()
        for due, msg in work:
            if isinstance(msg, Callback):
                pending.add(msg.callback_id)
                if msg.callback_id in core.sent_callbacks:
                    continue  # already sent by this engine (its step may be under way)
            core.send_at(due, msg)
        # callbacks no longer pending were applied: forget them
        core.sent_callbacks.intersection_update(pending)
        if core.handoffs is not None:
            core.handoffs.recheck()
        claimed = [m for _, m in work if not isinstance(m, Callback)]
        if claimed:
            log.info(
                "engine %s took over %d pieces of work: %s", record.id, len(claimed), claimed[:10],
                extra={"owner": record.id, "claimed": len(claimed)},
            )  # fmt: skip
        # callbacks that came while their node's execute ran: refused once the node has moved on
        # without waiting (one indexed read when there are none)
        if core.store.read(lambda tx: tx.waits(CallbackQuery(pending=True, unscheduled=True))):
            core.unit(refuse_unscheduled)
        return work

    def _is_dead(self, owner: OwnerRecord) -> bool:
        """An owner on this machine whose process is gone is dead now, not when its lease ends."""
        return owner.host == self.host and not process_alive(owner.pid, owner.pid_started)
