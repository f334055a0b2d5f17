"""The component framework: services, components, the registry, data objects, LAZY variables and
executable end events."""

from __future__ import annotations

from rattan.components.builtin import BUILTIN_REGISTRY, resolve_component_class
from rattan.components.component import Component
from rattan.components.data import DataObject, FancyDict
from rattan.components.end_event import ExecutableEndEvent
from rattan.components.hooks import HookType
from rattan.components.interval import (
    AbstractIntervalGenerator,
    DefaultIntervalGenerator,
    LinearIntervalGenerator,
    NullIntervalGenerator,
    SquareIntervalGenerator,
    StaticIntervalGenerator,
)
from rattan.components.lazy import LazyVariable, OriginalValue, compute_lazy_value
from rattan.components.nodes import FlowNodeClsFactory, NodeTypeConflictError
from rattan.components.registry import ComponentImportError, Registry, collecting_into, registry
from rattan.components.service import (
    CALLBACK_HOOKS,
    HOOK_NAMES,
    READ_ONLY_HOOKS,
    ScheduleType,
    Service,
)

__all__ = [
    "BUILTIN_REGISTRY",
    "CALLBACK_HOOKS",
    "HOOK_NAMES",
    "READ_ONLY_HOOKS",
    "AbstractIntervalGenerator",
    "Component",
    "ComponentImportError",
    "DataObject",
    "DefaultIntervalGenerator",
    "ExecutableEndEvent",
    "FancyDict",
    "FlowNodeClsFactory",
    "HookType",
    "LazyVariable",
    "LinearIntervalGenerator",
    "NodeTypeConflictError",
    "NullIntervalGenerator",
    "OriginalValue",
    "Registry",
    "ScheduleType",
    "Service",
    "SquareIntervalGenerator",
    "StaticIntervalGenerator",
    "collecting_into",
    "compute_lazy_value",
    "registry",
    "resolve_component_class",
]
