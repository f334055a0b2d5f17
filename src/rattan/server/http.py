"""Request and response plumbing shared by the routes: errors as JSON, bounded JSON bodies, a small
JSON-schema check (the same schemas the OpenAPI description publishes) and query parameters.

Every failure a client can cause ends here as a 4xx with ``{"error": <type>, "message": <text>}``;
only a bug in rattan itself gives a 500, and that one says nothing about the internals.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from rattan import errors
from rattan.server.encode import dumps

log = logging.getLogger("rattan.server")
JSON_TYPE = "application/json"


@dataclass(frozen=True)
class ServerSettings:
    """Limits and timings of one server (``create_app`` keywords)."""

    max_body_bytes: int = 16 * 1024 * 1024  # larger request bodies get 413
    poll_seconds: float = 0.5  # event streams: between looks at the log when nothing is new
    heartbeat_seconds: float = 15.0  # event streams: a comment after this long without an event
    retry_ms: int = 2000  # event streams: the reconnection delay suggested to EventSource clients


class ApiError(Exception):
    """An HTTP error answer: status, error type name and message (plus extra body keys)."""

    def __init__(
        self, status: int, error: str, message: str, extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(value), status, headers=headers, media_type=JSON_TYPE)


# most specific first: TreeInvalidException is a BadInputError, ScheduleFinishedError an
# InvalidOperationError...
_STATUS: list[tuple[type[errors.RattanError], int]] = [
    (errors.TreeInvalidException, 422),
    (errors.StartPositionInvalidException, 422),
    (errors.BadInputError, 400),
    (errors.NotFoundError, 404),
    (errors.InvalidOperationError, 409),
    (errors.ConflictError, 409),
    (errors.BackendUnavailableError, 503),
]


def error_response(exc: BaseException) -> Response:
    """The JSON answer for an exception raised while serving a request."""
    if isinstance(exc, ApiError):
        body = {"error": exc.error, "message": exc.message, **exc.extra}
        return json_response(body, exc.status, exc.headers)
    if isinstance(exc, errors.RattanError):
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 400)
        body = {"error": type(exc).__name__, "message": str(exc) or type(exc).__name__}
        if isinstance(exc, errors.TreeInvalidException):
            body["problems"] = [
                {"node_id": p.node_id, "rule": p.rule, "message": p.message, "node_name": p.node_name}
                for p in exc.problems
            ]
        headers = {"Retry-After": "5"} if status == 503 else None
        return json_response(body, status, headers)
    # a bug: log it whole, tell the client only that it happened
    log.error("internal error while serving a request", exc_info=exc)
    return json_response(
        {"error": "InternalError", "message": "internal server error (see the server log)"}, 500
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def read_json(request: Request, limit: int) -> Any:
    """The request body parsed as JSON (None when empty). 413 beyond ``limit`` bytes, counted as
    the body arrives (a lying or absent Content-Length does not get past it); 400 for bad JSON."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise bad_request("Content-Length is not a number")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return None
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise bad_request("the body is not UTF-8 text") from None
    except RecursionError:
        raise bad_request("the body is nested too deeply") from None
    except ValueError as exc:
        raise ApiError(400, "BadJSON", f"the body is not valid JSON: {exc}") from None


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "PayloadTooLarge", f"the body is larger than the limit of {limit} bytes")


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "null": (type(None),),
}


def check(value: Any, schema: dict[str, Any], where: str = "body") -> None:
    """Check ``value`` against the subset of JSON schema the routes use (type, properties,
    required, additionalProperties: false, items, minLength, minimum); 400 naming the place."""
    kinds = schema.get("type")
    if kinds is not None:
        names = kinds if isinstance(kinds, list) else [kinds]
        ok = any(
            isinstance(value, _PY_TYPES[n]) and not (n in ("integer", "number") and isinstance(value, bool))
            for n in names
        )
        if not ok:
            raise bad_request(f"{where} must be {' or '.join(names)}, got {_json_kind(value)}")
    if isinstance(value, dict) and "properties" in schema:
        props: dict[str, Any] = schema["properties"]
        for name in schema.get("required", []):
            if name not in value:
                raise bad_request(f"{where} lacks the required key {name!r}")
        if schema.get("additionalProperties") is False:
            extra = sorted(set(value) - set(props))
            if extra:
                raise bad_request(f"{where} has unknown key(s) {extra}: allowed are {sorted(props)}")
        for name, sub in props.items():
            if name in value:
                check(value[name], sub, f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            check(item, schema["items"], f"{where}[{index}]")
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        raise bad_request(f"{where} must not be empty")
    if isinstance(value, int) and not isinstance(value, bool) and value < schema.get("minimum", value):
        raise bad_request(f"{where} must be at least {schema['minimum']}, got {value}")


def _json_kind(value: Any) -> str:
    for name, kinds in _PY_TYPES.items():
        if isinstance(value, kinds) and not (name == "integer" and isinstance(value, bool)):
            return name
    return type(value).__name__


# -- query parameters ------------------------------------------------------------------------------


def query_int(request: Request, name: str, default: int, low: int, high: int | None = None) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_request(f"query parameter {name} must be an integer, got {text!r}") from None
    if value < low or (high is not None and value > high):
        upper = f" and at most {high}" if high is not None else ""
        raise bad_request(f"query parameter {name} must be at least {low}{upper}, got {value}")
    return value


def query_float(request: Request, name: str) -> float | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise bad_request(f"query parameter {name} must be a number of seconds, got {text!r}") from None
    if not 0 < value < 86400 * 365:
        raise bad_request(f"query parameter {name} must be a positive number of seconds, got {text!r}")
    return value


def query_bool(request: Request, name: str, default: bool | None) -> bool | None:
    text = request.query_params.get(name)
    if text is None:
        return default
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise bad_request(f"query parameter {name} must be true or false, got {text!r}")


def query_time(request: Request, name: str) -> float | datetime | None:
    """An ISO 8601 datetime (an offset is required: a naive time would be ambiguous) or seconds
    since the epoch."""
    text = request.query_params.get(name)
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise bad_request(f"query parameter {name} must be a finite number, got {text!r}")
        return seconds
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(
            f"query parameter {name} must be an ISO 8601 datetime with an offset or seconds since the "
            f"epoch, got {text!r}"
        ) from None
    if value.tzinfo is None:
        raise bad_request(f"query parameter {name} needs a UTC offset (e.g. {text}+00:00), got {text!r}")
    return value
