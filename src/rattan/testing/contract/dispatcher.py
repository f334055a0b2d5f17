"""The dispatcher contract: delivery, due times, idleness, stopping, and messages as JSON."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, ClassVar, get_args

import pytest

from rattan.errors import BadInputError
from rattan.model.messages import (
    Advance,
    Callback,
    Execute,
    FireTimer,
    Message,
    Poll,
    Recover,
    Task,
    decode,
    encode,
)
from rattan.runtime.interface import INTERFACE_VERSION, Clock, Dispatcher
from rattan.testing.clock import FakeClock
from rattan.testing.contract._support import QUIET, ROLLBACK_TASK, WAIT, _Boom, _run_threads


class _Recorder:
    """A ``handle`` that records what it is given; tests wait for it with a bound."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.messages: list[Message] = []

    def __call__(self, msg: Message) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        """True once ``count`` messages were handled; False if ``timeout`` passes first."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.messages) >= count, timeout)

    def seen(self) -> list[Message]:
        with self._cond:
            return list(self.messages)


# one of each message type, as the engine sends them
SAMPLES: list[Message] = [
    Advance(7),
    Execute(7, "n1", "v1"),
    Poll(3),
    Callback(4),
    FireTimer(5),
    Recover(6),
    Task(ROLLBACK_TASK, {"root_id": "r1", "nested": [1, {"a": None}], "ratio": 0.5}),
    Task("no.args"),
]

# JSON a broker may deliver that is no message, and a word the error must name
MALFORMED: list[tuple[Any, str]] = [
    (None, "dict"),
    ([["kind", "advance"]], "dict"),
    ("advance", "dict"),
    ({}, "kind"),
    ({"token_id": 1}, "kind"),
    ({"kind": "no-such-kind", "token_id": 1}, "no-such-kind"),
    ({"kind": "advance"}, "token_id"),
    ({"kind": "advance", "token_id": 1, "extra": 2}, "extra"),
    ({"kind": "execute", "token_id": 1, "node_id": "n1"}, "version"),
    ({"kind": "task", "args": {}}, "name"),
]

# JSON of the right shape whose fields have the wrong types, and the field the error must name
WRONG_TYPES: list[tuple[dict[str, Any], str]] = [
    ({"kind": "advance", "token_id": "7"}, "token_id"),
    ({"kind": "poll", "schedule_id": None}, "schedule_id"),
    ({"kind": "execute", "token_id": 1, "node_id": 2, "version": "v1"}, "node_id"),
    ({"kind": "task", "name": "x", "args": [1]}, "args"),
]


def _message_id(msg: Message) -> str:
    return msg.kind if not isinstance(msg, Task) else f"task-{msg.name}"


class DispatcherContract:
    """The dispatcher half of the seam contract, as a pytest mixin (see ``rattan.testing.contract``).

    A subclass provides ``make_dispatcher``. The tests check delivery (every message sent reaches
    ``handle``, unchanged), ``send_at`` on a ``FakeClock`` (nothing early, then in due-time order),
    ``wait_idle`` (not idle while a handler runs, even after another handler raised), ``stop``
    (running and queued work finishes) and the JSON form of messages (``encode`` / ``decode``).

    Attributes:
        exactly_once: True when each message is handed to ``handle`` exactly once (an in-process
            dispatcher); False allows the duplicates of at-least-once delivery.
    """

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.timeout(120)]
    exactly_once: ClassVar[bool] = False

    def make_dispatcher(self, clock: Clock) -> Dispatcher:
        """A new dispatcher, not started, whose due times follow ``clock`` (a FakeClock). The
        suite starts and stops it."""
        raise NotImplementedError("a DispatcherContract subclass provides make_dispatcher(clock)")

    # -- plumbing ------------------------------------------------------------------------------
    @pytest.fixture(autouse=True)
    def _contract_dispatchers(self) -> Iterator[None]:
        self._started: list[Dispatcher] = []
        yield
        for dispatcher in self._started:
            dispatcher.stop(WAIT)

    def _start(self, handle: Callable[[Message], None], clock: FakeClock | None = None) -> Dispatcher:
        dispatcher = self.make_dispatcher(clock if clock is not None else FakeClock())
        dispatcher.start(handle)
        self._started.append(dispatcher)
        return dispatcher

    # -- delivery ------------------------------------------------------------------------------
    def test_the_dispatcher_implements_the_protocol_and_this_interface_version(self) -> None:
        dispatcher = self._start(_Recorder())
        assert isinstance(dispatcher, Dispatcher)
        assert dispatcher.interface_version[0] == INTERFACE_VERSION[0]
        assert isinstance(dispatcher.shares_memory, bool)
        assert dispatcher.wait_idle(WAIT) is True  # nothing sent: idle at once
        assert dispatcher.pending == 0

    @pytest.mark.timeout(60)
    def test_every_sent_message_is_handed_to_handle_unchanged(self) -> None:
        recorder = _Recorder()
        dispatcher = self._start(recorder)
        senders = 4
        sent = [
            dataclasses.replace(sample, **_renumber(sample, sender * 1000 + i))
            for sender in range(senders)
            for i, sample in enumerate(SAMPLES * 10)
        ]
        share = len(sent) // senders
        _run_threads(
            [partial(_send_all, dispatcher, sent[k * share : (k + 1) * share]) for k in range(senders)]
        )
        assert recorder.wait_for(len(sent), WAIT), f"{len(recorder.seen())} of {len(sent)} handled"
        assert dispatcher.wait_idle(WAIT)
        handled = recorder.seen()
        if self.exactly_once:
            assert Counter(handled) == Counter(sent)
        else:
            assert set(handled) == set(sent)
        assert dispatcher.pending == 0

    @pytest.mark.timeout(60)
    def test_send_at_delivers_nothing_before_the_due_time_and_then_in_due_time_order(self) -> None:
        clock = FakeClock()
        recorder = _Recorder()
        dispatcher = self._start(recorder, clock)
        t0 = clock.now()
        for due, msg in ((t0 + 20, Poll(3)), (t0 + 5, Poll(1)), (t0 + 10, Poll(2))):
            dispatcher.send_at(due, msg)
        assert dispatcher.wait_idle(WAIT)  # delayed messages do not keep it busy
        assert not recorder.wait_for(1, QUIET), f"delivered before its due time: {recorder.seen()}"
        clock.advance(4.9)
        assert not recorder.wait_for(1, QUIET), f"delivered before its due time: {recorder.seen()}"
        for step, count in ((0.1, 1), (5.0, 2), (10.0, 3)):
            clock.advance(step)
            assert recorder.wait_for(count, WAIT), f"due at {clock.now() - t0} s, got {recorder.seen()}"
            if count < 3:
                assert not recorder.wait_for(count + 1, QUIET), f"early: {recorder.seen()}"
        assert recorder.seen() == [Poll(1), Poll(2), Poll(3)]

    def test_send_at_a_time_already_past_delivers_at_once(self) -> None:
        clock = FakeClock()
        recorder = _Recorder()
        dispatcher = self._start(recorder, clock)
        dispatcher.send_at(clock.now() - 5, Advance(1))
        dispatcher.send_at(clock.now(), Advance(2))
        assert recorder.wait_for(2, WAIT), f"not delivered without moving the clock: {recorder.seen()}"
        assert set(recorder.seen()) == {Advance(1), Advance(2)}

    # -- idleness ------------------------------------------------------------------------------
    def test_wait_idle_is_false_while_a_handler_runs_and_true_after(self) -> None:
        started, release = threading.Event(), threading.Event()

        def handle(msg: Message) -> None:
            started.set()
            release.wait(WAIT)

        dispatcher = self._start(handle)
        dispatcher.send(Advance(1))
        try:
            assert started.wait(WAIT)
            assert dispatcher.wait_idle(QUIET) is False
        finally:
            release.set()
        assert dispatcher.wait_idle(WAIT) is True

    @pytest.mark.timeout(60)
    def test_a_handler_that_raises_neither_stops_later_messages_nor_ends_wait_idle_early(self) -> None:
        release = threading.Event()
        recorder = _Recorder()

        def handle(msg: Message) -> None:
            recorder(msg)
            if isinstance(msg, Poll):
                raise _Boom(f"contract: {msg} fails on purpose")
            if msg == Advance(0):
                release.wait(WAIT)

        dispatcher = self._start(handle)
        failing = [Poll(i) for i in range(10)]
        fine = [Advance(i) for i in range(1, 11)]
        try:
            for bad, good in zip(failing, fine, strict=True):
                dispatcher.send(bad)
                dispatcher.send(good)
            # sent last: with one worker the failures are all over by the time it runs; with more,
            # they end while it runs. Either way it is still running below.
            dispatcher.send(Advance(0))
            assert recorder.wait_for(21, WAIT), f"later messages were not handled: {recorder.seen()}"
            assert set(recorder.seen()) >= {*failing, *fine, Advance(0)}
            # each failure must count as one finished message, not two: idle only once
            # Advance(0) returns
            assert dispatcher.wait_idle(QUIET) is False
        finally:
            release.set()
        assert dispatcher.wait_idle(WAIT) is True
        dispatcher.send(Advance(99))
        assert recorder.wait_for(22, WAIT) and dispatcher.wait_idle(WAIT)
        assert Advance(99) in recorder.seen()

    @pytest.mark.timeout(60)
    def test_stop_lets_running_and_queued_work_finish(self) -> None:
        started, release = threading.Event(), threading.Event()
        finished = _Recorder()

        def handle(msg: Message) -> None:
            if msg == Advance(0):
                started.set()
                release.wait(WAIT)
            finished(msg)

        dispatcher = self._start(handle)
        dispatcher.send(Advance(0))
        stopper = threading.Thread(target=dispatcher.stop, args=(WAIT,), daemon=True)
        try:
            assert started.wait(WAIT)
            for i in range(1, 6):
                dispatcher.send(Advance(i))
            stopper.start()
            stopper.join(QUIET)
            assert stopper.is_alive(), "stop returned while a handler was still running"
        finally:
            release.set()
        stopper.join(WAIT)
        assert not stopper.is_alive()
        assert set(finished.seen()) >= {Advance(i) for i in range(6)}

    # -- messages as data ----------------------------------------------------------------------
    def test_the_samples_cover_every_message_type(self) -> None:
        assert {type(m) for m in SAMPLES} == set(get_args(Message))

    @pytest.mark.parametrize("msg", SAMPLES, ids=_message_id)
    def test_every_message_type_survives_an_encode_decode_round_trip_through_json(self, msg: Message) -> None:
        data = json.loads(json.dumps(encode(msg)))
        assert data["kind"] == msg.kind
        back = decode(data)
        assert type(back) is type(msg) and back == msg and hash(back) == hash(msg)
        assert decode(encode(back)) == msg

    @pytest.mark.parametrize(("data", "named"), MALFORMED, ids=[repr(d)[:40] for d, _ in MALFORMED])
    def test_decode_refuses_malformed_input_naming_the_problem(self, data: Any, named: str) -> None:
        with pytest.raises(BadInputError, match=named):
            decode(data)

    @pytest.mark.parametrize("kind", [["advance"], {"advance": 1}], ids=["list", "object"])
    def test_decode_refuses_a_kind_that_is_not_a_string(self, kind: Any) -> None:
        with pytest.raises(BadInputError, match="kind"):
            decode({"kind": kind, "token_id": 1})

    @pytest.mark.parametrize(("data", "named"), WRONG_TYPES, ids=[repr(d)[:40] for d, _ in WRONG_TYPES])
    def test_decode_refuses_fields_of_the_wrong_type(self, data: dict[str, Any], named: str) -> None:
        with pytest.raises(BadInputError, match=named):
            decode(data)


def _send_all(dispatcher: Dispatcher, messages: Sequence[Message]) -> None:
    for msg in messages:
        dispatcher.send(msg)


def _renumber(msg: Message, n: int) -> dict[str, Any]:
    """The id fields of a sample set to ``n``, so every message sent is a different one."""
    if isinstance(msg, Task):
        return {"args": {**msg.args, "n": n}}
    name = next(f.name for f in dataclasses.fields(msg) if f.name.endswith("_id"))
    return {name: n}
