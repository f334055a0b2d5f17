"""Bad input on every route gets a 4xx with a message, never a 500: malformed JSON, bodies of the
wrong shape, oversized bodies, bad query parameters, ids that name nothing, invalid trees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from server_helpers import act, linear
from starlette.testclient import TestClient

import rattan
from rattan.server.routes import ROUTES, Route
from waits import wait_finished, wait_for

pytestmark = pytest.mark.timeout(120)
IDS = ["nope", "a b", "é-ñ-中", "x" * 3000, "null", "0", "..x", "%00", "\x00", "';--"]
BODIES: list[bytes] = [
    b"{",
    b"[1, 2",
    b"\xff\xfe",
    b"NaN",
    b'{"a": NaN}',
    b"[]",
    b'"text"',
    b"42",
    b"null",
    b'{"unknown_key": 1}',
    b"[" * 100000 + b"]" * 100000,
]


def fill(route: Route, value: str) -> str:
    from urllib.parse import quote

    path = route.full_path.replace("{pipeline_id}", quote(value, safe="")).replace(
        "{node_id}", quote(value, safe="")
    )
    return path + ("?timeout=0.1" if path.endswith("/stream") else "")


def assert_4xx(res: Any, *expected: int) -> dict[str, Any]:
    assert 400 <= res.status_code < 500, (res.status_code, res.text[:300])
    if expected:
        assert res.status_code in expected, (res.status_code, res.text[:300])
    body: dict[str, Any] = res.json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_route_refuses_bad_ids_and_bodies(make_client: Callable[..., TestClient], route: Route) -> None:
    client = make_client(max_body_bytes=300_000)
    if "{" in route.path:
        for value in IDS:
            res = client.request(route.method, fill(route, value), json={} if route.body else None)
            assert_4xx(res, 400, 404, 409)
    target = fill(route, "nope").split("?")[0]
    extra = {"timeout": "0.1"} if target.endswith("/stream") else {}
    if route.body is not None:
        for raw in BODIES:
            res = client.request(
                route.method, target, content=raw, headers={"Content-Type": "application/json"}
            )
            assert_4xx(res, 400, 404, 422)
        # one byte over the limit, with and without a Content-Length
        big = b'{"pipeline": "' + b"x" * 300_000 + b'"}'
        assert_4xx(client.request(route.method, target, content=big), 413)
        chunks = iter([big[:200_000], big[200_000:]])
        assert_4xx(client.request(route.method, target, content=chunks), 413)
        # every declared key with a value of the wrong type
        for key, schema in route.body.get("properties", {}).items():
            wrong: Any = 12345 if schema.get("type") != "integer" else "text"
            if not schema:  # any JSON value is fine for this key
                continue
            res = client.request(route.method, target, json={key: wrong})
            assert_4xx(res, 400, 404, 422)
    if route.method == "GET":
        for name in (
            "after",
            "limit",
            "offset",
            "loop",
            "history_id",
            "timeout",
            "created_after",
            "has_failed_nodes",
            "state",
            "flat_children",
        ):
            for bad in ("abc", "-5", "1e999", "nan"):
                res = client.get(target, params={**extra, name: bad})
                assert res.status_code < 500, (name, bad, res.text)
                if res.status_code >= 400:
                    assert_4xx(res)


def test_invalid_tree_gets_422_with_the_problems(client: TestClient) -> None:
    tree = linear(act("srv_echo"))
    tree["flows"] = {}
    body = assert_4xx(client.post("/api/v1/pipelines", json={"pipeline": tree}), 422)
    assert body["error"] == "TreeInvalidException" or body["error"].endswith("Error")
    assert body["problems"], body
    assert {"node_id", "rule", "message", "node_name"} == set(body["problems"][0])
    body = assert_4xx(client.post("/api/v1/pipelines", json={"pipeline": {"id": 3}}), 422)
    assert any(p["rule"] == "structure.id" for p in body["problems"])
    for junk in ({}, {"pipeline": []}, {"pipeline": "x"}, {"pipeline": {}, "data": 5}, {"x": 1}):
        assert_4xx(client.post("/api/v1/pipelines", json=junk), 400, 422)


def test_submitting_the_same_tree_twice_is_a_conflict(client: TestClient, engine: rattan.Engine) -> None:
    tree = linear(act("srv_echo", x=1))
    assert client.post("/api/v1/pipelines", json=tree).status_code == 201
    body = assert_4xx(client.post("/api/v1/pipelines", json=tree), 409)
    assert body["error"] == "InvalidOperationError" and "already used" in body["message"]
    wait_finished(engine, tree["id"])


def test_controls_in_the_wrong_state_are_409(client: TestClient, engine: rattan.Engine) -> None:
    echo = act("srv_echo", x=1)
    tree = linear(echo)
    root = tree["id"]
    client.post("/api/v1/pipelines", json=tree)
    wait_finished(engine, root)
    for path, body in (
        (f"/nodes/{echo.id}/retry", {}),
        (f"/nodes/{echo.id}/skip", {}),
        (f"/nodes/{echo.id}/force-fail", {"ex_data": "x"}),
        (f"/nodes/{echo.id}/skip-exclusive-gateway", {"flow_id": "f"}),
        (
            f"/nodes/{echo.id}/skip-conditional-parallel-gateway",
            {"flow_ids": ["f"], "converge_gateway_id": "c"},
        ),
        (f"/nodes/{root}/retry", {}),
        (f"/pipelines/{root}/pause", {}),
        (f"/nodes/{echo.id}/callback", {"version": "v-nope"}),
    ):
        body = assert_4xx(client.post("/api/v1" + path, json=body), 404, 409)
        assert body["error"] in ("InvalidOperationError", "NotFoundError", "ScheduleFinishedError"), (
            path,
            body,
        )


def test_callback_data_and_retry_data_that_json_cannot_hold(
    client: TestClient, engine: rattan.Engine
) -> None:
    waiter = act("srv_wait")
    tree = linear(waiter)
    client.post("/api/v1/pipelines", json=tree)
    wait_for(lambda: client.get(f"/api/v1/nodes/{waiter.id}").json().get("waiting"))
    res = client.post(f"/api/v1/nodes/{waiter.id}/callback", json={"version": 5})
    assert assert_4xx(res, 400)["message"] == "body.version must be string, got integer"
    res = client.post(f"/api/v1/nodes/{waiter.id}/callback", json={"data": 1})
    assert assert_4xx(res, 400)["message"] == "body lacks the required key 'version'"
    res = client.post(f"/api/v1/nodes/{waiter.id}/retry", json={"data": [1]})
    assert assert_4xx(res, 400)["message"] == "body.data must be object or null, got array"


def test_node_id_given_as_pipeline(client: TestClient, engine: rattan.Engine) -> None:
    echo = act("srv_echo", x=1)
    tree = linear(echo)
    client.post("/api/v1/pipelines", json=tree)
    wait_finished(engine, tree["id"])
    for path in (
        f"/pipelines/{echo.id}",
        f"/pipelines/{echo.id}/events",
        f"/pipelines/{echo.id}/events/stream",
    ):
        body = assert_4xx(client.get("/api/v1" + path), 404)
        assert tree["id"] in body["message"]
