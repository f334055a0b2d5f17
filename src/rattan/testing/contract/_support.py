"""What the contract suites share: the constants that bound every wait, the records and runs the
store tests write, units of work and reads as plain functions, and the runner of racing threads."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from rattan.context import ContextValueType
from rattan.model.codec import dumps
from rattan.model.messages import Message
from rattan.model.records import (
    CallbackRecord,
    ContextRow,
    EventRecord,
    NewRun,
    OwnerRecord,
    RollbackJob,
    RollbackPlan,
    RollbackSnapshot,
    ScheduleRecord,
    ScheduleType,
    StateRecord,
    TimerRecord,
    TokenRecord,
)
from rattan.model.spill import SPILL_BYTES
from rattan.model.states import TokenStatus
from rattan.runtime.interface import Reads, Store, UnitOfWork

StoreOpener = Callable[[str], Store]
"""Opens a store from a locator string in a child process (see ``StoreContract.open_in_subprocess``)."""

NOW = 1_750_000_000.0  # the time the store tests lease at: fixed, so due times are exact
LEASE = 30.0  # how long a lease in these tests runs
WAIT = 30.0  # the bound of every wait for something that must happen
QUIET = 0.2  # how long a test watches for something that must NOT happen
PAGE = 3  # the event reader's page: small, so pages end inside a unit's events
ROLLBACK_TASK = "rollback.walk"  # the task name the seam claims running rollbacks under
PLAIN = int(ContextValueType.PLAIN)
Work = list[tuple[float, Message]]
Expected = dict[Message, float | None]  # message -> its due time (None: deliverable now)


class _Flag(Protocol):
    """A threading.Event or a multiprocessing Event: the tests run the same loops in both."""

    def is_set(self) -> bool: ...

    def set(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class _Boom(Exception):
    """Raised on purpose by a test's unit of work or handler."""


# -- records ---------------------------------------------------------------------------------------
def _state(node_id: str, root_id: str, name: str = "RUNNING", version: str = "v1") -> StateRecord:
    return StateRecord(node_id, root_id, root_id, name, version, created=NOW, started=NOW)


def _token(
    root_id: str, current: str, *, status: str = TokenStatus.READY, owner: str | None = None,
    executing: str | None = None,
) -> TokenRecord:  # fmt: skip
    """A token to insert (id 0)."""
    return TokenRecord(0, root_id, None, current, None, [root_id], status, executing=executing, owner=owner)


def _nodes(root_id: str) -> list[str]:
    """The nodes of a run built by ``_new_run``: the root, two activities and a subprocess."""
    return [root_id, f"{root_id}-n1", f"{root_id}-n2", f"{root_id}-sub"]


def _new_run(
    root_id: str, nodes: Sequence[str] | None = None, first_status: str = TokenStatus.SLEEP
) -> NewRun:
    """A run as ``run_pipeline`` stores it. ``nodes`` (the root first, the subprocess last) names
    its nodes; its first token is parked by default, so it is no work for ``lease``."""
    ids = list(nodes) if nodes is not None else _nodes(root_id)
    sub = ids[-1]
    return NewRun(
        root_id,
        json.dumps({"id": root_id}).encode(),
        {"who": "contract"},
        {"option": 1},
        NOW,
        ids,
        [root_id, sub],
        [ContextRow(root_id, "${a}", PLAIN, {"v": 1}), ContextRow(sub, "${b}", PLAIN, [1, 2])],
        StateRecord(root_id, root_id, "", "RUNNING", "v0", created=NOW, started=NOW),
        _token(root_id, ids[1], status=first_status),
    )


def _old_run() -> NewRun:
    """The run ``make_old_store`` writes into a store at an older schema version: four nodes, two
    pipelines with a context row each, its root state, and its first token ready with no owner
    (leasing claims it)."""
    return _new_run("r-old", first_status=TokenStatus.READY)


def _owner(owner_id: str, expires: float) -> OwnerRecord:
    return OwnerRecord(owner_id, f"host-{owner_id}", 1000 + sum(map(ord, owner_id)), None, expires)


def _alive(owner: OwnerRecord) -> bool:
    return False


def _lease(
    store: Store, owner: OwnerRecord, now: float, is_dead: Callable[[OwnerRecord], bool] = _alive,
    tasks: Sequence[str] = (),
) -> Work:  # fmt: skip
    return store.unit(lambda tx: tx.lease(owner, now, is_dead, tasks))


# units and reads as functions: partial() binds their arguments where a loop would rebind a lambda's
def _create_run(tx: UnitOfWork, root_id: str) -> int:
    return tx.create_run(_new_run(root_id))


def _delete_runs(tx: UnitOfWork, roots: Sequence[str]) -> None:
    for root in roots:
        tx.delete_run(root)


def _put_state(tx: UnitOfWork, new: StateRecord, expect: StateRecord | None) -> None:
    tx.put_state(new, expect)


def _put_wait(tx: UnitOfWork, wait: ScheduleRecord | CallbackRecord | TimerRecord) -> int:
    return tx.put_wait(wait)


def _events_of(r: Reads, root_id: str) -> list[EventRecord]:
    return r.events(0, root_id, 100_000)


def _fill_run(tx: UnitOfWork, root_id: str) -> list[str]:
    """Store a run with a row in every table a run can reach, the rollback extension's included.
    Returns its node ids."""
    new = _new_run(root_id)
    token_id = tx.create_run(new)
    n1, n2 = new.node_ids[1], new.node_ids[2]
    tx.put_state(_state(n1, root_id), None)
    tx.put_node_data(n1, inputs=b'{"a":1}', outputs=b'{"b":2}')
    tx.put_node_data(n1, history=_state(n1, root_id), override={"a": 3}, logs=("v1", ["a line"]))
    # a large value, written where a store may keep it apart (stored once: rattan.model.spill)
    big = _big(root_id)
    tx.put_node_data(n2, inputs=dumps({"big": big}), outputs=dumps({"big": big, "n": 1}))
    tx.put_context([ContextRow(root_id, "${big}", int(ContextValueType.PLAIN), big)])
    tx.put_wait(ScheduleRecord(0, n1, "v1", ScheduleType.POLL, token_id, due=NOW + 5))
    tx.put_wait(CallbackRecord(0, n1, "v1", {"ok": True}, idem_key="key", created=NOW))
    tx.put_wait(TimerRecord(0, "node_timeout", n1, "v1", NOW + 60, {"why": "contract"}))
    tx.append_events(root_id, [["node_started", n1], ["custom", n1, {"x": 1}]], NOW)
    rows = tx.rollback
    rows.put_tokens(root_id, {n1: "token-1"})
    rows.add_snapshot(RollbackSnapshot(0, root_id, n1, "code", "1.0", "v1", 1, 1, {"a": 1}, {"b": 2}, None))
    rows.put_plan(RollbackPlan(0, root_id, n2, n1, "ANY", {"why": "contract"}))
    rows.put_job(RollbackJob(root_id, n2, n1, "ANY", token_id, [n2, n1], [n1], [], "running"))
    return new.node_ids


def _big(root_id: str) -> str:
    """A value above the spill size, different for each run."""
    return root_id + "-" + "v" * SPILL_BYTES


def _run_view(r: Reads, root_id: str, nodes: Sequence[str]) -> tuple[Any, ...]:
    """Everything a reader can see of a run, comparable with ==."""
    return (
        r.run(root_id),
        r.roots_of(nodes),
        sorted(r.states(root_id=root_id), key=lambda s: s.node_id),  # created at one time: no order
        r.tokens(root_id=root_id),
        [r.context(node) for node in nodes],
        [r.node_data(node) for node in nodes],
        r.events(0, root_id, 1000),
    )


# -- the event cursor ------------------------------------------------------------------------------
def _event_entries(root_id: str, unit: int) -> list[list[Any]]:
    """What unit ``unit`` of a writer appends: one to three events, each naming itself."""
    return [["contract", f"{root_id}-n1", {"unit": unit, "i": i}] for i in range(1 + unit % 3)]


def _event_keys(root_id: str, units: int) -> list[tuple[str, int, int]]:
    return [(root_id, e[2]["unit"], e[2]["i"]) for k in range(units) for e in _event_entries(root_id, k)]


def _appender(root_id: str, unit: int) -> Callable[[UnitOfWork], None]:
    return lambda tx: tx.append_events(root_id, _event_entries(root_id, unit), NOW + unit)


def _append_units(store: Store, root_id: str, units: int) -> None:
    """Append the events of ``units`` units, one unit of work each."""
    for unit in range(units):
        store.unit(_appender(root_id, unit))


def _run_threads(targets: Sequence[Callable[[], None]]) -> None:
    """Run each target in a thread of its own, all starting at once; re-raise the first failure."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(targets))

    def run(target: Callable[[], None]) -> None:
        try:
            start.wait(WAIT)
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads), f"a thread did not finish within {WAIT} s"
    if errors:
        raise errors[0]
