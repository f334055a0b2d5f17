"""Stress: 50 running pipelines, 1,000 random control operations from several threads, then every
pipeline is settled and checked for consistency (SPEC 6, 7.1-7.5, Appendix D.4)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from control_helpers import Lab, act, states_of, wait_for

import rattan
from rattan import api
from rattan.builder import ConvergeGateway, EmptyEndEvent, EmptyStartEvent, ParallelGateway, build_tree

PIPELINES = 50
OPERATIONS = 1000
THREADS = 6
SETTLE_SECONDS = 45.0


@dataclass
class Run:
    root: str
    nodes: dict[str, str]  # node id -> role (poll / fail / cb / ok / mcb / raise / gateway / event)
    revoked_at: float | None = None


@dataclass
class Ledger:
    """What the operators did, as the API reported it."""

    results: list[Any] = field(default_factory=list)
    retries: Counter[str] = field(default_factory=Counter)  # successful retry_node per node
    skips: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, op: str, node_id: str, res: Any) -> None:
        with self.lock:
            self.results.append((op, res))
            if isinstance(res, api.EngineAPIResult) and res.result:
                if op == "retry":
                    self.retries[node_id] += 1
                elif op == "skip":
                    self.skips[node_id] += 1


def build(i: int) -> tuple[dict[str, Any], dict[str, str]]:
    start, pg, conv, end = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    poll, fail, cb, ok_, mcb, raise_ = (
        act("c_poll", polls=3) if i % 3 else act("c_poll"),  # a third poll until settled
        act("c_fail"),
        act("c_cb"),
        act("c_ok"),
        act("c_mcb"),
        act("c_raise_once"),
    )
    branches = [poll, cb, mcb] if i % 2 else [poll, cb]
    start.extend(pg).connect(*branches)
    poll.extend(fail)
    cb.extend(ok_)
    pg.converge(conv).extend(raise_).extend(end)
    roles = {
        start.id: "event",
        pg.id: "gateway",
        conv.id: "gateway",
        end.id: "event",
        poll.id: "poll",
        fail.id: "fail",
        cb.id: "cb",
        ok_.id: "ok",
        raise_.id: "raise",
    }
    if i % 2:
        roles[mcb.id] = "mcb"
    return build_tree(start), roles


LAB_CALLS: list[Any] = []
OPS = [
    "pause",
    "resume",
    "retry",
    "retry_data",
    "skip",
    "forced_fail",
    "callback",
    "callback_stale",
    "pause_node",
    "resume_node",
    "skip_gateway",
    "skip_cpg",
    "revoke",
    "retry_subprocess",
]
WEIGHTS = [8, 8, 12, 4, 10, 8, 14, 4, 6, 6, 2, 2, 0.6, 2]


def random_op(engine: rattan.Engine, rng: random.Random, runs: list[Run], ledger: Ledger) -> None:
    run_ = rng.choice(runs)
    node_id = rng.choice([*run_.nodes, "no-such-node"]) if rng.random() < 0.97 else "no-such-node"
    op = rng.choices(OPS, WEIGHTS)[0]
    res: Any
    try:
        if op == "pause":
            res = api.pause_pipeline(engine, run_.root if rng.random() < 0.8 else node_id)
        elif op == "resume":
            # a node id here is an invalid argument: it must be refused (not a pipeline id)
            res = api.resume_pipeline(engine, run_.root if rng.random() < 0.8 else node_id)
        elif op == "retry":
            res = api.retry_node(engine, node_id)
        elif op == "retry_data":
            res = api.retry_node(engine, node_id, data={"r": rng.random(), "_escape_render_keys": []})
        elif op == "skip":
            res = api.skip_node(engine, node_id)
        elif op == "forced_fail":
            res = api.forced_fail_activity(engine, node_id, "stress")
        elif op in ("callback", "callback_stale"):
            st = engine.get_state_or_none(node_id)
            version = st.version if st is not None and op == "callback" else "v-stale"
            payload: Any = rng.choice([{"n": rng.randint(0, 9)}, "x", None, [1, 2], {"fail": True}])
            res = api.callback(engine, node_id, version, payload)
        elif op == "pause_node":
            res = api.pause_node_appoint(engine, node_id)
        elif op == "resume_node":
            res = api.resume_node_appoint(engine, node_id)
        elif op == "skip_gateway":
            res = api.skip_exclusive_gateway(engine, node_id, rng.choice(["f-bad", node_id]))
        elif op == "skip_cpg":
            res = api.skip_conditional_parallel_gateway(engine, node_id, [node_id], "nope")
        elif op == "retry_subprocess":
            res = api.retry_subprocess(engine, node_id)
        else:
            res = api.revoke_pipeline(engine, run_.root)
            if res.result:
                run_.revoked_at = time.monotonic()
    except BaseException as exc:  # an API function must never raise
        res = exc
    ledger.note(op.removesuffix("_data"), node_id, res)


def short_histories_full(engine: rattan.Engine, node_id: str) -> list[dict[str, Any]]:
    return list(api.get_node_histories(engine, node_id).data or [])


def describe(engine: rattan.Engine, run_: Run) -> str:
    """Diagnostics of a stuck pipeline: node roles and states, tokens, schedules."""
    lines = [f"root {run_.root} {engine.get_state(run_.root).name}"]
    for node_id, entry in states_of(engine, run_.root).items():
        sched = None
        try:
            sched = engine.get_schedule_with_node_and_version(node_id, entry["version"])
        except rattan.NotFoundError:
            pass
        lines.append(
            f"  {run_.nodes.get(node_id)} {node_id} {entry['state']} {entry['version']} "
            f"retry={entry['retry']} skip={entry['skip']} sched={sched}"
        )
        if entry["state"] not in ("FINISHED",):
            evs = [e["event_type"] for e in engine.events(run_.root) if e["node_id"] == node_id]
            lines.append(f"    events {evs[-12:]} ({len(evs)} in all)")
            out = api.get_execution_data_outputs(engine, node_id).data
            lines.append(f"    ex_data {str(out.get('ex_data'))[-300:]!r}")
            lines.append(f"    histories {len(short_histories_full(engine, node_id))}")
    for node_id in run_.nodes:
        st = engine.get_state_or_none(node_id)
        if st is not None and not st.root_id:
            lines.append(
                f"  appointment {run_.nodes[node_id]} {node_id} {st.name} {st.version} retry={st.retry}"
            )
            lines.append(
                f"    events {[e['event_type'] for e in engine.events() if e['node_id'] == node_id]}"
            )
            lines.append(f"    calls {[(c.kind, c.version) for c in LAB_CALLS if c.node_id == node_id]}")
    info = api.get_pipeline_debug_info(engine, run_.root)
    if info.result:
        for proc in info.data["processes"]:
            lines.append(f"  token {proc.as_dict()}")
    return "\n".join(lines)


def settle(engine: rattan.Engine, lab: Lab, runs: list[Run], ledger: Ledger) -> None:
    """Drive every live pipeline to its end: resume, resume appointments, retry failures, finish
    polls and callback nodes."""
    for run_ in runs:
        lab.finish.update(n for n, role in run_.nodes.items() if role == "poll")
    deadline = time.monotonic() + SETTLE_SECONDS
    pending = [r for r in runs if r.revoked_at is None]
    while pending:
        assert time.monotonic() < deadline, (
            f"{len(pending)} pipelines did not finish: {describe(engine, pending[0])}"
        )
        still = []
        for run_ in pending:
            root = engine.get_state(run_.root)
            if root.name == "FINISHED":
                continue
            still.append(run_)
            if root.name == "SUSPENDED":
                ledger.note("resume", run_.root, api.resume_pipeline(engine, run_.root))
            for node_id, entry in states_of(engine, run_.root).items():
                role = run_.nodes.get(node_id)
                if entry["state"] == "SUSPENDED":
                    ledger.note("resume_node", node_id, api.resume_node_appoint(engine, node_id))
                elif entry["state"] == "FAILED":
                    ledger.note("retry", node_id, api.retry_node(engine, node_id))
                elif entry["state"] == "RUNNING" and role in ("cb", "mcb"):
                    payload = "finish" if role == "mcb" else {"settle": True}
                    ledger.note("callback", node_id, api.callback(engine, node_id, entry["version"], payload))
            # appointments made on nodes never reached yet are not listed by the run: resume them
            for node_id in run_.nodes:
                st = engine.get_state_or_none(node_id)
                if st is not None and st.name == "SUSPENDED" and not st.root_id:
                    ledger.note("resume_node", node_id, api.resume_node_appoint(engine, node_id))
        pending = still
        time.sleep(0.05)


def check(engine: rattan.Engine, lab: Lab, run_: Run, ledger: Ledger) -> None:
    states = states_of(engine, run_.root)
    root = engine.get_state(run_.root)
    for node_id, entry in states.items():
        hist = api.get_node_histories(engine, node_id)
        assert hist.result
        records = hist.data
        # counters: never negative; retry equals the successful retries of this (only) pass
        assert entry["retry"] >= 0
        assert entry["retry"] == ledger.retries[node_id], (node_id, entry, ledger.retries[node_id])
        assert ledger.skips[node_id] <= 1
        assert entry["skip"] == (ledger.skips[node_id] == 1)
        # one history record per successful retry or skip, numbered 0, 1, 2 ... and never skipped
        assert len(records) == ledger.retries[node_id] + ledger.skips[node_id]
        assert [h["retry"] for h in records] == list(range(len(records)))
        assert not any(h["skip"] for h in records)
        assert len({h["version"] for h in records} | {entry["version"]}) == len(records) + 1
        out = api.get_execution_data_outputs(engine, node_id).data
        if entry["skip"]:
            # skipped: FINISHED but not by execution; the failed pass's data is kept
            assert entry["state"] == "FINISHED"
            assert out.get("_result") is False or out.get("_forced_failed") is True, out
        elif entry["state"] == "FINISHED" and run_.nodes.get(node_id) not in ("gateway", "event", None):
            assert out.get("_result") not in (False, None), (node_id, out)
            assert "_forced_failed" not in out
    if run_.revoked_at is None:
        assert root.name == "FINISHED"
        assert {e["state"] for e in states.values()} == {"FINISHED"}, states
        assert set(run_.nodes) <= set(states) | {
            n for n, role in run_.nodes.items() if role == "mcb"
        }  # every node ran
    else:
        assert root.name == "REVOKED"
        # nothing waits any more: a node still showing RUNNING has no live schedule
        for node_id, entry in states.items():
            if entry["state"] != "RUNNING":
                continue
            try:
                sched = engine.get_schedule_with_node_and_version(node_id, entry["version"])
            except rattan.NotFoundError:
                continue
            assert sched.finished or sched.expired, (node_id, sched)
        # after revoke (plus the in-flight step) nothing of that pipeline executed or polled
        late = [
            c
            for c in lab.calls
            if c.node_id in run_.nodes and c.kind in ("execute", "schedule") and c.at > run_.revoked_at + 1.0
        ]
        assert late == [], late[:3]


@pytest.mark.timeout(120)
@pytest.mark.slow
def test_random_controls_on_fifty_pipelines_stay_consistent(make_engine: Any, lab: Lab) -> None:
    seed = random.randrange(1 << 30)
    print(f"stress seed {seed}")
    engine = make_engine()
    runs: list[Run] = []
    for i in range(PIPELINES):
        tree, roles = build(i)
        res = api.run_pipeline(engine, tree)
        assert res.result, res.message
        runs.append(Run(tree["id"], roles))
    # let every pipeline reach its waits before the storm
    wait_for(
        lambda: all(
            engine.get_state_or_none(n) is not None
            for r in runs
            for n, role in r.nodes.items()
            if role == "cb"
        )
    )
    ledger = Ledger()
    started = time.monotonic()

    def operator(k: int) -> None:
        rng = random.Random(seed + k)
        for _ in range(OPERATIONS // THREADS + (1 if k < OPERATIONS % THREADS else 0)):
            random_op(engine, rng, runs, ledger)
            time.sleep(rng.random() * 0.01)  # spread the storm over the engine's own progress

    threads = [threading.Thread(target=operator, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    storm = time.monotonic() - started

    # every call returned an EngineAPIResult, never raised
    assert len(ledger.results) == OPERATIONS
    bad = [(op, r) for op, r in ledger.results if not isinstance(r, api.EngineAPIResult)]
    assert bad == []
    for _op, r in ledger.results:
        assert (r.result, r.exc is None) in ((True, True), (False, False))

    LAB_CALLS[:] = lab.calls
    settle(engine, lab, runs, ledger)
    assert engine.wait_idle(20)
    for run_ in runs:
        check(engine, lab, run_, ledger)
    accepted = Counter(op for op, r in ledger.results if r.result)
    revoked = sum(r.revoked_at is not None for r in runs)
    print(f"storm {storm:.1f}s, accepted {dict(accepted)}, revoked {revoked}")
