"""Dry runs: a pipeline tried on a throwaway store, with chosen activities mocked.

A mocked activity keeps its place in the tree, its inputs (so their ``${}`` templates are still
rendered, and a template that cannot be rendered still fails the node) and its name; only its
component is swapped for :class:`MockComponent`, a substitute registered for the dry run. Its
service reads the node's mock by node id and returns it: outputs written to the node (and so to
the pipeline's context, as the real component's would be), or a failure with ``ex_data``. The
engine runs the rewritten tree as any other: no engine code knows about mocks.

A mock is written ``NODE=VALUE`` on the command line (``rattan run --dry-run --mock``), where
NODE is a node id or a node name, and VALUE is:

* a JSON object: the node succeeds with these outputs;
* ``!text``: the node fails with ``text`` as its ``ex_data``;
* a JSON object with a ``"__fail__"`` key: the node fails with that value as its ``ex_data``,
  and the object's other keys as outputs (a partial result, as a real failure may leave).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rattan.components import Component, Registry, Service
from rattan.errors import BadInputError

MOCK_CODE = "rattan_dry_run_mock"
FAIL_KEY = "__fail__"


@dataclass(frozen=True, slots=True)
class Mock:
    """What a mocked node does: succeed with ``outputs``, or fail with ``error`` (its ex_data)."""

    outputs: dict[str, Any] = field(default_factory=dict)
    error: Any = None

    @property
    def fails(self) -> bool:
        return self.error is not None


# node id -> its mock, for the dry runs of this process (node ids are unique: a run's nodes have
# ids no other run uses)
_mocks: dict[str, Mock] = {}
_lock = threading.Lock()


class MockService(Service):
    """Returns the node's mock: its outputs, or its failure."""

    def execute(self, data: Any, parent_data: Any) -> bool:
        with _lock:
            mock = _mocks.get(str(self.id), Mock())
        for key, value in mock.outputs.items():
            data.set_outputs(key, copy.deepcopy(value))
        if mock.fails:
            data.outputs.ex_data = mock.error
            return False
        return True


class MockComponent(Component, register=False):
    name = "dry-run mock"
    code = MOCK_CODE
    bound_service = MockService


def parse_mock(text: str) -> tuple[str, Mock]:
    """``NODE=VALUE`` (see the module's docstring) -> (NODE, its Mock); BadInputError if malformed."""
    node, sep, value = text.partition("=")
    if not sep or not node:
        raise BadInputError(
            f'--mock {text!r}: write NODE=JSON, NODE=!error text or NODE={{"{FAIL_KEY}": ...}}'
        )
    if value.startswith("!"):
        return node, Mock(error=value[1:] or "mocked failure")
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise BadInputError(
            f"--mock {node}: the outputs are not JSON ({exc}); a failure is NODE=!text"
        ) from None
    if not isinstance(parsed, dict):
        raise BadInputError(f"--mock {node}: the outputs must be a JSON object (output key -> value)")
    if FAIL_KEY in parsed:
        error = parsed.pop(FAIL_KEY)
        return node, Mock(outputs=parsed, error=error if error is not None else "mocked failure")
    return node, Mock(outputs=parsed)


def activities(pipeline: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every service activity of a tree, those of its subprocesses included."""
    for node in pipeline.get("activities", {}).values():
        if node.get("type") == "SubProcess":
            yield from activities(node["pipeline"])
        elif node.get("type") == "ServiceActivity":
            yield node


def all_nodes(pipeline: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a tree (events, gateways, activities), subprocesses' included; nodes without
    an id (a broken tree, refused when it is run) are left out."""
    found = [pipeline.get("start_event"), pipeline.get("end_event"), *pipeline.get("gateways", {}).values()]
    for node in pipeline.get("activities", {}).values():
        found.append(node)
        if node.get("type") == "SubProcess" and isinstance(node.get("pipeline"), dict):
            found.extend(all_nodes(node["pipeline"]))
    yield from (node for node in found if isinstance(node, dict) and "id" in node)


def resolve(tree: dict[str, Any], mocks: Sequence[tuple[str, Mock]], mock_all: bool) -> dict[str, Mock]:
    """Node id -> Mock: each NODE names a node by id, or every node with that name. A NODE that
    names nothing, or names a node that is not a service activity, raises BadInputError."""
    nodes = list(all_nodes(tree))
    acts = {node["id"] for node in activities(tree)}
    found: dict[str, Mock] = {}
    for target, mock in mocks:
        ids = [n["id"] for n in nodes if n["id"] == target] or [
            n["id"] for n in nodes if n.get("name") == target
        ]
        if not ids:
            names = sorted({str(n["name"]) for n in nodes if n.get("name")})
            raise BadInputError(f"--mock {target}: no node has this id or name (names: {', '.join(names)})")
        for node_id in ids:
            if node_id not in acts:
                raise BadInputError(f"--mock {target}: node {node_id} is not a service activity")
            found[node_id] = mock
    if mock_all:
        for node_id in acts:
            found.setdefault(node_id, Mock())
    return found


def mock_tree(tree: dict[str, Any], mocks: dict[str, Mock]) -> dict[str, Any]:
    """A copy of ``tree`` whose mocked activities run MockComponent (their inputs kept), and
    register the mocks for this process's dry-run engine."""
    out = copy.deepcopy(tree)
    for node in activities(out):
        if node["id"] in mocks:
            component = node.setdefault("component", {})
            component["code"] = MOCK_CODE
            component.pop("version", None)
    with _lock:
        _mocks.update(mocks)
    return out


def forget(mocks: dict[str, Mock]) -> None:
    """Drop a finished dry run's mocks."""
    with _lock:
        for node_id in mocks:
            _mocks.pop(node_id, None)


def install(registry: Registry) -> None:
    """Register MockComponent in ``registry`` (again is harmless: the same class)."""
    registry.register(MockComponent)


__all__ = ["FAIL_KEY", "MOCK_CODE", "Mock", "MockComponent", "install", "mock_tree", "parse_mock", "resolve"]
