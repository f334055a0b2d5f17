"""bamboo's ``bamboo_engine.engine.Engine`` (``from bamboo_engine.engine import Engine``).

In bamboo, ``Engine(runtime)`` wraps a runtime (the Django/Celery implementation of the engine's
storage and queues) with the operations: ``Engine(BambooDjangoRuntime()).run_pipeline(...)``. In
rattan the runtime and the engine are one object, ``rattan.Engine``, whose methods have the same
names and arguments and raise the same way. So ``Engine(runtime)`` here hands back the engine it
is given, and code written as ``Engine(runtime).retry_node(node_id)`` moves over by changing its
imports only.
"""

from __future__ import annotations

from rattan.errors import BadInputError
from rattan.facade import Engine as _RattanEngine

__all__ = ["Engine"]


def Engine(runtime: _RattanEngine) -> _RattanEngine:  # bamboo's class name, kept
    """The engine for ``runtime``: ``runtime`` itself (a ``rattan.Engine``)."""
    if not isinstance(runtime, _RattanEngine):
        raise BadInputError(
            f"Engine(runtime) takes a rattan.Engine (what BambooDjangoRuntime() becomes), "
            f"got {type(runtime).__name__}"
        )
    return runtime
