"""The route table: one entry per route, from which both the Starlette app (``app.py``) and the
OpenAPI description (``openapi.py``) are built, so the two cannot drift apart. Request bodies are
checked against the same schemas the description publishes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

from rattan.server import dashboard, stream
from rattan.server import handlers as h
from rattan.server.auth import OPERATE, READ

PREFIX = "/api/v1"
Handler = Callable[[h.Ctx], Awaitable[Response]]
ANY: dict[str, Any] = {}  # a JSON value of any type
OBJECT: dict[str, Any] = {"type": "object"}
ID: dict[str, Any] = {"type": "string", "minLength": 1}


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "path", "query" or "header"
    schema: dict[str, Any]
    description: str


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # under PREFIX, with {name} path parameters
    operation: str  # the OpenAPI operationId
    scope: str  # READ or OPERATE (ADMIN has every scope; callback tokens only the callback route)
    summary: str
    handler: Handler
    params: tuple[Param, ...] = ()
    body: dict[str, Any] | None = None  # the JSON schema of the body; None: no body expected
    status: int = 200
    returns: dict[str, Any] = field(default_factory=lambda: OBJECT)
    media_type: str = "application/json"
    errors: tuple[int, ...] = (400, 404)

    @property
    def full_path(self) -> str:
        return PREFIX + self.path


def _obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


PIPELINE_ID = Param("pipeline_id", "path", ID, "the id of a run (its root pipeline)")
NODE_ID = Param("node_id", "path", ID, "the id of a node (or a subprocess, or the root pipeline)")
AFTER = Param(
    "after", "query", {"type": "integer", "minimum": 0}, "return events with a larger id (default 0)"
)
LIMIT = Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size (default 100)")
LAST_EVENT_ID = Param(
    "Last-Event-ID", "header", {"type": "string"}, "resume after this event id (wins over `after`)"
)
TIMEOUT = Param(
    "timeout", "query", {"type": "number"}, "close the stream after this many seconds (default: never)"
)
OK: dict[str, Any] = _obj({"ok": {"type": "boolean"}}, ("ok",))
EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "event_type": {"type": "string"},
        "data": ANY,
        "node_id": {"type": ["string", "null"]},
        "root_id": {"type": "string"},
        "schema_version": {"type": "integer"},
        "created_time": {"type": "string", "format": "date-time"},
    },
}
EVENT_PAGE = _obj({"events": {"type": "array", "items": EVENT}, "next_after": {"type": "integer"}})
DATA_OBJECT: dict[str, Any] = {"type": ["object", "null"]}
SUBMIT = _obj(
    {
        "pipeline": {"type": "object", "description": "the pipeline tree (as built by rattan.builder)"},
        "data": {**DATA_OBJECT, "description": "shorthand for root_pipeline_data"},
        "root_pipeline_data": DATA_OBJECT,
        "root_pipeline_context": DATA_OBJECT,
        "subprocess_context": DATA_OBJECT,
        "cycle_tolerate": {"type": "boolean"},
        "start_node_id": ID,
    },
    ("pipeline",),
)
SUBMITTED = _obj({"id": {"type": "string"}}, ("id",))
STREAM_PARAMS = (AFTER, TIMEOUT, LAST_EVENT_ID)
SSE = "text/event-stream"
CONTROL_ERRORS = (400, 404, 409)


def _pipeline_control(verb: str, summary: str, handler: Handler) -> Route:
    return Route(
        "POST", f"/pipelines/{{pipeline_id}}/{verb}", f"{verb}_pipeline", OPERATE, summary, handler,
        (PIPELINE_ID,), _obj({}), returns=OK, errors=CONTROL_ERRORS,
    )  # fmt: skip


def _node_control(
    verb: str, operation: str, summary: str, handler: Handler, body: dict[str, Any] | None = None
) -> Route:
    return Route(
        "POST", f"/nodes/{{node_id}}/{verb}", operation, OPERATE, summary, handler, (NODE_ID,),
        body or _obj({}), returns=OK, errors=CONTROL_ERRORS,
    )  # fmt: skip


ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/pipelines",
        "submit_pipeline",
        OPERATE,
        "Validate a pipeline tree, store it and start it (the body may also be the bare tree)",
        h.submit,
        (),
        SUBMIT,
        201,
        SUBMITTED,
        errors=(400, 409, 413, 422),
    ),
    Route(
        "GET",
        "/pipelines",
        "list_pipelines",
        READ,
        "The stored runs, newest first",
        h.list_runs,
        (
            Param(
                "state", "query", {"type": "string"}, "only runs whose root is in this state (RUNNING, ...)"
            ),
            Param(
                "has_failed_nodes",
                "query",
                {"type": "boolean"},
                "only runs with (true) or without (false) FAILED nodes",
            ),
            Param(
                "created_after",
                "query",
                {"type": "string"},
                "ISO 8601 datetime with an offset, or epoch seconds (exclusive)",
            ),
            Param(
                "created_before",
                "query",
                {"type": "string"},
                "ISO 8601 datetime with an offset, or epoch seconds (exclusive)",
            ),
            Param(
                "limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size (default 50)"
            ),
            Param("offset", "query", {"type": "integer", "minimum": 0}, "runs to skip (default 0)"),
        ),
        errors=(400,),
        returns=_obj(
            {
                "pipelines": {"type": "array", "items": OBJECT},
                "limit": {"type": "integer"},
                "offset": {"type": "integer"},
            }
        ),
    ),
    Route(
        "GET",
        "/pipelines/{pipeline_id}",
        "get_pipeline",
        READ,
        "A run's summary (state, failed nodes, what waits) and its node states with names and types",
        h.show,
        (
            PIPELINE_ID,
            Param(
                "flat_children",
                "query",
                {"type": "boolean"},
                "every node under the root (default true), or nested by subprocess",
            ),
        ),
        returns=_obj({"pipeline": OBJECT, "states": OBJECT}),
    ),
    Route(
        "GET",
        "/pipelines/{pipeline_id}/tree",
        "get_pipeline_tree",
        READ,
        "The validated tree the run was started with: nodes, gateways, flows, subprocesses",
        dashboard.tree,
        (PIPELINE_ID,),
        returns=_obj({"pipeline": OBJECT}),
    ),
    Route(
        "GET",
        "/pipelines/{pipeline_id}/events",
        "list_pipeline_events",
        READ,
        "A page of the run's durable event log, oldest first",
        h.pipeline_events,
        (PIPELINE_ID, AFTER, LIMIT),
        returns=EVENT_PAGE,
    ),
    Route(
        "GET",
        "/pipelines/{pipeline_id}/events/stream",
        "stream_pipeline_events",
        READ,
        "The run's events as server-sent events (id: = event id), resumable",
        stream.pipeline_stream,
        (PIPELINE_ID, *STREAM_PARAMS),
        returns={"type": "string"},
        media_type=SSE,
    ),
    Route(
        "GET",
        "/events",
        "list_events",
        READ,
        "A page of the event log of every run",
        h.all_events,
        (AFTER, LIMIT),
        returns=EVENT_PAGE,
        errors=(400,),
    ),
    Route(
        "GET",
        "/events/stream",
        "stream_events",
        READ,
        "Every run's events as server-sent events, resumable",
        stream.all_stream,
        STREAM_PARAMS,
        returns={"type": "string"},
        media_type=SSE,
        errors=(400,),
    ),
    _pipeline_control("pause", "Pause the run: nodes stop at their next step", h.pause_pipeline),
    _pipeline_control("resume", "Resume a paused run", h.resume_pipeline),
    _pipeline_control("revoke", "Revoke the run for good", h.revoke_pipeline),
    Route(
        "GET",
        "/nodes/{node_id}",
        "get_node",
        READ,
        "A node's state, name, type, what it waits for, and its direct children",
        h.node,
        (NODE_ID,),
    ),
    Route(
        "GET",
        "/nodes/{node_id}/data",
        "get_node_data",
        READ,
        "The inputs a node received and its outputs",
        h.node_data,
        (NODE_ID,),
        returns=_obj({"inputs": OBJECT, "outputs": OBJECT}),
    ),
    Route(
        "GET",
        "/nodes/{node_id}/histories",
        "get_node_histories",
        READ,
        "The node's past passes (retries, skips, loops) with their inputs and outputs",
        h.node_histories,
        (
            NODE_ID,
            Param("loop", "query", {"type": "integer", "minimum": -1}, "only this loop (default -1: all)"),
        ),
        returns=_obj({"histories": {"type": "array", "items": OBJECT}}),
    ),
    Route(
        "GET",
        "/nodes/{node_id}/log",
        "get_node_log",
        READ,
        "The plain log a node's service wrote",
        h.node_log,
        (
            NODE_ID,
            Param(
                "history_id", "query", {"type": "integer", "minimum": -1}, "the pass of this history entry"
            ),
            Param("version", "query", {"type": "string"}, "the pass of this node version (default: current)"),
        ),
        returns=_obj({"node_id": {"type": "string"}, "log": {"type": "string"}}),
    ),
    _node_control(
        "pause", "pause_node", "Set a pause appointment: the run pauses before this node", h.pause_node
    ),
    _node_control(
        "resume", "resume_node", "Remove a pause appointment / resume a paused node", h.resume_node
    ),
    _node_control(
        "retry",
        "retry_node",
        "Retry a FAILED node, optionally with new inputs",
        h.retry_node,
        _obj(
            {
                "data": {**DATA_OBJECT, "description": "input key -> value replacing the node's inputs"},
                "loop_retry": {"type": "boolean"},
            }
        ),
    ),
    _node_control(
        "skip", "skip_node", "Skip a FAILED node", h.skip_node, _obj({"loop_skip": {"type": "boolean"}})
    ),
    _node_control(
        "force-fail",
        "force_fail_node",
        "Fail a RUNNING activity now",
        h.force_fail,
        _obj({"ex_data": {"type": "string"}, "send_post_set_state_signal": {"type": "boolean"}}),
    ),
    _node_control(
        "retry-subprocess", "retry_subprocess", "Retry a FAILED subprocess from its start", h.retry_subprocess
    ),
    _node_control(
        "skip-exclusive-gateway",
        "skip_exclusive_gateway",
        "Let a FAILED exclusive gateway take the given flow",
        h.skip_exclusive_gateway,
        _obj({"flow_id": ID}, ("flow_id",)),
    ),
    _node_control(
        "skip-conditional-parallel-gateway",
        "skip_conditional_parallel_gateway",
        "Let a FAILED conditional parallel gateway take the given flows",
        h.skip_conditional_parallel_gateway,
        _obj(
            {"flow_ids": {"type": "array", "items": ID}, "converge_gateway_id": ID},
            ("flow_ids", "converge_gateway_id"),
        ),
    ),
    Route(
        "POST",
        "/nodes/{node_id}/callback",
        "callback",
        OPERATE,
        "Deliver a callback to a waiting node (operate, admin, or a callback:NODE_ID token)",
        h.callback,
        (NODE_ID,),
        _obj(
            {"version": ID, "data": ANY, "idempotency_key": {"type": ["string", "null"], "minLength": 1}},
            ("version",),
        ),
        202,
        _obj({"ok": {"type": "boolean"}, "callback_id": {"type": "integer"}}),
        errors=(400, 404, 409, 413),
    ),
)


def normalise_submit(body: Any) -> Any:
    """``POST /pipelines`` takes ``{"pipeline": TREE, ...}`` or the bare tree (a tree never has a
    ``pipeline`` key)."""
    if isinstance(body, dict) and "pipeline" not in body:
        return {"pipeline": body}
    return body
