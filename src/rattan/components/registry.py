"""``Registry``: where component, LAZY variable and executable end event classes are looked up.

Defining a ``Component`` / ``LazyVariable`` / ``ExecutableEndEvent`` subclass that has a ``code``
registers it at class creation in the *collecting* registry: the default library ``registry`` unless
code runs inside ``collecting_into(other)`` or the class says ``registry=other`` / ``register=False``
in its class statement. Rules (where bamboo silently overwrites):

* the same class defined again (same module and qualified name, e.g. a reload) replaces silently;
* a different class under the same key raises ``ComponentConflictError`` unless it sets
  ``__replace__ = True`` or is registered with ``register(cls, replace=True)``;
* a module-level ``__register_ignore__ = True`` in the defining module disables registration.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import sys
import threading
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from rattan.errors import ComponentConflictError, ComponentNotExistException, NotFoundError, RattanError

if TYPE_CHECKING:
    from rattan.components.component import Component
    from rattan.components.end_event import ExecutableEndEvent
    from rattan.components.lazy import LazyVariable
    from rattan.components.service import Service

__all__ = [
    "DEFAULT_VERSION",
    "ComponentImportError",
    "Registry",
    "collecting_into",
    "registry",
]

DEFAULT_VERSION = "legacy"
ENTRY_POINT_GROUP = "rattan.components"

T = TypeVar("T", bound=type)


class ComponentImportError(RattanError, ImportError):
    """A module listed for component discovery (or an entry point) failed to import."""


def _same_definition(a: type, b: type) -> bool:
    return a is b or (a.__module__ == b.__module__ and a.__qualname__ == b.__qualname__)


def _describe(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class Registry:
    """A library of component, LAZY variable and executable end event classes.

    Reads are lock-free dict lookups; registrations are serialised by a lock.

    Args:
        name: a label used in ``repr`` and error messages.
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._lock = threading.RLock()
        self._components: dict[tuple[str, str], type[Component]] = {}
        self._lazy: dict[str, type[LazyVariable]] = {}
        self._end_events: dict[str, type[Any]] = {}

    def __repr__(self) -> str:
        return (
            f"Registry({self.name!r}: {len(self._components)} components, {len(self._lazy)} lazy variables,"
            f" {len(self._end_events)} end events)"
        )

    # -- registration ------------------------------------------------------------------------

    def register(self, cls: T, replace: bool = False) -> T:
        """Register a ``Component``, ``LazyVariable`` or ``ExecutableEndEvent`` subclass by its ``code``.

        Args:
            cls: the class.
            replace: replace a different class already registered under the same key.

        Returns:
            ``cls`` (so this can be used as a decorator).

        Raises:
            ComponentConflictError: another class holds the key and neither ``replace`` nor the
                class's ``__replace__`` is set.
            TypeError: ``cls`` is none of the three kinds, or has no ``code``.
        """
        from rattan.components.component import Component
        from rattan.components.end_event import ExecutableEndEvent
        from rattan.components.lazy import LazyVariable

        replace = replace or bool(getattr(cls, "__replace__", False))
        code = getattr(cls, "code", None)
        if not isinstance(code, str) or not code:
            raise TypeError(f"{_describe(cls)} has no 'code' and cannot be registered")
        if issubclass(cls, Component):
            version = getattr(cls, "version", None) or DEFAULT_VERSION
            self._put(self._components, (code, version), cls, replace, f"component {code!r} {version!r}")
        elif issubclass(cls, LazyVariable):
            self._put(self._lazy, code, cls, replace, f"lazy variable {code!r}")
        elif issubclass(cls, ExecutableEndEvent):
            self._put(self._end_events, code, cls, replace, f"end event {code!r}")
        else:
            raise TypeError(f"{_describe(cls)} is not a Component, LazyVariable or ExecutableEndEvent")
        return cls

    def _put(self, table: dict[Any, Any], key: Any, cls: type, replace: bool, what: str) -> None:
        with self._lock:
            existing = table.get(key)
            if existing is not None and not replace and not _same_definition(existing, cls):
                raise ComponentConflictError(
                    f"{what} is already registered by {_describe(existing)}; {_describe(cls)} claims it too"
                    " (set __replace__ = True or register(cls, replace=True) to replace it)"
                )
            table[key] = cls

    def register_lazy_variable(self, cls: type[LazyVariable], replace: bool = False) -> type[LazyVariable]:
        """Register a ``LazyVariable`` subclass under its ``code`` (see ``register``)."""
        from rattan.components.lazy import LazyVariable

        if not (isinstance(cls, type) and issubclass(cls, LazyVariable)):
            raise TypeError(f"{cls!r} is not a LazyVariable subclass")
        return self.register(cls, replace=replace)

    def register_end_event(self, key: str, cls: type[Any], replace: bool = False) -> type[Any]:
        """Register an executable end event class under ``key`` (which becomes a sink type).

        Raises:
            ComponentConflictError: another class holds ``key``.
        """
        from rattan.components.end_event import ExecutableEndEvent

        if not (isinstance(cls, type) and issubclass(cls, ExecutableEndEvent)):
            raise TypeError(f"{cls!r} is not an ExecutableEndEvent subclass")
        self._put(self._end_events, key, cls, replace or bool(getattr(cls, "__replace__", False)), key)
        return cls

    def unregister(self, code: str, version: str | None = None) -> None:
        """Remove a component (missing keys are ignored)."""
        with self._lock:
            self._components.pop((code, version or DEFAULT_VERSION), None)

    def clear(self) -> None:
        """Remove everything."""
        with self._lock:
            self._components.clear()
            self._lazy.clear()
            self._end_events.clear()

    # -- lookup --------------------------------------------------------------------------------

    def get_component_class(self, code: str, version: str | None = None) -> type[Component]:
        """Return the component class for ``(code, version)``; ``None`` means ``"legacy"``.

        Raises:
            ComponentNotExistException: nothing is registered under that key.
        """
        cls = self._components.get((code, version or DEFAULT_VERSION))
        if cls is None:
            raise ComponentNotExistException(
                f"component {code!r} version {version or DEFAULT_VERSION!r} is not registered"
            )
        return cls

    get_component_cls = get_component_class  # bamboo's ComponentLibrary name

    def has_component(self, code: str, version: str | None = None) -> bool:
        """Return whether ``(code, version)`` is registered."""
        return (code, version or DEFAULT_VERSION) in self._components

    def get_service_class(self, code: str, version: str | None = None) -> type[Service]:
        """Return the ``bound_service`` of the component ``(code, version)``.

        Raises:
            ComponentNotExistException: nothing is registered under that key.
        """
        return self.get_component_class(code, version).bound_service

    def components(self) -> list[type[Component]]:
        """Return the registered component classes, sorted by ``(code, version)``."""
        return [cls for _, cls in sorted(self._components.items())]

    def versions(self, code: str) -> list[str]:
        """Return the registered versions of ``code``, sorted."""
        return sorted(version for c, version in self._components if c == code)

    component_list = components  # bamboo's ComponentLibrary name

    def codes(self) -> list[str]:
        """Return the registered component codes, sorted (bamboo's ``ComponentLibrary.codes``)."""
        return sorted({code for code, _ in self._components})

    def get_lazy_variable(self, code: str) -> type[LazyVariable]:
        """Return the LAZY variable class registered under ``code``.

        Raises:
            NotFoundError: unknown code.
        """
        cls = self._lazy.get(code)
        if cls is None:
            raise NotFoundError(f"lazy variable {code!r} is not registered")
        return cls

    def has_lazy_variable(self, code: str) -> bool:
        """Return whether a LAZY variable class is registered under ``code``."""
        return code in self._lazy

    def lazy_variables(self) -> list[type[LazyVariable]]:
        """Return the registered LAZY variable classes, sorted by code."""
        return [cls for _, cls in sorted(self._lazy.items())]

    def get_end_event(self, key: str) -> type[ExecutableEndEvent]:
        """Return the executable end event class registered under ``key``.

        Raises:
            NotFoundError: unknown key.
        """
        cls = self._end_events.get(key)
        if cls is None:
            raise NotFoundError(f"executable end event {key!r} is not registered")
        return cls

    def has_end_event(self, key: str) -> bool:
        """Return whether an end event class is registered under ``key``."""
        return key in self._end_events

    def sink_types(self) -> frozenset[str]:
        """Return the registered end event keys (extra sink node types)."""
        return frozenset(self._end_events)

    # -- copies ----------------------------------------------------------------------------------

    def copy(self, name: str = "") -> Registry:
        """Return an independent registry with the same entries."""
        other = Registry(name or self.name)
        with self._lock:
            other._components = dict(self._components)
            other._lazy = dict(self._lazy)
            other._end_events = dict(self._end_events)
        return other

    def merge(self, other: Registry, replace: bool = False) -> None:
        """Add every entry of ``other`` (same conflict rules as ``register``)."""
        with self._lock:
            for key, cls in other._components.items():
                self._put(self._components, key, cls, replace, f"component {key[0]!r} {key[1]!r}")
            for code, lazy in other._lazy.items():
                self._put(self._lazy, code, lazy, replace, f"lazy variable {code!r}")
            for event_key, event in other._end_events.items():
                self._put(self._end_events, event_key, event, replace, f"end event {event_key!r}")

    # -- discovery -------------------------------------------------------------------------------

    def import_modules(self, modules: Iterable[str]) -> None:
        """Import each module (recursively for packages) and register the classes they define.

        Classes defined while importing land in this registry; classes of modules imported earlier
        are registered too (found by scanning each module's namespace).

        Raises:
            ComponentImportError: a module failed to import (the cause is chained).
        """
        with collecting_into(self):
            for name in modules:
                for module in _import_tree(name):
                    self.register_module(module)

    def register_module(self, module: ModuleType) -> None:
        """Register the classes defined in ``module`` (honours ``__register_ignore__``)."""
        if getattr(module, "__register_ignore__", False):
            return
        for value in list(vars(module).values()):
            if (
                isinstance(value, type)
                and value.__module__ == module.__name__
                and _auto_registrable(value)
                and value.__dict__.get("_rattan_registry") is None
            ):
                self.register(value)

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load the ``group`` entry points: each names a module (imported as by ``import_modules``) or
        a class (registered).

        Raises:
            ComponentImportError: an entry point failed to load.
        """
        # imported here: importlib.metadata costs about a quarter of `import rattan`, and only
        # this call needs it
        from importlib import metadata

        for entry_point in metadata.entry_points(group=group):
            try:
                loaded = entry_point.load()
            except Exception as exc:
                raise ComponentImportError(
                    f"entry point {entry_point.name!r} ({entry_point.value}) of group {group!r} failed"
                    f" to load: {exc!r}"
                ) from exc
            if isinstance(loaded, ModuleType):
                self.import_modules([loaded.__name__])
            elif isinstance(loaded, type):
                self.register(loaded)
            else:
                raise ComponentImportError(
                    f"entry point {entry_point.name!r} ({entry_point.value}) is neither a module nor a class"
                )


def _auto_registrable(cls: type) -> bool:
    from rattan.components.component import Component
    from rattan.components.end_event import ExecutableEndEvent
    from rattan.components.lazy import LazyVariable

    if not issubclass(cls, Component | LazyVariable | ExecutableEndEvent):
        return False
    if not cls.__dict__.get("_rattan_autoregister", True):
        return False
    code = getattr(cls, "code", None)
    return isinstance(code, str) and bool(code)


def _import_tree(name: str) -> Iterator[ModuleType]:
    module = _import(name)
    yield module
    path = getattr(module, "__path__", None)
    if path is None:
        return
    for info in pkgutil.walk_packages(path, prefix=module.__name__ + "."):
        yield _import(info.name)


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise ComponentImportError(f"component module {name!r} failed to import: {exc!r}") from exc


#: The default library: classes register here when they are defined.
registry = Registry("default")

_collecting: ContextVar[Registry | None] = ContextVar("rattan_collecting_registry", default=None)


@contextlib.contextmanager
def collecting_into(target: Registry) -> Iterator[Registry]:
    """Within the block, classes defined (e.g. by importing modules) register into ``target``
    instead of the default ``registry``. Useful to load existing component code into an isolated registry."""
    token = _collecting.set(target)
    try:
        yield target
    finally:
        _collecting.reset(token)


def register_coded_subclass(cls: type, what: str, target: Registry | None, enabled: bool) -> None:
    """``__init_subclass__`` of classes keyed by ``code`` (lazy variables, end events): an abstract
    intermediate (no code) is not registered; a code must be a non-empty string."""
    code = getattr(cls, "code", None)
    if code is None:
        auto_register(cls, target, False)
        return
    if not isinstance(code, str) or not code:
        raise TypeError(f"{what} {cls.__qualname__}: code must be a non-empty string")
    auto_register(cls, target, enabled)


def auto_register(cls: type, target: Registry | None, enabled: bool) -> None:
    """Class-creation registration used by the base classes' ``__init_subclass__``."""
    type.__setattr__(cls, "_rattan_autoregister", enabled)
    type.__setattr__(cls, "_rattan_registry", target)
    if not enabled:
        return
    module = sys.modules.get(cls.__module__)
    if module is not None and getattr(module, "__register_ignore__", False):
        return
    (target or _collecting.get() or registry).register(cls)
