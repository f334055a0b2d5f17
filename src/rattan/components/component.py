"""``Component``: the registered, versioned declaration that binds a code to a ``Service``."""

from __future__ import annotations

import sys
from typing import Any, ClassVar

from rattan.components.registry import DEFAULT_VERSION, Registry, auto_register
from rattan.components.service import Service
from rattan.errors import BadInputError, NotFoundError
from rattan.io import DataItem

__all__ = ["Component"]


class Component:
    """Declare a component by subclassing with class attributes.

    Attributes:
        name: display name (required when ``code`` is set).
        code: registry key together with ``version``; a class without ``code`` is an abstract
            intermediate and is not registered.
        bound_service: the ``Service`` subclass run by the node (required when ``code`` is set).
        version: defaults to ``"legacy"``, the version used by nodes that name none.
        is_default_version: metadata only.
        form, output_form: opaque front-end form paths.
        desc, base: free text.
        embedded_form: read by ``form_is_embedded()``.
        group_name, group_icon: the defining module's ``__group_name__`` / ``__group_icon__``, else
            the module's last dotted part in title case / ``""``.
        __replace__: replace a different class registered under the same key.

    Class statement keywords: ``registry=`` registers into that ``Registry`` instead of the
    collecting one; ``register=False`` skips registration.
    """

    name: ClassVar[str]
    code: ClassVar[str]
    bound_service: ClassVar[type[Service]]
    version: ClassVar[str] = DEFAULT_VERSION
    is_default_version: ClassVar[bool] = False
    form: ClassVar[str | None] = None
    output_form: ClassVar[str | None] = None
    desc: ClassVar[str] = ""
    base: ClassVar[str] = ""
    embedded_form: ClassVar[bool] = False
    group_name: ClassVar[str] = ""
    group_icon: ClassVar[str] = ""

    def __init_subclass__(
        cls, *, registry: Registry | None = None, register: bool = True, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        module = sys.modules.get(cls.__module__)
        if "group_name" not in cls.__dict__:
            default_group = cls.__module__.rsplit(".", 1)[-1].title()
            cls.group_name = getattr(module, "__group_name__", default_group)
        if "group_icon" not in cls.__dict__:
            cls.group_icon = getattr(module, "__group_icon__", "")
        code = getattr(cls, "code", None)
        if code is None:
            auto_register(cls, registry, False)
            return
        _validate(cls, code)
        auto_register(cls, registry, register)

    @classmethod
    def outputs_format(cls) -> list[dict[str, Any]]:
        """Return ``as_dict()`` of every output of a fresh service (default outputs included)."""
        return [item.as_dict() for item in cls.bound_service().outputs()]

    @classmethod
    def inputs_format(cls) -> list[dict[str, Any]]:
        """Return ``as_dict()`` of every input of a fresh service."""
        return [item.as_dict() for item in cls.bound_service().inputs()]

    @classmethod
    def get_output_schema(cls, key: str) -> dict[str, Any]:
        """Return the ``as_dict()`` schema of output ``key`` (``{}`` when it has none).

        Raises:
            NotFoundError: no output has that key.
        """
        return _schema_of(cls.bound_service().outputs(), key, cls, "output")

    @classmethod
    def get_input_schema(cls, key: str) -> dict[str, Any]:
        """Return the ``as_dict()`` schema of input ``key`` (``{}`` when it has none).

        Raises:
            NotFoundError: no input has that key.
        """
        return _schema_of(cls.bound_service().inputs(), key, cls, "input")

    @classmethod
    def form_is_embedded(cls) -> bool:
        """Return ``embedded_form``."""
        return bool(cls.embedded_form)

    @classmethod
    def service(cls) -> Service:
        """Return a fresh instance of ``bound_service``."""
        return cls.bound_service()


def _validate(cls: type[Component], code: Any) -> None:
    where = f"component {cls.__module__}.{cls.__qualname__}"
    if not isinstance(code, str) or not code:
        raise BadInputError(f"{where}: code must be a non-empty string, got {code!r}")
    service = getattr(cls, "bound_service", None)
    if not (isinstance(service, type) and issubclass(service, Service)):
        raise BadInputError(f"{where}: bound_service must be a Service subclass, got {service!r}")
    if not getattr(cls, "name", None):
        raise BadInputError(f"{where}: name can not be empty")
    version = getattr(cls, "version", None)
    if not isinstance(version, str) or not version:
        raise BadInputError(f"{where}: version must be a non-empty string, got {version!r}")


def _schema_of(items: list[Any], key: str, cls: type[Component], kind: str) -> dict[str, Any]:
    for item in items:
        if isinstance(item, DataItem) and item.key == key:
            return item.schema.as_dict() if item.schema is not None else {}
    raise NotFoundError(f"component {cls.code!r} has no {kind} {key!r}")
