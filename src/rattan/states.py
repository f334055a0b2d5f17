"""State names and the transition table (SPEC 6.1, 6.2), enforced before every state write."""

from __future__ import annotations

from enum import StrEnum

from rattan.errors import InvalidOperationError


class StateType(StrEnum):
    CREATED = "CREATED"
    READY = "READY"
    LOOP_READY = "LOOP_READY"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    BLOCKED = "BLOCKED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    REVOKED = "REVOKED"
    ROLLING_BACK = "ROLLING_BACK"
    ROLL_BACK_SUCCESS = "ROLL_BACK_SUCCESS"
    ROLL_BACK_FAILED = "ROLL_BACK_FAILED"


CREATED = StateType.CREATED.value
READY = StateType.READY.value
LOOP_READY = StateType.LOOP_READY.value
RUNNING = StateType.RUNNING.value
SUSPENDED = StateType.SUSPENDED.value
BLOCKED = StateType.BLOCKED.value
FINISHED = StateType.FINISHED.value
FAILED = StateType.FAILED.value
REVOKED = StateType.REVOKED.value
ROLLING_BACK = StateType.ROLLING_BACK.value
ROLL_BACK_SUCCESS = StateType.ROLL_BACK_SUCCESS.value
ROLL_BACK_FAILED = StateType.ROLL_BACK_FAILED.value

# The peer's value, kept: it lacks CREATED, LOOP_READY and the two ROLL_BACK_* states.
ALL_STATES = frozenset({READY, RUNNING, SUSPENDED, BLOCKED, FINISHED, FAILED, REVOKED, ROLLING_BACK})
ARCHIVED_STATES = frozenset({FINISHED, FAILED, REVOKED})
SLEEP_STATES = frozenset({SUSPENDED, REVOKED})
CHILDREN_IGNORE_STATES = frozenset({BLOCKED})

TRANSITION: dict[str, frozenset[str]] = {
    READY: frozenset({RUNNING, SUSPENDED}),
    LOOP_READY: frozenset({RUNNING, SUSPENDED}),
    RUNNING: frozenset({FINISHED, FAILED, REVOKED, SUSPENDED, ROLLING_BACK}),
    SUSPENDED: frozenset({READY, REVOKED, RUNNING, ROLLING_BACK}),
    FINISHED: frozenset({RUNNING, FAILED, ROLLING_BACK}),
    FAILED: frozenset({READY, FINISHED, LOOP_READY}),
    ROLLING_BACK: frozenset({ROLL_BACK_SUCCESS, ROLL_BACK_FAILED}),
    ROLL_BACK_SUCCESS: frozenset({READY, FINISHED}),
    ROLL_BACK_FAILED: frozenset({READY, FINISHED, ROLLING_BACK}),
    BLOCKED: frozenset(),
    REVOKED: frozenset(),
    CREATED: frozenset(),
}

INVERTED_TRANSITION: dict[str, frozenset[str]] = {RUNNING: frozenset({READY, FINISHED, LOOP_READY})}


def can_transit(from_state: str | None, to_state: str) -> bool:
    """True when ``from_state -> to_state`` is allowed (no state yet: anything goes)."""
    if from_state is None:
        return True
    allowed = TRANSITION.get(from_state)
    return allowed is not None and to_state in allowed


def check_transition(node_id: str, from_state: str | None, to_state: str) -> None:
    if not can_transit(from_state, to_state):
        raise InvalidOperationError(
            f"node {node_id}: state transition {from_state} -> {to_state} is not allowed"
        )
