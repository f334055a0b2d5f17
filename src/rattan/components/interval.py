"""Interval generators: how long a POLL service waits between two ``schedule`` calls.

The engine never keeps a generator in memory between polls: before poll number *n+1* it sets
``count = n - 1`` on a fresh copy and calls ``next()``, which increments ``count`` and returns the
number of seconds to wait. A ``None`` result fails the node (unlike bamboo, where the
poll silently dies).
"""

from __future__ import annotations

__all__ = [
    "AbstractIntervalGenerator",
    "DefaultIntervalGenerator",
    "LinearIntervalGenerator",
    "NullIntervalGenerator",
    "SquareIntervalGenerator",
    "StaticIntervalGenerator",
]

Interval = int | float | None


class AbstractIntervalGenerator:
    """Base class of interval generators.

    Attributes:
        count: how many times ``next()`` has been called (starts at 0).
    """

    def __init__(self) -> None:
        self.count: int = 0

    def next(self) -> Interval:
        """Increment ``count`` and return the interval in seconds.

        Subclasses call ``super().next()`` first and then return their interval; the base class
        returns ``None`` (no interval).
        """
        self.count += 1
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(count={self.count})"


class DefaultIntervalGenerator(AbstractIntervalGenerator):
    """Waits ``count ** 2`` seconds: 1, 4, 9, ..."""

    def next(self) -> Interval:
        """Increment ``count`` and return ``count ** 2``."""
        super().next()
        return self.count**2


class SquareIntervalGenerator(AbstractIntervalGenerator):
    """Same sequence as ``DefaultIntervalGenerator``: ``count ** 2``."""

    def next(self) -> Interval:
        """Increment ``count`` and return ``count ** 2``."""
        super().next()
        return self.count**2


class StaticIntervalGenerator(AbstractIntervalGenerator):
    """Always waits the same number of seconds.

    Args:
        interval: the constant wait in seconds.
    """

    def __init__(self, interval: int | float) -> None:
        super().__init__()
        self.interval = interval

    def next(self) -> Interval:
        """Increment ``count`` and return the constant interval."""
        super().next()
        return self.interval

    def __repr__(self) -> str:
        return f"StaticIntervalGenerator({self.interval!r})"


class LinearIntervalGenerator(AbstractIntervalGenerator):
    """Waits ``count`` seconds: 1, 2, 3, ... (bamboo's generator returns ``None`` instead)."""

    def next(self) -> Interval:
        """Increment ``count`` and return it."""
        super().next()
        return self.count


class NullIntervalGenerator(AbstractIntervalGenerator):
    """Returns ``None``: a POLL node using it fails with ``interval generator returned None``."""

    def next(self) -> Interval:
        """Increment ``count`` and return ``None``."""
        super().next()
        return None
