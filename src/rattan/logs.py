"""Structured logs: a JSON formatter that carries rattan's ids, and the ``--log-format`` option of
``rattan run``, ``rattan serve`` and ``rattan worker``.

The engine logs through the ``rattan.engine`` logger (and services through ``rattan.service``)
with ``extra={"root_pipeline_id": ..., "node_id": ...}`` where a record is about a run or a node.
A plain-text formatter drops those attributes; :class:`JsonFormatter` writes one JSON object per
line with them as fields, so a log pipeline can group the lines of one run or one node.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

LOG_FORMAT_ENV = "RATTAN_LOG_FORMAT"  # "text" or "json": the default of --log-format
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
# the record attributes rattan sets through ``extra=`` (engine and services): copied as fields
ID_FIELDS = ("root_pipeline_id", "pipeline_id", "node_id", "version", "loop", "owner", "callback_id")
# every attribute a plain LogRecord has: anything else on a record came from ``extra=``
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def node_extra(root_id: str | None, node_id: str | None = None, **more: Any) -> dict[str, Any]:
    """The ``extra=`` of a log call about a run (and a node of it)."""
    extra: dict[str, Any] = {"root_pipeline_id": root_id}
    if node_id is not None:
        extra["node_id"] = node_id
    extra.update(more)
    return extra


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``,
    the ids rattan attaches (``root_pipeline_id``, ``node_id``, ...), any other ``extra=`` field
    that JSON can carry (others as their ``repr``), and ``exc_info`` as text."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key in _STANDARD or key.startswith("_") or (value is None and key not in ID_FIELDS):
                continue
            out[key] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=repr, ensure_ascii=False)


def default_format() -> str:
    value = os.environ.get(LOG_FORMAT_ENV, "text").strip().lower()
    return value if value in FORMATS else "text"


def add_argument(parser: argparse.ArgumentParser) -> None:
    """``--log-format text|json`` (default: ``$RATTAN_LOG_FORMAT``, else text)."""
    parser.add_argument(
        "--log-format", choices=FORMATS, default=None,
        help=f"log lines as text or one JSON object per line (default: ${LOG_FORMAT_ENV}, else text)",
    )  # fmt: skip


def configure(fmt: str | None, level: int | str = logging.WARNING, stream: TextIO | None = None) -> None:
    """Send log records to ``stream`` (standard error) in format ``fmt`` (None: the default) from
    the root logger, replacing the handlers a previous call installed."""
    chosen = fmt or default_format()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else logging.Formatter(TEXT_FORMAT))
    handler.set_name("rattan-log-format")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "rattan-log-format"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else getattr(logging, level.upper(), logging.WARNING))


__all__ = ["LOG_FORMAT_ENV", "JsonFormatter", "add_argument", "configure", "default_format", "node_extra"]
