"""The local-first dispatcher of ``rattan worker`` (``LocalFirstDispatcher``: a local lane of
threads in front of the Celery dispatcher) against the dispatcher contract
(``rattan.testing.contract.DispatcherContract``), over a real Redis broker (a private
``redis-server``, or ``RATTAN_TEST_REDIS_URL``) with a real Celery worker (thread pool) in this
process taking the broker lane's messages. The local lane's backlog is kept small, so the
contract's bursts travel both lanes.

Without redis-server (and celery) these tests are skipped; with RATTAN_REQUIRE_REDIS=1 they fail.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rattan.model.messages import Advance, Message
from rattan.runtime.interface import Clock, Dispatcher
from rattan.testing.clock import FakeClock
from rattan.testing.contract import DispatcherContract
from rattan.testing.redis import redis_url_fixture

CELERY_THREADS = 4
LOCAL_THREADS = 2
BACKLOG = 2
WAIT = 30.0


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    yield from redis_url_fixture()


@pytest.fixture(scope="module")
def celery_worker(redis_url: str) -> Iterator[tuple[Any, str]]:
    """A rattan-configured Celery app on the Redis broker, and a worker of it in this process."""
    from celery.contrib.testing.worker import start_worker

    from rattan.runtime.celery import make_app, queue_names

    prefix = f"rattan-local-contract-{os.getpid()}-{time.monotonic_ns()}"
    app = make_app(redis_url, prefix=prefix)
    with start_worker(
        app, pool="threads", concurrency=CELERY_THREADS, perform_ping_check=False,
        queues=queue_names(prefix), shutdown_timeout=30,
    ):  # fmt: skip
        yield app, prefix


def _local_first(app: Any, prefix: str, clock: Clock, backlog: int = BACKLOG) -> Any:
    from rattan.runtime.celery import CeleryDispatcher, LocalFirstDispatcher

    broker = CeleryDispatcher(app, clock=clock, queue_prefix=prefix)
    broker.consuming = True  # the worker above takes this process's messages
    return LocalFirstDispatcher(broker, threads=LOCAL_THREADS, backlog=backlog)


class TestLocalFirstDispatcher(DispatcherContract):
    # the broker lane delivers at least once: a message may come twice
    exactly_once = False

    @pytest.fixture(autouse=True)
    def _celery(self, celery_worker: tuple[Any, str]) -> None:
        self.app, self.prefix = celery_worker

    def make_dispatcher(self, clock: Clock) -> Dispatcher:
        dispatcher: Dispatcher = _local_first(self.app, self.prefix, clock)
        return dispatcher


# -- what the contract does not cover --------------------------------------------------------------


def test_a_burst_travels_both_lanes_and_each_delivery_says_which(celery_worker: tuple[Any, str]) -> None:
    app, prefix = celery_worker
    dispatcher = _local_first(app, prefix, FakeClock())
    lock = threading.Lock()
    seen: dict[Message, bool] = {}

    def handle(msg: Message) -> None:
        time.sleep(0.002)  # the local lane falls behind the sender
        with lock:
            seen[msg] = dispatcher.acknowledges()

    dispatcher.start(handle)
    try:
        sent = [Advance(i) for i in range(60)]
        kept = [dispatcher.send(msg) for msg in sent]
        deadline = time.monotonic() + WAIT
        while len(seen) < len(sent):
            assert time.monotonic() < deadline, f"{len(seen)} of {len(sent)} handled"
            time.sleep(0.01)
        assert dispatcher.wait_idle(WAIT)
        assert True in kept and False in kept
        assert (dispatcher.kept, dispatcher.published) == (kept.count(True), kept.count(False))
        # a message kept here is handled by the local lane, one published by the Celery worker
        assert {msg: not here for msg, here in zip(sent, kept, strict=True)} == seen
        assert dispatcher.pending == 0
    finally:
        dispatcher.stop(WAIT)


def test_an_unreachable_broker_fails_start_before_any_local_thread_runs() -> None:
    import socket

    from rattan.errors import BackendUnavailableError
    from rattan.runtime.celery import CeleryDispatcher, LocalFirstDispatcher
    from rattan.runtime.celery.local import BACKLOG_PER_THREAD

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dispatcher = LocalFirstDispatcher(
        CeleryDispatcher(f"redis://127.0.0.1:{port}/0", clock=FakeClock()), threads=LOCAL_THREADS
    )
    before = threading.active_count()
    with pytest.raises(BackendUnavailableError):
        dispatcher.start(lambda msg: None)
    assert threading.active_count() == before
    assert dispatcher.backlog == BACKLOG_PER_THREAD * LOCAL_THREADS
