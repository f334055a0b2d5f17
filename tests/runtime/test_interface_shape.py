"""The seam stays small and versioned: its Protocols and their members are pinned here, so a new
method is a decision (and a version bump for backends), not an accident."""

from __future__ import annotations

import inspect

from rattan.runtime import interface
from rattan.runtime.interface import INTERFACE_VERSION

EXPECTED = {
    "Store": {"unit", "read", "migrate", "waiting", "close"},
    "Reads": {
        "run", "roots_of", "runs", "states", "tokens", "node_data", "context", "waits", "histories",
        "logs", "events", "owners", "due_work", "rollback",
    },
    "UnitOfWork": {
        "create_run", "delete_run", "put_state", "put_token", "put_node_data", "put_context", "put_wait",
        "take_timer", "append_events", "savepoint", "lease",
    },
    "Dispatcher": {"pending", "start", "send", "send_at", "stop", "wait_idle"},
    "Clock": {"now", "sleep_until"},
    "RollbackRows": {
        "put_tokens", "tokens", "add_snapshot", "snapshots", "snapshot_done", "put_plan", "plans",
        "expire_plans", "put_job", "job", "clean_nodes",
    },
}  # fmt: skip


def own_members(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_") and callable(getattr(cls, name, None))} | {
        name for name, value in vars(cls).items() if isinstance(value, property)
    }


def test_the_protocols_have_exactly_their_documented_members() -> None:
    found = {name: own_members(getattr(interface, name)) for name in EXPECTED}
    assert found == EXPECTED


def test_the_engine_seam_has_36_methods_and_two_properties() -> None:
    core = [n for n in EXPECTED if n != "RollbackRows"]
    methods = sum(
        1
        for n in core
        for m in EXPECTED[n]
        if not isinstance(inspect.getattr_static(getattr(interface, n), m), property)
    )
    properties = sum(
        1
        for n in core
        for m in EXPECTED[n]
        if isinstance(inspect.getattr_static(getattr(interface, n), m), property)
    )
    assert (methods, properties) == (36, 2)


def test_the_interface_carries_a_version() -> None:
    assert INTERFACE_VERSION == (1, 2)
