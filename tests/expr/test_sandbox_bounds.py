"""Calls that are super-linear in time or memory are priced from their arguments and refused first.

Each payload here would, without the up-front check, hold the interpreter lock for seconds (a
quadratic C-level search) or allocate far more than the size limit before the result is checked.
The tests assert the refusal is an ExpressionError naming the call, and that it comes back fast and
without a large allocation: the payload must never actually run.
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import pytest

from rattan.errors import ExpressionError
from rattan.expr import evaluate
from rattan.expr.costs import MAX_SEARCH_WORK

pytestmark = pytest.mark.timeout(60)

MAX_WALL = 0.5
MAX_PEAK = 50 * 1024 * 1024

# Host values are built once, outside the measured calls: only what the evaluation allocates counts.
MEGA = "a" * 1_000_000
NAMES: dict[str, Any] = {
    "s": MEGA,
    "s100k": "a" * 100_000,
    "s5k": "ab" * 2500,
    "chars": "b" * 100 + "a",
    "digits": "9" * 200_000,
    "huge_start": 2**70_000,
    "big_int": 2**40_000,
    "big_list": list(range(600_000)),
    "big_dict": dict.fromkeys(range(300_000), 0),
    "big_range": range(10**6),
    "commas": "a," * 200_000,
    "s300k": "abc" * 100_000,
}
ZIP200 = "zip(" + ", ".join(["s5k"] * 200) + ")"


def _measured(expr: str) -> tuple[Any, float, int]:
    """Evaluate, returning (result or exception, wall seconds, peak bytes allocated during the call)."""
    tracemalloc.start()
    try:
        start = time.monotonic()
        try:
            outcome: Any = evaluate(expr, NAMES)
        except Exception as exc:
            outcome = exc
        elapsed = time.monotonic() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return outcome, elapsed, peak


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        # quadratic substring search: one C call, no chance for the deadline to fire
        ("('a'*524287).rfind('ab'+'a'*262000)", "rfind()"),
        ("('a'*524287).rpartition('ab'+'a'*262000)", "rpartition()"),
        ("('a'*524287).rsplit('ab'+'a'*262000)", "rsplit()"),
        ("('a'*524287).rindex('ab'+'a'*262000)", "rindex()"),
        ("('a'*400000).find('a'*300000+'b')", "find()"),
        ("('a'*400000).index('a'*300000+'b')", "index()"),
        ("('a'*400000).count('a'*300000+'b')", "count()"),
        ("('a'*400000).replace('a'*300000+'b', '')", "replace()"),
        ("('a'*400000).split('a'*300000+'b')", "split()"),
        ("('a'*400000).partition('a'*300000+'b')", "partition()"),
        ("('a'*300000+'b') in ('a'*400000)", "'in'"),
        ("('a'*300000+'b') not in ('a'*400000)", "'not in'"),
        ("s.find('x'*200)", "find()"),
        ("s.strip(chars)", "strip()"),
        ("s.lstrip(chars)", "lstrip()"),
        ("s.rstrip(chars)", "rstrip()"),
        # repetition, joining, formatting, padding: result size known before building it
        ("'a'*(2**40)", "repeated sequence"),
        ("[0]*10**9", "repeated sequence"),
        ("(1, 2)*10**8", "repeated sequence"),
        ("('ab'*300000).join(('a', 'b', 'c'))", "join()"),
        ("'{:>999999999}'.format(1)", "format"),
        ("'%*d' % (10**9, 1)", ""),
        ("'a'.ljust(10**9)", "ljust()"),
        ("'a'.rjust(10**9)", "rjust()"),
        ("'a'.center(10**9)", "center()"),
        ("'1'.zfill(10**9)", "zfill()"),
        # integers: result size estimated from bit lengths
        ("10**10**10", "power"),
        ("7**100000", "power"),
        ("big_int*big_int", "product"),
        ("int(digits)", "int()"),
        ("int('1'*70000, 2)", "int()"),
        ("int(' -' + '1'*70000, 0)", "int()"),
        # containers: refused from the input length, before materialising
        ("enumerate(s100k, start=2**32000)", "enumerate()"),
        ("enumerate(s100k, -2**32000)", "enumerate()"),
        ("enumerate('ab', start=huge_start)", "enumerate() start"),
        ("enumerate(s)", "enumerate()"),
        ("set(enumerate(s))", "enumerate()"),
        (ZIP200, "zip() of 200 arguments"),
        ("zip(big_list, big_list)", "zip()"),
        ("reversed(s)", "reversed()"),
        ("sorted(s)", "sorted()"),
        ("list(s)", "list()"),
        ("tuple(s)", "tuple()"),
        ("set(s)", "set()"),
        ("list(big_range)", "list()"),
        ("sorted(big_list)", "sorted()"),
        ("dict(big_dict)", "dict()"),
        ("big_dict.items()", "items()"),
        ("big_dict.keys()", "larger than"),  # the lower bound passes; the result check refuses
        ("big_dict.copy()", "copy()"),
        ("big_list.copy()", "copy()"),
        ("s.split('a')", "split()"),
    ],
)
def test_costly_call_is_refused_up_front(expr: str, fragment: str) -> None:
    outcome, elapsed, peak = _measured(expr)
    assert type(outcome) is ExpressionError, outcome
    assert fragment in outcome.reason
    assert elapsed < MAX_WALL, f"{expr}: {elapsed:.3f} s"
    assert peak < MAX_PEAK, f"{expr}: {peak / 2**20:.1f} MiB"


def test_search_refusal_names_the_budget() -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate("('a'*524287).rfind('ab'+'a'*262000)", {})
    assert info.value.reason == (
        f"rfind(): search of a 262002-character string in a 524287-character string "
        f"over {MAX_SEARCH_WORK} comparisons"
    )


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # searches under the budget: (n - m + 1) * m <= MAX_SEARCH_WORK
        ("('a'*1000).rfind('ab'+'a'*500)", -1),
        ("('a'*5000 + 'b').find('a'*1000 + 'b')", 4000),
        ("s.find('aaaaab')", -1),
        ("s.count('a')", 1_000_000),
        ("'b' in s", False),
        ("'a'*600 in 'a'*1000", True),
        ("s.strip('a')", ""),
        ("'xxhixx'.strip('xy')", "hi"),
        ("('ab'*1000).replace('ab', 'c')", "c" * 1000),
        ("len(commas.split(','))", 200_001),
        ("len(s300k.split('b'))", 100_001),
        ("len(s.split('aaaaaaaaaa'))", 100_001),
        ("('a'*10).split('a'*20)", ["a" * 10]),
        # containers near the size limit
        ("len(list(s300k))", 300_000),
        ("len(sorted(s300k))", 300_000),
        ("len(set(s300k))", 3),
        ("len(enumerate(s100k[:50000]))", 50_000),
        ("enumerate('ab', start=2**100)", [(2**100, "a"), (2**100 + 1, "b")]),
        ("enumerate('abc', start=-1)", [(-1, "a"), (0, "b"), (1, "c")]),
        ("zip('ab', 'cd', 'ef')", [("a", "c", "e"), ("b", "d", "f")]),
        ("len(zip(s5k, s5k, s5k))", 5000),
        ("reversed([1, 2, 3])", [3, 2, 1]),
        ("len(dict(enumerate(s100k[:50000])))", 50_000),
        ("len(big_dict.values())", 300_000),
        ("dict(a=1)", {"a": 1}),
        ("len(list(range(100000)))", 100_000),
        # numbers and conversions near the limits
        ("(2**32000).bit_length()", 32_001),
        ("(big_int*2**20000).bit_length()", 60_001),
        ("int('9'*4000) % 7", int("9" * 4000) % 7),
        ("int('1'*60000, 2).bit_length()", 60_000),
        ("int('0x' + 'f'*1000, 0).bit_length()", 4000),
        ("'a'.ljust(1000)", "a" + " " * 999),
        ("'-'.join(['a', 'b'])", "a-b"),
        ("a.upper() + '-' + str(int(b) + 1)", "ABC-42"),
    ],
)
def test_legitimate_expression_near_the_limits(expr: str, expected: Any) -> None:
    # not measured: a legitimate near-limit value is allowed to cost its size
    assert evaluate(expr, NAMES) == expected


NAMES.update({"a": "abc", "b": "41"})
