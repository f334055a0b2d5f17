"""``Service``: the user code behind a service activity, and its node hooks.

The engine creates a NEW instance for every execute step, schedule step and hook dispatch, then calls
``setup_runtime_attrs`` before invoking it. Instance attributes therefore never survive between steps.
"""

from __future__ import annotations

import abc
import copy
import functools
import inspect
import logging
from typing import TYPE_CHECKING, Any, ClassVar

from rattan import io as rattan_io
from rattan.components.interval import (
    AbstractIntervalGenerator,
    DefaultIntervalGenerator,
    LinearIntervalGenerator,
    NullIntervalGenerator,
    SquareIntervalGenerator,
    StaticIntervalGenerator,
)
from rattan.model.records import ScheduleType

if TYPE_CHECKING:
    from rattan.components.data import DataObject

__all__ = [
    "CALLBACK_HOOKS",
    "HOOK_NAMES",
    "READ_ONLY_HOOKS",
    "RUNTIME_ATTRS",
    "AbstractIntervalGenerator",
    "DefaultIntervalGenerator",
    "LinearIntervalGenerator",
    "NullIntervalGenerator",
    "ScheduleType",
    "Service",
    "SquareIntervalGenerator",
    "StaticIntervalGenerator",
]

SERVICE_LOGGER_NAME = "rattan.service"

#: Runtime attributes the engine sets before every step.
RUNTIME_ATTRS = frozenset(
    {"id", "version", "top_pipeline_id", "root_pipeline_id", "loop", "inner_loop", "logger"}
)

#: Every hook method name, in documentation order.
HOOK_NAMES: tuple[str, ...] = (
    "node_enter",
    "pre_execute",
    "post_execute",
    "node_execute_exception",
    "node_execute_fail",
    "pre_schedule",
    "post_schedule",
    "node_schedule_exception",
    "node_schedule_fail",
    "node_finish",
    "pre_pause_node",
    "post_pause_node",
    "pre_resume_node",
    "post_resume_node",
    "pre_retry_node",
    "post_retry_node",
    "pre_skip_node",
    "post_skip_node",
    "pre_forced_fail_activity",
    "post_forced_fail_activity",
    "pre_callback",
    "post_callback",
)

#: Hooks whose data changes are never saved.
READ_ONLY_HOOKS = frozenset(HOOK_NAMES[10:])

#: Hooks that receive ``callback_data`` (when the engine has one).
CALLBACK_HOOKS = frozenset(
    {"node_schedule_exception", "node_schedule_fail", "node_finish", "pre_callback", "post_callback"}
)

# Generator classes known to hold only immutable state: a shallow copy is enough (and much faster).
_SHALLOW_COPY_INTERVALS = frozenset(
    {
        DefaultIntervalGenerator,
        SquareIntervalGenerator,
        StaticIntervalGenerator,
        LinearIntervalGenerator,
        NullIntervalGenerator,
    }
)


class ServiceLoggerAdapter(logging.LoggerAdapter[logging.Logger]):
    """The default ``self.logger``: records carry ``node_id``, ``loop`` and ``version`` extras."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        """Merge the node extras under any extras given by the call."""
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


@functools.lru_cache(maxsize=4096)
def _accepts_callback_data(service_cls: type[Service], hook: str) -> bool:
    method = getattr(service_cls, hook, None)
    if method is None:
        return False
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "callback_data" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


class Service(abc.ABC):
    """Base class of component services.

    Class switches:
        __need_schedule__: wait for schedule steps after a successful ``execute``.
        interval: an interval generator; not ``None`` means POLL scheduling.
        __multi_callback_enabled__: callback mode accepts callbacks until ``finish_schedule()``.
        __need_run_hook__: opt in to node hooks.
        __idempotent__: rattan - the engine may re-run ``execute`` automatically after a crash.

    Args:
        name: optional display name.
    """

    __need_schedule__: ClassVar[bool] = False
    __multi_callback_enabled__: ClassVar[bool] = False
    __need_run_hook__: ClassVar[bool] = False
    __idempotent__: ClassVar[bool] = False
    __schedule_finish__: bool = False
    interval: AbstractIntervalGenerator | None = None

    # As in bamboo, the item classes are exposed on the service (``self.InputItem(...)``).
    InputItem: ClassVar[type[rattan_io.InputItem]] = rattan_io.InputItem
    OutputItem: ClassVar[type[rattan_io.OutputItem]] = rattan_io.OutputItem

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        interval = self.interval
        if interval is not None:
            if type(interval) in _SHALLOW_COPY_INTERVALS:
                # the built-in generators hold plain numbers: copying their __dict__ is a shallow
                # copy at a fraction of copy.copy's cost (a service is made for every step)
                clone = object.__new__(type(interval))
                clone.__dict__.update(interval.__dict__)
                self.interval = clone
            else:
                self.interval = copy.deepcopy(interval)
        self._runtime_attrs: dict[str, Any] = {}

    # -- runtime attributes ------------------------------------------------------------------

    def setup_runtime_attrs(self, **kwargs: Any) -> None:
        """Merge runtime attributes (``id``, ``version``, ``top_pipeline_id``, ``root_pipeline_id``,
        ``loop``, ``inner_loop``, ``logger``), readable afterwards as ``self.<name>``."""
        attrs = self.__dict__.setdefault("_runtime_attrs", {})
        if "logger" not in kwargs and attrs.get("_auto_logger"):
            attrs.pop("logger", None)
            attrs.pop("_auto_logger", None)
        attrs.update(kwargs)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup failed: class attributes always win over runtime ones.
        attrs = self.__dict__.get("_runtime_attrs")
        if attrs is not None and name in attrs and not name.startswith("_"):
            return attrs[name]
        if name == "logger":
            return self._default_logger()
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _default_logger(self) -> ServiceLoggerAdapter:
        attrs = self.__dict__.setdefault("_runtime_attrs", {})
        extra = {
            "node_id": attrs.get("id"),
            "loop": attrs.get("loop"),
            "version": attrs.get("version"),
        }
        adapter = ServiceLoggerAdapter(logging.getLogger(SERVICE_LOGGER_NAME), extra)
        attrs["logger"] = adapter
        attrs["_auto_logger"] = True
        return adapter

    # -- the component contract --------------------------------------------------------------

    @abc.abstractmethod
    def execute(self, data: DataObject, parent_data: DataObject) -> bool | None:
        """Run the node. ``False`` → failure; ``True``/``None`` → success; raising → failure.

        Args:
            data: the node's inputs and outputs.
            parent_data: ``inputs`` is the root pipeline data; ``outputs`` is empty.
        """

    def schedule(
        self, data: DataObject, parent_data: DataObject, callback_data: dict[str, Any] | None = None
    ) -> bool | None:
        """One poll or one callback; same return meaning as ``execute``. Default: ``True``.

        Args:
            data: the node's inputs and the outputs saved by the previous step.
            parent_data: as for ``execute``.
            callback_data: the callback payload, ``None`` for polls.
        """
        return True

    def finish_schedule(self) -> None:
        """Mark the schedule finished (completes a POLL or MULTIPLE_CALLBACK node)."""
        self.__schedule_finish__ = True

    def is_schedule_finished(self) -> bool:
        """Return whether ``finish_schedule()`` was called."""
        return bool(self.__schedule_finish__)

    def clean_status(self) -> None:
        """Reset the schedule-finished flag."""
        self.__schedule_finish__ = False

    def need_schedule(self) -> bool:
        """Return ``__need_schedule__``."""
        return bool(self.__need_schedule__)

    def need_run_hook(self) -> bool:
        """Return ``__need_run_hook__``."""
        return bool(self.__need_run_hook__)

    def multi_callback_enabled(self) -> bool:
        """Return ``__multi_callback_enabled__``."""
        return bool(self.__multi_callback_enabled__)

    def is_idempotent(self) -> bool:
        """Return ``__idempotent__`` (rattan: the engine may re-execute after a crash)."""
        return bool(self.__idempotent__)

    def schedule_type(self) -> ScheduleType | None:
        """``None`` without scheduling, else POLL if ``interval`` is set, else MULTIPLE_CALLBACK if
        multi-callback is enabled, else CALLBACK."""
        if not self.__need_schedule__:
            return None
        if self.interval is not None:
            return ScheduleType.POLL
        if self.__multi_callback_enabled__:
            return ScheduleType.MULTIPLE_CALLBACK
        return ScheduleType.CALLBACK

    def inputs_format(self) -> list[rattan_io.InputItem]:
        """Describe the inputs. Default: ``[]``."""
        return []

    def outputs_format(self) -> list[rattan_io.OutputItem]:
        """Describe the outputs. Default: ``[]``."""
        return []

    def inputs(self) -> list[rattan_io.InputItem]:
        """Return ``inputs_format()``."""
        return list(self.inputs_format())

    def outputs(self) -> list[rattan_io.OutputItem]:
        """Return a new list: ``outputs_format()`` plus ``_result``, ``_loop`` and ``_inner_loop``."""
        return [*self.outputs_format(), *_default_outputs()]

    def rollback(self, data: DataObject, parent_data: DataObject, rollback_data: Any = None) -> bool | None:
        """Undo the node in TOKEN-mode rollback. Default: ``True``."""
        return True

    def cancel(self, data: DataObject, parent_data: DataObject) -> None:
        """rattan: stop the external job on revoke, forced fail, skip or timeout. Default: no-op."""
        return None

    # -- hooks; effective only with ``__need_run_hook__ = True`` -----------------------

    def call_hook(
        self, hook: str, data: DataObject, parent_data: DataObject, callback_data: Any = None
    ) -> Any:
        """Call hook method ``hook``, passing ``callback_data`` only when it is not ``None`` and the
        method accepts it (a ``callback_data`` parameter or ``**kwargs``). Exceptions propagate."""
        method = getattr(self, hook)
        if callback_data is not None and _accepts_callback_data(type(self), hook):
            return method(data, parent_data, callback_data=callback_data)
        return method(data, parent_data)

    def node_enter(self, data: DataObject, parent_data: DataObject) -> bool:
        """Before ``pre_execute``, once per pass."""
        return True

    def pre_execute(self, data: DataObject, parent_data: DataObject) -> bool:
        """Just before ``execute``."""
        return True

    def post_execute(self, data: DataObject, parent_data: DataObject) -> bool:
        """After a successful ``execute``."""
        return True

    def node_execute_exception(self, data: DataObject, parent_data: DataObject) -> bool:
        """``execute`` raised."""
        return True

    def node_execute_fail(self, data: DataObject, parent_data: DataObject) -> bool:
        """``execute`` failed and the failure is not ignored."""
        return True

    def pre_schedule(self, data: DataObject, parent_data: DataObject) -> bool:
        """Just before each ``schedule``."""
        return True

    def post_schedule(self, data: DataObject, parent_data: DataObject) -> bool:
        """After a successful ``schedule``."""
        return True

    def node_schedule_exception(
        self, data: DataObject, parent_data: DataObject, callback_data: Any = None
    ) -> bool:
        """``schedule`` raised."""
        return True

    def node_schedule_fail(
        self, data: DataObject, parent_data: DataObject, callback_data: Any = None
    ) -> bool:
        """``schedule`` failed and the failure is not ignored."""
        return True

    def node_finish(self, data: DataObject, parent_data: DataObject, callback_data: Any = None) -> bool:
        """The node completed (success or ignored failure)."""
        return True

    def pre_pause_node(self, data: DataObject, parent_data: DataObject) -> bool:
        """Before pausing the node (read-only)."""
        return True

    def post_pause_node(self, data: DataObject, parent_data: DataObject) -> bool:
        """After pausing the node (read-only)."""
        return True

    def pre_resume_node(self, data: DataObject, parent_data: DataObject) -> bool:
        """Before resuming the node (read-only)."""
        return True

    def post_resume_node(self, data: DataObject, parent_data: DataObject) -> bool:
        """After resuming the node (read-only)."""
        return True

    def pre_retry_node(self, data: DataObject, parent_data: DataObject) -> bool:
        """Before retrying the node (read-only)."""
        return True

    def post_retry_node(self, data: DataObject, parent_data: DataObject) -> bool:
        """After retrying the node (read-only)."""
        return True

    def pre_skip_node(self, data: DataObject, parent_data: DataObject) -> bool:
        """Before skipping the node (read-only)."""
        return True

    def post_skip_node(self, data: DataObject, parent_data: DataObject) -> bool:
        """After skipping the node (read-only)."""
        return True

    def pre_forced_fail_activity(self, data: DataObject, parent_data: DataObject) -> bool:
        """Before forcing the node to fail (read-only)."""
        return True

    def post_forced_fail_activity(self, data: DataObject, parent_data: DataObject) -> bool:
        """After forcing the node to fail (read-only)."""
        return True

    def pre_callback(self, data: DataObject, parent_data: DataObject, callback_data: Any = None) -> bool:
        """Before a callback is accepted (read-only)."""
        return True

    def post_callback(self, data: DataObject, parent_data: DataObject, callback_data: Any = None) -> bool:
        """After a callback is accepted (read-only)."""
        return True


def _default_outputs() -> list[rattan_io.OutputItem]:
    return [
        rattan_io.OutputItem(name="执行结果", key="_result", type="boolean"),
        rattan_io.OutputItem(name="循环次数", key="_loop", type="int"),
        rattan_io.OutputItem(name="当前流程循环次数", key="_inner_loop", type="int"),
    ]
