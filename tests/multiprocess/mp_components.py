"""Components, pipelines and the side-effect journal of the multi-process tests.

The test process and every child (``mp_worker.py``) import this module; the components register
into the module's own ``REG`` so nothing leaks into ``rattan.registry``.

Each service call appends two journal lines (``os.write`` on an ``O_APPEND`` descriptor, then
``os.fsync``: a line survives SIGKILL) to the file named by ``RATTAN_MP_JOURNAL``, one before and
one after its side effect::

    <pid> <node_id> <version> <kind> <step> <phase> <time>

``kind`` is ``execute`` (step 0), ``poll`` (step = the poll's number, 1, 2, ...: one more than the
polls already recorded in the node's outputs) or ``callback`` (step = the ``seq`` of the callback's
data); ``phase`` is ``begin`` or ``end``. The child writes ``submitted`` lines (node = root id) once
``run_pipeline`` returned and ``cbsent`` lines (step = seq) once ``callback()`` returned, phase ``-``.
Without the variable nothing is written (the clean reference run).

A repeated ``(node, version, kind, step)`` therefore means the same piece of user code ran again:
after a recorded poll the next one has the next number, a recorded callback is never handed out
again, and a recorded execute is never run again.

Two shapes are driven by durable timers (rows of the ``timers`` table, owned by the process that
armed them and taken over by another when it dies):

* ``timeout_pipe``: the middle activity (``mp_wait``, idempotent) waits for a callback nobody
  sends; its node timeout (``timeout_config``, ``forced_fail_and_skip``, ``TIMEOUT_SECONDS``)
  force-fails and skips it, and the next activity (non-idempotent) runs. A timeout that fired
  twice with effect would show in the store as a second ``node_timeout`` event, forced fail or skip
  and a second history record (the test reads both), and in the journal as the next activity's
  execute run twice. ``TIMEOUT_SECONDS`` is far above a takeover (the wait's execute is recorded
  before it fires, so its outputs are those of a clean run) and far below the test's length;
* ``timer_event_pipe``: the middle activity (``mp_timer_wait``, idempotent) waits for one callback
  that only its timer boundary event sends: a cycle (``R/PT{TIMER_PERIOD}S``, re-armed durably by
  each firing until the node leaves RUNNING) whose action ``mp_timer_callback`` (``TimerCallback``)
  calls ``engine.callback(node, V, callback_data(1), idempotency_key=f"{V}:1")`` and journals a
  ``tfired`` line (step 1 accepted, 0 refused, phase ``-``) once the call returned. The action runs
  at most once per firing (after the firing's commit: a kill in between loses it, and the next
  repetition sends the callback again). The n-th ``node_timer_event`` of the node cannot be
  logged before ``started + n * TIMER_PERIOD``: a repetition fired twice (by two processes) logs
  one event too early.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import rattan
from rattan.builder import (
    ConvergeGateway,
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    NodeOutput,
    ParallelGateway,
    Params,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)
from rattan.engine.timers import BaseAction
from rattan.errors import ConflictError, InvalidOperationError, NotFoundError
from rattan.testing.journal import append

JOURNAL_ENV = "RATTAN_MP_JOURNAL"
MAX_NAP = 0.040  # seconds of random sleep inside user code: widens the windows a kill can hit
POLL_INTERVAL = 0.05  # seconds between polls
SLOTS = 4  # child processes of the big test; pipeline i belongs to slot i % SLOTS
TIMEOUT_SECONDS = 2  # node timeout of timeout_pipe's waiting activity (an int: timeout_config's rule)
TIMEOUT_ACTION = "forced_fail_and_skip"
TIMER_PERIOD = 0.25  # seconds between two firings of timer_event_pipe's timer cycle
TIMER_ACTION = "mp_timer_callback"

REG = rattan.Registry("multiprocess-tests")


# -- journal -----------------------------------------------------------------------------------
def journal(node_id: str, version: str, kind: str, step: int, phase: str) -> None:
    """Append one durable line (no-op without ``RATTAN_MP_JOURNAL``)."""
    append(JOURNAL_ENV, f"{os.getpid()} {node_id} {version} {kind} {step} {phase} {time.time():.6f}\n")


@dataclass(frozen=True, slots=True)
class Entry:
    pid: int
    node_id: str
    version: str
    kind: str
    step: int
    phase: str
    time: float

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.node_id, self.version, self.kind, self.step)


def parse(line: str) -> Entry | None:
    parts = line.split()
    if len(parts) != 7:
        return None
    try:
        return Entry(int(parts[0]), parts[1], parts[2], parts[3], int(parts[4]), parts[5], float(parts[6]))
    except ValueError:
        return None


def read_journal(path: str | os.PathLike[str]) -> list[Entry]:
    """Parse the journal; a torn line (a kill inside ``os.write``) is ignored."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except FileNotFoundError:
        return []
    return [e for e in map(parse, text.splitlines()) if e is not None]


# -- services ----------------------------------------------------------------------------------
def _nap(data: Any) -> None:
    slow = float(data.get_one_of_inputs("slow", 0) or 0)
    time.sleep(slow if slow else random.uniform(0.0, MAX_NAP))


def _compute(data: Any) -> int:
    x = int(data.get_one_of_inputs("x", 0) or 0)
    k = int(data.get_one_of_inputs("k", 0) or 0)
    return x * 3 + k


def callback_data(seq: int) -> dict[str, int]:
    """What the callback number ``seq`` of any node carries (the same in every run)."""
    return {"seq": seq, "v": 10 * seq}


class StepService(rattan.Service):
    """``y = 3 * x + k``; idempotent: an interrupted execute is run again by the process that takes
    the node over."""

    __idempotent__ = True

    def execute(self, data: Any, parent_data: Any) -> bool:
        journal(self.id, self.version, "execute", 0, "begin")
        _nap(data)
        data.set_outputs("y", _compute(data))
        journal(self.id, self.version, "execute", 0, "end")
        return True


class OnceService(StepService):
    """The same, NOT idempotent: an interrupted execute fails the node ``execution interrupted``."""

    __idempotent__ = False


class PollService(rattan.Service):
    """Executes like ``StepService``, then polls every ``POLL_INTERVAL`` s; finishes on poll number
    ``polls`` (input, default 3)."""

    __idempotent__ = True
    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(POLL_INTERVAL)

    def execute(self, data: Any, parent_data: Any) -> bool:
        journal(self.id, self.version, "execute", 0, "begin")
        _nap(data)
        data.set_outputs("y", _compute(data))
        data.set_outputs("count", 0)
        journal(self.id, self.version, "execute", 0, "end")
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        count = int(data.get_one_of_outputs("count", 0) or 0) + 1
        journal(self.id, self.version, "poll", count, "begin")
        time.sleep(random.uniform(0.0, MAX_NAP))
        data.set_outputs("count", count)
        data.set_outputs("y", int(data.get_one_of_outputs("y", 0)) + count)
        if count >= int(data.get_one_of_inputs("polls", 3) or 3):
            self.finish_schedule()
        journal(self.id, self.version, "poll", count, "end")
        return True


class OncePollService(PollService):
    """A polling service whose ``execute`` is NOT idempotent (its polls are repeated after a crash
    like any poll)."""

    __idempotent__ = False


class MultiCallbackService(rattan.Service):
    """Executes like ``StepService``, then waits for ``n`` callbacks (input, default 2), applied one
    at a time: each appends its ``seq`` to the output ``got`` and adds its ``v`` to ``y``."""

    __idempotent__ = False
    __need_schedule__ = True
    __multi_callback_enabled__ = True

    def execute(self, data: Any, parent_data: Any) -> bool:
        journal(self.id, self.version, "execute", 0, "begin")
        _nap(data)
        data.set_outputs("y", _compute(data))
        data.set_outputs("got", [])
        journal(self.id, self.version, "execute", 0, "end")
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        seq = int(callback_data["seq"])
        journal(self.id, self.version, "callback", seq, "begin")
        time.sleep(random.uniform(0.0, MAX_NAP))
        got = [*list(data.get_one_of_outputs("got", []) or []), seq]
        data.set_outputs("got", got)
        data.set_outputs("y", int(data.get_one_of_outputs("y", 0)) + int(callback_data["v"]))
        if len(got) >= int(data.get_one_of_inputs("n", 2) or 2):
            self.finish_schedule()
        journal(self.id, self.version, "callback", seq, "end")
        return True


class IdemMultiCallbackService(MultiCallbackService):
    __idempotent__ = True


class SingleCallbackService(MultiCallbackService):
    """One callback completes the node (``ScheduleType.CALLBACK``)."""

    __multi_callback_enabled__ = False


class WaitService(SingleCallbackService):
    """Idempotent; waits for one callback. ``timeout_pipe`` sends none (its node timeout ends the
    wait); ``timer_event_pipe``'s timer event sends it."""

    __idempotent__ = True


class TimerCallback(BaseAction):
    """The timer event action of ``timer_event_pipe``: sends the waiting node's callback."""

    class Meta:
        action_name = TIMER_ACTION

    def do(self, data: Any, parent_data: Any, *args: Any, **kwargs: Any) -> bool:
        try:
            self.engine.callback(
                self.node_id, self.version, callback_data(1), idempotency_key=f"{self.version}:1"
            )
        except (NotFoundError, InvalidOperationError, ConflictError):
            journal(self.node_id, self.version, "tfired", 0, "-")  # the node is not waiting any more
            return False
        journal(self.node_id, self.version, "tfired", 1, "-")
        return True


class MpStep(rattan.Component, registry=REG):
    name = "mp step"
    code = "mp_step"
    bound_service = StepService


class MpOnce(rattan.Component, registry=REG):
    name = "mp once"
    code = "mp_once"
    bound_service = OnceService


class MpPoll(rattan.Component, registry=REG):
    name = "mp poll"
    code = "mp_poll"
    bound_service = PollService


class MpOncePoll(rattan.Component, registry=REG):
    name = "mp once poll"
    code = "mp_once_poll"
    bound_service = OncePollService


class MpCallback(rattan.Component, registry=REG):
    name = "mp callback"
    code = "mp_callback"
    bound_service = MultiCallbackService


class MpIdemCallback(rattan.Component, registry=REG):
    name = "mp idempotent callback"
    code = "mp_idem_callback"
    bound_service = IdemMultiCallbackService


class MpSingleCallback(rattan.Component, registry=REG):
    name = "mp single callback"
    code = "mp_single_callback"
    bound_service = SingleCallbackService


class MpWait(rattan.Component, registry=REG):
    name = "mp wait"
    code = "mp_wait"
    bound_service = WaitService


class MpTimerWait(rattan.Component, registry=REG):
    name = "mp timer wait"
    code = "mp_timer_wait"
    bound_service = WaitService


IDEMPOTENT_CODES = frozenset({"mp_step", "mp_poll", "mp_idem_callback", "mp_wait", "mp_timer_wait"})
POLL_CODES = frozenset({"mp_poll", "mp_once_poll"})
CALLBACK_CODES = frozenset({"mp_callback", "mp_idem_callback", "mp_single_callback"})


# -- pipelines ---------------------------------------------------------------------------------
@dataclass
class Pipe:
    """A built tree plus what the checks need to know about it."""

    root_id: str
    index: int
    tree: dict[str, Any]
    codes: dict[str, str] = field(default_factory=dict)  # activity id -> component code (all levels)
    polls: dict[str, int] = field(default_factory=dict)  # polling activity -> polls to finish
    callbacks: dict[str, int] = field(default_factory=dict)  # callback activity -> callbacks to finish
    subprocesses: list[str] = field(default_factory=list)
    timeouts: list[str] = field(default_factory=list)  # activities ended by their node timeout
    timer_callbacks: dict[str, int] = field(default_factory=dict)  # activity -> callbacks its timer sends

    @property
    def slot(self) -> int:
        return self.index % SLOTS


class _Builder:
    """Activities of one pipeline, with the bookkeeping ``Pipe`` needs."""

    def __init__(self, pid: str, index: int) -> None:
        self.pid = pid
        self.pipe = Pipe(pid, index, {})

    def act(self, name: str, code: str, x: Any, k: int, **inputs: Any) -> ServiceActivity:
        act = ServiceActivity(component_code=code, id=f"{self.pid}{name}", name=name)
        act.component.inputs.x = (
            Var(type=Var.SPLICE, value=x) if isinstance(x, str) else Var(type=Var.PLAIN, value=x)
        )
        act.component.inputs.k = Var(type=Var.PLAIN, value=k)
        for key, value in inputs.items():
            setattr(act.component.inputs, key, Var(type=Var.PLAIN, value=value))
        self.pipe.codes[act.id] = code
        if code in POLL_CODES:
            self.pipe.polls[act.id] = int(inputs.get("polls", 3))
        if code in CALLBACK_CODES:
            self.pipe.callbacks[act.id] = 1 if code == "mp_single_callback" else int(inputs.get("n", 2))
        return act

    def finish(self, start: EmptyStartEvent, data: Data) -> Pipe:
        self.pipe.tree = build_tree(start, id=self.pid, data=data)
        return self.pipe


def _out(data: Data, key: str, act: ServiceActivity) -> None:
    data.inputs[key] = NodeOutput(type=Var.SPLICE, source_act=act.id, source_key="y")


def poll_pipe(pid: str, index: int, seed: int) -> Pipe:
    """step -> poll (3 polls) -> once."""
    b, data = _Builder(pid, index), Data()
    start = EmptyStartEvent(id=f"{pid}s")
    h = b.act("h", "mp_step", seed, 1)
    p = b.act("p", "mp_poll", "${vh}", 2, polls=3)
    t = b.act("t", "mp_once", "${vp}", 3)
    _out(data, "${vh}", h)
    _out(data, "${vp}", p)
    start.extend(h).extend(p).extend(t).extend(EmptyEndEvent(id=f"{pid}e"))
    return b.finish(start, data)


def callback_pipe(pid: str, index: int, seed: int) -> Pipe:
    """once -> callback activity (2 or 3 callbacks; idempotent or not) -> step."""
    b, data = _Builder(pid, index), Data()
    start = EmptyStartEvent(id=f"{pid}s")
    h = b.act("h", "mp_once", seed, 1)
    code = "mp_idem_callback" if index % 2 else "mp_callback"
    cb = b.act("cb", code, "${vh}", 2, n=2 + index % 2)
    t = b.act("t", "mp_step", "${vcb}", 3)
    _out(data, "${vh}", h)
    _out(data, "${vcb}", cb)
    start.extend(h).extend(cb).extend(t).extend(EmptyEndEvent(id=f"{pid}e"))
    return b.finish(start, data)


def subprocess_pipe(pid: str, index: int, seed: int) -> Pipe:
    """step -> subprocess [once -> non-idempotent poll (2 polls) -> callback (2)] -> step."""
    b, data = _Builder(pid, index), Data()
    start = EmptyStartEvent(id=f"{pid}s")
    h = b.act("h", "mp_step", seed, 1)
    _out(data, "${vh}", h)
    sub_data = Data()
    sub_data.inputs["${sx}"] = Var(type=Var.PLAIN, value=0)
    s_start = EmptyStartEvent(id=f"{pid}ss")
    s1 = b.act("s1", "mp_once", "${sx}", 2)
    s2 = b.act("s2", "mp_once_poll", "${vs1}", 3, polls=2)
    s3 = b.act("s3", "mp_callback", "${vs2}", 4, n=2)
    _out(sub_data, "${vs1}", s1)
    _out(sub_data, "${vs2}", s2)
    s_start.extend(s1).extend(s2).extend(s3).extend(EmptyEndEvent(id=f"{pid}se"))
    sub = SubProcess(
        start=s_start,
        data=sub_data,
        params=Params({"${sx}": Var(type=Var.SPLICE, value="${vh}")}),
        id=f"{pid}sp",
    )
    b.pipe.subprocesses.append(sub.id)
    t = b.act("t", "mp_step", "${vh}", 5)
    start.extend(h).extend(sub).extend(t).extend(EmptyEndEvent(id=f"{pid}e"))
    return b.finish(start, data)


def gateways_pipe(pid: str, index: int, seed: int) -> Pipe:
    """step -> parallel [once -> step | poll | single callback] -> exclusive on ${vh} -> step."""
    b, data = _Builder(pid, index), Data()
    start = EmptyStartEvent(id=f"{pid}s")
    h = b.act("h", "mp_step", seed, 1)
    _out(data, "${vh}", h)
    pg = ParallelGateway(id=f"{pid}pg")
    b1 = b.act("b1", "mp_once", "${vh}", 2)
    b1b = b.act("b1b", "mp_step", "${vb1}", 3)
    _out(data, "${vb1}", b1)
    _out(data, "${vb1b}", b1b)
    b2 = b.act("b2", "mp_poll", "${vh}", 4, polls=2)
    b3 = b.act("b3", "mp_single_callback", "${vh}", 5)
    cg = ConvergeGateway(id=f"{pid}cg")
    eg = ExclusiveGateway(id=f"{pid}eg", conditions={0: "${vh} < 330", 1: "${vh} >= 330"})
    lo = b.act("lo", "mp_once", "${vb1b}", 6)
    hi = b.act("hi", "mp_step", "${vb1b}", 7)
    cg2 = ConvergeGateway(id=f"{pid}cg2")
    t = b.act("t", "mp_step", "${vb1b}", 8)
    end = EmptyEndEvent(id=f"{pid}e")
    b1.extend(b1b)
    start.extend(h).extend(pg).connect(b1, b2, b3).to(pg).converge(cg).extend(eg).connect(lo, hi).to(
        eg
    ).converge(cg2).extend(t).extend(end)
    return b.finish(start, data)


def _around_a_wait(
    pid: str, index: int, seed: int, first: str, wait: str, last: str, last_reads_wait: bool
) -> tuple[Pipe, str]:
    """start -> ``first`` -> ``wait`` -> ``last`` -> end: ``wait`` and ``last`` read ``first``'s
    output (``last`` reads ``wait``'s instead when ``last_reads_wait``). Returns the pipe and the
    waiting activity's id, for the caller to give it its timer."""
    b, data = _Builder(pid, index), Data()
    start = EmptyStartEvent(id=f"{pid}s")
    h = b.act("h", first, seed, 1)
    w = b.act("w", wait, "${vh}", 2)
    t = b.act("t", last, "${vw}" if last_reads_wait else "${vh}", 3)
    _out(data, "${vh}", h)
    if last_reads_wait:
        _out(data, "${vw}", w)
    start.extend(h).extend(w).extend(t).extend(EmptyEndEvent(id=f"{pid}e"))
    return b.finish(start, data), w.id


def timeout_pipe(pid: str, index: int, seed: int) -> Pipe:
    """step -> wait for a callback never sent, ended by its node timeout (forced fail and skip) -> once."""
    pipe, wait = _around_a_wait(pid, index, seed, "mp_step", "mp_wait", "mp_once", last_reads_wait=False)
    pipe.tree["activities"][wait]["timeout_config"] = {
        "enable": True, "action": TIMEOUT_ACTION, "seconds": TIMEOUT_SECONDS,
    }  # fmt: skip
    pipe.timeouts.append(wait)
    return pipe


def timer_event_pipe(pid: str, index: int, seed: int) -> Pipe:
    """once -> wait for the callback its timer event cycle sends -> step."""
    pipe, wait = _around_a_wait(pid, index, seed, "mp_once", "mp_timer_wait", "mp_step", last_reads_wait=True)
    event = {
        "enable": True,
        "action": TIMER_ACTION,
        "timer_type": "time_cycle",
        "defined": f"R/PT{TIMER_PERIOD}S",
    }
    pipe.tree["activities"][wait]["events"] = {"timer_events": [event]}
    pipe.timer_callbacks[wait] = 1
    return pipe


def chain_pipe(pid: str, index: int, seed: int) -> Pipe:
    """once -> step -> once -> step."""
    b, data = _Builder(pid, index), Data()
    start = EmptyStartEvent(id=f"{pid}s")
    cur: Any = start
    x: Any = seed
    for i, code in enumerate(("mp_once", "mp_step", "mp_once", "mp_step")):
        act = b.act(f"a{i}", code, x, i)
        _out(data, f"${{v{i}}}", act)
        x = f"${{v{i}}}"
        cur = cur.extend(act)
    cur.extend(EmptyEndEvent(id=f"{pid}e"))
    return b.finish(start, data)


SHAPES = {
    "q": poll_pipe,
    "c": callback_pipe,
    "s": subprocess_pipe,
    "g": gateways_pipe,
    "x": chain_pipe,
    "o": timeout_pipe,
    "v": timer_event_pipe,
}


def mixed_set(tag: str, count: int = 210) -> list[Pipe]:
    """``count`` pipelines of the seven shapes in turn; ids are deterministic for ``tag``."""
    letters = list(SHAPES)
    pipes = []
    for i in range(count):
        letter = letters[i % len(letters)]
        pipes.append(SHAPES[letter](f"{tag}{i:03d}{letter}", i, 10 + i))
    return pipes


def slow_pipe(pid: str, index: int, seed: int) -> Pipe:
    """A slow (0.3 s) non-idempotent execute, then a non-idempotent poll (0.3 s execute, 2 polls)."""
    b, data = _Builder(pid, index), Data()
    start = EmptyStartEvent(id=f"{pid}s")
    a = b.act("a", "mp_once", seed, 1, slow=0.3)
    p = b.act("p", "mp_once_poll", "${va}", 2, slow=0.3, polls=2)
    _out(data, "${va}", a)
    start.extend(a).extend(p).extend(EmptyEndEvent(id=f"{pid}e"))
    return b.finish(start, data)


def callback_only_pipe(pid: str, index: int, seed: int) -> Pipe:
    b, data = _Builder(pid, index), Data()
    start = EmptyStartEvent(id=f"{pid}s")
    cb = b.act("cb", "mp_callback", seed, 1, n=1)
    _out(data, "${vcb}", cb)
    start.extend(cb).extend(EmptyEndEvent(id=f"{pid}e"))
    return b.finish(start, data)


def build_named(tag: str, which: str) -> list[Pipe]:
    """Pipeline sets by name, for the child's command line."""
    if which == "mixed":
        return mixed_set(tag)
    if which == "slow":
        return [slow_pipe(f"{tag}{i:03d}", i, 10 + i) for i in range(25)]
    if which == "chains":
        return [chain_pipe(f"{tag}{i:03d}", i, 10 + i) for i in range(6)]
    if which == "callback":
        return [callback_only_pipe(f"{tag}000", 0, 5)]
    raise ValueError(f"unknown pipeline set {which!r}")


def all_activities(pipes: Iterable[Pipe]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in pipes:
        out.update(p.codes)
    return out


# -- callbacks ---------------------------------------------------------------------------------
class CallbackSender:
    """Sends every callback the watched activities wait for (see the module docstring)."""

    def __init__(self, engine: rattan.Engine, pipes: list[Pipe]) -> None:
        self.engine = engine
        self.watch: dict[str, int] = {}  # callback activity -> callbacks it takes
        for pipe in pipes:
            self.watch.update(pipe.callbacks)
        self.sent: set[tuple[str, str]] = set()  # (node, version) whose callbacks were all sent

    def run_once(self) -> None:
        if not self.watch:
            return
        names = self.engine.batch_get_state_name(self.watch)
        for node_id, name in names.items():
            if name == "FINISHED":
                del self.watch[node_id]  # no loops in these trees: it never waits again
            elif name == "RUNNING":
                self._send(node_id)

    def _send(self, node_id: str) -> None:
        state = self.engine.get_state_or_none(node_id)
        if state is None or state.name != "RUNNING" or (node_id, state.version) in self.sent:
            return
        version = state.version
        for seq in range(1, self.watch[node_id] + 1):
            try:
                self.engine.callback(node_id, version, callback_data(seq), idempotency_key=f"{version}:{seq}")
            except (NotFoundError, InvalidOperationError, ConflictError):
                # not this node's version any more, or not waiting for callbacks: look again later
                # (one sent while execute runs is kept until the node waits)
                return
            journal(node_id, version, "cbsent", seq, "-")
        self.sent.add((node_id, version))
