"""Components of the end-to-end suite, importable by name (``rattan worker --components
e2e_components``): on the distributed runtime they run in other processes than the test.

Importing this module defines (and so registers) the components in the process's registry."""

from __future__ import annotations

import datetime
from typing import Any

import rattan


class AddService(rattan.Service):
    """outputs.sum = inputs.a + inputs.b."""

    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.sum = data.inputs.a + data.inputs.b
        return True


class AddComponent(rattan.Component):
    name = code = "e2e_add"
    bound_service = AddService


class FailUntilService(rattan.Service):
    """Fails unless inputs.ok is true (a retry with data={'ok': True} makes it pass)."""

    def execute(self, data: Any, parent_data: Any) -> bool:
        if not data.inputs.get("ok"):
            data.outputs.ex_data = "not ok yet"
            return False
        data.outputs.passed = True
        return True


class FailUntilComponent(rattan.Component):
    name = code = "e2e_fail_until"
    bound_service = FailUntilService


class PollService(rattan.Service):
    """Polls ``inputs.polls`` times at interval 0, keeping the time of execute across polls."""

    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(0)

    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.count = 0
        data.outputs.started = datetime.datetime(2026, 12, 7, 1, 2, 3)
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        data.outputs.count += 1
        # a datetime comes back as a datetime from the store, in whatever process polls
        data.outputs.started_type = type(data.outputs.started).__name__
        if data.outputs.count >= data.inputs.polls:
            self.finish_schedule()
        return True


class PollComponent(rattan.Component):
    name = code = "e2e_poll"
    bound_service = PollService


class CallbackService(rattan.Service):
    """Waits for one callback; its data becomes outputs.got."""

    __need_schedule__ = True

    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.waiting = True
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        data.outputs.got = callback_data
        self.finish_schedule()
        return True


class CallbackComponent(rattan.Component):
    name = code = "e2e_callback"
    bound_service = CallbackService
