"""The auth walk: every route refuses a request with no token, a wrong token (401) and a token
without the route's scope (403); callback tokens reach only their own node's callback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from server_helpers import ADMIN, OPERATOR, READER, WRONG, act, linear
from starlette.testclient import TestClient

import rattan
from rattan.server import Token
from rattan.server.dashboard import public_paths
from rattan.server.routes import ROUTES, Route
from waits import wait_finished, wait_for

pytestmark = pytest.mark.timeout(60)
CALLBACK_NODE = "enode-that-a-callback-token-owns"
CALLBACKER = "callback-token-000000001"
EXTRA = [Token(CALLBACKER, frozenset({f"callback:{CALLBACK_NODE}"}))]


def url(route: Route, node_id: str = "some-id") -> str:
    path = route.full_path.replace("{pipeline_id}", "some-id").replace("{node_id}", node_id)
    return path + ("?timeout=0.1" if path.endswith("/stream") else "")


def send(client: TestClient, route: Route, token: str | None, node_id: str = "some-id") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.request(route.method, url(route, node_id), headers=headers, json={} if route.body else None)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_route_needs_a_valid_token_with_its_scope(
    make_client: Callable[..., TestClient], route: Route
) -> None:
    client = make_client(None, EXTRA)
    for token in (None, WRONG, ""):
        res = send(client, route, token)
        assert res.status_code == 401, (token, res.text)
        assert res.json()["error"] == "Unauthorized" and res.json()["message"]
        assert res.headers["www-authenticate"].startswith("Bearer")
    for bad_header in ("Basic " + ADMIN, ADMIN, "Bearer", f"Bearer {ADMIN}x", f"Bearer {ADMIN[:-1]}"):
        res = client.request(route.method, url(route), headers={"Authorization": bad_header})
        assert res.status_code == 401, (bad_header, res.text)
    wrong_scope = OPERATOR if route.scope == "read" else READER
    for token in (wrong_scope, CALLBACKER):
        res = send(client, route, token)
        assert res.status_code == 403, (token, res.text)
        assert res.json()["error"] == "Forbidden" and route.scope in res.json()["message"]
    # the right scope and admin get past auth (to a 404 for this id, or a page)
    for token in (ADMIN, OPERATOR if route.scope == "operate" else READER):
        assert send(client, route, token).status_code not in (401, 403)


def test_unknown_paths_and_methods_need_a_token_too(make_client: Callable[..., TestClient]) -> None:
    anonymous = make_client(None)
    for method, path in (("GET", "/api/v1/nope"), ("DELETE", "/api/v1/pipelines"), ("GET", "/nope")):
        res = anonymous.request(method, path)
        assert res.status_code == 401 and res.json()["error"] == "Unauthorized"
    admin = make_client()
    res = admin.get("/api/v1/nope")
    assert res.status_code == 404 and res.json()["error"] == "NotFound"
    res = admin.delete("/api/v1/pipelines")
    assert res.status_code == 405 and res.json()["error"] == "MethodNotAllowed"


# The only paths served without a token, listed one by one: the liveness check, and the dashboard's
# static files and the redirects to them (they hold no data: the page asks for a token and sends it
# with every API call). Any other path the app serves must answer 401 without a token.
PUBLIC = {
    "/healthz",
    "/",
    "/dashboard",
    "/dashboard/",
    "/dashboard/index.html",
    "/dashboard/app.css",
    "/dashboard/api.js",
    "/dashboard/views.js",
    "/dashboard/graph.js",
    "/dashboard/pipeline.js",
    "/dashboard/app.js",
}


def test_every_path_of_the_app_needs_a_token_but_the_listed_public_ones(
    make_client: Callable[..., TestClient],
) -> None:
    anonymous, admin = make_client(None), make_client()
    routes = [r for r in anonymous.app.routes if hasattr(r, "methods")]
    assert PUBLIC.issubset(r.path for r in routes)
    assert {"/healthz", *public_paths()} == PUBLIC  # a new public path is added here, knowingly
    for route in routes:
        path = route.path.replace("{pipeline_id}", "some-id").replace("{node_id}", "some-id")
        path += "?timeout=0.1" if path.endswith("/stream") else ""
        for method in sorted(route.methods):
            res = anonymous.request(method, path, follow_redirects=False)
            if route.path not in PUBLIC:
                assert res.status_code == 401, (method, path, res.text)
                continue
            # served alike with a token and without one: nothing in it depends on who asks
            assert res.status_code in (200, 307), (method, path)
            with_token = admin.request(method, path, follow_redirects=False)
            assert (with_token.status_code, with_token.content) == (res.status_code, res.content)


def test_callback_tokens_reach_only_their_node(
    make_client: Callable[..., TestClient], engine: rattan.Engine
) -> None:
    waiter = act("srv_wait")
    waiter.id = CALLBACK_NODE
    other = act("srv_wait")
    tree = linear(waiter, other)
    admin = make_client()
    assert admin.post("/api/v1/pipelines", json=tree).status_code == 201
    wait_for(lambda: admin.get(f"/api/v1/nodes/{CALLBACK_NODE}").json().get("waiting"))
    version = engine.get_state(CALLBACK_NODE).version
    caller = make_client(CALLBACKER, EXTRA)
    # not another node's callback, not a read, not a control of its own node
    assert caller.post(f"/api/v1/nodes/{other.id}/callback", json={"version": version}).status_code == 403
    assert caller.get(f"/api/v1/nodes/{CALLBACK_NODE}").status_code == 403
    assert caller.post(f"/api/v1/nodes/{CALLBACK_NODE}/force-fail", json={}).status_code == 403
    res = caller.post(f"/api/v1/nodes/{CALLBACK_NODE}/callback", json={"version": version, "data": 7})
    assert res.status_code == 202, res.text
    wait_for(lambda: admin.get(f"/api/v1/nodes/{other.id}").json().get("waiting"))
    assert engine.get_execution_data_outputs(CALLBACK_NODE)["received"] == 7
    other_version = engine.get_state(other.id).version
    res = caller.post(f"/api/v1/nodes/{other.id}/callback", json={"version": other_version})
    assert res.status_code == 403
    assert (
        make_client(OPERATOR)
        .post(f"/api/v1/nodes/{other.id}/callback", json={"version": other_version})
        .status_code
        == 202
    )
    wait_finished(engine, tree["id"])
