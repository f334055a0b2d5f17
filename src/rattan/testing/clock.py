"""``FakeClock``: an engine clock that moves only when the test says so.

``Engine(..., clock=FakeClock())`` makes timers, timeouts, poll intervals, retry backoffs and
leases follow ``clock.advance(seconds)`` instead of the wall clock: a test of a one-hour timeout
runs in milliseconds and fires exactly when it should::

    clock = FakeClock()
    engine = rattan.Engine(":memory:", clock=clock)
    ...                       # a node with a 60 s timeout is RUNNING
    clock.advance(59.9)       # nothing fires
    clock.advance(0.1)        # the timeout is due: the timer thread hands it to a worker
    engine.wait_idle()

``advance`` wakes every thread waiting on the clock whose deadline has come, and returns once
those threads have had a moment to act (``settle`` seconds of real time, 0.01 by default): wait
for what they do with ``engine.wait_idle()`` or a bounded poll, as with a real clock.
"""

from __future__ import annotations

import threading
import time

DEFAULT_START = 1_750_000_000.0  # a fixed epoch (2025-06-15): runs read the same times every time


WAKE_POLL = 0.01  # real seconds between looks at a sleeper's wake event


class FakeClock:
    """A ``rattan.runtime.interface.Clock`` under the test's control."""

    def __init__(self, start: float = DEFAULT_START, settle: float = 0.01) -> None:
        self._now = float(start)
        self._settle = settle
        self._cond = threading.Condition(threading.Lock())

    def now(self) -> float:
        return self._now

    def sleep_until(self, when: float, wake: threading.Event) -> bool:
        with self._cond:
            while self._now < when:
                if wake.is_set():
                    return True
                # an advance notifies at once; a wake event is seen within WAKE_POLL
                self._cond.wait(WAKE_POLL)
        return wake.is_set()

    def advance(self, seconds: float) -> float:
        """Move the clock forward (never back) and let the threads whose time has come run."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward: advance({seconds})")
        with self._cond:
            self._now += seconds
            self._cond.notify_all()
        if self._settle:
            time.sleep(self._settle)
        return self._now

    def set(self, when: float) -> float:
        """Move the clock to ``when`` (not earlier than now)."""
        return self.advance(max(0.0, when - self._now))
