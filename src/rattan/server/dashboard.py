"""The web dashboard: a few static files (HTML, CSS, JavaScript written by hand, no build step)
served under ``/dashboard/``, and the one read the API lacked for it, a run's stored tree.

The static files hold no data: every run, state and control goes through the JSON API with the
bearer token the page asks for (kept in the tab's sessionStorage). So they are served without a
token, the one exception (with ``/healthz``) to "every path needs a token"; the auth tests list
the exceptions explicitly. Only the files named in ``FILES`` are served, read once from the
package at start, so no request can reach any other file.

Every page carries a Content-Security-Policy allowing nothing but this server: the browser never
loads a script, style, font or image from anywhere else, and the page can talk to this origin
only.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route as StarletteRoute

from rattan.errors import NotFoundError
from rattan.facade import Engine
from rattan.server.handlers import Ctx, call, require_run
from rattan.server.http import json_response

PREFIX = "/dashboard/"
FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "graph.js": "text/javascript; charset=utf-8",
    "views.js": "text/javascript; charset=utf-8",
    "pipeline.js": "text/javascript; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # the files change with rattan's version only; revalidate so an upgrade shows at once
    "Cache-Control": "no-cache",
}


def load_files() -> dict[str, bytes]:
    """The dashboard's files, read from the installed package (``rattan/server/static``)."""
    folder = resources.files("rattan.server").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in FILES}


def public_paths() -> tuple[str, ...]:
    """The paths the dashboard serves without a token (all of them static)."""
    return ("/", "/dashboard", PREFIX, *(PREFIX + name for name in FILES))


def dashboard_routes() -> list[StarletteRoute]:
    """The routes of the dashboard's files: ``/dashboard/`` is the page, ``/`` and
    ``/dashboard`` lead there."""
    files = load_files()

    def serve(name: str) -> Any:
        body, media_type = files[name], FILES[name]

        async def endpoint(request: Request) -> Response:
            return Response(body, media_type=media_type, headers=HEADERS)

        return endpoint

    async def to_dashboard(request: Request) -> Response:
        return RedirectResponse(PREFIX, status_code=307)

    routes = [
        StarletteRoute("/", to_dashboard, methods=["GET"]),
        StarletteRoute("/dashboard", to_dashboard, methods=["GET"]),
        StarletteRoute(PREFIX, serve("index.html"), methods=["GET"]),
    ]
    routes.extend(StarletteRoute(PREFIX + name, serve(name), methods=["GET"]) for name in FILES)
    return routes


# -- GET /api/v1/pipelines/{id}/tree -------------------------------------------------------------------


def _tree(engine: Engine, pipeline_id: str) -> dict[str, Any]:
    require_run(engine, pipeline_id)
    record = engine.core.store.read(lambda tx: tx.run(pipeline_id))
    if record is None:  # deleted between the two reads
        raise NotFoundError(f"pipeline {pipeline_id} does not exist")
    return {"pipeline": record.tree}


async def tree(ctx: Ctx) -> Response:
    """The validated tree the run was started with: its nodes, gateways, flows and subprocesses
    (what the dashboard draws)."""
    return json_response(await call(_tree, ctx.engine, ctx.path("pipeline_id")))
