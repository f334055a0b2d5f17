"""rattan's HTTP API (``pip install rattan[server]``): ``create_app(engine, tokens)`` builds the
Starlette application, ``load_tokens(path)`` reads the operator's tokens file, and ``rattan serve``
(``rattan.server.cli``) runs it on uvicorn. See docs/http-api.md."""

from __future__ import annotations

from rattan.server.app import create_app
from rattan.server.auth import Token, TokenFileError, load_tokens, parse_tokens

__all__ = ["Token", "TokenFileError", "create_app", "load_tokens", "parse_tokens"]
