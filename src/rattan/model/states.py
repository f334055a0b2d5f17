"""State names and the transition tables of nodes and of execution tokens, enforced
before every write."""

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

# bamboo-engine's value, kept: it lacks CREATED, LOOP_READY and the two ROLL_BACK_* states.
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


class TokenStatus(StrEnum):
    """Where an execution token (a ``processes`` row) stands. A token is what walks the graph; its
    node's state says how that node is doing, the token's status says what the engine must do
    with the token next."""

    READY = "ready"  # needs a worker to advance it from ``current``
    SLEEP = "sleep"  # waiting on a schedule (poll / callback) at ``current``
    FAILED = "failed"  # parked on a failed node, waiting for an operator (or a failure policy)
    SUSPENDED = "suspended"  # parked because a pipeline on its stack (or the node) is paused
    WAITING = "waiting"  # a parent waiting for its forked children
    DONE = "done"  # finished for good (its pipeline ended, was revoked, or it reached its join)


_T = TokenStatus
# What a token may become next from each status. A token only moves on when it is ready: a
# sleeping, failed, suspended or waiting token is woken (ready) first; a done token is finished
# for good.
TOKEN_TRANSITION: dict[str, frozenset[str]] = {
    _T.READY: frozenset({_T.SLEEP, _T.FAILED, _T.SUSPENDED, _T.WAITING, _T.DONE}),
    _T.SLEEP: frozenset({_T.READY, _T.FAILED, _T.DONE}),  # failed: the schedule step failed
    _T.FAILED: frozenset({_T.READY, _T.SUSPENDED, _T.DONE}),  # suspended: a rollback parks it
    _T.SUSPENDED: frozenset({_T.READY, _T.DONE}),
    _T.WAITING: frozenset({_T.READY, _T.DONE}),
    _T.DONE: frozenset(),
}


def _reach(table: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for start in table:
        seen = {start}
        todo = [start]
        while todo:
            for nxt in table[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        out[start] = frozenset(seen)
    return out


# A unit of work writes a token once, after it may have crossed several nodes (ready, then
# sleeping...): what it writes must be reachable from what it read.
TOKEN_REACH = _reach(TOKEN_TRANSITION)


def check_token_transition(token_id: int, from_status: str | None, to_status: str) -> None:
    """Raise InvalidOperationError unless a token read as ``from_status`` may be written as
    ``to_status`` (``None``: a new token, which may start anywhere)."""
    if from_status is None:
        return
    allowed = TOKEN_REACH.get(from_status)
    if allowed is None or to_status not in allowed:
        raise InvalidOperationError(
            f"token {token_id}: status transition {from_status} -> {to_status} is not allowed"
        )
