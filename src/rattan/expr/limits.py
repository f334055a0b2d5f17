"""Size and time bounds of the expression sandbox, and a cheap size estimate of values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds applied to one evaluation.

    Attributes:
        max_source: longest accepted expression, in UTF-8 bytes.
        max_depth: deepest accepted AST nesting.
        max_steps: node visits plus loop iterations allowed per evaluation.
        max_seconds: wall-clock budget per evaluation.
        max_size: largest value an operation may produce, in size units (about bytes; see ``approx_size``).
        max_int_bits: largest integer an operation may produce.
        max_range: longest ``range()``.
        max_format_width: sum of widths and precisions in one format string.
    """

    max_source: int = 4096
    max_depth: int = 100
    max_steps: int = 100_000
    max_seconds: float = 1.0
    max_size: int = MIB
    max_int_bits: int = 65_536
    max_range: int = 100_000
    max_format_width: int = MIB


DEFAULT_LIMITS = Limits()


class Refusal(Exception):
    """Raised inside the sandbox when an expression is refused; ``evaluate`` turns it into ExpressionError."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_size(value: Any, limits: Limits, what: str = "result") -> None:
    """Refuse ``value`` when its estimated size passes ``limits.max_size``."""
    if approx_size(value, limits.max_size) > limits.max_size:
        raise Refusal(f"{what} larger than {limits.max_size} bytes")


def approx_size(value: Any, limit: int) -> int:
    """Estimate how big ``value`` is once printed, stopping as soon as the estimate passes ``limit``.

    The estimate counts characters for strings, decimal digits for ints, one unit per scalar and one per
    container slot. It walks shared and cyclic structures item by item, so ``[s] * 1000`` counts ``s``
    a thousand times: that is what ``str()`` of it would cost. Work is O(limit) at most, and the walk
    uses an explicit stack so deep host values cannot raise RecursionError.

    Args:
        value: any value.
        limit: the caller's bound; the walk stops once the total exceeds it.

    Returns:
        The estimate, or some number greater than ``limit``.
    """
    total = 0
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes | bytearray):
            total += len(item) + 1
        elif isinstance(item, bool) or item is None or isinstance(item, float):
            total += 1
        elif isinstance(item, int):
            # about log10(2) digits per bit; printing is what makes big ints expensive
            total += (item.bit_length() * 3) // 10 + 1
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item) + 1
            if total > limit:
                return total
            stack.extend(item)
        elif isinstance(item, dict):
            total += 2 * len(item) + 1
            if total > limit:
                return total
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            # ranges and opaque host objects: their repr is short
            total += 1
        if total > limit:
            return total
    return total
