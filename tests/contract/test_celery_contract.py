"""The Celery dispatcher against the dispatcher contract (``rattan.testing.contract.DispatcherContract``),
over a real Redis broker (a private ``redis-server``, or ``RATTAN_TEST_REDIS_URL``), with a real
Celery worker (thread pool) running in this process: it takes the ``rattan.handle`` tasks from Redis
and calls the dispatcher's ``handle``.

Without redis-server (and celery) these tests are skipped; with RATTAN_REQUIRE_REDIS=1 they fail.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rattan.errors import BackendUnavailableError
from rattan.model.messages import Advance, Callback, Execute, FireTimer, Poll, Recover, Task
from rattan.runtime.interface import Clock, Dispatcher
from rattan.testing.contract import DispatcherContract
from rattan.testing.redis import redis_url_fixture

WORKER_THREADS = 4


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    yield from redis_url_fixture()


@pytest.fixture(scope="module")
def celery_worker(redis_url: str) -> Iterator[tuple[Any, str]]:
    """A rattan-configured Celery app on the Redis broker, and a worker of it in this process."""
    from celery.contrib.testing.worker import start_worker

    from rattan.runtime.celery import make_app, queue_names

    prefix = f"rattan-contract-{os.getpid()}-{time.monotonic_ns()}"
    app = make_app(redis_url, prefix=prefix)
    with start_worker(
        app, pool="threads", concurrency=WORKER_THREADS, perform_ping_check=False,
        queues=queue_names(prefix), shutdown_timeout=30,
    ):  # fmt: skip
        yield app, prefix


class TestCeleryDispatcher(DispatcherContract):
    # at-least-once delivery: a message may come twice
    exactly_once = False

    @pytest.fixture(autouse=True)
    def _celery(self, celery_worker: tuple[Any, str]) -> None:
        self.app, self.prefix = celery_worker

    def make_dispatcher(self, clock: Clock) -> Dispatcher:
        from rattan.runtime.celery import CeleryDispatcher

        dispatcher = CeleryDispatcher(self.app, clock=clock, queue_prefix=self.prefix)
        dispatcher.consuming = True  # the worker above takes this process's messages
        return dispatcher


# -- what the contract does not cover --------------------------------------------------------------


def test_each_message_kind_goes_to_its_queue() -> None:
    from rattan.runtime.celery import queue_for

    assert queue_for(Execute(1, "n", "v"), "p") == "p.execute"
    assert {queue_for(Poll(1), "p"), queue_for(Callback(1), "p")} == {"p.schedule"}
    for msg in (Advance(1), Recover(1), FireTimer(1), Task("x")):
        assert queue_for(msg, "p") == "p"


def test_a_celery_url_and_a_celery_app_open_a_celery_dispatcher(redis_url: str) -> None:
    from celery import Celery  # type: ignore[import-untyped, unused-ignore]

    from rattan.runtime import open_dispatcher
    from rattan.runtime.celery import CeleryDispatcher
    from rattan.settings import Settings
    from rattan.testing.clock import FakeClock

    by_url = open_dispatcher(f"celery://{redis_url}", Settings(), FakeClock())
    assert isinstance(by_url, CeleryDispatcher) and by_url.shares_memory is False
    # RabbitMQ by URL: accepted (nothing connects before start)
    assert isinstance(open_dispatcher("celery://amqp://guest:pw@127.0.0.1:5672//", Settings(), FakeClock()),
                      CeleryDispatcher)  # fmt: skip
    app = Celery("mine", broker=redis_url, set_as_current=False)
    by_app = open_dispatcher(app, Settings(), FakeClock())
    assert isinstance(by_app, CeleryDispatcher) and by_app.app is app
    assert "rattan.handle" in app.tasks


def test_an_unreachable_broker_is_named_without_its_password() -> None:
    import socket

    from rattan.runtime.celery import CeleryDispatcher
    from rattan.testing.clock import FakeClock

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dispatcher = CeleryDispatcher(f"redis://:s3cret@127.0.0.1:{port}/0", clock=FakeClock())
    with pytest.raises(BackendUnavailableError) as info:
        dispatcher.start(lambda msg: None)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_a_malformed_message_is_dropped_and_later_ones_are_handled(celery_worker: tuple[Any, str]) -> None:
    from rattan.runtime.celery import TASK_NAME, CeleryDispatcher
    from rattan.testing.clock import FakeClock

    app, prefix = celery_worker
    seen: list[Any] = []
    dispatcher = CeleryDispatcher(app, clock=FakeClock(), queue_prefix=prefix)
    dispatcher.consuming = True
    dispatcher.start(seen.append)
    try:
        for bad in ({"kind": "nope"}, "advance", {"kind": "advance", "token_id": "1"}):
            app.send_task(TASK_NAME, args=[bad], queue=prefix)
        dispatcher.send(Advance(42))
        deadline = time.monotonic() + 30
        while Advance(42) not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert dispatcher.wait_idle(30)
        assert seen == [Advance(42)]
    finally:
        dispatcher.stop(30)
