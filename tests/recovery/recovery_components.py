"""Components and pipelines shared by the crash-recovery tests and their child process.

Both the test (parent) process and ``crashy_worker.py`` (child) import this module; the components
register into the module's own ``REG`` so nothing leaks into ``rattan.registry``.

Every ``execute`` / ``schedule`` call appends journal lines (``os.write`` + ``os.fsync``, so a line
survives SIGKILL) to the file named by the environment variable ``RATTAN_RECOVERY_JOURNAL``:

    <node_id> <version> <kind> <pid> <time>

``kind`` is ``execute-begin`` when the call starts and ``execute`` just before it returns (likewise
``schedule-begin`` / ``schedule``), plus ``submitted`` lines (node_id = root id, version ``-``)
written by the worker after ``run_pipeline`` returned. Without the variable nothing is written
(reference runs).
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
from rattan.testing.journal import append

JOURNAL_ENV = "RATTAN_RECOVERY_JOURNAL"
HOLD_ENV = "RATTAN_RECOVERY_HOLD"  # set (by ``crashy_worker.py --hold``): honour ``hold`` inputs
HOLD_SECONDS = 60.0
MAX_SLEEP = 0.020  # seconds; widens the crash windows inside execute/schedule

REG = rattan.Registry("recovery-tests")


# -- journal ---------------------------------------------------------------------------------------
def journal(node_id: str, version: str, kind: str) -> None:
    """Append one durable line to the journal (no-op without ``RATTAN_RECOVERY_JOURNAL``)."""
    append(JOURNAL_ENV, f"{node_id} {version} {kind} {os.getpid()} {time.time():.6f}\n")


@dataclass(frozen=True, slots=True)
class Entry:
    node_id: str
    version: str
    kind: str
    pid: int
    time: float


def read_journal(path: str | os.PathLike[str]) -> list[Entry]:
    """Parse the journal; a torn last line (a kill inside ``os.write``) is ignored."""
    entries: list[Entry] = []
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return entries
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 5:
            continue
        try:
            entries.append(Entry(parts[0], parts[1], parts[2], int(parts[3]), float(parts[4])))
        except ValueError:
            continue
    return entries


def _nap() -> None:
    time.sleep(random.uniform(0.0, MAX_SLEEP))


def _hold(data: Any, phase: str) -> None:
    """Block (until the process is killed) where the node's ``hold`` input says, in held workers."""
    if os.environ.get(HOLD_ENV) and data.get_one_of_inputs("hold") == phase:
        time.sleep(HOLD_SECONDS)


def _compute(data: Any) -> int:
    x = int(data.get_one_of_inputs("x", 0) or 0)
    k = int(data.get_one_of_inputs("k", 0) or 0)
    return x * 3 + k


# -- services ----------------------------------------------------------------------------------
class StepService(rattan.Service):
    """``y = 3 * x + k``; idempotent, so an interrupted execute is re-run after a crash."""

    __idempotent__ = True

    def execute(self, data: Any, parent_data: Any) -> bool:
        journal(self.id, self.version, "execute-begin")
        _hold(data, "execute")
        _nap()
        data.set_outputs("y", _compute(data))
        journal(self.id, self.version, "execute")
        return True


class OnceService(StepService):
    """Same computation, NOT idempotent: an interrupted execute fails the node."""

    __idempotent__ = False


class PollService(rattan.Service):
    """Polls at interval 0; finishes on its 2nd ``schedule()`` call."""

    __idempotent__ = True
    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(0)

    def execute(self, data: Any, parent_data: Any) -> bool:
        journal(self.id, self.version, "execute-begin")
        _hold(data, "execute")
        _nap()
        data.set_outputs("y", _compute(data))
        data.set_outputs("count", 0)
        journal(self.id, self.version, "execute")
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        journal(self.id, self.version, "schedule-begin")
        count = int(data.get_one_of_outputs("count", 0) or 0) + 1
        _hold(data, f"poll{count}")
        _nap()
        data.set_outputs("count", count)
        if count >= 2:
            self.finish_schedule()
        journal(self.id, self.version, "schedule")
        return True


class OncePollService(PollService):
    """A polling component that is NOT idempotent (its ``execute`` must not run twice)."""

    __idempotent__ = False


class SlowPollService(PollService):
    """Like ``PollService`` but waits ``SLOW_POLL_INTERVAL`` seconds between polls."""

    interval = rattan.StaticIntervalGenerator(1.5)  # == SLOW_POLL_INTERVAL


SLOW_POLL_INTERVAL = 1.5


class RecStep(rattan.Component, registry=REG):
    name = "recovery step"
    code = "rec_step"
    bound_service = StepService


class RecOnce(rattan.Component, registry=REG):
    name = "recovery once"
    code = "rec_once"
    bound_service = OnceService


class RecPoll(rattan.Component, registry=REG):
    name = "recovery poll"
    code = "rec_poll"
    bound_service = PollService


class RecOncePoll(rattan.Component, registry=REG):
    name = "recovery once poll"
    code = "rec_once_poll"
    bound_service = OncePollService


class RecSlowPoll(rattan.Component, registry=REG):
    name = "recovery slow poll"
    code = "rec_slow_poll"
    bound_service = SlowPollService


IDEMPOTENT_CODES = frozenset({"rec_step", "rec_poll", "rec_slow_poll"})
POLL_CODES = frozenset({"rec_poll", "rec_slow_poll", "rec_once_poll"})


# -- pipelines ---------------------------------------------------------------------------------
@dataclass
class Pipe:
    """A built tree plus what the checks need to know about it."""

    root_id: str
    kind: str
    tree: dict[str, Any]
    codes: dict[str, str] = field(default_factory=dict)  # activity id -> component code (all levels)


def _act(
    pid: str, name: str, code: str, x: Any, k: int, codes: dict[str, str], hold: str | None = None
) -> ServiceActivity:
    act = ServiceActivity(component_code=code, id=f"{pid}{name}", name=name)
    act.component.inputs.x = (
        Var(type=Var.SPLICE, value=x) if isinstance(x, str) else Var(type=Var.PLAIN, value=x)
    )
    act.component.inputs.k = Var(type=Var.PLAIN, value=k)
    if hold is not None:
        act.component.inputs.hold = Var(type=Var.PLAIN, value=hold)
    codes[act.id] = code
    return act


def _out(data: Data, key: str, act: ServiceActivity) -> None:
    data.inputs[key] = NodeOutput(type=Var.SPLICE, source_act=act.id, source_key="y")


def chain(pid: str, seed: int, code: str = "rec_step", length: int = 4, hold: str | None = None) -> Pipe:
    """A chain of ``length`` activities; the second one runs ``code`` (and carries ``hold``)."""
    codes: dict[str, str] = {}
    data = Data()
    start = EmptyStartEvent(id=f"{pid}s")
    cur: Any = start
    prev: ServiceActivity | None = None
    for i in range(length):
        x = seed if prev is None else f"${{v{i - 1}}}"
        act = _act(pid, f"a{i}", code if i == 1 else "rec_step", x, i, codes, hold if i == 1 else None)
        _out(data, f"${{v{i}}}", act)
        cur = cur.extend(act)
        prev = act
    cur.extend(EmptyEndEvent(id=f"{pid}e"))
    return Pipe(pid, "chain" if code == "rec_step" else "once", build_tree(start, id=pid, data=data), codes)


def parallel(pid: str, seed: int) -> Pipe:
    codes: dict[str, str] = {}
    data = Data()
    start = EmptyStartEvent(id=f"{pid}s")
    head = _act(pid, "h", "rec_step", seed, 1, codes)
    _out(data, "${vh}", head)
    pg = ParallelGateway(id=f"{pid}pg")
    b1 = _act(pid, "b1", "rec_step", "${vh}", 2, codes)
    b1b = _act(pid, "b1b", "rec_step", "${vb1}", 3, codes)
    _out(data, "${vb1}", b1)
    _out(data, "${vb1b}", b1b)
    b2 = _act(pid, "b2", "rec_step", "${vh}", 4, codes)
    _out(data, "${vb2}", b2)
    b3 = _act(pid, "b3", "rec_poll", "${vh}", 5, codes)
    _out(data, "${vb3}", b3)
    cg = ConvergeGateway(id=f"{pid}cg")
    tail = _act(pid, "t", "rec_step", "${vb1b}", 6, codes)
    end = EmptyEndEvent(id=f"{pid}e")
    b1.extend(b1b)
    start.extend(head).extend(pg).connect(b1, b2, b3).to(pg).converge(cg).extend(tail).extend(end)
    return Pipe(pid, "parallel", build_tree(start, id=pid, data=data), codes)


def exclusive(pid: str, seed: int) -> Pipe:
    codes: dict[str, str] = {}
    data = Data()
    start = EmptyStartEvent(id=f"{pid}s")
    head = _act(pid, "h", "rec_step", seed, 0, codes)
    _out(data, "${vh}", head)
    eg = ExclusiveGateway(id=f"{pid}eg", conditions={0: "${vh} < 92", 1: "${vh} >= 92"})
    low = _act(pid, "lo", "rec_step", "${vh}", 7, codes)
    high = _act(pid, "hi", "rec_step", "${vh}", 8, codes)
    cg = ConvergeGateway(id=f"{pid}cg")
    tail = _act(pid, "t", "rec_step", 1, 9, codes)
    end = EmptyEndEvent(id=f"{pid}e")
    start.extend(head).extend(eg).connect(low, high).to(eg).converge(cg).extend(tail).extend(end)
    return Pipe(pid, "exclusive", build_tree(start, id=pid, data=data), codes)


def subprocess_pipe(pid: str, seed: int) -> Pipe:
    codes: dict[str, str] = {}
    data = Data()
    start = EmptyStartEvent(id=f"{pid}s")
    head = _act(pid, "h", "rec_step", seed, 1, codes)
    _out(data, "${vh}", head)
    # the nested pipeline: its own context, fed by a param from the parent's context
    sub_data = Data()
    sub_data.inputs["${sx}"] = Var(type=Var.PLAIN, value=0)
    s_start = EmptyStartEvent(id=f"{pid}ss")
    s1 = _act(pid, "s1", "rec_step", "${sx}", 2, codes)
    _out(sub_data, "${vs1}", s1)
    s2 = _act(pid, "s2", "rec_poll", "${vs1}", 3, codes)
    s3 = _act(pid, "s3", "rec_step", "${vs1}", 4, codes)
    s_start.extend(s1).extend(s2).extend(s3).extend(EmptyEndEvent(id=f"{pid}se"))
    sub = SubProcess(
        start=s_start,
        data=sub_data,
        params=Params({"${sx}": Var(type=Var.SPLICE, value="${vh}")}),
        id=f"{pid}sp",
    )
    tail = _act(pid, "t", "rec_step", "${vh}", 5, codes)
    start.extend(head).extend(sub).extend(tail).extend(EmptyEndEvent(id=f"{pid}e"))
    return Pipe(pid, "subprocess", build_tree(start, id=pid, data=data), codes)


def poll_pipe(pid: str, seed: int, code: str = "rec_poll", hold: str | None = None) -> Pipe:
    codes: dict[str, str] = {}
    data = Data()
    start = EmptyStartEvent(id=f"{pid}s")
    p = _act(pid, "p", code, seed, 1, codes, hold)
    _out(data, "${vp}", p)
    t = _act(pid, "t", "rec_step", "${vp}", 2, codes)
    start.extend(p).extend(t).extend(EmptyEndEvent(id=f"{pid}e"))
    return Pipe(pid, "poll", build_tree(start, id=pid, data=data), codes)


def build_set(tag: str, copies: int = 8) -> list[Pipe]:
    """The mixed pipeline set of the random-kill tests; ids are deterministic for ``tag``."""
    pipes: list[Pipe] = []
    for c in range(copies):
        base = f"{tag}{c}"
        pipes.append(chain(f"{base}c", 10 + c))
        pipes.append(parallel(f"{base}p", 20 + c))
        pipes.append(exclusive(f"{base}x", 30 + c))
        pipes.append(subprocess_pipe(f"{base}s", 40 + c))
        pipes.append(poll_pipe(f"{base}q", 50 + c))
        pipes.append(chain(f"{base}o", 60 + c, code="rec_once"))
    return pipes


def build_named(tag: str, which: str) -> list[Pipe]:
    """Pipeline sets by name, for the worker's command line."""
    if which == "mixed":
        return build_set(tag)
    if which == "slowpoll":
        return [poll_pipe(f"{tag}w", 70, code="rec_slow_poll")]
    if which == "held":
        return [
            chain(f"{tag}i", 90, hold="execute"),
            chain(f"{tag}n", 91, code="rec_once", hold="execute"),
            poll_pipe(f"{tag}q", 92, hold="poll2"),
        ]
    if which == "heldpoll":
        return [poll_pipe(f"{tag}m", 93, code="rec_once_poll", hold="poll1")]
    if which == "chains":
        return [chain(f"{tag}{i}", 80 + i) for i in range(3)]
    raise ValueError(f"unknown pipeline set {which!r}")


def all_activity_ids(pipes: Iterable[Pipe]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in pipes:
        out.update(p.codes)
    return out


def settled(engine: rattan.Engine, pipe: Pipe) -> bool:
    """FINISHED, or parked on a FAILED node with nothing RUNNING (an operator must decide)."""
    states = engine.get_pipeline_states(pipe.root_id)
    if not states:
        return False
    top = states[pipe.root_id]
    if top["state"] == "FINISHED":
        return True
    children = top["children"].values()
    names = [c["state"] for c in children]
    return "FAILED" in names and "RUNNING" not in names
