"""The OpenAPI 3.1 description of the HTTP API, generated from the route table (``routes.py``), so
every route, parameter and body schema in it is the one the server uses.

``python -m rattan.server.openapi > docs/openapi.json`` regenerates the checked-in copy; a test
keeps it equal to what ``/openapi.json`` serves.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rattan.server.routes import ROUTES, Route

ERROR_REF = {"$ref": "#/components/schemas/Error"}
REASONS = {
    400: "bad input: malformed JSON, a body or parameter of the wrong shape, or a value the engine refused",
    401: "no bearer token, or not a valid one",
    403: "the token lacks the scope this route needs",
    404: "the id names nothing",
    409: "not allowed in the current state, or a concurrent change won",
    413: "the body is larger than the server's limit",
    422: "the pipeline tree is invalid (problems lists every broken rule)",
    503: "the store or broker cannot be reached: retry later",
}


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.operation,
        "summary": route.summary,
        "tags": ["nodes" if route.path.startswith("/nodes") else "pipelines"],
        "security": [{"bearer": []}],
    }
    if route.params:
        op["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.where == "path",
                "description": p.description,
                "schema": p.schema,
            }
            for p in route.params
        ]
    if route.body is not None:
        op["requestBody"] = {
            "required": "required" in route.body,
            "content": {"application/json": {"schema": route.body}},
        }
    responses: dict[str, Any] = {
        str(route.status): {
            "description": "success",
            "content": {route.media_type: {"schema": route.returns}},
        }
    }
    for status in sorted({*route.errors, 401, 403, 503}):
        responses[str(status)] = {
            "description": REASONS[status],
            "content": {"application/json": {"schema": ERROR_REF}},
        }
    op["responses"] = responses
    return op


def build_openapi() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths.setdefault(route.full_path, {})[route.method.lower()] = _operation(route)
    paths["/healthz"] = {
        "get": {
            "operationId": "healthz",
            "summary": "Liveness check; answers without a token",
            "security": [],
            "responses": {"200": {"description": "the server is up"}},
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This description (any valid token)",
            "responses": {
                "200": {"description": "the OpenAPI document"},
                "401": {"description": REASONS[401]},
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rattan HTTP API",
            "version": "1",
            "description": "Submit, watch and operate rattan pipelines. See docs/http-api.md.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a token from the server's tokens file, with the scope the route needs",
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string", "description": "the error type (e.g. NotFoundError)"},
                        "message": {"type": "string"},
                        "problems": {
                            "type": "array",
                            "description": "422 only: every broken rule of the tree",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "node_id": {"type": "string"},
                                    "rule": {"type": "string"},
                                    "message": {"type": "string"},
                                    "node_name": {"type": ["string", "null"]},
                                },
                            },
                        },
                    },
                }
            },
        },
    }


def render() -> str:
    """The description as the text checked in as docs/openapi.json."""
    return json.dumps(build_openapi(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
