"""Server-sent events fed from the durable event log.

The stream polls ``engine.events`` (the same log every consumer reads), so it sees events of every
process sharing the store, not only this one's, and loses nothing while a client is away: each
message carries ``id: <event id>``, and a client that reconnects with ``Last-Event-ID`` (browsers'
EventSource do it by themselves) or ``?after=`` resumes right after the last event it saw.

Messages have no ``event:`` field, so an EventSource's ``onmessage`` receives all of them; the
event type is in the JSON ``data``. A comment line is sent when nothing happened for a while, so
proxies keep the connection open and a client that left is noticed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from rattan.facade import Engine
from rattan.server.encode import dumps
from rattan.server.handlers import Ctx, call, require_run
from rattan.server.http import ServerSettings, bad_request, query_float, query_int

PAGE = 200  # events read per look at the log
log = logging.getLogger("rattan.server")


def start_cursor(request: Request) -> int:
    """Where the stream starts: after ``Last-Event-ID`` when the client resumes (it wins over the
    URL, which an EventSource keeps from its first connection), else after ``?after=`` (0)."""
    header = request.headers.get("last-event-id")
    if header is not None and header.strip():
        text = header.strip()
        if not text.isdigit():
            raise bad_request(f"Last-Event-ID must be an event id (an integer), got {text!r}")
        return int(text)
    return query_int(request, "after", 0, 0)


def message(event: dict[str, object]) -> bytes:
    # JSON text holds no newline (dumps escapes them), so one data line is enough
    return b"id: %d\ndata: %s\n\n" % (int(str(event["id"])), dumps(event))


async def _events(
    engine: Engine, pipeline_id: str | None, after: int, request: Request, settings: ServerSettings,
    timeout: float | None,
) -> AsyncIterator[bytes]:  # fmt: skip
    yield b"retry: %d\n\n" % settings.retry_ms
    ends = None if timeout is None else time.monotonic() + timeout
    quiet_since = time.monotonic()
    cursor = after
    while ends is None or time.monotonic() < ends:
        try:
            page = await call(engine.events, pipeline_id, cursor, PAGE)
        except Exception:
            # the store is away (or worse): end the stream; the client reconnects after
            # ``retry`` with the last id it got, and loses nothing
            log.warning("event stream ended: reading the event log failed", exc_info=True)
            return
        for event in page:
            yield message(event)
            cursor = int(event["id"])
        if page:
            quiet_since = time.monotonic()
            if len(page) == PAGE:
                continue  # more are waiting: no pause
        elif time.monotonic() - quiet_since >= settings.heartbeat_seconds:
            yield b": keep-alive\n\n"
            quiet_since = time.monotonic()
        if await request.is_disconnected():
            return
        pause = settings.poll_seconds if ends is None else min(settings.poll_seconds, ends - time.monotonic())
        await anyio.sleep(max(pause, 0.0))


async def pipeline_stream(ctx: Ctx) -> Response:
    return await _stream(ctx, ctx.path("pipeline_id"))


async def all_stream(ctx: Ctx) -> Response:
    return await _stream(ctx, None)


async def _stream(ctx: Ctx, pipeline_id: str | None) -> Response:
    after = start_cursor(ctx.request)
    timeout = query_float(ctx.request, "timeout")
    if pipeline_id is not None:
        await call(require_run, ctx.engine, pipeline_id)  # 404 now, not an empty stream forever
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if ctx.request.method == "HEAD":  # headers only: no stream to keep open for nobody
        return Response(status_code=200, headers=headers, media_type="text/event-stream")
    body = _events(ctx.engine, pipeline_id, after, ctx.request, ctx.settings, timeout)
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)
