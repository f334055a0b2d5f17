"""The Celery side of the Celery dispatcher: the app rattan builds from a broker URL, the one task
every message travels as (``rattan.handle``), the queue each message kind goes to, and the broker
checks (reachable? how many messages wait?).

Celery is only a transport here. A task carries one encoded message (``rattan.model.messages``:
ids and small values, JSON); the store is the truth. Tasks are acknowledged late and rejected
(so requeued) when their worker process dies: a message redelivered after it was handled finds its
row changed and does nothing. JSON only: a broker message never unpickles anything.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from celery import Celery  # type: ignore[import-untyped, unused-ignore]
from kombu.exceptions import OperationalError
from kombu.utils.url import maybe_sanitize_url

from rattan.errors import BackendUnavailableError, BadInputError
from rattan.model.messages import Callback, Execute, Message, Poll, decode

log = logging.getLogger("rattan.dispatch")

TASK_NAME = "rattan.handle"
DEFAULT_PREFIX = "rattan"
PREFETCH = 4  # messages a worker process reserves per pool slot (work is short; the store is the truth)
CONNECT_SECONDS = 5.0  # how long a broker check waits for the broker
# Redis: a message taken by a worker that died unacknowledged goes back to its queue after this
# long (kombu's default is an hour). The sweep takes over the rows of a dead engine at once, but a
# message for work a LIVE engine owns, lost in a killed worker's prefetch, comes back only so. Kept
# well above a message's handling time (prefetch wait + user code): a message unacknowledged
# longer than this is delivered again.
VISIBILITY_TIMEOUT = 300.0
# what a failed publish costs the sending thread before the dispatcher keeps the message for later
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}

# the function a process's ``rattan.handle`` tasks call, per app (set by CeleryDispatcher.start)
Runner = Callable[[Message], None]
_RUNNERS: weakref.WeakKeyDictionary[Any, Runner] = weakref.WeakKeyDictionary()
_REGISTERED: weakref.WeakSet[Any] = weakref.WeakSet()
_LOCK = threading.Lock()


def safe_url(url: str) -> str:
    """``url`` with its password masked, for messages and logs."""
    return str(maybe_sanitize_url(url))


def queue_names(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Every queue the dispatcher sends to: the general one, then executes, then schedule steps."""
    return [prefix, f"{prefix}.execute", f"{prefix}.schedule"]


def queue_for(msg: Message, prefix: str = DEFAULT_PREFIX) -> str:
    """Routing by the work's kind (bamboo's er_execute / er_schedule queues): an activity's
    ``execute`` -> ``{prefix}.execute``, a poll or callback step -> ``{prefix}.schedule``, engine
    work (advance, recover, timers, tasks) -> ``{prefix}``."""
    return queue_for_kind(type(msg), prefix)


def queue_for_kind(kind: type, prefix: str = DEFAULT_PREFIX) -> str:
    """The queue of every message of class ``kind`` (see ``queue_for``)."""
    if kind is Execute:
        return f"{prefix}.execute"
    if kind is Poll or kind is Callback:
        return f"{prefix}.schedule"
    return prefix


def make_app(
    broker_url: str, *, prefix: str = DEFAULT_PREFIX, main: str = "rattan",
    visibility_timeout: float = VISIBILITY_TIMEOUT,
) -> Any:  # fmt: skip
    """A Celery app for ``broker_url`` (``redis://...``, ``amqp://...``), configured for rattan:
    JSON only, no result backend, late acks, requeue on a lost worker, small prefetch."""
    app = Celery(main, broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,  # a message whose handling raised is not retried forever
        worker_prefetch_multiplier=PREFETCH,
        task_default_queue=prefix,
        task_create_missing_queues=True,
        task_publish_retry_policy=PUBLISH_RETRY,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=CONNECT_SECONDS,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_hijack_root_logger=False,
        worker_enable_remote_control=False,
        broker_transport_options={
            "socket_connect_timeout": CONNECT_SECONDS,
            "visibility_timeout": visibility_timeout,
            # look for such messages every few seconds (kombu: every 10th tick of 10 s)
            "unacked_restore_interval": max(1, min(10, int(visibility_timeout / 4))),
            "unacked_restore_throttle": 1,
        },
    )
    register_task(app)
    return app


def register_task(app: Any) -> None:
    """Define ``rattan.handle`` on ``app`` (once): decode the message and hand it to the function
    this process's dispatcher was started with. A malformed message is logged and dropped."""
    with _LOCK:
        if app in _REGISTERED:
            return
        _REGISTERED.add(app)

    def handle(encoded: Any) -> None:
        try:
            msg = decode(encoded)
        except BadInputError as exc:
            log.error("malformed rattan message dropped (%s): %.200r", exc, encoded)
            return
        runner = _RUNNERS.get(app)
        if runner is None:
            # no engine in this process for this app: the work is still a row, and an engine's
            # sweep finds it
            log.error("no rattan engine runs in this process: %r dropped", msg)
            return
        runner(msg)

    app.task(
        name=TASK_NAME, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
        serializer="json", typing=False, shared=False,
    )(handle)  # fmt: skip


def bind(app: Any, runner: Runner | None) -> None:
    """Make ``runner`` what this process's ``rattan.handle`` tasks of ``app`` call (None: nothing)."""
    with _LOCK:
        if runner is None:
            _RUNNERS.pop(app, None)
        else:
            _RUNNERS[app] = runner


def bound(app: Any) -> Runner | None:
    return _RUNNERS.get(app)


def check_broker(app: Any, timeout: float = CONNECT_SECONDS) -> None:
    """Connect to ``app``'s broker once; an unreachable one raises BackendUnavailableError naming
    its URL (password masked)."""
    conn = app.connection_for_write()
    try:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=timeout)
    except (OperationalError, OSError, TimeoutError) as exc:
        raise BackendUnavailableError(f"the Celery broker {broker_url(app)} is unreachable: {exc}") from None
    finally:
        conn.release()


def broker_url(app: Any) -> str:
    try:
        return safe_url(app.connection_for_write().as_uri())
    except Exception:  # a broken URL: say what was configured
        return safe_url(str(app.conf.broker_url))


class QueueDepth:
    """How many messages wait in some broker queues (ready ones; those a worker reserved are not
    counted). One connection, opened on first use and again after a failure."""

    def __init__(self, app: Any, queues: Sequence[str]) -> None:
        self.app = app
        self.queues = list(queues)
        self._conn: Any = None
        self._lock = threading.Lock()

    def count(self) -> int:
        """Messages waiting in the queues; -1 when the broker cannot be asked."""
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self.app.connection_for_write()
                    self._conn.ensure_connection(max_retries=1, timeout=CONNECT_SECONDS)
                channel = self._conn.default_channel
                return sum(self._one(channel, q) for q in self.queues)
            except Exception as exc:
                log.warning("cannot count the messages in %s (%s)", self.queues, exc)
                self._close()
                return -1

    @staticmethod
    def _one(channel: Any, queue: str) -> int:
        try:
            return int(channel.queue_declare(queue=queue, passive=True).message_count)
        except Exception as exc:
            if "NOT_FOUND" in str(exc) or "no queue" in str(exc).lower():
                return 0  # never declared: nothing was sent to it
            raise

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.release()
            except Exception:
                pass

    def close(self) -> None:
        with self._lock:
            self._close()
