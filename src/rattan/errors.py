"""The whole rattan exception tree, under one root.

Errors are grouped by who must react::

    RattanError                              root of everything rattan raises
    ├── BadInputError (also ValueError)      the caller sent something malformed: fix the input
    │   ├── TreeInvalidException             a pipeline tree broke a validation rule
    │   │   ├── ConnectionValidateError      node degrees / allowed targets
    │   │   ├── ConvergeMatchError           gateway / converge matching
    │   │   ├── StreamValidateError          a flow crosses a parallel branch boundary
    │   │   ├── IsolateNodeError             (kept for compatibility; never raised)
    │   │   └── CycleError                   a cycle without cycle_tolerate
    │   ├── StartPositionInvalidException    start_node_id not allowed
    │   ├── ExpressionError                  a ${...} expression was refused or failed
    │   ├── EngineValueError                 bamboo's engine ``ValueError``
    │   └── UnstorableValueError (TypeError)  a value the store cannot keep exactly
    ├── InvalidOperationError                the operation is not allowed in the current state
    │   ├── RollBackException                a rollback precondition failed
    │   └── ScheduleFinishedError            a callback reached a wait that already ended
    ├── NotFoundError                        an id names nothing: check the id
    │   └── ComponentNotExistException       no component registered under (code, version)
    ├── ConflictError                        a concurrent change won: re-read and retry
    │   ├── StateVersionNotMatchError        compare-and-set on a state version failed
    │   ├── IdInUseError                     a new run's root or node id belongs to another run
    │   └── ComponentConflictError           two classes claim one registry key
    └── BackendUnavailableError              the store or broker cannot be reached: retry later

Backends translate their driver errors (sqlite3, psycopg, kombu) into these at their boundary.
"""

from __future__ import annotations

from dataclasses import dataclass


class RattanError(Exception):
    """Root of every exception rattan raises on purpose."""


class BadInputError(RattanError, ValueError):
    """The caller passed malformed input. The message names the offending thing."""


@dataclass(frozen=True)
class Problem:
    """One broken validation rule: which node, which rule, and what is wrong."""

    node_id: str
    rule: str
    message: str
    node_name: str | None = None

    def __str__(self) -> str:
        who = self.node_id if not self.node_name else f"{self.node_id} ({self.node_name})"
        return f"[{self.rule}] {who}: {self.message}"


class TreeInvalidException(BadInputError):
    """A pipeline tree is invalid. ``problems`` lists every broken rule that was found."""

    def __init__(self, message: str = "", problems: list[Problem] | None = None) -> None:
        self.problems: list[Problem] = list(problems or [])
        if not message:
            message = "pipeline tree is invalid"
        if self.problems:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{message} ({len(self.problems)} problem(s)):\n{lines}"
        super().__init__(message)


class ConnectionValidateError(TreeInvalidException):
    """Node degree or allowed-target rules are broken (``failed_nodes``, ``detail``)."""

    def __init__(
        self,
        failed_nodes: list[str] | None = None,
        detail: dict[str, str] | None = None,
        problems: list[Problem] | None = None,
    ) -> None:
        self.failed_nodes: list[str] = list(failed_nodes or [])
        self.detail: dict[str, str] = dict(detail or {})
        super().__init__("connection validation failed", problems)


class ConvergeMatchError(TreeInvalidException):
    """A gateway does not match a converge gateway as the rules require."""

    def __init__(
        self, gateway_id: str = "", message: str = "", problems: list[Problem] | None = None
    ) -> None:
        self.gateway_id = gateway_id
        super().__init__(message or f"converge match failed for gateway {gateway_id}", problems)


class StreamValidateError(TreeInvalidException):
    """A node is reached from more than one stream (parallel branch), or from none."""

    def __init__(self, node_id: str = "", message: str = "", problems: list[Problem] | None = None) -> None:
        self.node_id = node_id
        super().__init__(message or f"stream validation failed at node {node_id}", problems)


class IsolateNodeError(TreeInvalidException):
    """Kept for compatibility with bamboo; rattan reports isolated nodes as StreamValidateError."""


class CycleError(TreeInvalidException):
    """The graph has a cycle and ``cycle_tolerate`` is false."""


class StartPositionInvalidException(BadInputError):
    """``start_node_id`` is not an allowed start position."""


class ExpressionError(BadInputError):
    """A ``${...}`` expression was refused by the sandbox or failed to evaluate."""

    def __init__(self, expression: str, reason: str) -> None:
        self.expression = expression
        self.reason = reason
        super().__init__(f"expression {expression!r} rejected: {reason}")


class EngineValueError(BadInputError):
    """bamboo-engine's own ``ValueError`` (e.g. a COMPUTE context value without a code)."""


class UnstorableValueError(BadInputError, TypeError):
    """A value cannot be stored exactly (docs/components.md, "What outputs can hold"). ``path``
    says where it sits inside the value given (``['key'][2]``), ``what`` what it is."""

    HINT = (
        "stored values are JSON types, datetime, date, time, timedelta, UUID, Decimal, bytes "
        "and sets (docs/components.md)"
    )

    def __init__(self, path: str, what: str, owner: str = "the value") -> None:
        self.path = path
        self.what = what
        shown = path if len(path) <= 80 else path[:80] + "..."
        super().__init__(f"{owner}{shown} holds {what}: {self.HINT}")

    def inside(self, step: str) -> UnstorableValueError:
        """The same error one level further out (``step`` is the key or index it sits under)."""
        return UnstorableValueError(step + self.path, self.what)

    def of(self, owner: str) -> UnstorableValueError:
        """The same error naming what holds the value (``callback data``, ``outputs``)."""
        return UnstorableValueError(self.path, self.what, owner)


class InvalidOperationError(RattanError):
    """The operation is not allowed for the target's current state or type."""


class ScheduleFinishedError(InvalidOperationError):
    """A callback came for a node version that no longer waits for one: its schedule finished,
    or expired (forced fail, retry, revoke)."""


class RollBackException(InvalidOperationError):
    """A rollback precondition failed."""


class NotFoundError(RattanError):
    """An id (pipeline, node, schedule, component) names nothing."""


class ComponentNotExistException(NotFoundError):
    """No component is registered under the requested code and version."""


class ConflictError(RattanError):
    """A concurrent change won a compare-and-set; re-read the state and retry."""


class StateVersionNotMatchError(ConflictError):
    """A state write expected a version that is no longer current."""


class IdInUseError(ConflictError):
    """A new run's root pipeline id or one of its node ids is another run's (build a new tree)."""


class ComponentConflictError(ConflictError):
    """A different class is already registered under the same registry key."""


class BackendUnavailableError(RattanError):
    """The store or the dispatcher's broker cannot be reached."""
