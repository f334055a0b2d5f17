"""Checks of what callers pass to ``rattan.Engine``, in one place, so a bad argument is refused
with a typed error naming it (never a bare ``KeyError``/``TypeError`` or a store binding error):

- ``checked_ids``: a class decorator that refuses a non-``str`` (or empty) id given to any method
  parameter named like an id, and a wrong value of the other parameters named in ``ARG_CHECKS``
  (loop, offset, id lists, idempotency keys...), before the method reads or writes anything.
- ``json_input``: encodes a caller's value as the store will, refusing a non-JSON one up front
  (so nothing is half stored).
- ``root_refused``: the error of a node control given the id of a run's root pipeline.
"""

from __future__ import annotations

import datetime
import functools
import inspect
import math
from collections.abc import Callable, Collection, Iterator
from typing import Any, TypeVar

from rattan.errors import BadInputError, InvalidOperationError, UnstorableValueError
from rattan.model.codec import dumps

C = TypeVar("C", bound=type)

# parameters of the public methods that name a stored node or pipeline (or a node's version)
ID_PARAMS = ("node_id", "pipeline_id", "root_id", "version")

# what to call instead when a node control is given a root pipeline id
INSTEAD = {
    "pause_node_appoint": "pause_pipeline",
    "resume_node_appoint": "resume_pipeline",
    "retry_node": "retry_node on a FAILED node of the run (get_pipeline_states lists them)",
    "retry_subprocess": "retry_node on a FAILED node of the run (get_pipeline_states lists them)",
    "skip_node": "skip_node on a FAILED node of the run (get_pipeline_states lists them)",
    "forced_fail_activity": "revoke_pipeline to stop the whole run",
    "callback": "callback with the id of the node that waits (wait_pipeline shows it)",
    "get_node_debug_info": "get_pipeline_debug_info",
}


def require_id(value: object, arg: str, *, optional: bool = False) -> None:
    """Refuse an id that is not a non-empty ``str`` (None passes when ``optional``)."""
    if isinstance(value, str) and value:
        return
    if value is None and optional:
        return
    raise BadInputError(f"{arg} must be a non-empty str id, got {type(value).__name__}: {_shown(value)}")


MAX_INT = 2**62  # larger counts and offsets cannot be stored (and mean a caller's mistake)


def _shown(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _optional_id(value: object, arg: str) -> None:
    require_id(value, arg, optional=True)


def _int_arg(value: object, arg: str, low: int, what: str) -> None:
    if type(value) is not int or not low <= value < MAX_INT:
        raise BadInputError(f"{arg} must be {what}, got {type(value).__name__}: {_shown(value)}")


def check_str_list(value: object, arg: str, optional: bool = False) -> None:
    """A collection of str (a list, tuple, set, or a dict or view: its keys). An iterator is let
    through unlooked at: looking would use it up."""
    if value is None and optional:
        return
    if isinstance(value, Iterator) and not isinstance(value, str | bytes):
        return
    items = value if isinstance(value, Collection) and not isinstance(value, str | bytes) else None
    if items is not None and all(isinstance(v, str) for v in items):
        return
    raise BadInputError(f"{arg} must be a list of str, got {type(value).__name__}: {_shown(value)}")


def _stack(value: object, arg: str) -> None:
    """An ordered list of subprocess ids (outermost first), or None."""
    if value is None or (isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)):
        return
    raise BadInputError(
        f"{arg} must be a list of subprocess ids, got {type(value).__name__}: {_shown(value)}"
    )


def _context_values(value: object, arg: str) -> None:
    from rattan.context import ContextValue

    if isinstance(value, list | tuple) and all(isinstance(v, ContextValue) for v in value):
        return
    raise BadInputError(
        f"{arg} must be a list of rattan.ContextValue, got {type(value).__name__}: {_shown(value)}"
    )


def _optional_dict(value: object, arg: str) -> None:
    if value is not None and not isinstance(value, dict):
        raise BadInputError(f"{arg} must be a dict, got {type(value).__name__}: {_shown(value)}")


def _idempotency_key(value: object, arg: str) -> None:
    if value is None or (isinstance(value, str) and 0 < len(value) <= 1000):
        return
    raise BadInputError(f"{arg} must be None or a str of 1 to 1000 characters, got {type(value).__name__}: "
                        f"{_shown(value)}")  # fmt: skip


def _number(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]


def _timeout(value: object, arg: str) -> None:
    if value is None or (_number(value) and value >= 0):  # type: ignore[operator]
        return
    raise BadInputError(
        f"{arg} must be a number of seconds >= 0, got {type(value).__name__}: {_shown(value)}"
    )


def _time_bound(value: object, arg: str) -> None:
    if value is None or isinstance(value, datetime.datetime) or _number(value):
        return
    raise BadInputError(
        f"{arg} must be a datetime or seconds since the epoch (a finite number), "
        f"got {type(value).__name__}: {_shown(value)}"
    )


def _flag(value: object, arg: str) -> None:
    if type(value) is not bool:
        raise BadInputError(f"{arg} must be True or False, got {type(value).__name__}: {_shown(value)}")


# parameters checked by name on every public method of the decorated classes: (check, optional)
ARG_CHECKS: dict[str, Callable[[object, str], None]] = {
    "loop": lambda v, a: _int_arg(v, a, -1, "an int loop number (-1: every loop)"),
    "offset": lambda v, a: _int_arg(v, a, 0, "0 or more (an int)"),
    "after": lambda v, a: _int_arg(v, a, 0, "an int event id >= 0"),
    "node_ids": check_str_list,
    "keys": check_str_list,
    "subprocess_stack": lambda v, a: _stack(v, a),
    "parent_params": _optional_dict,
    "context_values": _context_values,
    "idempotency_key": _idempotency_key,
    "timeout": _timeout,
    "created_after": _time_bound,
    "created_before": _time_bound,
    "flat_children": _flag,
    "loop_retry": _flag,
    "loop_skip": _flag,
}


def _checked_params(fn: Callable[..., Any]) -> list[tuple[str, int, Callable[[object, str], None]]]:
    """``(name, index in *args after self, check)`` of ``fn``'s checked parameters."""
    params = list(inspect.signature(fn).parameters.values())[1:]  # drop self
    out: list[tuple[str, int, Callable[[object, str], None]]] = []
    for i, p in enumerate(params):
        if p.name in ID_PARAMS:
            out.append((p.name, i, _optional_id if p.default is None else require_id))
        elif p.name in ARG_CHECKS:
            out.append((p.name, i, ARG_CHECKS[p.name]))
    return out


def _wrap(
    fn: Callable[..., Any], checks: list[tuple[str, int, Callable[[object, str], None]]]
) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        for name, index, check in checks:
            if index < len(args):
                check(args[index], name)
            elif name in kwargs:
                check(kwargs[name], name)
        return fn(self, *args, **kwargs)

    return wrapper


def checked_ids(cls: C) -> C:
    """Wrap every public method of ``cls`` (its own, not inherited) that takes an id parameter
    (``ID_PARAMS``) or another checked one (``ARG_CHECKS``) so a wrong type is refused by name.
    Decorating the class, rather than checking in each method, keeps methods added later covered."""
    for name, attr in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(attr):
            continue
        checks = _checked_params(attr)
        if checks:
            setattr(cls, name, _wrap(attr, checks))
    return cls


def json_input(value: Any, what: str, limit: int | None = None) -> bytes:
    """``value`` encoded as the store encodes it; BadInputError naming ``what`` if it cannot be
    stored (docs/components.md) or is above ``limit`` bytes."""
    try:
        blob = dumps(value)
    except UnstorableValueError as exc:
        raise exc.of(what) from None
    if limit is not None and len(blob) > limit:
        raise BadInputError(
            f"{what} is {len(blob)} bytes, above the limit of {limit} (max_callback_bytes): "
            "send large data elsewhere and pass its address"
        )
    return blob


def root_refused(root_id: str, call: str | None) -> InvalidOperationError:
    """The error of a node control (``call``) given the id of a run's root pipeline."""
    what = call or "this call"
    instead = INSTEAD.get(what, "pause_pipeline / resume_pipeline / revoke_pipeline")
    return InvalidOperationError(
        f"{root_id} is the root pipeline of a run, not a node: {what} acts on one node; use {instead}"
    )
