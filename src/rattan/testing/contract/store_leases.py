"""Store tests of leases: how work is claimed, taken over from a dead or lapsed owner, and split
between stores (threads) and processes leasing at once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from rattan.model.messages import Advance, Callback, FireTimer, Poll, Recover, Task, decode
from rattan.model.records import (
    CALLBACK_APPLIED,
    CallbackRecord,
    DueWork,
    OwnerRecord,
    RollbackJob,
    ScheduleRecord,
    ScheduleType,
    TimerRecord,
    TokenRecord,
)
from rattan.model.states import TokenStatus
from rattan.runtime.interface import CallbackQuery, Reads, ScheduleQuery, Store, UnitOfWork
from rattan.testing.contract._children import _child_lease, _Children, _lease_until
from rattan.testing.contract._store_base import StoreBase
from rattan.testing.contract._support import (
    LEASE,
    NOW,
    ROLLBACK_TASK,
    WAIT,
    Expected,
    Work,
    _lease,
    _new_run,
    _owner,
    _run_threads,
    _token,
)


def _store_work(tx: UnitOfWork, root_id: str, tag: str, n: int, owner: str | None) -> Expected:
    """``n`` items of each kind of leasable work owned by ``owner``, and next to each the rows that
    are no work (a parked token, a schedule waiting for a callback, a finished schedule). Returns
    the messages a claim of that work must give."""
    expected: Expected = {}
    for i in range(n):
        node = f"{root_id}-{tag}-{i}"
        token_id = tx.put_token(_token(root_id, node, owner=owner))
        expected[Advance(token_id)] = None
        expected[Recover(tx.put_token(_token(root_id, node, owner=owner, executing="v1")))] = None
        tx.put_token(_token(root_id, node, status=TokenStatus.SLEEP, owner=owner))
        due = NOW + 10 + i
        poll = ScheduleRecord(0, node, "poll", ScheduleType.POLL, token_id, due=due, owner=owner)
        expected[Poll(tx.put_wait(poll))] = due
        tx.put_wait(ScheduleRecord(0, node, "callback", ScheduleType.CALLBACK, token_id, owner=owner))
        done = ScheduleRecord(
            0, node, "done", ScheduleType.POLL, token_id, finished=True, due=due, owner=owner
        )
        tx.put_wait(done)
        fire = NOW + 20 + i
        expected[
            FireTimer(tx.put_wait(TimerRecord(0, "node_timeout", node, "v1", fire, {"i": i}, owner)))
        ] = fire
    return expected


def _unclaimed(r: Reads) -> int:
    return sum(t.owner is None for t in r.tokens(root_id="r1", statuses=[TokenStatus.READY]))


def _produce_batches(producer: Store, batches: int = 10) -> Expected:
    """Store batches of free work for the leasers racing on run r1, each once the one before is
    claimed: every batch is a race of its own (stored at once, the first claimer to get in would
    take them all)."""
    expected: Expected = {}
    for batch in range(batches):
        expected |= producer.unit(partial(_store_work, root_id="r1", tag=f"b{batch}", n=3, owner=None))
        deadline = time.monotonic() + WAIT
        while producer.read(_unclaimed):
            assert time.monotonic() < deadline, f"batch {batch} was not claimed within {WAIT} s"
            time.sleep(0.001)  # a bounded poll: the claim happens in another thread or process
    return expected


def _assert_work(got: Work, expected: Expected, now: float, claimers: tuple[str, ...] = ("A", "B")) -> None:
    """``got`` holds each expected message once, nothing else, each at its due time; a Recover
    names the engine that claimed it (``Recover.owner``: interface 1.1)."""
    for _, msg in got:
        if isinstance(msg, Recover):
            assert msg.owner in claimers, f"{msg} does not name its claimer (one of {claimers})"
    got = [(when, Recover(msg.token_id) if isinstance(msg, Recover) else msg) for when, msg in got]
    messages = [msg for _, msg in got]
    twice = [msg for msg, n in Counter(messages).items() if n > 1]
    assert not twice, f"handed out more than once: {twice}"
    missing = [msg for msg in expected if msg not in set(messages)]
    unexpected = [msg for msg in messages if msg not in expected]
    assert not missing and not unexpected, f"missing {missing}; not expected {unexpected}"
    for when, msg in got:
        due = expected[msg]
        if due is None:
            assert when <= now, f"{msg} is due at {when}, after now ({now})"
        else:
            assert when == due, f"{msg} is due at {when}, not at its stored due time {due}"


class StoreLeases(StoreBase):
    def test_owners_and_due_work_are_read_without_claiming_anything(self, tmp_path: Path) -> None:
        """Interface 1.2: operators read the owners and count pending work; neither read takes or
        changes a row (a lease afterwards still hands every item out)."""
        store = self._open(tmp_path)
        assert store.read(lambda r: r.owners()) == []
        assert store.read(lambda r: r.due_work(NOW)) == DueWork()
        assert _lease(store, _owner("B", NOW + 1000), NOW) == []
        assert _lease(store, _owner("A", NOW + 50), NOW) == []
        store.unit(lambda tx: tx.create_run(_new_run("r1")))
        expected = store.unit(lambda tx: _store_work(tx, "r1", "w", 2, "A"))
        store.unit(lambda tx: tx.put_wait(CallbackRecord(0, "r1-w-0", "callback", {"n": 1}, created=NOW)))
        owners = store.read(lambda r: r.owners())
        assert [(o.id, o.expires) for o in owners] == [("A", NOW + 50), ("B", NOW + 1000)]
        # every kind: 2 ready tokens, 2 executing, polls due at NOW+10/11, timers at NOW+20/21
        assert store.read(lambda r: r.due_work(NOW)) == DueWork(2, 2, 0, 0, 1)
        assert store.read(lambda r: r.due_work(NOW + 10)) == DueWork(2, 2, 1, 0, 1)
        assert store.read(lambda r: r.due_work(NOW + 30)) == DueWork(2, 2, 2, 2, 1)
        # nothing was claimed by reading: A's work goes to B once A's lease runs out
        got = _lease(store, _owner("B", NOW + 1000), NOW + 100)
        assert {m for _, m in got if not isinstance(m, Callback)} >= {
            m for m in expected if not isinstance(m, Recover)
        }

    """The leasing of work: each piece handed out once, and only ever to its owner while it lives."""

    # -- leases --------------------------------------------------------------------------------
    def test_lease_hands_out_work_with_no_owner_once(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        store.unit(lambda tx: tx.create_run(_new_run("r1")))
        expected = store.unit(lambda tx: _store_work(tx, "r1", "w", 2, None))
        _assert_work(_lease(store, _owner("A", NOW + LEASE), NOW), expected, NOW)
        assert _lease(store, _owner("B", NOW + LEASE), NOW) == []
        assert _lease(store, _owner("A", NOW + LEASE), NOW) == []  # not even to its claimer again
        # what was claimed is the claimer's now
        tokens = store.read(lambda r: r.tokens(root_id="r1", statuses=[TokenStatus.READY]))
        assert tokens and {t.owner for t in tokens} == {"A"}

    def test_lease_hands_running_rollbacks_only_to_callers_that_run_the_walk_task(
        self, tmp_path: Path
    ) -> None:
        store = self._open(tmp_path)

        def jobs(tx: UnitOfWork) -> None:
            for root, status in (("r1", "running"), ("r2", "failed"), ("r3", "done")):
                tx.create_run(_new_run(root))
                tx.rollback.put_job(
                    RollbackJob(root, f"{root}-n2", f"{root}-n1", "ANY", 1, [], [], [], status)
                )

        store.unit(jobs)
        assert _lease(store, _owner("A", NOW + LEASE), NOW) == []
        got = _lease(store, _owner("B", NOW + LEASE), NOW, tasks=[ROLLBACK_TASK])
        assert [msg for _, msg in got] == [Task(ROLLBACK_TASK, {"root_id": "r1"})]
        assert got[0][0] <= NOW
        assert _lease(store, _owner("C", NOW + LEASE), NOW, tasks=[ROLLBACK_TASK]) == []

    def test_lease_takes_over_the_work_of_an_owner_whose_lease_ran_out(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        assert _lease(store, _owner("A", NOW + LEASE), NOW) == []
        store.unit(lambda tx: tx.create_run(_new_run("r1")))
        expected = store.unit(lambda tx: _store_work(tx, "r1", "w", 2, "A"))

        def waiting_callbacks(tx: UnitOfWork) -> Expected:
            sched = ScheduleRecord(0, "r1-cb", "v1", ScheduleType.CALLBACK, 1, owner="A")
            tx.put_wait(sched)
            pending = CallbackRecord(0, "r1-cb", "v1", {"n": 1}, created=NOW)
            applied = CallbackRecord(0, "r1-cb", "v1", {"n": 2}, applied=CALLBACK_APPLIED, created=NOW)
            tx.put_wait(pending)
            tx.put_wait(applied)
            return {Callback(pending.id): None}

        expected |= store.unit(waiting_callbacks)
        later = NOW + LEASE + 1  # A's lease ran out
        assert _lease(store, _owner("B", later + LEASE), NOW + LEASE - 1) == []  # not yet
        _assert_work(_lease(store, _owner("B", later + LEASE), later), expected, later)
        tokens = store.read(lambda r: r.tokens(root_id="r1", statuses=[TokenStatus.READY]))
        assert {t.owner for t in tokens} == {"B"}
        live = store.read(lambda r: r.waits(ScheduleQuery(node_id="r1-w-0", pending=True)))
        assert {s.owner for s in live} == {"B"}
        # B is alive: nothing of it goes to a third owner
        assert _lease(store, _owner("C", later + LEASE), later) == []

    def test_lease_takes_over_an_owner_that_is_dead_before_its_lease_runs_out(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        a = _owner("A", NOW + 1000)
        assert _lease(store, a, NOW) == []
        store.unit(lambda tx: tx.create_run(_new_run("r1")))
        expected = store.unit(lambda tx: _store_work(tx, "r1", "w", 1, "A"))
        asked: list[OwnerRecord] = []

        def is_dead(owner: OwnerRecord) -> bool:
            asked.append(owner)
            return owner.id == "A"

        _assert_work(_lease(store, _owner("B", NOW + LEASE), NOW, is_dead), expected, NOW)
        # is_dead is given the owner as it registered itself
        assert [(o.id, o.host, o.pid) for o in asked if o.id == "A"][:1] == [(a.id, a.host, a.pid)]

    def test_lease_never_hands_a_live_owners_work_to_another(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        assert _lease(store, _owner("A", NOW + 1000), NOW) == []
        store.unit(lambda tx: tx.create_run(_new_run("r1")))
        expected = store.unit(lambda tx: _store_work(tx, "r1", "w", 1, "A"))
        for now in (NOW, NOW + 500, NOW + 1000):  # up to the last moment of A's lease
            assert _lease(store, _owner("B", now + LEASE), now) == []
        # A renews its lease: still its own
        assert _lease(store, _owner("A", NOW + 2000), NOW + 1000) == []
        assert _lease(store, _owner("B", NOW + 1100 + LEASE), NOW + 1100) == []
        later = NOW + 2001
        _assert_work(_lease(store, _owner("B", later + LEASE), later), expected, later)

    def test_an_owner_that_gives_its_lease_up_has_its_work_taken_at_once(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        assert _lease(store, _owner("A", NOW + 1000), NOW) == []
        store.unit(lambda tx: tx.create_run(_new_run("r1")))
        expected = store.unit(lambda tx: _store_work(tx, "r1", "w", 1, "A"))
        assert _lease(store, _owner("A", 0), NOW) == []
        _assert_work(_lease(store, _owner("B", NOW + LEASE), NOW + 1), expected, NOW + 1)

    def test_lease_returns_the_pending_callbacks_of_schedules_the_caller_owns(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        assert _lease(store, _owner("A", NOW + 1000), NOW) == []
        assert _lease(store, _owner("B", NOW + 1000), NOW) == []

        def waits(tx: UnitOfWork) -> tuple[int, int, int]:
            for node, owner in (("mine", "B"), ("theirs", "A")):
                tx.put_wait(ScheduleRecord(0, node, "v1", ScheduleType.MULTIPLE_CALLBACK, 1, owner=owner))
            pending = tx.put_wait(CallbackRecord(0, "mine", "v1", {"n": 1}, created=NOW))
            tx.put_wait(CallbackRecord(0, "mine", "v1", {"n": 2}, applied=CALLBACK_APPLIED, created=NOW))
            second = tx.put_wait(CallbackRecord(0, "mine", "v1", {"n": 3}, created=NOW))
            tx.put_wait(CallbackRecord(0, "theirs", "v1", {"n": 4}, created=NOW))
            return pending, second, 0

        pending, second, _ = store.unit(waits)
        for _ in range(2):  # while they wait to be applied, every lease of B names them, in order
            got = _lease(store, _owner("B", NOW + 1000), NOW + 1)
            assert [msg for _, msg in got] == [Callback(pending), Callback(second)]
            assert all(when <= NOW + 1 for when, _ in got)
        [applied] = store.read(lambda r: r.waits(CallbackQuery(id=pending)))
        applied.applied = CALLBACK_APPLIED
        store.unit(lambda tx: tx.put_wait(applied))
        assert [msg for _, msg in _lease(store, _owner("B", NOW + 1000), NOW + 2)] == [Callback(second)]

    def test_a_leases_claims_are_seen_by_later_units_of_the_same_store(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        other = self._open(tmp_path)
        assert _lease(store, _owner("A", NOW + LEASE), NOW) == []

        def parked(tx: UnitOfWork) -> tuple[int, int]:
            # rows of A that are no work yet: a lease may move them without handing anything out
            token_id = tx.put_token(_token("r1", "r1-n1", status=TokenStatus.SLEEP, owner="A"))
            sched = ScheduleRecord(0, "r1-n1", "v1", ScheduleType.CALLBACK, token_id, owner="A")
            return token_id, tx.put_wait(sched)

        token_id, sched_id = store.unit(parked)

        def look(r: Reads) -> tuple[list[TokenRecord], list[ScheduleRecord]]:
            return r.tokens([token_id]), r.waits(ScheduleQuery(id=sched_id))

        assert _lease(store, _owner("B", NOW + 2 * LEASE), NOW + LEASE + 1) == []
        committed = other.read(look)
        assert store.unit(look) == committed  # a unit of the store that leased reads what is stored

        def write_back(tx: UnitOfWork) -> None:
            [token], [sched] = look(tx)
            tx.put_token(token)  # the rev it read is the stored one: no conflict
            tx.put_wait(sched)

        store.unit(write_back)
        [token], [sched] = other.read(look)
        assert (token.owner, sched.owner) == (committed[0][0].owner, committed[1][0].owner)

    @pytest.mark.timeout(60)
    def test_two_stores_leasing_at_once_split_the_work_without_overlap(self, tmp_path: Path) -> None:
        producer = self._open(tmp_path)
        leasers = {"A": self._open(tmp_path), "B": self._open(tmp_path)}
        producer.unit(lambda tx: tx.create_run(_new_run("r1")))
        stop = threading.Event()
        got: dict[str, Work] = {}

        def leaser(owner_id: str) -> Callable[[], None]:
            def run() -> None:
                got[owner_id] = _lease_until(leasers[owner_id], _owner(owner_id, NOW + 3600), stop)

            return run

        def produce() -> None:
            try:
                expected.update(_produce_batches(producer))
            finally:
                stop.set()

        expected: Expected = {}
        _run_threads([leaser("A"), leaser("B"), produce])
        _assert_work(got["A"] + got["B"], expected, NOW)
        assert not {m for _, m in got["A"]} & {m for _, m in got["B"]}

    @pytest.mark.timeout(60)
    def test_two_processes_leasing_at_once_split_the_work_without_overlap(self, tmp_path: Path) -> None:
        locator, opener = self._subprocess_opener(tmp_path)
        producer = self._open(tmp_path)
        producer.unit(lambda tx: tx.create_run(_new_run("r1")))
        expected: Expected = {}
        with _Children(tmp_path) as children:
            for owner_id in ("A", "B"):
                children.start(_child_lease, opener, locator, owner_id)
            children.wait_ready()
            children.go.set()
            try:
                expected |= _produce_batches(producer)
            finally:
                children.stop.set()
            got = [[(when, decode(msg)) for when, msg in result] for result in children.results()]
        _assert_work(got[0] + got[1], expected, NOW)
        assert not {m for _, m in got[0]} & {m for _, m in got[1]}
