"""rattan: a durable process engine for Python.

The pipeline model of bamboo-engine (start/end events, service activities bound to components,
gateways, subprocesses, ``${}`` variables, operator controls) on an embedded SQLite runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
from rattan.errors import (
    BadInputError,
    ConflictError,
    InvalidOperationError,
    NotFoundError,
    RattanError,
    ScheduleFinishedError,
    TreeInvalidException,
)
from rattan.settings import Settings

__version__ = "0.1.0"

# The engine, the API and the optional subpackages load on first use (PEP 562): ``import rattan``
# stays cheap for code that only defines components.
_LAZY = {
    "Engine": ("rattan.facade", "Engine"),
    "EngineAPIResult": ("rattan.results", "EngineAPIResult"),
    "api": ("rattan.api", None),
    "builder": ("rattan.builder", None),
    "rollback": ("rattan.rollback", None),
    "signals": ("rattan.signals", None),
}

if TYPE_CHECKING:
    from rattan import api, builder, rollback, signals
    from rattan.facade import Engine
    from rattan.results import EngineAPIResult


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'rattan' has no attribute {name!r}")
    module = importlib.import_module(target[0])
    value = module if target[1] is None else getattr(module, target[1])
    globals()[name] = value
    return value


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
    "ScheduleFinishedError",
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
    "signals",
    "rollback",
]
