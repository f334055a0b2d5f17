"""Bearer tokens with scopes, loaded from the operator's tokens file.

File format: one ``TOKEN SCOPE[,SCOPE...]`` per line; blank lines and ``#`` comments are ignored.
Scopes: ``read`` (every GET), ``operate`` (submit runs and every control, callbacks included),
``admin`` (everything), ``callback:NODE_ID`` (only ``POST /api/v1/nodes/NODE_ID/callback``: hand
it to the outside system that answers one node).

A presented token is compared with *every* configured token by ``hmac.compare_digest`` and the
loop never stops early, so neither the time taken nor the order of the file tells an attacker
how much of a guess was right.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

READ, OPERATE, ADMIN = "read", "operate", "admin"
CALLBACK_PREFIX = "callback:"
PLAIN_SCOPES = (READ, OPERATE, ADMIN)
MIN_TOKEN_LENGTH = 16  # shorter secrets are guessable; refuse them rather than warn


class TokenFileError(ValueError):
    """The tokens file is malformed; the message names the file, line and what is wrong."""


@dataclass(frozen=True)
class Token:
    secret: str
    scopes: frozenset[str]

    def allows(self, scope: str, node_id: str | None = None) -> bool:
        """True when this token may use a route needing ``scope`` (for the callback route,
        ``node_id`` is the node called back)."""
        if ADMIN in self.scopes or scope in self.scopes:
            return True
        return node_id is not None and scope == OPERATE and f"{CALLBACK_PREFIX}{node_id}" in self.scopes


def check_scope(scope: str) -> str | None:
    """None when ``scope`` is valid, else why not."""
    if scope in PLAIN_SCOPES:
        return None
    if scope.startswith(CALLBACK_PREFIX):
        return None if scope[len(CALLBACK_PREFIX) :] else "callback: needs a node id (callback:NODE_ID)"
    return f"unknown scope {scope!r}: use read, operate, admin or callback:NODE_ID"


def parse_tokens(lines: Iterable[str], source: str = "<tokens>") -> list[Token]:
    """Parse tokens-file lines; raise TokenFileError naming ``source`` and the line number."""
    tokens: list[Token] = []
    seen: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}:{number}"
        parts = line.split()
        if len(parts) != 2:
            raise TokenFileError(
                f"{where}: expected 'TOKEN SCOPE[,SCOPE]' (two fields separated by spaces), "
                f"got {len(parts)} field(s)"
            )
        secret, scope_text = parts
        if len(secret) < MIN_TOKEN_LENGTH:
            raise TokenFileError(
                f"{where}: token is {len(secret)} characters, at least {MIN_TOKEN_LENGTH} needed"
            )
        if secret in seen:
            raise TokenFileError(
                f"{where}: the same token appears twice (give it all its scopes on one line)"
            )
        scopes = [s for s in scope_text.split(",")]
        for scope in scopes:
            problem = check_scope(scope) if scope else "empty scope (a stray comma?)"
            if problem:
                raise TokenFileError(f"{where}: {problem}")
        seen.add(secret)
        tokens.append(Token(secret, frozenset(scopes)))
    return tokens


def load_tokens(path: str | Path) -> list[Token]:
    """Read a tokens file (see the module docstring). An empty file is an error: a server that
    nobody can call is a configuration mistake."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise TokenFileError(f"cannot read tokens file {file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise TokenFileError(f"tokens file {file} is not UTF-8 text: {exc}") from None
    tokens = parse_tokens(text.splitlines(), str(file))
    if not tokens:
        raise TokenFileError(f"tokens file {file} holds no token")
    return tokens


class TokenSet:
    """The configured tokens, looked up in constant time."""

    def __init__(self, tokens: Iterable[Token]) -> None:
        self._tokens = [(t.secret.encode(), t) for t in tokens]

    def find(self, presented: str) -> Token | None:
        """The token equal to ``presented``, or None; compares with every token (no early exit)."""
        given = presented.encode("utf-8", "surrogateescape")
        found: Token | None = None
        for secret, token in self._tokens:
            if hmac.compare_digest(given, secret):
                found = token
        return found

    def from_header(self, header: str | None) -> Token | None:
        """The token of an ``Authorization: Bearer TOKEN`` header, or None."""
        if not header:
            return None
        kind, _, value = header.strip().partition(" ")
        if kind.lower() != "bearer" or not value.strip():
            return None
        return self.find(value.strip())
