"""Helpers of the stateful test (issue 13, item 3): a small component library, the pipeline shapes
the machine starts, the strategies of wrong arguments, the check of every ``rattan.api`` result,
the state invariants read in one store snapshot, and the drive that finishes every run."""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

import rattan
from rattan import api
from rattan.builder import (
    ConditionalParallelGateway,
    ConvergeGateway,
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    ParallelGateway,
    Params,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)
from rattan.context import ContextValue
from rattan.engine.checks import json_input
from rattan.errors import (
    BadInputError,
    ComponentNotExistException,
    ConflictError,
    InvalidOperationError,
    NotFoundError,
    RattanError,
)
from rattan.model import states
from rattan.model.records import CALLBACK_PENDING, ScheduleType
from rattan.runtime.interface import CallbackQuery, ScheduleQuery

# what a refusal may carry: the documented families of rattan.errors (docs/api.md); a store or
# broker outage (BackendUnavailableError) never happens on a local SQLite file, so it is not here
DOCUMENTED = (BadInputError, InvalidOperationError, NotFoundError, ConflictError)
DONE = (states.FINISHED, states.REVOKED)
POLL_INTERVAL = 0.05
POLLS = 3


# -- components -----------------------------------------------------------------------------------
@dataclass
class Counts:
    """Executes per node id (thread safe): how the failing components decide."""

    seen: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bump(self, key: str) -> int:
        with self.lock:
            self.seen[key] = self.seen.get(key, 0) + 1
            return self.seen[key]


COUNTS = Counts()
REGISTRY = rattan.Registry("stateful-tests")


class _Ok(rattan.Service):
    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.done = True
        return True


class _Fail(rattan.Service):
    """Fails its first ``fails`` executes (input, default 1), then succeeds."""

    def execute(self, data: Any, parent_data: Any) -> bool:
        if COUNTS.bump(self.id) <= int(data.inputs.get("fails", 1)):
            data.outputs.ex_data = "boom"
            return False
        data.outputs.done = True
        return True


class _Callback(rattan.Service):
    """Waits for one callback; callback data ``{"fail": True}`` fails it."""

    __need_schedule__ = True

    def execute(self, data: Any, parent_data: Any) -> bool:
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        data.outputs.got = callback_data
        return not (isinstance(callback_data, dict) and callback_data.get("fail") is True)


class _Poll(rattan.Service):
    """Polls every POLL_INTERVAL s and finishes at poll POLLS."""

    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(POLL_INTERVAL)

    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.polls = 0
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        data.outputs.polls = data.outputs.polls + 1
        if data.outputs.polls >= POLLS:
            self.finish_schedule()
        return True


for _code, _service in {"sf_ok": _Ok, "sf_fail": _Fail, "sf_cb": _Callback, "sf_poll": _Poll}.items():
    attrs = {"name": _code, "code": _code, "bound_service": _service}
    type(f"Comp_{_code}", (rattan.Component,), attrs, registry=REGISTRY)


class _FlakyLazy(rattan.LazyVariable, registry=REGISTRY):
    """A lazy subprocess parameter that fails the first time each value is rendered: the
    subprocess node FAILS on entry (what ``retry_subprocess`` repairs)."""

    code = "sf_flaky"

    def get_value(self) -> Any:
        if COUNTS.bump(f"lazy:{self.value}") == 1:
            raise RuntimeError("lazy not ready")
        return "ready"


# -- pipelines ------------------------------------------------------------------------------------
SHAPES = ("parallel", "gateways", "subprocess")


@dataclass
class Run:
    """A started pipeline and what the machine knows of its tree."""

    root: str
    shape: str
    tree: dict[str, Any]  # as built (run_pipeline normalises its argument in place: this is a copy)
    activities: list[str] = field(default_factory=list)
    gateways: dict[str, str] = field(default_factory=dict)  # id -> ExclusiveGateway / ...
    flows: dict[str, list[str]] = field(default_factory=dict)  # gateway id -> outgoing flow ids
    converge: dict[str, str] = field(default_factory=dict)  # gateway id -> its converge gateway
    subprocesses: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)  # events, converge / parallel gateways

    @property
    def nodes(self) -> list[str]:
        return [*self.activities, *self.gateways, *self.subprocesses, *self.others]

    def tree_copy(self) -> dict[str, Any]:
        return copy.deepcopy(self.tree)


def act(code: str, **inputs: Any) -> ServiceActivity:
    flags = {k: inputs.pop(k) for k in ("retryable", "skippable") if k in inputs}
    node = ServiceActivity(component_code=code, **flags)
    for key, value in inputs.items():
        node.component.inputs[key] = Var(type=Var.PLAIN, value=value)
    return node


def _gateway_flows(tree: dict[str, Any], gw_id: str) -> list[str]:
    return list(tree["gateways"][gw_id]["outgoing"])


def build(shape: str) -> tuple[dict[str, Any], Run]:
    """A fresh tree of ``shape`` (new ids every call) and its Run record (tree copy inside)."""
    start, end = EmptyStartEvent(), EmptyEndEvent()
    acts: list[ServiceActivity] = []
    gws: list[Any] = []
    convs: list[Any] = []
    subs: list[Any] = []
    others: list[Any] = [start, end]
    data = None
    if shape == "parallel":
        # ok, a fail that can only be skipped, a callback wait and a poll, side by side
        pg, conv = ParallelGateway(), ConvergeGateway()
        acts = [act("sf_ok"), act("sf_fail", retryable=False), act("sf_cb"), act("sf_poll")]
        start.extend(pg).connect(*acts)
        pg.converge(conv).extend(end)
        others += [pg, conv]
    elif shape == "gateways":
        # a fail that can only be retried (twice), then gateways whose conditions are all false
        first = act("sf_fail", fails=2, skippable=False)
        eg = ExclusiveGateway(conditions={0: "${n} == 1", 1: "${n} == 2"})
        x, y, c1 = act("sf_ok"), act("sf_cb"), ConvergeGateway()
        cpg = ConditionalParallelGateway(conditions={0: "${n} == 1", 1: "${n} == 2", 2: "${n} == 4"})
        p, q, r, c2 = act("sf_ok"), act("sf_poll"), act("sf_fail"), ConvergeGateway()
        start.extend(first).extend(eg).connect(x, y)
        eg.converge(c1).extend(cpg).connect(p, q, r)
        cpg.converge(c2).extend(end)
        acts, gws, convs = [first, x, y, p, q, r], [eg, cpg], [c1, c2]
        data = Data(inputs={"${n}": Var(type=Var.PLAIN, value=3)})
    elif shape == "subprocess":
        # a subprocess that fails on entry once (its lazy parameter), holding a fail and a callback
        s_start, s_fail, s_cb, s_end = EmptyStartEvent(), act("sf_fail"), act("sf_cb"), EmptyEndEvent()
        s_start.extend(s_fail).extend(s_cb).extend(s_end)
        sub = SubProcess(
            start=s_start,
            data=Data(inputs={"${p}": Var(type=Var.PLAIN, value="default")}),
            params=Params({"${p}": Var(type=Var.LAZY, value=s_start.id, custom_type="sf_flaky")}),
        )
        after = act("sf_poll")
        start.extend(sub).extend(after).extend(end)
        acts, subs = [s_fail, s_cb, after], [sub]
        others += [s_start, s_end]
    else:  # pragma: no cover - the strategy only draws SHAPES
        raise AssertionError(shape)
    tree = build_tree(start, data=data)
    rec = Run(root=tree["id"], shape=shape, tree=copy.deepcopy(tree))
    rec.activities = [a.id for a in acts]
    rec.gateways = {g.id: g.type() for g in gws}
    rec.subprocesses = [s.id for s in subs]
    rec.others = [o.id for o in [*others, *convs]]
    for g, c in zip(gws, convs, strict=True):
        rec.flows[g.id] = _gateway_flows(tree, g.id)
        rec.converge[g.id] = c.id
    return tree, rec


# -- arguments ------------------------------------------------------------------------------------
class Opaque:
    """An object JSON cannot hold."""

    def __repr__(self) -> str:
        return "Opaque()"


WRONG_IDS: st.SearchStrategy[Any] = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["", " ", "no-such-node", "p" * 32, "%", "' OR 1=1 --", "\x00", "n\u00e9"]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True),
    st.binary(max_size=4),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just({"id": "p1", "activities": {}}),
    st.builds(Opaque),
)
JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
)
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
NON_JSON: st.SearchStrategy[Any] = st.sampled_from(
    [
        "set",
        "object",
        "nan",
        "inf",
        "nested-set",
        "nested-nan",
        "bytes",
        "big-int",
        "int-key",
        "tuple-key",
        "datetime",
        "type",
        "deep",
    ]
).map(lambda k: non_json(k))


def non_json(kind: str) -> Any:
    """A fresh value JSON cannot hold exactly (sets, objects, NaN, ...), by name."""
    deep: Any = 0
    for _ in range(2000):
        deep = [deep]
    return {
        "set": {1, 2},
        "object": Opaque(),
        "nan": float("nan"),
        "inf": math.inf,
        "nested-set": {"k": {1}},
        "nested-nan": {"k": [float("nan")]},
        "bytes": b"\xff",
        "big-int": 2**80,
        "int-key": {1: "x"},
        "tuple-key": {(1, 2): "x"},
        "datetime": {"at": datetime(2026, 1, 1)},
        "type": {"t": int},
        "deep": {"k": deep},
    }[kind]


ANY_DATA: st.SearchStrategy[Any] = st.one_of(JSON_VALUES, NON_JSON, st.just({"fail": True}))


# -- checks ---------------------------------------------------------------------------------------
@dataclass
class Tally:
    """What the machine saw (printed at the end of the test for the report)."""

    calls: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)  # "fn: ErrorType" -> count
    vague: dict[str, str] = field(default_factory=dict)  # "fn: ErrorType" -> a message naming no argument
    findings: dict[str, int] = field(default_factory=dict)  # test_findings.py test -> hits
    succeeded: dict[str, int] = field(default_factory=dict)  # fn -> calls that returned result=True
    ends: dict[str, int] = field(default_factory=dict)  # root state at the end of an example -> runs
    examples: int = 0
    steps: int = 0

    def call(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def refusal(self, name: str, exc: BaseException, named: bool) -> None:
        key = f"{name}: {type(exc).__name__}"
        self.refused[key] = self.refused.get(key, 0) + 1
        if not named:
            self.vague.setdefault(key, str(exc)[:160])


TALLY = Tally()
ID_ARGS = ("node_id", "pipeline_id", "root_id", "version")


# -- known findings ---------------------------------------------------------------------------------
# Wrong arguments that the engine does not refuse with a RattanError yet. Each is reproduced by a
# strict xfail in test_findings.py; the machine counts them (TALLY.findings) instead of stopping, so
# it keeps looking for new ones. Remove an entry when its finding is fixed (the xfail then passes
# and fails strictly, which says so).
def _small_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63


def _is_json(v: Any) -> bool:
    try:
        json_input(v, "value")
    except RattanError:
        return False
    return True


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _retry_data_wrong(a: dict[str, Any]) -> bool:
    data = a.get("data")
    if data is None:
        return False
    return not isinstance(data, dict) or (
        "_escape_render_keys" in data and not _str_list(data["_escape_render_keys"])
    )


def _context_values_wrong(a: dict[str, Any]) -> bool:
    values = a.get("context_values")
    if not (isinstance(values, list) and all(isinstance(v, ContextValue) for v in values)):
        return True
    return not all(_is_json(v.value) for v in values)


def _preview_wrong(a: dict[str, Any]) -> bool:
    stack, params = a.get("subprocess_stack"), a.get("parent_params")
    return not (stack is None or _str_list(stack)) or not (params is None or isinstance(params, dict))


KNOWN: dict[str, tuple[tuple[type[BaseException], ...], Callable[[dict[str, Any]], bool], str]] = {}


def known_finding(name: str, exc: BaseException, args: dict[str, Any]) -> str | None:
    """The test_findings.py test that reproduces this refusal, when it is a known finding."""
    entry = KNOWN.get(name) or KNOWN.get(name.removeprefix("Engine."))
    if entry is None:
        return None
    types, wrong, test = entry
    if isinstance(exc, BadInputError):  # a proper refusal: never a finding
        return None
    if isinstance(exc, types) and wrong(args):
        TALLY.findings[test] = TALLY.findings.get(test, 0) + 1
        return test
    return None


def _short(args: dict[str, Any]) -> str:
    shown = {k: (v if len(repr(v)) < 80 else f"{repr(v)[:77]}...") for k, v in args.items()}
    return repr(shown)


def _names(msg: str, value: Any) -> bool:
    return isinstance(value, str) and bool(value) and value in msg


def check_result(name: str, res: Any, args: dict[str, Any]) -> api.EngineAPIResult:
    """``res`` is what ``rattan.api.<name>(engine, **args)`` returned: an EngineAPIResult; a refusal
    has a non-empty message, a documented RattanError and its traceback; a wrong-type id is refused
    with a BadInputError naming the argument; an unknown id with a message naming the id."""
    TALLY.call(name)
    assert isinstance(res, api.EngineAPIResult), f"{name}{_short(args)} returned {res!r}"
    if res.result:
        assert res.exc is None and res.message == "success", res
        TALLY.succeeded[name] = TALLY.succeeded.get(name, 0) + 1
        return res
    exc = res.exc
    if exc is not None and known_finding(name, exc, args):
        return res
    assert isinstance(exc, RattanError), (
        f"api.{name}({_short(args)}) refused with a bare {type(exc).__name__}: {exc}\n{res.exc_trace}"
    )
    assert isinstance(exc, DOCUMENTED), f"api.{name}: undocumented error type {type(exc).__name__}: {exc}"
    assert res.message and res.message == str(exc), res
    assert res.exc_trace and type(exc).__name__ in res.exc_trace
    assert res.data is None
    wrong = [a for a in ID_ARGS if a in args and not (isinstance(args[a], str) and args[a])]
    if wrong:
        # a wrong-type id: refused first, naming the argument (docs/api.md "Bad arguments")
        assert isinstance(exc, BadInputError), f"api.{name}({_short(args)}) gave {exc!r}"
        assert any(a in res.message for a in wrong), (
            f"api.{name}: message names none of {wrong}: {res.message!r}"
        )
    if isinstance(exc, NotFoundError) and not isinstance(exc, ComponentNotExistException):
        assert any(_names(res.message, v) for v in args.values()), (
            f"api.{name}({_short(args)}): NotFoundError names none of the ids: {res.message!r}"
        )
    named = any(_names(res.message, v) for v in args.values()) or any(a in res.message for a in args)
    TALLY.refusal(name, exc, named)
    return res


def call_api(name: str, engine: rattan.Engine, **args: Any) -> api.EngineAPIResult:
    """``rattan.api.<name>(engine, **args)``: it must not raise; its result is checked."""
    fn: Callable[..., Any] = getattr(api, name)
    res = fn(engine, **args)
    return check_result(name, res, args)


# positional parameter names of the Engine methods the machine calls directly
ENGINE_POSITIONAL: dict[str, tuple[str, ...]] = {
    "retry_node": ("node_id", "data", "loop_retry"),
    "callback": ("node_id", "version", "data", "idempotency_key"),
    "forced_fail_activity": ("node_id", "ex_data"),
    "batch_get_state_name": ("node_ids",),
}


def call_engine(engine: rattan.Engine, name: str, *args: Any, **kwargs: Any) -> Any:
    """``engine.<name>(*args)``: returns, or raises a documented RattanError (nothing else)."""
    TALLY.call(f"Engine.{name}")
    try:
        return getattr(engine, name)(*args, **kwargs)
    except Exception as exc:
        named = dict(zip(ENGINE_POSITIONAL.get(name, ()), args, strict=False))
        if known_finding(f"Engine.{name}", exc, {**named, **kwargs}):
            return None
        if not isinstance(exc, RattanError):
            raise AssertionError(
                f"Engine.{name}{repr(args)[:300]} raised a bare {type(exc).__name__}: {exc}"
            ) from exc
        assert isinstance(exc, DOCUMENTED), f"Engine.{name}: undocumented {type(exc).__name__}: {exc}"
        assert str(exc), f"Engine.{name}{repr(args)[:300]}: empty message"
        TALLY.refusal(f"Engine.{name}", exc, True)
        return None


# -- invariants -------------------------------------------------------------------------------------
@dataclass
class Snapshot:
    """One run read in one store transaction (a consistent view while polls still run)."""

    root: Any
    nodes: dict[str, Any]
    histories: dict[str, list[Any]]
    schedules: dict[str, list[Any]]
    callbacks: dict[str, list[Any]]


def snapshot(engine: rattan.Engine, root_id: str) -> Snapshot:
    def read(r: Any) -> Snapshot:
        found = r.states([root_id])
        nodes = {s.node_id: s for s in r.states(root_id=root_id) if s.node_id != root_id}
        return Snapshot(
            root=found[0] if found else None,
            nodes=nodes,
            histories={n: r.histories(n) for n in nodes},
            schedules={n: r.waits(ScheduleQuery(node_id=n)) for n in nodes},
            callbacks={n: r.waits(CallbackQuery(node_id=n)) for n in nodes},
        )

    return engine.core.store.read(read)


def check_invariants(run: Run, snap: Snapshot) -> None:
    """The state invariants of one run (SPEC 6, docs/operations.md), each justified in a comment."""
    root = snap.root
    assert root is not None, f"run {run.root} has no root state"
    assert set(snap.nodes) <= set(run.nodes), f"states of unknown nodes: {set(snap.nodes) - set(run.nodes)}"
    for nid, s in snap.nodes.items():
        where = f"{run.shape} run {run.root}, node {nid} ({s.name}, retry {s.retry}, skip {s.skip})"
        hist = snap.histories[nid]
        # histories are written by retry_node / retry_subprocess (retry + 1 after archiving the
        # pass) and by the skips (archive, then FINISHED skip=True); no tree here has a cycle or
        # a loop_config, so every pass is loop 1 and the archived passes are exactly the retried
        # ones (retry 0..retry-1) plus the skipped one (retry = the current counter)
        want = [*range(s.retry), *([s.retry] if s.skip else [])]
        got = [h.retry for h in hist]
        assert got == want, f"{where}: history retry counters {got}, expected {want}"
        assert all(h.loop == 1 for h in hist) and s.loop == 1, f"{where}: loop passes without a loop"
        assert [h.id for h in hist] == sorted(h.id for h in hist), f"{where}: histories out of order"
        versions = [h.version for h in hist]
        assert len(set(versions)) == len(versions) and s.version not in versions, (
            f"{where}: a version is reused ({versions}, now {s.version})"
        )
        if s.skip:  # only the skips set it, and they finish the node
            assert s.name == states.FINISHED, f"{where}: skipped but not FINISHED"
        if s.name in (states.FINISHED, states.FAILED):
            assert s.archived is not None, f"{where}: done without an archived time"
        if s.name == states.RUNNING:
            assert s.archived is None and s.started is not None, f"{where}: RUNNING times"
        # no orphan waits: a live schedule (neither finished nor expired) belongs to the node's
        # current version, which is RUNNING (it polls / waits) or FAILED (a failed schedule stays
        # until a skip or retry expires it, engine/schedule.py); a FAILED one has no poll armed
        for sched in snap.schedules[nid]:
            if sched.finished or sched.expired:
                continue
            assert sched.version == s.version, (
                f"{where}: live schedule {sched.id} of an old version {sched.version} (now {s.version})"
            )
            assert s.name in (states.RUNNING, states.FAILED), f"{where}: live schedule {sched.id}"
            if s.name == states.FAILED:
                assert sched.due is None, f"{where}: a poll armed on a FAILED node"
            if root.name == states.REVOKED:
                # revoke expires the waiting polls and callbacks (docs/api.md)
                assert s.name == states.FAILED, f"{where}: live schedule {sched.id} under a REVOKED root"
        # callbacks not yet applied, once the engine is idle, only wait for a node version that
        # still runs its execute (they are applied when it starts waiting) or waits now
        for cb in snap.callbacks[nid]:
            if cb.applied != CALLBACK_PENDING:
                continue
            assert cb.version == s.version and s.name == states.RUNNING, (
                f"{where}: callback {cb.id} for version {cb.version} still pending"
            )
            assert root.name != states.REVOKED, f"{where}: callback {cb.id} pending under a REVOKED root"
    # a root's state agrees with its children
    if root.name == states.FINISHED:
        bad = {n: s.name for n, s in snap.nodes.items() if s.name != states.FINISHED}
        assert not bad, f"run {run.root} FINISHED with children {bad}"
        assert root.archived is not None
    if root.name == states.REVOKED:
        assert root.archived is not None
    for sub in run.subprocesses:
        s = snap.nodes.get(sub)
        if s is not None and s.name == states.FINISHED and not s.skip:
            inner = set(subprocess_children(run, sub))
            bad = {
                n: snap.nodes[n].name
                for n in inner
                if n in snap.nodes and snap.nodes[n].name != states.FINISHED
            }
            assert not bad, f"subprocess {sub} FINISHED with children {bad}"


def subprocess_children(run: Run, sub_id: str) -> list[str]:
    spec = run.tree["activities"][sub_id]["pipeline"]
    return [
        *spec["activities"],
        *spec["gateways"],
        spec["start_event"]["id"],
        spec["end_event"]["id"],
    ]


def check_api_view(engine: rattan.Engine, run: Run, snap: Snapshot) -> None:
    """``get_pipeline_states`` and ``list_pipelines`` agree with the store for nodes that are done
    (a done node cannot change between the snapshot and these reads, apart from a retry or skip,
    which no one issues while the invariants run)."""
    res = call_api("get_pipeline_states", engine, root_id=run.root)
    assert res.result
    children = res.data[run.root]["children"]
    for nid, s in snap.nodes.items():
        if s.name in (states.FINISHED, states.FAILED) and nid in children:
            e = children[nid]
            if e["version"] == s.version:
                assert (e["state"], e["retry"], e["skip"]) == (s.name, s.retry, s.skip), (nid, e, s)
    if run.root in children:
        raise AssertionError(f"the root {run.root} is listed among its own children")


# -- finishing ------------------------------------------------------------------------------------
def drive_to_end(engine: rattan.Engine, runs: list[Run], timeout: float = 30.0) -> dict[str, str]:
    """Repair every run until it is FINISHED or REVOKED: resume what is paused, retry (or skip)
    what failed, answer waiting callbacks. Returns the root states at the end."""
    deadline = time.monotonic() + timeout
    left = {r.root: r for r in runs}
    while left and time.monotonic() < deadline:
        engine.wait_idle(5)
        for root_id, run in list(left.items()):
            snap = snapshot(engine, root_id)
            if snap.root is None or snap.root.name in DONE:
                del left[root_id]
                continue
            if snap.root.name == states.SUSPENDED:
                call_api("resume_pipeline", engine, pipeline_id=root_id)
            for nid, s in snap.nodes.items():
                repair(engine, run, nid, s, snap)
        time.sleep(0.01)
    engine.wait_idle(5)
    ends = {r.root: engine.get_state(r.root).name for r in runs}
    for name in ends.values():
        TALLY.ends[name] = TALLY.ends.get(name, 0) + 1
    return ends


def repair(engine: rattan.Engine, run: Run, nid: str, s: Any, snap: Snapshot) -> None:
    if s.name == states.SUSPENDED:
        if nid in run.subprocesses:
            call_api("resume_pipeline", engine, pipeline_id=nid)
        else:
            call_api("resume_node_appoint", engine, node_id=nid)
    elif s.name == states.FAILED:
        if nid in run.subprocesses:
            call_api("retry_subprocess", engine, node_id=nid)
        elif run.gateways.get(nid) == "ExclusiveGateway":
            call_api("skip_exclusive_gateway", engine, node_id=nid, flow_id=run.flows[nid][0])
        elif run.gateways.get(nid) == "ConditionalParallelGateway":
            flows, conv = run.flows[nid], run.converge[nid]
            call_api(
                "skip_conditional_parallel_gateway",
                engine,
                node_id=nid,
                flow_ids=flows,
                converge_gateway_id=conv,
            )
        else:
            res = call_api("retry_node", engine, node_id=nid)
            if not res.result:
                call_api("skip_node", engine, node_id=nid)
    elif s.name == states.RUNNING:
        live = [x for x in snap.schedules.get(nid, []) if not (x.finished or x.expired)]
        if any(x.version == s.version and x.type != ScheduleType.POLL for x in live):
            call_api("callback", engine, node_id=nid, version=s.version, data={"ok": True})


# -- reads of a run that is done ----------------------------------------------------------------------
NODE_READS = (
    "get_execution_data_inputs",
    "get_execution_data_outputs",
    "get_node_histories",
    "get_node_short_histories",
    "get_node_execution_time",
    "get_node_debug_info",
    "get_children_states",
)


def check_reads(engine: rattan.Engine, run: Run) -> None:
    """Every read of ``rattan.api`` succeeds on the ids of a run that is FINISHED or REVOKED
    (``get_execution_data`` and ``get_data`` may say NotFoundError: a node with no data)."""
    root = run.root
    for name in ("get_pipeline_debug_info", "get_pipeline_execution_time"):
        assert call_api(name, engine, pipeline_id=root).result, (name, root)
    waited = call_api("wait_pipeline", engine, pipeline_id=root, timeout=0)
    assert waited.result and waited.data["state"] in DONE and not waited.data["timed_out"], waited
    assert call_api("get_pipeline_states", engine, root_id=root, flat_children=False, detail=True).result
    for nid in run.nodes:
        if engine.get_state_or_none(nid) is None:
            continue  # never reached
        for name in NODE_READS:
            res = call_api(name, engine, node_id=nid)
            assert res.result, (name, nid, res)
        hist = call_api("get_node_histories", engine, node_id=nid).data
        assert len(hist) == len(engine.get_histories(nid))
        for name in ("get_execution_data", "get_data"):
            res = call_api(name, engine, node_id=nid)
            assert res.result or isinstance(res.exc, NotFoundError), (name, nid, res)
    for nid in run.activities:
        if nid in run.tree["activities"]:  # a node of the root pipeline: no subprocess stack
            res = call_api("preview_node_inputs", engine, pipeline=run.tree_copy(), node_id=nid)
            assert res.result, (nid, res)
