"""The tokens file (format and its errors), token comparison, and the OpenAPI description (served
equals checked in, and covers every route)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from rattan.server import Token, TokenFileError, load_tokens, parse_tokens
from rattan.server.auth import TokenSet
from rattan.server.openapi import render
from rattan.server.routes import ROUTES

pytestmark = pytest.mark.timeout(30)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
GOOD = "0123456789abcdef"


def test_load_tokens(tmp_path: Path) -> None:
    file = tmp_path / "tokens"
    file.write_text(
        "# operators\n"
        f"{GOOD}-admin admin\n"
        "\n"
        f"{GOOD}-ops   read,operate   # the on-call team\n"
        f"{GOOD}-hook callback:node-1\n"
    )
    assert load_tokens(file) == [
        Token(f"{GOOD}-admin", frozenset({"admin"})),
        Token(f"{GOOD}-ops", frozenset({"read", "operate"})),
        Token(f"{GOOD}-hook", frozenset({"callback:node-1"})),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            f"{GOOD}",
            "tokens:2: expected 'TOKEN SCOPE[,SCOPE]' (two fields separated by spaces), got 1 field(s)",
        ),
        (
            f"{GOOD} read operate",
            "tokens:2: expected 'TOKEN SCOPE[,SCOPE]' (two fields separated by spaces), got 3 field(s)",
        ),
        ("short read", "tokens:2: token is 5 characters, at least 16 needed"),
        (f"{GOOD} write", "tokens:2: unknown scope 'write': use read, operate, admin or callback:NODE_ID"),
        (f"{GOOD} read,", "tokens:2: empty scope (a stray comma?)"),
        (f"{GOOD} callback:", "tokens:2: callback: needs a node id (callback:NODE_ID)"),
        (f"{GOOD}-first read", "tokens:2: the same token appears twice (give it all its scopes on one line)"),
    ],
)
def test_malformed_lines_are_named(tmp_path: Path, line: str, message: str) -> None:
    file = tmp_path / "tokens"
    file.write_text(f"{GOOD}-first admin\n{line}\n")
    with pytest.raises(TokenFileError) as caught:
        load_tokens(file)
    assert str(caught.value) == f"{file}:{message[len('tokens:') :]}"


def test_unreadable_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="cannot read tokens file"):
        load_tokens(tmp_path / "missing")
    (tmp_path / "empty").write_text("# nothing\n")
    with pytest.raises(TokenFileError, match="holds no token"):
        load_tokens(tmp_path / "empty")
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TokenFileError, match="not UTF-8"):
        load_tokens(tmp_path / "binary")


def test_token_lookup() -> None:
    tokens = TokenSet(parse_tokens([f"{GOOD}-a read", f"{GOOD}-b operate"]))
    assert tokens.from_header(f"Bearer {GOOD}-b") == Token(f"{GOOD}-b", frozenset({"operate"}))
    assert tokens.from_header(f"bearer   {GOOD}-a ") is not None
    for header in (
        None,
        "",
        "Bearer",
        f"Basic {GOOD}-a",
        f"Bearer {GOOD}-",
        f"Bearer {GOOD}-a-",
        "Bearer \udcff",
    ):
        assert tokens.from_header(header) is None
    admin = Token(GOOD, frozenset({"admin"}))
    hook = Token(GOOD, frozenset({"callback:n1"}))
    assert admin.allows("read") and admin.allows("operate")
    assert hook.allows("operate", "n1") and not hook.allows("operate", "n2") and not hook.allows("read")
    assert not hook.allows("operate")


def test_served_openapi_equals_the_checked_in_file(client: TestClient) -> None:
    served = client.get("/openapi.json").json()
    checked_in: dict[str, Any] = json.loads(DOCS.read_text())
    assert served == checked_in, "regenerate: python -m rattan.server.openapi > docs/openapi.json"
    assert DOCS.read_text() == render()


def test_openapi_covers_every_route() -> None:
    spec = json.loads(render())
    for route in ROUTES:
        op = spec["paths"][route.full_path][route.method.lower()]
        assert {p["name"] for p in op.get("parameters", [])} == {p.name for p in route.params}
        assert ("requestBody" in op) == (route.body is not None)
        assert {"401", "403", str(route.status)} <= set(op["responses"])
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "a token from the server's tokens file, with the scope the route needs",
    }
    assert len(ROUTES) == 24
