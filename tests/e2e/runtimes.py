"""How the end-to-end suite gets an engine on each runtime (see conftest.py)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import rattan
from rattan.testing.worker import WorkerProcess, worker_env

RUNTIMES = ("embedded", "postgres", "celery")
COMPONENTS = ["e2e_components"]
HERE = Path(__file__).resolve().parent
SRC = HERE.parent.parent / "src"
READY_SECONDS = 60.0


def selected_runtimes() -> list[str]:
    chosen = [r.strip() for r in os.environ.get("RATTAN_TEST_RUNTIME", ",".join(RUNTIMES)).split(",")]
    chosen = [r for r in chosen if r]
    unknown = sorted(set(chosen) - set(RUNTIMES))
    if unknown:
        raise ValueError(f"RATTAN_TEST_RUNTIME names unknown runtimes {unknown}: use {', '.join(RUNTIMES)}")
    return chosen


@dataclass
class Runtime:
    """One runtime: ``engine`` is what the tests drive (the same for every test of a module)."""

    name: str
    engine: rattan.Engine
    distributed: bool = False  # components run in other processes than the test


def _pg_schema(postgres_url: str) -> str:
    from rattan.testing.postgres import schema_url

    return schema_url(postgres_url, f"e2e_{secrets.token_hex(4)}")


@contextmanager
def _engine(*args: object, **kwargs: object) -> Iterator[rattan.Engine]:
    engine = rattan.Engine(*args, **kwargs)  # type: ignore[arg-type]
    try:
        yield engine
    finally:
        engine.close(timeout=10)


@contextmanager
def _worker(store: str, dispatcher: str, log: Path) -> Iterator[WorkerProcess]:
    """A ``rattan worker`` subprocess with the suite's components, ready to take messages."""
    args = [
        "--store",
        store,
        "--dispatcher",
        dispatcher,
        "--components",
        "e2e_components",
        "--concurrency",
        "4",
    ]
    worker = WorkerProcess(args, log, worker_env(HERE, SRC), cwd=HERE)
    try:
        worker.wait_ready(READY_SECONDS)
        yield worker
    finally:
        worker.stop(30)


@contextmanager
def open_runtime(name: str, folder: Path, request: object) -> Iterator[Runtime]:
    getfixture = request.getfixturevalue  # type: ignore[attr-defined]
    with ExitStack() as stack:
        if name == "embedded":
            engine = stack.enter_context(_engine(str(folder / "e2e.db"), component_modules=COMPONENTS))
            yield Runtime(name, engine)
        elif name == "postgres":
            store = _pg_schema(getfixture("postgres_url"))
            yield Runtime(name, stack.enter_context(_engine(store=store, component_modules=COMPONENTS)))
        elif name == "celery":
            store = _pg_schema(getfixture("postgres_url"))
            broker = getfixture("redis_url")
            dispatcher = f"celery://{broker}"
            import redis

            redis.Redis.from_url(broker).flushdb()  # queues left by an earlier module
            for i in range(2):
                stack.enter_context(_worker(store, dispatcher, folder / f"worker-{i}.log"))
            # the test's engine sends only: its components run in the workers (it still renews a
            # lease and looks for lost work, as any engine of a deployment does)
            engine = stack.enter_context(
                _engine(store=store, dispatcher=dispatcher, component_modules=COMPONENTS)
            )
            yield Runtime(name, engine, distributed=True)
        else:
            raise ValueError(name)
