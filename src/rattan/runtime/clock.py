"""The real clock: the engine's time is the wall clock (stored times and due times are epochs)."""

from __future__ import annotations

import threading
import time


class SystemClock:
    """``Clock`` on ``time.time``. A wait is cut short when the clock is set back or forward."""

    def now(self) -> float:
        return time.time()

    def sleep_until(self, when: float, wake: threading.Event) -> bool:
        # waits are split so that a wall-clock jump is noticed within a second
        while True:
            left = when - time.time()
            if left <= 0:
                return wake.is_set()
            if wake.wait(min(left, 1.0)):
                return True
