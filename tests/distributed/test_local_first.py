"""The local-first dispatcher of ``rattan worker`` (``runtime/celery/local.py``) and the engine's
per-message decisions behind it (``engine/worker.py``, ``engine/handoff.py``), in this process.

The broker lane is a stand-in (``FakeBroker``): what is published waits in a list until the test
delivers it, decoded from its JSON as a broker would, to an engine's handler, in the test's thread,
as a Celery task would be run. The local lane is the real one (threads in this process). The
engines run on one SQLite file; the components are those of the distributed tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import rattan
from rattan import api
from rattan.builder import (
    ConvergeGateway,
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    ParallelGateway,
    ServiceActivity,
    Var,
    build_tree,
)
from rattan.engine import worker as worker_module
from rattan.model.messages import Advance, Callback, Execute, Message, Poll, decode, encode
from rattan.runtime.celery import LocalFirstDispatcher
from rattan.runtime.clock import SystemClock
from rattan.runtime.interface import INTERFACE_VERSION, Clock
from rattan.testing.clock import FakeClock

pytestmark = [pytest.mark.timeout(60)]

WAIT = 20.0


class FakeBroker:
    """The broker lane's side of ``CeleryDispatcher`` without a broker: ``send`` publishes to a
    list; ``deliver`` hands a published message, through its JSON, to the lane's handler."""

    interface_version = INTERFACE_VERSION
    shares_memory = False

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.prefix = "rattan"
        self.consuming = True
        self.published: list[Message] = []
        self._run: Callable[[Message], None] | None = None

    @property
    def pending(self) -> int:
        return 0

    def start(self, handle: Callable[[Message], None]) -> None:
        self._run = handle

    def send(self, msg: Message) -> bool:
        self.published.append(msg)
        return False

    def send_at(self, due: float, msg: Message) -> bool:
        return self.send(msg)

    def stop(self, timeout: float) -> None:
        self._run = None

    def wait_idle(self, timeout: float) -> bool:
        return True

    def pending_timers(self) -> list[tuple[float, Message]]:
        return []

    def info(self) -> dict[str, Any]:
        return {"published": len(self.published)}

    def deliver(self, msg: Message) -> None:
        assert self._run is not None
        self._run(decode(encode(msg)))  # a copy, as a broker delivers it


def local_first(
    backlog: int, threads: int = 2, clock: Clock | None = None, queues: list[str] | None = None
) -> tuple[LocalFirstDispatcher, FakeBroker]:
    broker = FakeBroker(clock or SystemClock())
    dispatcher = LocalFirstDispatcher(broker, threads=threads, backlog=backlog, queues=queues)  # type: ignore[arg-type]
    return dispatcher, broker


class Calls:
    """Wraps a function of ``rattan.engine.worker`` and records each call's result."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        self.results: list[Any] = []
        real = getattr(worker_module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            self.results.append(result)
            return result

        monkeypatch.setattr(worker_module, name, wrapper)


@pytest.fixture
def registry() -> rattan.Registry:
    reg = rattan.Registry("local-first-tests")
    reg.import_modules(["dist_components"])
    return reg


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'rattan.db'}"


@pytest.fixture
def engines() -> Iterator[list[rattan.Engine]]:
    opened: list[rattan.Engine] = []
    yield opened
    for engine in opened:
        engine.close(10)


def open_engine(
    engines: list[rattan.Engine], db: str, registry: rattan.Registry, backlog: int
) -> tuple[rattan.Engine, LocalFirstDispatcher, FakeBroker]:
    dispatcher, broker = local_first(backlog)
    # a sent message is looked at again only after resend_seconds: not during a test
    engine = rattan.Engine(store=db, dispatcher=dispatcher, components=registry, resend_seconds=600)
    engines.append(engine)
    return engine, dispatcher, broker


def _act(x: int, **inputs: Any) -> ServiceActivity:
    act = ServiceActivity(component_code="dist_step")
    act.component.inputs.x = Var(type=Var.PLAIN, value=x)
    act.component.inputs.k = Var(type=Var.PLAIN, value=1)
    for key, value in inputs.items():
        setattr(act.component.inputs, key, Var(type=Var.PLAIN, value=value))
    return act


def parallel(branches: int) -> tuple[dict[str, Any], list[str]]:
    start, pg, cg = EmptyStartEvent(), ParallelGateway(), ConvergeGateway()
    acts = [_act(b) for b in range(branches)]
    start.extend(pg).connect(*acts).to(pg).converge(cg).extend(EmptyEndEvent())
    return build_tree(start), [a.id for a in acts]


def single() -> tuple[dict[str, Any], str]:
    act = _act(5)
    start = EmptyStartEvent()
    start.extend(act).extend(EmptyEndEvent())
    return build_tree(start), act.id


def drain(broker: FakeBroker, engine: rattan.Engine, root: str) -> list[Message]:
    """Deliver what ``broker`` holds (and what handling it publishes) until ``root`` finishes."""
    delivered: list[Message] = []
    deadline = time.monotonic() + WAIT
    while not engine.is_finished(root):
        assert time.monotonic() < deadline, f"{root} did not finish; undelivered: {broker.published}"
        if broker.published:
            msg = broker.published.pop(0)
            delivered.append(msg)
            broker.deliver(msg)
        else:
            time.sleep(0.005)
    return delivered


def finished(engine: rattan.Engine, root: str) -> None:
    res = engine.wait_pipeline(root, timeout=WAIT)
    assert res["state"] == "FINISHED" and not res["failed_nodes"], res


# -- the dispatcher --------------------------------------------------------------------------------
def test_send_keeps_messages_here_until_the_backlog_is_full_then_publishes() -> None:
    dispatcher, broker = local_first(backlog=2, threads=1)
    release = threading.Event()
    taken = threading.Event()
    handled: list[Message] = []

    def handle(msg: Message) -> None:
        taken.set()
        release.wait(WAIT)
        handled.append(msg)

    dispatcher.start(handle)
    try:
        assert dispatcher.send(Advance(1)) is True
        assert taken.wait(WAIT)  # the one thread holds Advance(1): nothing waits in the lane
        assert [dispatcher.send(Advance(i)) for i in (2, 3, 4, 5)] == [True, True, False, False]
        assert dispatcher.pending == 2
        assert broker.published == [Advance(4), Advance(5)]
        assert (dispatcher.kept, dispatcher.published) == (3, 2)
        release.set()
        assert dispatcher.wait_idle(WAIT)
        assert handled == [Advance(1), Advance(2), Advance(3)]
        dispatcher.hand_over()  # a warm shutdown: everything goes to the other workers
        assert dispatcher.send(Advance(6)) is False
        assert broker.published[-1] == Advance(6)
    finally:
        release.set()
        dispatcher.stop(WAIT)


def test_delayed_messages_wait_here_and_go_to_the_local_lane_when_due() -> None:
    clock = FakeClock()
    dispatcher, broker = local_first(backlog=0, clock=clock)  # even with no room for send
    handled: list[Message] = []
    dispatcher.start(handled.append)
    try:
        assert dispatcher.send_at(clock.now() + 10, Advance(1)) is True
        assert dispatcher.pending_timers() == [(clock.now() + 10, Advance(1))]
        clock.advance(10)
        deadline = time.monotonic() + WAIT
        while not handled:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        assert handled == [Advance(1)] and broker.published == []
    finally:
        dispatcher.stop(WAIT)


def test_only_kinds_of_the_queues_this_process_consumes_stay_here() -> None:
    clock = FakeClock()
    # a worker started with --queues rattan,rattan.schedule: executes belong to other machines
    dispatcher, broker = local_first(backlog=10, clock=clock, queues=["rattan", "rattan.schedule"])
    handled: list[Message] = []
    dispatcher.start(handled.append)
    try:
        execute = Execute(1, "n1", "v1")
        assert dispatcher.send(execute) is False
        assert dispatcher.send_at(clock.now() + 5, execute) is False  # the broker lane's heap
        assert [dispatcher.send(m) for m in (Advance(2), Poll(3), Callback(4))] == [True, True, True]
        assert dispatcher.wait_idle(WAIT)
        assert handled == [Advance(2), Poll(3), Callback(4)]
        assert broker.published == [execute, execute]
    finally:
        dispatcher.stop(WAIT)


def test_acknowledges_is_true_only_while_handling_a_broker_delivery() -> None:
    dispatcher, broker = local_first(backlog=10)
    seen: list[tuple[Message, bool]] = []
    dispatcher.start(lambda msg: seen.append((msg, dispatcher.acknowledges())))
    try:
        dispatcher.send(Advance(1))
        assert dispatcher.wait_idle(WAIT)
        broker.deliver(Advance(2))
        assert seen == [(Advance(1), False), (Advance(2), True)]
        assert dispatcher.acknowledges() is False  # after the delivery returned
    finally:
        dispatcher.stop(WAIT)


# -- the engine's per-message decisions ----------------------------------------------------------
def test_work_kept_here_reuses_what_the_engine_has_and_notes_nothing(
    engines: list[rattan.Engine], db: str, registry: rattan.Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = Calls(monkeypatch, "load_execute")
    claims = Calls(monkeypatch, "claim_execute")
    engine, dispatcher, broker = open_engine(engines, db, registry, backlog=1000)
    tree, ids = parallel(8)
    api.run_pipeline(engine, tree)
    finished(engine, tree["id"])
    assert sorted(engine.get_execution_data_outputs(i)["y"] for i in ids) == [3 * b + 1 for b in range(8)]
    assert broker.published == [] and dispatcher.published == 0
    assert loads.results == [] and claims.results == []  # each execute ran on the inputs entered
    assert engine.core.handoffs is not None and len(engine.core.handoffs) == 0
    assert engine.wait_idle(WAIT)
    assert engine._worker._stash == {} and engine._worker._waiters == {}


def test_overflow_goes_to_the_broker_and_the_stash_does_not_keep_it(
    engines: list[rattan.Engine], db: str, registry: rattan.Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = Calls(monkeypatch, "load_execute")
    claims = Calls(monkeypatch, "claim_execute")
    engine, dispatcher, broker = open_engine(engines, db, registry, backlog=0)  # no room here
    tree, ids = parallel(6)
    api.run_pipeline(engine, tree)
    delivered = drain(broker, engine, tree["id"])
    finished(engine, tree["id"])
    assert sorted(engine.get_execution_data_outputs(i)["y"] for i in ids) == [3 * b + 1 for b in range(6)]
    executes = [m for m in delivered if isinstance(m, Execute)]
    # every branch's execute crossed the broker: a broker delivery hands the user code its round
    # reached on rather than running it in the broker's thread
    assert len(executes) == 6 and {m.owner for m in executes} == {engine.owner_id}
    assert dispatcher.kept == 0 and dispatcher.published == len(delivered)
    # what went to the broker was noted for a resend; what the engine had for it was let go
    assert engine.core.handoffs is not None and set(delivered) <= set(engine.core.handoffs._sent)
    assert engine.wait_idle(WAIT)
    assert engine._worker._stash == {} and engine._worker._waiters == {}
    # an execute of this engine's own, back from the broker: inputs read again, no claim
    assert len(loads.results) == 6 and claims.results == []


def test_a_broker_delivery_returns_once_its_work_is_committed(
    engines: list[rattan.Engine], db: str, registry: rattan.Registry
) -> None:
    engine, _dispatcher, broker = open_engine(engines, db, registry, backlog=0)
    tree, act = single()
    api.run_pipeline(engine, tree)
    (advance,) = broker.published
    broker.published.clear()
    broker.deliver(advance)
    # the round entering the activity committed before the delivery returned; the execute it
    # reached was handed on (here, with no room in the local lane, to the broker)
    assert engine.get_state(act).name == "RUNNING"
    (execute,) = broker.published
    assert isinstance(execute, Execute) and execute.node_id == act
    assert engine.get_execution_data_outputs(act) == {}


def test_a_foreign_execute_is_claimed_once_and_runs_once(
    engines: list[rattan.Engine], db: str, registry: rattan.Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    claims = Calls(monkeypatch, "claim_execute")
    runs = Calls(monkeypatch, "run_execute")
    a, _da, broker_a = open_engine(engines, db, registry, backlog=0)
    b, _db, broker_b = open_engine(engines, db, registry, backlog=0)
    tree, act = single()
    api.run_pipeline(a, tree)
    broker_a.deliver(broker_a.published.pop(0))  # A enters the activity and publishes its execute
    (execute,) = broker_a.published
    assert isinstance(execute, Execute) and execute.owner == a.owner_id != b.owner_id
    broker_b.deliver(execute)  # B takes the token from A, runs the execute and records it
    broker_b.deliver(execute)  # a second copy (a redelivery) finds the execute recorded
    finished(b, tree["id"])
    assert claims.results == [True, False]
    assert len(runs.results) == 1
    assert b.get_execution_data_outputs(act)["y"] == 3 * 5 + 1


def test_without_a_local_lane_a_broker_delivery_runs_the_chain_it_leads_to_itself(
    engines: list[rattan.Engine], db: str, registry: rattan.Registry
) -> None:
    # a dispatcher with no local lane (no acknowledges()): every delivery is acknowledged on
    # return, and the user code its rounds reach runs in the delivering thread, as before
    broker = FakeBroker(SystemClock())
    engine = rattan.Engine(store=db, dispatcher=broker, components=registry, resend_seconds=600)  # type: ignore[arg-type]
    engines.append(engine)
    start, data = EmptyStartEvent(), Data()
    acts = [_act(i) for i in range(3)]
    cur: Any = start
    for act in acts:
        cur = cur.extend(act)
    cur.extend(EmptyEndEvent())
    tree = build_tree(start, data=data)
    api.run_pipeline(engine, tree)
    (advance,) = broker.published
    broker.published.clear()
    broker.deliver(advance)
    assert engine.is_finished(tree["id"])  # before the delivery returned
    assert broker.published == []  # nothing of the chain crossed the broker
    assert [engine.get_execution_data_outputs(a.id)["y"] for a in acts] == [1, 4, 7]
    assert engine._worker._stash == {} and engine._worker._waiters == {}
