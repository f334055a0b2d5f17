"""What the dashboard's browser tests and the screenshot script share: a real ``rattan serve``
process (uvicorn, an SQLite store in a temporary folder, the engine running the components of
``dashboard_components``), an HTTP client for it, tree builders, and Debian's Chromium driven by
Playwright (Playwright's own browser downloads are not used: nothing is fetched at test time)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from rattan.builder import (
    ConvergeGateway,
    EmptyEndEvent,
    EmptyStartEvent,
    ParallelGateway,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)

HERE = Path(__file__).resolve().parent
ADMIN = "dashboard-admin-token-0001"
READER = "dashboard-read-token-00001"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_until(fn: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Call ``fn`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {timeout}s (last: {value!r})"
        time.sleep(0.02)


class Live:
    """A running ``rattan serve``: its base URL and an admin HTTP client."""

    def __init__(self, base: str, proc: subprocess.Popen[bytes]) -> None:
        self.base = base
        self.proc = proc
        self.http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)

    def submit(self, tree: dict[str, Any]) -> str:
        res = self.http.post("/api/v1/pipelines", json=tree)
        assert res.status_code == 201, res.text
        return str(tree["id"])

    def run(self, pipeline_id: str) -> dict[str, Any]:
        res = self.http.get(f"/api/v1/pipelines/{pipeline_id}")
        assert res.status_code == 200, res.text
        return dict(res.json())

    def wait_state(self, pipeline_id: str, state: str, timeout: float = 15.0) -> None:
        wait_until(
            lambda: self.run(pipeline_id)["pipeline"]["state"] == state, timeout, f"{pipeline_id} {state}"
        )

    def wait_node(self, node_id: str, check: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> None:
        def ok() -> bool:
            res = self.http.get(f"/api/v1/nodes/{node_id}")
            return res.status_code == 200 and check(res.json())

        wait_until(ok, timeout, f"node {node_id}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(folder: Path) -> Iterator[Live]:
    """``rattan serve`` on a free loopback port over ``folder/dashboard.db``, until the block ends."""
    tokens = folder / "tokens.txt"
    tokens.write_text(f"{ADMIN} admin\n{READER} read\n")
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "PYTHONWARNINGS": "ignore",
    }
    argv = [sys.executable, "-m", "rattan.server.cli", "--store", f"sqlite:///{folder / 'dashboard.db'}"]
    argv += ["--port", str(port), "--tokens", str(tokens), "--component-module", "dashboard_components"]
    log = (folder / "serve.log").open("wb")
    proc = subprocess.Popen([*argv, "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, (folder / "serve.log").read_text()
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    live: Live | None = None
    try:
        wait_until(up, 30, "rattan serve answering")
        live = Live(base, proc)
        yield live
    finally:
        if live is not None:
            live.http.close()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def sign_in(page: Any, token: str = ADMIN) -> None:
    """Sign in on the dashboard's sign-in form and wait for the list of runs."""
    page.fill("#token", token)
    page.click("#sign-in")
    page.wait_for_selector("#runs")


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Debian's) driven by Playwright; ImportError without Playwright."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        raise FileNotFoundError("no chromium on PATH")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# -- trees --------------------------------------------------------------------------------------------


def act(code: str, name: str | None = None, **inputs: Any) -> ServiceActivity:
    node = ServiceActivity(component_code=code, name=name)
    for key, value in inputs.items():
        node.component.inputs[key] = Var(type=Var.PLAIN, value=value)
    return node


def linear(*acts: Any) -> dict[str, Any]:
    node: Any = EmptyStartEvent()
    start = node
    for a in acts:
        node = node.extend(a)
    node.extend(EmptyEndEvent())
    return build_tree(start)


def parallel(first: Any, branches: list[Any], last: Any) -> dict[str, Any]:
    """start -> first -> parallel(branches) -> converge -> last -> end."""
    start = EmptyStartEvent()
    split, join = ParallelGateway(), ConvergeGateway()
    start.extend(first).extend(split).connect(*branches)
    for branch in branches:
        branch.extend(join)
    join.extend(last).extend(EmptyEndEvent())
    return build_tree(start)


def subprocess_of(*acts: Any, name: str) -> SubProcess:
    node: Any = EmptyStartEvent()
    start = node
    for a in acts:
        node = node.extend(a)
    node.extend(EmptyEndEvent())
    return SubProcess(start=start, name=name)
