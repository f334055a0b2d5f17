"""The thread dispatcher against the dispatcher contract
(``rattan.testing.contract.DispatcherContract``)."""

from __future__ import annotations

from rattan.runtime.interface import Clock, Dispatcher
from rattan.runtime.threads import ThreadDispatcher
from rattan.testing.contract import DispatcherContract


class TestThreadDispatcher(DispatcherContract):
    # an in-process queue: nothing is redelivered, so each message is handled exactly once
    exactly_once = True

    def make_dispatcher(self, clock: Clock) -> Dispatcher:
        return ThreadDispatcher(workers=4, clock=clock)
