"""bamboo's example components, kept out of the default registry.

They live in ``BUILTIN_REGISTRY``; an engine consults it as a fallback when
``Settings.enable_example_components`` is true (``resolve_component_class`` does exactly that).
Importing rattan therefore registers nothing globally.
"""

from __future__ import annotations

from rattan.components.component import Component
from rattan.components.data import DataObject
from rattan.components.registry import Registry
from rattan.components.service import Service
from rattan.errors import ComponentNotExistException

__all__ = [
    "BUILTIN_REGISTRY",
    "ExampleComponent",
    "PipeExampleComponent",
    "PipeExampleService",
    "SimpleExampleService",
    "resolve_component_class",
]

BUILTIN_REGISTRY = Registry("builtin")


class SimpleExampleService(Service):
    """Always succeeds."""

    def execute(self, data: DataObject, parent_data: DataObject) -> bool:
        """Succeed without touching the data."""
        return True


class PipeExampleService(Service):
    """Copies every input to the outputs."""

    def execute(self, data: DataObject, parent_data: DataObject) -> bool:
        """Copy ``data.inputs`` into ``data.outputs``."""
        for key, value in data.inputs.items():
            data.set_outputs(key, value)
        return True


class ExampleComponent(Component, registry=BUILTIN_REGISTRY):
    """``example_component``: always succeeds."""

    name = "example component"
    code = "example_component"
    bound_service = SimpleExampleService


class PipeExampleComponent(Component, registry=BUILTIN_REGISTRY):
    """``pipe_example_component``: copies every input to the outputs."""

    name = "pipe example component"
    code = "pipe_example_component"
    bound_service = PipeExampleService


def resolve_component_class(
    registry: Registry, code: str, version: str | None = None, *, include_builtin: bool = True
) -> type[Component]:
    """Look ``(code, version)`` up in ``registry``, then in ``BUILTIN_REGISTRY`` if allowed.

    Args:
        registry: the engine's registry.
        code: the component code.
        version: the version; ``None`` means ``"legacy"``.
        include_builtin: pass ``Settings.enable_example_components``.

    Raises:
        ComponentNotExistException: found in neither.
    """
    try:
        return registry.get_component_class(code, version)
    except ComponentNotExistException:
        if include_builtin and BUILTIN_REGISTRY.has_component(code, version):
            return BUILTIN_REGISTRY.get_component_class(code, version)
        raise
