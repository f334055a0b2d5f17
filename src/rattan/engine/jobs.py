"""Work items handed between the advance loop and the code that runs user services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Prepared:
    """An entered activity, ready for its ``execute`` call."""

    pid: int
    node_id: str
    version: str
    root_id: str
    top_pipeline_id: str
    loop: int
    inner_loop: int
    name: str | None
    code: str
    component_version: str
    inputs: dict[str, Any]
    root_data: Any

    @classmethod
    def of(
        cls, pid: int, node: Any, version: str, loop: int, inner_loop: int, root_id: str, pipeline_id: str,
        inputs: dict[str, Any], root_data: Any,
    ) -> Prepared:  # fmt: skip
        """A Prepared for service activity ``node`` (a ServiceActivityNode) at one pass."""
        return cls(
            pid, node.id, version, root_id, pipeline_id, loop, inner_loop, node.name, node.component_code,
            node.component_version, inputs, root_data,
        )  # fmt: skip


def service_logs(service: Any) -> list[str]:
    logger = service.__dict__.get("_runtime_attrs", {}).get("logger")
    return list(getattr(logger, "lines", ()))
