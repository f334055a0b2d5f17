"""rattan: a durable process engine for Python.

The pipeline model of bamboo-engine (start/end events, service activities bound to components,
gateways, subprocesses, ``${}`` variables, operator controls) on an embedded SQLite runtime.
"""

from __future__ import annotations

from rattan import api, builder, rollback
from rattan.api import EngineAPIResult
from rattan.components import (
    AbstractIntervalGenerator,
    Component,
    DataObject,
    DefaultIntervalGenerator,
    ExecutableEndEvent,
    LazyVariable,
    LinearIntervalGenerator,
    NullIntervalGenerator,
    Registry,
    ScheduleType,
    Service,
    SquareIntervalGenerator,
    StaticIntervalGenerator,
    registry,
)
from rattan.context import ContextValue, ContextValueType
from rattan.engine.engine import Engine
from rattan.errors import (
    BadInputError,
    ConflictError,
    InvalidOperationError,
    NotFoundError,
    RattanError,
    TreeInvalidException,
)
from rattan.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "AbstractIntervalGenerator",
    "BadInputError",
    "Component",
    "ConflictError",
    "ContextValue",
    "ContextValueType",
    "DataObject",
    "DefaultIntervalGenerator",
    "Engine",
    "EngineAPIResult",
    "ExecutableEndEvent",
    "InvalidOperationError",
    "LazyVariable",
    "LinearIntervalGenerator",
    "NotFoundError",
    "NullIntervalGenerator",
    "RattanError",
    "Registry",
    "ScheduleType",
    "Service",
    "Settings",
    "SquareIntervalGenerator",
    "StaticIntervalGenerator",
    "TreeInvalidException",
    "__version__",
    "api",
    "builder",
    "registry",
    "rollback",
]
