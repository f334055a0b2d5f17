"""Timer boundary events: actions fired while a service activity is RUNNING.

Config on an activity: ``act["events"]["timer_events"] = [{"enable", "action", "timer_type",
"defined"}]`` with ``timer_type`` ``time_date`` (ISO 8601 date-time, fires once),
``time_duration`` (ISO 8601 duration from the moment the node goes RUNNING, once) or ``time_cycle``
(``R<n>/<duration>``: n repetitions; ``R/<duration>``: until the node leaves RUNNING; each
repetition computed from the arming time, so cycles do not drift). Each enabled, parsable event
gets a 1-based index. Timers are durable rows; one armed for an old node version does nothing.
An action is a ``BaseAction`` subclass with a ``Meta.action_name``; it runs on a worker after the
commit that fired its timer, at most once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rattan.errors import BadInputError

if TYPE_CHECKING:
    from rattan.components import DataObject

log = logging.getLogger("rattan.timer_event")

_DURATION = re.compile(
    r"^P(?:(?P<y>\d+(?:\.\d+)?)Y)?(?:(?P<mo>\d+(?:\.\d+)?)M)?(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<mi>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_CYCLE = re.compile(r"^R(?P<n>\d*)/(?P<duration>P.+)$")
_SECONDS = {
    "y": 365 * 86400.0,
    "mo": 30 * 86400.0,
    "w": 7 * 86400.0,
    "d": 86400.0,
    "h": 3600.0,
    "mi": 60.0,
    "s": 1.0,
}


def parse_duration(text: str) -> float:
    """ISO 8601 duration (``PT1H30M``, ``P1DT2S``) in seconds (years 365 days, months 30 days)."""
    m = _DURATION.match(text or "")
    if m is None or text in ("P", "PT") or text.endswith("T"):
        raise BadInputError(f"not an ISO 8601 duration: {text!r}")
    return sum(float(v) * _SECONDS[k] for k, v in m.groupdict().items() if v)


def parse_timer(timer_type: str, defined: str) -> tuple[float | None, float, int | None]:
    """(absolute epoch or None, period seconds, repetitions or None for unbounded)."""
    if timer_type == "time_date":
        try:
            when = datetime.fromisoformat(defined)
        except (TypeError, ValueError):
            raise BadInputError(f"not an ISO 8601 date-time: {defined!r}") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp(), 0.0, 1
    if timer_type == "time_duration":
        return None, parse_duration(defined), 1
    if timer_type == "time_cycle":
        m = _CYCLE.match(defined or "")
        if m is None:
            raise BadInputError(f"not an ISO 8601 repeating interval R<n>/<duration>: {defined!r}")
        period = parse_duration(m.group("duration"))
        if period <= 0:
            raise BadInputError(f"a repeating interval needs a period above zero: {defined!r}")
        return None, period, int(m.group("n")) if m.group("n") else None
    raise BadInputError(f"unknown timer_type {timer_type!r}: use time_date, time_duration or time_cycle")


class BaseAction:
    """Base of timer event actions: set ``Meta.action_name`` and implement ``do``."""

    class Meta:
        action_name: ClassVar[str] = ""

    registry: ClassVar[dict[str, type[BaseAction]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = getattr(cls.Meta, "action_name", "")
        if name:
            if name in BaseAction.registry and BaseAction.registry[name].__qualname__ != cls.__qualname__:
                raise BadInputError(f"timer event action {name!r} is already defined")
            BaseAction.registry[name] = cls

    def __init__(self, engine: Any, root_pipeline_id: str, node_id: str, version: str) -> None:
        # engine: the rattan.Engine that fired the timer (its methods raise on refusal)
        self.engine = engine
        self.root_pipeline_id = root_pipeline_id
        self.node_id = node_id
        self.version = version

    def do(self, data: DataObject, parent_data: DataObject, *args: Any, **kwargs: Any) -> bool:
        raise BadInputError(f"timer event action {type(self).__name__} does not implement do()")


class ExampleAction(BaseAction):
    class Meta:
        action_name = "example"

    def do(self, data: DataObject, parent_data: DataObject, *args: Any, **kwargs: Any) -> bool:
        log.info(
            "timer event example action on node %s", self.node_id,
            extra={"root_pipeline_id": self.root_pipeline_id, "node_id": self.node_id},
        )  # fmt: skip
        return True


class ForcedFailAction(BaseAction):
    class Meta:
        action_name = "bamboo_engine_forced_fail"

    def do(self, data: DataObject, parent_data: DataObject, *args: Any, **kwargs: Any) -> bool:
        return _ok(lambda: self.engine.forced_fail_activity(self.node_id, "forced fail by timer event"))


class ForcedFailAndSkipAction(BaseAction):
    class Meta:
        action_name = "bamboo_engine_forced_fail_and_skip"

    def do(self, data: DataObject, parent_data: DataObject, *args: Any, **kwargs: Any) -> bool:
        if not _ok(lambda: self.engine.forced_fail_activity(self.node_id, "forced fail by timer event")):
            return False
        return _ok(lambda: self.engine.skip_node(self.node_id))


def enabled_events(act: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(1-based index, config) of the enabled, parsable timer events of an activity dict."""
    out: list[tuple[int, dict[str, Any]]] = []
    events = act.get("events")
    configs = events.get("timer_events") if isinstance(events, Mapping) else None
    for cfg in configs or []:
        if not isinstance(cfg, Mapping) or not cfg.get("enable"):
            continue
        try:
            parse_timer(str(cfg.get("timer_type")), str(cfg.get("defined")))
        except BadInputError:
            continue
        out.append((len(out) + 1, dict(cfg)))
    return out


def _ok(call: Callable[[], object]) -> bool:
    """Run an engine operation for an action: False (logged) when the engine refuses it."""
    try:
        call()
    except Exception as exc:  # bamboo's actions went through its api, which never raises
        log.warning("timer event action refused: %s", exc)
        return False
    return True
