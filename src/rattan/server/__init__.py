"""rattan's HTTP API (``pip install rattan[server]``): ``create_app(engine, tokens)`` builds the
Starlette application, ``load_tokens(path)`` reads the operator's tokens file, and ``rattan serve``
(``rattan.server.cli``) runs it on uvicorn. See docs/http-api.md.

Names are loaded on first use: ``rattan``'s command line imports ``rattan.server.cli`` to offer
``serve``, and must work without the server extra installed."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rattan.server.app import create_app
    from rattan.server.auth import Token, TokenFileError, load_tokens, parse_tokens

_WHERE = {
    "create_app": "rattan.server.app",
    "Token": "rattan.server.auth",
    "TokenFileError": "rattan.server.auth",
    "load_tokens": "rattan.server.auth",
    "parse_tokens": "rattan.server.auth",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'rattan.server' has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = ["Token", "TokenFileError", "create_app", "load_tokens", "parse_tokens"]
