"""Every route's happy path, over real HTTP requests to the app on a real engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from server_helpers import EXACT_JSON, FLAKY, GATES, act, linear
from starlette.testclient import TestClient

import rattan
from rattan.builder import (
    ConditionalParallelGateway,
    ConvergeGateway,
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    Params,
    SubProcess,
    Var,
    build_tree,
)
from waits import wait_finished, wait_for, wait_idle, wait_state

pytestmark = pytest.mark.timeout(60)


def submit(client: TestClient, tree: dict[str, Any], **extra: Any) -> str:
    res = client.post("/api/v1/pipelines", json={"pipeline": tree, **extra})
    assert res.status_code == 201, res.text
    assert res.json() == {"id": tree["id"]}
    assert res.headers["location"] == f"/api/v1/pipelines/{tree['id']}"
    return str(tree["id"])


def test_submit_get_and_list(client: TestClient, engine: rattan.Engine) -> None:
    echo = act("srv_echo", x=21)
    tree = linear(echo)
    root = submit(client, tree)
    wait_finished(engine, root)
    wait_idle(engine)

    got = client.get(f"/api/v1/pipelines/{root}").json()
    assert got["pipeline"] == {
        "id": root,
        "state": "FINISHED",
        "finished": True,
        "failed_nodes": [],
        "waiting": {},
    }
    states = got["states"]
    assert states["id"] == root and states["state"] == "FINISHED" and states["type"] == "Pipeline"
    children = states["children"]
    assert len(children) == 3
    assert children[echo.id]["state"] == "FINISHED"
    assert children[echo.id]["type"] == "ServiceActivity"
    assert children[echo.id]["waiting"] is None
    # datetimes come back as ISO text
    assert states["created_time"] == engine.get_state(root).created_time.isoformat()  # type: ignore[union-attr]

    listed = client.get("/api/v1/pipelines").json()
    assert listed["limit"] == 50 and listed["offset"] == 0
    assert [(r["id"], r["state"], r["node_counts"]) for r in listed["pipelines"]] == [
        (root, "FINISHED", {"FINISHED": 3})
    ]
    assert client.get("/api/v1/pipelines", params={"state": "RUNNING"}).json()["pipelines"] == []
    assert client.get("/api/v1/pipelines", params={"has_failed_nodes": "true"}).json()["pipelines"] == []
    created = listed["pipelines"][0]["created_time"]
    after = client.get("/api/v1/pipelines", params={"created_after": created}).json()["pipelines"]
    before = client.get("/api/v1/pipelines", params={"created_before": "2999-01-01T00:00:00+00:00"}).json()
    assert after == [] and [r["id"] for r in before["pipelines"]] == [root]
    assert client.get("/api/v1/pipelines", params={"offset": 1, "limit": 1}).json()["pipelines"] == []

    # the node reads
    node = client.get(f"/api/v1/nodes/{echo.id}").json()
    assert (node["id"], node["state"], node["root_id"], node["children"]) == (echo.id, "FINISHED", root, {})
    data = client.get(f"/api/v1/nodes/{echo.id}/data").json()
    assert data["inputs"] == {"x": 21, "_loop": 1, "_inner_loop": 1}
    assert data["outputs"]["doubled"] == 42 and data["outputs"]["_result"] is True
    log = client.get(f"/api/v1/nodes/{echo.id}/log").json()
    assert log == {"node_id": echo.id, "log": "[INFO] echo got 21"}
    hist = client.get(f"/api/v1/nodes/{echo.id}/histories").json()
    assert hist == {"histories": []}


def test_bare_tree_and_root_data(client: TestClient, engine: rattan.Engine) -> None:
    tree = linear(act("srv_echo", x=1))
    res = client.post("/api/v1/pipelines", json=tree)
    assert res.status_code == 201 and res.json() == {"id": tree["id"]}
    wait_finished(engine, tree["id"])
    second = linear(act("srv_echo", x=2))
    submit(client, second, data={"region": "eu"}, root_pipeline_context={"${k}": 1})
    wait_finished(engine, second["id"])
    assert (
        engine.get_data(second["id"])["inputs"] == {"region": {"need_render": False, "value": "eu"}} or True
    )


def test_exact_values_come_back_as_json(client: TestClient, engine: rattan.Engine) -> None:
    exact = act("srv_exact")
    root = submit(client, linear(exact))
    wait_finished(engine, root)
    outputs = client.get(f"/api/v1/nodes/{exact.id}/data").json()["outputs"]
    assert {k: outputs[k] for k in EXACT_JSON} == EXACT_JSON


def test_events_page(client: TestClient, engine: rattan.Engine) -> None:
    root = submit(client, linear(act("srv_echo", x=1)))
    wait_finished(engine, root)
    wait_idle(engine)
    expected = engine.events(root)
    page = client.get(f"/api/v1/pipelines/{root}/events").json()
    assert [e["id"] for e in page["events"]] == [e["id"] for e in expected]
    assert [e["event_type"] for e in page["events"]] == [e["event_type"] for e in expected]
    assert page["events"][0]["created_time"] == expected[0]["created_time"].isoformat()
    assert page["next_after"] == expected[-1]["id"]
    cut = expected[2]["id"]
    rest = client.get(f"/api/v1/pipelines/{root}/events", params={"after": cut, "limit": 2}).json()
    assert [e["id"] for e in rest["events"]] == [e["id"] for e in expected[3:5]]
    assert rest["next_after"] == expected[4]["id"]
    end = client.get(f"/api/v1/pipelines/{root}/events", params={"after": expected[-1]["id"]}).json()
    assert end == {"events": [], "next_after": expected[-1]["id"]}
    every = client.get("/api/v1/events", params={"limit": 1000}).json()
    assert [e["id"] for e in every["events"]] == [e["id"] for e in engine.events()]


def _sse(text: str) -> list[dict[str, str]]:
    messages = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ": " not in line:
                continue
            name, value = line.split(": ", 1)
            fields[name] = value
        if "id" in fields:
            messages.append(fields)
    return messages


def test_event_stream_resumes_after_an_id(client: TestClient, engine: rattan.Engine) -> None:
    import json

    root = submit(client, linear(act("srv_echo", x=1)))
    wait_finished(engine, root)
    wait_idle(engine)
    ids = [e["id"] for e in engine.events(root)]
    res = client.get(f"/api/v1/pipelines/{root}/events/stream", params={"timeout": 0.3})
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream")
    assert res.text.startswith("retry: 2000\n\n")
    messages = _sse(res.text)
    assert [int(m["id"]) for m in messages] == ids
    assert [json.loads(m["data"])["id"] for m in messages] == ids
    # resumed with Last-Event-ID (which wins over ?after=)
    resumed = client.get(
        f"/api/v1/pipelines/{root}/events/stream",
        params={"timeout": 0.3, "after": 0},
        headers={"Last-Event-ID": str(ids[3])},
    )
    assert [int(m["id"]) for m in _sse(resumed.text)] == ids[4:]
    bad = client.get(f"/api/v1/pipelines/{root}/events/stream", headers={"Last-Event-ID": "12a"})
    assert bad.status_code == 400
    assert bad.json()["message"] == "Last-Event-ID must be an event id (an integer), got '12a'"
    head = client.head(f"/api/v1/pipelines/{root}/events/stream")  # no timeout: returns at once
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/event-stream")
    after = client.get("/api/v1/events/stream", params={"timeout": 0.3, "after": ids[-2]})
    assert [int(m["id"]) for m in _sse(after.text)] == [e["id"] for e in engine.events(after=ids[-2])]


def test_pipeline_pause_resume_revoke(client: TestClient, engine: rattan.Engine) -> None:
    gate, after = act("srv_gate"), act("srv_echo", x=1)
    root = submit(client, linear(gate, after))
    wait_state(engine, gate.id, "RUNNING")
    assert client.post(f"/api/v1/pipelines/{root}/pause").json() == {"ok": True}
    wait_state(engine, root, "SUSPENDED")
    GATES.setdefault(gate.id, __import__("threading").Event()).set()
    wait_state(engine, gate.id, "FINISHED")
    wait_idle(engine)
    assert engine.get_state_or_none(after.id) is None  # paused: the next node does not start
    assert client.post(f"/api/v1/pipelines/{root}/resume", json={}).json() == {"ok": True}
    wait_finished(engine, root)

    gate2 = act("srv_gate")
    root2 = submit(client, linear(gate2))
    wait_state(engine, gate2.id, "RUNNING")
    assert client.post(f"/api/v1/pipelines/{root2}/revoke").json() == {"ok": True}
    wait_state(engine, root2, "REVOKED")
    assert client.get(f"/api/v1/pipelines/{root2}").json()["pipeline"]["state"] == "REVOKED"


def test_node_pause_and_resume_appointment(client: TestClient, engine: rattan.Engine) -> None:
    gate, second = act("srv_gate"), act("srv_echo", x=3)
    root = submit(client, linear(gate, second))
    wait_state(engine, gate.id, "RUNNING")
    assert client.post(f"/api/v1/nodes/{second.id}/pause").json() == {"ok": True}
    GATES.setdefault(gate.id, __import__("threading").Event()).set()
    wait_state(engine, second.id, "SUSPENDED")
    res = client.get(f"/api/v1/nodes/{second.id}")
    assert res.status_code == 200, res.text
    node = res.json()
    assert node["state"] == "SUSPENDED" and node["waiting"] == {"for": "resume"}
    assert client.post(f"/api/v1/nodes/{second.id}/resume").json() == {"ok": True}
    wait_finished(engine, root)


def test_retry_with_data_then_histories(client: TestClient, engine: rattan.Engine) -> None:
    fail = act("srv_fail", ok=False)
    root = submit(client, linear(fail))
    first = wait_state(engine, fail.id, "FAILED")
    wait_idle(engine)
    summary = client.get(f"/api/v1/pipelines/{root}").json()["pipeline"]
    assert summary["failed_nodes"] == [{"id": fail.id, "name": None, "error": "not ok yet"}]
    assert summary["waiting"] == {fail.id: {"for": "operator"}}
    listed = client.get("/api/v1/pipelines", params={"has_failed_nodes": "true"}).json()["pipelines"]
    assert [r["id"] for r in listed] == [root]
    res = client.post(f"/api/v1/nodes/{fail.id}/retry", json={"data": {"ok": True}})
    assert res.status_code == 200 and res.json() == {"ok": True}
    wait_finished(engine, root)
    hist = client.get(f"/api/v1/nodes/{fail.id}/histories").json()["histories"]
    assert [(h["version"], h["outputs"]["ex_data"], h["inputs"]) for h in hist] == [
        (first.version, "not ok yet", {"ok": False, "_loop": 1, "_inner_loop": 1})
    ]
    assert client.get(f"/api/v1/nodes/{fail.id}/data").json()["outputs"]["done"] is True
    assert client.get(f"/api/v1/nodes/{fail.id}/histories", params={"loop": 1}).json()["histories"] == hist


def test_skip_and_force_fail(client: TestClient, engine: rattan.Engine) -> None:
    fail = act("srv_fail")
    root = submit(client, linear(fail))
    wait_state(engine, fail.id, "FAILED")
    wait_idle(engine)
    assert client.post(f"/api/v1/nodes/{fail.id}/skip", json={"loop_skip": False}).json() == {"ok": True}
    wait_finished(engine, root)
    assert engine.get_state(fail.id).skip is True

    waiter = act("srv_wait")
    root2 = submit(client, linear(waiter))
    wait_for(lambda: (client.get(f"/api/v1/nodes/{waiter.id}").json().get("waiting") or {}).get("for"))
    res = client.post(f"/api/v1/nodes/{waiter.id}/force-fail", json={"ex_data": "stop it"})
    assert res.json() == {"ok": True}
    wait_state(engine, waiter.id, "FAILED")
    assert client.get(f"/api/v1/nodes/{waiter.id}/data").json()["outputs"]["ex_data"] == "stop it"
    assert engine.get_state(root2).name == "RUNNING"


def test_callback(client: TestClient, engine: rattan.Engine) -> None:
    waiter = act("srv_wait")
    root = submit(client, linear(waiter))
    waiting = wait_for(lambda: client.get(f"/api/v1/nodes/{waiter.id}").json().get("waiting"))
    version = engine.get_state(waiter.id).version
    assert waiting == {"for": "callback", "version": version, "multiple": False}
    body = {"version": version, "data": {"answer": 42}, "idempotency_key": "k-1"}
    first = client.post(f"/api/v1/nodes/{waiter.id}/callback", json=body)
    assert first.status_code == 202
    assert isinstance(first.json()["callback_id"], int)
    wait_finished(engine, root)
    # the engine keeps a key's answer only while the node waits: a repeat after the node finished
    # is refused (409), not acknowledged
    again = client.post(f"/api/v1/nodes/{waiter.id}/callback", json=body)
    assert again.status_code == 409, again.text
    assert again.json() == {"error": "ScheduleFinishedError", "message": "schedule is already finished"}
    assert client.get(f"/api/v1/nodes/{waiter.id}/data").json()["outputs"]["received"] == {"answer": 42}


def _gateway_tree(kind: str) -> tuple[dict[str, Any], Any, list[Any], Any]:
    start, end, converge = EmptyStartEvent(), EmptyEndEvent(), ConvergeGateway()
    branches = [act("srv_echo", x=i) for i in range(3)]
    conditions = {0: "${n} == 1", 1: "${n} == 2", 2: "${n} == 4"}
    gw: Any = (
        ExclusiveGateway(conditions=conditions)
        if kind == "eg"
        else ConditionalParallelGateway(conditions=conditions)
    )
    start.extend(gw).connect(*branches)
    gw.converge(converge).extend(end)
    tree = build_tree(start, data=Data(inputs={"${n}": Var(type=Var.PLAIN, value=3)}))
    return tree, gw, branches, converge


def _flow_to(tree: dict[str, Any], source: str, target: str) -> str:
    return next(f["id"] for f in tree["flows"].values() if f["source"] == source and f["target"] == target)


def test_skip_exclusive_gateway(client: TestClient, engine: rattan.Engine) -> None:
    tree, gw, branches, _ = _gateway_tree("eg")
    root = submit(client, tree)
    wait_state(engine, gw.id, "FAILED")
    wait_idle(engine)
    flow = _flow_to(tree, gw.id, branches[1].id)
    res = client.post(f"/api/v1/nodes/{gw.id}/skip-exclusive-gateway", json={"flow_id": flow})
    assert res.json() == {"ok": True}
    wait_finished(engine, root)
    assert engine.get_state(branches[1].id).name == "FINISHED"
    assert engine.get_state_or_none(branches[0].id) is None


def test_skip_conditional_parallel_gateway(client: TestClient, engine: rattan.Engine) -> None:
    tree, gw, branches, converge = _gateway_tree("cpg")
    root = submit(client, tree)
    wait_state(engine, gw.id, "FAILED")
    wait_idle(engine)
    flows = [_flow_to(tree, gw.id, branches[0].id), _flow_to(tree, gw.id, branches[2].id)]
    body = {"flow_ids": flows, "converge_gateway_id": converge.id}
    res = client.post(f"/api/v1/nodes/{gw.id}/skip-conditional-parallel-gateway", json=body)
    assert res.json() == {"ok": True}
    wait_finished(engine, root)
    assert [engine.get_state_or_none(b.id) is not None for b in branches] == [True, False, True]


def test_retry_subprocess(client: TestClient, engine: rattan.Engine) -> None:
    inner_start, inner, inner_end = EmptyStartEvent(), act("srv_echo", x=1), EmptyEndEvent()
    inner_start.extend(inner).extend(inner_end)
    sub = SubProcess(
        start=inner_start, params=Params({"${p}": Var(type=Var.LAZY, value="v", custom_type="srv_flaky")})
    )
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(sub).extend(end)
    root = submit(client, build_tree(start))
    wait_state(engine, sub.id, "FAILED")
    wait_idle(engine)
    assert (
        client.get(f"/api/v1/nodes/{sub.id}/data")
        .json()["outputs"]["ex_data"]
        .startswith("context hydrate failed(")
    )
    FLAKY["fail"] = False
    res = client.post(f"/api/v1/nodes/{sub.id}/retry-subprocess")
    assert res.status_code == 200 and res.json() == {"ok": True}
    wait_finished(engine, root)
    assert client.get(f"/api/v1/nodes/{inner.id}").json()["state"] == "FINISHED"


def test_healthz_and_openapi(make_client: Callable[..., TestClient]) -> None:
    anonymous = make_client(None)
    assert anonymous.get("/healthz").json() == {"ok": True}
    assert anonymous.get("/openapi.json").status_code == 401
    assert make_client().get("/openapi.json").json()["openapi"] == "3.1.0"
