"""Node hooks, and the durable event log consumed by a second process.

The "audited" component opts in to node hooks (__need_run_hook__): the engine calls its
node_enter / pre_execute / post_execute / node_finish methods, and node_finish adds an output.

Every engine event is also appended to the store's event log. A consumer in another process
(started here with sys.executable -c ...) opens the same SQLite file with
rattan.Engine(store, start=False), reads engine.events(after=cursor), prints them and saves its
cursor in a file. It runs once after the first pipeline, and again after a second one: the second
time it resumes from its cursor and sees only the new events, each once.

Run it: python examples/08_hooks_and_event_log.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from typing import Any

import rattan
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree

registry = rattan.Registry("example-hooks")

CONSUMER = """
import os, sys
import rattan

store, cursor_file = sys.argv[1], sys.argv[2]
cursor = int(open(cursor_file).read()) if os.path.exists(cursor_file) else 0
print(f"consumer: starting after event {cursor}")
reader = rattan.Engine(store, start=False)  # reads the store, runs no workers
seen = []
while page := reader.events(after=cursor, limit=5):
    for event in page:
        seen.append(event["event_type"])
        print(f"consumer:   #{event['id']} {event['event_type']}")
    cursor = page[-1]["id"]
    with open(cursor_file, "w") as f:  # saved after the page is processed
        f.write(str(cursor))
reader.close()
print(f"consumer: {len(seen)} events, {seen.count('pipeline_finish')} pipeline_finish")
"""


class AuditedService(rattan.Service):
    __need_run_hook__ = True

    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        print("  service: execute")
        return True

    def node_enter(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        print("  hook: node_enter")
        return True

    def pre_execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        print("  hook: pre_execute")
        return True

    def post_execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        print("  hook: post_execute")
        return True

    def node_finish(
        self, data: rattan.DataObject, parent_data: rattan.DataObject, callback_data: Any = None
    ) -> bool:
        print("  hook: node_finish")
        data.set_outputs("audited", True)  # kept: a "saved" hook that returns True
        return True


class AuditedComponent(rattan.Component, registry=registry):
    name = code = "audited"
    bound_service = AuditedService


def run_once(engine: rattan.Engine) -> bool:
    start, act, end = EmptyStartEvent(), ServiceActivity(component_code="audited"), EmptyEndEvent()
    start.extend(act).extend(end)
    tree = build_tree(start)
    print(f"run {tree['id'][:9]}...")
    engine.run_pipeline(tree)
    state = engine.wait_pipeline(tree["id"], timeout=30)["state"]
    # node_finish runs after the finish is committed: the run can be FINISHED a moment before the
    # hook's output is saved, so wait until the engine is idle before reading it
    assert engine.wait_idle(10)
    return state == "FINISHED" and engine.get_execution_data_outputs(act.id)["audited"] is True


def consume(store: str, cursor_file: str) -> str:
    args = [sys.executable, "-c", CONSUMER, store, cursor_file]
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True)
    print(done.stdout, end="")
    return done.stdout.splitlines()[-1]


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        store = os.path.join(folder, "events.db")
        cursor_file = os.path.join(folder, "cursor")
        with rattan.Engine(store, components=registry) as engine:
            first_ok = run_once(engine)
            first = consume(store, cursor_file)
            second_ok = run_once(engine)  # produced while the consumer is away
            second = consume(store, cursor_file)
            total = len(engine.events(limit=1000))

    print(f"event log: {total} events in all")
    expected = f"consumer: {total // 2} events, 1 pipeline_finish"
    ok = first_ok and second_ok and total % 2 == 0 and first == second == expected
    print("OK" if ok else "UNEXPECTED OUTCOME")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
