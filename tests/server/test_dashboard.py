"""The dashboard's files as served (in process, no browser): without a token, with a policy that
lets the page load nothing from anywhere else, nothing but the listed files; and the run's tree
route the page draws its graph from. The browser tests are in tests/browser."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from server_helpers import READER, act, linear
from starlette.testclient import TestClient

import rattan
from rattan.server.dashboard import CSP, FILES, PREFIX, load_files
from waits import wait_finished

pytestmark = pytest.mark.timeout(30)
STATIC = Path(rattan.__file__).resolve().parent / "server" / "static"
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # a name, never fetched


def test_the_files_are_served_without_a_token_and_load_nothing_from_elsewhere(
    make_client: Callable[..., TestClient],
) -> None:
    anonymous = make_client(None)
    for name, media_type in FILES.items():
        res = anonymous.get(PREFIX + name)
        assert res.status_code == 200, name
        assert res.headers["content-type"] == media_type
        assert res.headers["content-security-policy"] == CSP
        assert res.headers["x-content-type-options"] == "nosniff"
        assert res.content == (STATIC / name).read_bytes()
        # no URL of another origin in any file: no CDN, no web font, no analytics
        assert re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", res.text.replace(SVG_NAMESPACE, "")) == []
    page = anonymous.get(PREFIX)
    assert page.status_code == 200 and page.content == (STATIC / "index.html").read_bytes()
    assert "default-src 'none'" in CSP and "connect-src 'self'" in CSP
    # every script and style the page names is one of the served files
    named = re.findall(r'(?:src|href)="([^":#]+)"', page.text)
    assert sorted(named) == sorted(n for n in FILES if n != "index.html")


def test_the_root_leads_to_the_dashboard(make_client: Callable[..., TestClient]) -> None:
    anonymous = make_client(None)
    for path in ("/", "/dashboard"):
        res = anonymous.get(path, follow_redirects=False)
        assert (res.status_code, res.headers["location"]) == (307, PREFIX)


def test_other_files_are_not_served(make_client: Callable[..., TestClient]) -> None:
    anonymous, admin = make_client(None), make_client()
    for path in (f"{PREFIX}nope.js", f"{PREFIX}../dashboard.py", f"{PREFIX}static/app.js", "/static/app.js"):
        assert anonymous.get(path).status_code == 401, path  # unknown paths: a token first
        assert admin.get(path).status_code == 404, path
    assert anonymous.post(f"{PREFIX}app.js").status_code == 401
    assert admin.post(f"{PREFIX}app.js").status_code == 405


def test_the_files_ship_in_the_package() -> None:
    assert set(load_files()) == set(FILES)
    assert sorted(p.name for p in STATIC.iterdir()) == sorted(FILES)


def test_the_tree_route_returns_the_stored_tree(
    make_client: Callable[..., TestClient], engine: rattan.Engine
) -> None:
    echo = act("srv_echo", x=2)
    tree = linear(echo)
    admin = make_client()
    assert admin.post("/api/v1/pipelines", json=tree).status_code == 201
    wait_finished(engine, tree["id"])
    res = make_client(READER).get(f"/api/v1/pipelines/{tree['id']}/tree")
    assert res.status_code == 200
    got = res.json()["pipeline"]
    assert got["id"] == tree["id"]
    assert got["activities"][echo.id]["component"] == {
        "code": "srv_echo",
        "inputs": {"x": {"type": "plain", "value": 2}},
    }
    assert got["flows"].keys() == tree["flows"].keys()
    missing = admin.get("/api/v1/pipelines/pnope/tree")
    assert (missing.status_code, missing.json()["error"]) == (404, "NotFoundError")
    node = admin.get(f"/api/v1/pipelines/{echo.id}/tree")
    assert node.status_code == 404
    assert (
        node.json()["message"] == f"{echo.id} is a node of pipeline {tree['id']}, not a pipeline that was run"
    )
