"""A component version chosen from the builder (issue 16): ``ServiceActivity(version=...)`` or
``act.component.version`` is written to the tree, and the engine runs that version; a node that
names none runs the component registered without one ("legacy")."""

from __future__ import annotations

from typing import Any

import pytest

import rattan
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree
from rattan.errors import TreeInvalidException

pytestmark = pytest.mark.timeout(30)


def _registry() -> rattan.Registry:
    reg = rattan.Registry("versions")
    for version in (None, "1.0", "2.0"):

        class Svc(rattan.Service):
            tag = version or "legacy"

            def execute(self, data: Any, parent_data: Any) -> bool:
                data.outputs.ran = self.tag
                return True

        attrs: dict[str, Any] = {"name": "greet", "code": "greet", "bound_service": Svc}
        if version is not None:
            attrs["version"] = version
        type(f"Greet_{version}", (rattan.Component,), attrs, registry=reg)
    return reg


def test_the_version_is_written_to_the_tree_only_when_given() -> None:
    assert ServiceActivity(component_code="greet").component_dict() == {"code": "greet", "inputs": {}}
    assert ServiceActivity(component_code="greet", version="2.0").component_dict()["version"] == "2.0"
    act = ServiceActivity(component_code="greet")
    act.component.version = "1.0"
    assert act.component_dict() == {"code": "greet", "inputs": {}, "version": "1.0"}


def test_nodes_run_the_version_they_name_side_by_side(tmp_path: Any) -> None:
    legacy, one = (
        ServiceActivity(component_code="greet"),
        ServiceActivity(component_code="greet", version="1.0"),
    )
    two = ServiceActivity(component_code="greet")
    two.component.version = "2.0"
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(legacy).extend(one).extend(two).extend(end)
    tree = build_tree(start)
    engine = rattan.Engine(str(tmp_path / "v.db"), components=_registry())
    try:
        engine.run_pipeline(tree)
        assert engine.wait_pipeline(tree["id"], timeout=20)["state"] == "FINISHED"
        ran = [engine.get_execution_data_outputs(a.id)["ran"] for a in (legacy, one, two)]
        assert ran == ["legacy", "1.0", "2.0"]
    finally:
        engine.close(timeout=10)


def test_an_unregistered_version_is_refused_naming_it(tmp_path: Any) -> None:
    act = ServiceActivity(component_code="greet", version="9.9")
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(act).extend(end)
    engine = rattan.Engine(str(tmp_path / "v.db"), components=_registry())
    try:
        with pytest.raises(TreeInvalidException, match=r"9\.9"):
            engine.run_pipeline(build_tree(start), check_components=True)
    finally:
        engine.close(timeout=10)
