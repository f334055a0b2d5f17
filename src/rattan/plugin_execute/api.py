"""The plugin-execute API: bamboo-pipeline's ``pipeline.contrib.plugin_execute.api`` functions,
with the same names, arguments and results.

Every function returns an ``EngineAPIResult`` and never raises: ``result`` True with the answer in
``data``, or ``result`` False with ``message`` saying what is wrong and ``exc`` the
``rattan.RattanError`` raised (``BadInputError``, ``NotFoundError``, ``InvalidOperationError``).

bamboo-pipeline's functions find their runtime through Django's settings; here every function takes
an optional keyword ``engine=``, and without it uses the engine given to ``set_engine`` once (for
code written against bamboo-pipeline, which passes none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rattan.errors import InvalidOperationError
from rattan.plugin_execute import jobs
from rattan.results import EngineAPIResult, api_result

if TYPE_CHECKING:
    from rattan.facade import Engine

_default: Engine | None = None


def set_engine(engine: Engine | None) -> Engine | None:
    """Make ``engine`` the one the functions use when they get no ``engine=``; ``None`` unsets it.
    Returns the engine set before, so a caller (a test fixture) can put it back."""
    global _default
    previous, _default = _default, engine
    return previous


def get_engine() -> Engine | None:
    """The engine set with ``set_engine`` (``None`` when there is none)."""
    return _default


def _engine(engine: Engine | None) -> Engine:
    chosen = engine if engine is not None else _default
    if chosen is None:
        raise InvalidOperationError(
            "no engine for plugin execute: call rattan.plugin_execute.set_engine(engine) once, "
            "or pass engine=..."
        )
    return chosen


@api_result
def run(
    component_code: str,
    version: str,
    inputs: dict[str, Any],
    contexts: dict[str, Any],
    runtime_attrs: dict[str, Any] | None = None,
    *,
    engine: Engine | None = None,
) -> str:
    """Run component ``component_code`` at ``version`` on its own. ``inputs`` are its
    ``data.inputs``, ``contexts`` its ``parent_data.inputs``; ``data`` is the job id."""
    return jobs.run(_engine(engine), component_code, version, inputs, contexts, runtime_attrs)


@api_result
def get_state(task_id: str, *, engine: Engine | None = None) -> dict[str, Any]:
    """``data``: the job's ``state`` and details (see docs/plugin-execute.md)."""
    return jobs.get_state(_engine(engine), task_id)


@api_result
def callback(
    task_id: str, callback_data: dict[str, Any] | None = None, *, engine: Engine | None = None
) -> None:
    """Send ``callback_data`` to a RUNNING job waiting for a callback."""
    jobs.callback(_engine(engine), task_id, callback_data)


@api_result
def forced_fail(task_id: str, *, ex_data: str = "", engine: Engine | None = None) -> None:
    """Fail a RUNNING job now (``ex_data`` goes to its outputs)."""
    jobs.forced_fail(_engine(engine), task_id, ex_data)


@api_result
def retry(
    task_id: str,
    inputs: dict[str, Any] | None = None,
    contexts: dict[str, Any] | None = None,
    runtime_attrs: dict[str, Any] | None = None,
    *,
    engine: Engine | None = None,
) -> None:
    """Run a FAILED job again; ``inputs`` replace its inputs (``None`` keeps them)."""
    jobs.retry(_engine(engine), task_id, inputs, contexts, runtime_attrs)


__all__ = [
    "EngineAPIResult",
    "callback",
    "forced_fail",
    "get_engine",
    "get_state",
    "retry",
    "run",
    "set_engine",
]
