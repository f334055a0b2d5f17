"""``create_app(engine, tokens)``: the Starlette application serving rattan's HTTP API.

Every request goes the same way: authenticate (401 without a valid bearer token), check the route's
scope (403), read the body within the size limit (413) as JSON (400), check it against the route's
schema (400), then call the engine; rattan errors become 4xx/503 JSON answers (``http.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from rattan.facade import Engine
from rattan.server.auth import Token, TokenSet
from rattan.server.dashboard import dashboard_routes
from rattan.server.handlers import Ctx
from rattan.server.http import ApiError, ServerSettings, check, error_response, json_response, read_json
from rattan.server.metrics_route import metrics_route
from rattan.server.routes import ROUTES, Route, normalise_submit

Endpoint = Callable[[Request], Awaitable[Response]]
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="rattan"'}


def _authenticate(tokens: TokenSet, request: Request) -> Token:
    token = tokens.from_header(request.headers.get("authorization"))
    if token is None:
        missing = not request.headers.get("authorization")
        message = "a bearer token is required" if missing else "the bearer token is not valid"
        raise ApiError(401, "Unauthorized", message, headers=UNAUTHORIZED_HEADERS)
    return token


def _endpoint(route: Route, engine: Engine, tokens: TokenSet, settings: ServerSettings) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            token = _authenticate(tokens, request)
            node_id = request.path_params.get("node_id") if route.operation == "callback" else None
            if not token.allows(route.scope, node_id):
                raise ApiError(403, "Forbidden", f"this token lacks the {route.scope!r} scope for this route")
            body: Any = None
            if route.body is not None:
                body = await read_json(request, settings.max_body_bytes)
                if route.operation == "submit_pipeline":
                    body = normalise_submit(body)
                if body is None and "required" not in route.body:
                    body = {}  # a control without options may be sent with no body at all
                check(body, route.body)
            return await route.handler(Ctx(engine, request, body, settings))
        except Exception as exc:
            return error_response(exc)

    return endpoint


def create_app(
    engine: Engine,
    tokens: Iterable[Token],
    *,
    max_body_bytes: int = 16 * 1024 * 1024,
    poll_seconds: float = 0.5,
    heartbeat_seconds: float = 15.0,
) -> Starlette:
    """The HTTP API over ``engine``. ``tokens``: from ``load_tokens`` (or ``Token`` values).
    ``max_body_bytes`` bounds request bodies; ``poll_seconds`` is how often event streams look at
    the log; ``heartbeat_seconds`` how long a quiet stream waits before a keep-alive comment.
    ``/healthz`` answers without a token (for load balancers), and so do the dashboard's static
    files (``dashboard.py``: they hold no data); every other path needs one."""
    token_set = TokenSet(tokens)
    settings = ServerSettings(max_body_bytes, poll_seconds, heartbeat_seconds)
    # imported here, so ``python -m rattan.server.openapi`` does not find itself half imported
    from rattan.server.openapi import build_openapi

    spec = build_openapi()

    async def healthz(request: Request) -> Response:
        return json_response({"ok": True})

    async def openapi(request: Request) -> Response:
        try:
            _authenticate(token_set, request)  # any valid token may read the description
        except ApiError as exc:
            return error_response(exc)
        return json_response(spec)

    async def http_error(request: Request, exc: Exception) -> Response:
        # unknown paths and methods: still 401 first, so an unauthenticated caller learns nothing
        try:
            _authenticate(token_set, request)
        except ApiError as err:
            return error_response(err)
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        names = {404: "NotFound", 405: "MethodNotAllowed"}
        detail = exc.detail if isinstance(exc, HTTPException) else "error"
        return json_response({"error": names.get(status, "HTTPError"), "message": str(detail)}, status)

    routes = [
        StarletteRoute(r.full_path, _endpoint(r, engine, token_set, settings), methods=[r.method])
        for r in ROUTES
    ]
    routes.append(StarletteRoute("/healthz", healthz, methods=["GET"]))
    routes.append(StarletteRoute("/openapi.json", openapi, methods=["GET"]))
    # the dashboard's static files: they hold no data, so they are served without a token
    routes.extend(dashboard_routes())
    # Prometheus metrics of the store (rattan.metrics), for a token with the read scope
    routes.append(metrics_route(engine, lambda request: _authenticate(token_set, request)))
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.engine = engine
    return app
