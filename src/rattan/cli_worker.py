"""``rattan worker``: a Celery worker whose processes each run a rattan engine (``rattan[celery]``;
docs/deployment.md). Split from ``rattan.cli``, which offers it as a subcommand."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

import rattan
from rattan.cli import EXIT_INPUT_ERROR, EXIT_OK, EXIT_USAGE
from rattan.cli_args import add_components
from rattan.errors import RattanError

# -- worker ----------------------------------------------------------------------------------------

WORKER_POOLS = ("threads", "prefork", "solo")
WORKER_CLOSE_SECONDS = 30.0  # how long closing an engine waits for its running work
DEFAULT_THREADS = 8  # pool threads of the thread pool, and local threads of the solo pool
# local threads of each prefork child: the pool's processes are the parallelism there (one per
# core for CPU-bound components); two let one thread lead a round while the other runs user code
PREFORK_CHILD_THREADS = 2


def add_worker_parser(sub: Any) -> None:
    """Add the ``worker`` subcommand to the ``rattan`` parser's subparsers."""
    cmd = sub.add_parser(
        "worker",
        help="run a Celery worker with the engine (distributed runtime)",
        description="Start a Celery worker whose processes each run a rattan engine on --store, "
        "taking rattan's messages from the broker of --dispatcher. Start one or more on any machine "
        "that reaches the store and the broker. SIGTERM is a warm shutdown.",
    )
    cmd.add_argument(
        "--store", required=True, metavar="URL",
        help="the store, as Engine(store=...): sqlite:///x.db, postgresql://...",
    )  # fmt: skip
    cmd.add_argument(
        "--dispatcher", required=True, metavar="URL",
        help="celery://<broker URL>, e.g. celery://redis://127.0.0.1:6379/0",
    )  # fmt: skip
    add_components(cmd)
    cmd.add_argument(
        "--queues", default=None, metavar="Q1,Q2",
        help="queues to consume (default: all of rattan's: PREFIX, PREFIX.execute, PREFIX.schedule)",
    )  # fmt: skip
    cmd.add_argument(
        "--queue-prefix", default="rattan", metavar="PREFIX",
        help="the prefix of rattan's queue names (default: rattan)",
    )  # fmt: skip
    cmd.add_argument(
        "--concurrency", type=int, default=None, metavar="N",
        help="pool threads or processes (default: 8 threads, or the CPU count); with the thread and "
        "solo pools, also the threads of the engine's local lane",
    )  # fmt: skip
    cmd.add_argument(
        "--local-backlog", type=int, default=None, metavar="N",
        help="messages that may wait in the local lane before the overflow goes to the broker "
        "(default: 16 per local thread; 0: every message goes through the broker)",
    )  # fmt: skip
    cmd.add_argument("--pool", choices=WORKER_POOLS, default="threads", help="Celery pool (default: threads)")
    cmd.add_argument("--loglevel", default="WARNING", help="log level (default: WARNING)")
    cmd.add_argument(
        "--visibility-timeout", type=float, default=None, metavar="SECONDS",
        help="Redis: a message a dead worker took comes back after this long (default: 300)",
    )  # fmt: skip
    cmd.add_argument("--hostname", default=None, help="the Celery node name (default: rattan-PID@HOST)")


def worker(args: argparse.Namespace) -> int:
    """Run ``rattan worker`` (parsed ``args``): a Celery worker with a rattan engine in it; returns
    the exit code::

        rattan worker --store URL --dispatcher celery://redis://HOST:6379/0 --components pkg.module
            [--components other] [--queues q1,q2] [--concurrency N] [--pool threads|prefork|solo]

    Each worker process holds ONE ``rattan.Engine`` on the store, whose dispatcher is a
    ``LocalFirstDispatcher``: the ``rattan.handle`` tasks the worker takes from the broker call that
    engine, and the work they lead to stays in the process's local lane (threads of its own) while
    the lane keeps up; the overflow is published to the broker for any worker. With the thread pool
    (the default: the engine batches the work of its threads into shared transactions) or the solo
    pool, the engine lives in the worker's own process; with prefork, each child process opens its
    own engine after the fork (database connections must not cross a fork), with a local lane of
    PREFORK_CHILD_THREADS threads.

    Every engine runs its sweeper: it renews the process's lease, claims the work of engines that are
    gone (a worker killed mid-execute is handled as the embedded runtime handles a crash) and the work
    of engines that run no workers (``Engine(start=False)`` clients), and re-sends it as messages.
    Running one or many workers at once is safe: each piece of work goes to one claimer.

    SIGTERM (or Ctrl-C) is a warm shutdown: running tasks finish, then the engine closes and gives its
    lease up, so the other workers take over its delayed work (polls, timers) at once.
    """
    from rattan import logs  # --log-format: rattan.cli adds it to this command's parser

    level = getattr(logging, str(args.loglevel).upper(), logging.WARNING)
    if (getattr(args, "log_format", None) or logs.default_format()) == "json":
        logs.configure("json", level)  # one JSON object per line, with run and node ids
    else:
        logging.basicConfig(
            level=level, format="%(asctime)s %(processName)s %(name)s %(levelname)s %(message)s"
        )
    try:
        from rattan.runtime.celery import broker_of, check_broker, make_app, queue_names, safe_url
        from rattan.runtime.celery.app import VISIBILITY_TIMEOUT
    except ImportError as exc:
        print(f"rattan worker needs celery ({exc}): pip install 'rattan[celery]'", file=sys.stderr)
        return EXIT_INPUT_ERROR
    if not args.dispatcher.lower().startswith("celery://") or "://" not in broker_of(args.dispatcher):
        given = safe_url(args.dispatcher)
        print(f"rattan worker: --dispatcher must be celery://<broker URL>, not {given!r}", file=sys.stderr)
        return EXIT_USAGE
    if args.concurrency is not None and args.concurrency < 1:
        print("rattan worker: --concurrency must be 1 or more", file=sys.stderr)
        return EXIT_USAGE
    if args.local_backlog is not None and args.local_backlog < 0:
        print("rattan worker: --local-backlog must be 0 or more", file=sys.stderr)
        return EXIT_USAGE
    broker = broker_of(args.dispatcher)
    app = make_app(
        broker, prefix=args.queue_prefix, visibility_timeout=args.visibility_timeout or VISIBILITY_TIMEOUT
    )
    queues = [q for q in (args.queues or ",".join(queue_names(args.queue_prefix))).split(",") if q]
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as ``python -m``: the user's modules live here
    try:
        _import_components(args.components)
        host = _WorkerHost(app, args)
        host.check_store()
        check_broker(app)
    except RattanError as exc:
        print(f"rattan worker: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    return host.serve(queues)


def _import_components(modules: Sequence[str]) -> None:
    if modules:
        rattan.registry.import_modules(modules)
    rattan.registry.load_entry_points()  # installed packages' components (group rattan.components)


class _WorkerHost:
    """The engine(s) of one ``rattan worker``: one in this process (threads, solo), or one per
    child process (prefork)."""

    def __init__(self, app: Any, args: argparse.Namespace) -> None:
        self.app = app
        self.args = args
        self.engine: Any = None
        self.dispatcher: Any = None  # the engine's LocalFirstDispatcher (engine.dispatcher wraps it)
        self.queues: list[str] | None = None  # what the worker consumes: all its local lane keeps

    def check_store(self) -> None:
        """Open the store once (and migrate it), so a bad URL is said before the worker starts."""
        rattan.Engine(store=self.args.store, start=False).close()

    def local_threads(self) -> int:
        """Threads of the engine's local lane: as many as the pool's threads (--concurrency), the
        solo pool's --concurrency (default 8), and PREFORK_CHILD_THREADS in each prefork child."""
        pool, concurrency = self.args.pool, self.args.concurrency
        if pool == "prefork":
            return PREFORK_CHILD_THREADS
        return int(concurrency or DEFAULT_THREADS)

    def open_engine(self) -> Any:
        from rattan.runtime.celery import CeleryDispatcher, LocalFirstDispatcher
        from rattan.runtime.clock import SystemClock

        broker = CeleryDispatcher(self.app, clock=SystemClock(), queue_prefix=self.args.queue_prefix)
        broker.consuming = self.args.pool != "prefork"  # a prefork child does not consume
        self.dispatcher = LocalFirstDispatcher(
            broker, threads=self.local_threads(), backlog=self.args.local_backlog, queues=self.queues
        )
        self.engine = rattan.Engine(store=self.args.store, dispatcher=self.dispatcher)
        return self.engine

    def close_engine(self, *_: Any, **__: Any) -> None:
        engine, self.engine = self.engine, None
        if engine is not None:
            # the worker stopped consuming: wait for this process's own work only, and hand what
            # it leads to over to the other workers rather than run it here while closing
            self.dispatcher.consuming = False
            self.dispatcher.hand_over()
            engine.close(WORKER_CLOSE_SECONDS)

    def serve(self, queues: list[str]) -> int:
        from celery import signals  # type: ignore[import-untyped, unused-ignore]

        args = self.args
        self.queues = queues
        pool = args.pool
        concurrency = args.concurrency or (DEFAULT_THREADS if pool == "threads" else os.cpu_count() or 1)
        if pool == "solo":
            concurrency = 1
        if pool == "prefork":
            signals.worker_process_init.connect(self._child_init, weak=False)
            signals.worker_process_shutdown.connect(self.close_engine, weak=False)
        else:
            try:
                self.open_engine()
            except RattanError as exc:
                print(f"rattan worker: {exc}", file=sys.stderr)
                return EXIT_INPUT_ERROR
        signals.worker_ready.connect(self._ready, weak=False)
        celery_worker = self.app.Worker(
            hostname=args.hostname or f"rattan-{os.getpid()}@{socket.gethostname()}",
            pool=pool, concurrency=concurrency, queues=queues, loglevel=args.loglevel.upper(),
            without_mingle=True, without_gossip=True, without_heartbeat=True, quiet=True,
            redirect_stdouts=False, optimization="fair",
        )  # fmt: skip
        try:
            celery_worker.start()
        finally:
            self.close_engine()
        code = celery_worker.exitcode
        return int(code) if isinstance(code, int) else EXIT_OK

    def _child_init(self, *_: Any, **__: Any) -> None:
        self.open_engine()

    def _ready(self, *_: Any, **__: Any) -> None:
        args = self.args
        from rattan.runtime.celery import safe_url

        print(
            f"rattan worker ready: pid {os.getpid()}, pool {args.pool}, store {safe_url(args.store)}, "
            f"broker celery://{safe_url(args.dispatcher[len('celery://') :])}",
            flush=True,
        )
