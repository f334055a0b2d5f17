"""Up-front cost checks for allowed calls that can be super-linear in time or memory.

The evaluator's deadline is only checked between AST steps, and its size bound only once a value
exists. Neither helps against a single C call that holds the interpreter lock for seconds
(``('a' * 524287).rfind('ab' + 'a' * 262000)`` is quadratic inside CPython) or that allocates
gigabytes before returning (``enumerate(s, start=2**32000)``). So every such call is priced here
from O(1) facts about its arguments (lengths, bit lengths) and refused *before* it runs.

Two kinds of rules:

- string search (``find``, ``count``, ``split``, ``replace``, ``in``, ...): the naive search CPython
  falls back to costs up to ``(len(haystack) - len(needle) + 1) * len(needle)`` character
  comparisons; refuse above ``MAX_SEARCH_WORK``. Conservative (CPython is often linear) but cheap.
- building a container (``list``, ``sorted``, ``enumerate``, ``zip``, ``dict.items``, ...): compute a
  lower bound of ``approx_size`` of the result from the argument lengths; when it already passes
  ``max_size``, the result would be refused afterwards anyway, so refusing first changes no answer
  and avoids the allocation. ``set`` and ``dict`` may drop duplicates, so for them the bound assumes
  distinct items: an input that would be too large if distinct is refused.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sized
from typing import Any, cast

from rattan.expr.calls import BOUNDED_ITERABLES
from rattan.expr.limits import Limits, Refusal

# Character comparisons one search call may cost. CPython's fallback search does ~5e9 comparisons/s,
# so this keeps any one call to a few milliseconds of held interpreter lock.
MAX_SEARCH_WORK = 10**8  # about 20 ms at worst for the slowest search path measured

Args = list[Any]
Kwargs = dict[str, Any]

_ITEMS_VIEW: type[Any] = type({}.items())


def _length(value: Any) -> int | None:
    """len() of a value of known length, or None (the call itself refuses other values)."""
    if not isinstance(value, BOUNDED_ITERABLES):
        return None
    try:
        return len(cast(Sized, value))
    except OverflowError:  # a host range longer than sys.maxsize
        return sys.maxsize


def _item_units(value: Any) -> int:
    # the least approx_size of one item obtained by iterating ``value``
    if isinstance(value, str):
        return 2  # a one-character string
    if isinstance(value, _ITEMS_VIEW):
        return 5  # a pair: 1 for the tuple, 2 slots, 2 scalars at least
    return 1


def _int_units(value: int) -> int:
    # approx_size of an int (decimal digits), without printing it
    return (value.bit_length() * 3) // 10 + 1


def _refuse_size(what: str, units: int, limits: Limits) -> None:
    if units > limits.max_size:
        raise Refusal(f"{what} result larger than {limits.max_size} bytes")


def check_search(what: str, haystack: str, needle: str) -> None:
    """Refuse a substring search whose worst case passes ``MAX_SEARCH_WORK`` comparisons."""
    n, m = len(haystack), len(needle)
    # m <= 1 is a memchr-like scan; m > n is answered without searching
    work = n if m <= 1 else max(n - m + 1, 0) * m
    if work > MAX_SEARCH_WORK:
        raise Refusal(
            f"{what}: search of a {m}-character string in a {n}-character string "
            f"over {MAX_SEARCH_WORK} comparisons"
        )


def _arg(args: Args, kwargs: Kwargs, index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


# --- str methods ----------------------------------------------------------------------------------


def _search(name: str, kw: str) -> Callable[[Limits, str, Args, Kwargs], None]:
    def check(limits: Limits, recv: str, args: Args, kwargs: Kwargs) -> None:
        needle = _arg(args, kwargs, 0, kw)
        if isinstance(needle, str):
            check_search(f"{name}()", recv, needle)

    return check


def _split(name: str) -> Callable[[Limits, str, Args, Kwargs], None]:
    def check(limits: Limits, recv: str, args: Args, kwargs: Kwargs) -> None:
        sep = _arg(args, kwargs, 0, "sep")
        if not isinstance(sep, str) or not sep:
            return  # whitespace split: linear, its pieces are at least one character each
        check_search(f"{name}()", recv, sep)
        if len(recv) * 4 < limits.max_size:
            return  # cannot pass the limit: pieces + slots are at most ~3 units per character
        # exact approx_size of the result: one slot and one terminator per piece plus its characters;
        # counting is a search within the budget just checked
        hits = str.count(recv, sep)
        maxsplit = _arg(args, kwargs, 1, "maxsplit")
        if isinstance(maxsplit, int) and maxsplit >= 0:
            hits = min(hits, maxsplit)
        pieces = hits + 1
        _refuse_size(f"{name}()", 1 + 2 * pieces + len(recv) - hits * len(sep), limits)

    return check


def _strip(name: str) -> Callable[[Limits, str, Args, Kwargs], None]:
    def check(limits: Limits, recv: str, args: Args, kwargs: Kwargs) -> None:
        chars = _arg(args, kwargs, 0, "chars")
        if isinstance(chars, str) and len(chars) > 1:
            # each stripped character is looked up in ``chars``
            work = len(recv) * len(chars)
            if work > MAX_SEARCH_WORK:
                raise Refusal(f"{name}(): {len(chars)} characters over {MAX_SEARCH_WORK} comparisons")

    return check


_STR_COSTS: Mapping[str, Callable[[Limits, str, Args, Kwargs], None]] = {
    **{name: _search(name, "sub") for name in ("find", "rfind", "index", "rindex", "count")},
    **{name: _search(name, "sep") for name in ("partition", "rpartition")},
    "replace": _search("replace", "old"),
    "split": _split("split"),
    "rsplit": _split("rsplit"),
    **{name: _strip(name) for name in ("strip", "lstrip", "rstrip")},
}


def _copying(name: str, slot_units: int) -> Callable[[Limits, Any, Args, Kwargs], None]:
    # dict.keys/values/items/copy and list.copy build a container as long as the receiver
    def check(limits: Limits, recv: Any, args: Args, kwargs: Kwargs) -> None:
        n = len(recv)
        _refuse_size(f"{name}()", 1 + n * slot_units, limits)

    return check


_DICT_COSTS: Mapping[str, Callable[[Limits, Any, Args, Kwargs], None]] = {
    "keys": _copying("keys", 2),
    "values": _copying("values", 2),
    "items": _copying("items", 6),
    "copy": _copying("copy", 4),
}
_LIST_COSTS: Mapping[str, Callable[[Limits, Any, Args, Kwargs], None]] = {"copy": _copying("copy", 2)}


def check_method(limits: Limits, recv: Any, name: str, args: Args, kwargs: Kwargs) -> None:
    """Refuse an allow-listed method call whose cost, priced from its arguments, is over a limit."""
    if isinstance(recv, str):
        check = _STR_COSTS.get(name)
    elif isinstance(recv, dict):
        check = _DICT_COSTS.get(name)
    elif isinstance(recv, list):
        check = _LIST_COSTS.get(name)
    else:
        return
    if check is not None:
        check(limits, recv, args, kwargs)


# --- builtins -------------------------------------------------------------------------------------


def _sequence(name: str) -> Callable[[Limits, Args, Kwargs], None]:
    # list/tuple/sorted/reversed/set: one slot per item, plus each item
    def check(limits: Limits, args: Args, kwargs: Kwargs) -> None:
        if len(args) != 1:
            return
        n = _length(args[0])
        if n is not None:
            _refuse_size(f"{name}()", 1 + n * (1 + _item_units(args[0])), limits)

    return check


def _dict(limits: Limits, args: Args, kwargs: Kwargs) -> None:
    n = _length(args[0]) if len(args) == 1 else 0
    if n is not None:
        # two slots per entry, key and value at least one unit each
        _refuse_size("dict()", 1 + 4 * (n + len(kwargs)), limits)


def _enumerate(limits: Limits, args: Args, kwargs: Kwargs) -> None:
    start = _arg(args, kwargs, 1, "start")
    if not args:
        return
    n = _length(args[0])
    if n is None:
        return
    start_units = 1
    if isinstance(start, int):
        # every index is about as large as start: a huge start multiplies memory by n
        if start.bit_length() > limits.max_int_bits:
            raise Refusal(f"enumerate() start over {limits.max_int_bits} bits")
        # the smallest index in magnitude bounds every index from below
        last = start + n - 1
        start_units = 1 if start <= 0 <= last else _int_units(min(abs(start), abs(last)))
    # per item: the tuple slot, the pair (1 + 2 slots), the index, the item
    _refuse_size("enumerate()", 1 + n * (4 + start_units + _item_units(args[0])), limits)


def _zip(limits: Limits, args: Args, kwargs: Kwargs) -> None:
    if not args:
        return
    lengths = [_length(a) for a in args]
    if any(n is None for n in lengths):
        return
    n = min(n for n in lengths if n is not None)
    # per row: the list slot, the tuple (1 + k slots), one item from each argument
    row = 2 + len(args) + sum(_item_units(a) for a in args)
    _refuse_size(f"zip() of {len(args)} arguments", 1 + n * row, limits)


def _int(limits: Limits, args: Args, kwargs: Kwargs) -> None:
    text = args[0] if args else None
    if not isinstance(text, str):
        return
    base = _arg(args, kwargs, 1, "base")
    base = 10 if base is None else base
    if not isinstance(base, int) or not (base == 0 or 2 <= base <= 36):
        return  # int() itself refuses it
    body = text.strip().lstrip("+-")
    if base == 0:
        base = {"0b": 2, "0o": 8, "0x": 16}.get(body[:2].lower(), 10)
    # Decimal (any non power-of-two base) parsing is quadratic in CPython 3.11, and the host may have
    # lifted sys.set_int_max_str_digits: refuse text that cannot fit max_int_bits anyway.
    max_digits = math.ceil(limits.max_int_bits / math.log2(base)) + 2
    digits = len(body) - body.count("_")
    if digits > max_digits:
        raise Refusal(f"int() of a {digits}-digit string: over {limits.max_int_bits} bits")


_BUILTIN_COSTS: Mapping[str, Callable[[Limits, Args, Kwargs], None]] = {
    **{name: _sequence(name) for name in ("list", "tuple", "sorted", "reversed", "set")},
    "dict": _dict,
    "enumerate": _enumerate,
    "zip": _zip,
    "int": _int,
}


def check_builtin(limits: Limits, name: str, args: Args, kwargs: Kwargs) -> None:
    """Refuse an allow-listed builtin call whose cost, priced from its arguments, is over a limit."""
    check = _BUILTIN_COSTS.get(name)
    if check is not None:
        check(limits, args, kwargs)
