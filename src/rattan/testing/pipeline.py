"""Assertions and helpers for whole-pipeline tests: run a tree and wait, move a ``FakeClock``, and
compare states, outputs, histories and events with exact, readable failures.

They work on any ``rattan.Engine``; the pytest plugin (``rattan.testing.plugin``) gives tests an
``engine`` fixture to use them on, for example:

    def test_doubles(engine):
        tree = build_tree(...)
        run_and_wait(engine, tree)
        assert_states(engine, tree["id"], {tree["id"]: "FINISHED", act.id: "FINISHED"})
        assert_outputs(engine, act.id, {"result": 4})

Each ``assert_*`` raises ``AssertionError`` naming what differs (key by key for dicts) and returns
what it read, for further checks.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rattan.errors import BadInputError
from rattan.testing.clock import FakeClock
from rattan.testing.diff import describe_difference

if TYPE_CHECKING:
    from rattan.facade import Engine

__all__ = [
    "SYSTEM_OUTPUT_KEYS",
    "advance",
    "assert_events",
    "assert_histories",
    "assert_outputs",
    "assert_states",
    "flat_states",
    "run_and_wait",
    "wait_state",
]

#: Keys the engine writes into every node's outputs; ``assert_outputs`` ignores them unless listed.
SYSTEM_OUTPUT_KEYS = frozenset({"_result", "_loop", "_inner_loop"})
DEFAULT_TIMEOUT = 10.0  # seconds of real time a helper waits before failing


def run_and_wait(
    engine: Engine, tree: dict[str, Any], timeout: float = DEFAULT_TIMEOUT, **options: Any
) -> dict[str, Any]:
    """Start ``tree`` (``options`` go to ``engine.run_pipeline``, e.g. ``root_pipeline_data``)
    and wait until it finishes or stops on failed nodes; return ``engine.wait_pipeline``'s answer
    (``state``, ``finished``, ``failed_nodes``, ``waiting``)."""
    engine.run_pipeline(tree, **options)
    return engine.wait_pipeline(tree["id"], timeout)


def advance(engine: Engine, seconds: float, timeout: float = DEFAULT_TIMEOUT) -> float:
    """Move the engine's ``FakeClock`` forward and wait until the work that came due is done
    (timers, polls, timeouts); return the clock's new time.

    Raises:
        BadInputError: the engine does not run on a ``FakeClock``.
    """
    clock = engine.clock
    if not isinstance(clock, FakeClock):
        raise BadInputError(
            f"advance() needs an engine built with clock=FakeClock(), this one runs on {clock!r}"
        )
    engine.wait_idle(timeout)  # work still running arms its timers against the old time first
    now = clock.advance(seconds)
    # the timer thread hands what came due to the workers: wait until it has taken all of it
    pending = getattr(engine.dispatcher, "pending_timers", None)
    deadline = time.monotonic() + timeout
    while pending is not None and any(due <= now for due, _ in pending()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timers due at {now} were not taken within {timeout}s")
        time.sleep(0.002)
    time.sleep(0.002)  # the timer thread pops a due timer a moment before it sends it to a worker
    engine.wait_idle(timeout)
    return now


def flat_states(engine: Engine, root_id: str) -> dict[str, str]:
    """Node id -> state name for the pipeline ``root_id`` itself and every node under it
    (subprocesses included)."""
    found = engine.get_pipeline_states(root_id, flat_children=True)
    out: dict[str, str] = {}

    def walk(nodes: Mapping[str, Any]) -> None:
        for node_id, state in nodes.items():
            out[node_id] = state["state"]
            walk(state.get("children") or {})

    walk(found)
    return out


def assert_states(
    engine: Engine, root_id: str, expected: Mapping[str, str], *, exact: bool = False
) -> dict[str, str]:
    """Assert the state of each listed node (node id -> ``"FINISHED"``, ``"FAILED"``, ...; the
    root's id may be listed too). With ``exact``, every node that has a state must be listed.
    Returns every node's state."""
    __tracebackhide__ = True  # pytest shows the test's line, not this helper's
    actual = flat_states(engine, root_id)
    seen = {node_id: actual[node_id] for node_id in expected if node_id in actual}
    if exact:
        seen = actual
    if seen != dict(expected):
        diff = describe_difference(dict(expected), seen)
        raise AssertionError(
            f"states of pipeline {root_id} differ (a missing key is a node without a state)\n{diff}"
        )
    return actual


def assert_outputs(
    engine: Engine, node_id: str, expected: Mapping[str, Any], *, ignore: Iterable[str] = SYSTEM_OUTPUT_KEYS
) -> dict[str, Any]:
    """Assert a node's outputs exactly, leaving out the ``ignore`` keys (by default the engine's
    ``_result``, ``_loop`` and ``_inner_loop``) unless ``expected`` lists them. Returns all outputs."""
    __tracebackhide__ = True  # pytest shows the test's line, not this helper's
    outputs = engine.get_execution_data_outputs(node_id)
    skip = set(ignore) - set(expected)
    actual = {key: value for key, value in outputs.items() if key not in skip}
    if actual != dict(expected):
        raise AssertionError(
            f"outputs of node {node_id} differ\n{describe_difference(dict(expected), actual)}"
        )
    return outputs


def assert_histories(
    engine: Engine, node_id: str, expected: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Assert a node's histories (one per earlier pass: retried, skipped, rolled back...), oldest
    first. Each expected entry lists only the fields it checks, e.g. ``{"retry": 0, "skip":
    False}`` or ``{"outputs": {...}}``; the number of entries must match. Returns the histories."""
    __tracebackhide__ = True  # pytest shows the test's line, not this helper's
    histories = engine.get_node_histories(node_id)
    actual = [
        {key: history.get(key) for key in want} for history, want in zip(histories, expected, strict=False)
    ]
    if len(histories) != len(expected) or actual != [dict(want) for want in expected]:
        diff = describe_difference([dict(want) for want in expected], actual)
        raise AssertionError(
            f"histories of node {node_id} differ: expected {len(expected)}, found {len(histories)}\n{diff}"
        )
    return histories


def assert_events(
    engine: Engine,
    root_id: str,
    expected: Sequence[str],
    *,
    node_id: str | None = None,
    types: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """Assert the ordered event types of the durable event log of pipeline ``root_id``, keeping only
    the events of ``node_id`` and of the ``types`` given (both optional). Returns those events."""
    __tracebackhide__ = True  # pytest shows the test's line, not this helper's
    wanted = set(types) if types is not None else None
    events = [
        event
        for event in engine.events(root_id, limit=100_000)
        if (node_id is None or event["node_id"] == node_id)
        and (wanted is None or event["event_type"] in wanted)
    ]
    actual = [event["event_type"] for event in events]
    if actual != list(expected):
        raise AssertionError(
            f"events of pipeline {root_id} differ\n{describe_difference(list(expected), actual)}"
        )
    return events


def wait_state(engine: Engine, node_id: str, state: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Wait (real time, bounded) until ``node_id`` is in ``state``, e.g. RUNNING on its first poll.

    Raises:
        AssertionError: it was not within ``timeout`` seconds (the message says where it was).
    """
    deadline = time.monotonic() + timeout
    current = None
    while time.monotonic() < deadline:
        found = engine.get_state_or_none(node_id)
        current = found.name if found is not None else None
        if current == state:
            return
        time.sleep(0.005)
    raise AssertionError(f"node {node_id} did not reach {state} within {timeout}s (it is {current})")
