"""Checks of what callers pass to ``rattan.Engine``, in one place, so a bad argument is refused
with a typed error naming it (never a bare ``KeyError``/``TypeError`` or a store binding error):

- ``checked_ids``: a class decorator that refuses a non-``str`` (or empty) id given to any method
  parameter named like an id, before the method reads or writes anything.
- ``json_input``: encodes a caller's value as the store will, refusing a non-JSON one up front
  (so nothing is half stored).
- ``root_refused``: the error of a node control given the id of a run's root pipeline.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
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
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise BadInputError(f"{arg} must be a non-empty str id, got {type(value).__name__}: {shown}")


def _id_positions(fn: Callable[..., Any]) -> list[tuple[str, int, bool]]:
    """``(name, index in *args after self, optional)`` of ``fn``'s id parameters."""
    params = list(inspect.signature(fn).parameters.values())[1:]  # drop self
    out: list[tuple[str, int, bool]] = []
    for i, p in enumerate(params):
        if p.name in ID_PARAMS:
            out.append((p.name, i, p.default is None))
    return out


def _wrap(fn: Callable[..., Any], ids: list[tuple[str, int, bool]]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        for name, index, optional in ids:
            if index < len(args):
                require_id(args[index], name, optional=optional)
            elif name in kwargs:
                require_id(kwargs[name], name, optional=optional)
        return fn(self, *args, **kwargs)

    return wrapper


def checked_ids(cls: C) -> C:
    """Wrap every public method of ``cls`` (its own, not inherited) that takes an id parameter
    (``ID_PARAMS``) so a wrong type is refused by name. Decorating the class, rather than checking
    in each method, keeps methods added later covered."""
    for name, attr in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(attr):
            continue
        ids = _id_positions(attr)
        if ids:
            setattr(cls, name, _wrap(attr, ids))
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
