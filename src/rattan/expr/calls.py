"""The functions and methods an expression may call, each with the bounds it needs.

Every callable here gets ``(limits, args, kwargs)`` (methods also get the receiver) so that it can
refuse an argument *before* doing work proportional to it. Results are size-checked by the evaluator.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from rattan.expr.formats import check_brace_format
from rattan.expr.limits import Limits, Refusal, check_size

Args = list[Any]
Kwargs = dict[str, Any]
Builtin = Callable[[Limits, Args, Kwargs], Any]
Method = Callable[[Limits, Any, Args, Kwargs], Any]

# Iterating a host generator could run host code without end, so builtins only consume values whose
# length is known up front. dict views are included because host values may carry them.
BOUNDED_ITERABLES: tuple[type, ...] = (
    list,
    tuple,
    str,
    dict,
    set,
    frozenset,
    range,
    type({}.keys()),
    type({}.values()),
    type({}.items()),
)

_MAX_ROUND_DIGITS = 1000


def bounded(value: Any, what: str = "argument") -> Any:
    """Return ``value`` if it is an iterable of known, finite length; refuse it otherwise."""
    if not isinstance(value, BOUNDED_ITERABLES):
        raise Refusal(f"cannot iterate over {type(value).__name__} ({what})")
    return value


# What len(), a subscript and a truth test may be applied to: these types' own __len__,
# __getitem__ and __bool__ are the interpreter's. A host object (a lazy variable's result, an
# expression_names value) may define its own, which would run host code from an expression: refused.
DATA_TYPES: frozenset[type] = frozenset(
    {
        str, bytes, int, float, complex, bool, type(None), list, tuple, dict, set, frozenset, range,
        type({}.keys()), type({}.values()), type({}.items()),
        datetime.datetime, datetime.date, datetime.time, datetime.timedelta, decimal.Decimal, uuid.UUID,
    }
)  # fmt: skip


def data(value: Any, what: str) -> Any:
    """Return ``value`` if its type is a plain data type; refuse a host object (see DATA_TYPES)."""
    if type(value) not in DATA_TYPES:
        raise Refusal(
            f"{what} of a {type(value).__name__} value is not allowed: expressions test, measure and "
            "index data values (str, numbers, lists, dicts...), not host objects"
        )
    return value


def _data_args(fn: Callable[..., Any]) -> Builtin:
    def call(limits: Limits, args: Args, kwargs: Kwargs) -> Any:
        _kwargs_allowed(fn.__name__, kwargs, frozenset())
        return fn(*(data(a, f"{fn.__name__}()") for a in args))

    return call


def _iter_args(args: Args) -> Args:
    return [bounded(a) for a in args]


def _kwargs_allowed(name: str, kwargs: Kwargs, allowed: frozenset[str]) -> None:
    extra = set(kwargs) - allowed
    if extra:
        # 'key=' is the usual one: it would make builtins call a value taken from the context
        raise Refusal(f"keyword argument {sorted(extra)[0]!r} of {name}() is not allowed")


def _str(limits: Limits, args: Args, kwargs: Kwargs) -> Any:
    _kwargs_allowed("str", kwargs, frozenset())
    check_size(args, limits, "str() argument")
    return str(*args)


def _range(limits: Limits, args: Args, kwargs: Kwargs) -> Any:
    _kwargs_allowed("range", kwargs, frozenset())
    r = range(*args)
    try:
        size = len(r)
    except OverflowError:
        size = limits.max_range + 1
    if size > limits.max_range:
        raise Refusal(f"range() longer than {limits.max_range}")
    return r


def _round(limits: Limits, args: Args, kwargs: Kwargs) -> Any:
    _kwargs_allowed("round", kwargs, frozenset({"ndigits"}))
    digits = args[1] if len(args) > 1 else kwargs.get("ndigits")
    # round(1, -10**9) computes 10**(10**9) inside CPython
    if isinstance(digits, int) and abs(digits) > _MAX_ROUND_DIGITS:
        raise Refusal("round() ndigits too large")
    return round(*args, **kwargs)


def _sum(limits: Limits, args: Args, kwargs: Kwargs) -> Any:
    _kwargs_allowed("sum", kwargs, frozenset({"start"}))
    items = list(bounded(args[0])) if args else []
    start = args[1] if len(args) > 1 else kwargs.get("start", 0)
    # summing lists or strings is quadratic; numbers only
    for item in [*items, start]:
        if not isinstance(item, int | float):
            raise Refusal(f"sum() of {type(item).__name__} is not allowed")
    return sum(items, start)


def _simple(fn: Callable[..., Any], kw: frozenset[str] = frozenset(), iterate: bool = False) -> Builtin:
    def call(limits: Limits, args: Args, kwargs: Kwargs) -> Any:
        _kwargs_allowed(fn.__name__, kwargs, kw)
        return fn(*(_iter_args(args) if iterate else args), **kwargs)

    return call


def _first_iterable(fn: Callable[..., Any], kw: frozenset[str] = frozenset()) -> Builtin:
    # min/max take either one iterable or several values
    def call(limits: Limits, args: Args, kwargs: Kwargs) -> Any:
        _kwargs_allowed(fn.__name__, kwargs, kw)
        if len(args) == 1:
            bounded(args[0])
        return fn(*args, **kwargs)

    return call


def _listing(fn: Callable[..., Any], kw: frozenset[str] = frozenset()) -> Builtin:
    # enumerate/zip/reversed return lazy iterators; materialise them so no iterator object escapes
    def call(limits: Limits, args: Args, kwargs: Kwargs) -> Any:
        _kwargs_allowed(fn.__name__, kwargs, kw)
        return list(fn(*_iter_args(args), **kwargs))

    return call


def _dict(limits: Limits, args: Args, kwargs: Kwargs) -> Any:
    return dict(*_iter_args(args), **kwargs)


BUILTINS: Mapping[str, Builtin] = {
    "int": _simple(int, frozenset({"base"})),
    "float": _simple(float),
    "str": _str,
    "bool": _data_args(bool),
    "len": _data_args(len),
    "abs": _simple(abs),
    "round": _round,
    "list": _simple(list, iterate=True),
    "tuple": _simple(tuple, iterate=True),
    "set": _simple(set, iterate=True),
    "dict": _dict,
    "sorted": _simple(sorted, frozenset({"reverse"}), iterate=True),
    "any": _simple(any, iterate=True),
    "all": _simple(all, iterate=True),
    "min": _first_iterable(min, frozenset({"default"})),
    "max": _first_iterable(max, frozenset({"default"})),
    "sum": _sum,
    "range": _range,
    "enumerate": _listing(enumerate, frozenset({"start"})),
    "zip": _listing(zip),
    "reversed": _listing(reversed),
}


# --- methods -----------------------------------------------------------------------------------------

# Pure str methods whose output is at most a small multiple of the receiver (post-checked anyway).
# Left out: encode (bytes), expandtabs (tab size multiplies), translate/maketrans, format_map.
_STR_PLAIN = (
    *("upper", "lower", "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "partition"),
    *("rpartition", "startswith", "endswith", "count", "find", "rfind", "index", "rindex", "title"),
    *("capitalize", "casefold", "swapcase", "removeprefix", "removesuffix", "isdigit", "isalpha"),
    *("isalnum", "isspace", "isupper", "islower", "istitle", "isnumeric", "isdecimal", "isascii"),
)
# list/tuple/dict methods that mutate (append, extend, pop, sort, clear, update, ...) are left out:
# the values come from the engine's resolved context and may be shared with other nodes and lookups,
# so an expression must never change them.
_LIST_PLAIN = ("count", "index", "copy")
_TUPLE_PLAIN = ("count", "index")
_DICT_PLAIN = ("get", "copy")
_INT_PLAIN = ("bit_length",)
_FLOAT_PLAIN = ("is_integer", "hex")


def _plain(base: type, name: str) -> Method:
    # Call the base class function, not getattr(receiver, name): a host subclass cannot reroute it.
    fn = getattr(base, name)

    def call(limits: Limits, recv: Any, args: Args, kwargs: Kwargs) -> Any:
        return fn(recv, *args, **kwargs)

    return call


def _padding(name: str) -> Method:
    fn = getattr(str, name)

    def call(limits: Limits, recv: Any, args: Args, kwargs: Kwargs) -> Any:
        width = args[0] if args else kwargs.get("width", 0)
        if isinstance(width, int) and width > limits.max_size:
            raise Refusal(f"{name}() width too large")
        return fn(recv, *args, **kwargs)

    return call


def _replace(limits: Limits, recv: Any, args: Args, kwargs: Kwargs) -> Any:
    if len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        old, new = args[0], args[1]
        hits = str.count(recv, old) if old else len(recv) + 1
        if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
            hits = min(hits, args[2])
        if len(recv) + hits * (len(new) - len(old)) > limits.max_size:
            raise Refusal(f"replace() result larger than {limits.max_size} bytes")
    return str.replace(recv, *args, **kwargs)


def _join(limits: Limits, recv: Any, args: Args, kwargs: Kwargs) -> Any:
    if len(args) != 1 or kwargs:
        raise Refusal("join() takes exactly one argument")
    items = list(bounded(args[0]))
    if all(isinstance(i, str) for i in items):
        size = sum(len(i) for i in items) + len(recv) * max(len(items) - 1, 0)
        if size > limits.max_size:
            raise Refusal(f"join() result larger than {limits.max_size} bytes")
    return str.join(recv, items)


def _format(limits: Limits, recv: Any, args: Args, kwargs: Kwargs) -> Any:
    check_brace_format(recv, [args, kwargs], limits)
    return str.format(recv, *args, **kwargs)


def _view(name: str) -> Method:
    # keys()/values()/items() return lists: a view exposes .mapping (the live dict) in 3.10+
    fn = getattr(dict, name)

    def call(limits: Limits, recv: Any, args: Args, kwargs: Kwargs) -> Any:
        return list(fn(recv, *args, **kwargs))

    return call


def _table(base: type, plain: tuple[str, ...], **special: Method) -> dict[str, Method]:
    table = {name: _plain(base, name) for name in plain}
    table.update(special)
    return table


# Order matters: bool is an int, and the first matching base wins.
METHODS: tuple[tuple[type, dict[str, Method]], ...] = (
    (
        str,
        _table(
            str,
            _STR_PLAIN,
            replace=_replace,
            join=_join,
            format=_format,
            zfill=_padding("zfill"),
            center=_padding("center"),
            ljust=_padding("ljust"),
            rjust=_padding("rjust"),
        ),
    ),
    (list, _table(list, _LIST_PLAIN)),
    (tuple, _table(tuple, _TUPLE_PLAIN)),
    (dict, _table(dict, _DICT_PLAIN, keys=_view("keys"), values=_view("values"), items=_view("items"))),
    (float, _table(float, _FLOAT_PLAIN)),
    (int, _table(int, _INT_PLAIN)),
)

METHOD_NAMES: frozenset[str] = frozenset(name for _, table in METHODS for name in table)


def find_method(receiver: Any, name: str) -> Method | None:
    """Return the allow-listed method ``name`` for ``receiver``'s type, or None if there is none."""
    for base, table in METHODS:
        if isinstance(receiver, base):
            return table.get(name)
    return None
