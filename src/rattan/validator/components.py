"""Checking a tree's component codes against the registered components, with "did you mean" hints.

The validator sits below the component registry, so it reads any object with a ``components()``
method (a ``rattan.Registry``) or plain ``(code, version)`` pairs instead of importing the registry.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, Protocol, runtime_checkable

from rattan.errors import Problem
from rattan.expr.suggest import did_you_mean
from rattan.spec.parse import LEGACY_VERSION

from ._common import SERVICE_ACTIVITY, SUBPROCESS, Problems, node_name

RULE = "activity.component_unregistered"


@runtime_checkable
class ComponentSource(Protocol):
    """Anything listing component classes, each with a ``code`` and an optional ``version``."""

    def components(self) -> Iterable[Any]: ...


def component_keys(source: ComponentSource | Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    """The ``(code, version)`` pairs of ``source``: a registry, or the pairs themselves.

    A class without a version counts as ``"legacy"``, the version a node that names none asks for.
    """
    if isinstance(source, ComponentSource):
        return frozenset(
            (cls.code, getattr(cls, "version", None) or LEGACY_VERSION) for cls in source.components()
        )
    return frozenset((code, version or LEGACY_VERSION) for code, version in source)


def unregistered_message(code: str, version: str | None, known: Collection[tuple[str, str]]) -> str | None:
    """Why ``(code, version)`` cannot run, or None when it is in ``known``.

    An unknown code gets the closest registered code as a hint; a known code with an unknown
    version lists that code's registered versions.
    """
    version = version or LEGACY_VERSION
    if (code, version) in known:
        return None
    text = f"component {code!r} version {version!r} is not registered"
    versions = sorted(v for c, v in known if c == code)
    if versions:
        return f"{text} (registered versions: {', '.join(repr(v) for v in versions)})"
    return text + did_you_mean(code, (c for c, _ in known))


def check_component_codes(
    tree: Any, components: ComponentSource | Iterable[tuple[str, str]]
) -> list[Problem]:
    """Every service activity of ``tree`` (nested subprocesses included) whose component is not in
    ``components``, as problems with rule ``activity.component_unregistered``.

    ``str(problem)`` reads ``[activity.component_unregistered] act_1 (name): component 'ecoh' version
    'legacy' is not registered (did you mean 'echo'?)``. Malformed parts of the tree are skipped
    (validation reports them); the tree is not modified.

    Args:
        tree: a pipeline tree.
        components: a ``rattan.Registry`` (or any object with ``components()``), or ``(code,
            version)`` pairs.

    Returns:
        The problems, in tree order (parents before their subprocesses); empty when all are known.
    """
    known = component_keys(components)
    problems = Problems()
    todo: list[Any] = [tree]
    seen: set[int] = set()
    while todo:
        pipeline = todo.pop()
        # a tree may share one pipeline dict twice (validation refuses it): visit it once
        if not isinstance(pipeline, dict) or id(pipeline) in seen:
            continue
        seen.add(id(pipeline))
        activities = pipeline.get("activities")
        if not isinstance(activities, dict):
            continue
        children: list[Any] = []
        for nid, node in activities.items():
            if not isinstance(node, dict):
                continue
            if node.get("type") == SUBPROCESS:
                children.append(node.get("pipeline"))
            elif node.get("type") == SERVICE_ACTIVITY:
                comp = node.get("component")
                code = comp.get("code") if isinstance(comp, dict) else None
                version = comp.get("version") if isinstance(comp, dict) else None
                if not isinstance(code, str) or not code or not isinstance(version, str | None):
                    continue
                message = unregistered_message(code, version, known)
                if message is not None:
                    problems.add(nid, RULE, message, node_name(node))
        todo.extend(reversed(children))
    return problems.items
