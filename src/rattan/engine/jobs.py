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


def service_logs(service: Any) -> list[str]:
    logger = service.__dict__.get("_runtime_attrs", {}).get("logger")
    return list(getattr(logger, "lines", ()))
