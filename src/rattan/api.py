"""The seed-compatible API: ``rattan.api.<fn>(runtime, ...)`` returning ``EngineAPIResult``.

Each function calls the ``rattan.Engine`` method of the same name and never raises: any exception
becomes ``EngineAPIResult(result=False, message=<text>, exc=<exception>)`` and is logged.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec

if TYPE_CHECKING:
    from rattan.engine.engine import Engine

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
        return f"EngineAPIResult(result={self.result}, message={self.message!r}, exc={self.exc!r}, data={self.data!r})"


def _api(fn: Callable[P, Any]) -> Callable[P, EngineAPIResult]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> EngineAPIResult:
        try:
            data = fn(*args, **kwargs)
        except Exception as exc:
            log.info("api %s failed: %s", fn.__name__, exc)
            return EngineAPIResult(False, str(exc) or type(exc).__name__, exc, None, traceback.format_exc())
        return EngineAPIResult(True, "success", None, data)

    return wrapper


@_api
def run_pipeline(runtime: Engine, pipeline: dict[str, Any], **options: Any) -> None:
    runtime.run_pipeline(pipeline, **options)


@_api
def get_pipeline_states(runtime: Engine, root_id: str, flat_children: bool = True) -> dict[str, Any]:
    return runtime.get_pipeline_states(root_id, flat_children)


@_api
def get_children_states(runtime: Engine, node_id: str) -> dict[str, Any]:
    return runtime.get_children_states(node_id)


@_api
def get_execution_data_inputs(runtime: Engine, node_id: str) -> dict[str, Any]:
    return runtime.get_execution_data_inputs(node_id)


@_api
def get_execution_data_outputs(runtime: Engine, node_id: str) -> dict[str, Any]:
    return runtime.get_execution_data_outputs(node_id)


@_api
def get_execution_data(runtime: Engine, node_id: str) -> dict[str, Any]:
    return runtime.get_execution_data(node_id)


@_api
def get_data(runtime: Engine, node_id: str) -> dict[str, Any]:
    return runtime.get_data(node_id)


@_api
def get_node_histories(runtime: Engine, node_id: str, loop: int = -1) -> list[dict[str, Any]]:
    return runtime.get_node_histories(node_id, loop)


@_api
def get_node_short_histories(runtime: Engine, node_id: str, loop: int = -1) -> list[dict[str, Any]]:
    return runtime.get_node_short_histories(node_id, loop)


@_api
def get_pipeline_debug_info(runtime: Engine, pipeline_id: str) -> dict[str, Any]:
    return runtime.get_pipeline_debug_info(pipeline_id)


@_api
def get_pipeline_execution_time(runtime: Engine, pipeline_id: str) -> dict[str, Any]:
    return runtime.get_pipeline_execution_time(pipeline_id)


@_api
def get_node_execution_time(runtime: Engine, node_id: str) -> dict[str, Any]:
    return runtime.get_node_execution_time(node_id)


@_api
def preview_node_inputs(
    runtime: Engine, pipeline: dict[str, Any], node_id: str, subprocess_stack: list[str] | None = None,
    root_pipeline_data: dict[str, Any] | None = None, parent_params: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    return runtime.preview_node_inputs(
        pipeline, node_id, subprocess_stack or [], root_pipeline_data or {}, parent_params or {}
    )
