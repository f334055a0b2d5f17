"""The child processes the cross-process tests race against each other, and the lease loop they
(and the threads of the in-process race) run.

A child is spawned: its target is found again by module path, so every target here is a
module-level function of this module, ``rattan.testing.contract._children``."""

from __future__ import annotations

import json
import multiprocessing
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rattan.model.messages import encode
from rattan.model.records import OwnerRecord
from rattan.runtime.interface import Store
from rattan.testing.contract._support import (
    NOW,
    WAIT,
    StoreOpener,
    Work,
    _append_units,
    _Flag,
    _lease,
    _owner,
    _state,
)


def _lease_until(store: Store, owner: OwnerRecord, stop: _Flag) -> Work:
    """Lease in a loop until ``stop`` is set, then once more; every claim is kept."""
    got: Work = []
    deadline = time.monotonic() + WAIT
    while True:
        # read before the lease: once set, everything the producer stored is seen by this lease
        last = stop.is_set()
        got += _lease(store, owner, NOW)
        if last:
            return got
        assert time.monotonic() < deadline, f"no stop within {WAIT} s"
        stop.wait(0.002)  # a breath between leases: the producer needs the write lock too


def _in_child(out: str, body: Callable[[], Any]) -> None:
    """Run a child's work; its result (JSON) goes to ``out``, a failure's traceback to
    ``out.error`` for the parent to show."""
    try:
        result = body()
    except BaseException:
        Path(out + ".error").write_text(traceback.format_exc())
        raise
    Path(out).write_text(json.dumps(result))


def _child_lease(
    opener: StoreOpener, locator: str, owner_id: str, ready: _Flag, go: _Flag, stop: _Flag, out: str
) -> None:
    def body() -> list[Any]:
        store = opener(locator)
        try:
            ready.set()
            assert go.wait(WAIT), "no go from the parent"
            got = _lease_until(store, _owner(owner_id, NOW + 3600), stop)
        finally:
            store.close()
        return [[when, encode(msg)] for when, msg in got]

    _in_child(out, body)


def _child_append(
    opener: StoreOpener, locator: str, root_id: str, units: int, ready: _Flag, go: _Flag, stop: _Flag,
    out: str,
) -> None:  # fmt: skip
    def body() -> int:
        store = opener(locator)
        try:
            ready.set()
            assert go.wait(WAIT), "no go from the parent"
            _append_units(store, root_id, units)
        finally:
            store.close()
        return units

    _in_child(out, body)


def _child_open(
    opener: StoreOpener, locator: str, node_id: str, ready: _Flag, go: _Flag, stop: _Flag, out: str
) -> None:
    def body() -> int:
        ready.set()
        assert go.wait(WAIT), "no go from the parent"
        store = opener(locator)  # every child opens the fresh location at the same moment
        try:
            version = store.migrate()
            store.unit(lambda tx: tx.put_state(_state(node_id, "fresh"), None))
        finally:
            store.close()
        return version

    _in_child(out, body)


class _Children:
    """Child processes (spawned: no state of this process leaks in) that wait for one go.
    Leaving the ``with`` block kills those still running."""

    def __init__(self, tmp_path: Path) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._dir = tmp_path
        self.go = self._ctx.Event()
        self.stop = self._ctx.Event()
        self._procs: list[tuple[Any, _Flag, str]] = []

    def start(self, target: Callable[..., None], *args: Any) -> None:
        ready = self._ctx.Event()
        out = str(self._dir / f"child-{len(self._procs)}.json")
        proc = self._ctx.Process(target=target, args=(*args, ready, self.go, self.stop, out), daemon=True)
        proc.start()
        self._procs.append((proc, ready, out))

    def wait_ready(self) -> None:
        for proc, ready, out in self._procs:
            if not ready.wait(WAIT):
                raise AssertionError(f"child {proc.pid} not ready within {WAIT} s: {self._error(out)}")

    def running(self) -> bool:
        return any(proc.is_alive() for proc, _, _ in self._procs)

    def results(self) -> list[Any]:
        """Wait for every child to end and return what each wrote; a failed child fails the test."""
        out: list[Any] = []
        deadline = time.monotonic() + WAIT
        for proc, _, path in self._procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            assert proc.exitcode == 0, f"child {proc.pid} ended with {proc.exitcode}: {self._error(path)}"
            out.append(json.loads(Path(path).read_text()))
        return out

    @staticmethod
    def _error(out: str) -> str:
        path = Path(out + ".error")
        return path.read_text() if path.exists() else "(no traceback)"

    def __enter__(self) -> _Children:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc, _, _ in self._procs:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
