"""``Engine(store=..., dispatcher=...)`` takes instances or URLs; what it refuses, it refuses with an
error that says what to use or what to install; and the defects the seam fixed stay fixed: a
second engine on a store does not take the first one's work, a callback sent through an engine that
runs no workers is applied, archiving a run deletes its rollback rows."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import rattan
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree
from rattan.errors import BackendUnavailableError, BadInputError
from rattan.runtime import open_store
from rattan.runtime.interface import INTERFACE_VERSION, Dispatcher
from rattan.runtime.sqlite import SQLiteStore
from rattan.runtime.threads import ThreadDispatcher
from rattan.testing import FakeClock

pytestmark = pytest.mark.timeout(60)
SWEEP = 0.05  # sweep_seconds of the engines that share a store


def one_activity(code: str = "example_component") -> tuple[dict[str, Any], str]:
    start = EmptyStartEvent()
    act = ServiceActivity(component_code=code)
    start.extend(act).extend(EmptyEndEvent())
    return build_tree(start), act.id


def wait_until(fn: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)
    return value


# -- choosing the runtime ---------------------------------------------------------------------
def test_a_store_and_a_dispatcher_given_as_instances_are_used_as_they_are(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "given.db"))
    clock = FakeClock()
    dispatcher = ThreadDispatcher(2, clock)
    assert isinstance(dispatcher, Dispatcher)
    with rattan.Engine(store, dispatcher, clock=clock) as engine:
        assert engine.core.store is store and engine.dispatcher is dispatcher
        assert engine.store_url == f"sqlite:///{tmp_path / 'given.db'}"
        tree, _ = one_activity()
        engine.run_pipeline(tree)
        wait_until(lambda: engine.is_finished(tree["id"]))
        # the engine's clock is the one given: stored times are fake times
        assert engine.get_state(tree["id"]).started == clock.now()


DISPATCHER_AS_STORE = (
    "{} is a dispatcher URL, not a store: pass it as dispatcher=... "
    "(stores: a path, sqlite:///PATH, postgresql://...)"
)
STORE_AS_DISPATCHER = (
    "{} is a store URL, not a dispatcher: pass it as store=... "
    "(dispatchers: 'threads', celery://<broker URL>)"
)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://host/db", "unknown store 'mysql://host/db': stores are a path, sqlite:///PATH, postgresql://..."),
        ("celery://redis://127.0.0.1:6379/0", DISPATCHER_AS_STORE.format("celery://redis://127.0.0.1:6379/0")),
        ("threads://", DISPATCHER_AS_STORE.format("threads://")),
        # a password is never shown
        ("celery://amqp://guest:sekrit@127.0.0.1//", DISPATCHER_AS_STORE.format("celery://amqp://guest:***@127.0.0.1//")),
    ],
)  # fmt: skip
def test_a_url_rattan_cannot_open_as_a_store_is_refused_saying_what_to_use(url: str, says: str) -> None:
    with pytest.raises(BackendUnavailableError) as caught:
        rattan.Engine(url, start=False)
    assert str(caught.value) == says


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("kafka://x", "unknown dispatcher 'kafka://x': dispatchers are 'threads', celery://<broker URL>"),
        ("rabbit", "unknown dispatcher 'rabbit': dispatchers are 'threads', celery://<broker URL>"),
        ("postgresql://host/db", STORE_AS_DISPATCHER.format("postgresql://host/db")),
        ("postgres://rattan:sekrit@host/db", STORE_AS_DISPATCHER.format("postgres://rattan:***@host/db")),
        ("sqlite:///x.db", STORE_AS_DISPATCHER.format("sqlite:///x.db")),
    ],
)
def test_a_url_rattan_cannot_open_as_a_dispatcher_is_refused_saying_what_to_use(url: str, says: str) -> None:
    with pytest.raises(BackendUnavailableError) as caught:
        rattan.Engine(":memory:", dispatcher=url, start=False)
    assert str(caught.value) == says


@pytest.mark.parametrize("hidden", ["psycopg", "psycopg_pool"])
@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_postgresql_store_without_its_driver_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, scheme: str, hidden: str
) -> None:
    """Either module of the extra missing (also after the backend was imported once) is told the
    same way, under both spellings of the scheme."""
    import builtins

    real_import = builtins.__import__

    def without(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == hidden or name.startswith(f"{hidden}."):
            raise ImportError(f"No module named {hidden!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without)
    with pytest.raises(BackendUnavailableError) as caught:
        rattan.Engine(f"{scheme}://host/db", start=False)
    assert str(caught.value) == (
        f"a {scheme} store needs psycopg and psycopg-pool: pip install 'rattan[postgres]'"
    )


def test_an_object_that_is_not_a_dispatcher_is_refused_naming_what_it_lacks() -> None:
    with pytest.raises(BadInputError, match=r"neither a URL nor a Dispatcher \(start, send, send_at"):
        rattan.Engine(":memory:", dispatcher=object(), start=False)  # type: ignore[arg-type]


def test_a_backend_of_another_interface_version_is_refused(tmp_path: Path) -> None:
    class OldStore(SQLiteStore):
        interface_version = (INTERFACE_VERSION[0] - 1, 7)

    store = OldStore(str(tmp_path / "old.db"))
    try:
        with pytest.raises(BackendUnavailableError, match=r"implements runtime interface \(0, 7\)"):
            rattan.Engine(store, start=False)
        settings = rattan.Settings()
        assert open_store(None, settings) is not None  # the default still opens (rattan.db)
    finally:
        store.close()
        Path("rattan.db").unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"rattan.db{suffix}").unlink(missing_ok=True)


# -- several engines on one store, in one process --------------------------------------------------
class Gate(rattan.Service):
    opened = threading.Event()
    executes: list[str] = []
    lock = threading.Lock()

    def execute(self, data: Any, parent_data: Any) -> bool:
        with Gate.lock:
            Gate.executes.append(self.id)
        assert Gate.opened.wait(20), "never opened"
        return True


class Waiter(rattan.Service):
    __need_schedule__ = True
    received: list[Any] = []

    def execute(self, data: Any, parent_data: Any) -> bool:
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        Waiter.received.append(callback_data)
        return True


REG = rattan.Registry("runtime-choice")
for _code, _service in (("rc_gate", Gate), ("rc_wait", Waiter)):
    type(f"C_{_code}", (rattan.Component,), {"code": _code, "name": _code, "bound_service": _service},
         registry=REG)  # fmt: skip


def test_a_second_engine_on_the_store_leaves_the_first_ones_running_work_alone(tmp_path: Path) -> None:
    """Before leases, a second engine's start-up recovery took the first one's execute for one a
    crash interrupted and failed the node ("execution interrupted")."""
    url = f"sqlite:///{tmp_path / 'two.db'}"
    Gate.opened.clear()
    Gate.executes.clear()
    clock = FakeClock()  # both engines sweep when the test moves it
    # 8 workers: every execute runs at once
    first = rattan.Engine(url, components=REG, sweep_seconds=SWEEP, workers=8, clock=clock)
    trees = [one_activity("rc_gate") for _ in range(5)]
    try:
        for tree, _ in trees:
            first.run_pipeline(tree)
        wait_until(lambda: len(Gate.executes) == 5)  # every execute is running in the first engine
        second = rattan.Engine(url, components=REG, sweep_seconds=SWEEP, clock=clock)
        try:
            _sweep(second, clock, 5)  # several of the second engine's sweeps
            Gate.opened.set()
            for tree, _ in trees:
                wait_until(lambda t=tree: first.is_finished(t["id"]))
            states = {act: first.get_state(act).name for _, act in trees}
            assert states == dict.fromkeys(states, "FINISHED")
            assert sorted(Gate.executes) == sorted(act for _, act in trees)  # each ran once
        finally:
            second.close()
    finally:
        Gate.opened.set()
        first.close()


def _sweep(engine: rattan.Engine, clock: FakeClock, n: int) -> None:
    """Move ``clock`` a sweep at a time until ``engine`` has committed ``n`` more sweeps: each one
    renews its stored lease, to the clock's time then + lease_seconds."""
    seen: set[float] = set()

    def one_more() -> bool:
        clock.advance(SWEEP)
        [mine] = [o for o in engine.core.store.read(lambda r: r.owners()) if o.id == engine.core.owner_id]
        seen.add(mine.expires)
        return len(seen) > n  # the first one seen may be from a sweep before the first move

    wait_until(one_more)


def test_a_callback_sent_through_an_engine_that_runs_no_workers_is_applied(tmp_path: Path) -> None:
    """Before leases, it was stored and reported accepted, but applied only when the owning
    process restarted."""
    url = f"sqlite:///{tmp_path / 'cb.db'}"
    Waiter.received.clear()
    runner = rattan.Engine(url, components=REG, sweep_seconds=0.05)
    client = rattan.Engine(url, components=REG, start=False)
    try:
        tree, act = one_activity("rc_wait")
        client.run_pipeline(tree)  # no owner: the runner's sweep claims it
        version = wait_until(
            lambda: (st := runner.get_state_or_none(act)) and st.name == "RUNNING" and st.version
        )
        wait_until(lambda: _has_schedule(runner, act, version))
        cid = client.callback(act, version, {"from": "client"})
        assert isinstance(cid, int)
        wait_until(lambda: runner.is_finished(tree["id"]))
        assert Waiter.received == [{"from": "client"}]
    finally:
        client.close()
        runner.close()


def _has_schedule(engine: rattan.Engine, node_id: str, version: str) -> bool:
    try:
        engine.get_schedule_with_node_and_version(node_id, version)
    except rattan.NotFoundError:
        return False
    return True


def test_archiving_a_run_deletes_its_rollback_rows(tmp_path: Path) -> None:
    path = tmp_path / "rb.db"
    with rattan.Engine(f"sqlite:///{path}", pipeline_enable_rollback=True) as engine:
        tree, _ = one_activity()
        engine.run_pipeline(tree)
        wait_until(lambda: engine.is_finished(tree["id"]))
        root = tree["id"]
        with sqlite3.connect(path) as conn:
            before = {t: _rows(conn, t, root) for t in ("rollback_tokens", "rollback_snapshots")}
        assert before == {"rollback_tokens": 1, "rollback_snapshots": 1}
        assert engine.archive(older_than=-1) == [root]
        with sqlite3.connect(path) as conn:
            tables = ("rollback_tokens", "rollback_snapshots", "rollback_plans", "rollback_jobs", "runs")
            assert {t: _rows(conn, t, root) for t in tables} == dict.fromkeys(tables, 0)


def _rows(conn: sqlite3.Connection, table: str, root: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table} WHERE root_id=?", (root,)).fetchone()[0])
