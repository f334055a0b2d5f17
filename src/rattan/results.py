"""``EngineAPIResult``: what every ``rattan.api`` function returns (bamboo's result shape), and
the decorator that turns a function that raises into one that returns it."""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable
from typing import Any, ParamSpec

log = logging.getLogger("rattan.api")
P = ParamSpec("P")


class EngineAPIResult:
    """Result of an API call: ``result`` (bool), ``message``, ``exc``, ``data``, ``exc_trace``."""

    def __init__(
        self, result: bool, message: str, exc: BaseException | None = None, data: Any = None,
        exc_trace: str | None = None,
    ) -> None:  # fmt: skip
        self.result = result
        self.message = message
        self.exc = exc
        self.data = data
        self.exc_trace = exc_trace

    def __repr__(self) -> str:
        return (
            f"EngineAPIResult(result={self.result}, message={self.message!r}, "
            f"exc={self.exc!r}, data={self.data!r})"
        )


def api_result(fn: Callable[P, Any]) -> Callable[P, EngineAPIResult]:
    """Turn a function that raises into one returning ``EngineAPIResult`` (never raising)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> EngineAPIResult:
        try:
            data = fn(*args, **kwargs)
        except Exception as exc:
            log.info("%s.%s failed: %s", fn.__module__, fn.__name__, exc)
            return EngineAPIResult(False, str(exc) or type(exc).__name__, exc, None, traceback.format_exc())
        return EngineAPIResult(True, "success", None, data)

    return wrapper
