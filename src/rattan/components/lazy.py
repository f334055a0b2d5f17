"""``LazyVariable``: a computed (LAZY) pipeline variable type.

The engine instantiates the class registered for a variable's ``custom_type``, sets ``value``,
``original_value``, ``pipeline_data`` and ``inner_loop`` on the instance, and calls ``get_value()``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

from rattan.components.registry import Registry, register_coded_subclass

__all__ = ["LazyVariable", "OriginalValue", "compute_lazy_value"]


class OriginalValue:
    """The raw (unrendered) value of a LAZY variable.

    Args:
        value: the raw value.
        render: renders a raw value in the variable's context; ``None`` returns it unchanged.
    """

    __slots__ = ("_render", "value")

    def __init__(self, value: Any, render: Callable[[Any], Any] | None = None) -> None:
        self.value = value
        self._render = render

    def get(self) -> Any:
        """Return the rendered value."""
        return self.value if self._render is None else self._render(self.value)

    def __repr__(self) -> str:
        return f"OriginalValue({self.value!r})"


class LazyVariable(abc.ABC):
    """Base class of LAZY variable types. Subclasses set ``code`` and implement ``get_value``.

    Class attributes:
        code: the registry key (``custom_type``); a class without ``code`` is not registered.
        name, type, tag, form, meta_tag: UI metadata.
        __replace__: replace a different class registered under the same code.

    Instance attributes (set by the engine):
        value: the rendered value.
        original_value: an ``OriginalValue`` (``.value`` raw, ``.get()`` renders).
        pipeline_data: the root pipeline data.
        inner_loop: the inner loop of the node being prepared (1-based), ``-1`` when none.

    Class statement keywords: ``registry=`` / ``register=False`` as for ``Component``.
    """

    code: ClassVar[str]
    name: ClassVar[str] = ""
    type: ClassVar[str] = "general"
    tag: ClassVar[str] = ""
    form: ClassVar[str] = ""
    meta_tag: ClassVar[str] = ""

    def __init__(
        self,
        value: Any = None,
        original_value: OriginalValue | None = None,
        pipeline_data: dict[str, Any] | None = None,
        inner_loop: int = -1,
    ) -> None:
        self.value = value
        self.original_value = original_value if original_value is not None else OriginalValue(value)
        self.pipeline_data: dict[str, Any] = pipeline_data if pipeline_data is not None else {}
        self.inner_loop = inner_loop

    def __init_subclass__(
        cls, *, registry: Registry | None = None, register: bool = True, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        register_coded_subclass(cls, "lazy variable", registry, register)

    @abc.abstractmethod
    def get_value(self) -> Any:
        """Return the variable's value."""


def compute_lazy_value(
    cls: type[LazyVariable],
    *,
    value: Any,
    original_value: OriginalValue,
    pipeline_data: dict[str, Any],
    inner_loop: int = -1,
) -> Any:
    """Instantiate ``cls``, set the four engine attributes and return ``get_value()``.

    Works for subclasses that override ``__init__`` with another signature: the instance is created
    with no arguments when possible, else without calling ``__init__``. Exceptions propagate.
    """
    try:
        instance = cls()
    except TypeError:
        instance = cls.__new__(cls)
    instance.value = value
    instance.original_value = original_value
    instance.pipeline_data = pipeline_data
    instance.inner_loop = inner_loop
    return instance.get_value()
