"""What each route does: read the request (already authenticated, its body already checked
against the route's schema), call the engine, shape the answer.

Engine calls block (a store transaction), so each runs in Starlette's thread pool: a slow store
never stalls the event loop that serves the other requests and the event streams.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from rattan.errors import NotFoundError
from rattan.facade import Engine
from rattan.server.http import ServerSettings, bad_request, json_response, query_bool, query_int, query_time

T = TypeVar("T")
MAX_PAGE = 1000  # the engine's own bound on list_pipelines and events pages


@dataclass
class Ctx:
    """One request: the engine, the request, its checked JSON body (None when it sent none)."""

    engine: Engine
    request: Request
    body: Any
    settings: ServerSettings

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])

    def field(self, name: str, default: Any = None) -> Any:
        return self.body.get(name, default) if isinstance(self.body, dict) else default


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await run_in_threadpool(fn, *args, **kwargs)


OK = {"ok": True}


# -- pipelines -------------------------------------------------------------------------------------


async def submit(ctx: Ctx) -> Response:
    body = ctx.body
    if "data" in body and "root_pipeline_data" in body:
        raise bad_request("give root_pipeline_data or its shorthand data, not both")
    root_data = body.get("root_pipeline_data", body.get("data"))
    options: dict[str, Any] = {}
    for key in ("cycle_tolerate", "start_node_id"):
        if key in body:
            options[key] = body[key]
    tree = body["pipeline"]
    await call(
        ctx.engine.run_pipeline,
        tree,
        root_data,
        body.get("root_pipeline_context"),
        body.get("subprocess_context"),
        **options,
    )
    root = str(tree["id"])
    return json_response({"id": root}, 201, {"Location": f"/api/v1/pipelines/{root}"})


async def list_runs(ctx: Ctx) -> Response:
    req = ctx.request
    limit = query_int(req, "limit", 50, 1, MAX_PAGE)
    offset = query_int(req, "offset", 0, 0)
    runs = await call(
        ctx.engine.list_pipelines,
        req.query_params.get("state"),
        query_bool(req, "has_failed_nodes", None),
        limit,
        offset,
        created_after=query_time(req, "created_after"),
        created_before=query_time(req, "created_before"),
    )
    return json_response({"pipelines": runs, "limit": limit, "offset": offset})


def _show(engine: Engine, pipeline_id: str, flat: bool) -> dict[str, Any]:
    # wait_pipeline with no time to wait is the run's summary (and refuses a node id with the
    # id of its run); "timed_out" means nothing without a wait, so it is not shown
    summary = engine.wait_pipeline(pipeline_id, 0)
    summary.pop("timed_out", None)
    states = engine.get_pipeline_states(pipeline_id, flat, detail=True).get(pipeline_id)
    return {"pipeline": summary, "states": states}


async def show(ctx: Ctx) -> Response:
    flat = query_bool(ctx.request, "flat_children", True)
    return json_response(await call(_show, ctx.engine, ctx.path("pipeline_id"), bool(flat)))


def require_run(engine: Engine, pipeline_id: str) -> None:
    """NotFoundError unless ``pipeline_id`` is the root of a stored run."""
    st = engine.get_state_or_none(pipeline_id)
    if st is None:
        raise NotFoundError(f"pipeline {pipeline_id} does not exist")
    if st.root_id != pipeline_id:
        raise NotFoundError(f"{pipeline_id} is a node of pipeline {st.root_id}, not a pipeline that was run")


def _events_page(engine: Engine, pipeline_id: str | None, after: int, limit: int) -> dict[str, Any]:
    if pipeline_id is not None:
        require_run(engine, pipeline_id)
    page = engine.events(pipeline_id, after, limit)
    # the cursor of the next call: the last id seen, or the one given when nothing is new
    return {"events": page, "next_after": page[-1]["id"] if page else after}


async def pipeline_events(ctx: Ctx) -> Response:
    after = query_int(ctx.request, "after", 0, 0)
    limit = query_int(ctx.request, "limit", 100, 1, MAX_PAGE)
    return json_response(await call(_events_page, ctx.engine, ctx.path("pipeline_id"), after, limit))


async def all_events(ctx: Ctx) -> Response:
    after = query_int(ctx.request, "after", 0, 0)
    limit = query_int(ctx.request, "limit", 100, 1, MAX_PAGE)
    return json_response(await call(_events_page, ctx.engine, None, after, limit))


async def pause_pipeline(ctx: Ctx) -> Response:
    await call(ctx.engine.pause_pipeline, ctx.path("pipeline_id"))
    return json_response(OK)


async def resume_pipeline(ctx: Ctx) -> Response:
    await call(ctx.engine.resume_pipeline, ctx.path("pipeline_id"))
    return json_response(OK)


async def revoke_pipeline(ctx: Ctx) -> Response:
    await call(ctx.engine.revoke_pipeline, ctx.path("pipeline_id"))
    return json_response(OK)


# -- nodes -------------------------------------------------------------------------------------------


def _node(engine: Engine, node_id: str) -> dict[str, Any]:
    found = engine.get_children_states(node_id, detail=True)
    if node_id not in found:
        raise NotFoundError(f"node {node_id} has no state (it does not exist or was not reached yet)")
    entry: dict[str, Any] = found[node_id]
    return entry


async def node(ctx: Ctx) -> Response:
    return json_response(await call(_node, ctx.engine, ctx.path("node_id")))


def _require_node(engine: Engine, node_id: str) -> None:
    if not engine.has_state(node_id):
        raise NotFoundError(f"node {node_id} has no state (it does not exist or was not reached yet)")


def _data(engine: Engine, node_id: str) -> dict[str, Any]:
    _require_node(engine, node_id)
    return {
        "inputs": engine.get_execution_data_inputs(node_id),
        "outputs": engine.get_execution_data_outputs(node_id),
    }


async def node_data(ctx: Ctx) -> Response:
    return json_response(await call(_data, ctx.engine, ctx.path("node_id")))


def _histories(engine: Engine, node_id: str, loop: int) -> dict[str, Any]:
    _require_node(engine, node_id)
    return {"histories": engine.get_node_histories(node_id, loop)}


async def node_histories(ctx: Ctx) -> Response:
    loop = query_int(ctx.request, "loop", -1, -1)
    return json_response(await call(_histories, ctx.engine, ctx.path("node_id"), loop))


def _log(engine: Engine, node_id: str, history_id: int, version: str | None) -> dict[str, Any]:
    _require_node(engine, node_id)
    return {"node_id": node_id, "log": engine.get_plain_log_for_node(node_id, history_id, version)}


async def node_log(ctx: Ctx) -> Response:
    history_id = query_int(ctx.request, "history_id", -1, -1)
    version = ctx.request.query_params.get("version") or None
    return json_response(await call(_log, ctx.engine, ctx.path("node_id"), history_id, version))


async def pause_node(ctx: Ctx) -> Response:
    await call(ctx.engine.pause_node_appoint, ctx.path("node_id"))
    return json_response(OK)


async def resume_node(ctx: Ctx) -> Response:
    await call(ctx.engine.resume_node_appoint, ctx.path("node_id"))
    return json_response(OK)


async def retry_node(ctx: Ctx) -> Response:
    await call(
        ctx.engine.retry_node, ctx.path("node_id"), ctx.field("data"), bool(ctx.field("loop_retry", False))
    )
    return json_response(OK)


async def skip_node(ctx: Ctx) -> Response:
    await call(ctx.engine.skip_node, ctx.path("node_id"), bool(ctx.field("loop_skip", False)))
    return json_response(OK)


async def force_fail(ctx: Ctx) -> Response:
    await call(
        ctx.engine.forced_fail_activity,
        ctx.path("node_id"),
        str(ctx.field("ex_data", "")),
        bool(ctx.field("send_post_set_state_signal", True)),
    )
    return json_response(OK)


async def retry_subprocess(ctx: Ctx) -> Response:
    await call(ctx.engine.retry_subprocess, ctx.path("node_id"))
    return json_response(OK)


async def skip_exclusive_gateway(ctx: Ctx) -> Response:
    await call(ctx.engine.skip_exclusive_gateway, ctx.path("node_id"), ctx.field("flow_id"))
    return json_response(OK)


async def skip_conditional_parallel_gateway(ctx: Ctx) -> Response:
    await call(
        ctx.engine.skip_conditional_parallel_gateway,
        ctx.path("node_id"),
        list(ctx.field("flow_ids")),
        ctx.field("converge_gateway_id"),
    )
    return json_response(OK)


async def callback(ctx: Ctx) -> Response:
    callback_id = await call(
        ctx.engine.callback,
        ctx.path("node_id"),
        ctx.field("version"),
        ctx.field("data"),
        ctx.field("idempotency_key"),
    )
    # accepted, not applied: the node's schedule runs it on a worker
    return json_response({"ok": True, "callback_id": callback_id}, 202)
