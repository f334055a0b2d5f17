"""The bamboo-compatible API: ``rattan.api.<fn>(runtime, ...)`` returning ``EngineAPIResult``.

Each function calls the ``rattan.Engine`` method of the same name and never raises: any exception
becomes ``EngineAPIResult(result=False, message=<text>, exc=<exception>)`` and is logged.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from rattan.results import EngineAPIResult, api_result

if TYPE_CHECKING:
    from rattan.facade import Engine

_api = api_result


@_api
def run_pipeline(runtime: Engine, pipeline: dict[str, Any], **options: Any) -> None:
    runtime.run_pipeline(pipeline, **options)


@_api
def get_pipeline_states(
    runtime: Engine, root_id: str, flat_children: bool = True, *, detail: bool = False
) -> dict[str, Any]:
    return runtime.get_pipeline_states(root_id, flat_children, detail=detail)


@_api
def get_children_states(runtime: Engine, node_id: str, *, detail: bool = False) -> dict[str, Any]:
    return runtime.get_children_states(node_id, detail=detail)


@_api
def list_components(
    runtime: Engine, code: str | None = None, version: str | None = None
) -> list[dict[str, Any]]:
    """The components ``runtime`` runs, one dict per ``(code, version)`` (``Engine.list_components``)."""
    return runtime.list_components(code, version)


@_api
def list_pipelines(
    runtime: Engine,
    state: str | None = None,
    has_failed_nodes: bool | None = None,
    limit: int = 50,
    offset: int = 0,
    *,
    created_after: float | datetime | None = None,
    created_before: float | datetime | None = None,
) -> list[dict[str, Any]]:
    return runtime.list_pipelines(
        state, has_failed_nodes, limit, offset, created_after=created_after, created_before=created_before
    )


@_api
def wait_pipeline(runtime: Engine, pipeline_id: str, timeout: float = 30.0) -> dict[str, Any]:
    return runtime.wait_pipeline(pipeline_id, timeout)


@_api
def get_execution_data_inputs(runtime: Engine, node_id: str) -> dict[str, Any]:
    return runtime.get_execution_data_inputs(node_id)


@_api
def get_execution_data_outputs(runtime: Engine, node_id: str) -> dict[str, Any]:
    return runtime.get_execution_data_outputs(node_id)


@_api
def get_execution_data(runtime: Engine, node_id: str) -> dict[str, Any]:
    return runtime.get_execution_data(node_id).as_dict()


@_api
def get_node_debug_info(runtime: Engine, node_id: str) -> dict[str, Any]:
    return runtime.get_node_debug_info(node_id)


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


@_api
def pause_pipeline(runtime: Engine, pipeline_id: str) -> None:
    runtime.pause_pipeline(pipeline_id)


@_api
def resume_pipeline(runtime: Engine, pipeline_id: str) -> None:
    runtime.resume_pipeline(pipeline_id)


@_api
def revoke_pipeline(runtime: Engine, pipeline_id: str) -> None:
    runtime.revoke_pipeline(pipeline_id)


@_api
def pause_node_appoint(runtime: Engine, node_id: str) -> None:
    runtime.pause_node_appoint(node_id)


@_api
def resume_node_appoint(runtime: Engine, node_id: str) -> None:
    runtime.resume_node_appoint(node_id)


@_api
def retry_node(
    runtime: Engine, node_id: str, data: dict[str, Any] | None = None, loop_retry: bool = False
) -> None:
    runtime.retry_node(node_id, data, loop_retry)


@_api
def retry_subprocess(runtime: Engine, node_id: str) -> None:
    runtime.retry_subprocess(node_id)


@_api
def skip_node(runtime: Engine, node_id: str, loop_skip: bool = False) -> None:
    runtime.skip_node(node_id, loop_skip)


@_api
def skip_exclusive_gateway(runtime: Engine, node_id: str, flow_id: str) -> None:
    runtime.skip_exclusive_gateway(node_id, flow_id)


@_api
def skip_conditional_parallel_gateway(
    runtime: Engine, node_id: str, flow_ids: list[str], converge_gateway_id: str
) -> None:
    runtime.skip_conditional_parallel_gateway(node_id, flow_ids, converge_gateway_id)


@_api
def forced_fail_activity(
    runtime: Engine, node_id: str, ex_data: str, send_post_set_state_signal: bool = True
) -> None:
    runtime.forced_fail_activity(node_id, ex_data, send_post_set_state_signal)


@_api
def callback(
    runtime: Engine, node_id: str, version: str, data: Any = None, idempotency_key: str | None = None
) -> int:
    """Queue a callback for a waiting node; ``data`` is the stored callback id. A repeated
    ``idempotency_key`` for the same node is acknowledged and applied once."""
    return runtime.callback(node_id, version, data, idempotency_key)


@_api
def update_context_values(runtime: Engine, pipeline_id: str, context_values: list[Any]) -> None:
    runtime.update_context_values(pipeline_id, context_values)


__all__ = [
    "EngineAPIResult",
    "callback",
    "forced_fail_activity",
    "get_children_states",
    "get_data",
    "get_execution_data",
    "get_execution_data_inputs",
    "get_execution_data_outputs",
    "get_node_debug_info",
    "get_node_execution_time",
    "get_node_histories",
    "get_node_short_histories",
    "get_pipeline_debug_info",
    "get_pipeline_execution_time",
    "get_pipeline_states",
    "list_components",
    "list_pipelines",
    "pause_node_appoint",
    "pause_pipeline",
    "preview_node_inputs",
    "resume_node_appoint",
    "resume_pipeline",
    "retry_node",
    "retry_subprocess",
    "revoke_pipeline",
    "run_pipeline",
    "skip_conditional_parallel_gateway",
    "skip_exclusive_gateway",
    "skip_node",
    "update_context_values",
    "wait_pipeline",
]
