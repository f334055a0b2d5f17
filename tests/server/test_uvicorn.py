"""The API served for real: uvicorn on a free loopback port, spoken to with httpx, including the
event stream read live, dropped and resumed with Last-Event-ID; and ``rattan serve`` (the
``rattan.server.cli`` entry) started as a process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from server_helpers import ADMIN, TOKENS, act, linear

import rattan
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree
from rattan.server import create_app
from rattan.server.cli import main
from waits import wait_finished

pytestmark = pytest.mark.timeout(60)
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def live(engine: rattan.Engine) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(engine, TOKENS, poll_seconds=0.02)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()
    assert not thread.is_alive()


def read_events(response: httpx.Response, until: str) -> list[dict[str, object]]:
    """Parse SSE messages from a live response until one has event_type ``until``."""
    got: list[dict[str, object]] = []
    event_id = None
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("data: "):
            event = json.loads(line[6:])
            assert event["id"] == event_id
            got.append(event)
            if event["event_type"] == until:
                return got
    raise AssertionError(f"stream ended before {until}")


def test_live_server_and_resumed_stream(live: str, engine: rattan.Engine) -> None:
    waiter = act("srv_wait")
    tree = linear(waiter)
    root = tree["id"]
    with httpx.Client(base_url=live, headers=AUTH, timeout=10) as http:
        assert httpx.get(f"{live}/api/v1/pipelines", timeout=5).status_code == 401
        assert http.post("/api/v1/pipelines", json=tree).status_code == 201
        url = f"/api/v1/pipelines/{root}/events/stream"
        with http.stream("GET", url) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            # the node is waiting for its callback once its execute result is stored
            first = read_events(stream, until="post_execute")
        last_id = int(str(first[-1]["id"]))
        version = engine.get_state(waiter.id).version
        # resumed after the last id seen; the callback is sent while the stream is open, so the
        # events it causes arrive live
        with http.stream("GET", url, headers={"Last-Event-ID": str(last_id)}) as stream:
            body = {"version": version, "data": "hi"}
            assert http.post(f"/api/v1/nodes/{waiter.id}/callback", json=body).status_code == 202
            rest = read_events(stream, until="pipeline_finish")
        wait_finished(engine, root)
        expected = [e["id"] for e in engine.events(root)]
        assert [e["id"] for e in first + rest] == expected
        assert http.get(f"/api/v1/nodes/{waiter.id}/data").json()["outputs"]["received"] == "hi"


def test_rattan_serve_process(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{ADMIN} admin\n")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    store = f"sqlite:///{tmp_path / 'serve.db'}"
    argv = [sys.executable, "-m", "rattan.server.cli", "--store", store, "--port", str(port)]
    proc = subprocess.Popen(
        [*argv, "--tokens", str(tokens), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "rattan serve did not answer"
            time.sleep(0.05)
        start = EmptyStartEvent()
        start.extend(ServiceActivity(component_code="pipe_example_component")).extend(EmptyEndEvent())
        tree = build_tree(start)
        with httpx.Client(base_url=base, headers=AUTH, timeout=10) as http:
            assert http.post("/api/v1/pipelines", json=tree).status_code == 201
            deadline = time.monotonic() + 10
            while http.get(f"/api/v1/pipelines/{tree['id']}").json()["pipeline"]["state"] != "FINISHED":
                assert time.monotonic() < deadline
                time.sleep(0.02)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_serve_refuses_a_bad_tokens_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("short admin\n")
    assert main(["--store", ":memory:", "--tokens", str(tokens)]) == 2
    assert capsys.readouterr().err == f"rattan serve: {tokens}:1: token is 5 characters, at least 16 needed\n"


def test_serve_plugs_into_an_argparse_command() -> None:
    import argparse

    from rattan.server.cli import add_parser, serve

    parser = argparse.ArgumentParser(prog="rattan")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--tokens", "t.txt", "--port", "9001", "--store", "sqlite:///x.db"])
    assert (args.func, args.tokens, args.port, args.host, args.store) == (
        serve,
        "t.txt",
        9001,
        "127.0.0.1",
        "sqlite:///x.db",
    )
