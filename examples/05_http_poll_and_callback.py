"""A polling component and a callback component talking to a small local HTTP service.

The script starts an HTTP service on 127.0.0.1 (a free port, in a thread) with two routes:

- POST /jobs starts a job; GET /jobs/<id> answers "running" twice, then "done" with a result.
  The "build" component submits a job in execute() and polls its status URL in schedule()
  (every 0.05 s) until it is done.
- POST /approvals takes a callback address (node id and version); a moment later the service
  approves and calls back through rattan.api.callback. The "approve" component registers the
  address in execute() and finishes when the callback arrives in schedule().

The service's base URL reaches the components as root pipeline data (parent_data).

Run it: python examples/05_http_poll_and_callback.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import rattan
from rattan import api
from rattan.builder import Data, EmptyEndEvent, EmptyStartEvent, NodeOutput, ServiceActivity, Var, build_tree

registry = rattan.Registry("example-http")
ENGINE: list[rattan.Engine] = []  # the engine the service calls back into
JOB_CHECKS: dict[str, int] = {}
CALLBACKS: list[threading.Timer] = []  # the service's pending calls back
CALLBACK_IDS: list[int] = []  # what rattan.api.callback returned: the stored callback ids


def call(url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    payload = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=payload), timeout=5) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


class Handler(BaseHTTPRequestHandler):
    def reply(self, code: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:  # GET /jobs/<id>
        job = self.path.rsplit("/", 1)[-1]
        JOB_CHECKS[job] += 1
        if JOB_CHECKS[job] < 3:
            self.reply(200, {"status": "running"})
        else:
            self.reply(200, {"status": "done", "artifact": f"{job}.tar"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/jobs":
            job = f"job-{body['target']}"
            JOB_CHECKS[job] = 0
            self.reply(201, {"status_url": f"/jobs/{job}"})
        else:  # POST /approvals: answer now, call back a moment later
            self.reply(202, {"accepted": True})
            data = {"approved": True, "by": "release-bot", "item": body["item"]}

            def callback() -> None:
                print(f"  http: calling back: {body['item']} approved")
                result = api.callback(ENGINE[0], body["node_id"], body["version"], data)
                assert result.result, result.message
                CALLBACK_IDS.append(result.data)

            CALLBACKS.append(threading.Timer(0.2, callback))
            CALLBACKS[-1].start()

    def log_message(self, format: str, *args: Any) -> None:
        print(f"  http: {self.command} {self.path}")


class BuildService(rattan.Service):
    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(0.05)

    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        job = call(parent_data.inputs.base_url + "/jobs", {"target": data.inputs.target})
        data.set_outputs("status_url", job["status_url"])
        return True

    def schedule(
        self, data: rattan.DataObject, parent_data: rattan.DataObject, callback_data: Any = None
    ) -> bool:
        status = call(parent_data.inputs.base_url + data.outputs.status_url)
        if status["status"] == "done":
            data.set_outputs("artifact", status["artifact"])
            self.finish_schedule()
        return True


class ApproveService(rattan.Service):
    __need_schedule__ = True  # no interval: waits for a callback

    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        request = {"node_id": self.id, "version": self.version, "item": data.inputs.item}
        return call(parent_data.inputs.base_url + "/approvals", request)["accepted"] is True

    def schedule(
        self, data: rattan.DataObject, parent_data: rattan.DataObject, callback_data: Any = None
    ) -> bool:
        data.set_outputs("approved_by", callback_data["by"])
        return bool(callback_data["approved"])


class BuildComponent(rattan.Component, registry=registry):
    name = code = "build"
    bound_service = BuildService


class ApproveComponent(rattan.Component, registry=registry):
    name = code = "approve"
    bound_service = ApproveService


def main() -> int:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    build = ServiceActivity(component_code="build", name="build")
    build.component.inputs.target = Var(type=Var.PLAIN, value="web")
    approve = ServiceActivity(component_code="approve", name="approve")
    approve.component.inputs.item = Var(type=Var.SPLICE, value="${artifact}")
    start.extend(build).extend(approve).extend(end)
    artifact = NodeOutput(source_act=build.id, source_key="artifact")
    tree = build_tree(start, data=Data(inputs={"${artifact}": artifact}))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with (
            tempfile.TemporaryDirectory() as folder,
            rattan.Engine(os.path.join(folder, "http.db"), components=registry) as engine,
        ):
            ENGINE.append(engine)
            assert api.run_pipeline(engine, tree, root_pipeline_data={"base_url": base_url}).result
            state = engine.wait_pipeline(tree["id"], timeout=30)["state"]
            for timer in CALLBACKS:
                timer.join()
            built = engine.get_execution_data_outputs(build.id)
            approved = engine.get_execution_data_outputs(approve.id)
            polls = engine.get_schedule_with_node_and_version(build.id).times
    finally:
        server.shutdown()
        server.server_close()

    print(f"pipeline {state}")
    print(f"build: artifact {built['artifact']} after {polls} polls")
    print(f"approve: approved by {approved['approved_by']} ({len(CALLBACK_IDS)} callback accepted)")
    ok = state == "FINISHED" and built["artifact"] == "job-web.tar" and polls == 3 and len(CALLBACK_IDS) == 1
    ok = ok and approved["approved_by"] == "release-bot"
    print("OK" if ok else "UNEXPECTED OUTCOME")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
