"""Components of the distributed tests, imported by the test process (into a registry of its own,
``Registry.import_modules``) and by every ``rattan worker`` subprocess (``--components
dist_components``, on PYTHONPATH). They name no registry: whoever imports them collects them.

Each ``execute`` and poll appends two journal lines (``os.write`` on an ``O_APPEND`` descriptor,
then ``os.fsync``: a line survives SIGKILL) to the file named by ``RATTAN_DIST_JOURNAL``::

    <pid> <node_id> <version> <kind> <step> <phase> <time>

(kind ``execute`` step 0, or ``poll`` step n; phase ``begin`` / ``end``), so a test can tell a
piece of user code run twice from one run once.
"""

from __future__ import annotations

import os
import time
from typing import Any

import rattan
from rattan.testing.journal import append

JOURNAL_ENV = "RATTAN_DIST_JOURNAL"
POLL_INTERVAL = 0.05


def journal(node_id: str, version: str, kind: str, step: int, phase: str) -> None:
    append(JOURNAL_ENV, f"{os.getpid()} {node_id} {version} {kind} {step} {phase} {time.time():.6f}\n")


def _compute(data: Any) -> int:
    x = int(data.get_one_of_inputs("x", 0) or 0)
    k = int(data.get_one_of_inputs("k", 0) or 0)
    return x * 3 + k


class DistStepService(rattan.Service):
    """``y = 3 * x + k`` after ``slow`` seconds (input); idempotent."""

    __idempotent__ = True

    def execute(self, data: Any, parent_data: Any) -> bool:
        journal(self.id, self.version, "execute", 0, "begin")
        time.sleep(float(data.get_one_of_inputs("slow", 0) or 0))
        data.set_outputs("y", _compute(data))
        data.set_outputs("pid", os.getpid())
        journal(self.id, self.version, "execute", 0, "end")
        return True


class DistOnceService(DistStepService):
    """The same, NOT idempotent: an execute a kill interrupted fails ``execution interrupted``."""

    __idempotent__ = False


class DistPollService(rattan.Service):
    """Executes like the step service, then polls every POLL_INTERVAL s and finishes on poll
    number ``polls`` (input, default 3); each poll adds its number to ``y``."""

    __idempotent__ = True
    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(POLL_INTERVAL)

    def execute(self, data: Any, parent_data: Any) -> bool:
        journal(self.id, self.version, "execute", 0, "begin")
        data.set_outputs("y", _compute(data))
        data.set_outputs("count", 0)
        journal(self.id, self.version, "execute", 0, "end")
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        count = int(data.get_one_of_outputs("count", 0) or 0) + 1
        journal(self.id, self.version, "poll", count, "begin")
        data.set_outputs("count", count)
        data.set_outputs("y", int(data.get_one_of_outputs("y", 0)) + count)
        if count >= int(data.get_one_of_inputs("polls", 3) or 3):
            self.finish_schedule()
        journal(self.id, self.version, "poll", count, "end")
        return True


class DistCallbackService(rattan.Service):
    """Executes like the step service, then waits for one callback: ``y`` += its ``v``."""

    __idempotent__ = True
    __need_schedule__ = True

    def execute(self, data: Any, parent_data: Any) -> bool:
        journal(self.id, self.version, "execute", 0, "begin")
        data.set_outputs("y", _compute(data))
        journal(self.id, self.version, "execute", 0, "end")
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        v = int((callback_data or {}).get("v", 0))
        data.set_outputs("y", int(data.get_one_of_outputs("y", 0)) + v)
        data.set_outputs("got", callback_data)
        self.finish_schedule()
        return True


class DistStep(rattan.Component):
    name = "dist step"
    code = "dist_step"
    bound_service = DistStepService


class DistOnce(rattan.Component):
    name = "dist once"
    code = "dist_once"
    bound_service = DistOnceService


class DistPoll(rattan.Component):
    name = "dist poll"
    code = "dist_poll"
    bound_service = DistPollService


class DistCallback(rattan.Component):
    name = "dist callback"
    code = "dist_callback"
    bound_service = DistCallbackService
