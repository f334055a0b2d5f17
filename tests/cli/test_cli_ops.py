"""The operator commands of ``rattan`` (list, show, events, graph, history, the controls,
migrate), each run as a real ``python -m rattan`` subprocess against a SQLite store that a test
engine in this process prepared and keeps running: the commands' engines run no workers, so what a
control writes is carried out by the test engine (as a running engine would in production)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

import rattan
from rattan import cli
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, SubProcess, Var, build_tree
from rattan.cli_ops import when
from rattan.cli_show import Drawing

pytestmark = pytest.mark.timeout(120)

WAIT = 15.0  # bounded waits of these tests (seconds)
# A job started in the background ignores SIGINT and its children inherit that: give the command
# Python's usual handler, then run ``python -m rattan`` as usual.
RUN_RATTAN = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'rattan'; runpy.run_module('rattan', run_name='__main__', alter_sys=True)"
)


class Echo(rattan.Service):
    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.doubled = data.get_one_of_inputs("x", 0) * 2
        return True


class FailUnlessOk(rattan.Service):
    """Fails (with a two-line error) until retried with ``ok`` true in its inputs."""

    def execute(self, data: Any, parent_data: Any) -> bool:
        if not data.get_one_of_inputs("ok", False):
            data.outputs.ex_data = "not ok yet\nsecond line"
            return False
        return True


class WaitCallback(rattan.Service):
    __need_schedule__ = True

    def execute(self, data: Any, parent_data: Any) -> bool:
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        data.outputs.received = callback_data
        self.finish_schedule()
        return True


def make_registry() -> rattan.Registry:
    reg = rattan.Registry("cli-ops-tests")
    for code, service in (("ops_echo", Echo), ("ops_fail", FailUnlessOk), ("ops_wait", WaitCallback)):
        attrs = {"name": code, "code": code, "bound_service": service}
        type(f"{code}_component", (rattan.Component,), attrs, registry=reg)
    return reg


def echo(name: str, x: int = 1) -> ServiceActivity:
    act = ServiceActivity(component_code="ops_echo", name=name)
    act.component.inputs.x = Var(type=Var.PLAIN, value=x)
    return act


def linear(*acts: Any) -> dict[str, Any]:
    start: Any = EmptyStartEvent()
    node = start
    for act in acts:
        node = node.extend(act)
    node.extend(EmptyEndEvent())
    return build_tree(start)


def ids(tree: dict[str, Any]) -> dict[str, str]:
    """Node name -> id, subprocesses' nodes included; ``start``/``end`` for the root's events."""
    found = {"start": tree["start_event"]["id"], "end": tree["end_event"]["id"]}
    for node_id, node in tree["activities"].items():
        found[node["name"]] = node_id
        if node["type"] == "SubProcess":
            inner = ids(node["pipeline"])
            found.update({f"{node['name']}/{k}": v for k, v in inner.items()})
    return found


class Store:
    """A store file with a running test engine on it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self.engine = rattan.Engine(store=self.url, components=make_registry(), sweep_seconds=0.1)

    def run(self, tree: dict[str, Any]) -> str:
        self.engine.run_pipeline(tree)
        return str(tree["id"])

    def rattan(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rattan", *args],
            capture_output=True, text=True, timeout=60, check=False, cwd=self.path.parent,
            env={**os.environ, **(env or {})},
        )  # fmt: skip

    def ok(self, *args: str) -> str:
        proc = self.rattan(*args, "--store", self.url)
        assert proc.returncode == cli.EXIT_OK, proc.stdout + proc.stderr
        assert proc.stderr == ""
        return proc.stdout

    def refused(self, code: int, *args: str) -> str:
        proc = self.rattan(*args, "--store", self.url)
        assert proc.returncode == code, proc.stdout + proc.stderr
        assert proc.stdout == ""
        return proc.stderr


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    st = Store(tmp_path / "ops.db")
    yield st
    st.engine.close(timeout=10)


def failing_run(st: Store) -> tuple[str, dict[str, str]]:
    tree = linear(echo("first", 2), ServiceActivity(component_code="ops_fail", name="flaky"))
    root = st.run(tree)
    assert st.engine.wait_pipeline(root, WAIT)["failed_nodes"]
    return root, ids(tree)


def waiting_run(st: Store) -> tuple[str, dict[str, str]]:
    tree = linear(ServiceActivity(component_code="ops_wait", name="wait for it"))
    root = st.run(tree)
    node = ids(tree)["wait for it"]
    deadline = time.monotonic() + WAIT
    while st.engine.wait_pipeline(root, 0)["waiting"].get(node) is None:
        assert time.monotonic() < deadline, "the node never waited for its callback"
        time.sleep(0.02)
    return root, ids(tree)


def sub_run(st: Store) -> tuple[str, dict[str, str]]:
    inner: Any = EmptyStartEvent()
    inner.extend(echo("inner", 3)).extend(EmptyEndEvent())
    tree = linear(echo("before"), SubProcess(start=inner, name="sub"))
    root = st.run(tree)
    assert st.engine.wait_pipeline(root, WAIT)["finished"]
    return root, ids(tree)


# -- list --------------------------------------------------------------------------------------------


def test_list_shows_a_table_of_runs_newest_first(store: Store) -> None:
    failed, _ = failing_run(store)
    finished, _ = sub_run(store)
    runs = {r["id"]: r for r in store.engine.list_pipelines()}
    out = store.ok("list")
    f, d = runs[failed], runs[finished]
    fail_id = f["failed_nodes"][0]
    # columns as wide as their widest cell, two spaces apart
    assert out.splitlines() == [
        f"{'ID':<33}  STATE     {'CREATED':<19}  {'FINISHED':<19}  {'NODES':<20}  FAILED",
        f"{finished}  FINISHED  {when(d['created_time'])}  {when(d['finished_time'])}  {'7 FINISHED':<20}  -",
        f"{failed}  RUNNING   {when(f['created_time'])}  {'-':<19}  1 FAILED, 2 FINISHED  {fail_id}",
    ]


def test_list_filters_and_pages(store: Store, tmp_path: Path) -> None:
    failed, _ = failing_run(store)
    waiting, _ = waiting_run(store)
    finished, _ = sub_run(store)

    def listed(*args: str) -> list[str]:
        return [r["id"] for r in json.loads(store.ok("list", "--json", *args))["pipelines"]]

    assert listed() == [finished, waiting, failed]
    assert listed("--state", "FINISHED") == [finished]
    assert listed("--failed") == [failed]
    assert listed("--waiting") == [waiting, failed]  # a callback; an operator
    assert listed("--waiting", "--offset", "1") == [failed]
    assert listed("--limit", "1", "--offset", "1") == [waiting]
    assert listed("--newer-than", "1") == [finished, waiting, failed]
    assert listed("--older-than", "1") == []
    assert store.ok("list", "--older-than", "1") == "no pipelines\n"
    page = json.loads(store.ok("list", "--json", "--limit", "1"))
    assert (page["limit"], page["offset"], page["pipelines"][0]["node_counts"]) == (1, 0, {"FINISHED": 7})
    # RATTAN_STORE names the store when --store is not given
    proc = store.rattan("list", "--state", "FINISHED", env={"RATTAN_STORE": store.url})
    assert (proc.returncode, proc.stdout.splitlines()[1].split()[0]) == (cli.EXIT_OK, finished)


def test_bad_lists_and_a_missing_store(store: Store, tmp_path: Path) -> None:
    err = store.refused(cli.EXIT_USAGE, "list", "--state", "DONE")
    assert "argument --state: invalid choice: 'DONE'" in err
    err = store.refused(cli.EXIT_USAGE, "list", "--older-than", "1", "--newer-than", "2")
    assert "not allowed with argument" in err
    assert "must be 1 or more" in store.refused(cli.EXIT_USAGE, "list", "--limit", "0")
    proc = store.rattan("list", env={"RATTAN_STORE": ""})  # ./rattan.db, which does not exist
    assert proc.returncode == cli.EXIT_INPUT_ERROR
    assert proc.stderr == "rattan list: no store at rattan.db (give --store URL or set RATTAN_STORE)\n"
    assert not (tmp_path / "rattan.db").exists()


# -- show --------------------------------------------------------------------------------------------


def test_show_draws_the_tree_with_errors_and_waits(store: Store) -> None:
    failed, f = failing_run(store)
    st = store.engine.get_state(failed)
    assert store.ok("show", failed) == (
        f"pipeline {failed}: RUNNING\n"
        f"created {when(st.created_time)}, finished -\n"
        "nodes: 1 FAILED, 2 FINISHED\n"
        f"failed: {f['flaky']}\n"
        f"- [EmptyStartEvent] FINISHED ({f['start']})\n"
        f"- first [ServiceActivity] FINISHED ({f['first']})\n"
        f"- flaky [ServiceActivity] FAILED ({f['flaky']}): error: not ok yet; "
        "waits for an operator (retry, skip)\n"
    )
    waiting, w = waiting_run(store)
    version = store.engine.get_state(w["wait for it"]).version
    lines = store.ok("show", waiting).splitlines()
    assert lines[-1] == (
        f"- wait for it [ServiceActivity] RUNNING ({w['wait for it']}): "
        f"waits for a callback (version {version})"
    )


def test_show_indents_subprocess_children_and_has_json(store: Store) -> None:
    root, n = sub_run(store)
    st = store.engine.get_state(root)
    assert store.ok("show", root) == (
        f"pipeline {root}: FINISHED\n"
        f"created {when(st.created_time)}, finished {when(st.archived_time)}\n"
        "nodes: 7 FINISHED\n"
        f"- [EmptyStartEvent] FINISHED ({n['start']})\n"
        f"- before [ServiceActivity] FINISHED ({n['before']})\n"
        f"- sub [SubProcess] FINISHED ({n['sub']})\n"
        f"    - [EmptyStartEvent] FINISHED ({n['sub/start']})\n"
        f"    - inner [ServiceActivity] FINISHED ({n['sub/inner']})\n"
        f"    - [EmptyEndEvent] FINISHED ({n['sub/end']})\n"
        f"- [EmptyEndEvent] FINISHED ({n['end']})\n"
    )
    shown = json.loads(store.ok("show", root, "--json"))
    summary = {"id": root, "state": "FINISHED", "finished": True, "failed_nodes": [], "waiting": {}}
    assert shown["pipeline"] == summary
    inner = shown["states"]["children"][n["sub"]]["children"][n["sub/inner"]]
    assert (inner["name"], inner["type"], inner["state"]) == ("inner", "ServiceActivity", "FINISHED")


def test_show_refuses_unknown_ids_and_node_ids(store: Store) -> None:
    root, n = sub_run(store)
    assert store.refused(cli.EXIT_NOT_FOUND, "show", "pnope") == (
        "rattan show: pipeline pnope does not exist (list_pipelines shows the stored runs)\n"
    )
    err = store.refused(cli.EXIT_NOT_FOUND, "show", n["before"])
    assert err == (
        f"rattan show: {n['before']} is a node of pipeline {root}, "
        f"not a pipeline that was run: wait on {root}\n"
    )


# -- graph -------------------------------------------------------------------------------------------


def test_graph_as_mermaid_and_dot(store: Store) -> None:
    root, n = sub_run(store)
    mermaid = store.ok("graph", root)
    lines = mermaid.splitlines()
    assert lines[:2] == ["flowchart LR", "  %% pipeline state: FINISHED"]
    assert f'  {n["before"]}["before<br/>FINISHED"]:::FINISHED' in lines
    assert f'  {n["start"]}(("start<br/>FINISHED")):::FINISHED' in lines
    at = lines.index(f'  subgraph {n["sub"]}["sub (FINISHED)"]')
    assert lines[at + 1 : at + 5] == [
        f'    {n["sub/start"]}(("start<br/>FINISHED")):::FINISHED',
        f'    {n["sub/end"]}(("end<br/>FINISHED")):::FINISHED',
        f'    {n["sub/inner"]}["inner<br/>FINISHED"]:::FINISHED',
        "  end",
    ]
    # flows into and out of the subprocess go to its start and from its end event
    assert f"  {n['before']} --> {n['sub/start']}" in lines
    assert f"  {n['sub/end']} --> {n['end']}" in lines
    assert sum(" --> " in line for line in lines) == 5

    dot = store.ok("graph", root, "--format", "dot").splitlines()
    assert dot[0] == f'digraph "{root}" {{' and dot[-1] == "}"
    assert f'  "{n["before"]}" -> "{n["sub/start"]}";' in dot
    assert f'  subgraph "cluster_{n["sub"]}" {{' in dot
    assert (
        f'    "{n["sub/inner"]}" [label="inner\\nFINISHED", shape=box, fillcolor="#dcfce7", color="#16a34a"];'
    ) in dot
    assert json.loads(store.ok("graph", root, "--json"))["graph"] == mermaid


def test_graph_marks_unreached_nodes_and_failures(store: Store) -> None:
    root, n = failing_run(store)
    lines = store.ok("graph", root).splitlines()
    assert f'  {n["flaky"]}["flaky<br/>FAILED"]:::FAILED' in lines
    assert f'  {n["end"]}(("end<br/>NOT_REACHED")):::NOT_REACHED' in lines
    err = store.refused(cli.EXIT_NOT_FOUND, "graph", "pnope")
    assert err == "rattan graph: pipeline pnope does not exist\n"
    assert "invalid choice: 'png'" in store.refused(cli.EXIT_USAGE, "graph", root, "--format", "png")


def test_graph_as_svg_draws_every_node_in_its_state_and_frames_the_subprocess(store: Store) -> None:
    root, _ = sub_run(store)
    text = store.ok("graph", root, "--format", "svg")
    doc = ElementTree.fromstring(text)  # a well-formed, standalone image
    ns = "{http://www.w3.org/2000/svg}"
    assert doc.tag == f"{ns}svg"
    texts = [t.text for t in doc.iter(f"{ns}text")]
    assert texts[0] == f"pipeline {root}: FINISHED"
    for name in ("before", "inner", "sub (FINISHED)"):
        assert name in texts
    assert texts.count("FINISHED") == 6  # start, before, the sub's start, inner and end, end
    # events as circles, activities as boxes (and the frame of the subprocess, dashed)
    assert len(list(doc.iter(f"{ns}circle"))) == 4
    frames = [r for r in doc.iter(f"{ns}rect") if r.get("stroke-dasharray") == "6 4"]
    assert len(frames) == 1
    assert sum(1 for p in doc.iter(f"{ns}path") if p.get("marker-end")) == 5  # every flow, once
    failed_root, _ = failing_run(store)
    failed = ElementTree.fromstring(store.ok("graph", failed_root, "--format", "svg"))
    assert "FAILED" in [t.text for t in failed.iter(f"{ns}text")]
    assert "NOT_REACHED" in [t.text for t in failed.iter(f"{ns}text")]


def test_graph_escapes_names_and_odd_ids() -> None:
    drawing = Drawing({"a b": "FINISHED"})
    tree = {
        "id": "end",
        "start_event": {"id": "a b", "type": "EmptyStartEvent", "outgoing": "f1"},
        "end_event": {"id": "e", "type": "EmptyEndEvent", "outgoing": ""},
        "activities": {
            "x": {"id": "x", "type": "ServiceActivity", "name": 'say "hi" | <b>', "outgoing": "f2"}
        },
        "gateways": {},
        "flows": {"f1": {"source": "a b", "target": "x"}, "f2": {"source": "x", "target": "e"}},
    }
    drawing.walk(tree)
    mermaid = drawing.mermaid("RUNNING").splitlines()
    assert '  n0(("start<br/>FINISHED")):::FINISHED' in mermaid
    assert '  x["say #quot;hi#quot; #124; #lt;b#gt;<br/>NOT_REACHED"]:::NOT_REACHED' in mermaid
    assert "  n0 --> x" in mermaid
    dot = drawing.dot("RUNNING").splitlines()
    assert dot[0] == 'digraph "end" {'
    assert any(line.startswith('  "x" [label="say \\"hi\\" | <b>\\nNOT_REACHED", shape=box') for line in dot)


# -- events ------------------------------------------------------------------------------------------


def test_events_prints_the_log_and_resumes_after_an_id(store: Store) -> None:
    root, _ = sub_run(store)
    other, _ = sub_run(store)
    logged = store.engine.events(root, 0, 1000)
    proc = store.rattan("events", root, "--store", store.url)
    assert proc.returncode == cli.EXIT_OK, proc.stderr
    expected = [
        f"{e['id']}  {when(e['created_time'], fraction=True)}  {e['event_type']}  {root}  "
        f"{e['node_id'] or '-'}"
        for e in logged
    ]
    assert proc.stdout.splitlines() == expected
    assert proc.stderr == ""
    middle = logged[3]["id"]
    resumed = store.rattan("events", root, "--after", str(middle), "--store", store.url, "--json")
    got = [json.loads(line) for line in resumed.stdout.splitlines()]
    assert [e["id"] for e in got] == [e["id"] for e in logged[4:]]
    assert {e["root_id"] for e in got} == {root}
    everything = store.rattan("events", "--store", store.url)
    roots = {line.split()[4] for line in everything.stdout.splitlines()}
    assert roots == {root, other}
    err = store.refused(cli.EXIT_NOT_FOUND, "events", "pnope")
    assert err == "rattan events: pipeline pnope does not exist\n"


def _reader(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    """Lines of the command's output as they come (a thread reads them; "" at the end)."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=read, daemon=True).start()
    return lines


def _read_lines(lines: queue.Queue[str], count: int, deadline: float) -> list[str]:
    got: list[str] = []
    while len(got) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"only {len(got)} of {count} lines came: {got}"
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            continue
        assert line, f"the command ended early: {got}"
        got.append(line)
    return got


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_events_follow_prints_new_events_until_stopped(store: Store, stop: signal.Signals) -> None:
    root, w = waiting_run(store)
    before = store.engine.events(root, 0, 1000)
    with subprocess.Popen(
        [sys.executable, "-c", RUN_RATTAN, "events", root, "--follow", "--interval", "0.05",
         "--store", store.url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
    ) as proc:  # fmt: skip
        try:
            err = _follow(store, proc, root, w["wait for it"], before, stop)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(WAIT)
    assert proc.returncode == cli.EXIT_OK, err
    last = store.engine.events(root, 0, 1000)[-1]["id"]
    assert err == f"last event id: {last} (resume with --after {last})\n"
    assert store.ok("events", root, "--after", str(last)) == ""


def _follow(
    store: Store,
    proc: subprocess.Popen[str],
    root: str,
    node: str,
    before: list[dict[str, Any]],
    stop: signal.Signals,
) -> str:
    """Read the events there were, make more, read them, then stop it; returns stderr."""
    lines = _reader(proc)
    deadline = time.monotonic() + WAIT
    first = _read_lines(lines, len(before), deadline)
    assert [int(line.split()[0]) for line in first] == [e["id"] for e in before]
    store.engine.callback(node, store.engine.get_state(node).version, {"ok": 1})
    assert store.engine.wait_pipeline(root, WAIT)["finished"]
    after = store.engine.events(root, before[-1]["id"], 1000)
    more = _read_lines(lines, len(after), deadline)
    assert [int(line.split()[0]) for line in more] == [e["id"] for e in after]
    proc.send_signal(stop)
    assert proc.stderr is not None
    assert proc.wait(WAIT) is not None
    assert lines.get(timeout=WAIT) == ""  # nothing more was printed
    return proc.stderr.read()


# -- history and controls ----------------------------------------------------------------------------


def test_retry_with_data_then_history(store: Store) -> None:
    root, n = failing_run(store)
    node = n["flaky"]
    old = store.engine.get_state(node)
    out = store.ok("history", node)
    assert out == (
        f"node {node} (flaky, ServiceActivity) of pipeline {root}\n"
        f"now: FAILED, version {old.version}, loop 1, retry 0, started {when(old.started_time)}, "
        f"finished {when(old.archived_time)}\n"
        "past passes: none\n"
    )
    assert store.ok("retry", node, "--data", '{"ok": true}') == f"retrying {node} with new inputs: ok\n"
    assert store.engine.wait_pipeline(root, WAIT)["finished"]
    now = store.engine.get_state(node)
    passes = store.engine.get_node_histories(node)
    assert len(passes) == 1
    h = passes[0]
    width = max(2, len(str(h["id"])))
    assert store.ok("history", node).splitlines()[1:] == [
        f"now: FINISHED, version {now.version}, loop 1, retry 1, started {when(now.started_time)}, "
        f"finished {when(now.archived_time)}",
        "past passes: 1",
        f"  {'ID':<{width}}  LOOP  RETRY  SKIP  {'VERSION':<33}  {'STARTED':<19}  FINISHED",
        f"  {h['id']:<{width}}  1     0      no    {old.version}  {when(h['started_time'])}  "
        f"{when(h['archived_time'])}",
    ]
    shown = json.loads(store.ok("history", node, "--json"))
    assert shown["node"]["state"] == "FINISHED"
    assert [p["version"] for p in shown["histories"]] == [old.version]
    # retrying a node that is not FAILED is refused; so is a node that does not exist
    assert store.refused(cli.EXIT_REFUSED, "retry", node) == (
        f"rattan retry: refused: {node} state is not FAILED, actual FINISHED\n"
    )
    assert store.refused(cli.EXIT_NOT_FOUND, "history", "enope") == (
        "rattan history: node enope does not exist (or was not reached yet)\n"
    )


def test_retry_and_callback_refuse_bad_json(store: Store) -> None:
    _, n = failing_run(store)
    node = n["flaky"]
    err = store.refused(cli.EXIT_INPUT_ERROR, "retry", node, "--data", "{ok")
    assert err.startswith("rattan retry: --data is not JSON: Expecting property name")
    err = store.refused(cli.EXIT_INPUT_ERROR, "retry", node, "--data", "[1]")
    assert err == "rattan retry: --data must be a JSON object (input key -> value): [1]\n"
    err = store.refused(cli.EXIT_INPUT_ERROR, "callback", node, "--data", "nope")
    assert err.startswith("rattan callback: --data is not JSON:")
    assert "the following arguments are required: --data" in store.refused(cli.EXIT_USAGE, "callback", node)
    assert store.engine.get_state(node).name == "FAILED"  # nothing was changed


def test_skip_and_force_fail(store: Store) -> None:
    root, n = failing_run(store)
    assert store.ok("skip", n["flaky"]) == f"skipped {n['flaky']}\n"
    assert store.engine.wait_pipeline(root, WAIT)["finished"]
    assert store.refused(cli.EXIT_NOT_FOUND, "skip", "enope") == (
        "rattan skip: node(enope) does not exist in any pipeline\n"
    )
    waiting, w = waiting_run(store)
    node = w["wait for it"]
    assert store.ok("force-fail", node, "--message", "stuck") == f"forced {node} to fail: stuck\n"
    outcome = store.engine.wait_pipeline(waiting, WAIT)
    assert outcome["failed_nodes"] == [{"id": node, "name": "wait for it", "error": "stuck"}]
    err = store.refused(cli.EXIT_REFUSED, "force-fail", node)
    assert err.startswith("rattan force-fail: refused: ")
    result = json.loads(store.ok("skip", node, "--json"))
    assert result == {"ok": True, "command": "skip", "id": node}


def test_callback_with_the_current_version_by_default(store: Store) -> None:
    root, n = waiting_run(store)
    node = n["wait for it"]
    version = store.engine.get_state(node).version
    sent = json.loads(store.ok("callback", node, "--data", '{"answer": 42}', "--json"))
    assert sent["version"] == version and sent["id"] == node and isinstance(sent["callback_id"], int)
    assert store.engine.wait_pipeline(root, WAIT)["finished"]
    assert store.engine.get_execution_data_outputs(node)["received"] == {"answer": 42}
    # the node waits no more: a second callback is refused; an unknown node is not found
    err = store.refused(cli.EXIT_REFUSED, "callback", node, "--data", "1")
    assert err.startswith("rattan callback: refused: ")
    err = store.refused(cli.EXIT_REFUSED, "callback", node, "--data", "1", "--version", "v0")
    assert err.startswith("rattan callback: refused: ")
    assert store.refused(cli.EXIT_NOT_FOUND, "callback", "enope", "--data", "1") == (
        "rattan callback: node(enope) does not exist\n"
    )


def test_pause_resume_revoke(store: Store) -> None:
    root, n = waiting_run(store)
    assert store.ok("pause", root) == f"paused {root}\n"
    assert store.engine.get_state(root).name == "SUSPENDED"
    assert "waits for resume (paused)" in store.ok("show", root)
    err = store.refused(cli.EXIT_REFUSED, "pause", n["wait for it"])
    assert err.startswith(f"rattan pause: refused: {n['wait for it']} is not a pipeline")
    assert store.ok("resume", root) == f"resumed {root}\n"
    assert store.engine.get_state(root).name == "RUNNING"
    assert store.refused(cli.EXIT_REFUSED, "resume", root) == (
        f"rattan resume: refused: pipeline({root}) state is: RUNNING\n"
    )
    assert store.ok("revoke", root) == f"revoked {root}\n"
    assert store.engine.wait_pipeline(root, WAIT)["state"] == "REVOKED"
    assert store.refused(cli.EXIT_NOT_FOUND, "pause", "pnope") == "rattan pause: node(pnope) does not exist\n"


# -- migrate -----------------------------------------------------------------------------------------


def test_migrate_creates_or_updates_a_store(tmp_path: Path) -> None:
    fresh = tmp_path / "new.db"
    proc = subprocess.run(
        [sys.executable, "-m", "rattan", "migrate", "--store", str(fresh)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == cli.EXIT_OK, proc.stderr
    version = rattan.Engine(store=str(fresh), start=False)
    try:
        number = version.core.store.migrate()
    finally:
        version.close()
    assert proc.stdout == f"created {fresh}: schema version {number}\n"
    again = subprocess.run(
        [sys.executable, "-m", "rattan", "migrate", "--store", f"sqlite:///{fresh}", "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert json.loads(again.stdout) == {"store": str(fresh), "schema_version": number, "created": False}


def test_the_commands_on_a_postgresql_store(postgres_url: str) -> None:
    """The same commands on a shared store (skipped where no PostgreSQL server can be started)."""
    submitter = rattan.Engine(store=postgres_url, start=False)  # writes the run; runs nothing
    try:
        tree = linear(echo("first"))
        submitter.run_pipeline(tree)
    finally:
        submitter.close()
    root = tree["id"]

    def rattan_pg(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rattan", *args, "--store", postgres_url],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    migrated = rattan_pg("migrate", "--json")
    assert migrated.returncode == cli.EXIT_OK, migrated.stderr
    shown = json.loads(migrated.stdout)
    assert shown["created"] is False and isinstance(shown["schema_version"], int)
    assert shown["store"].split("@")[-1] == postgres_url.split("@")[-1]  # a password would be ***
    listed = rattan_pg("list", "--json", "--limit", "1000")
    assert root in [r["id"] for r in json.loads(listed.stdout)["pipelines"]]
    assert rattan_pg("show", root).stdout.startswith(f"pipeline {root}: ")
    assert rattan_pg("revoke", root).stdout == f"revoked {root}\n"
    assert rattan_pg("show", "pnope").returncode == cli.EXIT_NOT_FOUND
