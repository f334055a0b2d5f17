"""``GET /metrics``: Prometheus metrics of the server's store (``rattan.metrics``), for a token
with the read scope (Prometheus sends it with ``authorization: {credentials: TOKEN}``).

One collector per application, made on the first scrape; each scrape reads the event log since
the previous one and the store's due work, in a worker thread (the reads block)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rattan.facade import Engine
from rattan.server.auth import READ, Token
from rattan.server.http import ApiError, error_response, json_response

PATH = "/metrics"


def metrics_route(engine: Engine, authenticate: Callable[[Request], Token]) -> Route:
    collectors: list[object] = []

    async def endpoint(request: Request) -> Response:
        try:
            if not authenticate(request).allows(READ):
                raise ApiError(403, "Forbidden", "this token lacks the 'read' scope for this route")
        except ApiError as exc:
            return error_response(exc)
        try:
            from rattan.metrics import MetricsCollector
        except ImportError as exc:  # prometheus-client is missing
            message = f"metrics need prometheus-client ({exc}): pip install 'rattan[server]'"
            return json_response({"error": "NotImplemented", "message": message}, 501)
        if not collectors:
            collectors.append(MetricsCollector(engine))
        collector = collectors[0]
        assert isinstance(collector, MetricsCollector)
        body, content_type = await run_in_threadpool(collector.exposition)
        return Response(body, headers={"content-type": content_type})

    handler: Callable[[Request], Awaitable[Response]] = endpoint
    return Route(PATH, handler, methods=["GET"])
